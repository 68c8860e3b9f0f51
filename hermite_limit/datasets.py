"""Built-in data: small mixtures with known structure used by the checks, the CLI and the notebooks."""

from __future__ import annotations

import numpy as np

from ._mixture import GaussianMixture
from ._validation import check_positive_int

PRESETS = ("seed-gmm10", "bimodal-1d", "ring-2d")


def seed_gmm10(sigma: float = 0.6, n_components: int = 5, dim: int = 10, separation: float = 3.0) -> GaussianMixture:
    """The seeds' synthetic law: equal-weight mixture of ``N(mu_k, sigma^2 I_10)``, k = 1..5.

    The papers do not give the means; ours are ``separation`` times the first five coordinate
    axes (pairwise distance ``separation * sqrt(2)``, so the modes are well separated for
    ``sigma = 0.6``, the value a public reproduction reports). Deterministic: no random draw.
    """
    K = check_positive_int(n_components, "n_components", allow_zero=False)
    d = check_positive_int(dim, "dim", allow_zero=False)
    if K > d:
        raise ValueError(f"n_components must be <= dim for axis-aligned means; got {K} > {d}")
    means = separation * np.eye(d)[:K]
    return GaussianMixture(np.full(K, 1.0 / K), means, np.full(K, sigma**2))


def bimodal_1d() -> GaussianMixture:
    """``0.3 N(-2, 0.5^2) + 0.7 N(1.5, 0.5)``: asymmetric, with visible high-order structure."""
    return GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.25, 0.5])


def ring_2d(n_components: int = 8, radius: float = 3.0, variance: float = 0.1) -> GaussianMixture:
    """Equal-weight Gaussians on a circle: structure at angular frequency ``n_components``."""
    K = check_positive_int(n_components, "n_components", allow_zero=False)
    angles = 2 * np.pi * np.arange(K) / K
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture(np.full(K, 1.0 / K), means, np.full(K, variance))


def preset(name: str) -> GaussianMixture:
    """A built-in mixture by name: one of :data:`PRESETS`."""
    builders = {"seed-gmm10": seed_gmm10, "bimodal-1d": bimodal_1d, "ring-2d": ring_2d}
    if name not in builders:
        raise ValueError(f"preset must be one of {sorted(builders)}; got preset={name!r}")
    return builders[name]()
