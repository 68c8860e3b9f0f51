"""Eager argument checks: clear ``ValueError`` naming the argument, before any work.

Checks run only on concrete values; inside ``jax.jit`` the arguments are tracers and the
checks are skipped (validate outside the transformed function, as the public API does).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values we can inspect now (not a JAX tracer)."""
    return not isinstance(x, jax.core.Tracer)


def as_float_array(name: str, x: Any, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Convert to a finite float64 numpy array, checking the number of dimensions."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers; got {type(x).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimension(s); "
                f"got shape {arr.shape}"
            )
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def check_alpha(alpha: Any, name: str = "alpha") -> float | Any:
    """Fresh-data fraction in [0, 1]; tracers pass through unchecked."""
    if not is_concrete(alpha):
        return alpha
    value = _scalar(name, alpha)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {name}={value!r}")
    return value


def check_time(t: Any, name: str = "t0", *, allow_zero: bool = False) -> float | Any:
    """A diffusion time: positive (or non-negative when ``allow_zero``) and finite."""
    if not is_concrete(t):
        return t
    value = _scalar(name, t)
    if allow_zero and value < 0.0:
        raise ValueError(f"{name} must be >= 0; got {name}={value!r}")
    if not allow_zero and value <= 0.0:
        raise ValueError(f"{name} must be > 0; got {name}={value!r}")
    return value


def check_positive_int(n: Any, name: str, *, allow_zero: bool = True) -> int:
    """A non-negative (or positive) Python integer."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        else:
            raise ValueError(f"{name} must be an integer; got {name}={n!r}")
    n = int(n)
    if n < 0 or (n == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be {bound}; got {name}={n}")
    return n


def check_tolerance(tol: Any, name: str = "tol") -> float:
    value = _scalar(name, tol)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie in (0, 1); got {name}={value!r}")
    return value


def _scalar(name: str, x: Any) -> float:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real number; got {x!r}") from exc
    if arr.shape != ():
        raise ValueError(f"{name} must be a scalar; got shape {arr.shape}")
    value = float(arr)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {name}={value!r}")
    return value
