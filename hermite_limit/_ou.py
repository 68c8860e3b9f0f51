"""The Ornstein-Uhlenbeck semigroup on Gaussian mixtures.

``P_t mu = law(e^{-t} X + sqrt(1 - e^{-2t}) Z)``: each component ``N(m, S)`` goes to
``N(rho m, rho^2 S + (1 - rho^2) I)`` with ``rho = e^{-t}``, weights unchanged.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

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
    # P_t p has a density when p has one or when t > 0 (known statically only for a concrete t)
    density = True if gm._density or (isinstance(t, (int, float, np.integer, np.floating)) and t > 0) else None
    t = jnp.asarray(t, dtype=jnp.float64)
    rho2 = jnp.exp(-2.0 * t)
    added = -jnp.expm1(-2.0 * t)
    noise = jnp.eye(gm.dim) if gm.cov_type == "full" else 1.0
    covs = rho2 * gm.covs + added * noise
    return GaussianMixture._from_arrays(gm.weights, jnp.exp(-t) * gm.means, covs, density)
