"""Data subcommands on every preset and input format; bad input is a one-line error with exit 2."""

import json

import numpy as np
import pytest

import hermite_limit as hl


@pytest.mark.parametrize("fmt", ["s.npy", "s.npz", "s.csv", "m.json", "m.toml"])
def test_limit_reads_every_format(fmt, cli_inputs, tmp_path, run_cli):
    d, x, mix = cli_inputs
    code, out, err = run_cli("limit", "--data", str(d / fmt), "--alpha", "0.4", "--t0", "0.2", "--out", str(tmp_path))
    assert code == 0, err
    payload = json.loads((tmp_path / "limit.json").read_text())
    data = hl.empirical(x) if fmt.startswith("s.") else hl.GaussianMixture(mix["weights"], mix["means"], mix["covariances"])
    lim = hl.limit_distribution(data, 0.4, 0.2)
    np.testing.assert_allclose(payload["limit_mean"], np.asarray(lim.mean()), rtol=1e-12, atol=1e-14)
    assert payload["n_terms"] == lim.n_terms and payload["tail_mass"] <= 1e-12
    assert (tmp_path / "limit.png").stat().st_size > 1000


@pytest.mark.parametrize("preset", ["bimodal-1d", "ring-2d", "seed-gmm10"])
@pytest.mark.parametrize("command", ["limit", "generations"])
def test_presets(command, preset, tmp_path, run_cli):
    extra = ["--generations", "4"] if command == "generations" else []
    code, out, err = run_cli(command, "--preset", preset, "--alpha", "0.5", *extra, "--out", str(tmp_path))
    assert code == 0, err
    name = "limit.json" if command == "limit" else "generations.json"
    payload = json.loads((tmp_path / name).read_text())
    if command == "generations":
        assert payload["generations"] == 4 and len(payload["mean_error"]) == 5
        assert payload["mean_error"][0] == 0.0
        # generation 1 of the exact recursion, recomputed through the API
        data = hl.datasets.preset(preset)
        p1 = hl.generation(data, 0.5, 0.1, 1)
        assert payload["mean_error"][1] == pytest.approx(float(np.linalg.norm(np.asarray(p1.mean() - data.mean()))), rel=1e-10)


def test_time_conventions_from_the_command_line(tmp_path, run_cli):
    code, _, err = run_cli("limit", "--preset", "bimodal-1d", "--vp-eps", "1e-3", "--out", str(tmp_path))
    assert code == 0, err
    assert json.loads((tmp_path / "limit.json").read_text())["t0"] == pytest.approx(5.4975e-5, rel=1e-12)
    code, _, err = run_cli("limit", "--preset", "bimodal-1d", "--ddpm-step", "0", "--out", str(tmp_path))
    assert code == 0, err
    assert json.loads((tmp_path / "limit.json").read_text())["t0"] == pytest.approx(-0.5 * np.log1p(-1e-4), rel=1e-12)


def test_config_file_supplies_options(tmp_path, run_cli):
    cfg = tmp_path / "c.toml"
    cfg.write_text('preset = "bimodal-1d"\nalpha = 0.25\nt0 = 0.3\n')
    code, _, err = run_cli("limit", "--config", str(cfg), "--out", str(tmp_path))
    assert code == 0, err
    payload = json.loads((tmp_path / "limit.json").read_text())
    assert payload["alpha"] == 0.25 and payload["t0"] == 0.3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "missing.npy"], "data file not found"),
        (["--data", "{d}/bad.json"], "is not valid JSON"),
        (["--preset", "bimodal-1d", "--t0", "-1"], "t0 must be > 0"),
        (["--preset", "bimodal-1d", "--alpha", "2"], "alpha must lie in [0, 1]"),
        (["--data", "{d}/wrongdim.json"], "covs must have shape"),
        (["--data", "{d}/nan.npy"], "samples contains 1 non-finite"),
        (["--preset", "nope"], "preset must be one of"),
        ([], "give exactly one of --preset NAME or --data FILE"),
        (["--preset", "bimodal-1d", "--t0", "0.1", "--vp-eps", "0.01"], "give one of --t0, --vp-eps, --ddpm-step"),
    ],
)
@pytest.mark.parametrize("command", ["limit", "generations", "spectrum", "forecast"])
def test_bad_input_is_one_line_exit_2(command, args, message, cli_inputs, tmp_path, run_cli):
    d, _, _ = cli_inputs
    argv = [command] + [a.format(d=d) for a in args] + ["--out", str(tmp_path)]
    code, out, err = run_cli(*argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_malformed_option_is_one_line(tmp_path, run_cli):
    code, out, err = run_cli("limit", "--preset", "bimodal-1d", "--alpha", "abc", "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "invalid float value" in err
