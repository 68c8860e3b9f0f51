"""Scaling: sampler time in particles and in mixture size, exact Hermite coefficients in order; peak memory.

Each row compares a measured time with the linear extrapolation from the smallest size
(``peer_seconds = t_smallest * size / smallest``), so ``ratio`` is the scaling efficiency: 1 is
exactly linear, > 1 better than linear (fixed overheads amortised), < 1 worse.

Memory over generations is measured in ``benchmarks/retrain.py``.
A log-log plot goes to ``benchmarks/scaling.png`` at full size, or to ``$HL_BENCH_SCALING_PNG`` if set.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np

import hermite_limit as hl
from hermite_limit.sampling import reverse_sample

from ._harness import TaskResult, time_fn

ROOT = Path(__file__).resolve().parents[1]
STEPS = 50
PARTICLES = {"tiny": (1_000, 4_000), "quick": (1_000, 10_000, 100_000), "full": (1_000, 10_000, 100_000, 1_000_000)}
COMPONENTS = {"tiny": (5, 20), "quick": (5, 50, 500), "full": (5, 50, 500)}
ORDERS = {"tiny": (2, 4), "quick": (2, 4, 6), "full": (2, 4, 6, 8)}

def _mixture(K: int, d: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    return hl.GaussianMixture(np.full(K, 1.0 / K), 3.0 * rng.standard_normal((K, d)), np.full(K, 0.36))


def _series(label, unit, sizes, make, repeats):
    """Time ``make(size)()`` for each size: list of (size, compile, seconds)."""
    out = []
    for s in sizes:
        first, best, _ = time_fn(make(s), repeats if s < 1_000_000 else 1)
        out.append((s, first - best, best))
    return label, unit, out


def _rows(label, unit, series, note="") -> list[TaskResult]:
    s0, _, t0 = series[0]
    return [TaskResult(f"scaling {label} {unit}={s:g}", f"linear extrapolation from {unit}={s0:g}", t0 * s / s0, t, None,
                       None, None, c, note if s == series[-1][0] else "") for s, c, t in series]


def _plot(all_series, path: str) -> None:
    from matplotlib.figure import Figure  # a bare Figure: no pyplot, no backend to choose

    fig = Figure(figsize=(4.2 * len(all_series), 3.6))
    axes = fig.subplots(1, len(all_series))
    for ax, (label, unit, series) in zip(np.atleast_1d(axes), all_series):
        s = np.array([a for a, _, _ in series], float)
        t = np.array([b for _, _, b in series])
        ax.loglog(s, t, "o-", label="measured")
        ax.loglog(s, t[0] * s / s[0], "k--", lw=1, label="linear from smallest")
        ax.set_xlabel(unit)
        ax.set_ylabel("seconds")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def run(size: str = "full") -> list[TaskResult]:
    repeats = 1 if size == "tiny" else 2
    q = hl.datasets.seed_gmm10()
    key = jax.random.key(0)
    particles = _series(f"sampler (d=10, K=5, {STEPS} EM steps)", "particles", PARTICLES[size],
                        lambda n: lambda: reverse_sample(key, q, n, t0=0.02, n_steps=STEPS).particles, repeats)
    n_k = 10_000 if size != "tiny" else 1_000
    comps = _series(f"sampler (d=10, n={n_k}, {STEPS} EM steps)", "K", COMPONENTS[size],
                    lambda K: lambda: reverse_sample(key, _mixture(K), n_k, t0=0.02, n_steps=STEPS).particles, repeats)
    orders = _series("exact Hermite coefficients (d=10, K=5)", "coefficients", ORDERS[size],
                     lambda o: lambda: hl.hermite_coefficients(q, o).values, repeats)
    # order -> number of coefficients C(order + d, d) as the size axis
    from math import comb

    orders = (orders[0], orders[1], [(comb(o + 10, 10), c, t) for o, c, t in orders[2]])

    all_series = [particles, comps, orders]
    path = str(ROOT / "benchmarks" / "scaling.png") if size == "full" else os.environ.get("HL_BENCH_SCALING_PNG")
    if path:
        _plot(all_series, path)
    rows = []
    for i, (label, unit, series) in enumerate(all_series):
        rows += _rows(label, unit, series)
    return rows
