"""Command-line rough edges: --version, a --help that loads no JAX, per-subcommand options, no
output folder on refused input, umask permissions, staging folders of killed runs."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hermite_limit
from hermite_limit import _io, checks, cli

ROOT = Path(__file__).resolve().parents[1]
DATA_COMMANDS = ("limit", "generations", "spectrum", "forecast")


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"hermite-limit {hermite_limit.__version__}\n"
    assert hermite_limit.__version__ == "0.1.0"


def test_help_imports_neither_jax_nor_numpy():
    code = (
        "import sys\n"
        "from hermite_limit.cli import main\n"
        "for argv in ([], ['verify'], ['limit'], ['spectrum']):\n"
        "    try:\n"
        "        main(argv + ['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'numpy', 'matplotlib', 'scipy'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = _python(code)
    assert "HEAVY []" in proc.stderr, proc.stderr
    assert "usage: hermite-limit verify" in proc.stdout


def test_package_names_load_on_first_use():
    proc = _python("import sys, hermite_limit as hl\n"
                   "assert 'jax' not in sys.modules\n"
                   "assert hl.GaussianMixture.__module__ == 'hermite_limit._mixture'\n"
                   "assert 'jax' in sys.modules and 'GaussianMixture' in dir(hl)\n"
                   "ns = {}\nexec('from hermite_limit import *', ns)\n"
                   "assert set(hl.__all__) <= set(ns) and len(hl.__all__) > 50\n"
                   "print(hl.datasets.bimodal_1d().dim, hl.plots.__name__)\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "hermite_limit.plots"]
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        hermite_limit.no_such_name


def _options(command: str) -> set[str]:
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices[command]
    return {s for a in sub._actions for s in a.option_strings if s.startswith("--")} - {"--help"}


def test_each_subcommand_lists_only_its_own_options(capsys):
    common = {"--preset", "--data", "--alpha", "--t0", "--vp-eps", "--beta-min", "--beta-max", "--ddpm-step",
              "--ddpm-beta-start", "--ddpm-beta-end", "--ddpm-steps", "--config", "--out"}
    assert _options("limit") == common | {"--seed"}
    assert _options("generations") == common | {"--generations", "--schedule", "--order", "--seed"}
    assert _options("spectrum") == common | {"--order"}
    assert _options("forecast") == common | {"--generations", "--order", "--budget", "--pcs"}
    assert _options("verify") == {"--out", "--quick", "--seed", "--config", "--no-progress"}
    # another subcommand's option is refused, on the command line and in a config file
    assert cli.main(["limit", "--preset", "bimodal-1d", "--budget", "0.1", "--out", "x"]) == 2
    assert "unrecognized arguments: --budget" in capsys.readouterr().err


def test_config_file_holds_only_the_subcommands_keys(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('preset = "bimodal-1d"\nbudget = 0.1\n')
    assert cli.main(["spectrum", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown keys ['budget'] for spectrum" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_no_help_text_states_a_running_time(capsys):
    for command in ("", "limit", "generations", "spectrum", "forecast", "verify"):
        assert cli.main([command, "--help"] if command else ["--help"]) == 0
        text = capsys.readouterr().out
        assert text.startswith("usage: hermite-limit")
        for word in ("minute", "second", " 40 s", "under "):
            assert word not in text, (command, word)


REFUSED = {  # each subcommand's own options, each with a value it refuses
    "--t0": ("-1", DATA_COMMANDS), "--alpha": ("2", DATA_COMMANDS), "--generations": ("0", ("generations", "forecast")),
    "--order": ("0", ("generations", "spectrum", "forecast")), "--schedule": ("nope", ("generations",)),
    "--pcs": ("0", ("forecast",)), "--budget": ("2", ("forecast",)),
}


@pytest.mark.parametrize("command, bad", [(c, [k, v]) for k, (v, cs) in REFUSED.items() for c in cs])
def test_refused_input_creates_no_output_folder(command, bad, tmp_path, capsys):
    out = tmp_path / "a" / "b"
    code = cli.main([command, "--preset", "bimodal-1d", *bad, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert not (tmp_path / "a").exists()


def test_refused_verify_config_and_file_as_out_create_nothing(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('only = ["no_such_check"]\n')
    assert cli.main(["verify", "--config", str(cfg), "--out", str(tmp_path / "v")]) == 2
    assert "only has unknown check families ['no_such_check']" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()
    afile = tmp_path / "f"
    afile.write_text("")
    for argv in (["verify"], ["limit", "--preset", "bimodal-1d"]):
        assert cli.main([*argv, "--out", str(afile)]) == 2
        assert "out must be a folder" in capsys.readouterr().err


def test_outputs_have_the_umask_permissions(tmp_path, bimodal_report_records):
    old = os.umask(0o022)
    try:
        code = cli.main(["limit", "--preset", "bimodal-1d", "--out", str(tmp_path / "lim")])
        checks.write_report(bimodal_report_records, tmp_path / "rep", {})
        _io.write_json_atomic(tmp_path / "j" / "x.json", {"a": 1})
        os.umask(0o077)
        _io.write_json_atomic(tmp_path / "j" / "private.json", {"a": 1})
    finally:
        os.umask(old)
    assert code == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"limit.json", "limit.png", "report.json", "report.md", "x.json"}
    for p in files:
        assert p.stat().st_mode & 0o777 == (0o600 if p.name == "private.json" else 0o644), p


@pytest.fixture
def bimodal_report_records():
    from hermite_limit import datasets

    return [checks.check_no_fresh_data(datasets.bimodal_1d(), 0.2, n=5)]


def test_stale_staging_is_removed_and_a_live_one_kept(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    stale = out / ".report-dead"
    stale.mkdir()
    (stale / "partial.png").write_bytes(b"x")
    old = time.time() - 60
    os.utime(stale, (old, old))
    with checks.ReportWriter(out) as live:  # entering removes the stale folder (no process holds it)
        assert not stale.exists() and live.staging.is_dir()
        # another run's cleanup leaves a folder its owner holds (flock), however old
        os.utime(live.staging, (old, old))
        assert _io.remove_stale_staging(out, ".report-") == []
        assert live.staging.is_dir()
        path = live.commit({"seed": 0})
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"] and json.loads(path.read_text())["checks"] == []
    # an interrupted writer leaves nothing, and removes the folder it created
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        with checks.ReportWriter(fresh):
            raise KeyboardInterrupt
    assert not fresh.exists()
