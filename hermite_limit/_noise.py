"""Standard normal noise for the samplers: Box-Muller on 53-bit uniforms from threefry bits.

``jax.random.normal`` maps a uniform through ``sqrt(2) erfinv(2u - 1)``; in float64 on CPU that inverse
is a three-branch polynomial with a logarithm for every element, and XLA's float64 ``log`` is not
vectorised, so it costs about three times the random bits themselves and dominates a reverse-SDE
step. Box-Muller gives the same law for less:

    u1, u2 ~ U(0, 1) independent,  r = sqrt(-2 log u1),  (z1, z2) = (r cos 2 pi u2, r sin 2 pi u2)

are independent N(0, 1). Here ``u = (b >> 11 + 1/2) 2^-53`` for a 64-bit word ``b``, so ``u`` is on the
53-bit grid, never 0 or 1, and ``|z| <= sqrt(2 log 2^54) = 8.65`` (the mass beyond is 5e-18).

Three pieces are written out here because XLA's CPU versions are slow, all to rounding:

- ``log_unit``: ``log u`` from the exponent and the series ``log m = 2 atanh((m - 1)/(m + 1))`` on
  ``m in [sqrt(1/2), sqrt(2))`` (truncation below 1e-17 relative); vectorises, 3x ``jnp.log``.
- ``sincos_turns``: ``sin``/``cos`` of ``2 pi u`` from the quadrant of ``4 u`` and Taylor polynomials of
  degree 15 / 16 on ``|phi| <= pi/4`` (truncation below 1e-16).
- ``threefry_bits``: the threefry-2x32 hash (20 rounds) unrolled into one elementwise computation. It
  returns the words of ``jax.random.bits(key, (size,), uint64)`` (partitionable threefry, JAX's default)
  bit for bit, 3x faster, because JAX's CPU lowering runs the rounds as a five-trip loop over memory.

The unrolled hash is cheap only where XLA keeps it in a fusion of its own: fused into the Box-Muller
transform it would be recomputed for both members of each pair. ``standard_normal`` therefore takes its
words from ``jax.random.bits`` (materialised), and the samplers' loop (``_solvers.scan_loop``) computes
the next step's words with ``threefry_bits`` into its carry; both give the same draws.

Layout. The ``size`` draws of ``shape`` (leading axis: rows, e.g. particles) are cut into ``B`` blocks of
``L = size / B`` consecutive elements, ``B`` the largest power of two up to 64 that divides the number of
rows. The words have shape (2, B, M), ``M = ceil(L / 2)``: pair ``(b, m)`` gives element ``m`` (``r cos``)
and ``M + m`` (``r sin``) of block ``b``. The layout depends on the shape only, never on the devices, and
a shard of a power-of-two number of devices (up to 64) holds whole blocks, so a sharded sampler
generates its noise locally and draws exactly what a single device draws. (Interleaving the two members
of a pair, ``z[2 i], z[2 i + 1]``, would also be shard-local but defeats XLA's vectorisation: 4x slower.)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8))  # phi^1 .. phi^15
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(9))  # phi^0 .. phi^16
# log m = 2 atanh(s) = sum_k 2 s^(2k+1) / (2k+1), |s| <= 3 - 2 sqrt 2 = 0.1716; the first omitted term
# is below 2 s^25 / 25 < 1e-20 relative to 2 s
_ATANH = tuple(2.0 / (2 * k + 1) for k in range(12))
_LN2 = 0.6931471805599453
_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_THREEFRY_PARITY = 0x1BD11BDA


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


def log_unit(u):
    """``log u`` for positive normal float64 ``u`` (the uniforms here), to a few units in the last place.

    ``u = 2^e m`` with ``m in [sqrt(1/2), sqrt(2))`` read from the bits; ``log u = e log 2 + 2 atanh(s)``,
    ``s = (m - 1) / (m + 1)``, the series summed by Horner in ``s^2``.
    """
    b = jax.lax.bitcast_convert_type(u, jnp.uint64)
    e = (b >> 52).astype(jnp.int64) - 1023
    m = jax.lax.bitcast_convert_type((b & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000), jnp.float64)
    high = m > math.sqrt(2.0)
    m = jnp.where(high, 0.5 * m, m)
    e = e + high.astype(jnp.int64)
    f = m - 1.0
    s = f / (2.0 + f)
    return e.astype(jnp.float64) * _LN2 + s * _horner(_ATANH, s * s)


def uniform_open(bits):
    """Uniform(0, 1) float64 on the 53-bit grid, offset by half a step: never 0 or 1."""
    return ((bits >> 11).astype(jnp.float64) + 0.5) * (2.0**-53)


def _threefry_key_words(key):
    """The two uint32 key words of a threefry key (typed or raw), or None for another generator."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        key = jax.random.key_data(key)
    elif key.shape != (2,) or key.dtype != jnp.uint32:
        return None
    return key[0], key[1]


def _rotate_left(x, r: int):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k1, k2, x1, x2):
    """The threefry-2x32 block cipher (20 rounds, Salmon et al. 2011) on uint32 counters ``(x1, x2)``."""
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(_THREEFRY_PARITY))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = _rotate_left(x2, r) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def threefry_bits(key, size: int):
    """``size`` uint64 words, equal to ``jax.random.bits(key, (size,), jnp.uint64)`` (partitionable threefry).

    Word ``j`` is the hash of the 64-bit counter ``j`` (high, low halves) under the key, high word first.
    Keys of other generators, and sizes of 2^32 or more, go through ``jax.random.bits`` itself.
    """
    words = _threefry_key_words(key)
    if words is None or size >= 2**32 or not jax.config.jax_threefry_partitionable:
        return jax.random.bits(key, (size,), dtype=jnp.uint64)
    low = jax.lax.iota(jnp.uint32, size)
    b1, b2 = threefry2x32(words[0], words[1], jnp.zeros_like(low), low)
    return (b1.astype(jnp.uint64) << np.uint64(32)) | b2.astype(jnp.uint64)


def noise_layout(shape) -> tuple[int, int]:
    """``(B, M)``: blocks and pairs per block for ``shape`` draws (see the module notes)."""
    size = math.prod(shape)
    rows = shape[0] if len(shape) else 1
    blocks = 1
    while blocks < 64 and rows % (2 * blocks) == 0 and rows > 0:
        blocks *= 2
    return blocks, -(-(size // blocks) // 2)


def normals_from_bits(bits, shape):
    """N(0, 1) draws of ``shape`` from the words ``bits`` of shape (2, B, M) = (2,) + noise_layout(shape)."""
    shape = tuple(shape)
    blocks, pairs = noise_layout(shape)
    per_block = math.prod(shape) // blocks
    r = jnp.sqrt(-2.0 * log_unit(uniform_open(bits[0])))
    sin, cos = sincos_turns(uniform_open(bits[1]))
    z = jnp.stack([r * cos, r * sin], axis=1).reshape(blocks, 2 * pairs)
    if 2 * pairs != per_block:
        z = z[:, :per_block]
    return z.reshape(shape)


def noise_bits(key, shape, fast: bool = False):
    """The words behind ``standard_normal(key, shape)``: uint64 of shape (2,) + noise_layout(shape).

    The words are ``jax.random.bits(key, that shape, uint64)``. ``fast=True`` computes the same words
    with the unrolled hash; it is only faster where XLA materialises the result (a loop carry).
    """
    layout = (2,) + noise_layout(tuple(shape))
    if fast:
        return threefry_bits(key, math.prod(layout)).reshape(layout)
    return jax.random.bits(key, layout, dtype=jnp.uint64)


def standard_normal(key, shape):
    """Independent N(0, 1) float64 draws of ``shape`` by Box-Muller (see the module notes).

    A different (equally exact) stream from ``jax.random.normal(key, shape)``; the same key gives the
    same draws, on any number of devices.
    """
    with jax.enable_x64(True):
        return normals_from_bits(noise_bits(key, shape), tuple(shape))
