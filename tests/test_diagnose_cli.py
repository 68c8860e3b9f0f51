"""hermite-limit diagnose: every input format, the written outputs, and bad input (exit 2, nothing written)."""

import json

import jax
import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit import cli

from helpers import bimodal_1d


@pytest.fixture(scope="module")
def gens():
    data = bimodal_1d()
    return [np.asarray((hl.generation(data, 0.4, 0.15, i) if i else data).sample(jax.random.key(40 + i), 3000))
            for i in range(4)]


def test_npy_csv_npz_inputs_give_the_library_result(tmp_path, gens):
    paths = []
    for i, g in enumerate(gens):
        if i % 3 == 0:
            p = tmp_path / f"g{i}.npy"
            np.save(p, g)
        elif i % 3 == 1:
            p = tmp_path / f"g{i}.csv"
            np.savetxt(p, g, delimiter=",", header="x", comments="")
        else:
            p = tmp_path / f"g{i}.npz"
            np.savez(p, samples=g)
        paths.append(str(p))
    out = tmp_path / "out"
    assert cli.main(["diagnose", *paths, "--order", "3", "--out", str(out)]) == 0
    for f in ("diagnosis.json", "report.md", "trajectories.png", "attenuation.png", "forecast.png", "schedule.png"):
        assert (out / f).exists(), f
    js = json.loads((out / "diagnosis.json").read_text())
    ref = hl.diagnose(gens, order=3)
    assert js["alpha"] == pytest.approx(ref.alpha, rel=1e-6) and js["t0"] == pytest.approx(ref.t0, rel=1e-6)
    assert js["p_value"] == pytest.approx(ref.p_value, rel=1e-6)
    assert "alpha" in (out / "report.md").read_text()
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temporary files left


def test_png_folders_with_the_stated_pixel_scaling(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    folders, arrays = [], []
    for i in range(3):
        f = tmp_path / f"g{i}"
        f.mkdir()
        px = np.clip(rng.normal(128 - 20 * i, 40 - 5 * i, (400, 1, 2)), 0, 255).astype(np.uint8)
        for j, a in enumerate(px):
            Image.fromarray(a, mode="L").save(f / f"{j:04d}.png")
        folders.append(str(f))
        arrays.append(px.reshape(400, 2).astype(float))
    out = tmp_path / "out"
    assert cli.main(["diagnose", *folders, "--order", "2", "--out", str(out)]) == 0
    js = json.loads((out / "diagnosis.json").read_text())
    ref = hl.diagnose([a / 127.5 - 1 for a in arrays], order=2)
    assert js["chi2"] == pytest.approx(ref.chi2, rel=1e-8)
    out2 = tmp_path / "out2"
    assert cli.main(["diagnose", *folders, "--order", "2", "--scale", "0.01", "--shift", "-1", "--out", str(out2)]) == 0
    ref2 = hl.diagnose([a * 0.01 - 1 for a in arrays], order=2)
    assert json.loads((out2 / "diagnosis.json").read_text())["chi2"] == pytest.approx(ref2.chi2, rel=1e-8)


@pytest.mark.parametrize("case", ["missing", "dims", "empty_folder", "few", "one"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case, gens):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, gens[0])
    if case == "missing":
        args = [str(a), str(tmp_path / "nope.npy")]
    elif case == "dims":
        np.save(b, np.c_[gens[1], gens[1]])
        args = [str(a), str(b)]
    elif case == "empty_folder":
        (tmp_path / "imgs").mkdir()
        args = [str(a), str(tmp_path / "imgs")]
    elif case == "few":
        np.save(b, gens[1][:5])
        args = [str(a), str(b)]
    else:
        args = [str(a)]
    out = tmp_path / "out"
    code = cli.main(["diagnose", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "error" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
