"""Each check reports failure when its claim is false, and the report is written atomically."""

import json
import math

import pytest

import hermite_limit as hl
from hermite_limit import checks, datasets


@pytest.fixture(scope="module")
def bimodal():
    return datasets.bimodal_1d()


def test_w2_rate_check_detects_a_wrong_rate(bimodal):
    good = checks.check_w2_rate(bimodal, 0.5, 0.2, n=6)
    assert good.passed and good.measured <= good.predicted
    kappa = math.sqrt(0.5) * math.exp(-0.2)
    wrong = checks.check_w2_rate(bimodal, 0.5, 0.2, n=6, kappa=0.5 * kappa)
    assert not wrong.passed


def test_tv_rate_check_detects_a_wrong_rate(bimodal):
    good = checks.check_tv_rate(bimodal, 0.5, 0.2, n=5)
    assert good.passed
    assert not checks.check_tv_rate(bimodal, 0.5, 0.2, n=5, rate=0.25).passed


def test_fixed_point_and_init_checks_pass_on_true_claims(bimodal):
    assert checks.check_fixed_point(bimodal, 0.3, 0.2).passed
    assert checks.check_init_independence(bimodal, 0.3, 0.2, n=20).passed
    assert checks.check_no_fresh_data(bimodal, 0.2, n=20).passed


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
