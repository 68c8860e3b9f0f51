"""Closed-form divergences between Gaussians N(m0, S0) and N(m1, S1) in any dimension.

Computed with numpy in float64 (eigendecompositions of small d x d matrices, not jitted).

Extreme inputs (decided per function): ``gaussian_w2`` is computed with a scaled norm, so far-apart
means (e.g. 1e200) give the correct finite distance. ``gaussian_kl`` grows like ``|m0 - m1|^2``; when
the value exceeds float64's range the call is refused with a ``ValueError`` naming the limit.
``gaussian_chi2`` is ``+inf`` exactly when the integral diverges (``2 S0^{-1} - S1^{-1}`` not positive
definite, the documented mathematical value); when it is finite but above float64's range
(``log(1 + chi2) > 709``) the call is refused naming the limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_float_array, check_covariance


def _gaussian_args(m0, S0, m1, S1):
    m0 = np.atleast_1d(as_float_array("m0", m0, ndim=(0, 1)))
    m1 = np.atleast_1d(as_float_array("m1", m1, ndim=(0, 1)))
    d = m0.size
    if m1.size != d:
        raise ValueError(f"m1 has dimension {m1.size} but m0 has dimension {d}")
    out = [m0, m1]
    for name, S in (("S0", S0), ("S1", S1)):
        if np.ndim(S) == 0 and not isinstance(S, str) and S is not None:
            S = np.atleast_2d(as_float_array(name, S))
        out.append(check_covariance(name, S, d))
    m0, m1, S0, S1 = out
    return m0, S0, m1, S1


def _require_pd(name, S):
    lam = np.linalg.eigvalsh(S)
    if lam[0] <= 0:
        raise ValueError(f"{name} must be positive definite; smallest eigenvalue {lam[0]:.3g}")
    return lam


def gaussian_kl(m0: Any, S0: Any, m1: Any, S1: Any) -> float:
    """``KL(N(m0,S0) || N(m1,S1)) = (tr(S1^{-1}S0) - d + (m1-m0)^T S1^{-1}(m1-m0) + log det S1 - log det S0) / 2``."""
    m0, S0, m1, S1 = _gaussian_args(m0, S0, m1, S1)
    _require_pd("S0", S0)
    _require_pd("S1", S1)
    L1 = np.linalg.cholesky(S1)
    A = np.linalg.solve(L1, np.linalg.cholesky(S0))  # L1^{-1} L0
    z = np.linalg.solve(L1, m1 - m0)
    logdet_ratio = 2.0 * np.sum(np.log(np.abs(np.diag(np.linalg.cholesky(A @ A.T)))))
    with np.errstate(over="ignore", invalid="ignore"):
        value = 0.5 * (np.sum(A * A) - m0.size + z @ z - logdet_ratio)
    if not np.isfinite(value):
        raise ValueError(
            "m0, m1: the KL divergence exceeds float64's range (it grows like |m1 - m0|^2 / (2 var); "
            f"here |m1 - m0| = {_norm(m1 - m0):.3g})"
        )
    return float(value)


def gaussian_w2(m0: Any, S0: Any, m1: Any, S1: Any) -> float:
    """``W2^2 = |m0 - m1|^2 + tr(S0 + S1 - 2 (S0^{1/2} S1 S0^{1/2})^{1/2})`` (Bures), PSD allowed."""
    m0, S0, m1, S1 = _gaussian_args(m0, S0, m1, S1)
    r0 = _psd_sqrt(S0)
    cross = _psd_sqrt(r0 @ S1 @ r0)
    bures = np.trace(S0) + np.trace(S1) - 2.0 * np.trace(cross)
    return float(np.hypot(_norm(m0 - m1), np.sqrt(max(bures, 0.0))))


def gaussian_chi2(m0: Any, S0: Any, m1: Any, S1: Any) -> float:
    """``chi2(N(m0,S0) || N(m1,S1)) = int p0^2/p1 - 1``; ``inf`` unless ``2 S0^{-1} - S1^{-1}`` is PD.

    Notes
    -----
    With ``P = 2 S0^{-1} - S1^{-1}`` and ``b = 2 S0^{-1} m0 - S1^{-1} m1``:
    ``int p0^2/p1 = det(S1)^{1/2} / (det(S0) det(P)^{1/2}) * exp(b^T P^{-1} b / 2 - m0^T S0^{-1} m0 +
    m1^T S1^{-1} m1 / 2)``, a Gaussian integral of ``exp(-x^T P x/2 + b^T x)``.
    """
    m0, S0, m1, S1 = _gaussian_args(m0, S0, m1, S1)
    _require_pd("S0", S0)
    _require_pd("S1", S1)
    P0, P1 = np.linalg.inv(S0), np.linalg.inv(S1)
    P = 2.0 * P0 - P1
    P = 0.5 * (P + P.T)
    lamP = np.linalg.eigvalsh(P)
    if lamP[0] <= 0:
        return float("inf")
    b = 2.0 * P0 @ m0 - P1 @ m1
    _, logdet0 = np.linalg.slogdet(S0)
    _, logdet1 = np.linalg.slogdet(S1)
    with np.errstate(over="ignore", invalid="ignore"):
        log_int = (
            0.5 * logdet1 - logdet0 - 0.5 * np.sum(np.log(lamP))
            + 0.5 * b @ np.linalg.solve(P, b) - m0 @ P0 @ m0 + 0.5 * m1 @ P1 @ m1
        )
    if not log_int <= 709.0:
        size = f"exp({float(log_int):.4g}) - 1" if np.isfinite(log_int) else f"exp(c |m1 - m0|^2) - 1 with |m1 - m0| = {_norm(m1 - m0):.3g}"
        raise ValueError(
            f"m0, m1: chi2 = {size} exceeds float64's range (only log(1 + chi2) <= 709 is representable)"
        )
    return float(np.expm1(log_int))


def _norm(v: np.ndarray) -> float:
    """Euclidean norm without overflow for huge entries."""
    s = float(np.max(np.abs(v), initial=0.0))
    return 0.0 if s == 0.0 else s * float(np.sqrt(np.sum((v / s) ** 2)))


def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    lam, V = np.linalg.eigh(0.5 * (S + S.T))
    return (V * np.sqrt(np.maximum(lam, 0.0))) @ V.T
