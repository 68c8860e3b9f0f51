"""Figures the checks draw (small, self-contained; the user-facing gallery is hermite_limit.plots)."""

from __future__ import annotations

import numpy as np

# Okabe-Ito: a colour-blind-safe qualitative palette
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _plt():
    """``matplotlib.pyplot``, imported on first use.

    The backend is never set here: a library must not change global state. Without a display
    matplotlib selects its non-interactive Agg backend by itself, so headless runs save figures as
    they are; in Jupyter ``%matplotlib inline`` (the default) stays in force.
    """
    import matplotlib.pyplot as plt

    return plt


def integer_ticks(axis) -> None:
    """Integer-only major ticks on an axis that counts (Hermite orders, generations, components)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def legend_outside(ax, handles=None, labels=None, **kwargs):
    """The legend to the right of the axes (its upper-left corner at the axes' upper-right corner), so it
    never covers data; the figures use ``constrained_layout``, which makes room for it."""
    kw = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, "fontsize": 8}
    kw.update(kwargs)
    args = () if handles is None else (handles, labels)
    return ax.legend(*args, **kw)


def rate_figure(values, rate: float, title: str, ylabel: str):
    """Distance against generation on a log scale, with the predicted geometric envelope."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 3.6), constrained_layout=True)
    n = np.arange(len(values))
    ax.semilogy(n, values, "o-", color=PALETTE[0], label="measured")
    ax.semilogy(n, values[0] * rate**n, "--", color=PALETTE[3], label=f"predicted rate {rate:.4g}$^n$")
    ax.set_xlabel("generation n")
    integer_ticks(ax.xaxis)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    legend_outside(ax)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def density_figure(laws, title: str, x=None):
    """One-dimensional densities of several laws on one axis."""
    plt = _plt()
    x = np.linspace(-5, 5, 600) if x is None else x
    fig, ax = plt.subplots(figsize=(7.2, 3.6), constrained_layout=True)
    for i, (law, label) in enumerate(laws):
        ax.plot(x, np.exp(np.asarray(law.logpdf(x))), color=PALETTE[i % len(PALETTE)], label=label,
                lw=2.5 if "limit" in label else 1.5, ls="--" if "limit" in label else "-")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title(title)
    legend_outside(ax)
    return fig
