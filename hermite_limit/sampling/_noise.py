"""Standard normal noise for the samplers: Box-Muller on 53-bit uniforms from the threefry key.

``jax.random.normal`` maps a uniform through ``sqrt(2) erfinv(2u - 1)``; in float64 on CPU that inverse
is a three-branch polynomial evaluated for every element and costs about three times the random bits
themselves, so it dominates a reverse-SDE step. Box-Muller gives the same law for less:

    u1, u2 ~ U(0, 1) independent,  r = sqrt(-2 log u1),  (z1, z2) = (r cos 2 pi u2, r sin 2 pi u2)

are independent N(0, 1). Here ``u = (b >> 11 + 1/2) 2^-53`` for a 64-bit word ``b``, so ``u`` is on the
53-bit grid, never 0 or 1, and ``|z| <= sqrt(2 log 2^54) = 8.65`` (the mass beyond is 5e-18). ``sin`` and
``cos`` of ``2 pi u2`` come from the quadrant of ``4 u2`` and Taylor polynomials of degree 15 / 16 on
``|phi| <= pi/4`` (truncation error below 1e-16), i.e. the same values as ``jnp.sin`` / ``jnp.cos`` to
rounding at a fraction of their cost. The words come from ``jax.random.bits`` on the caller's key, so
with ``jax_threefry_partitionable`` the noise is the same however the particles are sharded.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8))  # phi^1 .. phi^15
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(9))  # phi^0 .. phi^16


def _horner(coefficients, x):
    acc = jnp.full_like(x, coefficients[-1])
    for c in coefficients[-2::-1]:
        acc = acc * x + c
    return acc


def sincos_turns(u):
    """``(sin 2 pi u, cos 2 pi u)`` for float64 ``u`` in [0, 1), to rounding (about 1e-15 absolute)."""
    v = 4.0 * u
    quadrant = jnp.round(v)
    phi = (v - quadrant) * (0.5 * math.pi)  # |phi| <= pi / 4; v - round(v) is exact
    phi2 = phi * phi
    s = phi * _horner(_SIN, phi2)
    c = _horner(_COS, phi2)
    k = quadrant.astype(jnp.int32) & 3  # rotate (c, s) by k quarter turns
    sin = jnp.where(k == 0, s, jnp.where(k == 1, c, jnp.where(k == 2, -s, -c)))
    cos = jnp.where(k == 0, c, jnp.where(k == 1, -s, jnp.where(k == 2, -c, s)))
    return sin, cos


def uniform_open(bits):
    """Uniform(0, 1) float64 on the 53-bit grid, offset by half a step: never 0 or 1."""
    return ((bits >> 11).astype(jnp.float64) + 0.5) * (2.0**-53)


def standard_normal(key, shape):
    """Independent N(0, 1) float64 draws of ``shape`` by Box-Muller (see the module notes).

    A different (equally exact) stream from ``jax.random.normal(key, shape)``; the same key gives the
    same draws.
    """
    size = math.prod(shape)
    half = -(-size // 2)
    with jax.enable_x64(True):
        u = uniform_open(jax.random.bits(key, (2, half), dtype=jnp.uint64))
        r = jnp.sqrt(-2.0 * jnp.log(u[0]))
        sin, cos = sincos_turns(u[1])
        z = jnp.concatenate([r * cos, r * sin])
        return (z[:size] if 2 * half != size else z).reshape(shape)
