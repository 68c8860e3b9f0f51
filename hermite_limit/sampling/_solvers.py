"""One-step maps of the reverse-time samplers, and the two loops that drive them.

Reverse time ``tau = T - t``; the time-reversal of ``dX = -X dt + sqrt(2) dW`` (marginals ``p_t``) is

    dY = [Y + 2 s(Y, t)] dtau + sqrt(2) dB          (reverse SDE)
    dY = [Y +   s(Y, t)] dtau                       (probability-flow ODE)

with ``s = grad log p_t``. A step goes from ``t`` down to ``t_next = t - h``; the score is frozen at
the left end ``(Y_k, t_k)`` (Euler-Maruyama and exponential integrator).

- ``em``: ``Y <- Y + h (Y + 2 s) + sqrt(2 h) Z``. Weak order 1.
- ``exponential``: the linear part is integrated exactly with ``s`` frozen. Variation of constants on
  ``dY = (Y + 2 s) dtau + sqrt(2) dB`` over ``[0, h]`` gives
  ``Y_h = e^h Y_0 + 2 s int_0^h e^{h-u} du + sqrt(2) int_0^h e^{h-u} dB_u``; the integral is
  ``e^h - 1`` and the stochastic integral is Gaussian with variance ``2 int_0^h e^{2(h-u)} du = e^{2h} - 1``,
  so ``Y <- e^h Y + 2 (e^h - 1) s + sqrt(e^{2h} - 1) Z``. Exact when ``s`` is constant along the step
  (e.g. a score error depending on time only); weak order 1 in general (the frozen score still
  depends on ``Y``: for ``q = N(0, I)``, ``s = -Y`` and the step is not exact).
- ``ode``: Heun's method (explicit trapezoid, order 2) on the probability-flow ODE; deterministic given
  the initial particles.

Two loops: ``scan_loop`` (a ``lax.scan`` over the grid, noise ``Z_k = standard_normal(fold_in(key, k), (n, d))``,
Box-Muller from threefry bits, see ``_noise.py``) and
``_diffrax_loop`` (``diffrax.diffeqsolve`` with ``StepTo`` on the same grid, ``Euler`` + an
``UnsafeBrownianPath`` or ``VirtualBrownianTree`` for ``em``, ``Heun`` for ``ode``). The scan loop is
the default: it was faster in ``benchmarks/sampling_throughput.py`` (see the README of this package).
"""

from __future__ import annotations

import math

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx

from ._noise import standard_normal

METHODS = ("em", "exponential", "ode")
BACKENDS = ("scan", "diffrax")
_SQRT2 = math.sqrt(2.0)


def step(method: str, y, t, t_next, z, score):
    """Advance particles ``y`` (n, d) from OU time ``t`` to ``t_next < t`` with noise ``z`` (ignored by ``ode``)."""
    h = t - t_next
    if method == "em":
        return y + h * (y + 2.0 * score(y, t)) + jnp.sqrt(2.0 * h) * z
    if method == "exponential":
        return jnp.exp(h) * y + 2.0 * jnp.expm1(h) * score(y, t) + jnp.sqrt(jnp.expm1(2.0 * h)) * z
    if method == "ode":
        f0 = y + score(y, t)
        yp = y + h * f0
        f1 = yp + score(yp, t_next)
        return y + 0.5 * h * (f0 + f1)
    raise ValueError(f"method must be one of {METHODS}; got method={method!r}")


def brownian_increment(method: str, t, t_next, z):
    """The Brownian increment ``dB_k`` that drives the step (for the Girsanov martingale).

    ``em``: ``sqrt(h) Z`` exactly. ``exponential``: the step's noise ``sqrt(2) int_0^h e^{h-u} dB_u`` is
    not a function of ``int_0^h dB_u`` alone; ``dB_k = sqrt(h) Z`` (perfectly correlated with the step's
    noise) is used, which agrees with the continuous-time martingale to O(h). ``ode``: zero.
    """
    if method == "ode":
        return jnp.zeros_like(z)
    return jnp.sqrt(t - t_next) * z


def _constrain(x, sharding):
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


def scan_loop(key, y0, times, score, method: str, sharding=None, error=None, learned: bool = True):
    """Run the sampler over ``times`` (decreasing) with ``lax.scan``.

    With ``error`` (a callable ``e(x, t)``) the drift uses ``score + e`` when ``learned`` else ``score``
    alone, and two per-path sums are accumulated: the energy ``sum_k 2 h_k |e(Y_k, t_k)|^2`` and the
    Girsanov martingale ``sum_k sqrt(2) <e(Y_k, t_k), dB_k>``. Returns ``(y, energy, martingale)``
    (the last two ``None`` without ``error``).
    """
    n, d = y0.shape
    y0 = _constrain(y0, sharding)
    n_steps = times.shape[0] - 1
    drift_score = score
    if error is not None and learned:
        drift_score = lambda x, t: score(x, t) + error(x, t)  # noqa: E731

    def body(carry, k):
        y, energy, mart = carry
        t, t_next = times[k], times[k + 1]
        if method == "ode":
            z = jnp.zeros_like(y)
        else:
            z = standard_normal(jax.random.fold_in(key, k), (n, d))
            z = _constrain(z, sharding)
        if error is not None:
            e = error(y, t)
            h = t - t_next
            energy = energy + 2.0 * h * jnp.sum(e * e, axis=1)
            mart = mart + _SQRT2 * jnp.sum(e * brownian_increment(method, t, t_next, z), axis=1)
        y = step(method, y, t, t_next, z, drift_score)
        return (_constrain(y, sharding), energy, mart), None

    zeros = jnp.zeros((n,) if error is not None else (0,), dtype=jnp.float64)
    (y, energy, mart), _ = jax.lax.scan(body, (y0, zeros, zeros), jnp.arange(n_steps))
    if error is None:
        return y, None, None
    return y, energy, mart


def diffrax_loop(key, y0, times, score, method: str, brownian: str = "unsafe", sharding=None):
    """The same sampler through ``diffrax.diffeqsolve`` on the grid ``times`` (reverse time ``tau = T - t``).

    ``em``: ``Euler`` on ``MultiTerm(ODETerm, ControlTerm)`` with diffusion ``sqrt(2) I`` and Brownian
    motion ``UnsafeBrownianPath`` (``brownian="unsafe"``, fixed steps only) or ``VirtualBrownianTree``
    (``brownian="tree"``). ``ode``: ``Heun``. ``exponential`` has no diffrax counterpart.
    """
    if method not in ("em", "ode"):
        raise ValueError(f"backend='diffrax' supports method 'em' or 'ode'; got method={method!r}")
    n, d = y0.shape
    y0 = _constrain(y0, sharding)
    T = times[0]
    taus = T - times
    c = 2.0 if method == "em" else 1.0

    def drift(tau, y, args):
        Y = y.reshape(n, d)
        return (Y + c * score(Y, T - tau)).reshape(-1)

    n_steps = times.shape[0] - 1
    if method == "em":
        if brownian == "unsafe":
            bm = diffrax.UnsafeBrownianPath(shape=(n * d,), key=key)
        elif brownian == "tree":
            tol = 0.5 * jnp.min(taus[1:] - taus[:-1])
            bm = diffrax.VirtualBrownianTree(0.0, taus[-1], tol=tol, shape=(n * d,), key=key)
        else:
            raise ValueError(f"brownian must be 'unsafe' or 'tree'; got brownian={brownian!r}")
        diag = lx.DiagonalLinearOperator(jnp.full((n * d,), _SQRT2))
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(lambda tau, y, args: diag, bm))
        solver = diffrax.Euler()
    else:
        terms = diffrax.ODETerm(drift)
        solver = diffrax.Heun()
    sol = diffrax.diffeqsolve(
        terms,
        solver,
        t0=taus[0],
        t1=taus[-1],
        dt0=None,
        y0=y0.reshape(-1),
        stepsize_controller=diffrax.StepTo(ts=taus),
        saveat=diffrax.SaveAt(t1=True),
        max_steps=n_steps,
        adjoint=diffrax.ForwardMode(),
    )
    return _constrain(sol.ys[-1].reshape(n, d), sharding)
