"""Eager argument checks shared by every public function: one set of validators, no copies.

Every validator raises ``ValueError`` (or ``TypeError`` for an object of the wrong kind, e.g. a
non-callable where a function is needed) whose message starts with the argument's name, before any
work is done. The rules, the same everywhere:

* Numbers are Python/numpy reals or 0-d real arrays. ``None``, strings (even ``'0.5'``), ``bool``,
  complex numbers, lists or arrays where a scalar is expected are rejected; so are integers too large
  for float64 (``2**1100``) and non-finite values.
* Counts are integers (Python ``int``, numpy integer or a 0-d integer array); floats such as ``1.5``
  or ``2.0``, ``bool`` and strings are rejected.
* Sizes: anything that would allocate more than :data:`MEMORY_BUDGET_BYTES` for one array, or run
  more than :data:`WORK_BUDGET` elementary steps, is refused up front with the limit that was hit
  and the estimated memory (see :func:`check_memory` and :func:`check_work`).
* Numbers in messages are printed plainly (``0.6``, never ``np.float64(0.6)``).

Extreme-but-valid inputs, decided case by case (each either computes the correct finite value or
is refused with a message naming the limit):

* ``GaussianMixture.logpdf`` / ``score`` at far points: exact while ``d (max|x| + max|m|)^2 /
  smallest variance <= 1e300``; beyond, ``log p`` is below -1e300 and the call is refused (``x``).
* ``GaussianMixture.project``: refused when ``|u| max(|m|, |S|^(1/2)) > 1e150`` (``direction``).
* OU times: any finite ``t >= 0`` is valid (``e^{-t}`` underflows to the exact limit 0); integers
  beyond float64 are refused.
* Schedules whose times underflow to 0 (``power_law(0.1, 1e300)``) are refused, naming the index and
  the schedule's parameters.
* ``gaussian_w2``: exact for any finite means (overflow-free norm); ``gaussian_kl`` and a finite but
  huge ``gaussian_chi2`` are refused when the value leaves float64; a divergent chi2 is ``inf``.
* ``hermite_coefficients(..., scale=)`` at most 1e3 standard deviations; ``kde_bandwidth`` at most 1e100.
* Orders, counts and dimensions: refused by :func:`check_memory` / :func:`check_work` (e.g.
  ``graded_indices(10**6, 2)``, ``standard_normal(10**9)``, ``schedule_times(0.1, 10**9)``).

Checks run only on concrete values: a JAX tracer (inside a caller's ``jit``/``vmap``/``grad``)
passes through unchecked, so validation never forces a host synchronisation inside a transformed
program. A check on concrete numpy input costs microseconds.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence

import jax
import numpy as np

# -- budgets ----------------------------------------------------------------------------------

#: Largest array (bytes) a single call may allocate on a caller's request. Requests above it are
#: refused before any work, with the estimate; it is the one constant every size limit derives from.
MEMORY_BUDGET_BYTES = 4 * 2**30
#: Largest number of elementary loop steps (Python-level iterations times their size) one call
#: may run; bounds requests that need little memory but would run for minutes or hours.
WORK_BUDGET = 2 * 10**9
#: Elementary steps charged for one Python-level loop iteration (dispatch overhead), so loops over
#: orders or generations are bounded by the same :data:`WORK_BUDGET`.
PY_ITERATION_COST = 10**4
#: Bytes per float64 element.
FLOAT_BYTES = 8


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values we can inspect now (not a JAX tracer)."""
    return not isinstance(x, jax.core.Tracer)


def fmt(x: Any) -> str:
    """A plain, short rendering of a number or object for error messages (``0.6``, not ``np.float64(0.6)``)."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (numbers.Integral, np.integer)):
        v = int(x)
        return str(v) if v.bit_length() <= 64 else f"an integer of {v.bit_length()} bits"
    if isinstance(x, (numbers.Real, np.floating)):
        return f"{float(x):g}"
    if isinstance(x, str):
        return f"{x!r} (a string)"
    if isinstance(x, (numbers.Complex, np.complexfloating)):
        return f"{complex(x)} (complex)"
    if x is None:
        return "None"
    if isinstance(x, (np.ndarray, jax.Array)):
        return f"an array of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of length {len(x)}"
    text = repr(x)
    return text if len(text) <= 60 else f"a {type(x).__name__}"


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human figure (``1.2 GiB``)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


# -- scalars ----------------------------------------------------------------------------------


def real_scalar(
    name: str,
    x: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in ``[low, high]`` (bounds optional, each open when ``*_open``).

    Rejects None, strings, bools, complex numbers, non-scalars, integers too large for float64
    and NaN / inf, with a ``ValueError`` naming ``name``. Returns a Python float.
    """
    if type(x) is float and x - x == 0.0 and (low is None or x > low) and (high is None or x < high):
        return x  # the common call: a finite Python float strictly inside the bounds (NaN and inf fail x - x == 0)
    if isinstance(x, str):
        raise ValueError(f"{name} must be a real number; got {x!r} (a string)")
    if x is None or isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{name} must be a real number; got {fmt(x)}")
    if isinstance(x, (numbers.Complex, np.complexfloating)) and not isinstance(x, numbers.Real):
        raise ValueError(f"{name} must be a real number; got {fmt(x)}")
    if isinstance(x, numbers.Integral) and not isinstance(x, np.integer):
        if abs(int(x)) > 2**1023:
            raise ValueError(f"{name} must be a finite real number; got {fmt(x)}, too large for float64")
        value = float(x)
    elif isinstance(x, (numbers.Real, np.floating, np.integer)):
        value = float(x)
    else:
        arr = np.asarray(x) if not isinstance(x, (list, tuple, dict, set)) else None
        if arr is None or arr.shape != ():
            shape = f"shape {arr.shape}" if arr is not None else fmt(x)
            raise ValueError(f"{name} must be a real scalar; got {shape}")
        if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"{name} must be a real number; got {fmt(arr)}")
        value = float(arr)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {name}={value:g}")
    if low is not None and high is not None:
        if value < low or value > high or (low_open and value == low) or (high_open and value == high):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise ValueError(f"{name} must lie in {interval}; got {name}={value:g}")
        return value
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}; got {name}={value:g}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high:g}; got {name}={value:g}")
    return value


def _scalar(name: str, x: Any) -> float:
    """A finite real number (kept for existing callers; same rules as :func:`real_scalar`)."""
    return real_scalar(name, x)


def check_alpha(alpha: Any, name: str = "alpha") -> float | Any:
    """Fresh-data fraction in [0, 1]; tracers pass through unchecked."""
    if not is_concrete(alpha):
        return alpha
    return real_scalar(name, alpha, low=0.0, high=1.0)


def check_probability(p: Any, name: str, *, open_low: bool = False, open_high: bool = False) -> float:
    """A probability in [0, 1] (either end excluded on request)."""
    return real_scalar(name, p, low=0.0, high=1.0, low_open=open_low, high_open=open_high)


def check_time(t: Any, name: str = "t0", *, allow_zero: bool = False, maximum: float | None = None) -> float | Any:
    """A diffusion time: positive (or non-negative when ``allow_zero``), finite, at most ``maximum``.

    Huge times are valid (``P_t`` with ``e^{-t} = 0`` is the stationary law); integers beyond float64
    are not. Tracers pass through unchecked.
    """
    if not is_concrete(t):
        return t
    return real_scalar(name, t, low=0.0, low_open=not allow_zero, high=maximum)


def check_tolerance(tol: Any, name: str = "tol") -> float:
    """A tolerance in the open interval (0, 1)."""
    return real_scalar(name, tol, low=0.0, high=1.0, low_open=True, high_open=True)


# -- integers ---------------------------------------------------------------------------------


def check_int(n: Any, name: str, *, minimum: int | None = 0, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]``: Python int, numpy integer or 0-d integer array.

    Floats (even ``2.0``), bools, strings, None and sequences are rejected.
    """
    if type(n) is int and (minimum is None or n >= minimum) and (maximum is None or n <= maximum):
        return n  # the common call (a Python int in range), decided by its exact type
    if isinstance(n, (bool, np.bool_)) or isinstance(n, str) or n is None:
        raise ValueError(f"{name} must be an integer; got {fmt(n)}")
    if isinstance(n, (numbers.Integral, np.integer)):
        value = int(n)
    else:
        arr = np.asarray(n) if isinstance(n, (np.ndarray, jax.Array)) else None
        if arr is None or arr.shape != () or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be an integer; got {fmt(n)}")
        value = int(arr)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {name}={fmt(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:,}; got {name}={fmt(value)}")
    return value


def check_positive_int(n: Any, name: str, *, allow_zero: bool = True, maximum: int | None = None) -> int:
    """A non-negative (or, with ``allow_zero=False``, positive) integer; see :func:`check_int`."""
    return check_int(n, name, minimum=0 if allow_zero else 1, maximum=maximum)


def check_count(n: Any, name: str, *, minimum: int = 1, maximum: int | None = None, bytes_each: int = 0) -> int:
    """A count of things to allocate: an integer >= ``minimum`` whose ``n * bytes_each`` fits the budget."""
    value = check_int(n, name, minimum=minimum, maximum=maximum)
    if bytes_each:
        check_memory(name, value * bytes_each, detail=f"{name}={fmt(value)}")
    return value


def check_indices(idx: Any, name: str, size: int) -> np.ndarray:
    """A non-empty integer index or 1-D sequence of indices, each in ``[0, size)``."""
    if isinstance(idx, (str, bool, np.bool_, float)) or idx is None:
        raise ValueError(f"{name} must be an integer or a sequence of integers; got {fmt(idx)}")
    try:
        arr = np.atleast_1d(np.asarray(idx))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an integer or a sequence of integers; got {fmt(idx)}") from exc
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty sequence of integers; got {fmt(idx)}")
    if np.any(arr < 0) or np.any(arr >= size):
        raise ValueError(f"{name} must lie in [0, {size}); got {name}={arr.tolist()}")
    return arr


def check_memory(name: str, n_bytes: float, *, detail: str = "") -> None:
    """Refuse a request whose largest array needs more than :data:`MEMORY_BUDGET_BYTES`."""
    if n_bytes > MEMORY_BUDGET_BYTES:
        what = f" ({detail})" if detail else ""
        raise ValueError(
            f"{name} too large: the request{what} needs about {format_bytes(n_bytes)} of memory, over the "
            f"library's memory budget of {format_bytes(MEMORY_BUDGET_BYTES)}"
        )


def check_work(name: str, n_steps: float, *, detail: str = "") -> None:
    """Refuse a request that needs more than :data:`WORK_BUDGET` elementary steps (a hang guard)."""
    if n_steps > WORK_BUDGET:
        what = f" ({detail})" if detail else ""
        raise ValueError(
            f"{name} too large: the request{what} needs about {n_steps:.3g} elementary steps, over the "
            f"library's work budget of {WORK_BUDGET:.3g}"
        )


# -- arrays -----------------------------------------------------------------------------------


def as_float_array(
    name: str,
    x: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    shape: tuple[int | None, ...] | None = None,
) -> np.ndarray:
    """Convert to a finite float64 numpy array, checking its number of dimensions / shape.

    Rejects None, strings, bools, complex and object arrays, ragged lists and non-finite entries.
    ``shape`` entries of ``None`` are free.
    """
    if x is None or isinstance(x, str):
        raise ValueError(f"{name} must be an array of real numbers; got {fmt(x)}")
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be an array of real numbers; got a ragged or invalid {type(x).__name__}") from exc
    if raw.dtype == bool or not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        if raw.dtype == object:
            try:
                raw = raw.astype(np.float64)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"{name} must be an array of real numbers; got entries of other types") from exc
        else:
            raise ValueError(f"{name} must be an array of real numbers; got dtype {raw.dtype}")
    arr = raw.astype(np.float64, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimension(s); got shape {arr.shape}"
            )
    if shape is not None and (arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape))):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {want}; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def check_points(name: str, x: Any, dim: int) -> Any:
    """Evaluation points of shape (..., dim) (or (...,) when dim = 1), finite; tracers pass through."""
    if not is_concrete(x):
        return x
    arr = as_float_array(name, x)
    if dim == 1 and (arr.ndim == 0 or arr.shape[-1] != 1):
        arr = arr[..., None]
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(f"{name} must have trailing dimension d={dim}; got shape {np.shape(x)}")
    return arr


def check_covariance(name: str, S: Any, dim: int | None = None, *, definite: bool = False) -> np.ndarray:
    """A symmetric positive semi-definite (``definite=True``: positive definite) matrix, shape (d, d).

    Symmetry to 1e-10 relative; eigenvalues >= -1e-12 relative (> that tolerance when definite).
    Returns the symmetrised matrix.
    """
    C = as_float_array(name, S, ndim=2)
    if C.shape[0] != C.shape[1] or (dim is not None and C.shape[0] != dim):
        want = f"({dim}, {dim})" if dim is not None else "(d, d)"
        raise ValueError(f"{name} must be a square matrix of shape {want}; got shape {C.shape}")
    scale = max(float(np.max(np.abs(C))) if C.size else 0.0, np.finfo(float).tiny)
    if float(np.max(np.abs(C - C.T), initial=0.0)) > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric; got max|S - S^T| = {float(np.max(np.abs(C - C.T))):.3g}")
    C = 0.5 * (C + C.T)
    lam = np.linalg.eigvalsh(C)
    floor = 1e-12 * scale
    if definite and not lam[0] > floor:
        raise ValueError(f"{name} must be positive definite; got smallest eigenvalue {lam[0]:.3g}")
    if lam[0] < -floor:
        raise ValueError(f"{name} must be positive semi-definite; got smallest eigenvalue {lam[0]:.3g}")
    return C


def check_weights(name: str, w: Any, size: int | None = None, *, tol: float = 1e-9) -> np.ndarray:
    """Non-negative weights summing to 1 (to ``tol * max(1, sqrt(K))``), renormalised exactly."""
    arr = as_float_array(name, w, ndim=1)
    if size is not None and arr.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},); got shape {arr.shape}")
    if arr.size and np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative; got min({name})={float(arr.min()):g}")
    total = float(arr.sum())
    if abs(total - 1.0) > tol * max(1.0, math.sqrt(arr.size)):
        raise ValueError(f"{name} must sum to 1; got sum({name})={total:.17g}")
    return arr / total


# -- other kinds ------------------------------------------------------------------------------


def check_key(key: Any, name: str = "key") -> Any:
    """One JAX PRNG key: a typed key of shape () or a raw uint32 key of shape (2,). Tracers pass."""
    if not is_concrete(key):
        return key
    if key is None or isinstance(key, (str, bytes, numbers.Number)):
        raise ValueError(f"{name} must be a JAX PRNG key such as jax.random.key(0); got {fmt(key)}")
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise ValueError(f"{name} must be a JAX PRNG key such as jax.random.key(0); got a {type(key).__name__}")
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"{name} must be a JAX PRNG key, a single one; got a batch of keys of shape {key.shape} "
                    "(split it and pass one, or use jax.vmap over the call)"
            )
        return key
    if key.dtype == np.uint32 and key.shape == (2,):
        return key
    raise ValueError(
        f"{name} must be a JAX PRNG key: a single jax.random.key(seed); got dtype {key.dtype}, shape {key.shape}"
    )


def check_callable(f: Any, name: str, *, n_args: int = 1) -> Callable:
    """A callable accepting ``n_args`` positional arguments (``TypeError`` otherwise)."""
    if not callable(f):
        raise TypeError(f"{name} must be callable; got {fmt(f)}")
    import inspect

    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return f
    try:
        sig.bind(*([None] * n_args))
    except TypeError as exc:
        raise TypeError(f"{name} must accept {n_args} positional argument(s); {exc}") from None
    return f


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {fmt(value)}")
    return value


def check_finite_result(name: str, values: Any, *, limit: str = "") -> None:
    """Refuse a concrete result with non-finite entries, naming what overflowed (host check: eager only)."""
    if not is_concrete(values):
        return
    arr = np.asarray(values)
    if not np.all(np.isfinite(arr)):
        extra = f" ({limit})" if limit else ""
        raise ValueError(f"{name} is outside the range float64 can represent here{extra}")
