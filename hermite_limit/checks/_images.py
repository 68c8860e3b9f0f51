"""The learned-images job: retrain a neural score on real images and hold its spectrum against the closed form.

``hermite-limit learned-images --out DIR`` (``[--cifar10 FOLDER]``) runs :func:`learned_images`: for each
``alpha``, :func:`hermite_limit.retrain` with a :class:`hermite_limit.NeuralScore` learner on the images as
data (their empirical law ``p_data = hl.empirical(images)``), and per generation ``i = 1..N``:

- an image grid of the generation's samples (first row: data images);
- the Hermite energy per total order ``E_m = sum_{|n|=m} a_n^2`` of the samples, unbiased (U-statistic over
  ``n_energy`` particles) with its standard error ``se_m``;
- the closed-form prediction for the empirical law: ``E_m(p_i) = f_m(i)^2 E_m(p_data)`` with
  ``f_m(i) = (1-alpha)^i rho^{m i} + alpha rho^m (1 - ((1-alpha) rho^m)^i) / (1 - (1-alpha) rho^m)``, ``rho = e^{-t0}``
  (exact: ``hl.generation`` of the empirical law multiplies every coefficient of order ``m`` by ``f_m(i)``), and
  the limit's ``lambda_m^2 E_m(p_data)``.

Verdict per order (reported, not tuned): the learned spectrum *follows the filter* at order ``m`` in a
generation when ``|E_m(samples) - E_m(p_i)| <= 4 se_m``; otherwise it lies above (the network adds energy:
noise or roughness the filter removed) or below (the network smooths more than the filter). The effective
filter ``sqrt(E_m(samples) / E_m(p_data))`` is plotted beside ``f_m(i)``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

Z_FOLLOW = 4.0  # standard errors within which the learned energy "follows the filter"


def learned_images(
    out,
    images: np.ndarray,
    shape: Sequence[int],
    *,
    name: str = "digits",
    alphas: Sequence[float] = (0.1, 0.5),
    t0: float = 0.1,
    generations: int = 5,
    n_particles: int | None = None,
    learner: Any = None,
    n_steps: int = 200,
    order: int = 6,
    n_energy: int = 2000,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Retrain a neural score on ``images`` for each alpha; write grids, spectra and ``report.md`` / ``report.json``.

    Parameters
    ----------
    out : path, output folder (created).
    images : (N, D) array of pixel rows in [-1, 1].
    shape : image shape, (H, W) or channel-major (C, H, W), with ``prod(shape) = D``.
    name : label of the data in file names and titles.
    alphas : fresh-data fractions, each in (0, 1].
    t0 : truncation OU time per generation, > 0.
    generations : N >= 1.
    n_particles : samples per generation (also the training-set size); default ``N`` images.
    learner : the learner (default ``hl.NeuralScore(width=256, depth=3, steps=2000)``).
    n_steps : Euler-Maruyama steps of the reverse sampler.
    order : highest total Hermite order of the spectra.
    n_energy : particles in the energy U-statistic.

    Returns
    -------
    dict : the JSON report (also written to ``out/report.json``).
    """
    import jax

    import hermite_limit as hl

    from .._io import save_figure_atomic, write_json_atomic
    from .._validation import check_positive_int

    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"images must be a (N, D) array of pixel rows; got shape {x.shape}")
    shape = tuple(int(s) for s in shape)
    if math.prod(shape) != x.shape[1]:
        raise ValueError(f"shape={shape} must have prod(shape) = {x.shape[1]} pixels per image")
    if not np.all(np.isfinite(x)) or x.min() < -1 - 1e-12 or x.max() > 1 + 1e-12:
        raise ValueError("images must be finite pixel values in [-1, 1]")
    generations = check_positive_int(generations, "generations", allow_zero=False)
    order = check_positive_int(order, "order", allow_zero=False)
    n_steps = check_positive_int(n_steps, "n_steps", allow_zero=False)
    n = x.shape[0] if n_particles is None else check_positive_int(n_particles, "n_particles", allow_zero=False)
    alphas = [float(a) for a in alphas]
    for a in alphas:
        if not 0.0 < a <= 1.0:
            raise ValueError(f"alphas must lie in (0, 1]; got {a!r}")
    if not (isinstance(t0, (int, float)) and math.isfinite(t0) and t0 > 0):
        raise ValueError(f"t0 must be a finite number > 0; got t0={t0!r}")
    learner = hl.NeuralScore(width=256, depth=3, steps=2000) if learner is None else learner
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    data = hl.empirical(x)
    start = time.perf_counter()
    runs = []
    for j, alpha in enumerate(alphas):
        t_run = time.perf_counter()
        grids: dict[str, np.ndarray] = {}

        def keep(i, particles, grids=grids):
            grids[f"generation {i + 1}"] = np.asarray(particles[:8])

        r = run_learned(jax.random.fold_in(jax.random.key(seed), j), data, alpha, t0, generations, n, learner,
                        n_steps=n_steps, order=order, n_energy=min(n_energy, n), progress=progress, callback=keep)
        seconds = time.perf_counter() - t_run
        tag = f"{name}_alpha{alpha:g}"
        rows = {"data": x[np.random.default_rng(seed).choice(x.shape[0], 8, replace=False)], **grids}
        fig = hl.plots.image_grid(rows, shape, title=f"{name}: learned generations, alpha={alpha:g}, t0={t0:g}")
        save_figure_atomic(fig, out / f"{tag}_grid.png")
        e_data = r.energy_data
        fig = spectrum_figure(r.energy, r.energy_se, r.energy_exact, r.energy_limit, e_data,
                              title=f"{name}: energy per Hermite order, alpha={alpha:g}, t0={t0:g}")
        save_figure_atomic(fig, out / f"{tag}_spectrum.png")
        runs.append(dict(alpha=alpha, seconds=round(seconds, 1), grid=f"{tag}_grid.png", spectrum=f"{tag}_spectrum.png",
                         **verdicts(r.energy, r.energy_se, r.energy_exact),
                         energy=np.asarray(r.energy).tolist(), energy_se=np.asarray(r.energy_se).tolist(),
                         energy_exact=np.asarray(r.energy_exact).tolist(), energy_limit=np.asarray(r.energy_limit).tolist(),
                         energy_data=e_data.tolist(),
                         loss_curve=np.asarray(r.loss_curve).tolist(), fit_seconds=r.fit_seconds,
                         sample_seconds=r.sample_seconds))
    payload = dict(data=name, n_images=int(x.shape[0]), dim=int(x.shape[1]), shape=list(shape), t0=t0,
                   generations=generations, n_particles=n, n_steps=n_steps, order=order, learner=repr(learner),
                   z_follow=Z_FOLLOW, seconds=round(time.perf_counter() - start, 1), runs=runs)
    _write_markdown(out / "report.md", payload)
    write_json_atomic(out / "report.json", payload)
    return payload


class LearnedRun(NamedTuple):
    """Per-generation results of :func:`run_learned` (leading axis: generation ``i = 1..N``)."""

    energy: np.ndarray  # (N, order+1) unbiased energies of the samples
    energy_se: np.ndarray  # (N, order+1) their standard errors
    energy_exact: np.ndarray  # (N, order+1) f_m(i)^2 E_m(p_data)
    energy_limit: np.ndarray  # (order+1,) lambda_m^2 E_m(p_data)
    energy_data: np.ndarray  # (order+1,) E_m(p_data), exact
    loss_curve: np.ndarray  # (N, blocks) the learner's training loss curve
    fit_seconds: list
    sample_seconds: list
    particles: Any  # the last generation's samples


def run_learned(key, data, alpha: float, t0: float, generations: int, n: int, learner, *, T: float | None = None,
                n_steps: int = 200, order: int = 6, n_energy: int = 2000, progress: bool = True, callback=None) -> LearnedRun:
    """The retraining loop of :func:`hermite_limit.retrain` through the same :class:`Learner` protocol, recording
    only what the image job needs: the energy spectrum of each generation's samples and its closed form.

    ``retrain`` also records sliced / marginal W2 to the closed-form generation and to the limit; for an
    empirical law of N images those are exact W2 against structured laws of ``N (i + 1)`` (and, for the limit,
    about ``20 N``) pushed point masses, per slice and per coordinate, which cost more than a generation's
    training and sampling at this size. Here: for ``i = 0..N-1`` the training set is ``round(alpha n)`` fresh draws of ``p_data`` and the rest
    drawn without replacement from the previous samples; ``learner.fit`` gives the score; :func:`reverse_sample`
    (Euler-Maruyama, uniform grid, start drawn from ``P_T`` of the training law) gives ``n`` samples. A
    non-finite sample stops the run with a RuntimeError naming the generation.
    """
    import jax
    from tqdm.auto import tqdm

    from .. import attenuation, energy_spectrum
    from .._mixture import empirical
    from ..sampling._retrain import _one_generation
    from ..sampling._reverse import DEFAULT_T

    T = DEFAULT_T if T is None else float(T)
    m = np.arange(order + 1)
    with jax.enable_x64(True):
        e_data = np.asarray(energy_spectrum(data, order).energies)
        lam = np.asarray(attenuation(m, alpha, t0))
        state = learner.init(jax.random.fold_in(key, 10**6), data)
        model, particles = data, None
        out = {k: [] for k in ("energy", "energy_se", "energy_exact", "loss_curve", "fit_seconds", "sample_seconds")}
        for i in tqdm(range(generations), desc=f"learned images (alpha={alpha:g})", disable=not progress):
            keys = jax.random.split(jax.random.fold_in(key, i), 3)  # k_set, k_fit, k_sample
            step = _one_generation(i, keys, data, model, particles, alpha, t0, T, n, n_steps, learner, state,
                                   context=f"learned images (alpha={alpha:g})")
            learned, particles, state = step.learned, step.particles, step.learned.state
            out["fit_seconds"].append(step.fit_seconds)
            out["sample_seconds"].append(step.sample_seconds)
            model = empirical(particles)
            en = energy_spectrum(particles[:n_energy], order, method="samples")
            out["energy"].append(np.asarray(en.energies))
            out["energy_se"].append(np.asarray(en.errors))
            out["energy_exact"].append(_filter(m, alpha, t0, i + 1) ** 2 * e_data)
            out["loss_curve"].append(np.asarray(learned.info.get("loss_curve", [np.nan]), dtype=np.float64))
            if callback is not None:
                callback(i, particles)
    return LearnedRun(np.array(out["energy"]), np.array(out["energy_se"]), np.array(out["energy_exact"]), lam**2 * e_data,
                      e_data, np.array(out["loss_curve"]), out["fit_seconds"], out["sample_seconds"], particles)


def _filter(m, alpha: float, t0: float, i: int) -> np.ndarray:
    """``f_m(i)``: the factor ``hl.generation(data, alpha, t0, i)`` puts on every coefficient of order ``m``."""
    c = np.ones(len(m))
    rho = math.exp(-t0)
    for _ in range(i):
        c = rho ** np.asarray(m) * (alpha + (1 - alpha) * c)
    return c


def verdicts(energy, energy_se, energy_exact) -> dict:
    """Per generation and order ``m >= 1``: z-scores ``(E - E_exact) / se`` and where the learned spectrum follows.

    Returns ``z`` (N, order+1; NaN at m = 0, whose energy is 1 by definition), and the orders (1-based lists) that
    follow the filter in every generation, lie above it in some generation (and in none below), lie below it in
    some generation (and in none above), or switch.
    """
    e, se, ex = (np.asarray(a, dtype=np.float64) for a in (energy, energy_se, energy_exact))
    z = np.full(e.shape, np.nan)
    z[:, 1:] = (e[:, 1:] - ex[:, 1:]) / se[:, 1:]
    follow, above, below, mixed = [], [], [], []
    for m in range(1, e.shape[1]):
        hi, lo = bool(np.any(z[:, m] > Z_FOLLOW)), bool(np.any(z[:, m] < -Z_FOLLOW))
        (mixed if hi and lo else above if hi else below if lo else follow).append(m)
    return dict(z=np.where(np.isfinite(z), z, None).tolist(), follows=follow, above=above, below=below, mixed=mixed)


def spectrum_figure(energy, energy_se, energy_exact, energy_limit, energy_data, *, title: str = ""):
    """Left: learned energies per order (error bars: 2 se) against the closed form per generation, the limit and
    the data. Right: the effective filter ``sqrt(E_m(samples) / E_m(data))`` against ``f_m(i)``."""
    from ._figures import PALETTE, _plt

    plt = _plt()
    e, se, ex = (np.asarray(a, dtype=np.float64) for a in (energy, energy_se, energy_exact))
    lim, ed = np.asarray(energy_limit, dtype=np.float64), np.asarray(energy_data, dtype=np.float64)
    N, M = e.shape
    m = np.arange(M)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    a1.plot(m[1:], ed[1:], "k-", lw=1.5, label="data (exact)")
    a1.plot(m[1:], lim[1:], "k:", lw=1.5, label="limit (lambda_m^2 E_m)")
    for i in range(N):
        c = PALETTE[i % len(PALETTE)]
        a1.plot(m[1:], ex[i, 1:], "--", color=c, lw=1.2)
        a1.errorbar(m[1:] + 0.06 * (i - N / 2), e[i, 1:], yerr=2 * se[i, 1:], fmt="o", ms=3.5, color=c, capsize=2,
                    label=f"generation {i + 1}: learned (o) / closed form (--)")
        ok = ed[1:] > 0
        ratio = np.where(ok, np.clip(e[i, 1:], 0, None) / np.where(ok, ed[1:], 1.0), np.nan)
        a2.plot(m[1:], np.sqrt(ratio), "o", ms=3.5, color=c, label=f"generation {i + 1}")
        a2.plot(m[1:], np.sqrt(np.where(ok, ex[i, 1:] / np.where(ok, ed[1:], 1.0), np.nan)), "--", color=c, lw=1.2)
    a1.set_yscale("log")
    a1.set_xlabel("total Hermite order m")
    a1.set_ylabel("E_m = sum over |n|=m of a_n^2")
    a1.legend(fontsize=7)
    a1.grid(True, which="both", alpha=0.3)
    a2.set_yscale("log")
    a2.set_xlabel("total Hermite order m")
    a2.set_ylabel("sqrt(E_m(samples) / E_m(data))")
    a2.set_title("effective filter (o) vs f_m(i) (--)", fontsize=10)
    a2.grid(True, which="both", alpha=0.3)
    a2.legend(fontsize=7)
    fig.suptitle(title or "Hermite energy of learned generations")
    return fig


def _fmt_orders(ms) -> str:
    return ", ".join(str(v) for v in ms) if ms else "none"


def _write_markdown(path: Path, p: dict) -> None:
    lines = [f"# Learned generations on {p['data']} against the closed form", "",
             f"{p['n_images']} images of {p['dim']} pixels in [-1, 1] (shape {tuple(p['shape'])}); t0 = {p['t0']:g}; "
             f"{p['generations']} generations of {p['n_particles']} samples (Euler-Maruyama, {p['n_steps']} steps); "
             f"learner {p['learner']}; wall time {p['seconds']:.0f} s.", "",
             "Energy per total Hermite order E_m of each generation's samples (unbiased U-statistic, se = its standard "
             "error) against the closed form for the empirical law, E_m(p_i) = f_m(i)^2 E_m(p_data). An order *follows "
             f"the filter* when |E_m - E_m(p_i)| <= {p['z_follow']:g} se in every generation.", ""]
    for r in p["runs"]:
        rel = [abs(se / e) if e else float("inf") for e, se in zip(r["energy"][-1], r["energy_se"][-1])]
        lines += [f"## alpha = {r['alpha']:g} ({r['seconds']:.0f} s)", "",
                  f"- follows the filter at orders: {_fmt_orders(r['follows'])}"
                  + (f" (relative standard error in the last generation: "
                     f"{', '.join(f'm={m}: {100 * rel[m]:.0f}%' for m in r['follows'])}; a large one means the test cannot "
                     f"tell, not that the filter is followed closely)" if r["follows"] else ""),
                  f"- above it (the network keeps or adds energy the filter removes) at orders: {_fmt_orders(r['above'])}",
                  f"- below it (the network smooths more than the filter) at orders: {_fmt_orders(r['below'])}",
                  f"- above in some generations, below in others: {_fmt_orders(r['mixed'])}", "",
                  "| generation | m | learned E_m | se | closed form E_m(p_i) | learned / closed form | z |",
                  "|---|---|---|---|---|---|---|"]
        for i, (e, se, ex, z) in enumerate(zip(r["energy"], r["energy_se"], r["energy_exact"], r["z"])):
            for m in range(1, len(e)):
                lines.append(f"| {i + 1} | {m} | {e[m]:.4g} | {se[m]:.2g} | {ex[m]:.4g} | {e[m] / ex[m]:.3g} | {z[m]:+.1f} |")
        lines += ["", "| generation | final DSM training loss (last 1% of steps) | training s | sampling s |",
                  "|---|---|---|---|"]
        for i, curve in enumerate(r["loss_curve"]):
            lines.append(f"| {i + 1} | {curve[-1]:.4g} | {r['fit_seconds'][i]:.1f} | {r['sample_seconds'][i]:.1f} |")
        lines += ["", f"![grid]({r['grid']})", "", f"![spectrum]({r['spectrum']})", ""]
    _write_text_atomic(path, "\n".join(lines) + "\n")


def _write_text_atomic(path: Path, text: str) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_cli(args) -> int:
    """``hermite-limit learned-images``: the digits (default) or a local CIFAR-10 folder."""
    from ..datasets import CIFAR10_SHAPE, digits_images, load_cifar10

    quick = bool(args.quick)
    if args.cifar10:
        images = load_cifar10(args.cifar10, "train", max_images=args.max_images or (500 if quick else 5000))
        shape, name = CIFAR10_SHAPE, "cifar10"
    else:
        images = digits_images()
        if args.max_images:
            images = images[: args.max_images]
        shape, name = (8, 8), "digits"
    import hermite_limit as hl

    steps = args.train_steps or (300 if quick else 2000)
    learner = hl.NeuralScore(width=args.width or (64 if quick else 256), depth=3, steps=steps)
    alphas = [float(a) for a in (args.alphas or ["0.1", "0.5"])]
    payload = learned_images(args.out, images, shape, name=name, alphas=alphas, t0=args.t0,
                             generations=args.generations or (2 if quick else 5), learner=learner,
                             n_steps=args.sampler_steps or (50 if quick else 200), order=args.order,
                             seed=args.seed, progress=not args.no_progress)
    print(f"learned-images: {name}, {len(payload['runs'])} runs in {payload['seconds']:.0f} s; report: "
          f"{Path(args.out) / 'report.md'}")
    for r in payload["runs"]:
        print(f"  alpha={r['alpha']:g}: follows the filter at orders {_fmt_orders(r['follows'])}; above at "
              f"{_fmt_orders(r['above'])}; below at {_fmt_orders(r['below'])}; mixed {_fmt_orders(r['mixed'])}")
    return 0
