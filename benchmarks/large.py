"""The large size, run on request only (``python -m benchmarks --large``; never in the test suite).

Two tasks, each at its large size, at half that size and at a reference size, every run in its own
subprocess so that each peak resident memory (``VmHWM`` of ``/proc/self/status``) is that run's alone:

* ``logpdf``: the public ``GaussianMixture.logpdf`` of a d = 10, K = 10^4 full-covariance mixture at
  M = 10^6 points (half: M = 5 10^5). Points are drawn and evaluated in chunks of 25,000 (one compiled
  shape), so the input never exists as a whole and the working memory does not grow with M; only the
  result (8 bytes a point) does. Throughput: point-components per second, steady state (the first
  chunk, which compiles, is not timed). Reference: the full-size task of ``benchmarks/logdensity.py``
  (K = 1000, M = 10^5, one call on all points, best of 3 after a compiling call), measured before and
  after the large runs (the faster is the reference; both are in the note).
* ``empirical``: the limit of an empirical law of N = 10^5 one-dimensional samples (half: 5 10^4;
  reference N = 10^4; the data of ``benchmarks/empirical.py``), ``hl.limit_distribution(hl.empirical(x),
  0.5, 0.1)`` (41 terms, a :class:`PushedCopies`: the N samples and the terms, never the N 41 explicit
  components). Throughputs: building the limit (data samples per second), its ``logpdf`` at 1000 points
  (point-components per second, components = N (J + 1)) and ``sample`` (draws per second, 10^5 draws);
  steady state (best of 3 calls after a compiling call of the same shapes).

Rows: throughput at the large size against the reference size (ratio = large / reference throughput)
and the peak memory at the large size against half of it (unit MiB; ratio = half / full peak, 1 when
memory stays flat). No target is stated: the machine is shared, so the rows report, they do not gate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ._harness import TaskResult

ROOT = Path(__file__).resolve().parents[1]
D, K_LARGE, M_LARGE, CHUNK = 10, 10_000, 1_000_000, 25_000
K_FULL, M_FULL = 1000, 100_000
N_LARGE, N_FULL, QUERIES, DRAWS = 100_000, 10_000, 1000, 100_000


def peak_mib() -> float:
    """Peak resident memory of this process so far (``VmHWM``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def problem(K: int, d: int, n: int, seed: int = 0):
    """The random full-covariance mixture and points of ``benchmarks/logdensity.py`` (the same recipe, kept here
    so the large size does not depend on that module's internals)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((K, d, d)) / np.sqrt(d)
    S = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(d)
    return rng.dirichlet(np.ones(K)), 3.0 * rng.standard_normal((K, d)), S, 3.0 * rng.standard_normal((n, d))


def _mixture(K: int, seed: int = 0):
    import hermite_limit as hl

    w, m, S, _ = problem(K, D, 1, seed)
    return hl.GaussianMixture(w, m, S)


def logpdf_chunked(M: int, K: int) -> dict:
    """logpdf at M points drawn chunk by chunk (seed = chunk index): steady-state seconds and peak memory."""
    gm = _mixture(K)
    out = np.empty(M)

    def points(i):
        return 3.0 * np.random.default_rng(1000 + i).standard_normal((min(CHUNK, M - i), D))

    np.asarray(gm.logpdf(points(0)))  # compiles the chunk shape (not timed)
    before = peak_mib()
    t = time.perf_counter()
    for i in range(0, M, CHUNK):
        out[i : i + CHUNK] = np.asarray(gm.logpdf(points(i)))
    seconds = time.perf_counter() - t
    if not np.all(np.isfinite(out)):
        raise AssertionError("non-finite log-density")
    return {"seconds": seconds, "work": float(M) * K, "peak_mib": peak_mib(), "peak_before_mib": before,
            "checksum": float(out.sum())}


def logpdf_full() -> dict:
    """The full-size task of benchmarks/logdensity.py (one call on all points), best of 3 after a compiling call."""
    import hermite_limit as hl

    w, m, S, x = problem(K_FULL, D, M_FULL)
    gm = hl.GaussianMixture(w, m, S)
    np.asarray(gm.logpdf(x))
    best = min(_seconds(lambda: np.asarray(gm.logpdf(x))) for _ in range(3))
    return {"seconds": best, "work": float(M_FULL) * K_FULL, "peak_mib": peak_mib()}


def empirical(N: int) -> dict:
    """Build the limit of N samples, evaluate it at 1000 points, draw 10^5 samples: steady-state seconds each."""
    import jax

    import hermite_limit as hl

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.5, N // 2), rng.normal(1.5, 0.7, N - N // 2)])
    data = hl.empirical(x)
    lim = hl.limit_distribution(data, 0.5, 0.1)
    build = min(_seconds(lambda: hl.limit_distribution(data, 0.5, 0.1)) for _ in range(3))
    y = np.linspace(-5.0, 5.0, QUERIES)
    lp = np.asarray(lim.logpdf(y))
    if not np.all(np.isfinite(lp)):
        raise AssertionError("non-finite log-density")
    logpdf = min(_seconds(lambda: np.asarray(lim.logpdf(y))) for _ in range(3))
    np.asarray(lim.sample(jax.random.key(0), DRAWS))
    sample = min(_seconds(lambda: np.asarray(lim.sample(jax.random.key(i), DRAWS))) for i in range(1, 4))
    components = N * (lim.n_terms + 1)
    return {"build_seconds": build, "logpdf_seconds": logpdf, "sample_seconds": sample, "N": N,
            "components": components, "peak_mib": peak_mib()}


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _child(task: str, arg: int, K: int = 0) -> None:
    result = {"logpdf": lambda: logpdf_chunked(arg, K), "logpdf_full": logpdf_full, "empirical": lambda: empirical(arg)}[task]()
    print("RESULT " + json.dumps(result), flush=True)


def _in_subprocess(task: str, arg: int = 0, K: int = 0) -> dict:
    """Run one task in a fresh interpreter (its own peak memory) and return its result."""
    code = f"from benchmarks.large import _child; _child({task!r}, {arg}, {K})"
    print(f"[benchmarks] large: {task} {arg or ''} ...", file=sys.stderr, flush=True)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"large task {task} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def run(size: str = "large") -> list[TaskResult]:
    if size != "large":
        raise ValueError("benchmarks.large runs only at the large size (python -m benchmarks --large)")
    rows = []
    # log-density: reference (full size), half and full large M
    # the reference is measured before and after the large runs (the machine may be shared): the faster counts
    ref_before = _in_subprocess("logpdf_full")
    half = _in_subprocess("logpdf", M_LARGE // 2, K_LARGE)
    full = _in_subprocess("logpdf", M_LARGE, K_LARGE)
    ref_after = _in_subprocess("logpdf_full")
    ref = min(ref_before, ref_after, key=lambda r: r["seconds"])
    rate_ref, rate = ref["work"] / ref["seconds"], full["work"] / full["seconds"]
    label = f"logpdf d={D} K=1e4 M=1e6 (large)"
    rows.append(TaskResult(
        f"{label}, seconds per 1e9 point-components", f"ours at the full size (K={K_FULL}, M=1e5)",
        1e9 / rate_ref, 1e9 / rate, None, None, None, 0.0,
        f"throughput {rate:.3g} point-components/s at the large size, {rate_ref:.3g} at the full size "
        f"(before and after the large runs: {ref_before['work'] / ref_before['seconds']:.3g}, "
        f"{ref_after['work'] / ref_after['seconds']:.3g}; half M: {half['work'] / half['seconds']:.3g}); "
        f"chunks of {CHUNK:,} points drawn as evaluated"))
    rows.append(TaskResult(
        f"{label}, peak resident memory", "the same at M=5e5", half["peak_mib"], full["peak_mib"], None, None, None, 0.0,
        f"VmHWM of each subprocess; after the compiling first chunk {full['peak_before_mib']:.0f} MiB (M=1e6) and "
        f"{half['peak_before_mib']:.0f} MiB (M=5e5); the result array is 8 bytes a point (7.6 MiB at M=1e6)", unit="MiB"))
    # empirical limit: reference N, half and full large N
    e_ref, e_half, e_full = (_in_subprocess("empirical", n) for n in (N_FULL, N_LARGE // 2, N_LARGE))
    name = f"empirical limit N=1e5 (d=1, {e_full['components'] // N_LARGE} terms, large)"
    ref_label = "ours at N=1e4"
    for key, what, unit_work in (("build_seconds", "build, seconds per 1e6 data samples", lambda e: e["N"] / 1e6),
                                 ("logpdf_seconds", f"logpdf at {QUERIES} points, seconds per 1e9 point-components",
                                  lambda e: QUERIES * e["components"] / 1e9),
                                 ("sample_seconds", "sample 1e5, seconds per 1e6 draws", lambda e: DRAWS / 1e6)):
        per_ref, per = e_ref[key] / unit_work(e_ref), e_full[key] / unit_work(e_full)
        rows.append(TaskResult(f"{name}: {what}", ref_label, per_ref, per, None, None, None, 0.0,
                               f"half N: {e_half[key] / unit_work(e_half):.3g}"))
    rows.append(TaskResult(f"{name}, peak resident memory", "the same at N=5e4", e_half["peak_mib"], e_full["peak_mib"],
                           None, None, None, 0.0, f"VmHWM of each subprocess; N=1e4: {e_ref['peak_mib']:.0f} MiB", unit="MiB"))
    return rows
