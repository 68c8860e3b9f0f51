"""Each check reports failure when its claim is false, and the report is written atomically."""

import json
import math

import numpy as np

import pytest

import hermite_limit as hl
from hermite_limit import checks, datasets


def row(rec):
    """The record states its relation, and a passing record satisfies it on its own row's numbers."""
    assert rec.relation in checks.RELATIONS
    assert rec.to_json()["relation"] == rec.relation
    if rec.passed:
        assert rec.holds(), (rec.name, rec.predicted, rec.relation, rec.measured, rec.tolerance)
    return rec


@pytest.fixture(scope="module")
def bimodal():
    return datasets.bimodal_1d()


def test_w2_rate_check_detects_a_wrong_rate(bimodal):
    good = row(checks.check_w2_rate(bimodal, 0.5, 0.2, n=6))
    assert good.passed and good.measured <= good.predicted
    kappa = math.sqrt(0.5) * math.exp(-0.2)
    wrong = checks.check_w2_rate(bimodal, 0.5, 0.2, n=6, kappa=0.5 * kappa)
    assert not wrong.passed and not wrong.holds()


def test_tv_rate_check_detects_a_wrong_rate(bimodal):
    good = row(checks.check_tv_rate(bimodal, 0.5, 0.2, n=5))
    assert good.passed
    assert not checks.check_tv_rate(bimodal, 0.5, 0.2, n=5, rate=0.25).passed


def test_fixed_point_and_init_checks_pass_on_true_claims_and_fail_on_false_ones(bimodal):
    assert row(checks.check_fixed_point(bimodal, 0.3, 0.2)).passed
    # the limit for another alpha is not a fixed point of this map
    wrong_limit = hl.limit_distribution(bimodal, 0.4, 0.2).mixture
    assert not checks.check_fixed_point(bimodal, 0.3, 0.2, candidate=wrong_limit).passed
    assert row(checks.check_init_independence(bimodal, 0.3, 0.2, n=20)).passed
    kappa = math.sqrt(0.7) * math.exp(-0.2)
    assert not checks.check_init_independence(bimodal, 0.3, 0.2, n=20, kappa=0.5 * kappa).passed
    assert row(checks.check_no_fresh_data(bimodal, 0.2, n=20)).passed
    assert not checks.check_no_fresh_data(bimodal, 0.2, n=20, rate=math.exp(-0.4)).passed


def test_report_is_written_with_schema(tmp_path, bimodal):
    recs = [checks.check_w2_rate(bimodal, 0.5, 0.2, n=4), checks.check_no_fresh_data(bimodal, 0.2, n=10)]
    path = checks.write_report(recs, tmp_path / "out", {"seed": 0})
    payload = json.loads(path.read_text())
    for entry in payload["checks"]:
        assert {"name", "claim", "predicted", "measured", "tolerance", "passed"} <= set(entry)
    assert (tmp_path / "out" / payload["checks"][0]["figure"]).stat().st_size > 1000
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".report-")]


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="alphas must lie in"):
        checks.VerifyConfig(alphas=(2.0,))
    bad = tmp_path / "bad.toml"
    bad.write_text("t0 = -1\n")
    with pytest.raises(ValueError, match="t0 must be > 0"):
        checks.VerifyConfig.from_toml(bad)
    bad.write_text("tee0 = 1\n")
    with pytest.raises(ValueError, match="unknown keys"):
        checks.VerifyConfig.from_toml(bad)


def test_attenuation_check_detects_a_wrong_law(bimodal):
    good = row(checks.check_attenuation(bimodal, 0.5, 0.1, order=6))
    assert good.passed and good.measured <= good.tolerance
    assert not checks.check_attenuation(bimodal, 0.5, 0.1, order=6, law=lambda m: np.exp(-0.1 * m)).passed
    seed = datasets.seed_gmm10()
    assert checks.check_attenuation(seed, 0.3, 0.1, order=3).passed


def test_mode_rate_check_detects_a_wrong_rate(bimodal):
    assert row(checks.check_mode_rates(bimodal, 0.5, 0.1, n=8)).passed
    wrong = checks.check_mode_rates(bimodal, 0.5, 0.1, n=8, rate=lambda m: 0.5 * np.exp(-0.2 * m))
    assert not wrong.passed


def test_annealed_check_tests_the_stated_law(bimodal):
    good = row(checks.check_annealed_schedules(bimodal, 0.5, 0.2, n=50, n_asymptotic=2000))
    assert good.passed and good.relation == "ratio" and good.predicted == 1.0
    law = good.details["law_ratio"]
    for name in ("harmonic", "t0/sqrt(i+1)"):
        tol = np.array(law[name]["tolerance"])
        assert np.all(np.diff(tol, axis=0) < 0)  # the allowed gap shrinks with n
        assert np.all(np.abs(np.array(law[name]["ratio"]) - 1) <= tol)
    # independent reference: the exact recursion f <- rho^m (alpha + (1-alpha) f) (schedule_attenuation)
    # at the last n, against m t_n / alpha
    m, t0 = np.arange(1, 7), 0.2
    f = np.asarray(hl.schedule_attenuation(m, 0.5, hl.harmonic(t0), 2000))
    ratio = (1 - f) / (m * (t0 / 2000) / 0.5)
    assert np.allclose(law["harmonic"]["ratio"][-1], ratio, rtol=1e-8)
    # a law off by 1% in its prefactor, or with alpha for 1/alpha, fails
    for wrong_law in (lambda m, t, a: 1.01 * m * t / a, lambda m, t, a: m * t * a, lambda m, t, a: m * t / (2 * a)):
        wrong = checks.check_annealed_schedules(bimodal, 0.5, 0.2, n=50, n_asymptotic=2000, predicted_error=wrong_law)
        assert not wrong.passed and not wrong.holds()


def test_report_states_each_relation(tmp_path, bimodal):
    recs = [row(checks.check_w2_rate(bimodal, 0.5, 0.2, n=4)), row(checks.check_fixed_point(bimodal, 0.3, 0.2)),
            row(checks.check_annealed_schedules(bimodal, 0.5, 0.2, n=20, n_asymptotic=500))]
    path = checks.write_report(recs, tmp_path / "out", {"seed": 0})
    payload = json.loads(path.read_text())
    assert [e["relation"] for e in payload["checks"]] == ["<=", "=", "ratio"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| predicted | relation | measured | tolerance |" in md
    assert "`ratio`: |measured / predicted - 1| <= tolerance" in md
    for line in md.splitlines():
        if line.startswith("| annealed_schedules"):
            cells = [c.strip() for c in line.replace("\\|", "").split("|")[1:-1]]
            assert len(cells) == 7 and cells[2:4] == ["1", "`ratio`"]
    with pytest.raises(ValueError, match="relation must be one of"):
        checks.CheckRecord("x", "y", 1.0, 1.0, 0.0, True, relation="~")


def test_girsanov_check_detects_a_wrong_constant():
    assert row(checks.check_girsanov_kl(d=2, n_errors=6)).passed
    # the exact KL reaches about 0.8 of the bound: a bound 5x tighter must fail
    assert not checks.check_girsanov_kl(d=2, n_errors=6, factor=0.1).passed


def test_seed_bound_checks_detect_a_wrong_constant():
    good = checks.check_seed_chi2_bounds(d=2, eps_values=(0.1,), n_paths=1000, n_steps=60)
    assert [row(r).passed for r in good] == [True, True]
    wrong = checks.check_seed_chi2_bounds(d=2, eps_values=(0.1,), n_paths=1000, n_steps=60, lower=4.0, two_sided=(4.0, 4.0))
    assert [r.passed for r in wrong] == [False, False]


def test_accumulation_check_detects_a_wrong_discount(bimodal):
    assert row(checks.check_discounted_accumulation(bimodal, (0.5,), 0.02, n=5)).passed
    assert not checks.check_discounted_accumulation(bimodal, (0.5,), 0.02, n=5, discount=lambda a: 1 - a).passed


def test_w2_ball_check_detects_a_wrong_radius():
    ring = datasets.ring_2d()
    good = row(checks.check_w2_ball(ring, 0.5, 0.02, n_generations=4, n_particles=300, n_steps=30))
    assert good.passed and good.measured <= good.predicted
    # the measured distance is well above zero: a radius 20x too small must fail
    assert not checks.check_w2_ball(ring, 0.5, 0.02, n_generations=4, n_particles=300, n_steps=30, radius_factor=0.05).passed
