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
Box-Muller from threefry bits, see ``hermite_limit/_noise.py``; each step hashes the next step's bits into the loop
carry, where they are materialised once) and
``_diffrax_loop`` (``diffrax.diffeqsolve`` with ``StepTo`` on the same grid, ``Euler`` + an
``UnsafeBrownianPath`` or ``VirtualBrownianTree`` for ``em``, ``Heun`` for ``ode``). The scan loop is
the default: it was faster in ``benchmarks/sampling_throughput.py`` (see the README of this package).
"""

from __future__ import annotations

import functools
import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from jax.sharding import NamedSharding, PartitionSpec

from .._noise import noise_bits, normals_from_bits

METHODS = ("em", "exponential", "ode")
BACKENDS = ("scan", "diffrax")
_SQRT2 = math.sqrt(2.0)
# XLA options for the jitted samplers (see ``loop_jit``). XLA:CPU vectorises for 256-bit registers by
# default, even where the CPU has 512-bit ones (early AVX-512 parts lowered their clock for wide
# instructions). The loop is integer hashing (16 uint32 lanes per 512-bit register) and polynomials in
# float64, all vector work, and is 1.2-1.4x faster with 512-bit vectors (2-core AVX-512 machine,
# 10^5 particles, d = 10), to the same bits. A CPU without 512-bit registers keeps its widest; other
# backends ignore ``xla_cpu_*`` options.
LOOP_COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


def loop_jit(fun):
    """``eqx.filter_jit(fun)``, compiled with ``LOOP_COMPILER_OPTIONS`` where that jit is the outermost one.

    JAX accepts compiler options only on a top-level jit, so inside a caller's ``jax.jit`` (or ``scan``,
    or ``grad`` with respect to an argument) the call goes to the plain compilation, whose results are the
    same. ``.wide`` and ``.plain`` are the two compiled functions.
    """
    wide = eqx.filter_jit(fun, compiler_options=LOOP_COMPILER_OPTIONS)
    plain = eqx.filter_jit(fun)

    @functools.wraps(fun)
    def call(*args):
        if _outermost(args):
            try:
                return wide(*args)
            except ValueError as err:  # a trace our check cannot see (e.g. a tracer in a closure)
                if "compiler_options" not in str(err):
                    raise
        return plain(*args)

    call.wide, call.plain = wide, plain
    return call


def _outermost(args) -> bool:
    if isinstance(jnp.zeros(()), jax.core.Tracer):  # inside jit / scan: every operation is staged out
        return False
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(args))


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


def _pair_sharding(sharding):
    """The sharding of the (2, blocks, pairs) noise words that matches particles sharded as ``sharding``."""
    if sharding is None:
        return None
    return NamedSharding(sharding.mesh, PartitionSpec(None, sharding.spec[0], None))


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
    pair_sharding = _pair_sharding(sharding)

    def bits_for(k):
        return _constrain(noise_bits(jax.random.fold_in(key, k), (n, d), fast=True), pair_sharding)

    # Everything the step's elementwise update reads besides y and the score is carried, computed one
    # step ahead: the noise Z_k (from words hashed two steps ahead) and the pair (t_k, t_{k+1}). XLA:CPU
    # fuses whatever produces them into the update, and the update then loses its vectorisation
    # (slicing ``times[k]`` in place costs 2.5x, the Box-Muller transform next to the score's row
    # broadcasts 2x). See ``hermite_limit/_noise.py`` for why the words themselves are materialised.
    def normals(bits):
        return _constrain(normals_from_bits(bits, (n, d)), sharding)

    def body(carry, k):
        y, z, bits, pair, energy, mart = carry
        t, t_next = pair[0], pair[1]
        if method != "ode":
            z, bits, z_now = normals(bits), bits_for(k + 2), z
        else:
            z_now = z
        if error is not None:
            e = error(y, t)
            h = t - t_next
            energy = energy + 2.0 * h * jnp.sum(e * e, axis=1)
            mart = mart + _SQRT2 * jnp.sum(e * brownian_increment(method, t, t_next, z_now), axis=1)
        y = step(method, y, t, t_next, z_now, drift_score)
        pair = jax.lax.dynamic_slice(padded_times, (k + 1,), (2,))
        return (_constrain(y, sharding), z, bits, pair, energy, mart), None

    zeros = jnp.zeros((n,) if error is not None else (0,), dtype=jnp.float64)
    if method == "ode":
        z0, bits0 = jnp.zeros_like(y0), jnp.zeros((2, 1, 0), jnp.uint64)
    else:
        z0, bits0 = normals(bits_for(0)), bits_for(1)
    padded_times = jnp.concatenate([times, times[-1:]])  # the last step slices one pair past the grid
    carry = (y0, z0, bits0, times[:2], zeros, zeros)
    (y, _, _, _, energy, mart), _ = jax.lax.scan(body, carry, jnp.arange(n_steps))
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
