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
``theta_hat`` minimises Q (Levenberg-Marquardt on the exact gradient and Hessian of Q, both from the
one Cholesky factorisation of the normal matrix that gives Q, see :func:`qgh`; started at the best row
of a grid scored by the cheap per-coefficient surrogate :func:`surrogate_q`); ``Cov(theta_hat) =
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


def _derivs(theta, spec, mode_order):
    """Multipliers ``C`` (K, L, M) and their first (K, L, M, p) and second (K, L, M, p, p) derivatives."""
    f = lambda th: multipliers(th, **spec)  # noqa: E731
    C = f(theta)
    dC = jax.jacfwd(f)(theta)
    d2C = jax.jacfwd(jax.jacfwd(f))(theta)
    return C[:, :, mode_order], dC[:, :, mode_order], d2C[:, :, mode_order]


def _normal_matrix(C, W):
    """``N = sum_k C_k^T W_k C_k`` (L M, L M) for diagonal blocks ``C_k = [diag(C[k, l])]_l``."""
    K, L, M = C.shape
    rows = []
    for l in range(L):
        rows.append(jnp.concatenate([jnp.einsum("ki,kij,kj->ij", C[:, l], W, C[:, m]) for m in range(L)], axis=1))
    return jnp.concatenate(rows, axis=0)


def _factor(N):
    scale = jnp.sqrt(jnp.abs(jnp.diag(N)))
    scale = jnp.where(scale > 0, scale, 1.0)
    cf = jnp.linalg.cholesky(N / scale[:, None] / scale[None, :])
    return cf, scale


def _solve(fac, rhs):
    cf, scale = fac
    y = jax.scipy.linalg.cho_solve((cf, True), rhs / (scale[:, None] if rhs.ndim == 2 else scale))
    return y / (scale[:, None] if rhs.ndim == 2 else scale)


def qgh(theta, A, W, mode_order, spec, *, influence: bool = False):
    """``Q``, its exact gradient and Hessian in ``theta`` from one Cholesky factorisation of ``N(theta)``.

    With ``F(theta, b) = sum_k R_k^T W_k R_k``, ``R_k = A_k - C_k(theta) b`` and ``b_hat = N^{-1} r``:

    * ``dQ/dtheta_i = F_i = -2 sum_k (C_{k,i} b)^T W_k R_k`` (envelope theorem, ``C_{k,i} = dC_k/dtheta_i``);
    * ``d2Q/dtheta_i dtheta_j = F_ij - F_ib (2N)^{-1} F_bj`` with ``F_ij = 2 sum_k [(C_{k,i} b)^T W_k (C_{k,j} b)
      - (C_{k,ij} b)^T W_k R_k]`` and ``F_bi = 2 u_i``, ``u_i = sum_k [C_k^T W_k C_{k,i} b - C_{k,i}^T W_k R_k]``.

    With ``influence=True`` also the derivative of the gradient in the observations,
    ``dF_i/dA_k = 2 W_k (C_k N^{-1} u_i - C_{k,i} b)`` (K, M, p).
    Returns ``(Q, g, H, b)`` (and the influence directions).
    """
    C, dC, d2C = _derivs(theta, spec, mode_order)
    K, L, M = C.shape
    N = _normal_matrix(C, W)
    fac = _factor(N)
    WA = jnp.einsum("kij,kj->ki", W, A)
    rhs = jnp.einsum("kli,ki->li", C, WA).reshape(L * M)
    b = _solve(fac, rhs).reshape(L, M)
    fit = jnp.einsum("kli,li->ki", C, b)
    R = A - fit
    Cib = jnp.einsum("klip,li->kip", dC, b)  # (K, M, p)
    WX = jnp.einsum("kij,kjq->kiq", W, jnp.concatenate([R[..., None], Cib], axis=-1))
    WR, WCib = WX[..., 0], WX[..., 1:]
    Q = jnp.sum(R * WR)
    g = -2.0 * jnp.einsum("kip,ki->p", Cib, WR)
    u = jnp.einsum("kli,kip->lip", C, WCib) - jnp.einsum("klip,ki->lip", dC, WR)  # (L, M, p)
    p = theta.shape[0]
    z = _solve(fac, u.reshape(L * M, p))
    Fij = 2.0 * jnp.einsum("kip,kiq->pq", Cib, WCib) - 2.0 * jnp.einsum("klipq,li,ki->pq", d2C, b, WR)
    H = Fij - 2.0 * u.reshape(L * M, p).T @ z
    H = 0.5 * (H + H.T)
    if not influence:
        return Q, g, H, b
    Cz = jnp.einsum("kli,lip->kip", C, z.reshape(L, M, p))
    V = 2.0 * (jnp.einsum("kij,kjp->kip", W, Cz) - WCib)
    return Q, g, H, b, V


def surrogate_q(theta_grid, A, w, mode_order, spec):
    """The profile criterion with each coefficient's own weight ``w`` (K, M) (the diagonal of ``W``): the
    latent vectors decouple per coefficient (an L x L solve each). Used only to choose the start."""

    def one(th):
        C = multipliers(th, **spec)[:, :, mode_order]  # (K, L, M)
        N = jnp.einsum("ki,kli,kmi->ilm", w, C, C)
        r = jnp.einsum("ki,kli,ki->il", w, C, A)
        b = jnp.linalg.solve(N, r[..., None])[..., 0]
        return jnp.sum(w * A * A) - jnp.sum(r * b)

    return jax.vmap(one)(theta_grid)


@functools.partial(jax.jit, static_argnames=("spec_items", "n_iter"))
def fit_one(theta_grid, A, W, mode_order, *, spec_items, n_iter: int = 60):
    """Start at the grid row (``theta_grid`` (P, p)) that minimises :func:`surrogate_q`, then
    Levenberg-Marquardt on the exact ``Q`` (:func:`qgh`). Returns theta, Q, H."""
    spec = dict(spec_items)
    w = jnp.diagonal(W, axis1=1, axis2=2)
    qs = surrogate_q(theta_grid, A, w, mode_order, spec)
    qs = jnp.where(jnp.isfinite(qs), qs, jnp.inf)
    theta = theta_grid[jnp.argmin(qs)]
    return _lm(theta, A, W, mode_order, spec, n_iter)[:3]


@functools.partial(jax.jit, static_argnames=("spec_items", "n_iter"))
def fit_one_latent(theta_grid, A, W, mode_order, *, spec_items, n_iter: int = 60):
    """:func:`fit_one` and the profiled latent vectors ``b_hat(theta_hat)`` (L, M) from the same Cholesky
    factorisation (the one that gave ``Q(theta_hat)``). Returns theta, Q, H, b."""
    spec = dict(spec_items)
    w = jnp.diagonal(W, axis1=1, axis2=2)
    qs = surrogate_q(theta_grid, A, w, mode_order, spec)
    qs = jnp.where(jnp.isfinite(qs), qs, jnp.inf)
    theta = theta_grid[jnp.argmin(qs)]
    return _lm(theta, A, W, mode_order, spec, n_iter)


def _lm(theta, A, W, mode_order, spec, n_iter):
    """Levenberg-Marquardt on the exact Newton system: one :func:`qgh` (one Cholesky) per trial point."""

    def ev(th):
        q, g, H, b = qgh(th, A, W, mode_order, spec)
        ok = jnp.isfinite(q) & jnp.all(jnp.isfinite(g)) & jnp.all(jnp.isfinite(H))
        return jnp.where(ok, q, jnp.inf), g, H, b

    def body(state):
        k, th, q, g, H, b, mu, _ = state
        D = jnp.maximum(jnp.abs(jnp.diag(H)), 1e-12)
        step = jnp.linalg.solve(H + mu * jnp.diag(D), g)
        cand = th - step
        qc, gc, Hc, bc = ev(cand)
        ok = jnp.isfinite(qc) & (qc <= q)
        small = jnp.max(jnp.abs(step) / (jnp.abs(th) + 1e-6)) < 1e-10
        done = (ok & small) | (mu > 1e12)  # converged, or no descent step left
        pick = lambda a, b: jnp.where(ok, a, b)  # noqa: E731
        return (k + 1, pick(cand, th), pick(qc, q), pick(gc, g), pick(Hc, H), pick(bc, b), pick(mu * 0.3, mu * 10.0),
                done)

    q0, g0, H0, b0 = ev(theta)
    state = (jnp.asarray(0), theta, q0, g0, H0, b0, jnp.asarray(1e-3, theta.dtype), jnp.asarray(False))
    _, theta, q, _, H, b, _, _ = jax.lax.while_loop(lambda s: (s[0] < n_iter) & ~s[7], body, state)
    return theta, q, H, b


@functools.partial(jax.jit, static_argnames=("spec_items",))
def influence_jit(theta, A, W, mode_order, *, spec_items):
    """``(Q, g, H, b, V)`` of :func:`qgh` at ``theta`` with the influence directions ``V`` (K, M, p)."""
    return qgh(theta, A, W, mode_order, dict(spec_items), influence=True)


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
        return _lm(th, a, w, mode_order, spec, n_iter)[:3]

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


@functools.partial(jax.jit, static_argnames=("n_keep",))
def latent_cov_chol(C, W, *, n_keep: int):
    """GLS covariance of the latent vector, the leading (n_keep, n_keep) block of ``N^{-1}``, ``N = sum_k C_k^T
    W_k C_k`` (``C`` (K, L, M) per-coefficient multipliers), and its lower Cholesky factor (of the block plus
    ``1e-300 I``, as the forecast's draws use it). From one Cholesky factorisation of the scaled ``N``."""
    N = _normal_matrix(C, W)
    N = 0.5 * (N + N.T)
    fac = _factor(N)
    B = _solve(fac, jnp.eye(N.shape[0], dtype=N.dtype)[:, :n_keep])[:n_keep]
    B = 0.5 * (B + B.T)
    return B, jnp.linalg.cholesky(B + 1e-300 * jnp.eye(n_keep, dtype=B.dtype))
