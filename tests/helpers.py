"""Canonical test problems and comparison helpers."""

from __future__ import annotations

import numpy as np

import hermite_limit as hl


def random_mixture(rng: np.random.Generator, K: int, d: int, cov_type: str = "full", spread: float = 2.0):
    """A random mixture with well-conditioned covariances of the given structure."""
    w = rng.dirichlet(np.ones(K))
    means = spread * rng.standard_normal((K, d))
    if cov_type == "iso":
        covs = rng.uniform(0.2, 2.0, K)
    elif cov_type == "diag":
        covs = rng.uniform(0.2, 2.0, (K, d))
    else:
        A = rng.standard_normal((K, d, d)) / np.sqrt(d)
        covs = A @ np.swapaxes(A, 1, 2) + 0.2 * np.eye(d)
    return hl.GaussianMixture(w, means, covs)


def bimodal_1d():
    """The canonical 1-D test law: 0.3 N(-2, 0.25) + 0.7 N(1.5, 0.5)."""
    return hl.GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.25, 0.5])
