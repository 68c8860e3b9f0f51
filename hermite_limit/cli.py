"""The ``hermite-limit`` command line.

Every subcommand writes machine-readable JSON and PNGs into ``--out``. Bad input gives a one-line
error on stderr and exit status 2, and creates no output folder; a verification with a failed check
exits 1; Ctrl-C gives a one-line message and exit status 130. JAX and the numerical modules are
imported only when a subcommand runs, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention

# Options a --config TOML may hold for the data subcommands (same names as the flags, with _).
_DATA_KEYS = (
    "preset", "data", "alpha", "t0", "vp_eps", "beta_min", "beta_max", "ddpm_step", "ddpm_beta_start",
    "ddpm_beta_end", "ddpm_steps", "order", "generations", "seed", "schedule", "budget", "pcs", "tol",
)


# -- shared option handling -----------------------------------------------------------------


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """Options every data subcommand takes: the data, alpha and the truncation time, --config, --out.

    Options of one subcommand only are added by ``_add_generations``, ``_add_order`` and ``_add_seed``
    (or directly); ``_finish`` then records which keys its --config file may hold.
    """
    src = p.add_argument_group("data (one of)")
    src.add_argument("--preset", help="built-in data: seed-gmm10, bimodal-1d, ring-2d, digits")
    src.add_argument("--data", metavar="FILE", help="mixture (.json/.toml: weights, means, covariances) or samples (.npy/.npz/.csv)")
    rt = p.add_argument_group("retraining")
    rt.add_argument("--alpha", type=float, help="fresh-data fraction in [0, 1] (default 0.5)")
    rt.add_argument("--t0", type=float, help="truncation OU time per generation (default 0.1)")
    rt.add_argument("--vp-eps", type=float, help="VP-SDE early-stopping time instead of --t0")
    rt.add_argument("--beta-min", type=float, help="VP beta_min (default 0.1)")
    rt.add_argument("--beta-max", type=float, help="VP beta_max (default 20)")
    rt.add_argument("--ddpm-step", type=int, help="DDPM early-stopping step instead of --t0 (linear betas)")
    rt.add_argument("--ddpm-beta-start", type=float, help="DDPM beta_1 (default 1e-4)")
    rt.add_argument("--ddpm-beta-end", type=float, help="DDPM beta_T (default 0.02)")
    rt.add_argument("--ddpm-steps", type=int, help="DDPM number of steps (default 1000)")
    p.add_argument("--config", metavar="FILE", help="TOML file holding any of this subcommand's options (names with _)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")


def _add_generations(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generations", type=int, help="number of generations N (default 20)")


def _add_order(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--order", type=int, help=f"highest Hermite order{what} (default 8)")


def _add_seed(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--seed", type=int, help=f"PRNG seed of {what} (default 0)")


def _finish(p: argparse.ArgumentParser, run, config_only: tuple[str, ...] = ()) -> None:
    """Set the subcommand's runner and the keys its --config file may hold: its own options (and
    ``config_only`` keys such as ``tol``), never another subcommand's."""
    own = {a.dest for a in p._actions} - {"help", "config", "out"}
    p.set_defaults(run=run, config_keys=tuple(sorted(own | set(config_only))))


def _options(args) -> dict:
    """Merge defaults < config file < command-line flags; return a plain dict of settings."""
    opts = {"alpha": 0.5, "t0": None, "beta_min": 0.1, "beta_max": 20.0, "ddpm_beta_start": 1e-4,
            "ddpm_beta_end": 0.02, "ddpm_steps": 1000, "generations": 20, "order": 8, "seed": 0, "tol": 1e-12,
            "pcs": 5}
    if getattr(args, "config", None):
        import tomllib

        path = Path(args.config)
        if not path.exists():
            raise ValueError(f"config file not found: {path}")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
        known = getattr(args, "config_keys", _DATA_KEYS)
        unknown = set(raw) - set(known)
        if unknown:
            raise ValueError(f"config file {path} has unknown keys {sorted(unknown)} for {args.command}; known: {sorted(known)}")
        opts.update(raw)
    for key in _DATA_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    return opts


def _resolve_t0(opts: dict) -> float:
    from . import _time

    given = [k for k in ("t0", "vp_eps", "ddpm_step") if opts.get(k) is not None]
    if len(given) > 1:
        raise ValueError(f"give one of --t0, --vp-eps, --ddpm-step; got {', '.join(given)}")
    if opts.get("vp_eps") is not None:
        t0 = float(_time.vp_to_ou_time(opts["vp_eps"], opts["beta_min"], opts["beta_max"]))
    elif opts.get("ddpm_step") is not None:
        betas = _time.ddpm_linear_betas(opts["ddpm_steps"], opts["ddpm_beta_start"], opts["ddpm_beta_end"])
        t0 = float(_time.ddpm_to_ou_time(betas, opts["ddpm_step"]))
    else:
        t0 = 0.1 if opts.get("t0") is None else opts["t0"]
    from ._validation import check_time

    return check_time(t0, "t0")


def _load(opts: dict):
    from . import datasets
    from ._io import load_data

    if (opts.get("preset") is None) == (opts.get("data") is None):
        raise ValueError("give exactly one of --preset NAME or --data FILE")
    if opts.get("preset") is not None:
        return datasets.preset(opts["preset"]), opts["preset"]
    return load_data(opts["data"]), str(opts["data"])


def _check_out(path) -> Path:
    """The output folder: refused if it names an existing file. Not created here: the first file
    written creates it, so a refused input leaves no folder behind."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder; {out} is a file")
    return out


def _setup(args):
    """Common start of the data subcommands: options, data, alpha, t0, output folder (every option
    validated before any work; the folder is created by the first file written)."""
    from ._validation import check_alpha, check_positive_int

    opts = _options(args)
    out = _check_out(args.out)
    data, source = _load(opts)
    alpha = check_alpha(opts["alpha"])
    t0 = _resolve_t0(opts)
    own = getattr(args, "config_keys", _DATA_KEYS)
    if "generations" in own:
        check_positive_int(opts["generations"], "generations", allow_zero=False)
    if "order" in own:
        _order(opts)
    if "schedule" in own:
        _schedule(opts, t0)
    if "pcs" in own:
        check_positive_int(opts["pcs"], "pcs", allow_zero=False)
    return opts, data, source, alpha, t0, out


# -- subcommands ----------------------------------------------------------------------------


def _limit(args) -> int:
    from . import _io, limit_distribution
    from .plots import law_panel

    opts, data, source, alpha, t0, out = _setup(args)
    lim = limit_distribution(data, alpha, t0, opts["tol"])
    payload = {
        "source": source, "alpha": alpha, "t0": t0, "n_terms": lim.n_terms, "tail_mass": lim.tail_mass,
        "w2_error_bound": lim.w2_error_bound, "n_components": lim.mixture.n_components, "dim": data.dim,
        "data_mean": _np(data.mean()), "limit_mean": _np(lim.mean()),
        "data_cov_trace": float(_np_trace(data.cov())), "limit_cov_trace": float(_np_trace(lim.cov())),
    }
    if lim.mixture.n_components * data.dim <= 200_000:
        payload["mixture"] = _io.mixture_to_json(lim.mixture)
    _io.write_json_atomic(out / "limit.json", payload)
    fig = law_panel([(data, "data"), (lim.mixture, "limit")], seed=opts["seed"],
                    title=f"Limit of retraining: alpha={alpha:g}, t0={t0:.4g}")
    _io.save_figure_atomic(fig, out / "limit.png")
    _image_outputs(data, opts, out, "limit", alpha, t0, opts["generations"], lim)
    print(f"limit: {lim.n_terms} terms, tail mass {lim.tail_mass:.2e}; wrote {out / 'limit.json'}, {out / 'limit.png'}")
    return 0


def _generations(args) -> int:
    import numpy as np

    from . import _io, limit_distribution
    from .trajectory import trajectory

    opts, data, source, alpha, t0, out = _setup(args)
    from ._validation import check_positive_int

    n = check_positive_int(opts["generations"], "generations", allow_zero=False)
    schedule = _schedule(opts, t0)
    traj = trajectory(data, alpha, schedule, n)
    _io.write_json_atomic(out / "generations.json", {"source": source, "alpha": alpha, **traj.to_json()})
    _io.save_figure_atomic(traj.figure(title=f"Exact retraining of {source}: alpha={alpha:g}, t0={t0:.4g}, schedule {schedule.name}"), out / "generations.png")
    constant = np.allclose(traj.times, traj.times[0], rtol=1e-14)
    lim = limit_distribution(data, alpha, float(traj.times[0]), opts["tol"]) if constant and alpha > 0 and opts.get("preset") == "digits" else None
    _image_outputs(data, opts, out, "generations", alpha, schedule, n, lim)
    print(f"generations: {n}; wrote {out / 'generations.json'}, {out / 'generations.png'}")
    return 0


def _spectrum(args) -> int:
    import numpy as np

    from . import _io
    from .hermite import attenuation, energy_spectrum, hermite_coefficients
    from .plots import attenuation_plot, energy_spectra_plot

    opts, data, source, alpha, t0, out = _setup(args)
    order = _order(opts)
    lim = _limit_law(data, alpha, t0, opts)
    lam = np.asarray(attenuation(np.arange(order + 1), alpha, t0))
    payload = {"source": source, "alpha": alpha, "t0": t0, "dim": data.dim, "order": order,
               "orders": list(range(order + 1)), "attenuation": lam.tolist(),
               "n_terms": lim.n_terms, "tail_mass": lim.tail_mass}
    if data.dim <= 3:
        cd, cl = hermite_coefficients(data, order), hermite_coefficients(lim, order)
        ed, el = np.asarray(cd.energies()), np.asarray(cl.energies())
        payload.update(
            method="coefficients (exact, every multi-index)",
            data_energies=ed.tolist(), limit_energies=el.tolist(),
            data_energy_errors=_energy_errors(cd, order).tolist(), limit_energy_errors=_energy_errors(cl, order).tolist(),
            coefficients={"indices": np.asarray(cd.indices).tolist(), "data": np.asarray(cd.values).tolist(),
                          "limit": np.asarray(cl.values).tolist(), "data_errors": np.asarray(cd.errors).tolist(),
                          "limit_errors": np.asarray(cl.errors).tolist()},
        )
    else:
        sd = energy_spectrum(data, order)
        ed = np.asarray(sd.energies)
        if lim.mixture.n_components <= _MAX_DIRECT_SPECTRUM:
            sl = energy_spectrum(lim, order)
            el, el_err, how = np.asarray(sl.energies), np.asarray(sl.errors), "energy_spectrum of the limit mixture"
        else:  # thousands of components: E_m(p_inf) = lambda_m^2 E_m(p_data) exactly (Mehler)
            el, el_err, how = lam**2 * ed, lam**2 * np.asarray(sd.errors), "lambda_m^2 E_m(data)"
        payload.update(method=f"energy_spectrum (data: exact series; limit: {how})", data_energies=ed.tolist(),
                       limit_energies=el.tolist(), data_energy_errors=np.asarray(sd.errors).tolist(),
                       limit_energy_errors=el_err.tolist())
    payload["limit_energies_from_attenuation"] = (lam**2 * ed).tolist()
    _io.write_json_atomic(out / "spectrum.json", payload)
    energy_spectra_plot(data, [("limit p_inf", el)], order, path=out / "spectrum.png",
                        title=f"Hermite energy per order: alpha={alpha:g}, t0={t0:.4g}, d={data.dim}")
    attenuation_plot([alpha], [t0], max_order=max(order, 10), path=out / "attenuation.png")
    print(f"spectrum: orders 0..{order}; wrote {out / 'spectrum.json'}, {out / 'spectrum.png'}, {out / 'attenuation.png'}")
    return 0


def _forecast(args) -> int:
    from . import _io
    from ._validation import check_positive_int
    from .forecast import forecast

    opts, data, source, alpha, t0, out = _setup(args)
    n = check_positive_int(opts["generations"], "generations", allow_zero=False)
    budget = opts.get("budget", 0.05)
    fc = forecast(data, alpha, t0, n, budget, order=_order(opts), n_pcs=opts["pcs"])
    _io.write_json_atomic(out / "forecast.json", {"source": source, **fc.to_json()})
    fc.figure(path=out / "forecast.png")
    rec = fc.recommended
    print(f"forecast: constant t0 gives relative spectral error {fc.spectral_error[-1]:.3g} after {n} generations "
          f"(budget {fc.budget:g}); mildest schedule within budget: {rec['rule'] if rec else 'none in the families'}; "
          f"wrote {out / 'forecast.json'}, {out / 'forecast.png'}")
    return 0


_MAX_DIRECT_SPECTRUM = 4000


def _order(opts: dict) -> int:
    from ._validation import check_positive_int

    return check_positive_int(opts["order"], "order", allow_zero=False)


def _limit_law(data, alpha, t0, opts):
    from . import limit_distribution

    if alpha == 0:
        raise ValueError("alpha must be > 0 for a limit other than N(0, I); got alpha=0")
    return limit_distribution(data, alpha, t0, opts["tol"])


def _energy_errors(c, order: int):
    """Round-off/estimate bound on E_m from the coefficient errors: sum_{|n|=m} (2 |a_n| e_n + e_n^2)."""
    import numpy as np

    v, e = np.abs(np.asarray(c.values)), np.asarray(c.errors)
    per = 2 * v * e + e * e
    return np.bincount(np.asarray(c.order_of_index), weights=per, minlength=order + 1)[: order + 1]


def _image_outputs(data, opts, out: Path, prefix: str, alpha: float, schedule, n: int, lim) -> None:
    """For image presets: a grid of exact samples (data, some generations, the limit) and the spectrum."""
    import jax
    import numpy as np

    from . import generation
    from .plots import energy_spectra_plot, image_grid
    from .hermite import attenuation, energy_spectrum

    if opts.get("preset") != "digits":
        return
    shape, n_img = (8, 8), 8
    key = jax.random.key(opts["seed"])
    rows = {"data": np.asarray(data.sample(jax.random.fold_in(key, 0), n_img))}
    for k in sorted({1, max(1, n // 2), n}):
        rows[f"generation {k}"] = np.asarray(generation(data, alpha, schedule, k).sample(jax.random.fold_in(key, k + 1), n_img))
    if lim is not None:
        rows["limit"] = np.asarray(lim.sample(jax.random.fold_in(key, 10_000), n_img))
    image_grid(rows, shape, path=out / f"{prefix}_images.png", title=f"Exact samples, alpha={alpha:g}")
    order = min(_order(opts), 12)
    ed = np.asarray(energy_spectrum(data, order).energies)
    series = []
    if lim is not None:
        series.append(("limit p_inf (lambda_m^2 E_m)", np.asarray(attenuation(np.arange(order + 1), alpha, lim.t0)) ** 2 * ed))
    from .hermite import schedule_attenuation

    series.append((f"generation {n}", np.asarray(schedule_attenuation(np.arange(order + 1), alpha, schedule, n)) ** 2 * ed))
    energy_spectra_plot(ed, series, order, path=out / f"{prefix}_spectrum.png",
                        title="Hermite energy of the digit images (exact, empirical law)")


def _schedule(opts: dict, t0: float):
    from . import _time

    name = opts.get("schedule") or "constant"
    builders = {"constant": _time.constant, "harmonic": _time.harmonic,
                "geometric": lambda t: _time.geometric(t, 0.8), "power-law": lambda t: _time.power_law(t, 0.5)}
    if name not in builders:
        raise ValueError(f"schedule must be one of {sorted(builders)}; got schedule={name!r}")
    return builders[name](t0)


def _verify(args) -> int:
    from .checks import ReportWriter, VerifyConfig, run_checks

    overrides = {"seed": args.seed, "quick": True if args.quick else None}
    if args.config:
        config = VerifyConfig.from_toml(args.config, **overrides)
    else:
        config = VerifyConfig(**{k: v for k, v in overrides.items() if v is not None})
    out = _check_out(args.out)
    start = time.perf_counter()
    # figures go to a hidden staging folder as each check finishes; Ctrl-C or an error removes it
    # (and the output folder, if this run created it and it is empty); a killed run's is removed next time
    with ReportWriter(out) as writer:
        progress = not args.no_progress and sys.stderr.isatty()
        records, _ = run_checks(config, progress=progress, writer=writer)
        meta = {"config": str(config), "seconds": round(time.perf_counter() - start, 1)}
        path = writer.commit(meta)
    failed = [r.name for r in records if not r.passed]
    print(f"{len(records) - len(failed)}/{len(records)} checks passed; report: {path}")
    for name in failed:
        print(f"FAILED: {name}")
    return EXIT_CHECK_FAILED if failed else 0


def _np(x):
    import numpy as np

    return np.asarray(x).tolist()


def _np_trace(x):
    import numpy as np

    return np.trace(np.asarray(x))


# -- parser ---------------------------------------------------------------------------------


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (the full usage is one --help away)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _OneLineParser(
        prog="hermite-limit",
        description="Where recursive retraining of a diffusion model ends up: closed forms, spectra, checks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    limit = sub.add_parser(
        "limit", help="the closed-form limit of given data", formatter_class=fmt,
        description="Compute p_inf = sum_k alpha (1-alpha)^{k-1} P_{k t0} p_data; write limit.json and limit.png.",
        epilog="examples:\n  hermite-limit limit --preset bimodal-1d --alpha 0.3 --t0 0.05 --out lim\n"
        "  hermite-limit limit --data samples.npy --alpha 0.5 --vp-eps 1e-3 --out lim",
    )
    _add_data_options(limit)
    _add_seed(limit, "the plotted samples")
    _finish(limit, _limit, config_only=("tol",))

    gens = sub.add_parser(
        "generations", help="the exact trajectory p_0..p_n for a schedule", formatter_class=fmt,
        description="Exact laws of every generation; write generations.json and generations.png.",
        epilog="examples:\n  hermite-limit generations --preset ring-2d --alpha 0.2 --generations 30 --out g\n"
        "  hermite-limit generations --preset bimodal-1d --schedule harmonic --t0 0.2 --out g",
    )
    _add_data_options(gens)
    _add_generations(gens)
    gens.add_argument("--schedule", help="constant (default), harmonic, geometric (ratio 0.8), power-law (power 0.5)")
    _add_order(gens, " of generations_spectrum.png (preset digits; at most 12)")
    _add_seed(gens, "the image samples (preset digits)")
    _finish(gens, _generations, config_only=("tol",))

    spec = sub.add_parser(
        "spectrum", help="Hermite energy spectrum of data and limit, and the attenuation", formatter_class=fmt,
        description="Hermite energy per total order E_m = sum_{|n|=m} a_n^2 of the data and of the limit, and the "
        "attenuation lambda_m; every coefficient to --order for d <= 3, energies (energy_spectrum) above. "
        "Writes spectrum.json, spectrum.png and attenuation.png.",
        epilog="examples:\n  hermite-limit spectrum --preset bimodal-1d --alpha 0.3 --t0 0.05 --order 20 --out spec\n"
        "  hermite-limit spectrum --preset digits --order 6 --out spec\n"
        "  hermite-limit spectrum --data samples.npy --alpha 0.5 --ddpm-step 10 --out spec",
    )
    _add_data_options(spec)
    _add_order(spec)
    _finish(spec, _spectrum, config_only=("tol",))

    fc = sub.add_parser(
        "forecast", help="what N generations will do, and the mildest schedule within a budget", formatter_class=fmt,
        description="Forecast --generations N of retraining with constant --t0: the loss 1 - f_m of every Hermite "
        "order, distances to the data per generation, the energy lost along each principal component, and the "
        "mildest annealed schedule (power-law t0/(i+1)^p or geometric t0 r^i) whose relative spectral error "
        "sum_m (1-f_m)^2 E_m / sum_m E_m (orders 1..--order) after N generations is <= --budget. "
        "Writes forecast.json and forecast.png (a one-page summary).",
        epilog="examples:\n  hermite-limit forecast --preset bimodal-1d --alpha 0.3 --t0 0.1 --generations 20 --budget 0.05 --out fc\n"
        "  hermite-limit forecast --data samples.npy --alpha 0.5 --vp-eps 1e-3 --budget 0.01 --out fc\n"
        "  hermite-limit forecast --preset digits --generations 10 --order 6 --out fc",
    )
    _add_data_options(fc)
    _add_generations(fc)
    _add_order(fc)
    fc.add_argument("--budget", type=float, help="allowed relative spectral error after N generations, in (0, 1] (default 0.05)")
    fc.add_argument("--pcs", type=int, help="principal components reported (default 5)")
    _finish(fc, _forecast)

    verify = sub.add_parser(
        "verify", help="check every theorem numerically and write a report", formatter_class=fmt,
        description="Run every check; write DIR/report.json, DIR/report.md and PNGs. Exit 0 only if all pass.",
        epilog="examples:\n  hermite-limit verify --out verify-out\n  hermite-limit verify --quick --out /tmp/v --seed 3\n"
        "  hermite-limit verify --config my.toml --out v   (keys: alphas, t0, generations, seed, quick, only)",
    )
    verify.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    verify.add_argument("--quick", action="store_true", help="smaller sizes: fewer generations, particles and orders")
    verify.add_argument("--seed", type=int, default=None, help="PRNG seed (default 0)")
    verify.add_argument("--config", metavar="FILE", help="TOML file with the same keys as the options")
    verify.add_argument("--no-progress", action="store_true", help="hide the progress bar (shown only when stderr is a terminal)")
    verify.set_defaults(run=_verify)

    img = sub.add_parser(
        "learned-images", help="retrain a neural score on images; spectra against the closed form", formatter_class=fmt,
        description="Retrain hl.NeuralScore on the 8x8 digits (or a local CIFAR-10 folder) for each alpha; write image "
        "grids per generation, the Hermite energy per total order of each generation's samples against the closed "
        "form for the empirical law, report.md and report.json.",
        epilog="examples:\n  hermite-limit learned-images --out img\n  hermite-limit learned-images --quick --out /tmp/img\n"
        "  hermite-limit learned-images --cifar10 ~/data/cifar-10-batches-py --max-images 2000 --out cifar",
    )
    img.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    img.add_argument("--cifar10", metavar="FOLDER", help="CIFAR-10 python batches (data_batch_1..5) instead of the digits")
    img.add_argument("--max-images", type=int, help="use the first N images (default all digits; 5000 CIFAR-10)")
    img.add_argument("--alphas", nargs="+", help="fresh-data fractions (default 0.1 0.5)")
    img.add_argument("--t0", type=float, default=0.1, help="truncation OU time (default 0.1)")
    img.add_argument("--generations", type=int, help="generations (default 5; 2 with --quick)")
    img.add_argument("--train-steps", type=int, help="DSM steps per generation (default 2000; 300 with --quick)")
    img.add_argument("--width", type=int, help="MLP width (default 256; 64 with --quick)")
    img.add_argument("--sampler-steps", type=int, help="Euler-Maruyama steps (default 200; 50 with --quick)")
    img.add_argument("--order", type=int, default=6, help="highest Hermite order of the spectra (default 6)")
    img.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    img.add_argument("--quick", action="store_true", help="small sizes (a smoke run; numbers not meaningful)")
    img.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    img.set_defaults(run=_learned_images)
    _add_diagnose_parser(sub)
    return parser


def _add_diagnose_parser(sub) -> None:
    """The `diagnose` subcommand (its work lives in hermite_limit._diagnose, imported when it runs)."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "diagnose", help="estimate alpha and t0 of a retraining pipeline from its generations", formatter_class=fmt,
        description="Fit a^{i+1}_n = rho^|n| (alpha a^data_n + (1 - alpha) a^i_n) to the Hermite coefficients of every "
        "generation (errors in variables, chi-square goodness of fit), forecast the limit, invert the filter and "
        "design a schedule. Inputs: .npy/.npz/.csv sample files or folders of PNG images (8-bit pixel v -> v / 127.5 - 1 (in [-1, 1]), or "
        "--scale/--shift). Writes diagnosis.json, report.md and figures.",
        epilog="examples:\n  hermite-limit diagnose gen0.npy gen1.npy gen2.npy gen3.npy --out diag\n"
        "  hermite-limit diagnose g0/ g1/ g2/ --order 2 --data real.npy --out diag   (folders of PNGs)",
    )
    p.add_argument("generations", nargs="+", metavar="GEN", help="samples of generation 0, 1, ... (file or PNG folder)")
    p.add_argument("--data", metavar="FILE", help="separate fresh-data samples (default: generation 0 is the data)")
    p.add_argument("--order", type=int, default=4, help="highest total Hermite order (default 4)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--scale", type=float, help="PNG pixels: x = v * scale + shift instead of v / 127.5 - 1")
    p.add_argument("--shift", type=float, help="PNG pixels: see --scale")
    p.add_argument("--per-generation-t", action="store_true", help="fit one t_i per generation")
    p.add_argument("--schemes", action="store_true", help="compare fresh / replace / accumulate")
    p.add_argument("--bootstrap", type=int, default=0, metavar="B", help="bootstrap replicates as a check (default 0)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed for bootstrap and forecast draws (default 0)")
    p.add_argument("--beta-min", type=float, default=0.1, help="VP beta_min for the eps conversion (default 0.1)")
    p.add_argument("--beta-max", type=float, default=20.0, help="VP beta_max (default 20)")
    p.add_argument("--horizon", type=int, default=50, help="forecast and designed-schedule generations (default 50)")
    p.add_argument("--t-min", type=float, default=1e-3, help="smallest truncation time of the design (default 1e-3)")
    p.set_defaults(run=_diagnose)


def _diagnose(args) -> int:
    from ._diagnose._cli import run

    return run(args)


def _learned_images(args) -> int:
    from .checks._images import run_cli

    return run_cli(args)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 failed check, 2 bad input, 130 Ctrl-C)."""
    command = "hermite-limit"
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a one-line usage error already printed
            return int(exc.code or 0)
        command = f"hermite-limit {args.command}"
        return args.run(args)
    except ValueError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if "matplotlib.pyplot" in sys.modules:  # figures are saved; free them (main may run many times in-process)
            sys.modules["matplotlib.pyplot"].close("all")


if __name__ == "__main__":
    sys.exit(main())
