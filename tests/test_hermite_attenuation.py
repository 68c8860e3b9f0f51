"""Attenuation of Hermite modes by recursive retraining, checked on exact laws' coefficients."""

import math

import numpy as np
import pytest
from helpers import bimodal_1d, random_mixture
from hypothesis import given, settings
from hypothesis import strategies as st

import hermite_limit as hl

ORDER = {1: 10, 2: 6, 3: 4}


def _coeffs(law, order):
    return np.asarray(hl.hermite_coefficients(law, order).values)


# Shapes (hence compilations) depend on d, alpha (number of limit terms) and the covariance
# structure, so those are drawn from small sets; seeds and t0 vary freely. (Full covariances:
# hl.limit_distribution / hl.generation currently fail on them in _ou._push; see the report.)
@settings(max_examples=8, deadline=None)
@given(
    d=st.sampled_from([1, 2, 3]),
    seed=st.integers(0, 2**16),
    alpha=st.sampled_from([0.5, 1.0]),
    t0=st.floats(0.05, 0.6),
)
def test_limit_coefficients_are_attenuated_data_coefficients(d, seed, alpha, t0):
    cov_type = "iso" if d == 3 else "diag"
    data = random_mixture(np.random.default_rng(seed), 2, d, cov_type, spread=1.0)
    order = ORDER[d]
    cd = hl.hermite_coefficients(data, order)
    lim = hl.limit_distribution(data, alpha, t0, tol=1e-13)
    cl = _coeffs(lim.mixture, order)
    lam = np.asarray(hl.attenuation(cd.order_of_index, alpha, t0))
    pred = lam * np.asarray(cd.values)
    scale = np.maximum(np.abs(np.asarray(cd.values)), 1.0)
    assert np.all(np.abs(cl - pred) <= 1e-10 * scale)


@pytest.mark.parametrize(
    "schedule",
    [0.3, [0.5, 0.1, 0.2, 0.05, 0.4], hl.harmonic(0.4), hl.geometric(0.3, 0.7)],
    ids=["constant", "sequence", "harmonic", "geometric"],
)
@pytest.mark.parametrize("d", [1, 2])
def test_schedule_attenuation_matches_generation(schedule, d):
    data = bimodal_1d() if d == 1 else random_mixture(np.random.default_rng(4), 2, 2, "diag", spread=1.0)
    alpha, n = 0.35, 5
    cd = hl.hermite_coefficients(data, ORDER[d])
    pn = hl.generation(data, alpha, schedule, n)
    f = np.asarray(hl.schedule_attenuation(cd.order_of_index, alpha, schedule, n))
    np.testing.assert_allclose(_coeffs(pn, ORDER[d]), f * np.asarray(cd.values), rtol=1e-11, atol=1e-13)


def test_schedule_attenuation_tends_to_limit_attenuation():
    m = np.arange(8)
    far = np.asarray(hl.schedule_attenuation(m, 0.3, 0.2, 400))
    np.testing.assert_allclose(far, np.asarray(hl.attenuation(m, 0.3, 0.2)), rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(hl.schedule_attenuation(m, 0.3, 0.2, 0)), np.ones(8))


def test_attenuation_closed_form_and_limits():
    m = np.arange(0, 12)
    alpha, t0 = 0.25, 0.15
    rho = math.exp(-t0)
    ref = alpha * rho**m / (1 - (1 - alpha) * rho**m)
    lam = hl.attenuation(m, alpha, t0)
    assert lam.dtype == np.float64
    np.testing.assert_allclose(np.asarray(lam), ref, rtol=1e-14)
    assert np.all(np.diff(np.asarray(lam)) < 0)
    # alpha = 0: every non-constant mode is removed; lambda_0 = 1
    np.testing.assert_array_equal(np.asarray(hl.attenuation(m, 0.0, t0)), (m == 0).astype(float))
    # half-power order: lambda = 1/2 there
    m_half = hl.half_power_order(alpha, t0)
    assert float(hl.attenuation(m_half, alpha, t0)) == pytest.approx(0.5, rel=1e-13)
    # tiny alpha and t0 keep relative precision (1 - (1-a) rho^m cancels)
    a, t = 1e-9, 1e-9
    exact = a * math.exp(-t) / (a * math.exp(-t) - math.expm1(-t))
    assert float(hl.attenuation(1, a, t)) == pytest.approx(exact, rel=1e-12)


def test_contraction_rate_and_half_life_match_the_recursion():
    alpha, t0, m = 0.2, 0.1, np.array([0, 1, 3, 7])
    kappa = np.asarray(hl.contraction_rate(m, alpha, t0))
    np.testing.assert_allclose(kappa, (1 - alpha) * np.exp(-m * t0), rtol=1e-15)
    # error after one generation from p_0 = N(0,I)-like start: (f^{1} - lam) = kappa (f^0 - lam)
    lam = np.asarray(hl.attenuation(m, alpha, t0))
    f1 = np.asarray(hl.schedule_attenuation(m, alpha, t0, 1))
    f2 = np.asarray(hl.schedule_attenuation(m, alpha, t0, 2))
    np.testing.assert_allclose(f2 - lam, kappa * (f1 - lam), rtol=1e-12, atol=1e-15)
    hl_ = np.asarray(hl.mode_half_life(m, alpha, t0))
    np.testing.assert_allclose(kappa**hl_, 0.5, rtol=1e-13)
    assert np.isinf(float(hl.mode_half_life(0, 0.0, t0)))


def test_ou_push_coefficients_is_mehler():
    gm = random_mixture(np.random.default_rng(9), 3, 2, "full")
    c = hl.hermite_coefficients(gm, 6)
    pushed = hl.ou_push_coefficients(c, 0.4)
    np.testing.assert_allclose(np.asarray(pushed.values), _coeffs(hl.ou_push(gm, 0.4), 6), rtol=1e-12, atol=1e-14)


def test_bad_inputs():
    with pytest.raises(ValueError, match="alpha"):
        hl.attenuation(1, 1.5, 0.1)
    with pytest.raises(ValueError, match="t0"):
        hl.attenuation(1, 0.5, 0.0)
    with pytest.raises(ValueError, match="t0"):
        hl.contraction_rate(1, 0.5, -1.0)
    with pytest.raises(ValueError, match="m"):
        hl.attenuation([-1, 2], 0.5, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        hl.mode_half_life(1, -0.1, 0.1)
    with pytest.raises(ValueError, match="schedule"):
        hl.schedule_attenuation(1, 0.5, [0.1, -0.2], 2)
    with pytest.raises(ValueError, match="coeffs"):
        hl.ou_push_coefficients(np.ones(3), 0.1)
    with pytest.raises(ValueError, match="t"):
        hl.ou_push_coefficients(hl.hermite_coefficients(bimodal_1d(), 3), -1.0)
