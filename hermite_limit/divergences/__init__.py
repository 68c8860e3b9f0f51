"""Distances and divergences that need no sampling: Gaussian closed forms, exact 1-D W2, quadrature."""

from ._estimate import Estimate as Estimate
from ._gaussian import gaussian_chi2 as gaussian_chi2
from ._gaussian import gaussian_kl as gaussian_kl
from ._gaussian import gaussian_w2 as gaussian_w2
from ._quadrature import chi2_divergence as chi2_divergence
from ._quadrature import kl_divergence as kl_divergence
from ._quadrature import tv_distance as tv_distance
from ._wasserstein_1d import w2_1d as w2_1d
