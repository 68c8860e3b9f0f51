"""Is it this mechanism? The goodness-of-fit test and drift flags of hl.diagnose on misspecified sequences
(finite-sample refit collapse, shrinking variance) and on correct ones; recovery through the real sampler."""

import jax
import numpy as np
import pytest
from scipy import stats

import hermite_limit as hl

from helpers import bimodal_1d

G, N, ORDER = 5, 8000, 4


def _correct(seed):
    data = bimodal_1d()
    key = jax.random.key(seed)
    return [np.asarray((hl.generation(data, 0.4, 0.15, i) if i else data).sample(jax.random.fold_in(key, i), N))
            for i in range(G + 1)]


def _refit_collapse(seed, n_fit=30):
    # each model is a Gaussian fitted to n_fit samples of the previous one (no fresh data, no truncation)
    rng = np.random.default_rng(seed)
    mu, sd = 1.0, 0.8
    gens = []
    for _ in range(G + 1):
        gens.append(mu + sd * rng.standard_normal(N))
        fit = mu + sd * rng.standard_normal(n_fit)
        mu, sd = fit.mean(), fit.std(ddof=1)
    return [g[:, None] for g in gens]


def _shrinking(seed, factor=0.85):
    rng = np.random.default_rng(seed)
    return [(1.0 + 0.8 * factor ** (i / 2) * rng.standard_normal(N))[:, None] for i in range(G + 1)]


def _rates(make, R, seed0):
    return np.mean([hl.diagnose(make(seed0 + r), order=ORDER, forecast_generations=10).mechanism_rejected
                    for r in range(R)])


def _check(R, seed0):
    correct = _rates(_correct, R, seed0)
    lo, hi = stats.binom.interval(0.99, R, 0.05)
    assert correct <= hi / R, correct
    for make in (_refit_collapse, _shrinking):
        assert _rates(make, R, seed0 + 1000) >= 0.95


def test_misspecification_is_flagged_small():
    _check(25, 100)


@pytest.mark.slow
def test_misspecification_is_flagged_100_replicates():
    _check(100, 500)


def test_shrinking_variance_names_the_drift():
    d = hl.diagnose(_shrinking(3, 0.7), order=ORDER)
    assert d.mechanism_rejected
    assert any(f["name"] == "variance_shrinks" for f in d.flags)
    assert "collapse toward a point" in d.explanation


def test_mean_moving_away_is_named():
    rng = np.random.default_rng(4)
    gens = [(0.5 + 0.3 * i + 0.9 * rng.standard_normal(N))[:, None] for i in range(G + 1)]
    d = hl.diagnose(gens, order=ORDER)
    assert any(f["name"] == "mean_moves_away" for f in d.flags)


@pytest.mark.slow
def test_recovery_through_the_real_sampler():
    data = bimodal_1d()
    alpha, t0, n = 0.4, 0.15, 20_000
    parts = []
    hl.retrain(jax.random.key(2), data, alpha, t0, G, n, carry="analytic", n_steps=500, progress=False,
               callback=lambda i, x: parts.append(np.asarray(x)))
    gens = [np.asarray(data.sample(jax.random.key(3), n))] + parts
    d = hl.diagnose(gens, order=ORDER)
    assert d.identifiable
    assert abs(d.alpha - alpha) < 3 * d.alpha_se, (d.alpha, d.alpha_se)
    assert abs(d.t0 - t0) < 3 * d.t0_se, (d.t0, d.t0_se)
