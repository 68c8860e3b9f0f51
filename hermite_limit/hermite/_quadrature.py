"""Hermite coefficients of a law given by its (log-)density, by quadrature.

``a_n = int p(x) h_n(x) dx``. The rule is a Gaussian rule centred on the law: with
``q = N(m, C)``, ``C = scale^2 Cov_p`` (``x = m + L z``, ``L L^T = C``),

    a_n = E_q[(p / q)(X) h_n(X)] ~ sum_i w_i (p / q)(x_i) h_n(x_i).

Why shifted and scaled rather than the standard rule on ``p / gamma``: ``p / gamma`` is unbounded
(not even in ``L2(gamma)``) as soon as some variance of ``p`` exceeds 2, and for a law far from the
origin it is concentrated where the standard nodes are sparse. Centred on the law's own mean
and covariance the ratio ``p / q`` is constant for a Gaussian (the rule is then exact once
``n_nodes > order / 2``) and smooth and decaying for mixtures whose components are narrower than
the whole; ``scale > 1`` widens the rule for laws with heavier-than-Gaussian parts.

* ``d <= 3``: tensor Gauss-Hermite with ``n`` nodes per axis. The error estimate is the
  difference from a coarser rule (``ceil(2n/3)`` nodes per axis), plus the rounding bound
  ``16 eps sum_i |w_i (p/q)(x_i) h_n(x_i)|``; it is a posteriori (reliable once the coarse rule
  has resolved ``p / q``, which the spectral convergence of Gauss-Hermite makes the usual case).
* ``d > 3``: randomised quasi-Monte Carlo, ``R`` independent scrambled Sobol' sets (scipy.stats.qmc)
  of ``2^m`` points mapped by the normal quantile; the estimate is the mean of the ``R``
  replicate estimates and the error its standard error ``std / sqrt(R)``.

With several JAX devices the node axis is sharded over a 1-D mesh (padded with zero-weight nodes to a
multiple of the device count), so the density evaluations are split across devices.

When the mean and covariance are not given they come from a pilot rule ``N(0, 4 I)`` (tensor
Gauss-Hermite with 24 nodes per axis, or RQMC beyond d = 3).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

from ._polynomials import _gauss_hermite
from ._samples import weighted_sums

EPS = float(np.finfo(np.float64).eps)
_DEFAULT_NODES = {1: 256, 2: 96, 3: 40}
MAX_POINTS = 2**21


def default_nodes(order: int, d: int) -> int:
    return max(_DEFAULT_NODES[d], 2 * order + 32 if d == 1 else order + _DEFAULT_NODES[d] // 2)


def tensor_rule(n: int, d: int):
    """Tensor Gauss-Hermite for N(0, I_d): nodes (n^d, d), probability weights (n^d,)."""
    x, w = _gauss_hermite(n)
    grids = jnp.meshgrid(*([x] * d), indexing="ij")
    wg = jnp.meshgrid(*([w] * d), indexing="ij")
    z = jnp.stack([g.reshape(-1) for g in grids], axis=1)
    return z, jnp.prod(jnp.stack([g.reshape(-1) for g in wg], axis=1), axis=1)


def rqmc_rules(d: int, log2_points: int, n_random: int, seed: int):
    """``n_random`` scrambled Sobol' sets of ``2^log2_points`` standard normal points each."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_random):
        u = qmc.Sobol(d, scramble=True, seed=rng).random_base2(log2_points)
        u = np.clip(u, 1e-300, 1.0 - 2**-53)
        out.append(ndtri(u))
    return jnp.asarray(np.stack(out))


def _shard_nodes(z, w):
    """With several devices, pad the node axis with zero-weight nodes to a multiple of the device count
    and shard it over a 1-D mesh (``NamedSharding``, axis "nodes"); the sums are unchanged (padded
    nodes carry weight 0). A no-op on one device or inside a trace."""
    devices = jax.devices()
    if len(devices) <= 1 or isinstance(z, jax.core.Tracer) or isinstance(w, jax.core.Tracer):
        return z, w
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    pad = (-z.shape[0]) % len(devices)
    if pad:
        z = jnp.concatenate([z, jnp.zeros((pad, z.shape[1]), z.dtype)])
        w = jnp.concatenate([w, jnp.zeros((pad,) + w.shape[1:], w.dtype)])
    mesh = Mesh(np.asarray(devices), ("nodes",))
    sharding = NamedSharding(mesh, PartitionSpec("nodes"))
    return jax.device_put(z, sharding), jax.device_put(w, sharding)


def _log_ratio_weights(logp: Callable, z, w, m, L):
    """Points ``x = m + L z`` and weights ``w p(x) / q(x)`` for ``q = N(m, L L^T)``."""
    z, w = _shard_nodes(z, w)
    d = z.shape[1]
    x = m + z @ L.T
    logdet = jnp.sum(jnp.log(jnp.abs(jnp.diag(L))))
    log_phi = -0.5 * jnp.sum(z * z, axis=1) - 0.5 * d * math.log(2 * math.pi)
    lp = jax.vmap(logp)(x)
    ratio = jnp.exp(lp - log_phi + logdet)
    if w.ndim == 2:
        ratio = ratio[:, None]
    return x, jnp.where(w > 0, w * ratio, 0.0)


def pilot_moments(logp: Callable, d: int, seed: int):
    """Mean and covariance of ``p`` from the pilot rule ``N(0, 4 I)``."""
    if d <= 3:
        z, w = tensor_rule(24, d)
    else:
        z = rqmc_rules(d, 14, 1, seed)[0]
        w = jnp.full(z.shape[0], 1.0 / z.shape[0])
    x, v = _log_ratio_weights(logp, z, w, jnp.zeros(d), 2.0 * jnp.eye(d))
    mass = v.sum()
    mean = (v @ x) / mass
    xc = x - mean
    cov = (xc * v[:, None]).T @ xc / mass
    return mean, cov


def quadrature_coefficients(logp: Callable, d: int, order: int, mean, cov, scale: float,
                            n_nodes: int | None, log2_points: int, n_random: int, seed: int):
    """``(values, errors)`` as described in the module docstring."""
    lam, V = jnp.linalg.eigh(0.5 * (cov + cov.T))
    L = jnp.linalg.cholesky(scale**2 * (V * jnp.maximum(lam, 1e-300)) @ V.T)
    if d <= 3:
        n = n_nodes or default_nodes(order, d)
        n_coarse = max(1, math.ceil(2 * n / 3))
        z, w = tensor_rule(n, d)
        zc, wc = tensor_rule(n_coarse, d)
        # one pass over both rules (one compilation): weight columns (fine, coarse)
        P, Pc = z.shape[0], zc.shape[0]
        w2 = jnp.concatenate([jnp.stack([w, jnp.zeros(P)], 1), jnp.stack([jnp.zeros(Pc), wc], 1)])
        x, v = _log_ratio_weights(logp, jnp.concatenate([z, zc]), w2, mean, L)
        sums, absum, _ = weighted_sums(x, v, order)
        fine, coarse = sums[0], sums[1]
        return fine, jnp.abs(fine - coarse) + 16.0 * EPS * absum[0]
    Z = rqmc_rules(d, log2_points, n_random, seed)
    R, P = Z.shape[0], Z.shape[1]
    # one pass over all replicates: weight column r is 1/P on replicate r's points
    w2 = jnp.kron(jnp.eye(R), jnp.full((P, 1), 1.0 / P))
    x, v = _log_ratio_weights(logp, Z.reshape(R * P, d), w2, mean, L)
    ests = weighted_sums(x, v, order)[0]
    return ests.mean(0), ests.std(0, ddof=1) / math.sqrt(n_random)
