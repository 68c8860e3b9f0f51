"""The retraining loop through the sampler: robustness ball, records against closed forms, reproducibility.

How delta is measured: ``records.delta[i]`` is the sliced W2 (16 fixed random directions, exact 1-D W2 per
slice from the mixture's quantile function and Gaussian partial moments) between generation i's particles
and the ideal output ``P_t0 hat-q_i`` of the training law actually used. With ``learner=hl.ParticleScore()`` the next
model *is* the empirical law of those particles, so their sampling noise is part of delta and the bound
``sliced_w2_i <= sum_j kappa^{i-j} delta_j <= max delta / (1 - kappa)`` holds with no further allowance
(per-direction contraction of the 1-D projected recursion, then Minkowski over directions).
"""

import jax
import numpy as np
import pytest

import hermite_limit as hl
from helpers import random_mixture

SAMPLER = dict(method="exponential", grid="geometric", T=4.0)


def _check_ball(res, alpha, t0):
    R = res.records
    kappa = np.sqrt(1 - alpha) * np.exp(-t0)
    assert R.kappa == pytest.approx(kappa)
    assert np.all(R.sliced_w2 <= R.w2_bound * (1 + 1e-9) + 1e-12), (R.sliced_w2, R.w2_bound)
    assert np.all(R.sliced_w2 <= R.delta.max() / (1 - kappa) + 1e-12)
    assert np.all(np.isfinite(R.delta)) and np.all(R.delta > 0)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_particles_stay_in_w2_ball_fast(alpha):
    data = random_mixture(np.random.default_rng(0), 3, 2, "full")
    res = hl.retrain(jax.random.key(1), data, alpha, 0.1, 3, 256, learner=hl.ParticleScore(), n_steps=30,
                     n_directions=8, progress=False, **SAMPLER)
    _check_ball(res, alpha, 0.1)
    assert res.model.n_components == 256


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 10])
@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_particles_stay_in_w2_ball_20_generations(d, alpha):
    data = random_mixture(np.random.default_rng(d), 5, d, "iso")
    res = hl.retrain(jax.random.key(2), data, alpha, 0.1, 20, 1000, learner=hl.ParticleScore(), n_steps=100,
                     progress=False, **SAMPLER)
    _check_ball(res, alpha, 0.1)


def test_analytic_records_match_closed_form():
    data = random_mixture(np.random.default_rng(3), 3, 2, "diag")
    # 200 steps: at 60 the discretisation bias of the order-2 coefficients is ~2 standard errors at n = 10^4
    res = hl.retrain(jax.random.key(4), data, 0.5, 0.1, 3, 10_000, learner=hl.ExactScore(), n_steps=200,
                     n_directions=8, progress=False, **SAMPLER)
    R = res.records
    z = np.abs(R.hermite - R.hermite_exact)[..., 1:] / R.hermite_se[..., 1:]
    assert np.all(z < 4.5), z
    np.testing.assert_allclose(R.delta, R.sliced_w2, rtol=1e-10)  # ideal output == closed form (quantiles to 1e-14)
    with jax.enable_x64(True):
        exact3 = np.asarray(hl.sampling._stats.mixture_hermite_marginals(hl.generation(data, 0.5, 0.1, 3), 4))
    np.testing.assert_allclose(R.hermite_exact[-1], exact3, rtol=1e-12)
    # the particle error is at the sampling-noise level (sliced_w2_floor: exact draws, same size)
    assert np.all(R.sliced_w2 < 3 * R.sliced_w2_floor + 0.01)
    assert R.mean_error.shape == (3,) and np.all(R.mean_error < 0.05)


def test_same_key_same_records_and_refit_runs():
    data = random_mixture(np.random.default_rng(5), 2, 2, "full")
    kw = dict(learner=hl.RefitScore(30), n_steps=20, n_directions=4, progress=False, **SAMPLER)
    seen = []
    a = hl.retrain(jax.random.key(6), data, 0.5, 0.2, 2, 300, callback=lambda i, x: seen.append((i, x)), **kw)
    b = hl.retrain(jax.random.key(6), data, 0.5, 0.2, 2, 300, **kw)
    assert [i for i, _ in seen] == [0, 1]
    np.testing.assert_array_equal(np.asarray(seen[-1][1]), np.asarray(a.particles))
    np.testing.assert_array_equal(a.records.sliced_w2, b.records.sliced_w2)
    np.testing.assert_array_equal(np.asarray(a.particles), np.asarray(b.particles))
    assert a.model.n_components == 2 and a.model.cov_type == "full"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(alpha=1.5), "alpha"),
        (dict(alpha=-0.1), "alpha"),
        (dict(t0=0.0), "t0"),
        (dict(T=0.05), "T must be > t0"),
        (dict(n_steps=0), "n_steps"),
        (dict(n_generations=0), "n_generations"),
        (dict(carry="memory"), "carry"),
        (dict(score_error=[None]), "score_error"),
        (dict(callback=3), "callback"),
    ],
)
def test_retrain_bad_input(kwargs, match):
    args = dict(alpha=0.5, t0=0.1, n_generations=2, n_particles=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        hl.retrain(jax.random.key(0), hl.GaussianMixture([1.0], [[0.0]], [1.0]), progress=False, **args)


def test_retrain_error_dimension_mismatch():
    q3 = hl.GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [1.0])
    with pytest.raises(ValueError, match="score_error has dimension 3"):
        hl.retrain(jax.random.key(0), hl.GaussianMixture([1.0], [[0.0, 1.0]], [1.0]), 0.5, 0.1, 1, 10,
                   score_error=hl.score_error("aligned", q3, 0.1, t0=0.1), progress=False)


def test_exact_w2_samples_to_mixture_matches_quadrature():
    """Exact 1-D W2 (quantiles + partial moments) against brentq quantiles and scipy quad per cell."""
    import scipy.integrate
    import scipy.optimize
    import scipy.stats

    from hermite_limit.sampling._stats import w2_samples_to_mixture_1d

    rng = np.random.default_rng(11)
    w = np.array([0.2, 0.5, 0.3])
    m = np.array([-3.0, 0.5, 4.0])
    s = np.array([0.3, 1.0, 2.0])
    x = rng.normal(0.0, 2.5, 40)
    F = lambda c: float(np.sum(w * scipy.stats.norm.cdf((c - m) / s)))  # noqa: E731
    Finv = lambda u: scipy.optimize.brentq(lambda c: F(c) - u, -60, 60, xtol=1e-15, rtol=1e-15)  # noqa: E731
    xs, n = np.sort(x), len(x)
    total = 0.0
    for i in range(n):  # int over u in cell i of (x_(i) - F^{-1}(u))^2, substituting c = F^{-1}(u)
        lo = -np.inf if i == 0 else Finv(i / n)
        hi = np.inf if i == n - 1 else Finv((i + 1) / n)
        pdf = lambda c: float(np.sum(w * scipy.stats.norm.pdf((c - m) / s) / s))  # noqa: E731
        total += scipy.integrate.quad(lambda c: (xs[i] - c) ** 2 * pdf(c), lo, hi, epsabs=1e-14, epsrel=1e-12)[0]
    with jax.enable_x64(True):
        got = float(w2_samples_to_mixture_1d(jax.numpy.asarray(x), jax.numpy.asarray(w), jax.numpy.asarray(m),
                                             jax.numpy.asarray(s)))
    assert got == pytest.approx(np.sqrt(total), rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantiles_come_with_their_partial_moments(seed):
    """quantile_moments returns the quantiles F^{-1}(u) (brentq) with M1(c) = int_{-inf}^c y dF and M2(c) = int y^2 dF
    (scipy quad), each from the evaluation that met the stopping rule |F(c) - u| <= 1e-14."""
    import scipy.integrate
    import scipy.optimize
    import scipy.stats

    from hermite_limit.sampling._stats import quantile_moments

    rng = np.random.default_rng(seed)
    K = 4 + seed
    w = rng.dirichlet(np.ones(K) * 0.5)
    m = rng.normal(0.0, 3.0, K)
    s = rng.uniform(0.1, 2.0, K)
    u = np.concatenate([[1e-6, 1e-3], rng.uniform(0.0, 1.0, 12), [1 - 1e-3, 1 - 1e-6]])
    F = lambda c: float(np.sum(w * scipy.stats.norm.cdf((c - m) / s)))  # noqa: E731
    pdf = lambda c: float(np.sum(w * scipy.stats.norm.pdf((c - m) / s) / s))  # noqa: E731
    with jax.enable_x64(True):
        c, M1, M2 = (np.asarray(a) for a in quantile_moments(*(jax.numpy.asarray(a) for a in (u, w, m, s))))
    for ui, ci, m1, m2 in zip(u, c, M1, M2):
        want = scipy.optimize.brentq(lambda y: F(y) - ui, -80, 80, xtol=1e-15, rtol=1e-15)
        assert abs(F(ci) - ui) <= 2e-14
        assert ci == pytest.approx(want, rel=1e-9, abs=1e-9)
        # the moments at the returned c itself (the quantile is exact only to the stopping rule)
        pieces = sorted({-np.inf, ci, *[mk for mk in m if mk < ci]})
        want1 = sum(scipy.integrate.quad(lambda y: y * pdf(y), a, b, epsabs=1e-15, epsrel=1e-13)[0]
                    for a, b in zip(pieces[:-1], pieces[1:]))
        want2 = sum(scipy.integrate.quad(lambda y: y * y * pdf(y), a, b, epsabs=1e-15, epsrel=1e-13)[0]
                    for a, b in zip(pieces[:-1], pieces[1:]))
        scale = float(np.sum(w * (np.abs(m) + s) ** 2))
        assert m1 == pytest.approx(want1, abs=1e-12 * scale)
        assert m2 == pytest.approx(want2, abs=1e-12 * scale)


def test_one_dimensional_records_compute_the_axis_once():
    """In one dimension the slice is the axis: the marginal and sliced records are the same W2, each equal to the
    exact 1-D W2 of the particles to the closed-form law (computed here directly)."""
    from hermite_limit.sampling._retrain import _record, _record_shapes
    from hermite_limit.sampling._stats import w2_samples_to_mixture_1d

    data = hl.GaussianMixture([0.4, 0.6], [[-1.5], [1.0]], [0.3, 0.5])
    with jax.enable_x64(True):
        exact = hl.generation(data, 0.5, 0.1, 1)
        ideal = hl.generation(data, 0.5, 0.1, 2)
        x = exact.sample(jax.random.key(4), 200) * 1.05
        rec = {name: np.zeros((1,) + shape) for name, shape in _record_shapes(1, 4).items()}
        _record(rec, 0, x, exact, ideal, jax.numpy.ones((1, 1)), 3, jax.random.key(5), 200)
        for law, w, per_axis in ((exact, rec["sliced_w2"][0], rec["marginal_w2"][0, 0]),
                                 (ideal, rec["delta"][0], rec["marginal_delta"][0, 0])):
            want = float(w2_samples_to_mixture_1d(x[:, 0], law.weights, law.means[:, 0],
                                                  jax.numpy.sqrt(law.covs.reshape(-1))))
            assert w == per_axis
            assert w == pytest.approx(want, rel=1e-12)


def test_projected_w2_direction_batches_divide_the_directions():
    """projected_w2 runs its directions in equal batches (no remainder pass, one loop body to compile): the largest
    divisor of L within the memory bound; each direction's value is the 1-D W2 of that projection."""
    from hermite_limit.sampling._stats import _direction_batch, projected_w2, w2_samples_to_mixture_1d

    for L in (1, 7, 16, 18, 30):
        for cells in (1, 10**4, 10**6, 1_072_000, 2**24, 2**25):
            b = _direction_batch(L, cells)
            cap = max(1, min(L, 2**24 // cells))
            assert L % b == 0 and b <= cap
            assert all(L % c for c in range(b + 1, cap + 1))
    assert _direction_batch(18, 1000 * 1008) == 9 and _direction_batch(16, 1000 * 1072) == 8
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        gm = hl.GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.5, 0.0]], [[0.4, 0.9], [1.2, 0.3]])
        x = jax.numpy.asarray(rng.standard_normal((50, 2)))
        U = rng.standard_normal((7, 2))
        U = jax.numpy.asarray(U / np.linalg.norm(U, axis=1, keepdims=True))
        got = np.asarray(projected_w2(x, gm, U))
        for u, g in zip(np.asarray(U), got):
            s = np.sqrt(np.asarray(gm.covs) @ (u * u))
            one = float(w2_samples_to_mixture_1d(x @ u, gm.weights, jax.numpy.asarray(np.asarray(gm.means) @ u),
                                                 jax.numpy.asarray(s)))
            assert g == pytest.approx(one, rel=1e-13)


def test_law_cells_serve_every_sample_set_of_their_size():
    """The law's side of projected_w2 (law_cells), computed once, gives for each of several sample sets of that size
    the 1-D W2 of every projection (w2_samples_to_mixture_1d, itself checked against quadrature above), for a
    mixture and for pushed copies of empirical data."""
    from hermite_limit.sampling._stats import _project, law_cells, projected_w2, projected_w2_cells, w2_samples_to_mixture_1d

    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        gm = hl.GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.5, 0.0]], [[0.4, 0.9], [1.2, 0.3]])
        pushed = hl.generation(hl.empirical(rng.standard_normal((6, 2))), 0.5, 0.1, 2)
        U = rng.standard_normal((5, 2))
        U = jax.numpy.asarray(U / np.linalg.norm(U, axis=1, keepdims=True))
        for law in (gm, pushed):
            w, m, s = _project(law, U)
            cells = law_cells(law, U, 60)
            for scale in (0.8, 1.0, 1.3):
                x = jax.numpy.asarray(scale * rng.standard_normal((60, 2)))
                got = np.asarray(projected_w2_cells(x, U, cells))
                assert np.array_equal(got, np.asarray(projected_w2(x, law, U)))
                for l in range(U.shape[0]):
                    want = float(w2_samples_to_mixture_1d(x @ U[l], w, m[l], s[l]))
                    assert got[l] == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "x", None])
@pytest.mark.parametrize("name", ["n_directions", "refit_iters", "n_record"])
def test_retrain_settings_are_refused_by_name_before_any_work(name, bad):
    """The outside audit's retrain rows: every count refused with a ValueError naming it."""
    kwargs = dict(carry="analytic", T=1.0, n_steps=5, order=3, n_directions=4, n_record=32, refit_iters=5, progress=False)
    kwargs[name] = bad
    with pytest.raises(ValueError, match=name):
        hl.retrain(jax.random.key(0), hl.datasets.bimodal_1d(), 0.5, 0.1, 2, 32, **kwargs)
