"""``hl.diagnose`` at the issue's size: 21 generations x 10^5 samples x d = 10, total order 4 (1000 coefficients
besides the constant), bootstrap included (n_boot = 200), against a plain numpy/scipy implementation of the
same estimator.

Problem. Exact generations of the seed law (``hl.datasets.seed_gmm10()``, d = 10) under the fresh-data
recursion with ``alpha = 0.3``, ``t0 = 0.05``, sampled (the sampling is not timed); generation 0 is the
data (no separate data sample).

Peer (``numpy_diagnose``): the same estimator written straightforwardly in numpy/scipy. Coefficient
vectors and covariances from the (n, M) feature matrix, ``H.T @ H`` accumulated over chunks of 10^4 points;
weights ``(n - M - 2) / (n - 1)`` times ``np.linalg.inv`` of the covariance (unbiased precision); the same
start (the grid scored by the per-coefficient surrogate), the same
Levenberg-Marquardt iterations on the same exact Newton system (gradient and Hessian of the profile
criterion from one Cholesky factorisation per point, ``scipy.linalg.cho_factor``); the same bootstrap
(multinomial resampling of every set, one linearised Newton step per replicate), drawn with numpy's
generator, so the bootstrap errors agree with ours to Monte Carlo error only.

Ours: ``hl.diagnose(generations, order=4, bootstrap=True, n_boot=200, key=...)``, the whole report
(fit, goodness of fit, per-order residuals, flags, conventions, forecast, inverse filter). ``ours_error`` =
the largest relative difference of ``alpha``, ``t0``, ``alpha_se``, ``t0_se`` from the peer's. Second row:
the issue's absolute budget, 10 s on this machine ("peer" = 10 s, met when ours is below it).
"""

from __future__ import annotations

import math
import time

import jax
import numpy as np
import scipy.linalg as sla

import hermite_limit as hl
from hermite_limit.hermite._indices import graded_indices

from ._harness import TaskResult, time_fn

ALPHA, T0 = 0.3, 0.05
SIZES = {  # generations (incl. 0), points per generation, dimension, order, n_boot, repeats
    "full": (21, 100_000, 10, 4, 200, 1),
    "quick": (21, 20_000, 6, 4, 200, 1),
    "tiny": (4, 1_000, 2, 2, 20, 1),
}
BUDGET_SECONDS = 10.0


def problem(n_gen: int, n: int, d: int, seed: int = 0) -> list[np.ndarray]:
    data = hl.datasets.seed_gmm10(dim=d, n_components=min(5, d))
    key = jax.random.key(seed)
    return [np.asarray((hl.generation(data, ALPHA, T0, i) if i else data).sample(jax.random.fold_in(key, i), n))
            for i in range(n_gen)]


# ---------------------------------------------------------------- plain numpy peer
def _hermite_1d(x: np.ndarray, order: int) -> np.ndarray:
    """h_0..h_order (normalised probabilists' Hermite) at x (n, d) -> (n, d, order + 1)."""
    out = np.empty(x.shape + (order + 1,))
    out[..., 0] = 1.0
    if order >= 1:
        out[..., 1] = x
    for k in range(1, order):
        out[..., k + 1] = (x * out[..., k] - math.sqrt(k) * out[..., k - 1]) / math.sqrt(k + 1)
    return out


def _features(x: np.ndarray, idx: np.ndarray, order: int) -> np.ndarray:
    P = _hermite_1d(x, order)
    H = np.ones((x.shape[0], idx.shape[0]))
    for j in range(x.shape[1]):
        H *= P[:, j, idx[:, j]]
    return H


def numpy_stats(x: np.ndarray, idx: np.ndarray, order: int, chunk: int = 10_000):
    n, M = x.shape[0], idx.shape[0]
    s1, s2 = np.zeros(M), np.zeros((M, M))
    for i in range(0, n, chunk):
        H = _features(x[i:i + chunk], idx, order)
        s1 += H.sum(0)
        s2 += H.T @ H
    mean = s1 / n
    return mean, (s2 - n * np.outer(mean, mean)) / (n - 1) / n


def numpy_multipliers(alpha: float, t: float, G: int, order: int):
    """c_i(m) = sum_{s=1}^{i} alpha (1-alpha)^(s-1) e^{-m t s} + (1-alpha)^i e^{-m t i} and its derivatives in
    (alpha, t): values (G+1, order+1), first (G+1, order+1, 2), second (G+1, order+1, 2, 2)."""
    m = np.arange(order + 1.0)
    c = np.zeros((G + 1, order + 1))
    dc = np.zeros((G + 1, order + 1, 2))
    d2c = np.zeros((G + 1, order + 1, 2, 2))
    om = 1.0 - alpha

    def add(i, s, a, da, dda):
        e = np.exp(-m * t * s)
        c[i] += a * e
        dc[i, :, 0] += da * e
        dc[i, :, 1] += -m * s * a * e
        d2c[i, :, 0, 0] += dda * e
        d2c[i, :, 0, 1] += -m * s * da * e
        d2c[i, :, 1, 0] += -m * s * da * e
        d2c[i, :, 1, 1] += (m * s) ** 2 * a * e

    for i in range(G + 1):
        for s in range(1, i + 1):  # alpha (1 - alpha)^(s - 1)
            k = s - 1
            a = alpha * om**k
            da = om**k - alpha * k * om ** (k - 1) if k else 1.0
            dda = (-2 * k * om ** (k - 1) + alpha * k * (k - 1) * om ** (k - 2)) if k else 0.0
            add(i, s, a, da, dda)
        a = om**i  # (1 - alpha)^i
        da = -i * om ** (i - 1) if i else 0.0
        dda = i * (i - 1) * om ** (i - 2) if i > 1 else 0.0
        add(i, i, a, da, dda)
    return c, dc, d2c


def numpy_qgh(theta, A, W, mo, G, order, influence=False):
    c, dc, d2c = numpy_multipliers(theta[0], theta[1], G, order)
    C, dC, d2C = c[:, mo], dc[:, mo], d2c[:, mo]  # (K, M), (K, M, 2), (K, M, 2, 2)
    N = np.einsum("ki,kij,kj->ij", C, W, C)
    s = np.sqrt(np.diag(N))
    try:
        cf = sla.cho_factor(N / s[:, None] / s[None, :], lower=True)
    except np.linalg.LinAlgError:
        return (math.inf, None, None) + ((None,) if influence else ())
    solve = lambda r: (sla.cho_solve(cf, r / (s[:, None] if r.ndim == 2 else s)) / (s[:, None] if r.ndim == 2 else s))  # noqa: E731
    WA = np.einsum("kij,kj->ki", W, A)
    b = solve(np.sum(C * WA, axis=0))
    R = A - C * b
    Cib = dC * b[None, :, None]
    WR = np.einsum("kij,kj->ki", W, R)
    WCib = np.einsum("kij,kjp->kip", W, Cib)
    Q = float(np.sum(R * WR))
    g = -2.0 * np.einsum("kip,ki->p", Cib, WR)
    u = np.einsum("ki,kip->ip", C, WCib) - np.einsum("kip,ki->ip", dC, WR)
    z = solve(u)
    H = 2.0 * np.einsum("kip,kiq->pq", Cib, WCib) - 2.0 * np.einsum("kipq,i,ki->pq", d2C, b, WR) - 2.0 * u.T @ z
    H = 0.5 * (H + H.T)
    if not influence:
        return Q, g, H
    V = 2.0 * (np.einsum("kij,kjp->kip", W, C[:, :, None] * z[None]) - WCib)
    return Q, g, H, V


def numpy_fit(A, W, mo, G, order, n_iter=60):
    from hermite_limit._diagnose._model import start_grid

    grid = start_grid("fresh", G, False)
    w = np.diagonal(W, axis1=1, axis2=2)
    best, theta = math.inf, grid[0]
    for th in grid:  # the per-coefficient surrogate
        c = numpy_multipliers(th[0], th[1], G, order)[0][:, mo]
        with np.errstate(all="ignore"):
            q = float(np.sum(w * A * A) - np.sum(np.sum(w * c * A, 0) ** 2 / np.sum(w * c * c, 0)))
        if np.isfinite(q) and q < best:
            best, theta = q, th
    q, g, H = numpy_qgh(theta, A, W, mo, G, order)
    mu = 1e-3
    for _ in range(n_iter):
        D = np.maximum(np.abs(np.diag(H)), 1e-12)
        step = np.linalg.solve(H + mu * np.diag(D), g)
        cand = theta - step
        qc, gc, Hc = numpy_qgh(cand, A, W, mo, G, order)
        ok = np.isfinite(qc) and qc <= q
        small = np.max(np.abs(step) / (np.abs(theta) + 1e-6)) < 1e-10
        if ok:
            theta, q, g, H, mu = cand, qc, gc, Hc, mu * 0.3
        else:
            mu *= 10.0
        if (ok and small) or mu > 1e12:
            break
    return theta, q, H


def numpy_diagnose(gens, order: int, n_boot: int, seed: int = 0, chunk: int = 10_000) -> dict:
    d = gens[0].shape[1]
    idx = graded_indices(order, d)[1:]
    mo = idx.sum(1)
    stats = [numpy_stats(x, idx, order) for x in gens]
    A = np.stack([m for m, _ in stats])
    W = np.stack([np.linalg.inv(c) * (x.shape[0] - c.shape[0] - 2) / (x.shape[0] - 1) for (_, c), x in zip(stats, gens)])
    W = 0.5 * (W + np.swapaxes(W, 1, 2))
    G = len(gens) - 1
    theta, q, H = numpy_fit(A, W, mo, G, order)
    se = np.sqrt(np.diag(2.0 * np.linalg.inv(H)))
    _, g, H, V = numpy_qgh(theta, A, W, mo, G, order, influence=True)
    rng = np.random.default_rng(seed)
    dg = np.zeros((n_boot, 2))
    for k, x in enumerate(gens):
        s = np.concatenate([_features(x[i:i + chunk], idx, order) @ V[k] for i in range(0, len(x), chunk)])
        n = len(x)
        for b in range(n_boot):
            dg[b] += s[rng.integers(0, n, n)].mean(0) - s.mean(0)
    boot = theta[None] - np.linalg.solve(H, (g[None] + dg).T).T
    return {"alpha": theta[0], "t0": theta[1], "alpha_se": se[0], "t0_se": se[1], "chi2": q,
            "boot_alpha_se": float(np.std(boot[:, 0], ddof=1)), "boot_t0_se": float(np.std(boot[:, 1], ddof=1))}


# ---------------------------------------------------------------- the rows
def run(size: str = "full") -> list[TaskResult]:
    n_gen, n, d, order, n_boot, repeats = SIZES[size]
    gens = problem(n_gen, n, d)
    M = math.comb(order + d, d) - 1
    label = f"diagnose {n_gen} generations x {n:g} x d={d}, order {order} ({M} coefficients), bootstrap {n_boot}"
    key = jax.random.key(1)
    first, t_ours, diag = time_fn(lambda: hl.diagnose(gens, order=order, bootstrap=True, n_boot=n_boot, key=key),
                                  repeats=repeats)
    t = time.perf_counter()
    peer = numpy_diagnose(gens, order, n_boot)
    t_peer = time.perf_counter() - t
    raw = diag.raw_estimate
    ours = {"alpha": raw["alpha"], "t0": raw["t0"], "alpha_se": raw["alpha_se"], "t0_se": raw["t0_se"]}
    err = max(abs(ours[k] - peer[k]) / abs(peer[k]) for k in ours)
    b = diag.bootstrap
    note = (f"alpha = {ours['alpha']:.4f} +- {ours['alpha_se']:.2g}, t0 = {ours['t0']:.5f} +- {ours['t0_se']:.2g} "
            f"(true {ALPHA}, {T0}), p = {diag.p_value:.2g}, status {diag.status}; bootstrap SEs ours "
            f"{b['alpha_se']:.3g}, {b['t0_se']:.3g} vs the peer's {peer['boot_alpha_se']:.3g}, {peer['boot_t0_se']:.3g} "
            f"(independent draws: Monte Carlo agreement only); our first call (compilation included) {first:.1f} s")
    return [
        TaskResult(label, "plain numpy/scipy, same estimator", t_peer, t_ours, 10.0, None, err, first - t_ours, note),
        TaskResult(f"{label}: absolute budget", f"budget {BUDGET_SECONDS:g} s",
                   BUDGET_SECONDS, t_ours, 1.0, None, None, first - t_ours,
                   f"steady state (second call); the first call, compilation included, took {first:.1f} s"),
    ]
