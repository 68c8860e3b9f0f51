"""``hermite-limit diagnose GEN0 GEN1 ... [--data FILE] [--order 4] [--out DIR]``.

Inputs: ``.npy`` (an (n, d) array), ``.npz`` (key ``samples`` or its only array), ``.csv`` (one sample per
row, optional header), or a folder of PNG images (one sample per image: every pixel of every channel,
row-major; 8-bit values v mapped to ``v / 127.5 - 1`` in [-1, 1], or to ``v * scale + shift`` with
``--scale``/``--shift`` for the user's own data coordinates). Outputs (written only after the whole
diagnosis succeeded, each atomically): ``diagnosis.json``, ``report.md``, ``trajectories.png``,
``attenuation.png``, ``forecast.png`` and ``schedule.png`` (the last two for identifiable fits).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .._io import SAMPLE_SUFFIXES, _load_samples, save_figure_atomic, write_json_atomic

PIXEL_RULE = "8-bit pixel v -> v / 127.5 - 1 (in [-1, 1])"


def load_generation(path: str, scale: float | None, shift: float | None) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"input not found: {p}")
    if p.is_dir():
        return _load_pngs(p, scale, shift)
    if p.suffix.lower() not in SAMPLE_SUFFIXES:
        raise ValueError(f"input {p} must be a folder of PNG images or end in one of {SAMPLE_SUFFIXES}")
    return _load_samples(p, p.suffix.lower())


def _load_pngs(folder: Path, scale, shift) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = sorted(f for f in folder.iterdir() if f.suffix.lower() == ".png")
    if not files:
        raise ValueError(f"folder {folder} holds no .png images")
    rows, shape = [], None
    for f in files:
        try:
            with Image.open(f) as im:
                a = np.asarray(im)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"image {f} could not be read: {exc}") from None
        if a.dtype != np.uint8:
            raise ValueError(f"image {f} has {a.dtype} pixels; 8-bit images are expected")
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise ValueError(f"image {f} has shape {a.shape}, the first image {shape}: all images must match")
        rows.append(a.reshape(-1).astype(np.float64))
    x = np.stack(rows)
    if scale is None and shift is None:
        return x / 127.5 - 1.0
    return x * (1.0 if scale is None else scale) + (0.0 if shift is None else shift)


def run(args) -> int:
    import jax

    from ._diagnosis import diagnose
    from ._figures import attenuation_figure, forecast_figure, schedule_figure, trajectories_figure

    gens = [load_generation(g, args.scale, args.shift) for g in args.generations]
    data = load_generation(args.data, args.scale, args.shift) if args.data else None
    d = diagnose(gens, data, order=args.order, per_generation_t=args.per_generation_t,
                 schemes="all" if args.schemes else None, bootstrap=args.bootstrap > 0,
                 n_boot=max(args.bootstrap, 2), key=jax.random.key(args.seed), beta_min=args.beta_min,
                 beta_max=args.beta_max, forecast_generations=args.horizon, t_min=args.t_min, design=True)
    payload = {"inputs": [str(g) for g in args.generations], "data": args.data,
               "pixel_scaling": PIXEL_RULE if args.scale is None and args.shift is None else
               f"v * {1.0 if args.scale is None else args.scale} + {0.0 if args.shift is None else args.shift}",
               **d.to_json()}
    json.dumps(payload, allow_nan=False)  # fail before writing anything
    figs = {"trajectories.png": trajectories_figure(d), "attenuation.png": attenuation_figure(d)}
    if d.forecast is not None:
        figs["forecast.png"] = forecast_figure(d)
    if d.recommended_schedule is not None:
        figs["schedule.png"] = schedule_figure(d.recommended_schedule)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # everything goes to a private folder first, then each file is moved in by an atomic rename
        write_json_atomic(tmp / "diagnosis.json", payload)
        _write_text(tmp / "report.md", report_markdown(d, payload, list(figs)))
        for name, fig in figs.items():
            save_figure_atomic(fig, tmp / name)
        out.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    est = (f"alpha = {d.alpha:.4g} +- {d.alpha_se:.2g}, t0 = {d.t0:.4g} +- {d.t0_se:.2g}" if d.identifiable
           else f"not identifiable ({d.status})")
    print(f"diagnose: {est}; goodness of fit p = {d.p_value:.3g}; wrote {out / 'diagnosis.json'}, {out / 'report.md'}")
    return 0


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _fmt(x, spec=".4g"):
    return "-" if x is None else format(x, spec)


def report_markdown(d, payload, figures) -> str:
    L = ["# Diagnosis of a retraining pipeline", ""]
    L.append(f"Generations: {d.n_generations} (sample sizes {d.sample_sizes}); dimension {d.dim}; Hermite orders 1..{d.order}; "
             f"data: {'separate sample' if d.separate_data else 'generation 0'}.")
    L.append("")
    L.append("Model: a^{i+1}_n = rho_i^|n| (alpha a^data_n + (1 - alpha) a^i_n), rho_i = e^{-t_i}; errors-in-variables fit.")
    L.append("")
    L.append(f"**Status: {d.status}.** {d.explanation}.")
    L.append("")
    L.append("| quantity | estimate | se | 95% interval |")
    L.append("|---|---|---|---|")
    ai = d.alpha_interval or (None, None)
    ti = d.t0_interval or (None, None)
    L.append(f"| alpha | {_fmt(d.alpha)} | {_fmt(d.alpha_se, '.2g')} | [{_fmt(ai[0])}, {_fmt(ai[1])}] |")
    L.append(f"| t0 (OU time) | {_fmt(d.t0)} | {_fmt(d.t0_se, '.2g')} | [{_fmt(ti[0])}, {_fmt(ti[1])}] |")
    vp, dd = d.conventions.get("vp"), d.conventions.get("ddpm")
    if vp:
        ei = vp["eps_interval"] or (None, None)
        L.append(f"| VP eps (beta {vp['beta_min']:g}..{vp['beta_max']:g}) | {_fmt(vp['eps'])} | {_fmt(vp['eps_se'], '.2g')} | "
                 f"[{_fmt(ei[0])}, {_fmt(ei[1])}] |")
    if dd:
        si = dd["step_interval"] or (None, None)
        L.append(f"| DDPM step (linear betas, {dd['n_steps']} steps) | {_fmt(dd['step'])} | {_fmt(dd['step_se'], '.2g')} | "
                 f"[{_fmt(si[0])}, {_fmt(si[1])}] |")
    L.append("")
    L.append(f"Goodness of fit: chi2 = {d.chi2:.4g} on {d.dof} degrees of freedom, p = {d.p_value:.3g}.")
    if d.bootstrap:
        b = d.bootstrap
        L.append(f"Bootstrap ({b['n_boot']} replicates): se(alpha) = {b['alpha_se']:.2g}, se(t0) = {b['t0_se']:.2g}.")
    if d.best_scheme:
        L.append(f"Best scheme by AIC: {d.best_scheme}.")
    if d.forecast is not None:
        fc = d.forecast
        L.append("")
        L.append("## Forecast")
        L.append(f"Generations until within {fc.within:g} of the limit: {fc.generations_to_within} "
                 f"(95% interval {fc.generations_to_within_interval}).")
        L.append("")
        L.append("| order | loss 1 - lambda_m | 95% interval |")
        L.append("|---|---|---|")
        for m in range(1, d.order + 1):
            L.append(f"| {m} | {fc.loss[m]:.3g} | [{fc.loss_interval[0][m]:.3g}, {fc.loss_interval[1][m]:.3g}] |")
    if d.inverse is not None:
        L.append("")
        L.append(f"Inverse filter from the last generation: informative up to order {d.inverse.highest_informative_order}.")
    if d.recommended_schedule is not None:
        ds = d.recommended_schedule
        L.append("")
        L.append("## Designed schedule")
        L.append(f"Final relative spectral error {ds.error:.3g} against {ds.families[ds.best_family]['error']:.3g} for the best "
                 f"one-parameter family ({ds.best_family}) at equal cost {ds.budget:.3g} ({ds.cost_model}).")
    L.append("")
    for f in figures:
        L.append(f"![{f}]({f})")
    return "\n".join(L) + "\n"
