"""Time conventions: OU time t, contraction rho = e^{-t}, noise variance sigma^2 = 1 - e^{-2t},
the VP SDE with a linear beta schedule, DDPM discrete betas, and truncation schedules.

The forward process is the Ornstein-Uhlenbeck SDE ``dX = -X dt + sqrt(2) dW``; stopping the reverse
diffusion at OU time ``t0`` means every generation applies ``P_{t0}``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from ._validation import (
    FLOAT_BYTES,
    _scalar,
    as_float_array,
    check_alpha,
    check_callable,
    check_count,
    check_time,
    fmt,
)


def rho_from_time(t: Any) -> np.ndarray:
    """``rho = e^{-t}``: the factor by which ``P_t`` shrinks means (``t >= 0``, scalar or array)."""
    return np.exp(-_times("t", t))


def time_from_rho(rho: Any) -> np.ndarray:
    """Inverse of :func:`rho_from_time`: ``t = -log rho`` for ``rho`` in (0, 1]."""
    r = as_float_array("rho", rho)
    if np.any((r <= 0) | (r > 1)):
        raise ValueError(f"rho must lie in (0, 1]; got values in [{float(r.min()):g}, {float(r.max()):g}]")
    return -np.log(r)


def noise_variance(t: Any) -> np.ndarray:
    """``sigma^2 = 1 - e^{-2t}``: the variance ``P_t`` adds (computed as ``-expm1(-2t)``), ``t >= 0``."""
    return -np.expm1(-2.0 * _times("t", t))


def _times(name: str, t: Any) -> np.ndarray:
    """OU times: a finite, non-negative scalar or array (huge times are valid: ``e^{-t}`` underflows to 0)."""
    arr = as_float_array(name, t)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (an OU time); got min({name})={float(arr.min()):g}")
    return arr


def time_from_noise_variance(sigma2: Any) -> np.ndarray:
    """Inverse of :func:`noise_variance`: ``t = -log(1 - sigma^2) / 2`` for sigma^2 in [0, 1)."""
    s = as_float_array("sigma2", sigma2)
    if np.any((s < 0) | (s >= 1)):
        raise ValueError(f"sigma2 must lie in [0, 1); got values in [{float(s.min()):g}, {float(s.max()):g}]")
    return -0.5 * np.log1p(-s)


def vp_to_ou_time(s: Any, beta_min: float = 0.1, beta_max: float = 20.0) -> np.ndarray:
    """OU time of VP-SDE time ``s`` in [0, 1] with ``beta(s) = beta_min + s (beta_max - beta_min)``.

    Notes
    -----
    The VP SDE ``dX = -beta(s)/2 X ds + sqrt(beta(s)) dW`` is the OU SDE run at clock
    ``t(s) = (1/2) int_0^s beta = (beta_min s + (beta_max - beta_min) s^2 / 2) / 2``.
    Early stopping at VP time ``eps`` is truncation time ``t0 = t(eps)``.
    """
    s = as_float_array("s", s)
    bmin, bmax = _scalar("beta_min", beta_min), _scalar("beta_max", beta_max)
    if bmin < 0 or bmax < bmin:
        raise ValueError(f"need 0 <= beta_min <= beta_max; got beta_min={bmin}, beta_max={bmax}")
    if np.any((s < 0) | (s > 1)):
        raise ValueError(f"s must lie in [0, 1] (VP time); got values in [{float(s.min()):g}, {float(s.max()):g}]")
    return 0.5 * (bmin * s + 0.5 * (bmax - bmin) * s * s)


def ddpm_linear_betas(n_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """The DDPM linear schedule ``betas = linspace(beta_start, beta_end, n_steps)``."""
    n = check_count(n_steps, "n_steps", minimum=1, bytes_each=FLOAT_BYTES)
    b0, b1 = _scalar("beta_start", beta_start), _scalar("beta_end", beta_end)
    if not (0 < b0 < 1 and 0 < b1 < 1):
        raise ValueError(f"betas must lie in (0, 1); got beta_start={b0}, beta_end={b1}")
    return np.linspace(b0, b1, n)


def ddpm_to_ou_time(betas: Any, step: Any) -> np.ndarray:
    """OU time at DDPM step ``k`` (0-based): ``t_k = -(1/2) log(alphas_cumprod[k])``.

    Computed as ``-(1/2) sum_{i<=k} log1p(-betas[i])`` so that small times keep full precision.
    """
    b = as_float_array("betas", betas, ndim=1)
    if b.size == 0 or np.any((b <= 0) | (b >= 1)):
        raise ValueError("betas must be a non-empty sequence of values in (0, 1)")
    if isinstance(step, (str, bool, float)) or step is None:
        raise ValueError(f"step must be an integer or integer array in [0, {b.size}); got {fmt(step)}")
    k = np.asarray(step)
    if not np.issubdtype(k.dtype, np.integer) or np.any((k < 0) | (k >= b.size)):
        raise ValueError(f"step must be an integer or integer array in [0, {b.size}); got {fmt(step)}")
    cumulative = -0.5 * np.cumsum(np.log1p(-b))
    return cumulative[k]


# -- truncation schedules ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A truncation schedule ``t_i`` (generation ``i = 0, 1, ...``): ``times(n)`` gives t_0..t_{n-1}."""

    name: str
    rule: Callable[[np.ndarray], np.ndarray]

    def times(self, n: int) -> np.ndarray:
        n = check_count(n, "n", minimum=0, bytes_each=2 * FLOAT_BYTES)
        with np.errstate(over="ignore", under="ignore"):  # an underflow to 0 is reported below, by index
            raw = self.rule(np.arange(n, dtype=np.float64))
        try:
            t = as_float_array("schedule", np.broadcast_to(raw, (n,)) if np.ndim(raw) == 0 else raw, shape=(n,))
        except ValueError as exc:
            raise ValueError(f"schedule {self.name} must give {n} finite real times: {exc}") from None
        return _check_times(t, f"schedule {self.name}")


def constant(t0: float) -> Schedule:
    """``t_i = t0`` for every generation."""
    t0 = check_time(t0, "t0")
    return Schedule(f"constant(t0={t0:g})", lambda i: np.full_like(i, t0))


def power_law(t0: float, power: float = 1.0) -> Schedule:
    """Annealed ``t_i = t0 / (i + 1)^power`` (``power = 1``: harmonic)."""
    t0 = check_time(t0, "t0")
    p = check_time(power, "power")
    return Schedule(f"power_law(t0={t0:g}, power={p:g})", lambda i: t0 / (i + 1.0) ** p)


def harmonic(t0: float) -> Schedule:
    """Annealed ``t_i = t0 / (i + 1)``."""
    t0 = check_time(t0, "t0")
    return dataclasses.replace(power_law(t0, 1.0), name=f"harmonic(t0={t0:g})")


def geometric(t0: float, ratio: float) -> Schedule:
    """Annealed ``t_i = t0 * ratio^i`` with ``0 < ratio <= 1``."""
    t0 = check_time(t0, "t0")
    r = _scalar("ratio", ratio)
    if not 0 < r <= 1:
        raise ValueError(f"ratio must lie in (0, 1]; got ratio={r:g}")
    return Schedule(f"geometric(t0={t0:g}, ratio={r:g})", lambda i: t0 * r**i)


def schedule_times(schedule: Any, n: int) -> np.ndarray:
    """Resolve a schedule to the times t_0..t_{n-1}.

    ``schedule`` is a positive scalar (constant t0), a :class:`Schedule`, a callable
    ``i -> t_i`` (vectorised over a float array of generation indices), or a sequence of at
    least ``n`` positive times.
    """
    n = check_count(n, "n", minimum=0, bytes_each=2 * FLOAT_BYTES)
    if isinstance(schedule, Schedule):
        return schedule.times(n)
    if callable(schedule):
        return Schedule("(the callable)", check_callable(schedule, "schedule")).times(n)
    if schedule is None or isinstance(schedule, (str, bool, int, float, complex, np.number)):
        return np.full(n, check_time(schedule, "schedule"))
    if np.ndim(schedule) == 0 and isinstance(schedule, (np.ndarray, jax_array_types())):
        return np.full(n, check_time(schedule, "schedule"))
    t = as_float_array("schedule", schedule, ndim=1)
    if t.size < n:
        raise ValueError(f"schedule has {t.size} times but n={n} generations were asked for")
    return _check_times(t[:n], "schedule")


def jax_array_types() -> tuple:
    import jax

    return (jax.Array,)


def _check_times(t: np.ndarray, name: str) -> np.ndarray:
    ok = np.isfinite(t) & (t > 0)
    if not np.all(ok):
        i = int(np.flatnonzero(~ok)[0])
        why = " (it underflowed: the schedule's parameters are too extreme)" if t[i] == 0 else ""
        raise ValueError(f"{name} times must be finite and > 0; got t_{i} = {float(t[i]):g}{why}")
    return t


def half_power_order(alpha: float, t0: float) -> float:
    """Order ``m`` where the attenuation ``lambda_m`` falls to 1/2: ``rho^m = 1/(1 + alpha)``.

    From ``alpha x / (1 - (1 - alpha) x) = 1/2`` with ``x = rho^m``: ``x = 1 / (1 + alpha)``, so
    ``m = ln(1 + alpha) / t0`` (about ``alpha / t0`` for small alpha).
    """
    return math.log1p(check_alpha(alpha)) / check_time(t0)
