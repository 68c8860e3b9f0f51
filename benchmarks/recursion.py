"""The exact recursion and the limit distribution: ours vs the direct numpy closed forms, over a grid.

Peers (vectorised numpy, what a competent user writes from the formulas, in the data's covariance
structure):

* ``generation``: ``p_n = sum_{k=1..n} alpha (1-alpha)^{k-1} P_{k t0} p_data + (1-alpha)^n P_{n t0} p_0``
  with ``p_0 = p_data``, every term ``P_{k t0} N(m, S) = N(rho^k m, rho^{2k} S + (1 - rho^{2k}) I)``
  broadcast over (term, component) at once (:func:`numpy_generation`);
* ``limit_distribution``: ``sum_{k<=J} alpha (1-alpha)^{k-1} P_{k t0} p_data + (1-alpha)^J N(0, I)``
  (:func:`numpy_limit`), with the same ``J`` as ours.

The grid runs K in {1, 10, 100, 1000} components of a random full-covariance mixture in d = 10 and
n (or J) in {1, 10, 50, 200} generations (series terms): target 1x on every cell. The seeds' mixture
(d = 10, K = 5, isotropic) is timed too, against the closed form and against the step-by-step
recursion ``p <- P_t0(alpha p_data + (1 - alpha) p)``. Errors: max relative density deviation at test
points between our law and the peer's, both evaluated in numpy component by component.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

import hermite_limit as hl

from ._harness import TaskResult, time_pair

ALPHA, T0, D = 0.5, 0.1, 10
PEER = "numpy closed form (vectorised)"
REPEATS_SEED = 50
HOST_NOTE = ("both sides timed up to usable host numpy arrays (weights, means, covariances): ours is "
             "hl.generation(...).to_numpy() / hl.limit_distribution(...).mixture.to_numpy(), the same three arrays the "
             "peer returns; the first move of either side's arrays into JAX (one device_put, about 65 us for three "
             "small arrays) is charged to neither")
GRID_K = (1, 10, 100, 1000)
GRID_N = (1, 10, 50, 200)


def _identity_like(S: np.ndarray, d: int):
    """The identity in the covariance structure of ``S``: (K,) iso, (K, d) diag, (K, d, d) full."""
    return {1: 1.0, 2: np.ones(d), 3: np.eye(d)}[S.ndim]


def numpy_terms(w, m, S, rho, c, tw):
    """``sum_j tw_j law(rho_j X + sqrt(c_j) Z)``, X ~ (w, m, S): arrays (J K,), (J K, d), (J K, ...)."""
    d = m.shape[1]
    expand = (slice(None),) + (None,) * S.ndim
    W = (tw[:, None] * w).ravel()
    M = (rho[:, None, None] * m).reshape(-1, d)
    C = ((rho * rho)[expand] * S + c[expand] * _identity_like(S, d)).reshape((-1,) + S.shape[1:])
    return W, M, C


def numpy_generation(w, m, S, alpha, t0, n):
    """Closed form of the n-th generation (fresh data, constant t0, p_0 = p_data): K (n + 1) components."""
    k = np.arange(1, n + 1)
    kk = np.append(k, n)  # the n data terms, then the initial model pushed n times
    tw = np.append(alpha * (1 - alpha) ** (k - 1), (1 - alpha) ** n)
    return numpy_terms(w, m, S, np.exp(-t0 * kk), -np.expm1(-2 * t0 * kk), tw)


def numpy_limit(w, m, S, alpha, t0, J):
    """Closed form of the limit truncated to J terms, the tail mass on N(0, I): J K + 1 components."""
    k = np.arange(1, J + 1)
    W, M, C = numpy_terms(w, m, S, np.exp(-t0 * k), -np.expm1(-2 * t0 * k), alpha * (1 - alpha) ** (k - 1))
    d = m.shape[1]
    return (np.append(W, (1 - alpha) ** J), np.concatenate([M, np.zeros((1, d))]),
            np.concatenate([C, np.broadcast_to(_identity_like(S, d), (1,) + C.shape[1:])]))


def numpy_stepwise(w, m, S, alpha, t0, n):
    """The recursion p <- P_t0(alpha p_data + (1 - alpha) p), step by step on component arrays."""
    dw, dm, dS = w, m, S
    eye = _identity_like(S, m.shape[1])
    rho = np.exp(-t0)
    for _ in range(n):
        w = np.concatenate([alpha * dw, (1 - alpha) * w])
        m, S = rho * np.concatenate([dm, m]), rho**2 * np.concatenate([dS, S]) + (1 - rho**2) * eye
    return w / w.sum(), m, S


def numpy_density(w, m, S, x):
    """Mixture density at x, component by component (Cholesky), chunked over components."""
    d = m.shape[1]
    S = {1: lambda: S[:, None, None] * np.eye(d), 2: lambda: S[:, :, None] * np.eye(d), 3: lambda: S}[S.ndim]()
    out = []
    for i in range(0, len(w), 2000):
        L = np.linalg.cholesky(S[i : i + 2000])
        y = np.linalg.solve(L[None], (x[:, None, :] - m[None, i : i + 2000])[..., None])[..., 0]
        logdet = 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(1)
        out.append(np.log(w[i : i + 2000]) - 0.5 * (y * y).sum(-1) - 0.5 * logdet - 0.5 * d * np.log(2 * np.pi))
    return np.exp(logsumexp(np.concatenate(out, axis=1), axis=1))


def random_mixture(K: int, d: int = D, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((K, d, d)) / np.sqrt(d)
    return rng.dirichlet(np.ones(K)), 2.0 * rng.standard_normal((K, d)), A @ np.swapaxes(A, 1, 2) + 0.3 * np.eye(d)


def _rel_err(ours, peer, x) -> float:
    """Max relative deviation of our law's density from the peer's, both evaluated by :func:`numpy_density`.

    ``ours`` and ``peer`` are (weights, means, covs) arrays."""
    ref = numpy_density(*peer, x)
    return float(np.max(np.abs(numpy_density(*ours, x) - ref) / ref))


def _repeats(n_floats: float) -> int:
    """Steady state = fastest of this many calls (same on both sides): many for microsecond calls."""
    return 50 if n_floats < 1e5 else (10 if n_floats < 1e7 else 3)


def _tol_for_terms(alpha: float, J: int) -> float:
    """A tolerance giving exactly J series terms: (1-alpha)^J <= tol < (1-alpha)^(J-1)."""
    return (1 - alpha) ** J * (1 + 1e-6)


def grid_rows(Ks, Ns, check_points: int = 20) -> list[TaskResult]:
    rows = []
    x = np.random.default_rng(1).standard_normal((check_points, D)) * 2.0
    for K in Ks:
        w, m, S = random_mixture(K)
        data = hl.GaussianMixture(w, m, S)
        for n in Ns:
            reps = _repeats(K * (n + 1) * D * D)
            c_g, t_g, law, t_p, peer = time_pair(lambda: hl.generation(data, ALPHA, T0, n).to_numpy(),
                                                 lambda: numpy_generation(w, m, S, ALPHA, T0, n), reps)
            rows.append(TaskResult(f"generation n={n} (d={D}, K={K}, full covariances)", PEER,
                                   t_p, t_g, 1.0, 0.0, _rel_err(law, peer, x), c_g - t_g))
            tol = _tol_for_terms(ALPHA, n)
            if hl.limit_distribution(data, ALPHA, T0, tol).n_terms != n:
                raise AssertionError(f"expected {n} series terms, got {hl.limit_distribution(data, ALPHA, T0, tol).n_terms}")
            c_l, t_l, lim, t_pl, peer_l = time_pair(lambda: hl.limit_distribution(data, ALPHA, T0, tol).mixture.to_numpy(),
                                                    lambda: numpy_limit(w, m, S, ALPHA, T0, n), reps)
            rows.append(TaskResult(f"limit J={n} terms (d={D}, K={K}, full covariances)", PEER,
                                   t_pl, t_l, 1.0, 0.0, _rel_err(lim, peer_l, x), c_l - t_l))
    return rows


def run(size: str = "full") -> list[TaskResult]:
    quick = size != "full"
    tiny = size == "tiny"
    rng = np.random.default_rng(0)
    n = 10 if tiny else (50 if quick else 200)
    data = hl.datasets.seed_gmm10()
    w, m, S = (np.asarray(a) for a in (data.weights, data.means, data.covs))  # isotropic, as stored
    alpha, t0 = 0.1, 0.1
    x = rng.standard_normal((50, D)) * 2 + 0.5
    ours = lambda: hl.generation(data, alpha, t0, n).to_numpy()  # noqa: E731
    c_g, t_g, p_ours, t_cf, p_cf = time_pair(ours, lambda: numpy_generation(w, m, S, alpha, t0, n), REPEATS_SEED)
    # the step-by-step peer against its own paired run of ours (the row reports that run's time of ours)
    _, t_g_np, _, t_np, p_np = time_pair(ours, lambda: numpy_stepwise(w, m, S, alpha, t0, n), REPEATS_SEED)
    J = hl.limit_distribution(data, alpha, t0, 1e-12).n_terms
    c_l, t_l, lim, t_nl, lim_np = time_pair(lambda: hl.limit_distribution(data, alpha, t0, 1e-12).mixture.to_numpy(),
                                            lambda: numpy_limit(w, m, S, alpha, t0, J), REPEATS_SEED)
    rows = [
        TaskResult(f"{n} generations (d=10, K=5, isotropic)", PEER, t_cf, t_g, 1.0, 0.0,
                   _rel_err(p_ours, p_cf, x), c_g - t_g, HOST_NOTE),
        TaskResult(f"{n} generations (d=10, K=5, isotropic)", "numpy step-by-step recursion", t_np, t_g_np, None, 0.0,
                   _rel_err(p_ours, p_np, x), c_g - t_g,
                   "ours merges the repeated components of every generation into one term per distinct time"),
        TaskResult("limit distribution (d=10, K=5, isotropic, tol 1e-12)", PEER, t_nl, t_l, 1.0, 0.0,
                   _rel_err(lim, lim_np, x), c_l - t_l),
    ]
    grid = ((1, 10), (1, 10)) if tiny else (GRID_K, GRID_N)
    return rows + grid_rows(*grid)
