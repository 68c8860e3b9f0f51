"""Log-density and score of a d = 10, K = 1000 full-covariance mixture at 10^5 points.

Peers: scikit-learn's GaussianMixture.score_samples, a plain numpy implementation, and a plain JAX
vmap over points. Ours: one matrix product per chunk of points (centred quadratic-form expansion)
with log-sum-exp over components. Errors are max relative deviations from a float64 reference
computed component by component with per-component Cholesky whitening in numpy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

import hermite_limit as hl

from ._harness import TaskResult, matmul_peak_gflops, time_fn


def problem(K: int, d: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((K, d, d)) / np.sqrt(d)
    S = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(d)
    return rng.dirichlet(np.ones(K)), 3.0 * rng.standard_normal((K, d)), S, 3.0 * rng.standard_normal((n, d))


def numpy_logpdf(w, m, S, x, chunk: int = 2000):
    """Plain numpy: whiten per component with Cholesky, log-sum-exp; chunked over points."""
    L = np.linalg.cholesky(S)
    Linv = np.linalg.inv(L)
    logdet = 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(1)
    out = []
    for i in range(0, len(x), chunk):
        y = np.einsum("kij,nkj->nki", Linv, x[i : i + chunk, None, :] - m[None])
        terms = np.log(w) - 0.5 * (y * y).sum(-1) - 0.5 * logdet - 0.5 * m.shape[1] * np.log(2 * np.pi)
        out.append(logsumexp(terms, axis=1))
    return np.concatenate(out)


def run(size: str = "full") -> list[TaskResult]:
    quick = size != "full"
    tiny = size == "tiny"
    from sklearn.mixture import GaussianMixture as SkGM
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

    K, d, n = (50, 10, 500) if tiny else ((200, 10, 5_000) if quick else (1000, 10, 100_000))
    label = f"logpdf d={d} K={K} M={n:.0e}".replace("e+0", "e")
    w, m, S, x = problem(K, d, n)
    gm = hl.GaussianMixture(w, m, S)
    n_ref = min(n, 2000)
    ref = numpy_logpdf(w, m, S, x[:n_ref])

    def rel_err(v):
        return float(np.max(np.abs(np.asarray(v)[:n_ref] - ref) / np.abs(ref)))

    # every side: the fastest of the same number of calls after the same untimed warm-up (a single timed
    # call of the peers against the fastest of three of ours favoured us at the full size and, under load,
    # the peers at the quick size). At the quick size our call takes about 2 ms and its first dozen calls after
    # compilation are up to 1.5x slower than the steady state (thread-pool and cache warm-up; see README), so
    # every side gets 20 untimed calls and the fastest of 50.
    repeats, warmup = (3, 0) if size == "full" else (50, 20)
    c_ours, t_ours, lp = time_fn(lambda: gm.logpdf(x), repeats, warmup)
    sk = SkGM(K, covariance_type="full")
    sk.weights_, sk.means_, sk.covariances_ = w, m, S
    sk.precisions_cholesky_ = _compute_precision_cholesky(S, "full")
    _, t_sk, lp_sk = time_fn(lambda: sk.score_samples(x), repeats, warmup)
    _, t_np, lp_np = time_fn(lambda: numpy_logpdf(w, m, S, x), repeats, warmup)

    with jax.enable_x64(True):
        Pc = np.linalg.inv(np.linalg.cholesky(S))
        logdet = 2 * np.log(np.diagonal(np.linalg.cholesky(S), axis1=1, axis2=2)).sum(1)

        def one(xi):
            y = jnp.einsum("kij,kj->ki", Pc, xi - m)
            return jax.scipy.special.logsumexp(jnp.log(w) - 0.5 * (y * y).sum(-1) - 0.5 * logdet - 0.5 * d * np.log(2 * np.pi))

        # batches of 1000 points: one vmap over 10^5 points would hold (n, K, d) = 8 GB (x3 under grad)
        vm = jax.jit(lambda xs: jax.lax.map(one, xs, batch_size=1000))
        xj = jnp.asarray(x)
        _, t_vm, lp_vm = time_fn(lambda: vm(xj), repeats, warmup)

    peak, peak_source = matmul_peak_gflops(500 if tiny else 2000)
    gflops = 2.0 * n * K * d * d / t_ours / 1e9
    # what the feature product actually multiplies: (quadratic, linear, 1) features, d (d + 1) / 2 + d + 1 of them
    performed = 2.0 * n * K * (d * (d + 1) // 2 + d + 1) / t_ours / 1e9
    note = (f"ours {gflops:.1f} GFLOP/s on the nominal 2 M K d^2 count = {100 * gflops / peak:.0f}% of the measured matmul "
            f"peak {peak:.1f} GFLOP/s ({peak_source}) (target 40%); on the flops the feature product performs "
            f"(2 M K (d(d+1)/2 + d + 1)): {performed:.1f} GFLOP/s = {100 * performed / peak:.0f}%")
    c_score, t_score, sc = time_fn(lambda: gm.score(x), repeats, warmup)
    with jax.enable_x64(True):
        grad_vm = jax.jit(lambda xs: jax.lax.map(jax.grad(one), xs, batch_size=1000))
        _, t_grad, sc_grad = time_fn(lambda: grad_vm(xj), repeats, warmup)
    score_ref = np.asarray(sc_grad)[:n_ref]
    score_err = float(np.max(np.abs(np.asarray(sc)[:n_ref] - score_ref)) / np.max(np.abs(score_ref)))
    results = [
        TaskResult(label, "scikit-learn score_samples", t_sk, t_ours, 20.0, rel_err(lp_sk), rel_err(lp), c_ours - t_ours, note),
        TaskResult(label, "plain numpy (Cholesky, chunked)", t_np, t_ours, None, rel_err(lp_np), rel_err(lp), c_ours - t_ours),
        TaskResult(label, "plain JAX vmap over points (batches of 1000)", t_vm, t_ours, None, rel_err(lp_vm), rel_err(lp), c_ours - t_ours),
    ]
    flops = 2.0 * n * K * d * d
    results.append(TaskResult(label.replace("logpdf", "logpdf, fraction of matmul peak"),
                              f"time at the measured matmul peak ({peak:.1f} GFLOP/s)", flops / (peak * 1e9), t_ours, 0.4,
                              None, None, c_ours - t_ours, f"ratio = our GFLOP/s on the nominal 2 M K d^2 count / the peak ({peak_source} GFLOP/s)"))
    results.append(TaskResult(label.replace("logpdf", "score"), "plain JAX vmap(grad(logpdf)) (batches of 1000)", t_grad, t_score, None, None, score_err,
                              c_score - t_score, "ours_error: max deviation from the autodiff score, relative to its largest entry"))
    return results
