"""Hermite coefficients of Gaussian mixtures at 50 significant digits with mpmath.

Independent of the JAX engine on purpose: the *unnormalised* recursions on ``c_n = E[He_n(X)]``
(docs/conventions.md, "Hermite basis"),

    1-D:  c_{n+1} = mu c_n + (sigma^2 - 1) n c_{n-1},
    d-D:  c_{n+e_j} = mu_j c_n + sum_k (Sigma - I)_jk n_k c_{n-e_k},

run in ``mp.workdps(dps)`` arithmetic and are divided by ``sqrt(n!)`` only at the end (exact
factorials are affordable at 50 digits). Never jitted; slow by design.
"""

from __future__ import annotations

from typing import Sequence

import mpmath as mp
import numpy as np


def hermite_polynomials_mp(x, order: int, dps: int = 50) -> list:
    """``[h_0(x), ..., h_order(x)]`` as mpf, from ``He_{n+1} = x He_n - n He_{n-1}`` / sqrt(n!)."""
    with mp.workdps(dps):
        x = mp.mpf(x)
        He = [mp.mpf(1), x]
        for n in range(1, order):
            He.append(x * He[n] - n * He[n - 1])
        return [He[n] / mp.sqrt(mp.factorial(n)) for n in range(order + 1)]


def coefficients_1d_mp(weights, means, variances, order: int, dps: int = 50, *, abs_scale: bool = False):
    """``a_n = sum_k w_k E_k[h_n]`` for a 1-D mixture, n = 0..order (mpf list).

    With ``abs_scale`` also returns ``sum_k w_k |a_n^(k)|`` (the cancellation-free scale).
    """
    with mp.workdps(dps):
        tot = [mp.mpf(0)] * (order + 1)
        absum = [mp.mpf(0)] * (order + 1)
        for w, m, s2 in zip(weights, np.ravel(means), variances):
            w, m, b = mp.mpf(float(w)), mp.mpf(float(m)), mp.mpf(float(s2)) - 1
            c = [mp.mpf(1), m]
            for n in range(1, order):
                c.append(m * c[n] + b * n * c[n - 1])
            for n in range(order + 1):
                a = c[n] / mp.sqrt(mp.factorial(n))
                tot[n] += w * a
                absum[n] += w * abs(a)
        return (tot, absum) if abs_scale else tot


def coefficients_mp(weights, means, covs, indices: Sequence[Sequence[int]], dps: int = 50, *, abs_scale: bool = False):
    """``a_n`` for a d-dimensional mixture with full covariances (K, d, d), for each row of ``indices``."""
    means = np.asarray(means, dtype=float)
    covs = np.asarray(covs, dtype=float)
    K, d = means.shape
    idx = [tuple(int(v) for v in row) for row in indices]
    order = max(sum(n) for n in idx)
    with mp.workdps(dps):
        tot = {n: mp.mpf(0) for n in idx}
        absum = {n: mp.mpf(0) for n in idx}
        for k in range(K):
            mu = [mp.mpf(float(v)) for v in means[k]]
            B = [[mp.mpf(float(covs[k, i, j])) - (1 if i == j else 0) for j in range(d)] for i in range(d)]
            c = {(0,) * d: mp.mpf(1)}
            for L in range(order):
                for n in [n for n in c if sum(n) == L]:
                    for j in range(d):
                        m = tuple(v + (1 if i == j else 0) for i, v in enumerate(n))
                        if m in c:
                            continue
                        val = mu[j] * c[n]
                        for kk in range(d):
                            if n[kk] > 0:
                                g = tuple(v - (1 if i == kk else 0) for i, v in enumerate(n))
                                val += B[j][kk] * n[kk] * c[g]
                        c[m] = val
            w = mp.mpf(float(weights[k]))
            for n in idx:
                fact = mp.mpf(1)
                for v in n:
                    fact *= mp.factorial(v)
                a = c[n] / mp.sqrt(fact)
                tot[n] += w * a
                absum[n] += w * abs(a)
        vals = [tot[n] for n in idx]
        return (vals, [absum[n] for n in idx]) if abs_scale else vals
