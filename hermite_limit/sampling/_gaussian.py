"""Exact outputs in the Gaussian setting: Gaussian training law, affine score error.

For ``q = N(m, S)`` the exact score is affine, ``s(y, t) = -C_t^{-1}(y - mu_t)`` with ``mu_t = rho m``,
``C_t = rho^2 S + (1 - rho^2) I``. With an affine error ``e(y, t) = A(t) y + b(t)`` the reverse SDE
``dY = [Y + 2 (s + e)] dtau + sqrt(2) dB`` is linear, ``dY = (B Y + c) dtau + sqrt(2) dB``, with

    ideal:   B = I - 2 C_t^{-1},          c = 2 C_t^{-1} mu_t
    learned: B = I - 2 C_t^{-1} + 2 A(t), c = 2 C_t^{-1} mu_t + 2 b(t),

so its law stays Gaussian and the moments solve ``dm/dtau = B m + c``, ``dS/dtau = B S + S B^T + 2 I``
(``tau = T - t``). Also integrated: the energies ``hat-eps^2 = int 2 E_learned |A Y + b|^2 dt`` and
``star-eps^2`` (ideal path), using ``E|A Y + b|^2 = |A m + b|^2 + tr(A S A^T)``. The ideal moments have the
closed form ``(mu_t0, C_t0)``; their ODE solution is returned as well, and their difference is a check of
the integration tolerance.

KL, chi2 and W2 between the output Gaussians are the closed forms of ``hermite_limit.divergences``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import scipy.integrate

from .._validation import as_float_array, check_callable, check_choice, check_covariance, check_tolerance, fmt, real_scalar
from ..divergences import gaussian_chi2, gaussian_kl, gaussian_w2
from ._reverse import DEFAULT_T, INITS, check_times

_RTOL = 1e-11
_ATOL = 1e-13
# The smallest rtol DOP853 honours (scipy raises smaller ones to 100 machine epsilons).
_MIN_RTOL = 100 * np.finfo(float).eps
# Right-hand-side evaluations allowed for one solve (seconds; typical solves take 500-2000): a budget that only a stiff system exhausts
# (|A| or 1 / cov large against 1 / (T - t0)); DOP853 is explicit.
MAX_RHS_EVALUATIONS = 50_000


class _TooStiff(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class GaussianOutput:
    """Exact output laws of the ideal and learned reverse SDEs (Gaussian data, affine error).

    Attributes
    ----------
    ideal_mean, ideal_cov : closed form ``(rho m, rho^2 S + (1 - rho^2) I)`` at ``t0``.
    ideal_mean_ode, ideal_cov_ode : the same from the moment ODE (difference = integration error).
    learned_mean, learned_cov : the learned sampler's output law.
    energy_hat, energy_star : ``int_{t0}^T 2 E|e(Y_t, t)|^2 dt`` along the learned / ideal process.
    init_kl : ``KL(N(0, I) || P_T q)`` when ``init="gaussian"`` (else 0): the Girsanov bound's extra term.
    kl, chi2, w2 : ``KL(learned || ideal)``, ``chi2(learned || ideal)``, ``W2(learned, ideal)``; ``chi2`` is
        ``inf`` when its integral diverges (a learned covariance more than twice the ideal one in some direction).
    kl_bound : ``init_kl + energy_hat / 2`` (Girsanov: ``kl <= kl_bound``).
    rtol, atol : tolerances of the ODE solve (scipy ``DOP853``).
    """

    ideal_mean: np.ndarray
    ideal_cov: np.ndarray
    ideal_mean_ode: np.ndarray
    ideal_cov_ode: np.ndarray
    learned_mean: np.ndarray
    learned_cov: np.ndarray
    energy_hat: float
    energy_star: float
    init_kl: float
    kl: float
    chi2: float
    w2: float
    kl_bound: float
    rtol: float
    atol: float


def gaussian_output_moments(
    mean: Any,
    cov: Any,
    *,
    t0: Any,
    T: Any = DEFAULT_T,
    A: Any = None,
    b: Any = None,
    score_error: Any = None,
    init: str = "exact",
    rtol: float = _RTOL,
    atol: float = _ATOL,
) -> GaussianOutput:
    """Exact learned and ideal outputs for data ``N(mean, cov)`` and score error ``e(x, t) = A(t) x + b(t)``.

    Parameters
    ----------
    mean : (d,), cov : (d, d) symmetric positive definite.
    t0, T : the reverse diffusion runs from ``T`` down to ``t0``.
    A : (d, d) array or callable ``t -> (d, d)``; b : (d,) array or callable ``t -> (d,)``. Default 0.
    score_error : a :class:`ScoreError` (uses its affine parts) instead of ``A``, ``b``.
    init : {"exact", "gaussian"}, start of the learned process (``P_T q`` or ``N(0, I)``); the ideal one
        always starts from ``P_T q``.
    rtol, atol : ODE tolerances (scipy ``solve_ivp`` DOP853; defaults 1e-11, 1e-13); ``rtol`` in
        ``[2.2e-14, 1)`` (the smallest DOP853 honours), ``atol`` in ``(0, 1)``.

    Callables ``A`` and ``b`` are evaluated at ``T`` and ``t0`` before the solve and checked (shape, finite)
    at every evaluation; a non-finite value, a moment that leaves float64's range, or a system too stiff
    for the explicit solver (more than ``MAX_RHS_EVALUATIONS`` evaluations) raises ``ValueError`` naming
    ``A`` / ``b`` (``cov`` when there is no error).

    Returns
    -------
    GaussianOutput
    """
    m = as_float_array("mean", mean, ndim=1)
    d = m.size
    if d == 0:
        raise ValueError("mean must have at least one entry; got shape (0,)")
    S = as_float_array("cov", cov, ndim=2)
    if S.shape != (d, d):
        raise ValueError(f"cov must have shape ({d}, {d}) to match mean; got {S.shape}")
    S = check_covariance("cov", S, d, definite=True)
    t0, T = check_times(t0, T)
    check_choice(init, "init", INITS)
    rtol = real_scalar("rtol", rtol, low=_MIN_RTOL, high=1.0, high_open=True)
    atol = check_tolerance(atol, "atol")
    if score_error is not None:
        if A is not None or b is not None:
            raise ValueError("give score_error or (A, b), not both")
        if not callable(getattr(score_error, "affine", None)):
            raise TypeError(f"score_error must be a ScoreError (from hl.score_error); got {fmt(score_error)}")
        A, b = score_error.affine()
        if A.shape != (d, d):
            raise ValueError(f"score_error has dimension {A.shape[0]} but mean has dimension {d}")
    A_fn = _as_fn(A, (d, d), "A", (T, t0))
    b_fn = _as_fn(b, (d,), "b", (T, t0))
    eye = np.eye(d)

    def C_mu(t):
        rho = math.exp(-t)
        return rho * rho * S + (-math.expm1(-2.0 * t)) * eye, rho * m

    def unpack(z):
        i = 0
        out = []
        for shape in ((d,), (d, d), (d,), (d, d)):
            k = int(np.prod(shape))
            out.append(z[i : i + k].reshape(shape))
            i += k
        return out

    evaluations = [0]

    def rhs(tau, z):
        evaluations[0] += 1
        if evaluations[0] > MAX_RHS_EVALUATIONS:
            raise _TooStiff
        t = T - tau
        C, mu = C_mu(t)
        Ci = np.linalg.inv(C)
        B0 = eye - 2.0 * Ci
        c0 = 2.0 * Ci @ mu
        Aa, bb = A_fn(t), b_fn(t)
        mi, Si, ml, Sl = unpack(z)
        B1 = B0 + 2.0 * Aa
        dmi = B0 @ mi + c0
        dSi = B0 @ Si + Si @ B0.T + 2.0 * eye
        dml = B1 @ ml + c0 + 2.0 * bb
        dSl = B1 @ Sl + Sl @ B1.T + 2.0 * eye
        eh = 2.0 * (np.sum((Aa @ ml + bb) ** 2) + np.trace(Aa @ Sl @ Aa.T))
        es = 2.0 * (np.sum((Aa @ mi + bb) ** 2) + np.trace(Aa @ Si @ Aa.T))
        out = np.concatenate([dmi, dSi.ravel(), dml, dSl.ravel(), [eh, es]])
        if not np.all(np.isfinite(out)):
            raise _Overflow(t)
        return out

    C_T, mu_T = C_mu(T)
    ml0, Sl0 = (mu_T, C_T) if init == "exact" else (np.zeros(d), eye)
    z0 = np.concatenate([mu_T, C_T.ravel(), ml0, Sl0.ravel(), [0.0, 0.0]])
    culprit = " / ".join(name for name, v in (("A", A), ("b", b)) if v is not None) or "cov"
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            sol = scipy.integrate.solve_ivp(rhs, (0.0, T - t0), z0, method="DOP853", rtol=rtol, atol=atol)
    except _TooStiff:
        raise ValueError(
            f"{culprit} makes the moment ODE too stiff: more than {MAX_RHS_EVALUATIONS:,} right-hand-side "
            f"evaluations (the explicit DOP853 solver needs steps below 1 / |I - 2 C_t^-1 + 2 A(t)|; large |A| or a "
            f"nearly singular cov at small t0 force tiny steps); loosen rtol={fmt(rtol)} / atol={fmt(atol)} or "
            "use a smaller error"
        ) from None
    except _Overflow as exc:
        raise ValueError(
            f"{culprit} out of range: the moment ODE left float64's range at t={fmt(exc.t)} (the learned process's "
            "moments or energies overflow: the error grows them beyond 1e308); use a smaller error or shorter T"
        ) from None
    if not sol.success:
        raise ValueError(f"{culprit}: the moment ODE failed ({sol.message}); loosen rtol={fmt(rtol)} / atol={fmt(atol)}")
    z = sol.y[:, -1]
    mi, Si, ml, Sl = unpack(z)
    Si, Sl = 0.5 * (Si + Si.T), 0.5 * (Sl + Sl.T)
    C0, mu0 = C_mu(t0)
    init_kl = 0.0 if init == "exact" else gaussian_kl(np.zeros(d), eye, mu_T, C_T)
    out = GaussianOutput(
        ideal_mean=mu0, ideal_cov=C0, ideal_mean_ode=mi, ideal_cov_ode=Si,
        learned_mean=ml, learned_cov=Sl,
        energy_hat=float(z[-2]), energy_star=float(z[-1]), init_kl=init_kl,
        kl=gaussian_kl(ml, Sl, mu0, C0), chi2=gaussian_chi2(ml, Sl, mu0, C0), w2=gaussian_w2(ml, Sl, mu0, C0),
        kl_bound=init_kl + 0.5 * float(z[-2]), rtol=rtol, atol=atol,
    )
    for field in dataclasses.fields(out):
        value = getattr(out, field.name)
        if field.name == "chi2" and value == np.inf:  # a divergent chi2 integral: the exact answer
            continue
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"{culprit} out of range: the output's {field.name} is not finite in float64 (the learned law is "
                "too far from the ideal one for these divergences, or the moments overflow); use a smaller error"
            )
    return out


class _Overflow(Exception):
    def __init__(self, t):
        self.t = t


def _as_fn(x, shape, name, probe_times) -> Callable:
    """A constant array or a callable ``t -> array of shape``; callables are probed at ``probe_times`` now and
    checked (shape, finite) at every later call."""
    if x is None:
        zero = np.zeros(shape)
        return lambda t: zero
    if callable(x):
        check_callable(x, name, n_args=1)

        def value(t):
            try:
                out = x(t)
            except Exception as exc:  # noqa: BLE001 - reported with the argument's name, original attached
                raise ValueError(f"{name} must be a function t -> array of shape {shape}; {name}({fmt(t)}) raised "
                                 f"{type(exc).__name__}: {exc}") from exc
            try:
                arr = as_float_array(f"{name}({fmt(t)})", out)
            except ValueError as exc:
                raise ValueError(f"{name} returned an invalid value: {exc}") from None
            if arr.shape != shape and arr.size != int(np.prod(shape)):
                raise ValueError(f"{name} must return an array of shape {shape}; {name}({fmt(t)}) has shape {arr.shape}")
            return arr.reshape(shape)

        for t in probe_times:
            value(float(t))
        return value
    arr = as_float_array(name, x)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    return lambda t: arr
