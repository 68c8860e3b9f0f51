"""The command line: the main job end to end, and one-line errors for bad input."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from hermite_limit import cli


def test_verify_quick_end_to_end(tmp_path):
    out = tmp_path / "v"
    proc = subprocess.run(
        [sys.executable, "-m", "hermite_limit.cli", "verify", "--quick", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    payload = json.loads((out / "report.json").read_text())
    assert payload["checks"] and all(c["passed"] for c in payload["checks"])
    from hermite_limit.checks import RELATIONS

    assert all(c["relation"] in RELATIONS for c in payload["checks"])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder or temporary file
    pngs = list(out.glob("*.png"))
    assert pngs
    for png in pngs:
        img = np.asarray(Image.open(png).convert("L"), dtype=float)
        assert img.size > 0 and img.std() > 1.0  # readable and not blank
    assert "| check | claim |" in (out / "report.md").read_text()


def test_bad_config_is_a_one_line_error(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("alphas = [2.0]\n")
    code = cli.main(["verify", "--out", str(tmp_path / "o"), "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "alphas must lie in [0, 1]" in err
    code = cli.main(["verify", "--out", str(tmp_path / "o"), "--config", str(tmp_path / "missing.toml")])
    assert code == 2 and "config file not found" in capsys.readouterr().err
