"""Ctrl-C and kill -9 in the middle of `hermite-limit verify`: one line and exit 130, no staging
folder left behind, and a clean rerun after a killed run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hermite_limit import cli

# What the console script runs, started as a shell starts a foreground job: SIGINT handled and not blocked. A
# child inherits an ignored or blocked SIGINT from its parent, and a test worker's may be either (in the suite
# under xdist a SIGINT was lost and the run finished with 0, while the same run started from a shell always
# stopped with 130), so the child restores both before the CLI starts.
LAUNCH = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
          "from hermite_limit.cli import main; raise SystemExit(main())")


def _start(out: Path, config: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.Popen([sys.executable, "-c", LAUNCH, "verify", "--config", str(config), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _staging(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith(".report-")] if out.is_dir() else []


def _wait_for_partial_report(proc: subprocess.Popen, out: Path, timeout: float = 240.0) -> Path:
    """Wait until the run has saved at least one figure into its staging folder (it is midway)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        for folder in _staging(out):
            if any(folder.glob("*.png")):
                return folder
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the staging folder with a figure never appeared")


def test_sigint_sigkill_then_clean_rerun(tmp_path):
    out = tmp_path / "v"
    # several checks, and the learned family last (minutes): the run is still going after the first figure
    # however slowly this machine runs (a fast tail let a loaded run finish before the signal arrived)
    many = tmp_path / "many.toml"
    many.write_text('alphas = [0.5]\nquick = true\nonly = ["fixed_point", "mode_rates", "annealed_schedules", '
                    '"init_independence", "no_fresh_data", "discounted_accumulation", "learned"]\n')

    # Ctrl-C midway: exit 130, one line on stderr, no traceback, nothing left behind
    proc = _start(out, many)
    _wait_for_partial_report(proc, out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr == "hermite-limit verify: interrupted\n"
    assert _staging(out) == [] and not out.exists()  # the folder was created by this run: removed too

    # kill -9 midway: the staging folder with partial figures stays behind (nothing can clean it)
    proc = _start(out, many)
    stale = _wait_for_partial_report(proc, out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert stale.is_dir() and any(stale.glob("*.png")) and not (out / "report.json").exists()

    # a clean rerun removes it and writes the complete report
    os.utime(stale, (time.time() - 60, time.time() - 60))  # as any stale folder: not one being created now
    tiny = tmp_path / "tiny.toml"
    tiny.write_text('alphas = [0.5]\nquick = true\nonly = ["fixed_point", "no_fresh_data"]\n')
    proc = _start(out, tiny)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    assert _staging(out) == []
    payload = json.loads((out / "report.json").read_text())
    names = [c["name"] for c in payload["checks"]]
    assert names == ["fixed_point[alpha=0.5,t0=0.1]", "no_fresh_data[t0=0.1]"] and payload["all_passed"]
    assert (out / payload["checks"][0]["figure"]).stat().st_size > 1000
    assert "| fixed_point[alpha=0.5,t0=0.1] |" in (out / "report.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == sorted(["report.json", "report.md", payload["checks"][0]["figure"]])


def test_ctrl_c_in_any_subcommand_is_one_line_exit_130(tmp_path, capsys, monkeypatch):
    """The KeyboardInterrupt Ctrl-C raises, wherever it lands, becomes one line and status 130."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    for command, argv in [("limit", ["--preset", "bimodal-1d"]), ("generations", ["--preset", "bimodal-1d"]),
                          ("spectrum", ["--preset", "bimodal-1d"]), ("forecast", ["--preset", "bimodal-1d"]),
                          ("verify", [])]:
        monkeypatch.setattr(cli, f"_{command}", interrupted)
        code = cli.main([command, *argv, "--out", str(tmp_path / command)])
        assert code == 130
        assert capsys.readouterr().err == f"hermite-limit {command}: interrupted\n"
        assert not (tmp_path / command).exists()
