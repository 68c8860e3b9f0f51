"""``diagnose``: estimate alpha and the truncation time of a retraining pipeline from its generations.

See :func:`diagnose` for the model, the estimator and what is reported.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as _sla
from scipy.linalg import lapack
from scipy import stats as _st

from .._mixture import _check_key
from .._precision import x64
from .._validation import _scalar, as_float_array, check_positive_int
from ..hermite._indices import check_order, graded_indices, n_indices
from . import _model as mdl
from ._conventions import ddpm_report, vp_report
from .._blas import blas_single_thread
from ._stats import bootstrap_draws_many, each_set, stats_dispatch

Z95 = float(_st.norm.ppf(0.975))


@dataclasses.dataclass
class SchemeFit:
    """One scheme's fit: parameters, profile criterion ``chi2 = Q(theta_hat)`` and its reference law."""

    scheme: str
    theta: np.ndarray
    cov: np.ndarray | None
    chi2: float
    dof: int
    p_value: float
    aic: float
    latent: np.ndarray  # (L, M) fitted latent coefficients (a^data[, a^0])
    alpha: float
    times: np.ndarray
    hessian: np.ndarray | None = None

    def to_json(self) -> dict:
        alpha = self.alpha if self.scheme == "fresh" else {"replace": 0.0, "accumulate": None}[self.scheme]
        return {"scheme": self.scheme, "alpha": alpha, "times": self.times.tolist(), "chi2": self.chi2,
                "dof": self.dof, "p_value": self.p_value, "aic": self.aic}


@dataclasses.dataclass
class Diagnosis:
    """What the generations say about the pipeline (see :func:`diagnose`).

    The contract: ``alpha``, ``alpha_se``, ``t0``, ``t0_se`` (floats, or None with ``status`` and
    ``explanation`` saying why when not identified or outside the mechanism's range) and ``p_value``.
    """

    alpha: float | None
    alpha_se: float | None
    alpha_interval: tuple | None
    t0: float | None
    t0_se: float | None
    t0_interval: tuple | None
    times: np.ndarray | None        # fitted t_i per transition (constant t0 repeated unless per_generation_t)
    times_se: np.ndarray | None
    identifiable: bool
    status: str                     # "ok", "non-identifiable", "inadmissible", "rejected"
    explanation: str
    raw_estimate: dict              # the unconstrained estimate and covariance, whatever the status
    chi2: float
    dof: int
    p_value: float
    per_order: dict                 # per-order chi2 contributions and dof (diagnostic)
    flags: list                     # [{"name", "message", "z"}]: drifts the mechanism cannot produce
    order: int
    dim: int
    n_generations: int
    sample_sizes: list
    separate_data: bool
    per_generation_t: bool
    scheme: str
    schemes: dict | None            # scheme -> SchemeFit.to_json(), with "best"
    best_scheme: str | None
    conventions: dict
    bootstrap: dict | None
    attenuation: dict               # measured vs fitted per order and generation
    data_coefficients: np.ndarray   # fitted latent a^data (orders 1..order)
    indices: np.ndarray
    mode_order: np.ndarray
    forecast: Any = None            # DiagnosisForecast (identifiable fits only)
    inverse: Any = None             # InverseFilter from the last generation (identifiable fits only)
    recommended_schedule: Any = None  # DesignedSchedule (design=True)
    _internal: dict = dataclasses.field(default=None, repr=False)

    def figure(self, kind: str = "trajectories"):
        """A matplotlib Figure: ``"trajectories"`` (observed vs fitted per-order attenuation over generations),
        ``"attenuation"`` (last generation per order vs the fitted and limit filters), ``"forecast"``,
        ``"schedule"`` (needs ``design=True``)."""
        from . import _figures

        kinds = {"trajectories": _figures.trajectories_figure, "attenuation": _figures.attenuation_figure,
                 "forecast": _figures.forecast_figure, "schedule": lambda d: _figures.schedule_figure(d.recommended_schedule)}
        if kind not in kinds:
            raise ValueError(f"kind must be one of {sorted(kinds)}; got kind={kind!r}")
        if kind == "forecast" and self.forecast is None:
            raise ValueError("kind='forecast' needs an identifiable fit (this diagnosis has status %r)" % self.status)
        if kind == "schedule" and self.recommended_schedule is None:
            raise ValueError("kind='schedule' needs diagnose(..., design=True) and an identifiable fit")
        return kinds[kind](self)

    @property
    def mechanism_rejected(self) -> bool:
        """True when the goodness-of-fit test rejects at 5% or a drift the mechanism cannot produce is flagged."""
        return bool(self.p_value < 0.05 or self.flags)

    def to_json(self) -> dict:
        out = {"mechanism_rejected": self.mechanism_rejected}
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _aligned_empty(shape: tuple, align: int = 64) -> np.ndarray:
    """An uninitialised float64 array whose data starts on an ``align``-byte boundary, so that
    ``jax.device_put`` on the CPU can share its memory instead of copying it (the weights: 168 MB at the
    issue's size, 0.1-0.2 s and 40-80 thousand page faults to copy)."""
    n = math.prod(shape)
    buf = np.empty(n + align // 8)
    start = (-buf.ctypes.data % align) // 8
    return buf[start:start + n].reshape(shape)


def _plain(v):
    if hasattr(v, "to_json"):
        return _plain(v.to_json())
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return _plain(v.item())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _as_sample_array(name: str, x: Any, dim: int | None) -> np.ndarray:
    a = as_float_array(name, x)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must be samples of shape (n, d) with n >= 2; got shape {np.shape(x)}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name} has dimension {a.shape[1]}, but generations[0] has {dim}")
    return a


@x64
@blas_single_thread
def diagnose(generations: Sequence[Any], data: Any = None, *, order: int = 4, per_generation_t: bool = False,
             schemes: Sequence[str] | str | None = None, bootstrap: bool = False, n_boot: int = 200,
             key: Any = None, beta_min: float = 0.1, beta_max: float = 20.0, ddpm_betas: Any = None,
             forecast_generations: int = 50, within: float = 0.05, t_min: float = 1e-3,
             design: bool = False, budget: float | None = None) -> Diagnosis:
    r"""Estimate the fresh-data fraction ``alpha`` and the truncation time ``t0`` from the generations.

    Model. For every Hermite multi-index ``n`` with ``1 <= |n| = m <= order`` (normalised probabilists'
    Hermite polynomials, ``a_n(p) = E_p h_n(X)``) and every transition ``i -> i + 1``:

        a^{i+1}_n = rho_i^m (alpha a^data_n + (1 - alpha) a^i_n),   rho_i = e^{-t_i},

    with ``t_i = t0`` (or one ``t_i`` per transition with ``per_generation_t``). This is exact for a
    pipeline that trains on ``alpha p_data + (1 - alpha) p_i`` and stops its reverse diffusion at OU time
    ``t_i`` with a perfect score (forward SDE ``dX = -X dt + sqrt(2) dW``), by Mehler's formula.

    Estimator (errors in variables). Each sample set ``k`` (the ``data`` sample if given, then generations
    0..G) gives the coefficient vector ``A_k = mean h(x)`` over its points and its covariance
    ``Sigma_k = cov(h(x)) / n_k``; the sets are independent. Unrolled, generation i is ``c_i(theta) a^data +
    d_i(theta) a^0`` in two latent true vectors (one when generation 0 is the data). The Gaussian
    likelihood of all ``A_k`` with the latent true coefficients as free parameters, maximised over them,
    gives the profile criterion

        Q(theta) = min_b sum_k (A_k - C_k(theta) b)^T Sigma_k^{-1} (A_k - C_k(theta) b).

    We chose this full-likelihood form over an effective-variance weighting of one-step residuals because
    consecutive residuals share a generation and all share the data: the latent-variable form accounts
    for those correlations exactly, and ``Q(theta_hat)`` is then a chi-square statistic with
    ``K M - L M - p`` degrees of freedom (K sample sets, L latent vectors, M coefficients, p parameters).
    ``Cov(theta_hat) = 2 H^{-1}`` with H the Hessian of Q at the minimum (profile information); intervals
    are ``estimate +- 1.96 se``. The covariances ``Sigma_k`` are estimated from the same samples (consistent;
    at least ``M + 3`` points per set are required, ``50 M`` recommended). The weights are the unbiased
    (Wishart) precision estimates ``W_k = ((n_k - M - 2) / (n_k - 1)) Sigma_hat_k^{-1}`` in place of
    ``Sigma_k^{-1}``: the plain inverse of an estimated covariance inflates ``Q`` by about
    ``n_k / (n_k - M - 2)`` (at n = 10^5, M = 1000 one standard deviation of the chi-square, enough to reject
    correctly specified data). ``alpha`` and ``t`` are fitted
    unconstrained so the asymptotics hold at the edges; estimates whose interval lies outside
    ``alpha in [0, 1]``, ``t0 >= 0`` are reported as inadmissible, not as numbers.

    Bootstrap (``bootstrap=True``): every sample set is resampled with replacement ``n_boot`` times
    (multinomial counts ``c_j``) with the weights ``Sigma_k^{-1}`` held at the full-sample values; each
    replicate's estimate is one Newton step from ``theta_hat``, ``theta* = theta_hat - H^{-1} (g + J (A* - A))``,
    with the replicate's gradient linearised in its resampled coefficient vectors ``A*`` (``J = dg/dA`` at
    ``theta_hat``, exact; ``g`` the full-sample gradient, ~0 at convergence). ``J (A* - A)`` is
    ``sum_k sum_j (c_j - 1) s_kj / n_k`` with per-point values ``s_kj = h(x_kj) . J_k``, so a replicate costs
    one draw per point and no refit. The standard deviation of the replicate estimates is the check on
    ``alpha_se`` and ``t0_se`` (it uses the samples' own spread of ``h`` through ``J``, the asymptotic one the
    Hessian), the 2.5/97.5 % quantiles the percentile interval. Not captured: the curvature of
    ``theta_hat(A)`` beyond first order, which the asymptotic errors ignore as well.

    Execution: the per-set statistics, weights and bootstrap draws run two sets at a time on two host threads
    (created for the call and joined before it returns), with numpy's BLAS at one thread for the call's
    duration (restored after). The result does not depend on the threads: the same inputs and ``key`` give
    the same numbers bit for bit.

    Parameters
    ----------
    generations : sequence of arrays (n_i, d), generation 0 first (at least two)
    data : array (n, d), optional, a separate fresh-data sample; otherwise generation 0 is the data.
    order : int >= 1, highest total Hermite order used (all ``C(order + d, d) - 1`` coefficients).
    per_generation_t : bool, fit one ``t_i`` per transition instead of a constant ``t0``.
    schemes : "all" or a subset of ("fresh", "replace", "accumulate"), optional: also fit these schemes
        (replace: ``alpha = 0``; accumulate: ``q_i = (p_data + p_1 + ... + p_i) / (i + 1)``) and name the
        best by AIC ``= chi2 + 2 p``.
    bootstrap : bool; n_boot : int >= 2; key : PRNG key (required with ``bootstrap``; the forecast's parametric
        draws use it too, ``jax.random.key(0)`` when not given, so the same inputs give the same report).
    beta_min, beta_max : VP-SDE linear schedule for the ``eps`` conversion of ``t0``.
    ddpm_betas : array of DDPM betas for the step conversion (default: linear 1e-4..0.02, 1000 steps).
    forecast_generations : int, horizon of the forecast (:mod:`hermite_limit._diagnose`'s ``forecast``).
    within : float in (0, 1), fraction of the limit defining "within" for the generations-to-limit count.
    t_min, design, budget : with ``design=True`` a schedule is designed (:func:`design_schedule`) at the
        cost of ``forecast_generations`` constant-``t0`` generations times ``budget`` (default 1).

    Returns
    -------
    Diagnosis
        ``alpha``, ``alpha_se``, ``t0``, ``t0_se`` (None when not identified or inadmissible, with ``status``
        and ``explanation``), intervals, ``chi2``/``dof``/``p_value``, ``per_order`` residuals, ``flags``
        (mean moving away from 0, total variance below ``min(tr cov(data), d)``, goodness of fit),
        ``mechanism_rejected``, ``conventions`` (VP eps, DDPM step), ``schemes``/``best_scheme``,
        ``bootstrap``, ``attenuation`` (measured vs fitted per order and generation), ``forecast``,
        ``inverse`` (data coefficients recovered from the last generation), ``recommended_schedule``.
    """
    # ---- validation (before any work) ----
    if isinstance(generations, np.ndarray) and generations.ndim == 3:
        generations = list(generations)
    if not isinstance(generations, (list, tuple)) or len(generations) < 2:
        raise ValueError("generations must be a sequence of at least two sample arrays (n_i, d), generation 0 first")
    gens = []
    dim = None
    for i, g in enumerate(generations):
        a = _as_sample_array(f"generations[{i}]", g, dim)
        dim = a.shape[1]
        gens.append(a)
    sep = data is not None
    dat = _as_sample_array("data", data, dim) if sep else None
    order = check_order(order, dim, name="order")
    if order < 1:
        raise ValueError("order must be >= 1")
    M = n_indices(order, dim) - 1
    check_order(order, dim, work_per_index=M * (len(gens) + 1), name="order")
    sets = ([dat] if sep else []) + gens
    names = (["data"] if sep else []) + [f"generations[{i}]" for i in range(len(gens))]
    for nm, x in zip(names, sets):
        if x.shape[0] <= M + 2:
            raise ValueError(f"{nm} has {x.shape[0]} samples; order={order} in d={dim} has {M} coefficients and "
                             f"needs more than {M + 2} samples per set (lower order)")
    if schemes is None:
        scheme_list = []
    elif isinstance(schemes, str):
        if schemes != "all":
            raise ValueError(f"schemes must be 'all' or a subset of {mdl.SCHEMES}; got schemes={schemes!r}")
        scheme_list = list(mdl.SCHEMES)
    else:
        scheme_list = list(schemes)
        bad = [s for s in scheme_list if s not in mdl.SCHEMES]
        if bad or not scheme_list:
            raise ValueError(f"schemes must be 'all' or a non-empty subset of {mdl.SCHEMES}; got schemes={schemes!r}")
    B = check_positive_int(n_boot, "n_boot") if bootstrap else 0
    if bootstrap:
        if B < 2:
            raise ValueError(f"n_boot must be >= 2; got n_boot={n_boot}")
        if key is None:
            raise ValueError("key is required with bootstrap=True (jax.random.key(seed))")
        key = _check_key(key)
    bmin, bmax = _scalar("beta_min", beta_min), _scalar("beta_max", beta_max)
    if bmin < 0 or bmax < bmin or bmax == 0:
        raise ValueError(f"need 0 <= beta_min <= beta_max, beta_max > 0; got beta_min={bmin}, beta_max={bmax}")
    if ddpm_betas is None:
        betas = np.linspace(1e-4, 0.02, 1000)
    else:
        betas = as_float_array("ddpm_betas", ddpm_betas, ndim=1)
        if betas.size < 2 or np.any((betas <= 0) | (betas >= 1)):
            raise ValueError("ddpm_betas must hold at least two values in (0, 1)")
    H_gen = check_positive_int(forecast_generations, "forecast_generations", allow_zero=False)
    within = _scalar("within", within)
    if not 0 < within < 1:
        raise ValueError(f"within must lie in (0, 1); got within={within}")

    # ---- statistics of every sample set ----
    # Two sets at a time (host threads feeding the device), then the weights (LAPACK on the host), also two at
    # a time. Every set writes only its own rows.
    n_points = np.array([x.shape[0] for x in sets])
    M = n_indices(order, dim) - 1
    A, covs, W = np.empty((len(sets), M)), np.empty((len(sets), M, M)), _aligned_empty((len(sets), M, M))

    def statistics(k):
        A[k], covs[k] = stats_dispatch(sets[k], order)

    each_set(statistics, len(sets))
    ok = each_set(lambda k: _precision_into(covs[k], n_points[k], W[k]), len(sets))
    A_d, W_d = jnp.asarray(A), jax.device_put(W)  # W is 64-byte aligned: the device array shares its memory
    for nm, good in zip(names, ok):
        if not good:
            raise ValueError(f"{nm}: the covariance of its Hermite coefficients is singular (repeated or "
                             f"degenerate points?); lower order or give more distinct samples")
    idx = graded_indices(order, dim)[1:]
    mode_order = idx.sum(axis=1)
    G = len(gens) - 1

    fit = _fit_scheme("fresh", A_d, W_d, mode_order, G, per_generation_t, order, sep)
    scheme_fits = None
    best = None
    if scheme_list:
        scheme_fits = {s: (fit if s == "fresh" else _fit_scheme(s, A_d, W_d, mode_order, G, per_generation_t, order,
                                                                 sep))
                       for s in scheme_list}
        best = min(scheme_list, key=lambda s: scheme_fits[s].aic)

    p_value = fit.p_value
    per_order = _per_order(fit, A, covs, mode_order, order, G, per_generation_t, sep)
    attenuation = _attenuation(fit, A, covs, mode_order, order, G, per_generation_t, sep)
    flags = _flags(A, covs, idx, dim, sep, fit)

    # ---- parameters, standard errors, identifiability ----
    p = fit.theta.size
    cov = fit.cov
    n_t = G if per_generation_t else 1
    if cov is not None:
        if per_generation_t:
            g = np.zeros(p)
            g[1:] = 1.0 / G
            t0_raw, t0_se_raw = float(np.mean(fit.times)), float(np.sqrt(g @ cov @ g))
            times_se = np.sqrt(np.diag(cov)[1:])
        else:
            t0_raw, t0_se_raw = float(fit.times[0]), float(np.sqrt(cov[1, 1]))
            times_se = np.full(G, t0_se_raw)
        alpha_raw, alpha_se_raw = float(fit.alpha), float(np.sqrt(cov[0, 0]))
    else:
        alpha_raw, alpha_se_raw = float(fit.alpha), math.inf
        t0_raw, t0_se_raw = float(np.mean(fit.times)), math.inf
        times_se = None
    raw = {"alpha": alpha_raw, "alpha_se": alpha_se_raw, "t0": t0_raw, "t0_se": t0_se_raw,
           "times": fit.times, "covariance": cov, "parameters": ["alpha"] + [f"t_{i}" for i in range(n_t)]}

    signal = float(A_d[0] @ W_d[0] @ A_d[0])
    signal_p = float(_st.chi2.sf(signal, M))
    status, why = "ok", []
    alpha_ok = t0_ok = True
    if signal_p > 1e-3:
        alpha_ok = t0_ok = False
        why.append(f"the data's Hermite coefficients are indistinguishable from those of N(0, I) (chi2 {signal:.3g} "
                   f"on {M} dof, p = {signal_p:.2g}): the truncation has nothing to attenuate")
    if cov is None or not np.all(np.isfinite([alpha_se_raw, t0_se_raw])):
        alpha_ok = t0_ok = False
        Hf = fit.hessian
        h_t = float(np.sum(Hf[1:, 1:])) / max(Hf.shape[0] - 1, 1) ** 2 if Hf is not None and Hf.shape[0] > 1 else 0.0
        se_t_alone = math.sqrt(2.0 / h_t) if h_t > 0 else math.inf
        if signal_p <= 1e-3 and t0_raw - Z95 * se_t_alone <= 0:
            why.append(f"the generations are indistinguishable from the data (t0 = {t0_raw:.3g} +- {se_t_alone:.2g} "
                       f"includes 0), so alpha, which acts only through the attenuation, is not determined")
        else:
            why.append("the criterion is flat in some direction at the optimum (singular information)")
    else:
        if Z95 * alpha_se_raw >= 0.5:
            alpha_ok = False
            if t0_raw - Z95 * t0_se_raw <= 0:
                why.append(f"the generations are indistinguishable from the data (t0 = {t0_raw:.3g} +- {t0_se_raw:.2g} "
                           f"includes 0), so alpha, which acts only through the attenuation, is not determined")
            else:
                why.append(f"alpha's 95% interval ({alpha_raw:.3g} +- {Z95 * alpha_se_raw:.2g}) is wider than its "
                           f"admissible range [0, 1]: the generations do not determine it")
        if not np.isfinite(t0_se_raw) or t0_se_raw <= 0:
            t0_ok = False
    identifiable = alpha_ok and t0_ok
    if not identifiable:
        status = "non-identifiable"
    else:
        out_of_range = []
        if alpha_raw + Z95 * alpha_se_raw < 0:
            out_of_range.append(f"alpha = {alpha_raw:.3g} +- {alpha_se_raw:.2g} is negative")
        if alpha_raw - Z95 * alpha_se_raw > 1:
            out_of_range.append(f"alpha = {alpha_raw:.3g} +- {alpha_se_raw:.2g} exceeds 1")
        if t0_raw + Z95 * t0_se_raw < 0:
            out_of_range.append(f"t0 = {t0_raw:.3g} +- {t0_se_raw:.2g} is negative (the coefficients grow: "
                                f"structure sharpens instead of being smoothed)")
        if out_of_range:
            status = "inadmissible"
            alpha_ok = t0_ok = False
            why.append("the estimate lies outside the mechanism's range: " + "; ".join(out_of_range))
    if status == "ok" and p_value < 0.05:
        status = "rejected"
        why.append(f"the goodness-of-fit test rejects the truncation mechanism (chi2 = {fit.chi2:.4g} on {fit.dof} "
                   f"dof, p = {p_value:.2g}); the estimates describe the best-fitting truncation, not the pipeline")
    if status == "ok":
        why.append(f"the truncation mechanism fits (chi2 = {fit.chi2:.4g} on {fit.dof} dof, p = {p_value:.2g})")
    for fl in flags:
        why.append(fl["message"])

    alpha = alpha_raw if alpha_ok else None
    alpha_se = alpha_se_raw if alpha_ok else None
    t0 = t0_raw if t0_ok else None
    t0_se = t0_se_raw if t0_ok else None
    a_int = (alpha_raw - Z95 * alpha_se_raw, alpha_raw + Z95 * alpha_se_raw) if alpha_ok else None
    t_int = (t0_raw - Z95 * t0_se_raw, t0_raw + Z95 * t0_se_raw) if t0_ok else None

    conventions = {}
    if t0_ok:
        conventions["vp"] = vp_report(t0_raw, t0_se_raw, t_int[0], t_int[1], bmin, bmax)
        conventions["ddpm"] = ddpm_report(t0_raw, t0_se_raw, t_int[0], t_int[1], betas)

    boot = None
    if bootstrap:
        boot = _bootstrap(sets, key, fit, A_d, W_d, mode_order, G, per_generation_t, order, sep, B)

    fc = inv = rec = None
    if alpha_ok and t0_ok:
        from ._forecast import InverseFilter, _invert, forecast_from_fit

        Cfull, _ = _fitted(fit, mode_order, order, G, per_generation_t, sep)
        b_cov, b_chol = (np.asarray(v) for v in mdl.latent_cov_chol(jnp.asarray(Cfull[:, :, mode_order]), W_d,
                                                                         n_keep=M))
        if per_generation_t:
            Lm = np.zeros((2, p))
            Lm[0, 0] = 1.0
            Lm[1, 1:] = 1.0 / G
            cov2 = Lm @ cov @ Lm.T
        else:
            cov2 = cov
        fkey = key if key is not None else jax.random.key(0)
        fc = forecast_from_fit(alpha_raw, t0_raw, cov2, fit.latent[0], b_cov, mode_order, order,
                               horizon=H_gen, within=within, n_observed=G, key=jax.random.fold_in(fkey, 7),
                               b_chol=b_chol)
        k_last = (1 if sep else 0) + G
        f_last = Cfull[k_last, 0] + Cfull[k_last, 1] if sep else Cfull[k_last, 0]
        vals, err, info, hi = _invert(A[k_last], covs[k_last], f_last, mode_order, order)
        inv = InverseFilter(idx, vals, err, f_last, info, hi, f"generation {G} (fitted factor c_G + d_G)")
        if design:
            from ._schedule_design import design_schedule

            E_data = fc.data_energies
            rec = design_schedule(E_data, min(max(alpha_raw, 1e-6), 1.0), H_gen, t_min=t_min, t0=max(t0_raw, t_min),
                                  budget=None if budget is None else budget)

    diag = Diagnosis(
        alpha=alpha, alpha_se=alpha_se, alpha_interval=a_int, t0=t0, t0_se=t0_se, t0_interval=t_int,
        times=fit.times if t0_ok else None, times_se=times_se if t0_ok else None, identifiable=identifiable,
        status=status, explanation="; ".join(why), raw_estimate=raw, chi2=fit.chi2, dof=fit.dof, p_value=p_value,
        per_order=per_order, flags=flags, order=order, dim=dim, n_generations=len(gens),
        sample_sizes=[int(x.shape[0]) for x in sets], separate_data=sep, per_generation_t=bool(per_generation_t),
        scheme="fresh", schemes=None if scheme_fits is None else {**{s: f.to_json() for s, f in scheme_fits.items()}},
        best_scheme=best, conventions=conventions, bootstrap=boot, attenuation=attenuation,
        data_coefficients=fit.latent[0], indices=idx, mode_order=mode_order, forecast=fc, inverse=inv,
        recommended_schedule=rec,
        _internal={"A": A, "W": W, "covs": covs, "fit": fit, "names": names},
    )
    return diag


def _precisions(covs: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``W_k = ((n_k - M - 2) / (n_k - 1)) Sigma_hat_k^{-1}`` of covariances (..., M, M) at once.

    ``Sigma_hat_k`` is a sample covariance (``n_k - 1`` degrees of freedom) divided by ``n_k``, so
    ``(n_k - 1) n_k Sigma_hat_k`` is Wishart and ``E[Sigma_hat_k^{-1}] = (n_k - 1) / (n_k - M - 2) Sigma_k^{-1}``;
    the factor makes the weights unbiased for the true precisions (otherwise ``Q`` is inflated by about
    ``n / (n - M - 2)``: 1 % of ~2e4 degrees of freedom at n = 10^5, M = 1000, one standard deviation of the
    chi-square). ``ok[k]`` is False when ``Sigma_hat_k`` is not numerically positive definite (pivot ratio
    below 1e-10, or the factorisation fails). See :func:`_precision_into`.
    """
    covs = np.asarray(covs, dtype=np.float64)
    n = np.broadcast_to(np.asarray(n, dtype=np.float64), covs.shape[:-2]).reshape(-1)
    M = covs.shape[-1]
    W = np.empty((n.size, M, M))
    ok = np.array([_precision_into(S, n_k, W[k]) for k, (S, n_k) in enumerate(zip(covs.reshape(-1, M, M), n))],
                  dtype=bool)
    return W.reshape(covs.shape), ok.reshape(covs.shape[:-2])


def _precision_into(S: np.ndarray, n: float, out: np.ndarray) -> bool:
    """One weight matrix of :func:`_precisions`, written into ``out`` (M, M), C-contiguous; returns ``ok``.

    LAPACK's ``potrf`` then ``potri`` in place (``M^3`` flops: a third of a Cholesky factor, its triangular
    inverse and their product), on the lower triangle of ``S``, then mirrored. Works in ``out``'s memory
    alone: on a virtual machine every fresh page costs a host page fault (6 ms per MB measured here), and
    the diagnosis holds 21 such matrices of 8 MB at the issue's size.
    """
    M = S.shape[-1]
    np.copyto(out, S)
    work = out.T  # Fortran order: LAPACK works in place on the (symmetric) matrix's transpose
    L, info = lapack.dpotrf(work, lower=0, clean=0, overwrite_a=1)
    piv = np.diagonal(L)
    if info != 0 or not (np.all(np.isfinite(piv)) and piv.min() > 1e-10 * piv.max()):
        out[...] = np.nan
        return False
    Wi, info = lapack.dpotri(L, lower=0, overwrite_c=1)  # the upper triangle of work = lower triangle of out
    if info != 0:
        out[...] = np.nan
        return False
    if not np.shares_memory(Wi, out):  # a wrapper that copied instead of working in place: same numbers
        work[...] = Wi
    _mirror_lower(out)
    out *= (n - M - 2) / (n - 1)
    return bool(n > M + 2)


def _mirror_lower(a: np.ndarray, block: int = 128) -> None:
    """Copy the strict lower triangle of the square ``a`` onto its upper triangle, in place, by row blocks
    (4x faster than a fancy-indexed copy at M = 1000)."""
    M = a.shape[0]
    for i in range(0, M, block):
        j = min(i + block, M)
        a[i:j, j:] = a[j:, i:j].T
        diag = a[i:j, i:j]
        iu = np.triu_indices(j - i, 1)
        diag[iu] = diag.T[iu]


def _fit_scheme(scheme, A, W, mode_order, G, per_gen, order, sep) -> SchemeFit:
    spec = mdl.spec_items(scheme, G, per_gen, order, sep)
    grid = mdl.start_grid(scheme, G, False)
    if per_gen:  # start from the constant-t fit
        c = _fit_scheme(scheme, A, W, mode_order, G, False, order, sep)
        grid = np.concatenate([c.theta[:-1], np.full(G, c.theta[-1])])[None]
    th, q, H, b = mdl.fit_one_latent(jnp.asarray(grid), jnp.asarray(A), jnp.asarray(W), jnp.asarray(mode_order),
                                     spec_items=spec)
    th, q, H = np.asarray(th), float(q), np.asarray(H)
    cov = None
    if np.all(np.isfinite(H)):
        ev = np.linalg.eigvalsh(H)
        if ev.min() > 1e-12 * max(ev.max(), 1e-300):
            cov = 2.0 * np.linalg.inv(H)
    K, M = A.shape
    L = 2 if sep else 1
    p = th.size
    dof = K * M - L * M - p
    alpha, times = mdl.split_theta(jnp.asarray(th), scheme, G, per_gen)
    return SchemeFit(scheme, th, cov, q, dof, float(_st.chi2.sf(q, dof)) if dof > 0 else float("nan"),
                     q + 2 * p, np.asarray(b), float(alpha), np.asarray(times), H if np.all(np.isfinite(H)) else None)


def _fitted(fit: SchemeFit, mode_order, order, G, per_gen, sep):
    spec = dict(mdl.spec_items(fit.scheme, G, per_gen, order, sep))
    C = np.asarray(mdl.multipliers(jnp.asarray(fit.theta), **spec))  # (K, L, order+1)
    return C, np.einsum("kli,li->ki", C[:, :, mode_order], fit.latent)


def _per_order(fit, A, covs, mode_order, order, G, per_gen, sep) -> dict:
    """Per-order chi2 of the residuals (each order's block of each set standardised by its own covariance)."""
    _, F = _fitted(fit, mode_order, order, G, per_gen, sep)
    R = A - F
    K = A.shape[0]
    L = 2 if sep else 1
    chi, dof, z = [], [], []
    for m in range(1, order + 1):
        sel = mode_order == m
        q = 0.0
        zs = []
        for k in range(K):
            S = covs[k][np.ix_(sel, sel)]
            r = R[k, sel]
            q += float(r @ _sla.cho_solve(_sla.cho_factor(S, lower=True, check_finite=False), r,
                                          check_finite=False))
            zs.append((r / np.sqrt(np.diag(S))).tolist())
        chi.append(q)
        dof.append(int((K - L) * sel.sum()))
        z.append(zs)
    return {"orders": list(range(1, order + 1)), "chi2": chi, "dof_approx": dof,
            "p_value_approx": [float(_st.chi2.sf(c, d)) if d > 0 else None for c, d in zip(chi, dof)],
            "standardised_residuals": z,
            "note": "order-m block of every set's residual against its own covariance; the blocks share the fit, "
                    "so the dof are approximate (the overall chi2 is the exact test)"}


def _attenuation(fit, A, covs, mode_order, order, G, per_gen, sep) -> dict:
    """Measured per-order attenuation of each generation against the fitted data coefficients, and the fit."""
    C, _ = _fitted(fit, mode_order, order, G, per_gen, sep)
    b = fit.latent
    off = 1 if sep else 0
    meas, se, fitted = [], [], []
    for m in range(1, order + 1):
        sel = mode_order == m
        bm = b[0, sel]
        nb = float(bm @ bm)
        row_m, row_s, row_f = [], [], []
        for i in range(G + 1):
            k = off + i
            if nb > 0:
                row_m.append(float(bm @ A[k, sel]) / nb)
                row_s.append(float(np.sqrt(bm @ covs[k][np.ix_(sel, sel)] @ bm)) / nb)
            else:
                row_m.append(float("nan"))
                row_s.append(float("nan"))
            f = C[k, 0, m]
            if sep and nb > 0:
                f = f + C[k, 1, m] * float(b[1, sel] @ bm) / nb
            row_f.append(float(f))
        meas.append(row_m)
        se.append(row_s)
        fitted.append(row_f)
    return {"orders": list(range(1, order + 1)), "measured": meas, "measured_se": se, "fitted": fitted,
            "definition": "f_m^(i) = <a^i_m, b_m> / |b_m|^2 with b the fitted data coefficients of order m"}


def _moments(a, S, idx, dim):
    """Mean vector and total variance from orders 1 and 2, with the SE of |mean|^2 (bias-corrected) and of
    the total variance (delta method). ``a`` (M,), ``S`` (M, M) covariance of ``a``."""
    e = [int(np.flatnonzero((idx.sum(1) == 1) & (idx[:, j] == 1))[0]) for j in range(dim)]
    e2 = [int(np.flatnonzero((idx.sum(1) == 2) & (idx[:, j] == 2))[0]) for j in range(dim)] if idx.sum(1).max() >= 2 else None
    mu = a[e]
    S11 = S[np.ix_(e, e)]
    msq = float(mu @ mu - np.trace(S11))
    msq_se = float(np.sqrt(max(4 * mu @ S11 @ mu + 2 * np.sum(S11 * S11), 0.0)))
    if e2 is None:
        return msq, msq_se, None, None
    tv = float(np.sum(math.sqrt(2.0) * a[e2] + 1.0 - mu**2))
    g = np.zeros(a.size)
    g[e2] = math.sqrt(2.0)
    g[e] = -2.0 * mu
    return msq, msq_se, tv, float(np.sqrt(g @ S @ g))


def _flags(A, covs, idx, dim, sep, fit) -> list:
    """Drifts the truncation mechanism cannot produce, each tested at 3 standard errors.

    With ``p_0`` the data (or between the data and generation 0), every generation is a mixture of OU
    pushes ``P_s`` of the data and of ``p_0``: ``|mean_i| <= max(|mean_data|, |mean_0|)`` and, by the law of
    total variance, ``tr cov(p_i) >= min(tr cov(p_data), tr cov(p_0), d)``.
    """
    refs = [0, 1] if sep else [0]
    mom = [_moments(A[k], covs[k], idx, dim) for k in range(A.shape[0])]
    flags = []
    ref_m = max(refs, key=lambda k: mom[k][0])
    for k in range(max(refs) + 1, A.shape[0]):
        msq, se, _, _ = mom[k]
        z = (msq - mom[ref_m][0]) / math.hypot(se, mom[ref_m][1])
        if z > 3:
            flags.append({"name": "mean_moves_away", "generation": k - (1 if sep else 0), "z": z,
                          "message": f"the mean moves away from 0 (|mean|^2 = {msq:.3g} against {mom[ref_m][0]:.3g} for "
                                     f"the data, z = {z:.1f}): OU truncation only shrinks it"})
            break
    if mom[0][2] is not None:
        ref_v = min(min(mom[k][2] for k in refs), float(dim))
        ref_se = min((mom[k] for k in refs), key=lambda m: m[2])[3] if ref_v < dim else 0.0
        for k in range(max(refs) + 1, A.shape[0]):
            _, _, tv, se = mom[k]
            z = (tv - ref_v) / math.hypot(se, ref_se)
            if z < -3:
                flags.append({"name": "variance_shrinks", "generation": k - (1 if sep else 0), "z": z,
                              "message": f"the total variance shrinks below the mechanism's floor (tr cov = {tv:.3g} "
                                         f"against min(data, d) = {ref_v:.3g}, z = {z:.1f}): a collapse toward a point, "
                                         f"which OU truncation cannot produce"})
                break
    if fit.p_value < 0.05:
        flags.append({"name": "goodness_of_fit", "z": float(_st.norm.isf(max(fit.p_value, 1e-300))),
                      "message": f"chi2 = {fit.chi2:.4g} on {fit.dof} dof (p = {fit.p_value:.2g}): the generations drift "
                                 f"in a way the truncation recursion does not reproduce"})
    return flags


def _bootstrap(sets, key, fit, A, W, mode_order, G, per_gen, order, sep, B) -> dict:
    """One-step bootstrap, linearised in the resampled coefficient vectors (see :func:`diagnose`)."""
    spec = mdl.spec_items("fresh", G, per_gen, order, sep)
    _, g, H, _, V = mdl.influence_jit(jnp.asarray(fit.theta), jnp.asarray(A), jnp.asarray(W), jnp.asarray(mode_order),
                                      spec_items=spec)
    g, H = np.asarray(g), np.asarray(H)
    keys = jax.random.split(key, len(sets))
    dg = bootstrap_draws_many(keys, sets, order, V, B)
    try:
        th = fit.theta[None] - np.linalg.solve(H, (g[None] + dg).T).T
    except np.linalg.LinAlgError:
        th = np.full((B, g.size), np.nan)
    ok = np.all(np.isfinite(th), axis=1)
    th = th[ok]
    alpha = th[:, 0]
    t0 = th[:, 1:].mean(axis=1)
    se_a, se_t = float(np.std(alpha, ddof=1)), float(np.std(t0, ddof=1))
    return {"n_boot": int(B), "n_converged": int(ok.sum()), "alpha_se": se_a, "t0_se": se_t,
            "alpha_interval": np.percentile(alpha, [2.5, 97.5]).tolist(),
            "t0_interval": np.percentile(t0, [2.5, 97.5]).tolist(),
            "alpha_se_ratio": se_a / math.sqrt(fit.cov[0, 0]) if fit.cov is not None else None,
            "t0_se_ratio": (se_t / math.sqrt(np.mean(fit.cov[1:, 1:]))) if fit.cov is not None else None,
            "method": "resampling every sample set with replacement; each replicate's estimate is one Newton step "
                      "from the full-sample estimate, theta* = theta_hat - H^-1 (g + J (A* - A)), with the gradient "
                      "linearised in the resampled coefficient vectors A* (J = dg/dA at theta_hat) and the weights "
                      "Sigma_k^{-1} held at the full-sample values"}


@x64
def fit_replicates(A: np.ndarray, covs: np.ndarray, order: int, dim: int, *, n: int, separate: bool = False,
                   scheme: str = "fresh", per_generation_t: bool = False, start=None, n_iter: int = 40) -> dict:
    """The estimator of :func:`diagnose` on R replicate sets of coefficient statistics at once (vectorised).

    ``A`` (R, K, M) coefficient vectors and ``covs`` (R, K, M, M) their covariances (K sample sets, data
    first when ``separate``), each estimated from ``n`` points (the weights are ``(n - M - 2) / (n - 1)
    covs^{-1}``, as in :func:`diagnose`). Returns ``theta`` (R, p), ``se`` (R, p) (NaN where the information is
    singular), ``chi2`` (R,), ``dof``, ``p_value`` (R,). Started at ``start`` (p,) (default alpha 0.5,
    t 0.1); use :func:`diagnose` for the grid start and the full report.
    """
    A = np.asarray(A, dtype=np.float64)
    R, K, M = A.shape
    G = K - (2 if separate else 1)
    if int(n) < 2:
        raise ValueError(f"n must be an integer >= 2 (points per sample set); got n={n!r}")
    W, _ = _precisions(np.asarray(covs, dtype=np.float64), np.full(A.shape[:2], int(n)))
    mode_order = graded_indices(order, dim)[1:].sum(axis=1)
    p = mdl.n_params(scheme, G, per_generation_t)
    if start is None:
        start = ([0.5] if scheme == "fresh" else []) + [0.1] * (p - (1 if scheme == "fresh" else 0))
    th0 = np.tile(np.asarray(start, dtype=np.float64), (R, 1))
    spec = mdl.spec_items(scheme, G, per_generation_t, order, separate)
    th, q, H = mdl.fit_many(jnp.asarray(th0), jnp.asarray(A), jnp.asarray(W), jnp.asarray(mode_order),
                            spec_items=spec, n_iter=n_iter)
    th, q, H = np.asarray(th), np.asarray(q), np.asarray(H)
    with np.errstate(invalid="ignore"):
        cov = 2.0 * np.linalg.inv(H)
        se = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    dof = K * M - (2 if separate else 1) * M - p
    return {"theta": th, "se": se, "chi2": q, "dof": dof, "p_value": _st.chi2.sf(q, dof)}
