"""Exact one-dimensional W2 between Gaussian mixtures through their quantile functions.

``W2^2(p, q) = int_0^1 (F^{-1}(u) - G^{-1}(u))^2 du = int (x - G^{-1}(F(x)))^2 p(x) dx``: the second form
is integrated over ``x`` by composite Gauss-Legendre (smooth integrand, no quantile singularity at
u = 0, 1), with ``G^{-1}(F(x))`` found by safeguarded Newton in log-CDF / log-survival space so that
tails keep full relative precision. The error estimate compares two panel counts.

Every law is evaluated as a list of *pseudo-components* ``(centre m_c, scale s_c, coefficients B_c)``:

    F(y) = sum_c [B_c0 Phi(z_c) - phi(z_c) sum_{p>=1} B_cp He_{p-1}(z_c)],   z_c = (y - m_c) / s_c,
    f(y) = sum_c phi(z_c) / s_c sum_{p>=0} B_cp He_p(z_c).

An explicit mixture has one pseudo-component per component with ``B = (w_k)`` (no expansion: exact).
A :class:`PushedCopies` law ``sum_k w_k sum_j v_j N(rho_k x_j, c_k)`` of ``N`` points and ``J`` terms would
have ``N J`` components; instead, for each term the points are binned into clusters of width
``h_k = s_k / (4 rho_k)`` (``s_k = sqrt(c_k)``), and a cluster with centre ``c`` contributes the Taylor series
of ``sum_j v_j Phi(z - eps_j)`` in ``eps_j = rho_k (x_j - c) / s_k`` (``|eps_j| <= 1/8``):
``B_p = w_k (rho_k / s_k)^p mu_p / p!`` with the cluster's moments ``mu_p = sum_j v_j (x_j - c)^p``,
``p <= 20``. The truncation is below ``(|z| / 8)^21 / 21!`` relative (5e-16 at ``|z| = 13``); beyond
``|z| = 20`` a cluster's contribution is below 1e-87 of its mass and is taken at its centre. The cost per
evaluation is then the number of clusters, which depends on the data's spread over ``h_k`` and not on
``N``, times 21. Partial moments for the discrete case come from the same series integrated
(``psi_1 = z Phi + phi``, ``psi_2 = (z^2 + 1) Phi + z phi``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import numpy as np
from scipy.special import log_ndtr, ndtr

from .._mixture import GaussianMixture, as_mixture
from .._precision import x64
from .._pushed import PushedCopies, as_pushed, is_pushed
from .._validation import check_positive_int
from ._estimate import Estimate

_SPAN = 12.0  # standard deviations either side of every component: tail mass < 1e-32
_NODES_PER_PANEL = 16
_ORDER = 20  # Taylor order of the cluster expansion
_RADIUS = 0.125  # |rho delta / s| bound within a cluster
_Z_SERIES = 20.0  # beyond this |z| a cluster is taken at its centre
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_GRID = 256  # points of the table that starts the quantile solves
_MANY_ATOMS = 2048  # above this many atoms the quantile edges come from interpolation on a grid
_BLOCK = 2**17  # (points x pseudo-components) elements per evaluation block (cache-sized)


# 2^16 panels are a million quantile nodes, far beyond the default's 1e-14 accuracy; more only costs time.
MAX_PANELS = 2**16


def w2_1d(p: Any, q: Any, *, n_panels: int = 96) -> Estimate:
    """Exact ``W2(p, q)`` between one-dimensional laws, with an error estimate.

    Parameters
    ----------
    p, q : GaussianMixture with ``dim == 1``, a :class:`PushedCopies` law (e.g. a generation or limit of
        empirical data, also inside a ``LimitDistribution``), or a result carrying one. Point masses are
        allowed: if only one law has a density the roles are swapped; if neither has one the discrete
        formula is used exactly.
    n_panels : int
        Gauss-Legendre panels (16 nodes each) on the support, at most ``MAX_PANELS``; the estimate is
        recomputed with half as many and the difference reported as ``error``.

    Notes
    -----
    Structured laws are never expanded into their ``N J`` components: their CDF and density are
    evaluated by the cluster series described in the module docstring, so a limit of 1e5 samples costs
    about as much as one of 1e3.
    """
    n_panels = check_positive_int(n_panels, "n_panels", allow_zero=False, maximum=MAX_PANELS)
    with jax.enable_x64(True):
        p, q = _one_dim(p, "p"), _one_dim(q, "q")
        if p.atoms is not None and q.atoms is not None:
            value = _w2_discrete(p.atoms, q.atoms)
            return Estimate(value, 4e-16 * max(1.0, value), "quantile-exact-discrete", {})
        if p.atoms is not None:
            p, q = q, p
        if q.atoms is not None:
            value, err = _w2_continuous_discrete(p, q.atoms)
            return Estimate(value, err, "quantile-exact-partial-moments", {})
        fine, coarse = _w2_squared(p, q, n_panels, max(n_panels // 2, 4))
    value = float(np.sqrt(max(fine["w2sq"], 0.0)))
    diff = abs(fine["w2sq"] - coarse["w2sq"])
    denom = np.sqrt(max(fine["w2sq"], 0.0)) + np.sqrt(max(coarse["w2sq"], 0.0))
    err = diff / denom if denom > 0 else np.sqrt(diff)
    # Newton residual: |delta T| <= solve_tol contributes at most 2 W2 tol + tol^2 to W2^2.
    err = float(err + fine["solve_err"] + 1e-15 * value)
    return Estimate(value, err, "quantile-gauss-legendre", {"n_nodes": fine["n"], "tail_mass": fine["tail"]})


# -- laws as pseudo-components ----------------------------------------------------------------


class _Law(NamedTuple):
    centers: np.ndarray  # (C,)
    scales: np.ndarray  # (C,)
    coef: np.ndarray  # (C, P + 1)
    lo: float  # quadrature span: every component to 12 sd
    hi: float
    a: float  # Newton bracket
    b: float
    mean: float
    second: float  # E X^2
    atoms: tuple | None = None  # (weights, positions) of a law without density, else None
    zcut: float = _Z_SERIES  # beyond this |z| a cluster is taken at its centre


def _one_dim(dist, name) -> _Law:
    if is_pushed(dist):
        law = as_pushed(dist)
        if law.dim != 1:
            raise ValueError(f"{name} must be one-dimensional (use .marginal or .project); got d={law.dim}")
        if law.has_density():
            return _from_pushed(law)
        dist = law.mixture
    gm = as_mixture(dist, name)
    if gm.dim != 1:
        raise ValueError(f"{name} must be one-dimensional (use .marginal or .project); got d={gm.dim}")
    return _from_mixture(gm)


def _from_mixture(gm: GaussianMixture) -> _Law:
    w = np.asarray(gm.weights)
    m = np.asarray(gm.means)[:, 0]
    v = np.asarray(gm.covs).reshape(len(w), -1)[:, 0]  # iso (K,), diag (K, 1) and full (K, 1, 1) alike
    keep = w > 0
    w, m, s = w[keep], m[keep], np.sqrt(v[keep])
    if not np.all(s > 0):
        return _Law(m, s, w[:, None], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, (w, m))
    return _Law(
        m, s, w[:, None],
        float(np.min(m - _SPAN * s)), float(np.max(m + _SPAN * s)),
        float(np.min(m - 40 * s)) - 40.0, float(np.max(m + 40 * s)) + 40.0,
        float(w @ m), float(w @ (m * m + s * s)), None,
    )


def _from_pushed(law: PushedCopies, radius: float = _RADIUS, zcut: float = _Z_SERIES) -> _Law:
    x = np.asarray(law.points)[:, 0]
    v = np.asarray(law.point_weights)
    rho, c, w = (np.asarray(a) for a in (law.rho, law.var, law.term_weights))
    keep = w > 0
    rho, c, w = rho[keep], c[keep], w[keep]
    s = np.sqrt(c)
    xmin, xmax = float(x.min()), float(x.max())
    fact = np.array([math.factorial(p) for p in range(_ORDER + 1)], dtype=np.float64)
    centers, scales, coefs = [], [], []
    for rk, sk, wk in zip(rho, s, w):
        if rk * (xmax - xmin) <= 2.0 * radius * sk:  # one cluster covers every point
            bins = np.zeros(x.size, dtype=np.int64)
            h = max(xmax - xmin, 1e-300)
            n_bins = 1
        else:
            h = 2.0 * radius * sk / rk
            bins = np.minimum(((x - xmin) / h).astype(np.int64), int((xmax - xmin) / h))
            n_bins = int(bins.max()) + 1
        used, inv = np.unique(bins, return_inverse=True)
        ctr = xmin + (used + 0.5) * h if n_bins > 1 else np.array([0.5 * (xmin + xmax)])
        delta = x - ctr[inv]
        mom = np.empty((used.size, _ORDER + 1))
        power = v.copy()
        for p in range(_ORDER + 1):
            mom[:, p] = np.bincount(inv, weights=power, minlength=used.size)
            power = power * delta
        ratio = (rk / sk) ** np.arange(_ORDER + 1)
        coefs.append(wk * mom * ratio / fact)
        centers.append(rk * ctr)
        scales.append(np.full(used.size, sk))
    centers, scales, coef = np.concatenate(centers), np.concatenate(scales), np.concatenate(coefs)
    xbar, x2 = float(v @ x), float(v @ (x * x))
    return _Law(
        centers, scales, coef,
        float(np.min(np.minimum(rho * xmin, rho * xmax) - _SPAN * s)), float(np.max(np.maximum(rho * xmin, rho * xmax) + _SPAN * s)),
        float(np.min(np.minimum(rho * xmin, rho * xmax) - 40 * s)) - 40.0, float(np.max(np.maximum(rho * xmin, rho * xmax) + 40 * s)) + 40.0,
        float(w @ rho) * xbar, float(w @ (rho * rho)) * x2 + float(w @ c), None, zcut,
    )


# -- evaluation (numpy: laws change shape on every call, so compiling would cost more than it saves) --


def _chunks(n: int, C: int):
    step = max(16, _BLOCK // max(C, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _hermite_sums(z, coef, offset: int, zcut: float = _Z_SERIES):
    """``sum_{p >= offset} coef[:, p] He_{p - offset}(z)`` for ``|z| <= 20`` (0 beyond), shape of ``z``.

    Clenshaw's recurrence for ``He_{k+1} = z He_k - k He_{k-1}``: ``b_k = c_k + z b_{k+1} - (k+1) b_{k+2}``,
    the sum is ``b_0``.
    """
    P = coef.shape[1] - 1
    if P < offset:
        return np.zeros_like(z)
    inside = np.abs(z) <= zcut
    zs = np.where(inside, z, 0.0)
    b1, b2, tmp = np.zeros_like(z), np.zeros_like(z), np.empty_like(z)
    for k in range(P - offset, -1, -1):
        np.multiply(zs, b1, out=tmp)
        tmp -= (k + 1) * b2
        tmp += coef[:, k + offset]
        b2, b1, tmp = b1, tmp, b2
    return np.where(inside, b1, 0.0)


def _signed_lse(a, b):
    """``log sum b e^a`` along axis 1 (zero weights ignored). A non-positive total (cancellation to rounding)
    gives the log of the rounding level of the largest term, so the result stays finite."""
    a = np.where(b == 0, -np.inf, a)
    top = np.max(a, axis=1)
    top_safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore"):
        total = np.sum(b * np.exp(a - top_safe[:, None]), axis=1)
    ok = total > 0
    return np.where(ok, top_safe + np.log(np.where(ok, total, 1.0)), top_safe + math.log(2.0**-52))


def _log_cdf(y, law: _Law, upper):
    """``log G(y)``, or ``log(1 - G(y))`` where ``upper`` (bool array like ``y``)."""
    out = np.empty_like(y)
    logc0 = np.log(law.coef[:, 0])
    for sl in _chunks(y.size, law.centers.size):
        z = (y[sl, None] - law.centers) / law.scales
        sgn = np.where(upper[sl], -1.0, 1.0)[:, None]
        main = logc0 + log_ndtr(sgn * z)
        if law.coef.shape[1] == 1:
            out[sl] = _lse(main)
            continue
        S = _hermite_sums(z, law.coef, 1, law.zcut)
        with np.errstate(divide="ignore"):
            corr = -0.5 * z * z - _HALF_LOG_2PI + np.log(np.abs(S))
        out[sl] = _signed_lse(np.concatenate([main, corr], 1), np.concatenate([np.ones_like(z), -sgn * np.sign(S)], 1))
    return out


def _log_pdf(y, law: _Law):
    out = np.empty_like(y)
    for sl in _chunks(y.size, law.centers.size):
        z = (y[sl, None] - law.centers) / law.scales
        base = -0.5 * z * z - _HALF_LOG_2PI - np.log(law.scales)
        if law.coef.shape[1] == 1:
            out[sl] = _lse(base + np.log(law.coef[:, 0]))
            continue
        S = _hermite_sums(z, law.coef, 0, law.zcut)
        S = np.where(np.abs(z) <= law.zcut, S, law.coef[:, 0])
        with np.errstate(divide="ignore"):
            out[sl] = _signed_lse(base + np.log(np.abs(S)), np.sign(S))
    return out


def density_1d(law: PushedCopies, y: np.ndarray, score: bool):
    """``log p`` (and ``(log p)' = p'/p`` when ``score``) of a one-dimensional structured law at ``y``, by the cluster
    series with clusters of radius 1/32 (truncation below ``(|z|/32)^21 / 21!``, 1e-18 relative at ``|z| = 40``).

    ``p' = -sum_c phi(z_c) / s_c^2 sum_p B_cp He_{p+1}(z_c)``. Returns ``(logp, score or None, far)``, ``far`` marking
    points farther than 30 scales from every cluster, which the caller evaluates directly.
    """
    L = law._cache.get("series_1d")
    if L is None:
        L = law._cache["series_1d"] = _from_pushed(law, radius=1.0 / 32.0, zcut=40.0)
    logp = _log_pdf(y, L)
    far = np.ones(y.size, bool)
    sc = np.empty_like(y) if score else None
    shifted = np.concatenate([np.zeros((L.coef.shape[0], 1)), L.coef], axis=1)  # coefficients of He_{p+1}
    for sl in _chunks(y.size, L.centers.size):
        z = (y[sl, None] - L.centers) / L.scales
        far[sl] = np.min(np.abs(z), axis=1) > 30.0
        if score:
            S = _hermite_sums(z, shifted, 0, L.zcut)
            S = np.where(np.abs(z) <= L.zcut, S, shifted[:, 1] * z)  # centre approximation: B_0 He_1
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                top = np.max(-0.5 * z * z - 2.0 * np.log(L.scales), axis=1)
                val = np.sum(-S * np.exp(-0.5 * z * z - 2.0 * np.log(L.scales) - top[:, None]), axis=1)
                sc[sl] = val * np.exp(top - _HALF_LOG_2PI - logp[sl])
    return logp, sc, far


def _lse(a):
    top = np.max(a, axis=1)
    top_safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore", divide="ignore"):
        return top_safe + np.log(np.sum(np.exp(a - top_safe[:, None]), axis=1))


def _partial_integrals(y, law: _Law):
    """``(J1, J2)`` at ``y``: ``J1 = int_{-inf}^y (y - x) p(x) dx``, ``J2 = int_{-inf}^y (y - x)^2 p(x) dx``.

    Per pseudo-component ``J1 = s sum_p (-eps)^p psi_1^{(p)}(z) / p!`` etc.; with ``psi_1' = Phi`` and
    ``(psi_2 / 2)' = psi_1``: ``J1 = s [B_0 psi_1 - B_1 Phi + phi sum_{p>=2} B_p He_{p-2}]`` and
    ``J2 = 2 s^2 [B_0 psi_2/2 - B_1 psi_1 + B_2 Phi - phi sum_{p>=3} B_p He_{p-3}]``.
    """
    J1, J2 = np.empty_like(y), np.empty_like(y)
    coef, P = law.coef, law.coef.shape[1] - 1
    for sl in _chunks(y.size, law.centers.size):
        z = (y[sl, None] - law.centers) / law.scales
        Phi = ndtr(z)
        phi = np.exp(-0.5 * z * z - _HALF_LOG_2PI)
        psi1 = z * Phi + phi
        psi2h = 0.5 * ((z * z + 1.0) * Phi + z * phi)
        j1 = coef[:, 0] * psi1
        j2 = coef[:, 0] * psi2h
        if P >= 1:
            j1 = j1 - coef[:, 1] * Phi + phi * _hermite_sums(z, coef, 2)
            j2 = j2 - coef[:, 1] * psi1 - phi * _hermite_sums(z, coef, 3)
        if P >= 2:
            j2 = j2 + coef[:, 2] * Phi
        J1[sl] = (law.scales * j1).sum(1)
        J2[sl] = (2.0 * law.scales**2 * j2).sum(1)
    return J1, J2


def _tails(y, law: _Law):
    """``(log G, log(1 - G), log g)`` at ``y``; the survival is evaluated only where ``G > 1/2`` (elsewhere
    ``log1p(-G)`` is exact to rounding and never the smaller of the two)."""
    lower = _log_cdf(y, law, np.zeros(y.size, bool))
    with np.errstate(divide="ignore"):
        upper = np.log1p(-np.exp(np.minimum(lower, 0.0)))
    hi = lower > -math.log(2.0)
    if hi.any():
        upper[hi] = _log_cdf(y[hi], law, np.ones(int(hi.sum()), bool))
    return lower, upper, _log_pdf(y, law)


def _solve_quantile(target: np.ndarray, use_upper: np.ndarray, law: _Law, max_iter: int = 100):
    """``G^{-1}`` at log-levels ``target`` (log-survival where ``use_upper``); returns (y, error bound).

    A table of ``log G``, ``log(1 - G)`` and ``log g`` on a grid of the law's span brackets every target between two
    grid points; the cubic Hermite interpolant of the log-CDF there (slopes ``g / G``) starts a safeguarded Newton
    (bisection when a step leaves the bracket), which then needs about two steps. Only unconverged points are
    iterated. A point stops when its step is at the rounding level (2e-15 relative), when a Newton step below 1e-9
    follows one below 1e-4 (quadratic convergence: the next correction, about ``step^3 / prev^2``, is below
    rounding; that estimate is what is reported), or when a step at the evaluation's rounding level (1e-11)
    no longer shrinks.
    """
    grid = np.linspace(law.lo, law.hi, _GRID)
    lower, upper, dens = _tails(grid, law)
    lower, upper = np.maximum.accumulate(lower), np.minimum.accumulate(upper)  # monotone despite rounding
    i_lo = np.searchsorted(lower, target, side="right")  # first grid value above the target
    i_up = np.searchsorted(-upper, -target, side="left")  # first grid value with survival <= target
    i = np.where(use_upper, i_up, i_lo)
    ia, ib = np.maximum(i - 1, 0), np.minimum(i, _GRID - 1)
    a = np.where(i > 0, grid[ia], law.a)
    b = np.where(i < _GRID, grid[ib], law.b)
    sign = np.where(use_upper, -1.0, 1.0)
    table = lambda j: np.where(use_upper, upper[j], lower[j])  # noqa: E731
    fa, fb = table(ia), table(ib)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        da = sign * np.exp(dens[ia] - fa) * (b - a)  # d log G / dt on t in [0, 1]
        db = sign * np.exp(dens[ib] - fb) * (b - a)
        frac = np.clip(np.nan_to_num((target - fa) / (fb - fa)), 0.0, 1.0)
        for _ in range(3):  # Newton on the cubic Hermite interpolant, kept in [0, 1]
            t = frac
            h00, h10, h01, h11 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
            val = h00 * fa + h10 * da + h01 * fb + h11 * db - target
            der = (6 * t**2 - 6 * t) * fa + (3 * t**2 - 4 * t + 1) * da + (-6 * t**2 + 6 * t) * fb + (3 * t**2 - 2 * t) * db
            frac = np.clip(np.nan_to_num(t - val / der, nan=t[0] if t.size else 0.0), 0.0, 1.0)
    interior = (i > 0) & (i < _GRID) & np.isfinite(frac)
    y = np.where(interior, a + frac * (b - a), np.where(i > 0, a, b))
    err = np.zeros_like(y)
    prev = np.full_like(y, np.inf)
    active = np.arange(y.size)
    for _ in range(max_iter):
        if active.size == 0:
            break
        ya, up, sg = y[active], use_upper[active], sign[active]
        lc = _log_cdf(ya, law, up)
        resid = lc - target[active]  # sign * resid is increasing in y
        too_big = sg * resid > 0
        aa = np.where(too_big, a[active], np.maximum(a[active], ya))
        bb = np.where(too_big, np.minimum(b[active], ya), b[active])
        a[active], b[active] = aa, bb
        slope = sg * np.exp(_log_pdf(ya, law) - lc)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = ya - resid / slope
        ok = np.isfinite(newton) & (newton >= aa) & (newton <= bb)
        y_new = np.where(ok, newton, 0.5 * (aa + bb))
        step = np.abs(y_new - ya)
        y[active] = y_new
        scale = np.maximum(1.0, np.abs(y_new))
        p_step = prev[active]
        quadratic = ok & (step <= 1e-9 * scale) & (p_step <= 1e-4 * scale)
        stalled = (step <= 1e-11 * scale) & (step >= 0.25 * p_step)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            predicted = np.where(quadratic & (p_step > 0), step**3 / np.maximum(p_step, 1e-300) ** 2, step)
        err[active] = np.maximum(np.minimum(predicted, step), 2e-16 * scale)
        done = (step <= 2e-15 * scale) | (resid == 0) | quadratic | stalled
        prev[active] = step
        active = active[~done]
    return y, float(np.max(err, initial=0.0))


# -- the three cases -----------------------------------------------------------------------------


def _w2_squared(p: _Law, q: _Law, n_fine: int, n_coarse: int):
    """W2^2 on ``n_fine`` and ``n_coarse`` panels (both node sets evaluated and solved together)."""
    nodes, weights = np.polynomial.legendre.leggauss(_NODES_PER_PANEL)
    xs, ws = [], []
    for n_panels in (n_fine, n_coarse):
        edges = np.linspace(p.lo, p.hi, n_panels + 1)
        half = 0.5 * np.diff(edges)
        mid = 0.5 * (edges[1:] + edges[:-1])
        xs.append((mid[:, None] + half[:, None] * nodes).ravel())
        ws.append((half[:, None] * weights).ravel())
    x = np.concatenate(xs)
    lower, upper, dens = _tails(x, p)
    use_upper = upper < lower  # solve in whichever tail keeps precision
    T, solve_err = _solve_quantile(np.where(use_upper, upper, lower), use_upper, q)
    terms = np.exp(dens) * (x - T) ** 2
    tail = float(2.0 * np.exp(log_ndtr(-_SPAN)))
    nf = xs[0].size
    fine = {"w2sq": float(np.sum(ws[0] * terms[:nf])), "solve_err": solve_err, "n": nf, "tail": tail}
    coarse = {"w2sq": float(np.sum(ws[1] * terms[nf:]))}
    return fine, coarse


def _w2_continuous_discrete(p: _Law, atoms) -> tuple[float, float]:
    """``W2`` between a law with a density ``p`` and a discrete law, in closed form.

    The monotone map sends ``[e_{j-1}, e_j]``, ``e_j = F^{-1}(c_j)`` (``c_j`` the cumulative weights of the
    sorted atoms ``y_j``), to ``y_j``, so ``W2^2 = sum_j int_{e_{j-1}}^{e_j} (x - y_j)^2 p(x) dx``: differences of
    the cumulative partial moments ``M1(t) = t F(t) - J1(t)``, ``M2(t) = t^2 F(t) - 2 t J1(t) + J2(t)``, with
    ``F(e_j) = c_j``, computed after shifting both laws by the atoms' mean (W2 is shift invariant).
    Returns (W2, error estimate).
    """
    wq, yq = atoms
    order = np.argsort(yq)
    wq, yq = wq[order], yq[order]
    shift = float(wq @ yq)
    below = np.cumsum(wq)[:-1]  # c_1..c_{N-1}
    above = np.cumsum(wq[::-1])[::-1][1:]  # 1 - c_j, computed without cancellation
    use_upper = above < below
    target = np.where(use_upper, np.log(above), np.log(below))
    # shifted law: centres move by -shift
    shifted = p._replace(centers=p.centers - shift, lo=p.lo - shift, hi=p.hi - shift, a=p.a - shift, b=p.b - shift)
    y = yq - shift
    if below.size > _MANY_ATOMS:
        t, J1, J2, solve_err = _edges_by_interpolation(below, shifted)
    else:
        edges, solve_err = _solve_quantile(target, use_upper, shifted) if below.size else (np.zeros(0), 0.0)
        t = edges
        J1, J2 = _partial_integrals(t, shifted)
    c = below
    M1 = t * c - J1
    M2 = t * t * c - 2.0 * t * J1 + J2
    mean = p.mean - shift
    second = p.second - 2.0 * shift * p.mean + shift * shift
    M1 = np.concatenate([[0.0], M1, [mean]])
    M2 = np.concatenate([[0.0], M2, [second]])
    dM1, dM2 = np.diff(M1), np.diff(M2)
    w2sq = float(np.sum(dM2 - 2.0 * y * dM1 + y * y * wq))
    value = math.sqrt(max(w2sq, 0.0))
    spread = float(np.max(np.abs(y)) + math.sqrt(max(second, 0.0)))
    err = 1e-13 * max(value, spread) + 2.0 * solve_err + 1e-15 * spread * spread * math.sqrt(max(y.size, 1)) / max(value, 1e-300)
    return value, float(min(err, max(value, spread)))


def _edges_by_interpolation(levels: np.ndarray, law: _Law):
    """Edges ``e_j = F^{-1}(c_j)`` and ``J1(e_j)``, ``J2(e_j)`` for many sorted levels without a solve per level.

    ``F``, ``f``, ``f'``, ``J1`` and ``J2`` are evaluated exactly on a grid of the span (spacing at most an eighth of
    the smallest scale, at least 4096 points); in each cell ``F`` is the quintic Hermite interpolant of
    ``(F, f, f')``, solved for ``c_j`` by Newton, and ``J1``, ``J2`` the quintic interpolants of ``(J1, F, f)`` and
    ``(J2, 2 J1, 2 F)`` (``J1' = F``, ``J2' = 2 J1``). The edge error is measured by exact evaluation at up to
    512 of the edges and returned as the solve error.
    """
    G = int(np.clip(8.0 * (law.hi - law.lo) / float(np.min(law.scales)), 4096, 65536))
    g = np.linspace(law.lo, law.hi, G)
    F = np.exp(_log_cdf(g, law, np.zeros(G, bool)))
    F = np.maximum.accumulate(F)
    f = np.exp(_log_pdf(g, law))
    df = _pdf_derivative(g, law)
    J1g, J2g = _partial_integrals(g, law)
    i = np.clip(np.searchsorted(F, levels, side="right") - 1, 0, G - 2)
    h = g[1] - g[0]
    F0, F1, d0, d1, s0, s1 = F[i], F[i + 1], f[i] * h, f[i + 1] * h, df[i] * h * h, df[i + 1] * h * h
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip(np.nan_to_num((levels - F0) / (F1 - F0), nan=0.5), 0.0, 1.0)
        for _ in range(8):
            val, der = _quintic(t, F0, F1, d0, d1, s0, s1)
            t = np.clip(np.nan_to_num(t - (val - levels) / der, nan=0.5), 0.0, 1.0)
    e = g[i] + t * h
    J1 = _quintic(t, J1g[i], J1g[i + 1], F0 * h, F1 * h, d0 * h, d1 * h)[0]
    J2 = _quintic(t, J2g[i], J2g[i + 1], 2 * J1g[i] * h, 2 * J1g[i + 1] * h, 2 * F0 * h * h, 2 * F1 * h * h)[0]
    check = np.unique(np.linspace(0, levels.size - 1, min(levels.size, 512)).astype(np.int64))
    Fe = np.exp(_log_cdf(e[check], law, np.zeros(check.size, bool)))
    fe = np.exp(_log_pdf(e[check], law))
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.nan_to_num(np.abs(Fe - levels[check]) / fe, nan=0.0, posinf=0.0)
    return e, J1, J2, float(np.max(err, initial=0.0))


def _quintic(t, v0, v1, d0, d1, s0, s1):
    """Quintic Hermite interpolant on [0, 1] with values, first and second derivatives; returns (value, derivative)."""
    t2, t3, t4, t5 = t * t, t**3, t**4, t**5
    h0 = 1 - 10 * t3 + 15 * t4 - 6 * t5
    h1 = t - 6 * t3 + 8 * t4 - 3 * t5
    h2 = 0.5 * (t2 - 3 * t3 + 3 * t4 - t5)
    h3 = 0.5 * (t3 - 2 * t4 + t5)
    h4 = -4 * t3 + 7 * t4 - 3 * t5
    h5 = 10 * t3 - 15 * t4 + 6 * t5
    val = h0 * v0 + h1 * d0 + h2 * s0 + h3 * s1 + h4 * d1 + h5 * v1
    g0 = -30 * t2 + 60 * t3 - 30 * t4
    g1 = 1 - 18 * t2 + 32 * t3 - 15 * t4
    g2 = 0.5 * (2 * t - 9 * t2 + 12 * t3 - 5 * t4)
    g3 = 0.5 * (3 * t2 - 8 * t3 + 5 * t4)
    g4 = -12 * t2 + 28 * t3 - 15 * t4
    g5 = 30 * t2 - 60 * t3 + 30 * t4
    return val, g0 * v0 + g1 * d0 + g2 * s0 + g3 * s1 + g4 * d1 + g5 * v1


def _pdf_derivative(y, law: _Law):
    """``f'(y) = -sum_c phi(z_c) / s_c^2 sum_p B_cp He_{p+1}(z_c)`` (linear scale)."""
    out = np.empty_like(y)
    shifted = np.concatenate([np.zeros((law.coef.shape[0], 1)), law.coef], axis=1)
    for sl in _chunks(y.size, law.centers.size):
        z = (y[sl, None] - law.centers) / law.scales
        S = _hermite_sums(z, shifted, 0, law.zcut)
        S = np.where(np.abs(z) <= law.zcut, S, law.coef[:, 0] * z)
        with np.errstate(under="ignore"):
            out[sl] = -np.sum(np.exp(-0.5 * z * z - _HALF_LOG_2PI) / law.scales**2 * S, axis=1)
    return out


def _w2_discrete(p_atoms, q_atoms) -> float:
    """Both laws discrete: integrate the squared difference of the step quantile functions."""
    wp, xp = p_atoms
    wq, xq = q_atoms
    op, oq = np.argsort(xp), np.argsort(xq)
    xp, wp, xq, wq = xp[op], wp[op], xq[oq], wq[oq]
    cp, cq = np.cumsum(wp), np.cumsum(wq)
    cp[-1] = cq[-1] = 1.0
    u = np.unique(np.concatenate([[0.0], cp, cq]))
    mid = 0.5 * (u[1:] + u[:-1])
    qp = xp[np.minimum(np.searchsorted(cp, mid), xp.size - 1)]
    qq = xq[np.minimum(np.searchsorted(cq, mid), xq.size - 1)]
    return float(np.sqrt(np.sum(np.diff(u) * (qp - qq) ** 2)))
