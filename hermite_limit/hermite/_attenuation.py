"""Per-mode attenuation of recursive retraining (the spectral filter), and the OU action on
Hermite coefficients.

With ``rho = e^{-t0}`` and fresh-data fraction ``alpha`` (docs/conventions.md,
"Attenuation and contraction rates"):

* limit:        ``a_n(p_inf) = lambda_{|n|} a_n(p_data)``,
  ``lambda_m = alpha rho^m / (1 - (1 - alpha) rho^m)``;
* per generation the error of mode ``m`` contracts by ``(1 - alpha) rho^m``;
* schedule ``t_i``: ``a^{i+1} = rho_i^{|n|} (alpha a^data + (1 - alpha) a^i)``;
* Mehler: ``a_n(P_t p) = e^{-|n| t} a_n(p)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._precision import x64
from .._time import half_power_order as half_power_order  # re-exported
from .._time import schedule_times
from .._validation import as_float_array, check_alpha, check_int, check_time, check_work, is_concrete


def _orders(m: Any) -> jax.Array:
    if is_concrete(m):
        arr = as_float_array("m", m)
        if np.any(arr < 0):
            raise ValueError(f"m (total order) must be >= 0; got min(m)={float(arr.min()):g}")
    return jnp.asarray(m, dtype=jnp.float64)


@x64
def attenuation(m: Any, alpha: Any, t0: Any) -> jax.Array:
    """Limit attenuation ``lambda_m`` of Hermite modes of total order ``m``.

    Parameters
    ----------
    m : array_like of total orders >= 0 (any shape; vectorised)
    alpha : float in [0, 1], fresh-data fraction
    t0 : float > 0, truncation time per generation

    Returns
    -------
    jax.Array (float64), shape of ``m``: ``a_n(p_inf) / a_n(p_data)`` for ``|n| = m``.

    Notes
    -----
    ``lambda_m = alpha rho^m / (1 - (1 - alpha) rho^m)``, ``rho = e^{-t0}``; ``lambda_0 = 1``
    (also for ``alpha = 0``, where the limit is ``N(0, I)``). The denominator is evaluated as
    ``alpha rho^m - expm1(-m t0)`` so small ``alpha`` and ``t0`` keep full relative precision.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> [round(float(v), 12) for v in hl.attenuation([0, 1, 2], 0.5, 0.1)]
    [1.0, 0.826212868242, 0.69309410637]
    """
    m = _orders(m)
    alpha = jnp.asarray(check_alpha(alpha), dtype=jnp.float64)
    t0 = jnp.asarray(check_time(t0, "t0"), dtype=jnp.float64)
    x = jnp.exp(-m * t0)
    den = alpha * x - jnp.expm1(-m * t0)
    safe = jnp.where(m == 0, 1.0, den)
    return jnp.where(m == 0, 1.0, alpha * x / safe)


@x64
def contraction_rate(m: Any, alpha: Any, t0: Any) -> jax.Array:
    """Per-generation contraction ``(1 - alpha) rho^m`` of the error in modes of total order ``m``.

    Notes
    -----
    From ``a^{i+1} - a^inf = (1 - alpha) rho^m (a^i - a^inf)``, ``rho = e^{-t0}``.
    """
    m = _orders(m)
    alpha = jnp.asarray(check_alpha(alpha), dtype=jnp.float64)
    t0 = jnp.asarray(check_time(t0, "t0"), dtype=jnp.float64)
    return (1.0 - alpha) * jnp.exp(-m * t0)


@x64
def mode_half_life(m: Any, alpha: Any, t0: Any) -> jax.Array:
    """Generations for the error of mode ``m`` to halve: ``ln 2 / -ln((1 - alpha) rho^m)``.

    Notes
    -----
    ``-ln((1-alpha) rho^m) = m t0 - log1p(-alpha)``; infinite for ``m = 0, alpha = 0`` (nothing
    contracts), zero for ``alpha = 1`` (one generation suffices).
    """
    m = _orders(m)
    alpha = jnp.asarray(check_alpha(alpha), dtype=jnp.float64)
    t0 = jnp.asarray(check_time(t0, "t0"), dtype=jnp.float64)
    rate = m * t0 - jnp.log1p(-alpha)
    return math.log(2.0) / rate


@x64
def schedule_attenuation(m: Any, alpha: Any, schedule: Any, n: int) -> jax.Array:
    """Factor ``a_n(p_n) / a_n(p_data)`` after ``n`` generations with truncation times ``schedule``.

    Parameters
    ----------
    m : array_like of total orders >= 0
    alpha : float in [0, 1]
    schedule : constant t0, sequence, callable or ``hl.Schedule`` (see ``hl.schedule_times``)
    n : int >= 0, number of generations (``p_0 = p_data``)

    Notes
    -----
    ``f^0 = 1``, ``f^{i+1} = rho_i^m (alpha + (1 - alpha) f^i)``, ``rho_i = e^{-t_i}``, from
    ``a^{i+1} = rho_i^{|n|} (alpha a^data + (1 - alpha) a^i)``. For a constant ``t0`` this tends to
    :func:`attenuation` as ``n -> infinity``.
    """
    m = _orders(m)
    alpha = check_alpha(alpha)
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n == 0:
        return jnp.ones_like(m)
    n = check_int(n, "n", minimum=0)
    check_work("n", float(n) * max(int(np.size(m)), 1), detail=f"{n} generations x {np.size(m)} orders")
    times = schedule_times(schedule, n)
    return _schedule_factor(m, jnp.asarray(alpha, dtype=jnp.float64), jnp.asarray(times))


@jax.jit
def _schedule_factor(m, alpha, times):
    def step(f, t):
        return jnp.exp(-m * t) * (alpha + (1.0 - alpha) * f), None

    return jax.lax.scan(step, jnp.ones_like(m), times)[0]


@x64
def ou_push_coefficients(coeffs, t: Any):
    """Coefficients of ``P_t p`` from those of ``p``: ``a_n -> e^{-|n| t} a_n`` (Mehler).

    Parameters
    ----------
    coeffs : HermiteCoefficients
    t : float >= 0

    Returns
    -------
    HermiteCoefficients, same indices; values and errors scaled by ``e^{-|n| t}``.
    """
    from ._coefficients import HermiteCoefficients

    if not isinstance(coeffs, HermiteCoefficients):
        raise ValueError(f"coeffs must be HermiteCoefficients (from hl.hermite_coefficients); got {type(coeffs).__name__}")
    t = jnp.asarray(check_time(t, "t", allow_zero=True), dtype=jnp.float64)
    f = jnp.exp(-jnp.asarray(coeffs.order_of_index, dtype=jnp.float64) * t)
    return dataclasses.replace(coeffs, values=coeffs.values * f, errors=coeffs.errors * f)
