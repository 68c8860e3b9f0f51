"""Figures of a :class:`Diagnosis` (matplotlib, object-oriented API; the backend is never set here)."""

from __future__ import annotations

import numpy as np


def _fig(n=1, size=(6.4, 4.2)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * n, size[1]), layout="constrained")
    axes = [fig.add_subplot(1, n, i + 1) for i in range(n)]
    return fig, axes


def trajectories_figure(diag):
    """Observed per-order attenuation ``f_m^(i)`` over generations (points, 2 se bars) against the fit (lines)."""
    att = diag.attenuation
    fig, (ax,) = _fig()
    gens = np.arange(diag.n_generations)
    for j, m in enumerate(att["orders"]):
        meas = np.asarray(att["measured"][j], dtype=float)
        se = np.asarray(att["measured_se"][j], dtype=float)
        line = ax.plot(gens, np.asarray(att["fitted"][j]), "-", lw=1.5, label=f"order {m} (fit)")[0]
        ax.errorbar(gens, meas, yerr=2 * se, fmt="o", ms=4, color=line.get_color(), capsize=2)
    ax.set_xlabel("generation")
    ax.set_ylabel("attenuation f_m (projection on the fitted data coefficients)")
    ax.set_title(f"Observed (points, 2 se) vs fitted per-order trajectories; chi2 p = {diag.p_value:.2g}")
    ax.legend(fontsize=8)
    return fig


def attenuation_figure(diag):
    """Measured attenuation of the last generation per order against the fitted filter and the limit filter."""
    from ._forecast import limit_filter

    att = diag.attenuation
    fig, (ax,) = _fig()
    orders = np.asarray(att["orders"])
    meas = np.array([row[-1] for row in att["measured"]], dtype=float)
    se = np.array([row[-1] for row in att["measured_se"]], dtype=float)
    fit = np.array([row[-1] for row in att["fitted"]], dtype=float)
    ax.errorbar(orders, meas, yerr=2 * se, fmt="o", capsize=3, label=f"measured, generation {diag.n_generations - 1}")
    ax.plot(orders, fit, "s-", label="fitted recursion")
    if diag.alpha is not None and diag.t0 is not None:
        mm = np.linspace(0, orders.max(), 200)
        a, t = diag.alpha, diag.t0
        x = np.exp(-mm * t)
        ax.plot(mm, a * x / (1 - (1 - a) * x), "--", label="limit filter lambda_m")
    ax.set_xlabel("total order m")
    ax.set_ylabel("attenuation")
    ax.set_title("Per-order attenuation: measured vs fitted filter")
    ax.legend(fontsize=8)
    return fig


def forecast_figure(diag):
    fc = diag.forecast
    fig, (a1, a2) = _fig(2)
    k = np.arange(fc.horizon + 1)
    a1.semilogy(k, np.maximum(fc.distance, 1e-16), label="distance to the limit D_k")
    a1.fill_between(k, np.maximum(fc.distance_interval[0], 1e-16), np.maximum(fc.distance_interval[1], 1e-16),
                    alpha=0.3, label="95% interval")
    a1.axhline(fc.within, color="k", ls=":", label=f"within {fc.within:g}")
    a1.axvline(diag.n_generations - 1, color="gray", ls="--", label="last observed")
    a1.set_xlabel("generation")
    a1.set_ylabel("D_k")
    a1.legend(fontsize=8)
    m = fc.orders[1:]
    a2.semilogy(m, np.maximum(fc.data_energies[1:], 1e-16), "o-", label="data (fitted)")
    lo, hi = fc.limit_energies_interval[:, 1:]
    a2.errorbar(m, fc.limit_energies[1:], yerr=[fc.limit_energies[1:] - lo, hi - fc.limit_energies[1:]], fmt="s",
                capsize=3, label="limit (95% interval)")
    a2.set_xlabel("total order m")
    a2.set_ylabel("Hermite energy E_m")
    a2.legend(fontsize=8)
    fig.suptitle("Forecast from the fitted parameters")
    return fig


def schedule_figure(ds):
    fig, (a1,) = _fig()
    i = np.arange(ds.times.size)
    a1.semilogy(i, ds.times, "o-", label=f"designed (err {ds.error:.3g})")
    for name, fam in ds.families.items():
        a1.semilogy(i, fam["times"], "--", label=f"{name} (err {fam['error']:.3g})")
    a1.axhline(ds.t_min, color="k", ls=":", label="t_min")
    a1.set_xlabel("generation i")
    a1.set_ylabel("t_i")
    a1.set_title(f"Schedules of equal cost {ds.budget:.3g} (sum log(T/t_i))")
    a1.legend(fontsize=8)
    return fig
