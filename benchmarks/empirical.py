"""Limits and generations of empirical data: structured laws (PushedCopies) against their explicit mixtures.

    python -m benchmarks.empirical [--sizes 1e3 1e4 1e5] [--explicit] [--markdown PATH]

Data: N samples of 0.5 N(-2, 0.5^2) + 0.5 N(1.5, 0.7^2) (seed 0); limit with alpha = 0.5, t0 = 0.1,
tol = 1e-12 (41 terms, so N * 41 + 1 explicit components); p_20 the 20th generation. Each task is timed
once, first call included (compilation and building the structured series count), wall clock.
``--explicit`` times the same tasks on ``.mixture`` (the explicit GaussianMixture) instead (its component draw
is an inverse CDF, ``O(n log K)``: no (n, K) array).
Not registered in ``python -m benchmarks`` (no peer tool; the comparison is with our own explicit form).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import hermite_limit as hl


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    if hasattr(out, "block_until_ready"):
        out.block_until_ready()
    return time.perf_counter() - t, out


def run(N: int, explicit: bool) -> dict:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.5, N // 2), rng.normal(1.5, 0.7, N - N // 2)])
    data = hl.empirical(x)
    row = {"N": N, "form": "explicit" if explicit else "structured"}
    row["limit_distribution"], lim = _timed(lambda: hl.limit_distribution(data, 0.5, 0.1))
    row["generation 20"], p20 = _timed(lambda: hl.generation(data, 0.5, 0.1, 20))
    if explicit:
        row["to explicit"], (lim, p20) = _timed(lambda: (lim.mixture, getattr(p20, "mixture", p20)))
    y = np.linspace(-5.0, 5.0, 1000)
    row["logpdf 1000 pts"], _ = _timed(lambda: lim.logpdf(y))
    row["score 1000 pts"], _ = _timed(lambda: lim.score(y))
    row["sample 1e5"], _ = _timed(lambda: lim.sample(jax.random.key(0), 100_000))
    row["hermite order 20"], _ = _timed(lambda: hl.hermite_coefficients(lim, 20).values)
    row["w2_1d(p_20, limit)"], w = _timed(lambda: hl.w2_1d(p20, lim))
    row["w2 value"] = f"{w.value:.6e} +- {w.error:.1e}"
    row["w2_1d(limit, data)"], w = _timed(lambda: hl.w2_1d(lim, data))
    row["w2 data value"] = f"{w.value:.6e} +- {w.error:.1e}"
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=float, default=[1e3, 1e4, 1e5])
    parser.add_argument("--explicit", action="store_true")
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    rows = [run(int(n), args.explicit) for n in args.sizes]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[k]:.3g} s" if isinstance(r.get(k), float) else str(r.get(k, "-")) for k in keys) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(text + "\n\n")


if __name__ == "__main__":
    main()
