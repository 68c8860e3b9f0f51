"""The one-pass host assembly of recursion laws against the straightforward assembly (every entry compared).

Reference: ``_limit._assemble`` (broadcast products, full ``|c - I|`` comparison, then transfer), on random
mixtures of every covariance structure, with times that merge components into the stationary law and
times that do not; the density flag against the eigenvalue check.
"""

import jax
import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit._limit import _assemble
from hermite_limit._mixture import _density_flag
from hermite_limit._recursion_fast import aligned_empty, assemble, constant_schedule_terms


def _random_law(rng, kind, standard_first):
    K, d = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    w, m = rng.dirichlet(np.ones(K)), rng.standard_normal((K, d))
    A = rng.standard_normal((K, d, d))
    S = {"full": A @ A.transpose(0, 2, 1) + 0.1 * np.eye(d), "diag": rng.uniform(0.1, 2, (K, d)), "iso": rng.uniform(0.1, 2, K)}[kind]
    if standard_first:  # a component equal to N(0, I): every push of it is N(0, I) too
        m[0] = 0.0
        S[0] = np.eye(d) if kind == "full" else 1.0
    return hl.GaussianMixture(w, m, S)


@pytest.mark.parametrize("kind", ["iso", "diag", "full"])
@pytest.mark.parametrize("t,standard_first", [(0.1, False), (30.0, False), (0.5, True), (1.0, True)])
def test_assembly_equals_the_direct_one_bitwise(kind, t, standard_first):
    rng = np.random.default_rng(int(t * 10) + len(kind))
    gm = _random_law(rng, kind, standard_first)
    J = int(rng.integers(1, 6))
    k = np.arange(1, J + 1.0)
    terms = [(gm, np.exp(-k * t), -np.expm1(-2 * k * t), 0.5**k)]
    with jax.enable_x64(True):
        ref, merged_ref = _assemble(terms, 0.5**J)
        ours, merged = assemble(terms, 0.5**J)
    assert merged == merged_ref
    for a, b in zip((ours.weights, ours.means, ours.covs), (ref.weights, ref.means, ref.covs)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert ours.has_density() == _density_flag(np.asarray(ref.weights), np.asarray(ref.covs))


def test_host_law_moves_to_the_device_in_float64_and_aligned():
    a = aligned_empty((3, 5))
    assert a.ctypes.data % 64 == 0 and a.dtype == np.float64
    gm = hl.generation(hl.GaussianMixture([0.4, 0.6], [[-1.0], [2.0]], [0.5, 1.5]), 0.3, 0.2, 4)
    assert gm._on_host
    assert gm.weights.dtype == np.float64 and not gm._on_host  # outside any x64 context
    np.testing.assert_allclose(float(np.sum(np.asarray(gm.weights))), 1.0, rtol=1e-15)


def test_constant_schedule_terms_equal_the_recursion():
    from hermite_limit._limit import _recursion_terms

    for alpha, t0, n in [(0.3, 0.1, 7), (0.9, 2.0, 3), (0.5, 0.05, 40)]:
        fast = constant_schedule_terms(t0, alpha, n)
        slow = _recursion_terms(np.full(n, t0), alpha, "fresh")
        for a, b in zip(fast, slow):
            for x, y in zip(a, b):
                np.testing.assert_allclose(x, y, rtol=1e-13, atol=0)
    assert constant_schedule_terms(1e-300, 0.5, 3) is None  # times too close to tell the terms apart
    assert constant_schedule_terms(0.1, 1.0, 3) is None  # zero weights: the general merge drops them
