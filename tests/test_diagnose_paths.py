"""The fast paths of hl.diagnose against references computed differently: the fused bootstrap draws against
the explicit feature matrix and the per-set draws, the latent covariance and its factor against a dense numpy
inverse, the latent vector from the Levenberg-Marquardt factorisation against the dense-solve profile, and the
scoped single-threaded BLAS (restored on exit)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit._blas import single_threaded_blas
from hermite_limit._diagnose import _model as mdl
from hermite_limit._diagnose._stats import bootstrap_draws_many, each_set, influence_draws, stats_dispatch
from hermite_limit.hermite._indices import graded_indices


def test_fused_bootstrap_draws_equal_the_per_set_draws_of_the_explicit_features():
    # sum_k draws(key_k, H_k V_k) with H_k the explicit (n_k, M) feature matrix (hermite_products): the same
    # resampling indices, so equal to rounding; sets of different sizes and dimension 5 (halves 3 + 2)
    rng = np.random.default_rng(11)
    order, dim, B = 3, 5, 64
    idx = graded_indices(order, dim)[1:]
    sets = [rng.standard_normal((n, dim)) * 0.8 + 0.1 for n in (700, 1100, 900)]
    V = rng.standard_normal((len(sets), idx.shape[0], 2))
    keys = jax.random.split(jax.random.key(5), len(sets))
    got = bootstrap_draws_many(keys, sets, order, V, B)
    ref = sum(influence_draws(keys[k], np.asarray(hl.hermite_products(x, idx)) @ V[k], B) for k, x in enumerate(sets))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


def test_set_statistics_on_two_threads_equal_np_cov_of_the_feature_matrix():
    # means and covariances of several sets (two at a time, as diagnose runs them) against np.cov of the explicit
    # features
    rng = np.random.default_rng(12)
    order, dim = 2, 7
    idx = graded_indices(order, dim)[1:]
    sets = [rng.standard_normal((n, dim)) * rng.uniform(0.6, 1.4, dim) for n in (400, 650)]
    A, C = zip(*each_set(lambda k: stats_dispatch(sets[k], order), len(sets)))
    for k, x in enumerate(sets):
        H = np.asarray(hl.hermite_products(x, idx))
        np.testing.assert_allclose(np.asarray(A[k]), H.mean(0), rtol=1e-12, atol=1e-13)
        ref = np.cov(H.T) / len(x)
        assert np.max(np.abs(np.asarray(C[k]) - ref)) <= 1e-11 * np.max(np.abs(ref))


def test_latent_cov_and_factor_match_a_dense_inverse():
    # the leading block of N^{-1}, N = sum_k C_k^T W_k C_k, and its Cholesky factor, against numpy (L = 2)
    rng = np.random.default_rng(13)
    K, L, M = 4, 2, 6
    C = rng.uniform(0.2, 1.0, (K, L, M))
    Ls = rng.standard_normal((K, M, M)) + 3 * np.eye(M)
    W = np.einsum("kji,kjl->kil", Ls, Ls)
    N = np.einsum("kij,kli,kmj->limj", W, C, C).reshape(L * M, L * M)
    ref = np.linalg.inv(N)[:M, :M]
    with jax.enable_x64(True):
        B, Lb = mdl.latent_cov_chol(jax.numpy.asarray(C), jax.numpy.asarray(W), n_keep=M)
    np.testing.assert_allclose(np.asarray(B), ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(np.asarray(Lb), np.linalg.cholesky(ref), rtol=1e-9, atol=1e-12)


def test_latent_vector_from_the_fit_equals_the_dense_profile():
    # b_hat returned by the fit (from the LM's Cholesky of N) against profile_jit's dense solve at theta_hat
    rng = np.random.default_rng(14)
    order, dim, G = 2, 2, 3
    mo = graded_indices(order, dim)[1:].sum(1)
    M, K = mo.size, G + 1
    A = rng.standard_normal((K, M)) * 0.1 + np.linspace(1.0, 0.5, K)[:, None]
    Ls = rng.standard_normal((K, M, M)) + 3 * np.eye(M)
    W = np.einsum("kji,kjl->kil", Ls, Ls)
    spec = mdl.spec_items("fresh", G, False, order, False)
    grid = mdl.start_grid("fresh", G, False)
    with jax.enable_x64(True):
        jA, jW, jmo = jax.numpy.asarray(A), jax.numpy.asarray(W), jax.numpy.asarray(mo)
        th, q, H, b = mdl.fit_one_latent(jax.numpy.asarray(grid), jA, jW, jmo, spec_items=spec)
        th1, q1, H1 = mdl.fit_one(jax.numpy.asarray(grid), jA, jW, jmo, spec_items=spec)
        q_ref, b_ref = mdl.profile_jit(th, jA, jW, jmo, spec_items=spec)
    np.testing.assert_array_equal(np.asarray(th), np.asarray(th1))
    assert float(q) == float(q1)
    assert abs(float(q) - float(q_ref)) <= 1e-10 * abs(float(q_ref))
    np.testing.assert_allclose(np.asarray(b), np.asarray(b_ref), rtol=1e-9, atol=1e-12)


def test_single_threaded_blas_is_scoped():
    threadpoolctl = __import__("threadpoolctl")
    np.linalg.cholesky(np.eye(3))  # make sure a BLAS is loaded
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    with single_threaded_blas():
        inside = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    after = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert inside and all(n == 1 for n in inside)
    assert after == before


def _splitmix64_np(z):
    z = z * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@pytest.mark.parametrize("p", [1, 2, 3])
def test_influence_draws_equal_explicit_resampling(p):
    # the draws are mean(s[idx]) - mean(s) for the documented SplitMix64 indices: recomputed here in numpy
    # (uint64 wrap-around arithmetic), with an explicit gather, for odd and even numbers of columns
    from hermite_limit._diagnose._stats import influence_draws

    rng = np.random.default_rng(p)
    N, B = 997, 13
    s = rng.standard_normal((N, p))
    key = jax.random.key(7)
    kd = np.asarray(jax.random.bits(key, (2,), jnp.uint32)).astype(np.uint64)
    seed = (kd[0] << np.uint64(32)) | kd[1]
    j = np.arange(N, dtype=np.uint64)
    with np.errstate(over="ignore"):
        ref = np.stack([s[((_splitmix64_np(seed + np.uint64(b) * np.uint64(N) + j + np.uint64(1)) >> np.uint64(32))
                           * np.uint64(N)) >> np.uint64(32)].mean(0) - s.mean(0) for b in range(B)])
    np.testing.assert_allclose(influence_draws(key, s, B), ref, rtol=0, atol=1e-14)


def test_precision_weights_equal_the_scaled_numpy_inverse_and_flag_singular_covariances():
    # potrf + potri in place against numpy's LU inverse times the Wishart factor (n - M - 2) / (n - 1);
    # a rank-deficient covariance is flagged (ok False), not inverted
    from hermite_limit._diagnose._diagnosis import _precisions

    rng = np.random.default_rng(3)
    M, n = 40, 500
    X = rng.standard_normal((3, 2 * M, M))
    covs = np.einsum("kji,kjl->kil", X, X) / (2 * M) + 0.1 * np.eye(M)
    covs[2] = np.outer(X[2, 0], X[2, 0])  # rank one
    W, ok = _precisions(covs, np.array([n, n + 1, n]))
    assert ok.tolist() == [True, True, False]
    for k, nk in enumerate([n, n + 1]):
        ref = np.linalg.inv(covs[k]) * (nk - M - 2) / (nk - 1)
        np.testing.assert_allclose(W[k], ref, rtol=0, atol=1e-11 * np.abs(ref).max())
        assert np.array_equal(W[k], W[k].T)


def test_diagnosis_is_the_same_with_one_or_two_set_threads(monkeypatch):
    # sets run two at a time on host threads; every set writes only its own rows and the bootstrap draws are
    # summed in set order, so the estimates and bootstrap errors are bitwise those of one thread
    import hermite_limit._diagnose._stats as stats

    data = hl.GaussianMixture([0.5, 0.5], [[-1.0, 0.3], [1.2, -0.4]], [[0.5, 0.7], [0.8, 0.4]])
    gens = [np.asarray((hl.generation(data, 0.3, 0.1, i) if i else data).sample(jax.random.key(i), 3000))
            for i in range(4)]

    def run():
        d = hl.diagnose(gens, order=3, bootstrap=True, n_boot=50, key=jax.random.key(9))
        return [d.alpha, d.alpha_se, d.t0, d.t0_se, d.p_value, d.bootstrap["alpha_se"], d.bootstrap["t0_se"]]

    two = run()
    monkeypatch.setattr(stats, "SET_THREADS", 1)
    assert run() == two


@pytest.mark.parametrize("M", [1, 5, 128, 300])
def test_mirror_lower_gives_the_symmetric_matrix_of_the_lower_triangle(M):
    from hermite_limit._diagnose._diagnosis import _mirror_lower

    a = np.random.default_rng(M).standard_normal((M, M))
    ref = np.tril(a) + np.tril(a, -1).T
    _mirror_lower(a)
    assert np.array_equal(a, ref)
