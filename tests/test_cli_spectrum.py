"""spectrum and forecast subcommands on every preset and input format, JSON numbers recomputed through
the API; digits image outputs of limit/generations; bad input is a one-line error with exit 2."""

import json

import numpy as np
import pytest
from PIL import Image

import hermite_limit as hl
from hermite_limit import cli
from hermite_limit.forecast import family_times


def nonblank(path):
    return np.asarray(Image.open(path).convert("L"), dtype=float).std() > 0


def check_spectrum(payload, data, alpha, t0, order):
    lim = hl.limit_distribution(data, alpha, t0)
    lam = np.asarray(hl.attenuation(np.arange(order + 1), alpha, t0))
    np.testing.assert_allclose(payload["attenuation"], lam, rtol=1e-13)
    if data.dim <= 3:
        ed = np.asarray(hl.hermite_coefficients(data, order).energies())
        el = np.asarray(hl.hermite_coefficients(lim, order).energies())
    else:
        ed = np.asarray(hl.energy_spectrum(data, order).energies)
        el = np.asarray(hl.energy_spectrum(lim, order).energies) if lim.mixture.n_components <= 4000 else lam**2 * ed
    scale = np.max(np.abs(ed))
    np.testing.assert_allclose(payload["data_energies"], ed, rtol=1e-10, atol=1e-13 * scale)
    np.testing.assert_allclose(payload["limit_energies"], el, rtol=1e-10, atol=1e-13 * scale)
    # Mehler: E_m(p_inf) = lambda_m^2 E_m(p_data), up to the truncation tail and round-off
    np.testing.assert_allclose(payload["limit_energies"], lam**2 * ed, rtol=1e-8, atol=1e-11 * scale)


def check_forecast(payload, data, alpha, t0, n, budget, order):
    a = np.asarray(hl.schedule_attenuation(np.arange(order + 1), alpha, t0, n))
    np.testing.assert_allclose(payload["mode_loss"], 1 - a, rtol=1e-12, atol=1e-14)
    p_n = hl.generation(data, alpha, t0, n)
    gel = hl.gaussian_w2(np.asarray(p_n.mean()), np.asarray(p_n.cov()), np.asarray(data.mean()), np.asarray(data.cov()))
    assert payload["gelbrich_to_data"][-1] == pytest.approx(gel, rel=1e-6, abs=1e-12)
    E = np.asarray(payload["data_energies"])
    assert payload["spectral_error"][-1] == pytest.approx(np.sum((1 - a[1:]) ** 2 * E[1:]) / np.sum(E[1:]), rel=1e-12)
    rec = payload["recommended"]
    if rec is not None:
        f = np.asarray(hl.schedule_attenuation(np.arange(order + 1), alpha, rec["times"], n))
        assert np.sum((1 - f[1:]) ** 2 * E[1:]) / np.sum(E[1:]) <= budget
        np.testing.assert_allclose(rec["times"], family_times(rec["family"], t0, rec["value"], n))


PRESET_SIZES = {"bimodal-1d": ("8", "6"), "ring-2d": ("6", "5"), "seed-gmm10": ("5", "4"), "digits": ("4", "3")}


@pytest.mark.parametrize("preset", list(PRESET_SIZES))
def test_spectrum_and_forecast_on_presets(preset, tmp_path, run_cli):
    order, gens = PRESET_SIZES[preset]
    data = hl.datasets.preset(preset)
    code, out, err = run_cli("spectrum", "--preset", preset, "--alpha", "0.5", "--t0", "0.2", "--order", order, "--out", str(tmp_path))
    assert code == 0, err
    payload = json.loads((tmp_path / "spectrum.json").read_text())
    assert payload["orders"] == list(range(int(order) + 1))
    check_spectrum(payload, data, 0.5, 0.2, int(order))
    assert nonblank(tmp_path / "spectrum.png") and nonblank(tmp_path / "attenuation.png")
    code, out, err = run_cli("forecast", "--preset", preset, "--alpha", "0.5", "--t0", "0.2", "--order", order,
                         "--generations", gens, "--budget", "0.05", "--out", str(tmp_path))
    assert code == 0, err
    check_forecast(json.loads((tmp_path / "forecast.json").read_text()), data, 0.5, 0.2, int(gens), 0.05, int(order))
    assert nonblank(tmp_path / "forecast.png")


@pytest.mark.parametrize("fmt", ["s.npy", "s.npz", "s.csv", "m.json", "m.toml"])
def test_every_input_format(fmt, cli_inputs, tmp_path, run_cli):
    d, x, mix = cli_inputs
    data = hl.empirical(x) if fmt.startswith("s.") else hl.GaussianMixture(mix["weights"], mix["means"], mix["covariances"])
    code, _, err = run_cli("spectrum", "--data", str(d / fmt), "--alpha", "0.4", "--order", "5", "--out", str(tmp_path))
    assert code == 0, err
    payload = json.loads((tmp_path / "spectrum.json").read_text())
    check_spectrum(payload, data, 0.4, 0.1, 5)
    np.testing.assert_allclose(payload["coefficients"]["data"], np.asarray(hl.hermite_coefficients(data, 5).values), rtol=1e-12, atol=1e-14)
    code, _, err = run_cli("forecast", "--data", str(d / fmt), "--alpha", "0.4", "--order", "5", "--generations", "4",
                       "--budget", "0.1", "--out", str(tmp_path))
    assert code == 0, err
    check_forecast(json.loads((tmp_path / "forecast.json").read_text()), data, 0.4, 0.1, 4, 0.1, 5)


def test_digits_image_outputs(tmp_path, run_cli):
    code, _, err = run_cli("generations", "--preset", "digits", "--alpha", "0.9", "--generations", "2", "--order", "4",
                       "--out", str(tmp_path))
    assert code == 0, err
    for name in ("generations_images.png", "generations_spectrum.png"):
        assert nonblank(tmp_path / name)


@pytest.mark.parametrize("command", ["spectrum", "forecast"])
def test_bad_order_is_one_line_exit_2(command, tmp_path, run_cli):
    # the shared bad inputs are tested for every data subcommand in test_cli_data.py
    code, out, err = run_cli(command, "--preset", "bimodal-1d", "--order", "0", "--out", str(tmp_path))
    assert code == 2 and "order" in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("budget", ["0", "1.5", "nan"])
def test_bad_budget(budget, tmp_path, run_cli):
    code, _, err = run_cli("forecast", "--preset", "bimodal-1d", "--budget", budget, "--out", str(tmp_path))
    assert code == 2 and "budget" in err and err.count("\n") == 1


def test_help_has_examples(capsys):
    for command in ("spectrum", "forecast"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args([command, "--help"])
        assert "examples:" in capsys.readouterr().out
