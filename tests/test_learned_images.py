"""The learned-images job: the closed-form prediction, the verdicts, the CLI on digits and on a CIFAR-format folder."""

import json
import pickle

import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit.checks import _images
from hermite_limit.cli import main


def test_predicted_spectrum_is_the_exact_spectrum_of_the_generation():
    # f_m(i)^2 E_m(p_data) against the energies of the closed-form law hl.generation(empirical, ...), computed
    # independently from its mixture (all N (i + 1) pushed point masses)
    x = np.random.default_rng(0).uniform(-1, 1, size=(30, 4))
    data = hl.empirical(x)
    e_data = np.asarray(hl.energy_spectrum(data, 5).energies)
    for alpha, t0, i in [(0.1, 0.1, 1), (0.5, 0.1, 3), (0.9, 0.3, 2)]:
        exact = np.asarray(hl.energy_spectrum(hl.generation(data, alpha, t0, i), 5).energies)
        pred = _images._filter(np.arange(6), alpha, t0, i) ** 2 * e_data
        np.testing.assert_allclose(pred, exact, rtol=1e-10)


def test_verdicts_classify_orders_by_z_scores():
    ex = np.array([[1.0, 10.0, 5.0, 2.0, 1.0], [1.0, 8.0, 4.0, 1.5, 0.5]])
    se = np.full_like(ex, 0.1)
    e = ex.copy()
    e[0, 2] += 0.5  # z = +5: above
    e[1, 3] -= 0.45  # z = -4.5: below
    e[0, 4] += 0.6  # z = +6 ...
    e[1, 4] -= 0.6  # ... and -6: mixed
    e[1, 1] += 0.39  # z = 3.9: still follows
    v = _images.verdicts(e, se, ex)
    assert v["follows"] == [1] and v["above"] == [2] and v["below"] == [3] and v["mixed"] == [4]
    z = np.array(v["z"], dtype=float)
    assert np.isnan(z[:, 0]).all()
    np.testing.assert_allclose(z[:, 1:], (e[:, 1:] - ex[:, 1:]) / se[:, 1:], rtol=1e-12)


def test_bad_input_names_the_argument(tmp_path):
    x = hl.datasets.digits_images()[:20]
    with pytest.raises(ValueError, match="shape"):
        _images.learned_images(tmp_path, x, (8, 7))
    with pytest.raises(ValueError, match="alphas"):
        _images.learned_images(tmp_path, x, (8, 8), alphas=(0.0,))
    with pytest.raises(ValueError, match="images must be finite pixel values"):
        _images.learned_images(tmp_path, 3 * x, (8, 8))
    with pytest.raises(ValueError, match="generations"):
        _images.learned_images(tmp_path, x, (8, 8), generations=0)


TINY = ["--quick", "--alphas", "0.5", "--generations", "2", "--train-steps", "30", "--sampler-steps", "10", "--width", "16",
        "--order", "3", "--no-progress"]


def _check_report(out, images, generations, order):
    rep = json.loads((out / "report.json").read_text())
    data = hl.empirical(images)
    e_data = np.asarray(hl.energy_spectrum(data, order).energies)
    for run in rep["runs"]:
        assert (out / run["grid"]).stat().st_size > 0 and (out / run["spectrum"]).stat().st_size > 0
        np.testing.assert_allclose(run["energy_data"], e_data, rtol=1e-10)
        for i in range(generations):
            exact = np.asarray(hl.energy_spectrum(hl.generation(data, run["alpha"], rep["t0"], i + 1), order).energies)
            np.testing.assert_allclose(run["energy_exact"][i], exact, rtol=1e-10)
        lam = np.asarray(hl.attenuation(np.arange(order + 1), run["alpha"], rep["t0"]))
        np.testing.assert_allclose(run["energy_limit"], lam**2 * e_data, rtol=1e-10)
        e, se = np.array(run["energy"]), np.array(run["energy_se"])
        assert e.shape == (generations, order + 1) and np.all(se[:, 1:] > 0)
        np.testing.assert_allclose(e[:, 0], 1.0, atol=1e-9)  # E_0 = a_0^2 = 1 for any law
        z = np.array(run["z"], dtype=float)[:, 1:]
        np.testing.assert_allclose(z, (e[:, 1:] - np.array(run["energy_exact"])[:, 1:]) / se[:, 1:], rtol=1e-9)
        assert sorted(run["follows"] + run["above"] + run["below"] + run["mixed"]) == list(range(1, order + 1))
    md = (out / "report.md").read_text()
    assert "follows the filter at orders" in md and "wall time" in md
    return rep


def test_cli_learned_images_on_digits(tmp_path, capsys):
    out = tmp_path / "img"
    assert main(["learned-images", "--out", str(out), "--max-images", "120", *TINY]) == 0
    assert "follows the filter at orders" in capsys.readouterr().out
    rep = _check_report(out, hl.datasets.digits_images()[:120], 2, 3)
    assert rep["data"] == "digits" and rep["dim"] == 64


@pytest.mark.slow  # about a minute (3072-D network and spectra); the loader itself is tested in test_datasets
def test_cli_learned_images_on_a_cifar10_folder(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(24, 3072), dtype=np.uint8)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": raw, b"labels": list(rng.integers(0, 10, 24))}, f)
    for k in range(2, 6):  # the job reads the five training batches
        with open(folder / f"data_batch_{k}", "wb") as f:
            pickle.dump({b"data": raw[:0], b"labels": []}, f)
    out = tmp_path / "cifar"
    assert main(["learned-images", "--cifar10", str(folder), "--max-images", "24", "--out", str(out), *TINY]) == 0
    rep = _check_report(out, raw / 127.5 - 1.0, 2, 3)
    assert rep["data"] == "cifar10" and rep["dim"] == 3072 and rep["shape"] == [3, 32, 32]
    assert main(["learned-images", "--cifar10", str(tmp_path / "missing"), "--out", str(out), *TINY]) == 2
