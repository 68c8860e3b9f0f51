"""Shared test configuration.

The global JAX x64 flag is deliberately left off: the package must compute in float64 through
its own scoped context, and tests check output dtypes to prove it.
"""

import itertools
import json
import os

os.environ.setdefault("MPLBACKEND", "Agg")  # headless figures in tests (the library itself never picks a backend)


def _session_compilation_cache() -> None:
    """One JAX persistent compilation cache for the whole test session, in a fresh temporary folder.

    The first process to import this file (pytest's controller) creates the folder and exports it; the xdist
    workers and every subprocess the tests start (the CLI, notebook kernels, benchmark runs) inherit the
    variable, so a program compiled in one of them is loaded, not compiled again, in the others. Fresh per
    session (removed at exit), so no run depends on an earlier one. Compilation is most of the suite's time.
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="hermite-limit-test-jax-cache-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # every program: 5% less CPU than 0.2 s


_session_compilation_cache()

import jax
import numpy as np
import pytest
from hypothesis import settings


settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic within a test."""
    counter = itertools.count()
    base = jax.random.key(20261123)
    return lambda: jax.random.fold_in(base, next(counter))


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory):
    """Data files in every input format the CLI reads, plus malformed ones: (folder, samples, mixture)."""
    d = tmp_path_factory.mktemp("inputs")
    x = np.random.default_rng(0).standard_normal((40, 2)) + np.array([1.0, -0.5])
    np.save(d / "s.npy", x)
    np.savez(d / "s.npz", samples=x)
    np.savetxt(d / "s.csv", x, delimiter=",", header="x1,x2", comments="")
    mix = {"weights": [0.4, 0.6], "means": [[0.0, 1.0], [2.0, -1.0]], "covariances": [0.5, 1.0]}
    (d / "m.json").write_text(json.dumps(mix))
    (d / "m.toml").write_text("weights = [0.4, 0.6]\nmeans = [[0.0, 1.0], [2.0, -1.0]]\ncovariances = [0.5, 1.0]\n")
    (d / "bad.json").write_text("{weights: [1.0]")
    (d / "wrongdim.json").write_text(json.dumps({"weights": [1.0], "means": [[0.0, 1.0]], "covariances": [[1.0, 0.0, 0.0]]}))
    np.save(d / "nan.npy", np.array([[0.0, 1.0], [np.nan, 2.0]]))
    return d, x, mix


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from hermite_limit import cli

    def run(*argv):
        code = cli.main(list(argv))
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    return run


@pytest.fixture(autouse=True)
def _close_figures():
    """Checks and plots return open figures; close them after every test."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
