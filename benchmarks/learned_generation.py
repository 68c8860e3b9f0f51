"""Wall time of one learned generation, split into training and sampling.

One generation of ``hl.retrain(..., learner=hl.NeuralScore())`` without its records, through the body
``retrain`` runs for each generation (``_one_generation``): the training set (``n`` draws of the seed law
``hl.datasets.seed_gmm10()``, d = 10: generation 0), ``NeuralScore.fit`` (the DSM training run, one jitted scan; float32) and ``hl.reverse_sample`` driven by the
trained network (Euler-Maruyama on a uniform grid of ``n_steps`` steps from ``T = 4`` down to ``t0 = 0.02``,
``n`` particles, the sampler's defaults as ``retrain`` uses them). Full size is the issue's figure: n = 10^5
training samples and particles, 500 sampling steps, ``NeuralScore()`` at its defaults (width 64, depth 3,
3000 steps of batch 256). ``--quick`` and ``--tiny`` run smaller versions (sizes in ``SIZES``).

Each part is timed twice with a different key: the first call includes tracing and compilation, the second is
the steady state (the time of every later generation of a run). The row's "peer" is the budget a user would
accept for one generation ("a few minutes", 300 s); it carries no target.

Standalone: ``python -m benchmarks.learned_generation [--quick | --tiny]`` prints the breakdown.
"""

from __future__ import annotations

import argparse
import time

import jax

import hermite_limit as hl
from hermite_limit.sampling._retrain import _one_generation

from ._harness import TaskResult

# (training samples = particles, sampling steps, NeuralScore settings)
SIZES = {
    "tiny": (500, 10, dict(width=16, depth=2, steps=50)),
    "quick": (10_000, 100, dict(steps=500)),
    "full": (100_000, 500, {}),
}
ALPHA, T0, T = 0.5, 0.02, 4.0
BUDGET_SECONDS = 300.0


def measure(size: str = "full") -> dict:
    """Seconds of training and of sampling, first call (compile included) and steady state, for one generation."""
    n, n_steps, settings = SIZES[size]
    learner = hl.NeuralScore(**settings)
    data = hl.datasets.seed_gmm10()
    out = {"n": n, "n_steps": n_steps, "learner": learner, "train": [], "sample": []}
    for seed in range(2):
        key = jax.random.key(seed)
        k_set, k_init, k_fit, k_sample = jax.random.split(key, 4)
        with jax.enable_x64(True):  # as retrain runs it
            state = learner.init(k_init, data)
            step = _one_generation(0, (k_set, k_fit, k_sample), data, data, None, ALPHA, T0, T, n, n_steps, learner,
                                   state, context="learned generation benchmark")
        out["train"].append(step.fit_seconds)
        out["sample"].append(step.sample_seconds)
    return out


def _label(m: dict) -> str:
    cfg = m["learner"]
    return (f"one learned generation (d=10, n={m['n']:.0e} training samples and particles, {m['n_steps']} sampling "
            f"steps, NeuralScore width {cfg.width} depth {cfg.depth} steps {cfg.steps} batch {cfg.batch})")


def _breakdown(m: dict) -> str:
    (tr1, tr2), (sa1, sa2) = m["train"], m["sample"]
    return (f"steady state {tr2 + sa2:.3g} s = training {tr2:.3g} s ({m['learner'].steps / tr2:.0f} steps/s) + "
            f"sampling {sa2:.3g} s ({m['n_steps'] / sa2:.3g} steps/s); first call (compile included): training "
            f"{tr1:.3g} s, sampling {sa1:.3g} s")


def run(size: str = "full") -> list[TaskResult]:
    m = measure(size)
    (tr1, tr2), (sa1, sa2) = m["train"], m["sample"]
    return [TaskResult(_label(m), f"budget for one generation: a few minutes ({BUDGET_SECONDS:.0f} s)", BUDGET_SECONDS,
                       tr2 + sa2, None, None, None, (tr1 - tr2) + (sa1 - sa2), _breakdown(m))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.learned_generation", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    m = measure("tiny" if args.tiny else ("quick" if args.quick else "full"))
    print(f"{_label(m)}: {_breakdown(m)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
