"""The Ornstein-Uhlenbeck semigroup on Gaussian mixtures.

``P_t mu = law(e^{-t} X + sqrt(1 - e^{-2t}) Z)``: each component ``N(m, S)`` goes to
``N(rho m, rho^2 S + (1 - rho^2) I)`` with ``rho = e^{-t}``, weights unchanged.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ._mixture import GaussianMixture, as_mixture
from ._precision import x64
from ._validation import check_time


@x64
def ou_push(dist: Any, t: Any) -> GaussianMixture:
    """``P_t dist``: the law after OU time ``t >= 0`` (``t = 0`` is the identity).

    Parameters
    ----------
    dist : GaussianMixture (or a result carrying ``.mixture``)
    t : float, OU time; may be a traced JAX scalar inside ``jit``.

    Notes
    -----
    ``N(m, S) -> N(rho m, rho^2 S + (1 - rho^2) I)``, ``rho = e^{-t}``; ``1 - rho^2`` is computed as
    ``-expm1(-2t)`` so that small times keep full relative precision. A point mass at ``x`` becomes
    ``N(rho x, (1 - rho^2) I)``. The covariance structure (iso/diag/full) is preserved.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> p = hl.ou_push(hl.empirical([[2.0]]), 0.5)
    >>> round(float(p.means[0, 0]), 12), round(float(p.covs[0]), 12)
    (1.213061319426, 0.632120558829)
    """
    gm = as_mixture(dist)
    t = check_time(t, "t", allow_zero=True)
    return _push(gm, t)


def _push(gm: GaussianMixture, t) -> GaussianMixture:
    """Unchecked push of a mixture by a scalar (possibly traced) time."""
    means, covs = push_arrays(gm.means, gm.covs, gm.cov_type, t)
    return GaussianMixture.tree_unflatten(None, (gm.weights, means, covs))


def push_arrays(means, covs, cov_type: str, t, xp=jnp):
    """Push component arrays; an array ``t`` of shape (J,) gives J copies along a new leading axis.

    ``xp`` is the array module: ``jax.numpy`` (traceable) or ``numpy`` (host-side bookkeeping).
    """
    t = xp.asarray(t, dtype=xp.float64)
    rho = xp.exp(-t)
    added = -xp.expm1(-2.0 * t)
    # expand rho/added to broadcast over the component axes (K, d[, d]) behind the copy axis
    extra = {"iso": 1, "diag": 2, "full": 3}[cov_type]
    r_m = rho.reshape(t.shape + (1, 1))
    r_c = (rho * rho).reshape(t.shape + (1,) * extra)
    a_c = added.reshape(t.shape + (1,) * extra)
    new_covs = r_c * covs + a_c * (xp.eye(means.shape[-1]) if cov_type == "full" else 1.0)
    return r_m * means, new_covs
