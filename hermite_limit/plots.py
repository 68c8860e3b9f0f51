"""Figures for people: each function returns a matplotlib Figure and saves it when given ``path``.

Colours are the Okabe-Ito palette (colour-blind safe); every axis is labelled; axes that count (Hermite
orders, generations, components) have integer ticks; legends sit outside the axes, never over the data,
and name every dashed or dotted line.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._io import save_figure_atomic
from .checks._figures import PALETTE, _plt, integer_ticks, legend_outside


def _finish(fig, path):
    if path is not None:
        save_figure_atomic(fig, path)
    return fig


# -- helpers shared by the gallery --------------------------------------------------------------


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _positive(y):
    """NaN where ``y <= 0`` so that log axes skip zero or negative entries instead of failing."""
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)


def _mixture_of(dist):
    inner = getattr(dist, "mixture", None)
    return inner if inner is not None else dist


def energies_of(dist, order: int) -> np.ndarray:
    """Hermite energies ``E_m = sum_{|n|=m} a_n^2`` for ``m = 0..order``.

    A mixture in ``d <= 3`` goes through ``hermite_coefficients(...).energies()`` (every coefficient,
    exactly); larger ``d`` through ``energy_spectrum`` (exact for mixtures, the unbiased U-statistic for
    a samples array). A 1-D array of length ``order + 1`` is taken as precomputed energies.
    """
    from ._mixture import GaussianMixture
    from .hermite import energy_spectrum, hermite_coefficients

    dist = _mixture_of(dist)
    if isinstance(dist, GaussianMixture):
        if dist.dim <= 3:
            return np.asarray(hermite_coefficients(dist, order).energies())
        return np.asarray(energy_spectrum(dist, order).energies)
    arr = np.asarray(dist, dtype=float)
    if arr.ndim == 1 and arr.size == order + 1:
        return arr
    return np.asarray(energy_spectrum(arr, order).energies)


def _plot_densities(ax, laws, x=None):
    """1-D densities of ``(law, label)`` pairs on one axis; a law labelled ``limit...`` is drawn dashed."""
    mixtures = [(_mixture_of(g), label) for g, label in laws]
    if x is None:
        sd = [np.sqrt(np.asarray(g.full_covs())[:, 0, 0] + 1e-12) for g, _ in mixtures]
        lo = min(float(np.min(np.asarray(g.means)[:, 0] - 4 * s)) for (g, _), s in zip(mixtures, sd))
        hi = max(float(np.max(np.asarray(g.means)[:, 0] + 4 * s)) for (g, _), s in zip(mixtures, sd))
        x = np.linspace(lo, hi, 800)
    for i, (g, label) in enumerate(mixtures):
        is_limit = str(label).startswith("limit")
        if g.has_density():
            ax.plot(x, np.exp(np.asarray(g.logpdf(x[:, None]))), color=_colour(i), label=label,
                    lw=2.6 if is_limit else 1.8, ls="--" if is_limit else "-")
        else:
            ax.hist(np.asarray(g.means)[:, 0], bins=60, density=True, alpha=0.4, color=_colour(i), label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("probability density")
    ax.grid(True, alpha=0.3)
    legend_outside(ax)


def law_panel(laws: Sequence[tuple], *, seed: int = 0, n_samples: int = 3000, title: str = "", kind: str = "auto",
              path=None):
    """Show several ``(law, label)`` pairs side by side: densities (d = 1), density contours (d = 2), or
    samples on the first two principal axes of the first law (d > 2).

    ``kind``: ``"auto"`` (contours in 2-D when the law has a density, else samples), ``"contour"`` or
    ``"samples"``. Samples use ``jax.random.fold_in(jax.random.key(seed), i)`` for the i-th law.
    """
    if kind not in ("auto", "contour", "samples"):
        raise ValueError(f"kind must be one of ('auto', 'contour', 'samples'); got kind={kind!r}")
    import jax

    plt = _plt()
    d = laws[0][0].dim
    if d == 1:
        fig, ax = plt.subplots(figsize=(8, 3.8), constrained_layout=True)
        _plot_densities(ax, laws)
        ax.set_title(title)
        return _finish(fig, path)
    fig, axes = plt.subplots(1, len(laws), figsize=(3.6 * len(laws), 3.6), constrained_layout=True, squeeze=False)
    first = laws[0][0]
    _, V = np.linalg.eigh(np.asarray(first.cov()))
    basis = V[:, ::-1][:, :2] if d > 2 else np.eye(2)
    key = jax.random.key(seed)
    samples = [np.asarray(g.sample(jax.random.fold_in(key, i), n_samples)) @ basis for i, (g, _) in enumerate(laws)]
    allpts = np.concatenate(samples)
    lo, hi = np.percentile(allpts, 0.5, axis=0), np.percentile(allpts, 99.5, axis=0)
    for i, (ax, (g, label), pts) in enumerate(zip(axes[0], laws, samples)):
        if d == 2 and kind != "samples" and _mixture_of(g).has_density():
            gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
            dens = np.exp(np.asarray(g.logpdf(np.stack([gx.ravel(), gy.ravel()], 1)))).reshape(gx.shape)
            ax.contourf(gx, gy, dens, levels=12, cmap="viridis")
        else:
            ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.35, color=PALETTE[i % 8])
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_title(label)
        ax.set_xlabel("x1" if d == 2 else "PC 1")
        ax.set_ylabel("x2" if d == 2 else "PC 2")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def trajectory_figure(traj, path=None, *, title: str = ""):
    """Distances of each generation to the data (and to the limit) against generation.

    ``title``: say which data, alpha and t0 (the command line's ``generations.png`` does).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.4, 4), constrained_layout=True)
    n = np.arange(len(traj.mean_error))

    def positive(y):  # log axis: generation 0 is at distance 0 from the data
        y = np.asarray(y, dtype=float)
        return np.where(y > 0, y, np.nan)

    ax.plot(n, positive(traj.gelbrich_to_data), "o-", color=PALETTE[0], label="Gelbrich W2 lower bound to data")
    if np.any(np.isfinite(np.asarray(traj.w2_pc1_to_data, dtype=float))):
        ax.plot(n, positive(traj.w2_pc1_to_data), "s-", color=PALETTE[1], label="exact W2 to data on PC 1")
    if traj.w2_pc1_to_limit is not None:
        ax.plot(n, positive(traj.w2_pc1_to_limit), "^-", color=PALETTE[2], label="exact W2 to limit on PC 1")
    ax.set_yscale("log")
    ax.set_xlabel("generation n")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("distance")
    ax.set_title(title or "Exact retraining trajectory")
    legend_outside(ax)
    ax.grid(True, alpha=0.3)
    return _finish(fig, path)


# -- the user-facing gallery ----------------------------------------------------------------------


def panel_2d(laws: Sequence[tuple], *, kind: str = "contour", seed: int = 0, n_samples: int = 3000, title: str = "",
             path=None):
    """Two-dimensional panels of ``(law, label)`` pairs: density contours (``kind="contour"``) or samples
    (``kind="samples"``); data of higher dimension is shown on the first law's top two principal axes.
    A thin front to :func:`law_panel` for d >= 2."""
    if not laws:
        raise ValueError("laws must hold at least one (law, label) pair")
    d = laws[0][0].dim
    if d < 2:
        raise ValueError(f"panel_2d needs laws of dimension >= 2; got dim={d} (use densities_1d)")
    return law_panel(laws, seed=seed, n_samples=n_samples, title=title, kind=kind, path=path)


def attenuation_plot(alphas: Sequence[float], t0s: Sequence[float], *, max_order: int = 60, path=None):
    """Limit attenuation ``lambda_m`` against total order ``m`` for every (alpha, t0), log y.

    Colour is alpha, line style is t0; the half-power order ``ln(1 + alpha) / t0`` (``lambda = 1/2``) is
    marked with a dot on each curve.
    """
    from .hermite import attenuation, half_power_order

    plt = _plt()
    alphas, t0s = list(np.atleast_1d(alphas)), list(np.atleast_1d(t0s))
    styles = ["-", "--", ":", "-."]
    m = np.arange(0, int(max_order) + 1)
    fig, ax = plt.subplots(figsize=(8.6, 4.4), constrained_layout=True)
    for i, a in enumerate(alphas):
        for j, t0 in enumerate(t0s):
            lam = np.asarray(attenuation(m, a, t0))
            ax.plot(m, _positive(lam), ls=styles[j % len(styles)], color=_colour(i), lw=1.8,
                    label=f"alpha={a:g}, t0={t0:g}")
            if a > 0:
                mh = half_power_order(a, t0)
                if mh <= max_order:
                    ax.plot([mh], [0.5], "o", color=_colour(i), ms=6, mec="black", mew=0.6)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":", label="lambda_m = 1/2")
    ax.plot([], [], "o", color="grey", mec="black", label="half-power order ln(1+alpha)/t0")
    ax.set_yscale("log")
    ax.set_xlabel("total Hermite order m")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("attenuation lambda_m = a_m(p_inf) / a_m(p_data)")
    ax.set_title("Retraining is a low-pass filter on Hermite modes")
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax, ncol=2 if len(alphas) * len(t0s) > 12 else 1)
    return _finish(fig, path)


def energy_spectra_plot(data, others, order: int, *, title: str = "", path=None):
    """Hermite energy per total order ``E_m = sum_{|n|=m} a_n^2`` of the data and of other laws (log y).

    ``others``: a law (labelled "limit") or a list of ``(label, law)``; a law may also be a samples array
    or a precomputed energy vector of length ``order + 1``. Energies come from :func:`energies_of`
    (all coefficients for d <= 3, ``energy_spectrum`` above).
    """
    plt = _plt()
    if not isinstance(others, (list, tuple)):
        others = [("limit", others)]
    series = [("data", energies_of(data, order))] + [(label, energies_of(dist, order)) for label, dist in others]
    m = np.arange(order + 1)
    fig, ax = plt.subplots(figsize=(8.2, 4.2), constrained_layout=True)
    markers = "osD^v<>p"
    floor = 1e-14 * max(float(np.max(np.abs(e))) for _, e in series)  # round-off zeros (symmetric laws)
    for i, (label, e) in enumerate(series):
        ax.plot(m, _positive(np.where(np.abs(e) > floor, e, 0.0)), marker=markers[i % len(markers)], ls="-" if i == 0 else "--", color=_colour(i),
                label=label, lw=1.8)
    ax.set_yscale("log")
    ax.set_xlabel("total Hermite order m")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("energy E_m = sum over |n|=m of a_n^2")
    ax.set_title(title or "Hermite energy spectrum")
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax)
    return _finish(fig, path)


def mode_error_plot(errors, rates, *, modes=None, title: str = "", ylabel: str = "|a_m(p_n) - a_m(p_inf)|",
                    path=None):
    """Per-mode error against generation (markers) with the predicted geometric decay (lines).

    ``errors``: array (generations + 1, n_modes) (or a dict mode -> sequence); ``rates``: the predicted
    per-generation contraction of each mode, e.g. ``(1 - alpha) rho^m``; the line for mode m is
    ``errors[0, m] * rates[m]^n``.
    """
    plt = _plt()
    if isinstance(errors, dict):
        modes = list(errors) if modes is None else list(modes)
        errors = np.stack([np.asarray(errors[k], dtype=float) for k in modes], axis=1)
    errors = np.asarray(errors, dtype=float)
    if errors.ndim == 1:
        errors = errors[:, None]
    rates = np.atleast_1d(np.asarray(rates, dtype=float))
    if rates.size != errors.shape[1]:
        raise ValueError(f"rates must have one entry per mode ({errors.shape[1]}); got {rates.size}")
    modes = list(range(errors.shape[1])) if modes is None else list(modes)
    n = np.arange(errors.shape[0])
    fig, ax = plt.subplots(figsize=(8.6, 4.2), constrained_layout=True)
    for j, mode in enumerate(modes):
        c = _colour(j)
        ax.plot(n, _positive(errors[:, j]), "o", color=c, ms=5, label=f"m={mode}: exact")
        ax.plot(n, _positive(errors[0, j] * rates[j] ** n), "-", color=c, lw=1.3, alpha=0.8,
                label=f"m={mode}: predicted rate {rates[j]:.3g}^n")
    ax.set_yscale("log")
    ax.set_xlabel("generation n")
    integer_ticks(ax.xaxis)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Per-mode error: high orders converge (and forget) fastest")
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax, fontsize=7, ncol=2 if len(modes) > 8 else 1)
    return _finish(fig, path)


def densities_1d(data, generations: dict, limit=None, *, title: str = "", path=None):
    """One-dimensional densities of the data, some generations (``{n: law}``) and the limit."""
    plt = _plt()
    laws = [(data, "data (generation 0)")] + [(g, f"generation {n}") for n, g in sorted(generations.items())]
    if limit is not None:
        laws.append((limit, "limit p_inf"))
    if any(_mixture_of(g).dim != 1 for g, _ in laws):
        raise ValueError("densities_1d needs one-dimensional laws; use panel_2d or pc_panels")
    fig, ax = plt.subplots(figsize=(8.4, 4.0), constrained_layout=True)
    _plot_densities(ax, laws)
    ax.set_title(title or "Densities along retraining")
    return _finish(fig, path)


def pc_panels(samples: dict, data, *, title: str = "", max_points: int = 2000, path=None):
    """Grid of sample panels on the data's top two principal components: rows alpha, columns generation.

    ``samples``: ``{alpha: {generation: (N, d) array}}``; ``data``: (N, d) samples (or a mixture) giving
    the shared PC basis, drawn in grey in every panel for reference.
    """
    plt = _plt()
    from ._mixture import GaussianMixture

    data = _mixture_of(data)
    ref = np.asarray(data.means) if isinstance(data, GaussianMixture) else np.asarray(data, dtype=float)
    centre = ref.mean(axis=0)
    cov = np.cov(ref.T) if not isinstance(data, GaussianMixture) else np.asarray(data.cov())
    _, V = np.linalg.eigh(np.atleast_2d(cov))
    basis = V[:, ::-1][:, :2]
    alphas = list(samples)
    gens = sorted({g for a in alphas for g in samples[a]})
    fig, axes = plt.subplots(len(alphas), len(gens), figsize=(3.0 * len(gens) + 0.6, 2.8 * len(alphas) + 0.6),
                             constrained_layout=True, squeeze=False, sharex=True, sharey=True)
    ref2 = (ref - centre) @ basis
    ref2 = ref2[: max_points]
    for i, a in enumerate(alphas):
        for j, g in enumerate(gens):
            ax = axes[i, j]
            ax.scatter(ref2[:, 0], ref2[:, 1], s=2, color="#BBBBBB", alpha=0.5, rasterized=True)
            if g in samples[a]:
                pts = (np.asarray(samples[a][g], dtype=float)[:max_points] - centre) @ basis
                ax.scatter(pts[:, 0], pts[:, 1], s=3, color=_colour(i), alpha=0.6, rasterized=True)
            if i == 0:
                ax.set_title(f"generation {g}")
            if j == 0:
                ax.set_ylabel(f"alpha={a:g}\nPC 2")
            if i == len(alphas) - 1:
                ax.set_xlabel("PC 1")
    fig.suptitle(title or "Samples on the data's principal components (grey: data)")
    return _finish(fig, path)


def discounted_contributions(alphas: Sequence[float], n_generations: int) -> np.ndarray:
    """Weights ``(1 - alpha)^{2 (N - 1 - i)}`` of generation i's error in ``D_N`` (rows alpha, columns i).

    The small-error accumulation: an error made m generations before N enters
    ``chi2(p_N || p_data)`` with weight ``(1 - alpha)^{2m}`` (a claim of the error-propagation paper;
    docs/conventions.md, "Error propagation").
    """
    a = np.asarray(alphas, dtype=float)[:, None]
    i = np.arange(int(n_generations))[None, :]
    return (1.0 - a) ** (2 * (int(n_generations) - 1 - i))


def contribution_heatmap(matrix, labels: Sequence, *, title: str = "", xlabel: str = "generation i of the error",
                         path=None):
    """Heat map of the contribution of generation i's error (columns) to ``D_N``, one row per label
    (alpha values, or any labels); log colour scale."""
    from matplotlib.colors import LogNorm

    plt = _plt()
    M = np.asarray(matrix, dtype=float)
    if M.ndim != 2 or M.shape[0] != len(labels):
        raise ValueError(f"matrix must have one row per label ({len(labels)}); got shape {M.shape}")
    pos = M[M > 0]
    vmin = max(float(pos.min()), float(pos.max()) * 1e-12) if pos.size else 1e-12
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.55 * len(labels)), constrained_layout=True)
    im = ax.imshow(np.where(M > 0, M, np.nan), aspect="auto", cmap="viridis", interpolation="nearest",
                   norm=LogNorm(vmin=vmin, vmax=float(pos.max()) if pos.size else 1.0))
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([f"alpha={v:g}" if isinstance(v, (int, float, np.floating)) else str(v) for v in labels])
    integer_ticks(ax.xaxis)
    ax.set_xlabel(xlabel)
    ax.set_title(title or f"Weight of each generation's error in D_N (N={M.shape[1]}; floor 1e-12 of the max)")
    fig.colorbar(im, ax=ax, label="contribution weight")
    return _finish(fig, path)


def schedule_comparison(data, alpha: float, schedules, n: int, modes: Sequence[int], *, path=None):
    """Per-mode error ``(1 - f_m^{(k)}) sqrt(E_m(data))`` against generation k for several schedules.

    ``schedules``: ``{label: schedule}`` or a list of ``hl.Schedule``; ``f_m^{(k)}`` is
    ``schedule_attenuation(m, alpha, schedule, k)``, the exact factor on every order-m coefficient
    (so the plotted value is the L2 norm of the order-m coefficient error). Colour is the schedule,
    line style the mode.
    """
    from .hermite import schedule_attenuation

    plt = _plt()
    if not isinstance(schedules, dict):
        schedules = {getattr(s, "name", str(s)): s for s in schedules}
    modes = [int(m) for m in modes]
    E = energies_of(data, max(modes))
    styles = ["-", "--", ":", "-."]
    ks = np.arange(int(n) + 1)
    fig, ax = plt.subplots(figsize=(9.0, 4.4), constrained_layout=True)
    for i, (label, sch) in enumerate(schedules.items()):
        f = np.stack([np.asarray(schedule_attenuation(np.asarray(modes, float), alpha, sch, int(k))) for k in ks])
        err = (1.0 - f) * np.sqrt(np.maximum(E[modes], 0.0))[None, :]
        for j, m in enumerate(modes):
            ax.plot(ks, _positive(err[:, j]), ls=styles[j % len(styles)], color=_colour(i), lw=1.7,
                    label=f"{label}, m={m}")
    ax.set_yscale("log")
    ax.set_xlabel("generation n")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("order-m error ||a_m(p_n) - a_m(p_data)||")
    ax.set_title(f"Annealed truncation schedules (alpha={alpha:g})")
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax, fontsize=7, ncol=2 if len(schedules) * len(modes) > 12 else 1)
    return _finish(fig, path)


def image_grid(flat_images, shape, rows=None, *, n_cols: int = 8, title: str = "", path=None):
    """Images in a grid, one row per label: e.g. data, some generations, the limit.

    ``flat_images``: ``{label: (N, prod(shape)) array}``, a list of such arrays, or one array split into
    ``rows`` rows; pixels in [-1, 1]. ``shape``: (H, W) or channel-major (C, H, W) (CIFAR: (3, 32, 32)).
    """
    from .datasets import images_to_grid

    plt = _plt()
    shape = tuple(int(s) for s in shape)
    if isinstance(flat_images, dict):
        labels, blocks = list(flat_images), [np.asarray(v) for v in flat_images.values()]
    elif isinstance(flat_images, (list, tuple)):
        blocks = [np.asarray(v) for v in flat_images]
        labels = list(rows) if rows is not None and not isinstance(rows, int) else [f"row {i}" for i in range(len(blocks))]
    else:
        arr = np.asarray(flat_images)
        r = rows if isinstance(rows, int) else (len(rows) if rows is not None else 1)
        blocks = np.array_split(arr, r)
        labels = list(rows) if rows is not None and not isinstance(rows, int) else [f"row {i}" for i in range(r)]
    size = int(np.prod(shape))
    for lab, b in zip(labels, blocks):
        if b.ndim != 2 or b.shape[1] != size:
            raise ValueError(f"images for {lab!r} must have shape (N, {size}) for shape {shape}; got {b.shape}")
    n_cols = max(1, min(int(n_cols), max(b.shape[0] for b in blocks)))
    fig, axes = plt.subplots(len(blocks), n_cols, figsize=(1.1 * n_cols + 1.4, 1.15 * len(blocks) + 0.5),
                             squeeze=False, constrained_layout=True)
    for i, (lab, b) in enumerate(zip(labels, blocks)):
        imgs = images_to_grid(b[:n_cols], shape)
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for sp in ax.spines.values():
                sp.set_visible(False)
            if j < len(imgs):
                ax.imshow(imgs[j], cmap="gray" if len(shape) == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if j == 0:
                ax.set_ylabel(str(lab), rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title or "Samples (pixels scaled from [-1, 1])")
    return _finish(fig, path)


def forecast_figure(fc, *, path=None):
    """One-page summary of a :class:`hermite_limit.forecast.Forecast`.

    Panels: (a) loss ``1 - f_m`` per order after N generations and in the limit; (b) distances to the
    data per generation; (c) fraction of Hermite energy lost per principal component (drawn for d >= 2
    only: in one dimension it is a single bar, the spectral error itself); then the relative spectral error
    of constant ``t0`` and of the mildest annealed schedules within the budget.
    """
    plt = _plt()
    m = np.asarray(fc.orders)
    N = fc.generations
    n = np.arange(N + 1)
    with_pcs = fc.dim > 1
    if with_pcs:
        fig, axes = plt.subplots(2, 2, figsize=(14, 8.4), constrained_layout=True)
        ax_a, ax_b, ax_c, ax_d = axes.ravel()
    else:
        fig = plt.figure(figsize=(14, 8.4), constrained_layout=True)
        panels = fig.subplot_mosaic([["a", "b"], ["d", "d"]])
        ax_a, ax_b, ax_c, ax_d = panels["a"], panels["b"], None, panels["d"]
    letter = iter("abcd")

    ax = ax_a
    ax.bar(m[1:], fc.mode_loss[1:], color=PALETTE[0], alpha=0.85, label=f"after N={N} generations")
    ax.plot(m[1:], 1.0 - np.asarray(fc.limit_attenuation)[1:], "o--", color=PALETTE[3], label="in the limit (n -> inf)")
    ax.set_xlabel("total Hermite order m")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("loss 1 - f_m (fraction of each coefficient lost)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"({next(letter)}) Which orders lose structure")
    legend_outside(ax)
    ax.grid(True, alpha=0.3)

    ax = ax_b
    ax.plot(n, _positive(fc.gelbrich_to_data), "o-", color=PALETTE[0], label="Gelbrich W2 (moments),\nlower bound")
    if fc.w2_pc1_to_data is not None:
        ax.plot(n, _positive(fc.w2_pc1_to_data), "s-", color=PALETTE[1], label="exact W2 on PC 1")
    ax.set_yscale("log")
    ax.set_xlabel("generation n (constant t0)")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("W2 distance to the data")
    legend_outside(ax)
    ax.set_title(f"({next(letter)}) Distance to the data per generation")
    ax.grid(True, alpha=0.3)

    if with_pcs:
        ax = ax_c
        k = len(fc.pc_energy_lost)
        ax.bar(np.arange(1, k + 1), fc.pc_energy_lost,
               color=[PALETTE[3] if i == fc.pc_rank[0] else PALETTE[5] for i in range(k)])
        for i, v in enumerate(fc.pc_energy_lost):
            ax.text(i + 1, v, f"{100 * v:.0f}%", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(np.arange(1, k + 1))
        ax.set_xlabel("principal component of the data")
        ax.set_ylabel(f"fraction of Hermite energy lost by N={N}")
        ax.set_ylim(0, max(1.05 * float(np.max(fc.pc_energy_lost)), 0.05))
        ax.set_title(f"({next(letter)}) Which directions lose structure first (orders 1..{fc.order})")
        ax.grid(True, axis="y", alpha=0.3)

    ax = ax_d
    ax.plot(n, _positive(fc.spectral_error), "o-", color=PALETTE[0], label=f"constant t0={fc.t0:g}")
    for i, (fam, s) in enumerate(fc.search.items()):
        if s["chosen"] is None:
            continue
        from .forecast import _factors, relative_spectral_error

        F = _factors(fc.alpha, np.asarray(s["chosen"]["times"]), fc.order)
        e = [relative_spectral_error(Fk, fc.data_energies) for Fk in F]
        ax.plot(n, _positive(e), "s-" if i == 0 else "^-", color=PALETTE[1 + i], label=f"{fam}: {s['chosen']['rule']}")
    ax.axhline(fc.budget, color=PALETTE[3], ls=":", label=f"budget {fc.budget:g}")
    ax.set_yscale("log")
    ax.set_xlabel("generation n")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("relative spectral error")
    rec = fc.recommended
    ax.set_title(f"({next(letter)}) Mildest schedule within budget: " + (rec["rule"] if rec else "none in the families"),
                 fontsize=10)
    legend_outside(ax)
    ax.grid(True, which="both", alpha=0.3)

    verdict = "meets" if fc.spectral_error[-1] <= fc.budget else "exceeds"
    fig.suptitle(f"Forecast: alpha={fc.alpha:g}, t0={fc.t0:.4g}, N={N}, d={fc.dim}. Constant t0 loses "
                 f"{100 * fc.spectral_error[-1]:.1f}% (relative spectral error, orders 1..{fc.order}): {verdict} budget "
                 f"{fc.budget:g}", fontsize=11)
    return _finish(fig, path)
