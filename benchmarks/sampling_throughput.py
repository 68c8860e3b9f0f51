"""Throughput of the reverse-diffusion samplers and of the retraining loop (exploratory script).

The benchmark-suite version of part 1 is ``benchmarks/sampling.py`` (``python -m benchmarks --only sampling``),
which also owns the numpy Euler-Maruyama baseline used here.

Run:  python benchmarks/sampling_throughput.py [--particles 100000 --steps 500 --generations 20 --dim 10]

1. Backends on one sampling run (default 10^4 particles x 500 EM steps, d = 10, seed-protocol mixture of 5
   N(mu_k, 0.6^2 I)): our lax.scan loop, diffrax (Euler + UnsafeBrownianPath / VirtualBrownianTree),
   and a plain numpy Euler-Maruyama loop with the same exact score. Compile time is reported apart
   from run time; run time is the fastest of 3 repeats with GC off.
2. The retraining loop (learner=ExactScore(), exact score of each training law, records every generation):
   particles x steps x generations, total particle-steps per second (compile included; the per-generation
   statistics — exact W2 to the closed-form law etc. — are included too, and timed separately).
"""

from __future__ import annotations

import argparse
import gc
import time

import jax
import numpy as np

import hermite_limit as hl
from hermite_limit.sampling import ExactScore, retrain, reverse_sample

try:
    from benchmarks.sampling import numpy_em
except ImportError:  # run as a script: python benchmarks/sampling_throughput.py
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.sampling import numpy_em


def seed_mixture(d: int, K: int = 5, sigma: float = 0.6, seed: int = 0):
    rng = np.random.default_rng(seed)
    return hl.GaussianMixture(np.full(K, 1.0 / K), 2.0 * rng.standard_normal((K, d)), np.full(K, sigma**2))


def time_fn(fn, repeats=3):
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    gc.disable()
    try:
        best = min(_timed(fn) for _ in range(repeats))
    finally:
        gc.enable()
    return first - best, best


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--particles", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--backend-particles", type=int, default=10_000)
    ap.add_argument("--skip-backends", action="store_true")
    args = ap.parse_args()
    d, t0, T = args.dim, 0.02, 4.0
    q = seed_mixture(d)
    print(f"devices: {jax.devices()}")

    if not args.skip_backends:
        n, N = args.backend_particles, args.steps
        print(f"\n[1] one sampling run: {n} particles x {N} EM steps, d={d}, K=5")
        runs = {
            "scan (default)": lambda: reverse_sample(jax.random.key(0), q, n, t0=t0, T=T, n_steps=N).particles.block_until_ready(),
            "diffrax Euler + UnsafeBrownianPath": lambda: reverse_sample(
                jax.random.key(0), q, n, t0=t0, T=T, n_steps=N, backend="diffrax").particles.block_until_ready(),
            "diffrax Euler + VirtualBrownianTree": lambda: reverse_sample(
                jax.random.key(0), q, n, t0=t0, T=T, n_steps=N, backend="diffrax", brownian="tree").particles.block_until_ready(),
            "scan, exponential integrator": lambda: reverse_sample(
                jax.random.key(0), q, n, t0=t0, T=T, n_steps=N, method="exponential").particles.block_until_ready(),
            "scan, probability-flow ODE (Heun)": lambda: reverse_sample(
                jax.random.key(0), q, n, t0=t0, T=T, n_steps=N, method="ode").particles.block_until_ready(),
        }
        base = None
        for name, fn in runs.items():
            comp, run = time_fn(fn)
            base = base or run
            print(f"  {name:40s} compile {comp:6.2f} s  run {run:7.3f} s  {n * N / run:12.4g} particle-steps/s  ({run / base:.2f}x scan)")
        t = time.perf_counter()
        numpy_em(q, n, t0, T, N)
        run = time.perf_counter() - t
        print(f"  {'numpy Euler-Maruyama (baseline)':40s} compile {0.0:6.2f} s  run {run:7.3f} s  {n * N / run:12.4g} particle-steps/s  ({run / base:.2f}x scan)")

    n, N, G = args.particles, args.steps, args.generations
    print(f"\n[2] retrain: {n} particles x {N} steps x {G} generations, d={d}, learner=ExactScore(), alpha=0.5")
    t = time.perf_counter()
    res = retrain(jax.random.key(1), q, 0.5, t0, G, n, T=T, n_steps=N, learner=ExactScore(), progress=True)
    total = time.perf_counter() - t
    steps = n * N * G
    print(f"  total {total:.1f} s (compile and per-generation records included): {steps / total:.4g} particle-steps/s")
    R = res.records
    print(f"  last generation: sliced W2 to closed form {R.sliced_w2[-1]:.4f} (sampling floor {R.sliced_w2_floor[-1]:.4f}),"
          f" mean error {R.mean_error[-1]:.2e}")


if __name__ == "__main__":
    main()
