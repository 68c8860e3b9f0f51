"""Fitted OU truncation times in the user's conventions: VP-SDE early-stopping time and DDPM step.

Inverses of :func:`hermite_limit.vp_to_ou_time` and :func:`hermite_limit.ddpm_to_ou_time`, with a
standard error by the delta method (``se_s = se_t / (dt/ds)``) and intervals mapped endpoint by endpoint
(both maps are increasing).
"""

from __future__ import annotations

import math

import numpy as np

from .._time import ddpm_to_ou_time, vp_to_ou_time


def ou_to_vp_time(t: float, beta_min: float, beta_max: float) -> float | None:
    """VP time ``s`` with ``(beta_min s + (beta_max - beta_min) s^2 / 2) / 2 = t``; None outside [0, 1]."""
    if t is None or not np.isfinite(t) or t < 0:
        return None
    a = 0.25 * (beta_max - beta_min)
    b = 0.5 * beta_min
    s = t / b if a == 0 else (-b + math.sqrt(b * b + 4.0 * a * t)) / (2.0 * a)
    if s > 1.0:
        return None
    s = float(s)
    assert abs(float(vp_to_ou_time(s, beta_min, beta_max)) - t) <= 1e-12 * max(1.0, t)
    return s


def vp_report(t: float, se: float, lo: float, hi: float, beta_min: float, beta_max: float) -> dict:
    s = ou_to_vp_time(t, beta_min, beta_max)
    out = {"beta_min": beta_min, "beta_max": beta_max, "eps": s, "eps_se": None, "eps_interval": None,
           "convention": "VP SDE, beta(s) linear from beta_min to beta_max on [0, 1]; t = int_0^eps beta / 2"}
    if s is not None:
        slope = 0.5 * (beta_min + (beta_max - beta_min) * s)  # dt/ds
        out["eps_se"] = float(se / slope) if slope > 0 else None
        lo_s = ou_to_vp_time(max(lo, 0.0), beta_min, beta_max)
        hi_s = ou_to_vp_time(hi, beta_min, beta_max)
        out["eps_interval"] = [lo_s, hi_s if hi_s is not None else 1.0]
    return out


def ou_to_ddpm_step(t: float, betas: np.ndarray) -> float | None:
    """Fractional DDPM step ``k`` (0-based) with ``t_k = t`` (linear between integer steps); None outside."""
    if t is None or not np.isfinite(t):
        return None
    tk = np.asarray(ddpm_to_ou_time(betas, np.arange(betas.size)))
    if t < tk[0] or t > tk[-1]:
        return None
    k = int(np.searchsorted(tk, t, side="right") - 1)
    if k >= tk.size - 1:
        return float(tk.size - 1)
    return float(k + (t - tk[k]) / (tk[k + 1] - tk[k]))


def ddpm_report(t: float, se: float, lo: float, hi: float, betas: np.ndarray) -> dict:
    k = ou_to_ddpm_step(t, betas)
    out = {"n_steps": int(betas.size), "step": k, "nearest_step": None if k is None else int(round(k)),
           "step_se": None, "step_interval": None,
           "convention": "DDPM: t_k = -log(alphas_cumprod[k]) / 2, steps 0-based; fractional steps interpolate t_k"}
    if k is not None:
        tk = np.asarray(ddpm_to_ou_time(betas, np.arange(betas.size)))
        j = min(int(k), betas.size - 2)
        slope = tk[j + 1] - tk[j]
        out["step_se"] = float(se / slope)
        lo_k = ou_to_ddpm_step(max(lo, float(tk[0])), betas)
        hi_k = ou_to_ddpm_step(min(hi, float(tk[-1])), betas)
        out["step_interval"] = [lo_k, hi_k]
    return out
