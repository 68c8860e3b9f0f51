"""The sampler's output density by a Fokker-Planck solve: against exact laws, its own error estimate,
the moment ODEs, and the sampler's particles."""

import jax
import numpy as np
import pytest
import scipy.stats

import hermite_limit as hl
from helpers import bimodal_1d


def _cell_averages(means, sds, weights, box, n):
    """Exact cell averages of a mixture with diagonal covariances (products of normal CDF differences)."""
    edges = [np.linspace(lo, hi, n + 1) for lo, hi in box]
    volume = np.prod([(hi - lo) / n for lo, hi in box])
    total = 0.0
    for w, m, s in zip(weights, np.atleast_2d(means), np.atleast_2d(sds)):
        masses = [np.diff(scipy.stats.norm.cdf(e, loc=m[a], scale=s[a])) for a, e in enumerate(edges)]
        total = total + w * (masses[0] if len(box) == 1 else np.outer(masses[0], masses[1]))
    return total / volume


def _pushed(q, t):
    """Weights, means and per-axis sds of P_t q (diagonal covariances)."""
    rho = np.exp(-t)
    var = np.asarray(q.full_covs()).diagonal(axis1=1, axis2=2)
    return np.asarray(q.weights), rho * np.asarray(q.means), np.sqrt(rho**2 * var + 1 - rho**2)


def _l1(out, exact):
    return float(np.sum(np.abs(out.density - exact)) * out.cell_volume)


def test_exact_score_reproduces_pushed_law_1d():
    q, t0 = bimodal_1d(), 0.05
    out = hl.fokker_planck_output(q, t0)
    w, m, s = _pushed(q, t0)
    err = _l1(out, _cell_averages(m, s, w, out.box, out.n_grid))
    assert abs(out.mass - 1.0) < 1e-12 and out.tail_mass < 1e-12
    assert err < 2e-4
    assert 0.5 * out.error < err < 2.0 * out.error  # the Richardson estimate is the error, not just a bound
    tv = out.tv_to(hl.ou_push(q, t0))
    assert tv.value <= tv.error


def test_exact_score_reproduces_pushed_law_2d():
    q = hl.GaussianMixture([0.4, 0.6], [[-1.5, 0.5], [1.0, -1.0]], [[0.3, 0.5], [0.6, 0.4]])
    t0 = 0.1
    out = hl.fokker_planck_output(q, t0, n_grid=80, n_steps=40)
    w, m, s = _pushed(q, t0)
    err = _l1(out, _cell_averages(m, s, w, out.box, out.n_grid))
    assert abs(out.mass - 1.0) < 1e-12
    assert err < 1e-2
    assert 0.5 * out.error < err < 2.0 * out.error
    x = np.array([[-1.4, 0.4], [0.9, -0.9], [0.0, 0.0]])
    ref = np.exp(np.asarray(hl.ou_push(q, t0).logpdf(x)))
    np.testing.assert_allclose(out.density_at(x), ref, rtol=0.05)


def test_observed_order_is_two():
    q, t0 = bimodal_1d(), 0.05
    errs = []
    for n in (100, 200, 400):
        out = hl.fokker_planck_output(q, t0, n_grid=n, n_steps=n // 2)
        w, m, s = _pushed(q, t0)
        errs.append(_l1(out, _cell_averages(m, s, w, out.box, n)))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.3), (errs, orders)


@pytest.mark.parametrize("kind", ["aligned", "random", "time_only"])
@pytest.mark.parametrize("d", [1, 2])
def test_affine_error_gives_the_moment_ode_gaussian(kind, d):
    m = np.array([0.8, -0.4])[:d]
    S = np.diag([0.5, 0.3])[:d, :d]
    q = hl.GaussianMixture([1.0], [m], [S])
    t0 = 0.05
    e = hl.score_error(kind, q, 0.4, t0=t0, T=4.0, key=jax.random.key(7))
    gauss = hl.gaussian_output_moments(m, S, t0=t0, T=4.0, score_error=e)
    out = hl.fokker_planck_output(q, t0, score_error=e, **({} if d == 1 else dict(n_grid=80, n_steps=40)))
    mean, cov = gauss.learned_mean, gauss.learned_cov
    if d == 1:
        exact = _cell_averages(mean[None], np.sqrt(np.diag(cov))[None], [1.0], out.box, out.n_grid)
        assert _l1(out, exact) < 2.0 * out.error + 1e-6
    else:  # correlated output: compare at cell centres with the midpoint rule's O(h^2) allowance
        X, Y = np.meshgrid(*out.axes, indexing="ij")
        exact = scipy.stats.multivariate_normal(mean, cov).pdf(np.stack([X, Y], -1))
        assert _l1(out, exact) < 2.0 * out.error + 5e-3
    kl = out.kl_to(hl.GaussianMixture([1.0], [gauss.ideal_mean], [gauss.ideal_cov]))
    assert abs(kl.value - gauss.kl) <= kl.error, (kl, gauss.kl)
    # the stated error is a bound; the value itself is close (80^2 cells in 2-D: within 10%)
    assert abs(kl.value - gauss.kl) < (0.01 if d == 1 else 0.1) * gauss.kl, (kl.value, gauss.kl)
    assert gauss.kl > 1e-3  # the error is visible, so the comparison means something


@pytest.mark.slow
def test_matches_sampler_histogram_with_a_score_error():
    q, t0 = bimodal_1d(), 0.05
    e = hl.score_error("time_only", q, 0.5, t0=t0, T=4.0, key=jax.random.key(3))
    out = hl.fokker_planck_output(q, t0, score_error=e)
    n = 400_000
    x = np.asarray(hl.reverse_sample(jax.random.key(4), q, n, t0=t0, T=4.0, n_steps=800, method="exponential",
                                     grid="geometric", score_error=e).particles)[:, 0]
    edges = np.linspace(-4.0, 4.0, 41)
    counts = np.histogram(x, edges)[0]
    fine = np.linspace(-4.0, 4.0, 4001)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (out.density_at(fine[1:, None]) + out.density_at(fine[:-1, None]))
                                           * np.diff(fine))])
    probs = np.diff(np.interp(edges, fine, cdf))
    expected = n * probs
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert scipy.stats.chi2.sf(chi2, len(counts) - 1) > 1e-3, chi2
    # and the error moved the law: the ideal output is rejected by the same test
    w, m, s = _pushed(q, t0)
    ideal = n * np.diff(sum(wk * scipy.stats.norm.cdf(edges, mk[0], sk[0]) for wk, mk, sk in zip(w, m, s)))
    assert scipy.stats.chi2.sf(np.sum((counts - ideal) ** 2 / ideal), len(counts) - 1) < 1e-6


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(q=hl.GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [1.0])), "dimension 1 or 2"),
        (dict(t0=0.0), "t0"),
        (dict(T=0.01), "T must be > t0"),
        (dict(n_grid=7), "n_grid"),
        (dict(n_steps=2), "n_steps"),
        (dict(init="zero"), "init"),
        (dict(box=[(1.0, -1.0)]), "box"),
        (dict(box="wide"), "box"),
        (dict(score_error=3), "score_error"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(kwargs, match):
    args = dict(q=bimodal_1d(), t0=0.05)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):  # TypeError: a non-callable score_error
        hl.fokker_planck_output(args.pop("q"), args.pop("t0"), **args)


def test_divergence_reference_dimension_is_checked():
    out = hl.fokker_planck_output(bimodal_1d(), 0.1, n_grid=40, n_steps=20)
    with pytest.raises(ValueError, match="ref has dimension 2"):
        out.kl_to(hl.GaussianMixture([1.0], [[0.0, 0.0]], [1.0]))
