"""TV, KL and chi2 between low-dimensional (d = 1, 2) mixtures by composite Gauss-Legendre quadrature.

The box covers every component of both laws to 12 standard deviations (outside mass < 1e-30 per
component, reported as ``tail_mass``). Each value is computed on two grids (``n_panels`` and half of
it) and their difference is the reported error. Integrands use log-densities so that tails where
both densities underflow contribute exactly zero rather than NaN:

    TV   = (1/2) int |p - q|
    KL   = int p (log p - log q)
    chi2 = int q (p/q - 1)^2 = int q expm1(log p - log q)^2
"""

from __future__ import annotations

from typing import Any, Callable

import jax.numpy as jnp
import numpy as np
from scipy.special import log_ndtr

from .._mixture import GaussianMixture, as_mixture
from .._precision import x64
from .._validation import check_positive_int
from ._estimate import Estimate

_SPAN = 12.0
_NODES_PER_PANEL = 8
_MAX_NODES = 4_000_000


def tv_distance(p: Any, q: Any, *, n_panels: int | None = None) -> Estimate:
    """Total variation ``(1/2) int |p - q|`` between mixtures in d = 1 or 2, with an error estimate."""
    return _divergence(p, q, n_panels, "tv", lambda lp, lq: 0.5 * np.abs(np.exp(lp) - np.exp(lq)))


def kl_divergence(p: Any, q: Any, *, n_panels: int | None = None) -> Estimate:
    """``KL(p || q) = int p log(p/q)`` between mixtures in d = 1 or 2, with an error estimate."""
    return _divergence(p, q, n_panels, "kl", lambda lp, lq: _xlogy_terms(lp, lq))


def chi2_divergence(p: Any, q: Any, *, n_panels: int | None = None) -> Estimate:
    """``chi2(p || q) = int (p - q)^2 / q`` between mixtures in d = 1 or 2, with an error estimate."""
    return _divergence(p, q, n_panels, "chi2", lambda lp, lq: np.exp(lq) * np.expm1(lp - lq) ** 2)


def _xlogy_terms(lp, lq):
    with np.errstate(invalid="ignore"):
        out = np.exp(lp) * (lp - lq)
    return np.where(np.isneginf(lp), 0.0, out)


@x64
def _divergence(p, q, n_panels, kind: str, integrand: Callable) -> Estimate:
    p, q = _as_law(p, "p"), _as_law(q, "q")
    if p.dim != q.dim:
        raise ValueError(f"p and q must have the same dimension; got {p.dim} and {q.dim}")
    if p.dim > 2:
        raise ValueError(f"quadrature divergences need d <= 2 (got d={p.dim}); use marginals or Gaussian closed forms")
    for name, gm in (("p", p), ("q", q)):
        if not gm.has_density():
            raise ValueError(f"{name} has point-mass components and no density; smooth it first (hl.ou_push)")
    if n_panels is None:
        n_panels = 256 if p.dim == 1 else 64
    n_panels = check_positive_int(n_panels, "n_panels", allow_zero=False)
    if (n_panels * _NODES_PER_PANEL) ** p.dim > _MAX_NODES:
        raise ValueError(f"n_panels={n_panels} needs more than {_MAX_NODES:,} nodes in d={p.dim}; lower it")
    box = _box(p, q)
    fine = _integrate(p, q, box, n_panels, integrand)
    coarse = _integrate(p, q, box, max(n_panels // 2, 2), integrand)
    tail = _tail_mass(p) + _tail_mass(q)
    err = abs(fine - coarse) + 1e-15 * abs(fine) + (tail if kind == "tv" else 0.0)
    n_nodes = (n_panels * _NODES_PER_PANEL) ** p.dim
    return Estimate(float(fine), float(err), f"gauss-legendre-{p.dim}d", {"n_nodes": n_nodes, "tail_mass": tail})


def _as_law(dist, name):
    """A mixture, or a structured law (:class:`PushedCopies`) kept as it is: never expanded into components."""
    from .._pushed import as_pushed, is_pushed

    return as_pushed(dist) if is_pushed(dist) else as_mixture(dist, name)


def _box(p, q):
    from .._pushed import PushedCopies

    lo, hi = [], []
    for gm in (p, q):
        if isinstance(gm, PushedCopies):  # term k spans rho_k [min x, max x] +- 12 sqrt(c_k)
            x = np.asarray(gm.points)
            rho, sd = np.asarray(gm.rho)[:, None], np.sqrt(np.asarray(gm.var))[:, None]
            lo.append((rho * x.min(axis=0) - _SPAN * sd).min(axis=0))
            hi.append((rho * x.max(axis=0) + _SPAN * sd).max(axis=0))
            continue
        sd = np.sqrt(np.diagonal(np.asarray(gm.full_covs()), axis1=1, axis2=2))
        m = np.asarray(gm.means)
        lo.append((m - _SPAN * sd).min(axis=0))
        hi.append((m + _SPAN * sd).max(axis=0))
    return np.minimum(*lo), np.maximum(*hi)


def _logpdf(law, x):
    """Log-density at the nodes; a one-dimensional structured law by its exact cluster series (cost independent of N)."""
    from .._pushed import PushedCopies

    if isinstance(law, PushedCopies) and law.dim == 1:
        from ._wasserstein_1d import _from_pushed, _log_pdf

        return _log_pdf(np.asarray(x, dtype=np.float64)[:, 0], _from_pushed(law))
    return np.asarray(law.logpdf(jnp.asarray(x)))


def _panel_rule(lo: float, hi: float, n_panels: int):
    nodes, weights = np.polynomial.legendre.leggauss(_NODES_PER_PANEL)
    edges = np.linspace(lo, hi, n_panels + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    return (mid[:, None] + half[:, None] * nodes).ravel(), (half[:, None] * weights).ravel()


def _integrate(p, q, box, n_panels, integrand) -> float:
    lo, hi = box
    rules = [_panel_rule(lo[j], hi[j], n_panels) for j in range(p.dim)]
    if p.dim == 1:
        x = rules[0][0][:, None]
        w = rules[0][1]
    else:
        (x0, w0), (x1, w1) = rules
        X0, X1 = np.meshgrid(x0, x1, indexing="ij")
        x = np.stack([X0.ravel(), X1.ravel()], axis=1)
        w = np.outer(w0, w1).ravel()
    lp = _logpdf(p, x)
    lq = _logpdf(q, x)
    return float(np.sum(w * integrand(lp, lq)))


def _tail_mass(gm: GaussianMixture) -> float:
    """Mass of ``gm`` outside ``mean +- 12 sd`` of each of its own components, summed over axes."""
    return float(2.0 * gm.dim * np.exp(log_ndtr(-_SPAN)))
