"""Scoped single-threaded BLAS/LAPACK for code that interleaves XLA work with LAPACK calls.

JAX's CPU Cholesky and triangular solves, numpy's and scipy's linear algebra all call OpenBLAS, whose
worker threads busy-wait at every synchronisation point. On a machine with few cores they compete with
XLA's own thread pool (still spinning after the preceding XLA work) and with other processes: a
1000 x 1000 Cholesky measured 0.02 s alone took 1.4 s right after XLA work on the 2-core machine under
load. :func:`single_threaded_blas` runs a block with OpenBLAS at one thread (XLA keeps its own pool for
its matrix products) and restores the caller's setting on exit, so no global state changes outlive the call.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def single_threaded_blas():
    """Limit the BLAS libraries loaded in the process to one thread inside the block (``threadpoolctl``;
    a no-op when it is not installed), restoring their thread counts on exit."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn, a dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def blas_single_thread(fn: F) -> F:
    """Decorator form of :func:`single_threaded_blas`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
