"""Shared test configuration.

The global JAX x64 flag is deliberately left off: the package must compute in float64 through
its own scoped context, and tests check output dtypes to prove it.
"""

import itertools
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax
import matplotlib
import pytest
from hypothesis import settings

matplotlib.use("Agg")

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic within a test."""
    counter = itertools.count()
    base = jax.random.key(20261123)
    return lambda: jax.random.fold_in(base, next(counter))
