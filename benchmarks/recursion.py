"""The limit distribution and 200 generations of the exact recursion: ours vs direct numpy.

The peer applies ``p <- P_t0(alpha p_data + (1 - alpha) p)`` to component arrays step by step in numpy
(the same formulas, no term bookkeeping); errors are max relative density deviations at test points
from that step-by-step law, evaluated in numpy.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

import hermite_limit as hl

from ._harness import TaskResult, time_fn


def numpy_stepwise(w, m, S, alpha, t0, n):
    dw, dm, dS = w, m, S
    eye = np.eye(m.shape[1])
    rho = np.exp(-t0)
    for _ in range(n):
        w = np.concatenate([alpha * dw, (1 - alpha) * w])
        m, S = rho * np.concatenate([dm, m]), rho**2 * np.concatenate([dS, S]) + (1 - rho**2) * eye
    return w / w.sum(), m, S


def numpy_limit(w, m, S, alpha, t0, J):
    k = np.arange(1, J + 1)
    rho = np.exp(-t0 * k)
    eye = np.eye(m.shape[1])
    ww = (alpha * (1 - alpha) ** (k - 1))[:, None] * w
    mm = rho[:, None, None] * m
    SS = (rho**2)[:, None, None, None] * S + (1 - rho**2)[:, None, None, None] * eye
    ww = np.concatenate([ww.ravel(), [(1 - alpha) ** J]])
    return ww, np.concatenate([mm.reshape(-1, m.shape[1]), np.zeros((1, m.shape[1]))]), np.concatenate([SS.reshape(-1, *S.shape[1:]), eye[None]])


def numpy_density(w, m, S, x):
    from scipy.stats import multivariate_normal

    comps = np.stack([multivariate_normal(m[k], S[k]).logpdf(x) for k in range(len(w))], -1)
    return np.exp(logsumexp(np.log(w) + comps, axis=-1))


def run(size: str = "full") -> list[TaskResult]:
    quick = size != "full"
    tiny = size == "tiny"
    rng = np.random.default_rng(0)
    d, n = 10, (10 if tiny else (50 if quick else 200))
    data = hl.datasets.seed_gmm10()
    w, m, S = (np.asarray(a) for a in (data.weights, data.means, data.full_covs()))
    alpha, t0 = 0.1, 0.1
    x = rng.standard_normal((50, d)) * 2 + 0.5
    c_g, t_g, p_ours = time_fn(lambda: hl.generation(data, alpha, t0, n))
    _, t_np, p_np = time_fn(lambda: numpy_stepwise(w, m, S, alpha, t0, n), repeats=1)
    ref = numpy_density(*p_np, x)
    err_g = float(np.max(np.abs(np.exp(np.asarray(p_ours.logpdf(x))) - ref) / ref))
    c_l, t_l, lim = time_fn(lambda: hl.limit_distribution(data, alpha, t0, 1e-12))
    _, t_nl, lim_np = time_fn(lambda: numpy_limit(w, m, S, alpha, t0, lim.n_terms), repeats=1)
    ref_l = numpy_density(*lim_np, x)
    err_l = float(np.max(np.abs(np.exp(np.asarray(lim.logpdf(x))) - ref_l) / ref_l))
    return [
        TaskResult(f"{n} generations (d=10, K=5)", "numpy step-by-step recursion", t_np, t_g, None, 0.0, err_g, c_g - t_g,
                   "ours merges the repeated components of every generation into one term per distinct time"),
        TaskResult("limit distribution (d=10, K=5, tol 1e-12)", "numpy closed-form series", t_nl, t_l, None, 0.0, err_l, c_l - t_l),
    ]
