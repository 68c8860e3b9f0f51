"""Scoped float64: every public entry point computes in double precision.

JAX defaults to float32 and its x64 switch is global; flipping it at import would change the
caller's programs. Instead each public function runs inside ``jax.enable_x64(True)``, a
thread-local context, so the caller's global setting is untouched.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import jax

F = TypeVar("F", bound=Callable)


def x64(fn: F) -> F:
    """Run ``fn`` with 64-bit JAX types enabled, restoring the caller's setting afterwards."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
