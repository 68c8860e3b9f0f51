"""Figures for people: each function returns a matplotlib Figure and saves it when given ``path``.

Colours are the Okabe-Ito palette (colour-blind safe); every axis is labelled.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._io import save_figure_atomic
from .checks._figures import PALETTE, _plt


def _finish(fig, path):
    if path is not None:
        save_figure_atomic(fig, path)
    return fig


def law_panel(laws: Sequence[tuple], *, seed: int = 0, n_samples: int = 3000, title: str = "", path=None):
    """Show several laws side by side: densities (d = 1), contours (d = 2), or samples on the first two
    principal axes of the first law (d > 2)."""
    import jax

    plt = _plt()
    d = laws[0][0].dim
    if d == 1:
        fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
        lo = min(float(np.min(np.asarray(g.means) - 4 * np.sqrt(np.asarray(g.full_covs())[:, 0, 0] + 1e-12))) for g, _ in laws)
        hi = max(float(np.max(np.asarray(g.means) + 4 * np.sqrt(np.asarray(g.full_covs())[:, 0, 0] + 1e-12))) for g, _ in laws)
        x = np.linspace(lo, hi, 800)
        for i, (g, label) in enumerate(laws):
            if g.has_density():
                ax.plot(x, np.exp(np.asarray(g.logpdf(x))), color=PALETTE[i % 8], lw=2, label=label)
            else:
                ax.hist(np.asarray(g.means)[:, 0], bins=60, density=True, alpha=0.4, color=PALETTE[i % 8], label=label)
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend()
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
        if d == 2 and g.has_density():
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


def trajectory_figure(traj, path=None):
    """Distances of each generation to the data (and to the limit) against generation."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4), constrained_layout=True)
    n = np.arange(len(traj.mean_error))

    def positive(y):  # log axis: generation 0 is at distance 0 from the data
        y = np.asarray(y, dtype=float)
        return np.where(y > 0, y, np.nan)

    ax.plot(n, positive(traj.gelbrich_to_data), "o-", color=PALETTE[0], label="Gelbrich W2 lower bound to data")
    ax.plot(n, positive(traj.w2_pc1_to_data), "s-", color=PALETTE[1], label="exact W2 to data on PC 1")
    if traj.w2_pc1_to_limit is not None:
        ax.plot(n, positive(traj.w2_pc1_to_limit), "^-", color=PALETTE[2], label="exact W2 to limit on PC 1")
    ax.set_yscale("log")
    ax.set_xlabel("generation n")
    ax.set_ylabel("distance")
    ax.set_title("Exact retraining trajectory")
    ax.legend()
    ax.grid(True, alpha=0.3)
    return _finish(fig, path)
