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

from .._validation import as_float_array
from ..divergences import gaussian_chi2, gaussian_kl, gaussian_w2
from ._reverse import DEFAULT_T, INITS, _check_choice, check_times

_RTOL = 1e-11
_ATOL = 1e-13


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
    kl, chi2, w2 : ``KL(learned || ideal)``, ``chi2(learned || ideal)``, ``W2(learned, ideal)``.
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
    rtol, atol : ODE tolerances (scipy ``solve_ivp`` DOP853; defaults 1e-11, 1e-13).

    Returns
    -------
    GaussianOutput
    """
    m = as_float_array("mean", mean, ndim=1)
    d = m.size
    S = as_float_array("cov", cov, ndim=2)
    if S.shape != (d, d):
        raise ValueError(f"cov must have shape ({d}, {d}) to match mean; got {S.shape}")
    if not np.allclose(S, S.T, rtol=1e-10, atol=1e-12) or np.linalg.eigvalsh(0.5 * (S + S.T)).min() <= 0:
        raise ValueError("cov must be symmetric positive definite")
    t0, T = check_times(t0, T)
    _check_choice(init, "init", INITS)
    if score_error is not None:
        if A is not None or b is not None:
            raise ValueError("give score_error or (A, b), not both")
        A, b = score_error.affine()
        if A.shape != (d, d):
            raise ValueError(f"score_error has dimension {A.shape[0]} but mean has dimension {d}")
    A_fn = _as_fn(A, (d, d), "A")
    b_fn = _as_fn(b, (d,), "b")
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

    def rhs(tau, z):
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
        return np.concatenate([dmi, dSi.ravel(), dml, dSl.ravel(), [eh, es]])

    C_T, mu_T = C_mu(T)
    ml0, Sl0 = (mu_T, C_T) if init == "exact" else (np.zeros(d), eye)
    z0 = np.concatenate([mu_T, C_T.ravel(), ml0, Sl0.ravel(), [0.0, 0.0]])
    sol = scipy.integrate.solve_ivp(rhs, (0.0, T - t0), z0, method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"moment ODE failed: {sol.message}")
    z = sol.y[:, -1]
    mi, Si, ml, Sl = unpack(z)
    Si, Sl = 0.5 * (Si + Si.T), 0.5 * (Sl + Sl.T)
    C0, mu0 = C_mu(t0)
    init_kl = 0.0 if init == "exact" else gaussian_kl(np.zeros(d), eye, mu_T, C_T)
    return GaussianOutput(
        ideal_mean=mu0, ideal_cov=C0, ideal_mean_ode=mi, ideal_cov_ode=Si,
        learned_mean=ml, learned_cov=Sl,
        energy_hat=float(z[-2]), energy_star=float(z[-1]), init_kl=init_kl,
        kl=gaussian_kl(ml, Sl, mu0, C0), chi2=gaussian_chi2(ml, Sl, mu0, C0), w2=gaussian_w2(ml, Sl, mu0, C0),
        kl_bound=init_kl + 0.5 * float(z[-2]), rtol=rtol, atol=atol,
    )


def _as_fn(x, shape, name) -> Callable:
    if x is None:
        zero = np.zeros(shape)
        return lambda t: zero
    if callable(x):
        return lambda t: np.asarray(x(t), dtype=np.float64).reshape(shape)
    arr = as_float_array(name, x)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    return lambda t: arr
