"""hl.diagnose: the coefficient model against the exact recursion, the profile criterion against a brute-force
least squares, interval coverage on exact generations, bootstrap against asymptotic errors, conventions,
identifiability and input errors."""

import json
import math

import jax
import numpy as np
import pytest
from scipy import stats

import hermite_limit as hl
from hermite_limit._diagnose import _model as mdl
from hermite_limit._diagnose._diagnosis import fit_replicates
from hermite_limit._diagnose._stats import batch_stats, sample_stats
from hermite_limit.hermite._indices import graded_indices

from helpers import bimodal_1d

MIX3 = hl.GaussianMixture([0.5, 0.5], [[-1.5, 0.5, 0.0], [1.0, -0.5, 1.0]], [0.3, 0.5])


def _exact_coeffs(law, order):
    return np.asarray(hl.hermite_coefficients(law, order).values)[1:]


@pytest.mark.parametrize("scheme", ["fresh", "replace", "accumulate"])
def test_multipliers_reproduce_the_exact_recursion(scheme):
    # a^i = c_i a^data + d_i a^0 against the library's exact mixtures (per-generation times, p_0 != p_data)
    rng = np.random.default_rng(3)
    data = MIX3
    init = hl.GaussianMixture([0.4, 0.6], [[0.5, 1.0, -1.0], [-0.5, 0.0, 0.5]], [0.7, 1.3])
    order, G, alpha = 3, 4, 0.35
    times = rng.uniform(0.05, 0.4, G)
    theta = np.concatenate([[alpha], times]) if scheme == "fresh" else times
    with jax.enable_x64(True):
        C = np.asarray(mdl.multipliers(jax.numpy.asarray(theta), scheme=scheme, n_transitions=G,
                                       per_generation_t=True, order=order, separate=True))
    mo = graded_indices(order, 3)[1:].sum(1)
    a_data, a_0 = _exact_coeffs(data, order), _exact_coeffs(init, order)
    np.testing.assert_allclose(C[0, 0, mo] * a_data + C[0, 1, mo] * a_0, a_data, atol=1e-14)
    for i in range(G + 1):
        if scheme == "accumulate":  # trains on p_data and p_1..p_i only: p_0 never enters
            law = hl.generation(data, None, times, i, scheme=scheme) if i else init
        else:
            law = hl.generation(data, alpha, times, i, init=init, scheme=scheme) if i else init
        pred = C[1 + i, 0, mo] * a_data + C[1 + i, 1, mo] * a_0
        np.testing.assert_allclose(pred, _exact_coeffs(law, order), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("scheme", ["fresh", "accumulate"])
def test_profile_criterion_equals_bruteforce_least_squares(separate, scheme):
    # Q(theta) = min_b sum_k |L_k (A_k - C_k b)|^2 (L_k^T L_k = W_k), solved here by numpy lstsq on the whitened
    # stacked system at random theta and random positive-definite weights
    rng = np.random.default_rng(1)
    order, dim, G = 2, 2, 3
    M = graded_indices(order, dim).shape[0] - 1
    K = G + 1 + (1 if separate else 0)
    A = rng.standard_normal((K, M))
    Ls = rng.standard_normal((K, M, M)) + 3 * np.eye(M)
    W = np.einsum("kji,kjl->kil", Ls, Ls)
    mo = graded_indices(order, dim)[1:].sum(1)
    theta = np.array([0.3, 0.2]) if scheme == "fresh" else np.array([0.2])
    spec = mdl.spec_items(scheme, G, False, order, separate)
    with jax.enable_x64(True):
        q, b = mdl.profile_jit(jax.numpy.asarray(theta), jax.numpy.asarray(A), jax.numpy.asarray(W),
                               jax.numpy.asarray(mo), spec_items=spec)
        C = np.asarray(mdl.multipliers(jax.numpy.asarray(theta), **dict(spec)))[:, :, mo]
    L = C.shape[1]
    X = np.concatenate([Ls[k] @ np.concatenate([np.diag(C[k, l]) for l in range(L)], axis=1) for k in range(K)])
    y = np.concatenate([Ls[k] @ A[k] for k in range(K)])
    sol, *_ = np.linalg.lstsq(X, y, rcond=None)
    q_ref = float(np.sum((y - X @ sol) ** 2))
    assert abs(float(q) - q_ref) <= 1e-10 * q_ref
    np.testing.assert_allclose(np.asarray(b).reshape(-1), sol, rtol=1e-8, atol=1e-10)


def test_sample_statistics_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 2)) * [1.0, 0.7] + [0.4, -0.2]
    order = 3
    idx = graded_indices(order, 2)[1:]
    H = np.asarray(hl.hermite_products(x, idx))
    st = sample_stats(x, order)
    np.testing.assert_allclose(st.mean, H.mean(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(st.cov, np.cov(H.T) / len(x), rtol=1e-10, atol=1e-16)
    m, c = batch_stats(np.stack([x, x[::-1]]), order)
    np.testing.assert_allclose(m[1], H.mean(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c[0], np.cov(H.T) / len(x), rtol=1e-10, atol=1e-16)


def _replicates(data, alpha, t0, G, n, R, order, seed):
    laws = [data] + [hl.generation(data, alpha, t0, i) for i in range(1, G + 1)]
    A, C = [], []
    for i, law in enumerate(laws):
        x = np.asarray(law.sample(jax.random.fold_in(jax.random.key(seed), i), n * R)).reshape(R, n, data.dim)
        a, c = batch_stats(x, order)
        A.append(a)
        C.append(c)
    return np.stack(A, 1), np.stack(C, 1)


def _coverage(data, alpha, t0, G, n, R, order, seed):
    A, C = _replicates(data, alpha, t0, G, n, R, order, seed)
    fit = fit_replicates(A, C, order, data.dim, n=n)
    cover = np.abs(fit["theta"] - [alpha, t0]) <= stats.norm.ppf(0.975) * fit["se"]
    return cover.mean(0), fit


def _band(R, p=0.95, level=0.99):
    lo, hi = stats.binom.interval(level, R, p)
    return lo / R, hi / R


def test_interval_coverage_1d_small():
    R = 100
    frac, fit = _coverage(bimodal_1d(), 0.4, 0.15, 5, 4000, R, 4, seed=11)
    lo, hi = _band(R)
    assert np.all((frac >= lo) & (frac <= hi)), (frac, (lo, hi))
    assert np.all(np.isfinite(fit["se"]))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["1d", "3d"])
def test_interval_coverage_200_replicates(case):
    R = 200
    if case == "1d":
        frac, _ = _coverage(bimodal_1d(), 0.4, 0.15, 5, 4000, R, 4, seed=21)
    else:
        frac, _ = _coverage(MIX3, 0.5, 0.1, 4, 4000, R, 3, seed=22)
    lo, hi = _band(R)
    assert np.all((frac >= lo) & (frac <= hi)), (frac, (lo, hi))


def _exact_generations(data, alpha, t0, G, n, key, scheme="fresh"):
    out = []
    for i in range(G + 1):
        a_ = None if scheme == "accumulate" else alpha
        law = hl.generation(data, a_, t0, i, scheme=scheme) if i else data
        out.append(np.asarray(law.sample(jax.random.fold_in(key, i), n)))
    return out


def test_bootstrap_and_asymptotic_errors_agree():
    gens = _exact_generations(bimodal_1d(), 0.4, 0.15, 5, 4000, jax.random.key(5))
    d = hl.diagnose(gens, order=4, bootstrap=True, n_boot=100, key=jax.random.key(6))
    assert d.status == "ok"
    assert abs(d.alpha - 0.4) < 3 * d.alpha_se and abs(d.t0 - 0.15) < 3 * d.t0_se
    b = d.bootstrap
    assert b["n_converged"] == 100
    assert 0.75 <= b["alpha_se"] / d.alpha_se <= 1.25, b
    assert 0.75 <= b["t0_se"] / d.t0_se <= 1.25, b
    # the interval is estimate +- 1.96 se
    assert d.alpha_interval[1] - d.alpha == pytest.approx(stats.norm.ppf(0.975) * d.alpha_se)
    # same estimator as the vectorised replicate fit
    A = d._internal["A"][None]
    C = d._internal["covs"][None]
    f = fit_replicates(A, C, 4, 1, n=4000, start=[0.5, 0.1])
    np.testing.assert_allclose(f["theta"][0], [d.alpha, d.t0], rtol=1e-7)
    np.testing.assert_allclose(f["se"][0], [d.alpha_se, d.t0_se], rtol=1e-4)
    assert d.chi2 == pytest.approx(float(f["chi2"][0]), rel=1e-8)
    json.dumps(d.to_json(), allow_nan=False)


def test_conventions_invert_the_converters():
    gens = _exact_generations(bimodal_1d(), 0.5, 0.05, 5, 4000, jax.random.key(8))
    betas = hl.ddpm_linear_betas(1000)
    d = hl.diagnose(gens, order=4, beta_min=0.1, beta_max=20.0, ddpm_betas=betas)
    eps = d.conventions["vp"]["eps"]
    assert float(hl.vp_to_ou_time(eps, 0.1, 20.0)) == pytest.approx(d.t0, rel=1e-12)
    k = d.conventions["ddpm"]["step"]
    kk = int(math.floor(k))
    t_lo, t_hi = (float(hl.ddpm_to_ou_time(betas, j)) for j in (kk, kk + 1))
    assert t_lo <= d.t0 <= t_hi
    # delta method: se_eps = se_t / (dt/deps), dt/deps = beta(eps) / 2, checked by a finite difference
    h = 1e-7
    slope = (float(hl.vp_to_ou_time(eps + h, 0.1, 20.0)) - float(hl.vp_to_ou_time(eps - h, 0.1, 20.0))) / (2 * h)
    assert d.conventions["vp"]["eps_se"] == pytest.approx(d.t0_se / slope, rel=1e-6)


@pytest.mark.slow
def test_scheme_comparison_names_the_generating_scheme():
    data = bimodal_1d()
    for scheme in ("accumulate", "fresh"):
        gens = _exact_generations(data, 0.3, 0.1, 6, 6000, jax.random.key(9), scheme=scheme)
        d = hl.diagnose(gens, order=4, schemes="all")
        assert d.best_scheme == scheme, d.schemes
        assert d.schemes[scheme]["p_value"] > 1e-3


def test_generations_equal_to_the_data_are_not_identifiable():
    data = bimodal_1d()
    gens = [np.asarray(data.sample(jax.random.fold_in(jax.random.key(3), i), 4000)) for i in range(6)]
    d = hl.diagnose(gens, order=4)
    assert not d.identifiable and d.status == "non-identifiable"
    assert d.alpha is None and d.alpha_se is None
    assert "indistinguishable from the data" in d.explanation
    assert d.p_value > 1e-3  # the data do fit (t = 0): not a rejection
    json.dumps(d.to_json(), allow_nan=False)


def test_standard_normal_data_is_not_identifiable():
    gens = [np.asarray(jax.random.normal(jax.random.key(i), (4000, 2))) for i in range(4)]
    d = hl.diagnose(gens, order=3)
    assert not d.identifiable and d.alpha is None and d.t0 is None
    assert "N(0, I)" in d.explanation
    json.dumps(d.to_json(), allow_nan=False)


def test_bad_input_names_the_argument():
    x = np.random.default_rng(0).standard_normal((500, 2))
    with pytest.raises(ValueError, match="generations"):
        hl.diagnose([x])
    with pytest.raises(ValueError, match=r"generations\[1\]"):
        hl.diagnose([x, x[:, :1]])
    with pytest.raises(ValueError, match=r"generations\[1\]"):
        hl.diagnose([x, np.full((500, 2), np.nan)])
    with pytest.raises(ValueError, match="samples"):
        hl.diagnose([x, x[:10]], order=4)
    with pytest.raises(ValueError, match="data"):
        hl.diagnose([x, x], data=x[:, :1])
    with pytest.raises(ValueError, match="key"):
        hl.diagnose([x, x], bootstrap=True)
    with pytest.raises(ValueError, match="schemes"):
        hl.diagnose([x, x], schemes=["fresh", "nope"])
    with pytest.raises(ValueError, match="order"):
        hl.diagnose([x, x], order=0)


def test_per_generation_times_with_a_separate_data_sample():
    # annealed schedule, generation 0 a different model than the data: one t_i per transition, latent a^0
    data = bimodal_1d()
    init = hl.GaussianMixture([1.0], [[0.5]], [1.5])
    alpha, times, n = 0.5, np.array([0.3, 0.2, 0.1]), 20_000
    key = jax.random.key(31)
    gens = [np.asarray((hl.generation(data, alpha, times, i, init=init) if i else init).sample(jax.random.fold_in(key, i), n))
            for i in range(4)]
    x_data = np.asarray(data.sample(jax.random.fold_in(key, 99), n))
    d = hl.diagnose(gens, x_data, order=4, per_generation_t=True)
    assert d.separate_data and d.per_generation_t and d.identifiable and d.alpha is not None, d.explanation
    assert abs(d.alpha - alpha) < 3 * d.alpha_se
    assert np.all(np.abs(d.times - times) < 3 * d.times_se), (d.times, d.times_se)
    assert d.dof == 3 * 4 - 4  # K M - L M - p = 5*4 - 2*4 - 4
    assert abs(d.t0 - times.mean()) < 3 * d.t0_se
    # a constant t0 cannot describe the annealed schedule: rejected
    assert hl.diagnose(gens, x_data, order=4).p_value < 1e-3


@pytest.mark.parametrize("dim,order", [(1, 4), (5, 3), (10, 2), (10, 4)])
def test_moment_covariance_matches_numpy_feature_covariance(dim, order):
    # the covariance assembled from the 2*order sample moments (Hermite linearisation, split coordinates)
    # against np.cov of the explicit (n, M) feature matrix; (10, 4) takes the high-degree blocks sub-block by
    # sub-block on both branches of _HalfFeatures.degree_times
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((1500, dim)) * rng.uniform(0.5, 1.5, dim) + rng.uniform(-0.5, 0.5, dim)
    idx = graded_indices(order, dim)[1:]
    H = np.asarray(hl.hermite_products(x, idx))
    st = sample_stats(x, order)
    np.testing.assert_allclose(st.mean, H.mean(0), rtol=1e-12, atol=1e-13)
    ref = np.cov(H.T) / len(x)
    assert np.max(np.abs(st.cov - ref)) <= 1e-11 * np.max(np.abs(ref))


def test_feature_values_and_bootstrap_draws():
    from hermite_limit._diagnose._stats import feature_values, influence_draws

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2000, 3))
    idx = graded_indices(3, 3)[1:]
    V = rng.standard_normal((idx.shape[0], 2))
    s = feature_values(x, 3, V)
    ref = np.asarray(hl.hermite_products(x, idx)) @ V
    np.testing.assert_allclose(s, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # resampling with replacement: the draws of mean(s*) - mean(s) have mean 0 and covariance cov(s) (ddof 0) / N
    B = 4000
    dr = influence_draws(jax.random.key(2), s, B)
    N = len(s)
    target = np.cov(s.T, ddof=0) / N
    se = np.sqrt(np.diag(target) / B)
    assert np.all(np.abs(dr.mean(0)) < 4 * se)
    ratio = np.diag(np.cov(dr.T)) / np.diag(target)
    assert np.all(np.abs(ratio - 1) < 4 * np.sqrt(2 / B)), ratio


@pytest.mark.parametrize("scheme,separate,per_gen", [("fresh", False, False),
                                                      pytest.param("fresh", True, True, marks=pytest.mark.slow),
                                                      pytest.param("accumulate", True, False, marks=pytest.mark.slow)])
def test_newton_system_matches_autodiff_of_the_dense_profile(scheme, separate, per_gen):
    # gradient, Hessian and d(gradient)/dA from one Cholesky (mdl.qgh) against JAX autodiff through the
    # dense solve of mdl.profile, at random theta and random positive-definite weights
    rng = np.random.default_rng(5)
    order, dim, G = 2, 2, 3
    mo = graded_indices(order, dim)[1:].sum(1)
    M = mo.size
    K = G + 1 + (1 if separate else 0)
    A_np = rng.standard_normal((K, M))
    Ls = rng.standard_normal((K, M, M)) + 3 * np.eye(M)
    W_np = np.einsum("kji,kjl->kil", Ls, Ls)
    p = mdl.n_params(scheme, G, per_gen)
    spec = dict(mdl.spec_items(scheme, G, per_gen, order, separate))
    with jax.enable_x64(True):
        A, W = jax.numpy.asarray(A_np), jax.numpy.asarray(W_np)
        theta = jax.numpy.asarray(rng.uniform(0.1, 0.4, p))
        f = lambda th, a: mdl._q(th, a, W, jax.numpy.asarray(mo), spec)  # noqa: E731
        q, g, H, _, V = mdl.qgh(theta, A, W, jax.numpy.asarray(mo), spec, influence=True)
        # each reference is one compiled program: eagerly, autodiff through the dense solve compiles hundreds of
        # single operations (35 s of the suite's time)
        g_ref = jax.jit(jax.grad(f))(theta, A)
        H_ref = jax.jit(jax.hessian(f))(theta, A)
        J_ref = jax.jit(jax.jacfwd(jax.grad(f), argnums=1))(theta, A)  # (p, K, M)
        q_ref = float(jax.jit(f)(theta, A))
    assert abs(float(q) - q_ref) <= 1e-12 * q_ref
    np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-10 * np.abs(g_ref).max())
    np.testing.assert_allclose(H, H_ref, rtol=1e-9, atol=1e-10 * np.abs(H_ref).max())
    np.testing.assert_allclose(V, np.moveaxis(np.asarray(J_ref), 0, -1), rtol=1e-9, atol=1e-10 * np.abs(J_ref).max())


def test_surrogate_start_reaches_the_exact_grid_minimum_and_one_step_tracks_refits():
    # (1) the fit started from the surrogate-scored grid row equals LM started from the row of lowest exact Q
    # (the previous start rule); (2) the linearised one-step estimate theta - H^-1 (g + J dA) agrees with a
    # full refit on perturbed coefficient vectors dA ~ N(0, Sigma_k) to second order
    gens = _exact_generations(bimodal_1d(), 0.4, 0.15, 5, 4000, jax.random.key(12))
    d = hl.diagnose(gens, order=4)
    A, W, mo = d._internal["A"], d._internal["W"], d.mode_order
    spec = mdl.spec_items("fresh", 5, False, 4, False)
    grid = mdl.start_grid("fresh", 5, False)
    with jax.enable_x64(True):
        jA, jW, jmo = jax.numpy.asarray(A), jax.numpy.asarray(W), jax.numpy.asarray(mo)
        qs = np.array(jax.jit(jax.vmap(lambda th: mdl._q(th, jA, jW, jmo, dict(spec))))(jax.numpy.asarray(grid)))
        qs[~np.isfinite(qs)] = np.inf
        th_exact, q_exact, _ = mdl.fit_many(jax.numpy.asarray(grid[np.argmin(qs)])[None], jA[None], jW, jmo,
                                            spec_items=spec, n_iter=60)
        th, q, H = mdl.fit_one(jax.numpy.asarray(grid), jA, jW, jmo, spec_items=spec)
        np.testing.assert_allclose(np.asarray(th), np.asarray(th_exact[0]), rtol=1e-8)
        _, g, H, _, V = mdl.influence_jit(th, jA, jW, jmo, spec_items=spec)
        covs = d._internal["covs"]
        rng = np.random.default_rng(0)
        dA = np.stack([rng.multivariate_normal(np.zeros(A.shape[1]), c, size=8) for c in covs], axis=1)  # (8, K, M)
        refit, _, _ = mdl.fit_many(jax.numpy.tile(th, (8, 1)), jax.numpy.asarray(A[None] + dA), jW, jmo,
                                   spec_items=spec, n_iter=60)
    step = np.asarray(th)[None] - np.linalg.solve(np.asarray(H), (np.asarray(g)[None] + np.einsum("kmp,bkm->bp", np.asarray(V), dA)).T).T
    move = np.linalg.norm(np.asarray(refit) - np.asarray(th)[None], axis=0)
    miss = np.linalg.norm(step - np.asarray(refit), axis=0)
    assert np.all(miss <= 0.15 * move), (miss, move)


def test_per_order_chi2_equals_the_block_quadratic_forms():
    # each order's block residual against its own covariance block, recomputed with a dense LU solve
    from hermite_limit._diagnose._diagnosis import _fitted, _per_order

    gens = _exact_generations(bimodal_1d(), 0.4, 0.15, 3, 1500, jax.random.key(8))
    d = hl.diagnose(gens, order=3)
    A, covs, fit = d._internal["A"], d._internal["covs"], d._internal["fit"]
    mode_order = np.arange(1, 4)
    _, fitted = _fitted(fit, mode_order, 3, len(gens) - 1, False, False)
    R = A - fitted
    for m in (1, 2, 3):
        sel = mode_order == m
        ref = sum(float(R[k, sel] @ np.linalg.solve(covs[k][np.ix_(sel, sel)], R[k, sel])) for k in range(len(A)))
        got = _per_order(fit, A, covs, mode_order, 3, len(gens) - 1, False, False)["chi2"][m - 1]
        assert got == pytest.approx(ref, rel=1e-10)
        assert d.per_order["chi2"][m - 1] == pytest.approx(ref, rel=1e-5)
