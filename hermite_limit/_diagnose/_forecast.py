"""Forecast from fitted parameters with their uncertainty, and the inverse filter.

Forecast (constant ``t0``, ``p_0 = p_data``). Per order m, ``f_m^{(k)}`` follows
``f^{(k+1)} = rho^m (alpha + (1 - alpha) f^{(k)})``, ``f^{(0)} = 1``, and tends to the limit filter
``lambda_m = alpha rho^m / (1 - (1 - alpha) rho^m)``. Reported, each as a point value and a 95% interval:

* the limit's spectrum ``E_m(p_inf) = lambda_m^2 E_m(p_data)``, ``E_m = sum_{|n|=m} a_n^2``;
* the loss per order ``1 - lambda_m`` (fraction of every order-m coefficient lost in the limit);
* the distance to the limit ``D_k = sqrt(sum_m (f_m^{(k)} - lambda_m)^2 E_m / sum_m (1 - lambda_m)^2 E_m)`` (1 at
  the data, 0 at the limit), and the number of generations until ``D_k <= within``.

Uncertainty is propagated by parametric draws: ``theta ~ N(theta_hat, Cov(theta_hat))`` and the data's
coefficients ``b ~ N(b_hat, Cov(b_hat))`` (the GLS covariance of the fitted latent vector at ``theta_hat``),
independently; the interval is the 2.5/97.5 % quantiles of the draws. ``E_m`` is debiased by the trace
of its coefficients' covariance.

Inverse filter. A coefficient of a law that the fitted recursion made from the data, ``a_n = f_m a^data_n``
(``f_m = lambda_m`` for the limit, ``f_m^{(k)}`` for generation k), gives ``a^data_n = a_n / f_m`` with
standard error ``se(a_n) / f_m`` (plus, with a parameter covariance, the delta-method term
``|a_n| |d f_m / d theta| ... / f_m^2``). An order is informative when its recovered energy exceeds its noise,
``sum_{|n|=m} a^data_n^2 > sum_{|n|=m} se_n^2`` (in one dimension: ``se < |value|``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np

from .._mixture import _check_key
from .._precision import x64
from .._validation import _scalar, check_alpha, check_positive_int, check_time
from ..hermite._indices import check_order, graded_indices


def factors(alpha: float, t0: float, order: int, n: int) -> np.ndarray:
    """``f_m^{(k)}``, k = 0..n, m = 0..order (constant t0, p_0 = p_data)."""
    m = np.arange(order + 1, dtype=np.float64)
    f = np.ones(order + 1)
    out = [f]
    r = np.exp(-m * t0)
    for _ in range(n):
        f = r * (alpha + (1.0 - alpha) * f)
        out.append(f)
    return np.stack(out)


def limit_filter(alpha, t0, order: int) -> np.ndarray:
    m = np.arange(order + 1, dtype=np.float64)
    x = np.exp(-m * t0)
    return alpha * x / (1.0 - (1.0 - alpha) * x)


def _distance(F, lam, E):
    num = np.sum((F[:, 1:] - lam[1:]) ** 2 * E[1:], axis=1)
    den = np.sum((1.0 - lam[1:]) ** 2 * E[1:])
    return np.sqrt(num / den) if den > 0 else np.zeros(F.shape[0])


def _generations_within(D, within):
    hit = np.nonzero(D <= within)[0]
    return int(hit[0]) if hit.size else None


@dataclasses.dataclass
class DiagnosisForecast:
    orders: np.ndarray
    data_energies: np.ndarray
    limit_energies: np.ndarray
    limit_energies_interval: np.ndarray  # (2, order+1)
    loss: np.ndarray                     # 1 - lambda_m
    loss_interval: np.ndarray
    distance: np.ndarray                 # D_k, k = 0..horizon
    distance_interval: np.ndarray
    generations_to_within: int | None
    generations_to_within_interval: list  # [lo, hi]; None = beyond the horizon
    remaining_after_observed: int | None
    within: float
    horizon: int
    n_draws: int
    method: str = ("parametric draws of (alpha, t0) from N(estimate, covariance) and of the data coefficients "
                   "from their GLS covariance; 2.5/97.5 % quantiles")

    def to_json(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        return out


def forecast_from_fit(alpha, t0, cov, b, b_cov, mode_order, order, *, horizon: int, within: float,
                      n_observed: int, key, n_draws: int = 2000, b_chol=None) -> DiagnosisForecast:
    """See the module docstring. ``cov`` (2, 2) of (alpha, t0); ``b`` (M,), ``b_cov`` (M, M); ``b_chol``, optional,
    the lower Cholesky factor of ``b_cov + 1e-300 I`` when the caller has it already."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    sel = [mode_order == m for m in range(order + 1)]

    def energies(bv, bc):
        E = np.zeros(order + 1)
        for m in range(1, order + 1):
            E[m] = max(float(bv[sel[m]] @ bv[sel[m]] - np.trace(bc[np.ix_(sel[m], sel[m])])), 0.0)
        return E

    E = energies(b, b_cov)
    lam = limit_filter(alpha, t0, order)
    F = factors(alpha, t0, order, horizon)
    D = _distance(F, lam, E)
    nw = _generations_within(D, within)

    th = rng.multivariate_normal([alpha, t0], cov, size=n_draws)
    Lb = np.linalg.cholesky(b_cov + 1e-300 * np.eye(b.size)) if b_chol is None else np.asarray(b_chol)
    bj = b[None] + rng.standard_normal((n_draws, b.size)) @ Lb.T
    Ej = np.stack([np.zeros(n_draws)] + [np.sum(bj[:, sel[m]] ** 2, axis=1) for m in range(1, order + 1)], axis=1)
    a_j = th[:, :1]
    t_j = np.maximum(th[:, 1:], 1e-12)
    m = np.arange(order + 1, dtype=np.float64)[None]
    x = np.exp(-m * t_j)
    lj = a_j * x / (1.0 - (1.0 - a_j) * x)  # (draws, order+1)
    lims = lj**2 * Ej
    losses = 1.0 - lj
    f = np.ones_like(x)
    Fs = [f]
    for _ in range(horizon):
        f = x * (a_j + (1.0 - a_j) * f)
        Fs.append(f)
    Fj = np.stack(Fs, axis=1)  # (draws, horizon+1, order+1)
    num = np.sum((Fj[:, :, 1:] - lj[:, None, 1:]) ** 2 * Ej[:, None, 1:], axis=2)
    den = np.sum((1.0 - lj[:, 1:]) ** 2 * Ej[:, 1:], axis=1)
    dists = np.sqrt(num / np.where(den > 0, den, 1.0)[:, None])
    hit = dists <= within
    nws = np.where(hit.any(axis=1), np.argmax(hit, axis=1), horizon + 1)  # horizon + 1: beyond the horizon
    q = lambda x: np.percentile(np.asarray(x), [2.5, 97.5], axis=0)
    nw_i = np.percentile(np.asarray(nws), [2.5, 97.5])
    return DiagnosisForecast(
        orders=np.arange(order + 1), data_energies=E, limit_energies=lam**2 * E, limit_energies_interval=q(lims),
        loss=1.0 - lam, loss_interval=q(losses), distance=D, distance_interval=q(dists), generations_to_within=nw,
        generations_to_within_interval=[None if v > horizon else int(math.ceil(v)) for v in nw_i],
        remaining_after_observed=None if nw is None else max(nw - n_observed, 0), within=within, horizon=horizon,
        n_draws=n_draws)


@dataclasses.dataclass
class InverseFilter:
    """Recovered data coefficients ``values`` (M,) for ``indices`` (M, d) (orders 1..order), standard errors,
    the factor ``f_m`` used, and the informative orders."""

    indices: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    factor: np.ndarray        # f_m, m = 0..order
    informative: np.ndarray   # per order m = 1..order
    highest_informative_order: int
    source: str

    def to_json(self) -> dict:
        return {"indices": self.indices.tolist(), "values": self.values.tolist(), "errors": self.errors.tolist(),
                "factor": self.factor.tolist(), "informative": self.informative.tolist(),
                "highest_informative_order": self.highest_informative_order, "source": self.source,
                "rule": "order m informative when sum_{|n|=m} value^2 > sum_{|n|=m} error^2 (1-D: error < |value|)"}


def _invert(a, a_cov, f, mode_order, order, df=None, theta_cov=None, source=""):
    fm = f[mode_order]
    vals = a / fm
    var = np.diag(a_cov) / fm**2
    if df is not None and theta_cov is not None:  # delta method: d(a/f)/dtheta = -a f'/f^2
        g = -(a / fm**2)[:, None] * df[mode_order]  # (M, p)
        var = var + np.einsum("ip,pq,iq->i", g, theta_cov, g)
    err = np.sqrt(var)
    info = np.array([np.sum(vals[mode_order == m] ** 2) > np.sum(err[mode_order == m] ** 2)
                     for m in range(1, order + 1)])
    hi = int(np.max(np.nonzero(info)[0]) + 1) if info.any() else 0
    return vals, err, info, hi


@x64
def invert_filter(samples: Any, alpha: float, t0: float, *, order: int = 6, generation: int | None = None,
                  theta_cov: Any = None) -> InverseFilter:
    """Recover the data's Hermite coefficients from samples of the limit (or of generation ``k``).

    ``a^data_n = a_n / f_m`` with ``f_m = lambda_m`` (``generation=None``: the samples are of the limit
    ``p_inf``) or ``f_m^{(k)}`` (constant ``t0``, ``p_0 = p_data``); standard errors ``se(a_n) / f_m``, plus the
    delta-method term when ``theta_cov`` (2, 2) of ``(alpha, t0)`` is given. Orders 1..``order``.
    """
    from ._diagnosis import _as_sample_array
    from ._stats import sample_stats

    x = _as_sample_array("samples", samples, None)
    alpha = float(check_alpha(alpha))
    if alpha <= 0:
        raise ValueError("alpha must be > 0: with alpha = 0 the limit is N(0, I) and nothing can be recovered")
    t0 = float(check_time(t0, "t0"))
    order = check_order(order, x.shape[1], name="order")
    if order < 1:
        raise ValueError("order must be >= 1")
    idx = graded_indices(order, x.shape[1])[1:]
    mo = idx.sum(1)
    if x.shape[0] <= 2:
        raise ValueError("samples must hold at least 3 points")
    st = sample_stats(x, order)
    if generation is None:
        fn = lambda a, t: limit_filter(a, t, order)
        src = "limit"
    else:
        k = check_positive_int(generation, "generation", allow_zero=False)
        fn = lambda a, t: factors(a, t, order, k)[-1]
        src = f"generation {k}"
    f = fn(alpha, t0)
    df = None
    if theta_cov is not None:
        theta_cov = np.asarray(theta_cov, dtype=np.float64)
        if theta_cov.shape != (2, 2):
            raise ValueError(f"theta_cov must be the (2, 2) covariance of (alpha, t0); got shape {theta_cov.shape}")
        h = 1e-6
        df = np.stack([(fn(alpha + h, t0) - fn(alpha - h, t0)) / (2 * h),
                       (fn(alpha, t0 + h * t0) - fn(alpha, t0 - h * t0)) / (2 * h * t0)], axis=1)
    vals, err, info, hi = _invert(st.mean, st.cov, f, mo, order, df, theta_cov, src)
    return InverseFilter(idx, vals, err, f, info, hi, src)
