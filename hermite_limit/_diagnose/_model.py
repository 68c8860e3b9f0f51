"""The linear model of the generations' Hermite coefficients and its errors-in-variables fit.

Model (per multi-index n with |n| = m >= 1, generation i -> i + 1, ``rho_i = e^{-t_i}``):

* ``fresh``:      ``a^{i+1}_n = rho_i^m (alpha a^data_n + (1 - alpha) a^i_n)``;
* ``replace``:    the same with ``alpha = 0``;
* ``accumulate``: ``a^{i+1}_n = rho_i^m (a^data_n + a^1_n + ... + a^i_n) / (i + 1)``.

Unrolled, every generation is linear in two latent vectors: ``a^i = c_i(theta) * a^data + d_i(theta) *
a^0`` with per-order multipliers (fresh: ``c_0 = 0, d_0 = 1``, ``c_{i+1} = rho_i^m (alpha + (1 - alpha) c_i)``,
``d_{i+1} = rho_i^m (1 - alpha) d_i``). When no separate data sample is given, generation 0 is the data
(``a^0 = a^data``) and one latent vector remains.

Fit. Every observed vector ``A_k`` (the data sample, if given, and generations 0..G) is an unbiased
estimate of its latent truth with covariance ``Sigma_k`` (sample covariance / n_k; the sample sets are
independent). The errors-in-variables likelihood, maximised over the latent true coefficients ``b``
for fixed ``theta``, is (up to a constant) ``-Q(theta) / 2`` with

    Q(theta) = min_b sum_k (A_k - C_k(theta) b)^T Sigma_k^{-1} (A_k - C_k(theta) b),

a generalised least squares in ``b`` solved in closed form (normal equations). This profiled criterion
is the exact Gaussian likelihood of the functional errors-in-variables model with known error
covariance: both sides of the recursion carry their own noise and no coefficient is treated as exact.
``theta_hat`` minimises Q (Levenberg-Marquardt on the JAX gradient and Hessian); ``Cov(theta_hat) =
2 H^{-1}`` with H the Hessian of Q (the profile information); ``Q(theta_hat)`` is asymptotically chi-square
with ``K M - L M - p`` degrees of freedom (K observed vectors, L latent vectors of M coefficients, p
parameters): the goodness-of-fit statistic.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

SCHEMES = ("fresh", "replace", "accumulate")


def n_params(scheme: str, n_transitions: int, per_generation_t: bool) -> int:
    n_t = n_transitions if per_generation_t else 1
    return n_t + (1 if scheme == "fresh" else 0)


def split_theta(theta, scheme: str, n_transitions: int, per_generation_t: bool):
    """``(alpha, times)`` from the free parameter vector (alpha first for ``fresh``)."""
    if scheme == "fresh":
        alpha, t = theta[0], theta[1:]
    else:
        alpha, t = jnp.zeros((), theta.dtype), theta
    times = t if per_generation_t else jnp.broadcast_to(t[0], (n_transitions,))
    return alpha, times


def multipliers(theta, *, scheme: str, n_transitions: int, per_generation_t: bool, order: int, separate: bool):
    """Per-order multipliers ``C`` (K, L, order + 1) with ``E[A_k]_n = sum_l C[k, l, |n|] b_l,n``."""
    alpha, times = split_theta(theta, scheme, n_transitions, per_generation_t)
    m = jnp.arange(order + 1, dtype=theta.dtype)
    zero = jnp.zeros(order + 1, theta.dtype)
    one = jnp.ones(order + 1, theta.dtype)
    G = n_transitions
    if scheme == "accumulate":

        def step(carry, xs):
            total = carry
            t, i = xs
            c = jnp.exp(-m * t) * (1.0 + total) / (i + 1.0)
            return total + c, c

        _, cs = jax.lax.scan(step, zero, (times, jnp.arange(G, dtype=theta.dtype)))
        c = jnp.concatenate([zero[None], cs])
        d = jnp.concatenate([one[None], jnp.zeros((G, order + 1), theta.dtype)])
    else:
        # Unrolled without a loop: with P_i = sum_{k<i} t_k, prod_{k=j}^{i-1} rho_k^m = e^{-m (P_i - P_j)},
        # c_i = alpha sum_{j<i} (1 - alpha)^{i-1-j} e^{-m (P_i - P_j)}, d_i = (1 - alpha)^i e^{-m P_i}.
        P = jnp.concatenate([jnp.zeros(1, theta.dtype), jnp.cumsum(times)])  # (G+1,)
        pw = jnp.concatenate([jnp.ones(1, theta.dtype), jnp.cumprod(jnp.full(G, 1.0 - alpha))])  # (1-alpha)^k
        i = np.arange(G + 1)[:, None]
        j = np.arange(G + 1)[None, :]
        lower = j < i
        k = np.where(lower, i - 1 - j, 0)
        dP = jnp.where(lower, P[:, None] - P[None, :], 0.0)  # (G+1, G+1)
        terms = jnp.where(lower[..., None], pw[k][..., None] * jnp.exp(-m * dP[..., None]), 0.0)
        c = alpha * terms.sum(axis=1)
        d = pw[:, None] * jnp.exp(-m * P[:, None])
    if separate:
        gens = jnp.stack([c, d], axis=1)  # (G+1, 2, order+1)
        data = jnp.stack([jnp.ones(order + 1, theta.dtype), jnp.zeros(order + 1, theta.dtype)])[None]
        return jnp.concatenate([data, gens])
    return (c + d)[:, None, :]


def profile(theta, A, W, mode_order, *, spec):
    """``(Q(theta), b_hat(theta))`` for observations ``A`` (K, M) with weights ``W`` (K, M, M)."""
    C = multipliers(theta, **spec)[:, :, mode_order]  # (K, L, M)
    K, L, M = C.shape
    N = jnp.einsum("kij,kli,kmj->limj", W, C, C).reshape(L * M, L * M)
    WA = jnp.einsum("kij,kj->ki", W, A)
    rhs = jnp.einsum("kli,ki->li", C, WA).reshape(L * M)
    scale = jnp.sqrt(jnp.diag(N))
    Ns = N / scale[:, None] / scale[None, :]
    b = (jnp.linalg.solve(Ns, rhs / scale) / scale).reshape(L, M)
    R = A - jnp.einsum("kli,li->ki", C, b)
    Q = jnp.einsum("ki,kij,kj->", R, W, R)
    return Q, b


def _q(theta, A, W, mode_order, spec):
    return profile(theta, A, W, mode_order, spec=spec)[0]


@functools.partial(jax.jit, static_argnames=("spec_items", "n_iter"))
def fit_one(theta_grid, A, W, mode_order, *, spec_items, n_iter: int = 60):
    """Grid start (``theta_grid`` (P, p): best row) then Levenberg-Marquardt. Returns theta, Q, H."""
    spec = dict(spec_items)
    qs = jax.lax.map(lambda th: _q(th, A, W, mode_order, spec), theta_grid)
    qs = jnp.where(jnp.isfinite(qs), qs, jnp.inf)
    theta = theta_grid[jnp.argmin(qs)]
    return _lm(theta, A, W, mode_order, spec, n_iter)


def _lm(theta, A, W, mode_order, spec, n_iter):
    f = lambda th: _q(th, A, W, mode_order, spec)
    grad = jax.grad(f)
    p = theta.shape[0]

    def hess(th):
        # Central differences of the exact gradient (vmapped over the 2p points): the Hessian of a
        # 2-parameter profile to ~1e-9 relative, at the compile cost of one gradient.
        h = 1e-5 * jnp.maximum(jnp.abs(th), 1e-2)
        E = jnp.eye(p, dtype=th.dtype) * h[:, None]
        g = jax.vmap(grad)(jnp.concatenate([th[None] + E, th[None] - E]))
        Hm = (g[:p] - g[p:]) / (2.0 * h[:, None])
        return 0.5 * (Hm + Hm.T)

    def body(state):
        k, th, q, mu, _ = state
        g, H = grad(th), hess(th)
        D = jnp.maximum(jnp.abs(jnp.diag(H)), 1e-12)
        step = jnp.linalg.solve(H + mu * jnp.diag(D), g)
        cand = th - step
        qc = f(cand)
        ok = jnp.isfinite(qc) & (qc <= q)
        small = jnp.max(jnp.abs(step) / (jnp.abs(th) + 1e-6)) < 1e-10
        done = (ok & small) | (mu > 1e12)  # converged, or no descent step left
        return (k + 1, jnp.where(ok, cand, th), jnp.where(ok, qc, q), jnp.where(ok, mu * 0.3, mu * 10.0), done)

    q0 = f(theta)
    state = (jnp.asarray(0), theta, q0, jnp.asarray(1e-3, theta.dtype), jnp.asarray(False))
    _, theta, q, _, _ = jax.lax.while_loop(lambda s: (s[0] < n_iter) & ~s[4], body, state)
    return theta, q, hess(theta)


@functools.partial(jax.jit, static_argnames=("spec_items", "n_iter", "batch"))
def fit_many(theta0, A, W, mode_order, *, spec_items, n_iter: int = 40, batch: int = 16):
    """LM from ``theta0`` (R, p) for replicate observations ``A`` (R, K, M) and weights ``W`` (R, K, M, M)
    (or one shared (K, M, M))."""
    spec = dict(spec_items)
    shared = W.ndim == 3

    def one(args):
        if shared:
            th, a = args
            w = W
        else:
            th, a, w = args
        return _lm(th, a, w, mode_order, spec, n_iter)

    xs = (theta0, A) if shared else (theta0, A, W)
    return jax.lax.map(one, xs, batch_size=batch)


@functools.partial(jax.jit, static_argnames=("spec_items",))
def profile_jit(theta, A, W, mode_order, *, spec_items):
    return profile(theta, A, W, mode_order, spec=dict(spec_items))


def spec_items(scheme: str, n_transitions: int, per_generation_t: bool, order: int, separate: bool) -> tuple:
    return (("n_transitions", int(n_transitions)), ("order", int(order)), ("per_generation_t", bool(per_generation_t)),
            ("scheme", scheme), ("separate", bool(separate)))


def start_grid(scheme: str, n_transitions: int, per_generation_t: bool) -> np.ndarray:
    """Starting points: alpha in {0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95} x t in 10^[-3, 0.5] (13 values)."""
    ts = 10.0 ** np.linspace(-3.0, 0.5, 13)
    n_t = n_transitions if per_generation_t else 1
    if scheme == "fresh":
        al = np.array([0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
        g = np.array([[a] + [t] * n_t for a in al for t in ts])
    else:
        g = np.array([[t] * n_t for t in ts])
    return g.astype(np.float64)
