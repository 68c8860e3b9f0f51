"""Timing helpers: compile time apart from steady state, best of several runs with GC off."""

from __future__ import annotations

import dataclasses
import gc
import platform
import time
from typing import Any, Callable

import jax
import numpy as np


def block(x: Any) -> Any:
    """Wait for every JAX array in ``x``."""
    return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def _first_then(fn: Callable[[], Any], steady: Callable[[Any], tuple]) -> tuple:
    """Time the first call of ``fn`` (tracing and compilation for JAX code), then run ``steady(its result)`` with GC
    disabled: ``(first-call seconds, *steady(result))``."""
    first, out = _timed(fn)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return (first, *steady(out))
    finally:
        if enabled:
            gc.enable()


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = block(fn())
    return time.perf_counter() - t0, out


def time_fn(fn: Callable[[], Any], repeats: int = 3, warmup: int = 0) -> tuple[float, float, Any]:
    """Return (first-call seconds, best steady-state seconds, result).

    The first call includes tracing and compilation for JAX code; its excess over the steady
    state is the compile time. Then ``warmup`` untimed calls (the first dozen calls of a freshly
    compiled XLA executable run 1.5-3x slower than its steady state while thread pools and caches
    warm up; rows that use a warm-up give the peer the same one). Steady state is the fastest of
    ``repeats`` calls with GC disabled.
    """
    def steady(out):
        best = float("inf")
        for _ in range(warmup):
            block(fn())
        for _ in range(repeats):
            elapsed, out = _timed(fn)
            best = min(best, elapsed)
        return best, out

    return _first_then(fn, steady)


def time_for(fn: Callable[[], Any], seconds: float, warmup_seconds: float = 0.0) -> tuple[float, float, Any]:
    """:func:`time_fn` with time budgets instead of counts: the first call, then untimed calls for
    ``warmup_seconds``, then the fastest of the calls made within ``seconds`` (GC disabled).

    For microsecond calls, whose fastest of a hundred still depends on the machine's state at that moment (thread
    wake-ups between the caller and JAX's dispatch thread), the same budget on both sides gives each as many
    calls as fit: thousands of ours, hundreds of the peer's.
    """
    def steady(out):
        end = time.perf_counter() + warmup_seconds
        while time.perf_counter() < end:
            block(fn())
        end = time.perf_counter() + seconds
        best = float("inf")
        while True:
            elapsed, out = _timed(fn)
            best = min(best, elapsed)
            if time.perf_counter() >= end:
                return best, out

    return _first_then(fn, steady)


def time_pair(ours: Callable[[], Any], peer: Callable[[], Any], repeats: int = 3,
              warmup: int = 0) -> tuple[float, float, Any, float, Any]:
    """Time two implementations of one task fairly: ``(our first-call s, our best s, our result, peer best s,
    peer result)``.

    Each side's first call is made (ours timed: its excess over the steady state is the compile time), then
    ``warmup`` untimed calls of each, then ``repeats`` rounds of one timed call of ours followed by one of the
    peer's (ABAB...), with GC disabled throughout; each side's figure is its fastest call, as
    :func:`time_fn`'s. Alternating puts both sides under the same cache, allocator and machine-load state,
    where timing one side fully and then the other lets whatever ran before (or a burst of load) favour one.
    """
    def steady(out):
        out_peer = block(peer())  # the peer's first call, untimed
        for _ in range(warmup):
            block(ours())
            block(peer())
        best, best_peer = float("inf"), float("inf")
        for _ in range(repeats):
            elapsed, out = _timed(ours)
            elapsed_peer, out_peer = _timed(peer)
            best, best_peer = min(best, elapsed), min(best_peer, elapsed_peer)
        return best, out, best_peer, out_peer

    return _first_then(ours, steady)


@dataclasses.dataclass
class TaskResult:
    """One row of the benchmark table: ours against one peer on one task."""

    task: str
    peer: str
    peer_seconds: float
    ours_seconds: float
    target_ratio: float | None
    peer_error: float | None
    ours_error: float | None
    ours_compile_seconds: float = 0.0
    note: str = ""
    unit: str = "s"  # of peer_seconds / ours_seconds ("MiB" for memory rows)

    @property
    def ratio(self) -> float:
        return self.peer_seconds / self.ours_seconds

    @property
    def met(self) -> bool | None:
        return None if self.target_ratio is None else bool(self.ratio >= self.target_ratio)

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["ratio"] = self.ratio
        out["met"] = self.met
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def device_description() -> str:
    dev = jax.devices()
    cpu = platform.processor() or platform.machine()
    return f"{len(dev)} x {dev[0].platform} ({dev[0].device_kind}); {cpu}; jax {jax.__version__}"


def matmul_peak_gflops(n: int = 2000, repeats: int = 5) -> tuple[float, str]:
    """Measured float64 matmul rate of this machine, all cores, in GFLOP/s, and which library reached it.

    The faster of numpy's BLAS and XLA's own dot (``jax.jit(a @ a)``): the two use different kernels, and
    on CPUs with AVX-512 XLA's can be much the faster (on the run's machine 1.7x), so taking numpy's alone
    would understate the peak.
    """
    a = np.random.default_rng(0).standard_normal((n, n))
    _, t_blas, _ = time_fn(lambda: a @ a, repeats)
    with jax.enable_x64(True):
        aj = jax.numpy.asarray(a)
        square = jax.jit(lambda m: m @ m)
        _, t_xla, _ = time_fn(lambda: square(aj), repeats)
    rates = {"numpy BLAS": 2.0 * n**3 / t_blas / 1e9, "XLA dot": 2.0 * n**3 / t_xla / 1e9}
    best = max(rates, key=rates.get)
    return rates[best], f"{best}; " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
