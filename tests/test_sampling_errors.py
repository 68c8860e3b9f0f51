"""Score errors: calibration, Girsanov bound in the exact Gaussian setting, moment ODE vs sampling, eta."""

import math

import jax
import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit.sampling import time_grid
from hermite_limit.sampling._solvers import step


def _spd(rng, d, lo=0.3):
    G = rng.standard_normal((d, d))
    return G @ G.T / d + lo * np.eye(d)


def test_time_only_calibration_is_exact_and_mc_energies_match():
    q = hl.GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [0.3, 0.5])
    e = hl.score_error("time_only", q, 0.3, t0=0.02, T=4.0, key=jax.random.key(0))
    est = hl.path_energy(jax.random.key(1), q, e, 100, t0=0.02, T=4.0, n_steps=50)
    assert est.value == pytest.approx(0.09, rel=1e-12)
    for kind in ["aligned", "random"]:
        e = hl.score_error(kind, q, 0.3, t0=0.02, T=4.0, key=jax.random.key(2))
        star = hl.path_energy(jax.random.key(3), q, e, 4000, t0=0.02, T=4.0, n_steps=400, process="ideal")
        # discretisation of the left-point time integral ~ h: allow 1% beside 4 standard errors
        assert abs(star.value - 0.09) < 4 * star.stderr + 0.01 * 0.09, (kind, star)


def test_kl_below_half_hat_energy_for_random_affine_errors():
    """Exact Gaussian setting: KL(learned || ideal) <= hat-eps^2 / 2 (+ KL of the initialisation)."""
    rng = np.random.default_rng(1)
    for i in range(25):
        d = 1 + i % 3
        m, S = rng.standard_normal(d), _spd(rng, d)
        A0, b0 = 0.3 * rng.standard_normal((d, d)), 0.3 * rng.standard_normal(d)
        w = rng.uniform(0.5, 3.0)
        A = lambda t, A0=A0, w=w: A0 * math.cos(w * t)  # noqa: E731
        b = lambda t, b0=b0: b0 * math.exp(-t)  # noqa: E731
        init = "exact" if i % 2 == 0 else "gaussian"
        out = hl.gaussian_output_moments(m, S, t0=0.02, T=3.0, A=A, b=b, init=init)
        assert out.kl <= out.kl_bound * (1 + 1e-8), (i, out.kl, out.kl_bound)
        assert out.energy_hat > 0 and out.energy_star > 0
        np.testing.assert_allclose(out.ideal_cov_ode, out.ideal_cov, atol=1e-9)
        np.testing.assert_allclose(out.ideal_mean_ode, out.ideal_mean, atol=1e-9)
    zero = hl.gaussian_output_moments(m, S, t0=0.02, T=3.0)
    assert zero.kl < 1e-16 and zero.energy_hat == 0.0


def test_moment_ode_matches_sampling():
    rng = np.random.default_rng(2)
    m, S = np.array([1.0, -0.5]), _spd(rng, 2)
    q = hl.GaussianMixture([1.0], [m], [S])
    e = hl.score_error("random", q, 0.5, t0=0.05, T=4.0, key=jax.random.key(4))
    out = hl.gaussian_output_moments(m, S, t0=0.05, T=4.0, score_error=e)
    n = 40_000
    x = np.asarray(hl.reverse_sample(jax.random.key(5), q, n, t0=0.05, T=4.0, n_steps=400, method="exponential",
                                     grid="geometric", score_error=e).particles)
    se_mean = np.sqrt(np.diag(out.learned_cov) / n)
    assert np.all(np.abs(x.mean(0) - out.learned_mean) < 4 * se_mean + 0.01)
    se_cov = np.sqrt((out.learned_cov**2 + np.outer(np.diag(out.learned_cov), np.diag(out.learned_cov))) / n)
    assert np.all(np.abs(np.cov(x.T) - out.learned_cov) < 4 * se_cov + 0.01)
    # hat energy along sampled learned paths vs the ODE's exact value
    hat = hl.path_energy(jax.random.key(6), q, e, 4000, t0=0.05, T=4.0, n_steps=400, grid="geometric")
    assert abs(hat.value - out.energy_hat) < 4 * hat.stderr + 0.02 * out.energy_hat


def _exact_eta_time_only(m, s2, xi, t0, T, n_steps):
    """eta for the EM chain, q = N(m, s2) in 1-D, e = xi (constant): (Y_N, M) jointly Gaussian."""
    q = hl.GaussianMixture([1.0], [[m]], [s2])
    s = hl.mixture_score(q)
    with jax.enable_x64(True):
        ts = np.asarray(time_grid(t0, T, n_steps, "uniform"))
        a = np.array([float(step("em", np.ones((1, 1)), t, tn, np.zeros((1, 1)), s)[0, 0]
                            - step("em", np.zeros((1, 1)), t, tn, np.zeros((1, 1)), s)[0, 0])
                      for t, tn in zip(ts[:-1], ts[1:])])
    h = ts[:-1] - ts[1:]
    rho = math.exp(-T)
    var_y = rho**2 * s2 + 1 - rho**2
    cov_ym = 0.0
    for k in range(n_steps):
        var_y = a[k] ** 2 * var_y + 2 * h[k]
        cov_ym = a[k] * cov_ym + 2 * h[k] * xi  # noise sqrt(2h) Z and dM = sqrt(2) xi sqrt(h) Z
    var_m = np.sum(2 * h * xi**2)
    return cov_ym**2 / (var_y * var_m)


def test_observability_matches_exact_gaussian_value():
    q = hl.GaussianMixture([1.0], [[0.7]], [0.4])
    e = hl.score_error("time_only", q, 0.2, t0=0.05, T=3.0, key=jax.random.key(0))
    xi = float(e.scale * e.v[0])
    exact = _exact_eta_time_only(0.7, 0.4, xi, 0.05, 3.0, 100)
    est = hl.observability(jax.random.key(1), q, e, 20_000, t0=0.05, T=3.0, n_steps=100, degree=2)
    assert abs(est.eta - exact) < 4 * est.eta_stderr, (est, exact)
    assert 0 < est.eta < 1 and est.n_features == 2
    assert est.energy_star == pytest.approx(0.04, rel=1e-10)


def test_path_loops_trace_every_error_family_as_one_structure():
    """The path loops take a ScoreError as an affine field with W and v always present: the same values as the
    error itself (exactly), and the same pytree structure and shapes for every family (one compilation)."""
    from hermite_limit.sampling._errors import _paths, _traced_error

    q = hl.GaussianMixture([0.4, 0.6], [[0.5, -1.0], [-0.3, 0.8]], [0.7, 1.3])
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 2)) * 3.0
    structures = set()
    with jax.enable_x64(True):
        for j, kind in enumerate(("aligned", "random", "time_only")):
            e = hl.score_error(kind, q, 0.1 * (j + 1), t0=0.02, T=4.0, key=jax.random.key(j))
            f = _traced_error(e)
            np.testing.assert_array_equal(np.asarray(f(jax.numpy.asarray(x), 0.5)), np.asarray(e(x, 0.5)))
            leaves, tree = jax.tree_util.tree_flatten(f)
            structures.add((tree, tuple((leaf.shape, str(leaf.dtype)) for leaf in leaves)))
        assert len(structures) == 1
        times = time_grid(0.02, 4.0, 10, "uniform")
        gm = hl.GaussianMixture([0.4, 0.6], [[0.5, -1.0], [-0.3, 0.8]], [0.7, 1.3])
        e = hl.score_error("random", q, 0.2, t0=0.02, T=4.0, key=jax.random.key(1))
        a = _paths(jax.random.key(2), gm, 32, times, e, "em", "exact", True, None)  # the error drives the paths
        b = _paths(jax.random.key(2), gm, 32, times, _traced_error(e), "em", "exact", True, None)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda q: hl.score_error("aligned", q, -1.0, t0=0.1), "eps"),
        (lambda q: hl.score_error("wrong", q, 1.0, t0=0.1), "kind"),
        (lambda q: hl.score_error("random", q, 1.0, t0=0.1), "key"),
        (lambda q: hl.score_error("aligned", q, 1.0, t0=0.1, T=0.1), "T must be > t0"),
        (lambda q: hl.path_energy(jax.random.key(0), q, 3.0, 10, t0=0.1), "error"),
        (lambda q: hl.path_energy(jax.random.key(0), q, hl.score_error("aligned", q, 1.0, t0=0.1), 10, t0=0.1,
                                  process="both"), "process"),
        (lambda q: hl.observability(jax.random.key(0), q, hl.score_error("aligned", q, 1.0, t0=0.1), 0, t0=0.1), "n"),
        (lambda q: hl.gaussian_output_moments([0.0, 0.0], [[1.0]], t0=0.1), "cov"),
        (lambda q: hl.gaussian_output_moments([0.0], [[-1.0]], t0=0.1), "cov"),
        (lambda q: hl.gaussian_output_moments([0.0], [[1.0]], t0=0.0), "t0"),
        (lambda q: hl.gaussian_output_moments([0.0], [[1.0]], t0=0.1, A=np.eye(2)), "A"),
    ],
)
def test_error_api_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(hl.GaussianMixture([1.0], [[0.0]], [1.0]))
