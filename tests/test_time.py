"""Time conventions against hand-computed values and mpmath."""

import math

import mpmath as mp
import numpy as np
import pytest

import hermite_limit as hl


def test_vp_defaults_hand_computed():
    # t(s) = (beta_min s + (beta_max - beta_min) s^2 / 2) / 2 with beta_min = 0.1, beta_max = 20
    assert hl.vp_to_ou_time(1e-5) == pytest.approx(5.004975e-7, rel=1e-14)
    assert hl.vp_to_ou_time(1e-3) == pytest.approx(5.4975e-5, rel=1e-14)
    assert hl.vp_to_ou_time(1.0) == pytest.approx(5.025, rel=1e-15)
    # and against a numerical integral of beta/2
    with mp.workdps(30):
        ref = mp.quad(lambda s: (0.1 + s * 19.9) / 2, [0, mp.mpf("0.3")])
    assert hl.vp_to_ou_time(0.3) == pytest.approx(float(ref), rel=1e-14)


def test_ddpm_linear_defaults_against_mpmath():
    betas = hl.ddpm_linear_betas()
    assert betas.shape == (1000,) and betas[0] == 1e-4 and betas[-1] == 0.02
    assert hl.ddpm_to_ou_time(betas, 0) == pytest.approx(-0.5 * math.log(1 - 1e-4), rel=1e-14)
    with mp.workdps(40):
        for k in (0, 9, 99, 499, 999):
            acp = mp.fprod(1 - mp.mpf(float(b)) for b in betas[: k + 1])
            assert hl.ddpm_to_ou_time(betas, k) == pytest.approx(float(-mp.log(acp) / 2), rel=1e-13)
    # the whole schedule ends near t = 5.0 (alphas_cumprod[-1] ~ 4.0e-5)
    assert float(np.exp(-2 * hl.ddpm_to_ou_time(betas, 999))) == pytest.approx(4.0358e-5, rel=1e-3)


def test_round_trips():
    t = np.array([1e-8, 1e-3, 0.1, 2.0])
    # rho = e^{-t} near 1 keeps absolute, not relative, precision in t
    np.testing.assert_allclose(hl.time_from_rho(hl.rho_from_time(t)), t, rtol=1e-12, atol=2e-16)
    np.testing.assert_allclose(hl.time_from_noise_variance(hl.noise_variance(t)), t, rtol=1e-12)
    assert hl.noise_variance(1e-10) == pytest.approx(2e-10, rel=1e-9)  # no cancellation


def test_schedules():
    np.testing.assert_allclose(hl.harmonic(0.2).times(4), [0.2, 0.1, 0.2 / 3, 0.05])
    np.testing.assert_allclose(hl.geometric(0.2, 0.5).times(3), [0.2, 0.1, 0.05])
    np.testing.assert_allclose(hl.power_law(1.0, 2.0).times(3), [1.0, 0.25, 1 / 9])
    np.testing.assert_allclose(hl.schedule_times(0.3, 3), [0.3] * 3)
    np.testing.assert_allclose(hl.schedule_times([0.3, 0.2, 0.1, 0.05], 3), [0.3, 0.2, 0.1])
    np.testing.assert_allclose(hl.schedule_times(lambda i: 0.1 / (1 + i), 2), [0.1, 0.05])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: hl.schedule_times(-0.1, 3), "schedule must be > 0"),
        (lambda: hl.schedule_times([0.1, 0.2], 3), "schedule has 2 times but n=3"),
        (lambda: hl.schedule_times([0.1, np.nan], 2), "schedule contains"),
        (lambda: hl.geometric(0.1, 1.5), "ratio must lie in"),
        (lambda: hl.vp_to_ou_time(2.0), "s must lie in"),
        (lambda: hl.ddpm_to_ou_time(hl.ddpm_linear_betas(), 1000), "step must be an integer"),
        (lambda: hl.time_from_rho(0.0), "rho must lie in"),
    ],
)
def test_bad_times(call, match):
    with pytest.raises(ValueError, match=match):
        call()
