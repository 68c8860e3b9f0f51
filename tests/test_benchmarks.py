"""The benchmark runner end to end at the smallest size: the JSON has the documented schema."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_INSTALLED = "peer not installed"
KEYS = {"task", "peer", "peer_seconds", "ours_seconds", "ratio", "target_ratio", "met", "peer_error", "ours_error"}


def _groups():
    from benchmarks.__main__ import TASKS

    return list(TASKS)


@pytest.mark.parametrize("group", _groups())  # one runner per group: the suite's workers share them out
def test_benchmarks_tiny_run_writes_schema(tmp_path, group):
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--tiny", "--only", group, "--json", str(out),
         "--markdown", str(md)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads(out.read_text())
    assert isinstance(payload["device"], str) and payload["tasks"]
    for row in payload["tasks"]:
        assert KEYS <= set(row)
        if NOT_INSTALLED in row["peer"]:  # an optional peer (PyTorch) absent: no figure, no verdict
            assert row["peer_seconds"] is None and row["ratio"] is None and row["met"] is None
            continue
        assert row["peer_seconds"] > 0 and row["ours_seconds"] > 0
        assert abs(row["ratio"] - row["peer_seconds"] / row["ours_seconds"]) <= 1e-9 * row["ratio"]
        if row["target_ratio"] is not None:
            assert row["met"] == (row["ratio"] >= row["target_ratio"])
        # sampling and retrain rows report Monte Carlo / discretisation errors; the rest are deterministic
        if row["ours_error"] is not None and row["task"].startswith("DSM training"):
            assert row["ours_error"] < 1e-4  # float32 training: the fused scan and the step loop agree to rounding
        elif row["ours_error"] is not None and not row["task"].startswith(("sampling", "retrain")):
            assert row["ours_error"] < 1e-6  # our answers are right even at the smallest size
    assert "| task | peer |" in md.read_text()


def test_missed_target_fails_the_run_except_at_tiny_size():
    from benchmarks.__main__ import exit_status

    met = {"task": "a", "peer": "p", "ratio": 3.0, "target_ratio": 2.0, "met": True}
    missed = {"task": "b", "peer": "q", "ratio": 1.5, "target_ratio": 2.0, "met": False}
    untargeted = {"task": "c", "peer": "r", "ratio": 0.1, "target_ratio": None, "met": None}
    assert exit_status([met, untargeted], "quick") == (0, [])
    for size in ("quick", "full"):
        code, lines = exit_status([met, missed, untargeted], size)
        assert code == 1 and lines == ["b vs q: 1.5x < 2x"]
    assert exit_status([missed], "tiny")[0] == 0

def test_missing_bench_extra_is_one_clear_line(monkeypatch, capsys):
    """Without the bench extra's peers the runner stops before any work and says what to install."""
    import importlib.util

    from benchmarks import __main__ as runner

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "chaospy" else real(name, *a))
    assert runner.main(["--tiny", "--only", "hermite", "recursion"]) == 2
    err = capsys.readouterr().err
    assert "chaospy" in err and 'pip install -e ".[bench]"' in err and len(err.strip().splitlines()) == 1


def test_scaling_plot_is_drawn_without_pyplot(tmp_path):
    """The scaling figure is a bare matplotlib Figure: written, and no pyplot figure left open."""
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from benchmarks.scaling import _plot

    before = plt.get_fignums()
    path = tmp_path / "scaling.png"
    _plot([("sampler", "particles", [(1e3, 0.1, 0.01), (1e4, 0.1, 0.08)]), ("K", "K", [(5, 0.1, 0.02), (50, 0.1, 0.1)])],
          str(path))
    assert plt.get_fignums() == before
    with Image.open(path) as im:
        assert im.size[0] > 500 and np.asarray(im.convert("L"), dtype=float).std() > 0


def test_training_benchmark_without_pytorch_says_peer_not_installed(monkeypatch):
    """PyTorch is only in the bench extra: with its import failing, the row says so and the rest still runs."""
    from benchmarks import training

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    rows = [r.to_json() for r in training.run(size="tiny")]
    torch_rows = [r for r in rows if "PyTorch" in r["peer"]]
    assert len(torch_rows) == 1 and NOT_INSTALLED in torch_rows[0]["peer"]
    assert torch_rows[0]["peer_seconds"] is None and torch_rows[0]["ratio"] is None and torch_rows[0]["met"] is None
    loops = [r for r in rows if "filter_jit" in r["peer"]]
    assert [("tutorial" in r["peer"], r["target_ratio"]) for r in loops] == [(True, 3.0), (False, None)]
    for loop in loops:  # the tutorial loop and our own step dispatched per step
        assert loop["ours_seconds"] > 0 and loop["peer_seconds"] > 0
        # the fused scan and both per-step loops draw the same minibatches: the same weights up to rounding
        assert loop["ours_error"] < 1e-4


def test_large_size_runs_alone_and_only_on_request(capsys):
    """--large takes no other size or selection; the large module refuses any other size."""
    import pytest

    from benchmarks import large
    from benchmarks.__main__ import main

    for extra in (["--quick"], ["--tiny"], ["--only", "recursion"]):
        with pytest.raises(SystemExit) as exc:
            main(["--large", *extra])
        assert exc.value.code == 2
    capsys.readouterr()
    with pytest.raises(ValueError, match="large size"):
        large.run(size="quick")


def test_large_logpdf_in_chunks_equals_one_call(monkeypatch):
    """The chunked evaluation (points drawn chunk by chunk) gives the log-density of one call on all points."""
    import numpy as np

    from benchmarks import large

    monkeypatch.setattr(large, "CHUNK", 300)
    got = large.logpdf_chunked(700, 20)
    gm = large._mixture(20)
    x = np.concatenate([3.0 * np.random.default_rng(1000 + i).standard_normal((min(300, 700 - i), large.D))
                        for i in range(0, 700, 300)])
    ref = float(np.sum(np.asarray(gm.logpdf(x))))
    assert abs(got["checksum"] - ref) <= 1e-12 * abs(ref)
    assert got["work"] == 700 * 20 and got["peak_mib"] >= got["peak_before_mib"] > 0


def test_time_budget_takes_the_fastest_call_within_it(monkeypatch):
    """time_for on a simulated clock: the first call, untimed calls until the warm-up budget is spent, then the
    fastest timed call among those started before the budget ran out (the one that crosses it included)."""
    from benchmarks import _harness

    durations = iter([5.0, 1.0, 1.0, 4.0, 3.0, 2.5, 3.5, 9.0])  # first, 2 warm-up, then 4 timed, 1 never made
    clock = [0.0]
    calls = []

    def fn():
        step = next(durations)
        clock[0] += step
        calls.append(step)
        return step

    monkeypatch.setattr(_harness.time, "perf_counter", lambda: clock[0])
    first, best, out = _harness.time_for(fn, seconds=10.0, warmup_seconds=2.0)
    assert first == 5.0
    assert calls == [5.0, 1.0, 1.0, 4.0, 3.0, 2.5, 3.5]  # timed calls start at 7 and the fourth ends at 20 >= 17
    assert best == 2.5 and out == 3.5
