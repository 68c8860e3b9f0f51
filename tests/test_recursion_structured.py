"""The structured fast path of the exact recursion against the general computation, on random inputs.

References: the general path (``constant_schedule_terms`` / ``_constant_terms`` terms, assembled by
``assemble``, which compares every output component with the stationary law), and for the limit the
same ``assemble`` on the series terms. The fast path may differ only by rounding: the weights are not
renormalised (and the initial model's ``rho^n`` comes from numpy's ``exp``, not ``math.exp``), so every
entry agrees to 1e-14 relative (bitwise where the operations are the same: the data terms' means). The merge screens are checked to
be conservative: whenever the fast path answers, the general assembly merges nothing.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import hermite_limit as hl
from hermite_limit._limit import _constant_terms
from hermite_limit._recursion_fast import (
    _never_stationary,
    assemble,
    constant_schedule_terms,
    generation_terms,
    series_terms,
    structured_law,
)
from hermite_limit._validation import check_int, real_scalar

RTOL = 1e-14


def _law(seed, kind, K, d, standard_first=False):
    rng = np.random.default_rng(seed)
    w, m = rng.dirichlet(np.ones(K)), rng.standard_normal((K, d))
    A = rng.standard_normal((K, d, d))
    S = {"full": A @ A.transpose(0, 2, 1) + 0.1 * np.eye(d), "diag": rng.uniform(0.1, 2, (K, d)), "iso": rng.uniform(0.1, 2, K)}[kind]
    if standard_first:  # a component equal to N(0, I): every push of it is N(0, I), so the law merges
        m[0] = 0.0
        S[0] = np.eye(d) if kind == "full" else 1.0
    return hl.GaussianMixture(w, m, S)


def _general_generation(gm, p0, alpha, t0, n):
    data, init = constant_schedule_terms(t0, alpha, n) or _constant_terms(t0, alpha, n)
    return assemble([(gm, *data), (p0, *init)], 0.0)


def _assert_close(ours, ref, rtol=RTOL):
    for a, b in zip(ours.to_numpy(), ref.to_numpy()):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


laws = st.tuples(st.integers(0, 2**31), st.sampled_from(["iso", "diag", "full"]), st.integers(1, 6), st.integers(1, 4))


@settings(max_examples=60, deadline=None)
@given(law=laws, alpha=st.floats(0.01, 0.99), t0=st.floats(0.01, 3.0), n=st.integers(1, 60), separate_init=st.booleans())
def test_generation_fast_path_equals_the_general_assembly(law, alpha, t0, n, separate_init):
    seed, kind, K, d = law
    gm = _law(seed, kind, K, d)
    p0 = _law(seed + 1, kind, K + 1, d) if separate_init else gm
    ours = hl.generation(gm, alpha, t0, n, init=None if p0 is gm else p0)
    ref, merged = _general_generation(gm, p0, alpha, t0, n)
    if merged == 0:
        _assert_close(ours, ref)
    else:  # pushes reach N(0, I) in float64: the fast path declined and the general one answered
        for a, b in zip(ours.to_numpy(), ref.to_numpy()):
            np.testing.assert_array_equal(a, b)
    # the structured writer itself, when it answers, proves the general assembly merges nothing
    rho, rho2, neg_c, w = generation_terms(t0, alpha, n)
    blocks = [(gm, rho, rho2, neg_c, w, 0.5 * rho.item(0), 0.5 * min(w.item(0), w.item(n)))] if p0 is gm else [
        (gm, rho[:n], rho2[:n], neg_c[:n], w[:n], 0.5 * rho.item(0), 0.5 * min(w.item(0), w.item(n))),
        (p0, rho[n:], rho2[n:], neg_c[n:], w[n:], 0.5 * rho.item(0), 0.5 * min(w.item(0), w.item(n)))]
    fast = structured_law(blocks)
    if fast is not None:
        assert merged == 0
        _assert_close(fast, ref)
        data_rows = n * gm.n_components  # the data terms' means: the same products, bitwise
        np.testing.assert_array_equal(fast.to_numpy()[1][:data_rows], ref.to_numpy()[1][:data_rows])


@settings(max_examples=60, deadline=None)
@given(law=laws, alpha=st.floats(0.05, 0.99), t0=st.floats(0.01, 3.0), tol=st.floats(1e-14, 0.5), h=st.sampled_from([None, 0.3]))
def test_limit_fast_path_equals_the_general_assembly(law, alpha, t0, tol, h):
    seed, kind, K, d = law
    gm = _law(seed, kind, K, d)
    lim = hl.limit_distribution(gm, alpha, t0, tol, kde_bandwidth=h)
    J = lim.n_terms
    rho = math.exp(-t0)
    c_inf = 1.0 + (0.0 if h is None else h * h * rho * rho / -math.expm1(-2.0 * t0))
    k = np.arange(1, J + 1, dtype=np.float64)
    rho_k, c_k, w = np.exp(-k * t0), -c_inf * np.expm1(-2.0 * k * t0), alpha * (1.0 - alpha) ** (k - 1)
    ref, merged = assemble([(gm, rho_k, c_k, w)], (1.0 - alpha) ** J, c_inf)
    assert lim.merged_components == merged
    _assert_close(lim.mixture, ref)


@settings(max_examples=40, deadline=None)
@given(law=laws, alpha=st.floats(0.05, 0.95), t0=st.floats(0.05, 40.0), n=st.integers(1, 30))
def test_generation_with_a_standard_component_merges_as_before(law, alpha, t0, n):
    """Data with an N(0, I) component (and long times): the screens decline and the merge is the general one."""
    seed, kind, K, d = law
    gm = _law(seed, kind, K, d, standard_first=True)
    ours = hl.generation(gm, alpha, t0, n)
    ref, _ = _general_generation(gm, gm, alpha, t0, n)
    for a, b in zip(ours.to_numpy(), ref.to_numpy()):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=80, deadline=None)
@given(law=laws, rmin=st.one_of(st.floats(0.0, 1.0), st.floats(1e-12, 1e-6)), var=st.sampled_from([1.0, 1.7]),
       near=st.sampled_from([0.0, 1e-20, 1e-13, 1e-9]), scale=st.sampled_from([0.0, 1e-19, 1e-17, 1.0]))
def test_never_stationary_screen_is_conservative(law, rmin, var, near, scale):
    """If the screen says no push can be stationary, the general assembly indeed merges nothing."""
    seed, kind, K, d = law
    rng = np.random.default_rng(seed)
    m = scale * rng.standard_normal((K, d))
    if kind == "full":
        S = var * np.eye(d) + near * np.eye(d)[None] * rng.uniform(-1, 1, (K, 1, 1))
    elif kind == "diag":
        S = var + near * rng.uniform(-1, 1, (K, d))
    else:
        S = var + near * rng.uniform(-1, 1, K)
    S = np.maximum(S, 0.0) if kind != "full" else S
    gm = hl.GaussianMixture(np.full(K, 1.0 / K), m, S)
    w_np, m_np, S_np = gm.to_numpy()
    rho = np.array([rmin, min(1.0, 2 * rmin), 1.0])
    c = var * -np.expm1(2 * np.log(np.maximum(rho, 1e-300)))
    _, merged = assemble([(gm, rho, c, np.full(3, 1.0 / 3))], 0.0, var)
    if _never_stationary(m_np, S_np, kind, rmin, var):
        assert merged == 0


def test_series_terms_are_the_closed_forms():
    k = np.arange(1, 41, dtype=np.float64)
    rho, rho2, neg_c, w = series_terms(k, 0.1, 0.3)
    np.testing.assert_array_equal(rho, np.exp(-k * 0.1))
    np.testing.assert_array_equal(rho2, np.exp(-k * 0.1) * np.exp(-k * 0.1))
    np.testing.assert_array_equal(neg_c, np.expm1(-2.0 * k * 0.1))
    np.testing.assert_array_equal(w, 0.3 * 0.7 ** (k - 1))
    rho, rho2, neg_c, w = generation_terms(0.1, 0.3, 5)
    data, init = constant_schedule_terms(0.1, 0.3, 5)
    np.testing.assert_array_equal(rho[:5], data[0])
    np.testing.assert_array_equal(-neg_c[:5], data[1])
    np.testing.assert_array_equal(w[:5], data[2])
    np.testing.assert_allclose([rho[5], -neg_c[5], w[5]], [init[0][0], init[1][0], init[2][0]], rtol=2e-16, atol=0)


def test_weights_sum_to_one_without_renormalising():
    gm = _law(3, "full", 50, 3)
    for n in (1, 7, 200):
        w = hl.generation(gm, 0.3, 0.05, n).to_numpy()[0]
        assert abs(math.fsum(w) - 1.0) < 1e-14
    w = hl.limit_distribution(gm, 0.01, 0.05, 1e-12).mixture.to_numpy()[0]
    assert abs(math.fsum(w) - 1.0) < 1e-14


def test_to_numpy_is_read_only_and_equals_the_device_arrays():
    gm = _law(5, "diag", 3, 2)
    law = hl.generation(gm, 0.4, 0.2, 3)
    host = law.to_numpy()
    assert law._on_host and all(not a.flags.writeable for a in host)
    with pytest.raises(ValueError):
        host[0][0] = 1.0
    for a, b in zip(host, (law.weights, law.means, law.covs)):  # now moved to the device
        np.testing.assert_array_equal(a, np.asarray(b))
    for a, b in zip(gm.to_numpy(), (gm.weights, gm.means, gm.covs)):  # a law held by JAX: host views
        assert not a.flags.writeable and a.dtype == np.float64
        np.testing.assert_array_equal(a, np.asarray(b))
    assert gm.to_numpy()[1] is gm.to_numpy()[1]  # the host views are made once and kept


def test_to_numpy_inside_a_transformation_names_the_problem():
    import jax

    def f(m):
        return hl.GaussianMixture(jax.numpy.ones(1), m[None, :], jax.numpy.ones((1, 2))).to_numpy()

    with pytest.raises(ValueError, match="to_numpy needs concrete arrays"):
        jax.jit(f)(jax.numpy.zeros(2))


@settings(max_examples=200, deadline=None)
@given(x=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10)),
       low=st.sampled_from([None, 0.0, -1.0]), high=st.sampled_from([None, 1.0, 5.0]),
       low_open=st.booleans(), high_open=st.booleans())
def test_scalar_fast_path_keeps_the_rules(x, low, high, low_open, high_open):
    """The exact-type fast path returns x exactly when the full rules accept it, and never accepts otherwise."""
    finite = math.isfinite(x)
    inside = finite and (low is None or x > low or (x == low and not low_open)) and (
        high is None or x < high or (x == high and not high_open))
    if inside:
        assert real_scalar("a", x, low=low, high=high, low_open=low_open, high_open=high_open) == float(x)
    else:
        with pytest.raises(ValueError, match="^a must"):
            real_scalar("a", x, low=low, high=high, low_open=low_open, high_open=high_open)


@given(n=st.one_of(st.integers(-5, 5), st.booleans(), st.floats(-2, 2)), minimum=st.sampled_from([None, 0, 1]),
       maximum=st.sampled_from([None, 3]))
def test_int_fast_path_keeps_the_rules(n, minimum, maximum):
    ok = type(n) is int and (minimum is None or n >= minimum) and (maximum is None or n <= maximum)
    if ok:
        assert check_int(n, "n", minimum=minimum, maximum=maximum) == n
    else:
        with pytest.raises(ValueError, match="^n must"):
            check_int(n, "n", minimum=minimum, maximum=maximum)


# -- the small one-source path (per-law constants cached, terms as columns) against the structured writer --

from hermite_limit._recursion_fast import small_generation, small_limit  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(law=laws, alpha=st.floats(0.01, 0.99), t0=st.floats(0.01, 3.0), n=st.integers(1, 200))
def test_small_generation_is_bitwise_the_structured_law(law, alpha, t0, n):
    """Same operations on the same operands: every array equal bitwise, and None exactly when the writer declines."""
    seed, kind, K, d = law
    gm = _law(seed, kind, K, d)
    rho, rho2, neg_c, w = generation_terms(t0, alpha, n)
    ref = structured_law([(gm, rho, rho2, neg_c, w, 0.5 * rho.item(0), 0.5 * min(w.item(0), w.item(n)))])
    for _ in range(2):  # the second call uses the constants kept on the law and the cached index columns
        ours = small_generation(gm, t0, alpha, n)
        assert (ours is None) == (ref is None)
        if ours is not None:
            for a, b in zip(ours.to_numpy(), ref.to_numpy()):
                assert a.shape == b.shape and not a.flags.writeable
                np.testing.assert_array_equal(a, b)
            # and the public call returns that law, by the typed entry (Python floats and int) and by the
            # fully checked one (numpy scalars)
            for call in (hl.generation(gm, alpha, t0, n), hl.generation(gm, np.float64(alpha), np.float64(t0), np.int64(n))):
                for a, b in zip(call.to_numpy(), ours.to_numpy()):
                    np.testing.assert_array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(law=laws, alpha=st.floats(0.05, 0.99), t0=st.floats(0.01, 3.0), J=st.integers(1, 300),
       var=st.sampled_from([1.0, 1.37]), mass=st.sampled_from([0.0, 1e-3]))
def test_small_limit_is_bitwise_the_structured_law(law, alpha, t0, J, var, mass):
    seed, kind, K, d = law
    gm = _law(seed, kind, K, d)
    rho, rho2, neg_c, w = series_terms(np.arange(1, J + 1, dtype=np.float64), t0, alpha)
    neg_c *= var
    ref = structured_law([(gm, rho, rho2, neg_c, w, 0.5 * rho.item(-1), 0.5 * w.item(-1))], mass, var)
    ours = small_limit(gm, t0, alpha, J, mass, var)
    assert (ours is None) == (ref is None)
    if ours is not None:
        for a, b in zip(ours.to_numpy(), ref.to_numpy()):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_small_path_declines_what_it_cannot_prove():
    """A component equal to N(0, I) (its pushes merge) and a law above 1 MiB: None, and the public calls answer."""
    gm = _law(1, "iso", 3, 2, standard_first=True)
    assert small_generation(gm, 0.1, 0.5, 5) is None
    assert small_limit(gm, 0.1, 0.5, 5, 0.5**5, 1.0) is None
    ref, merged = _general_generation(gm, gm, 0.5, 0.1, 5)
    assert merged > 0  # the pushes of the N(0, I) component are N(0, I) in float64: merged into one
    for a, b in zip(hl.generation(gm, 0.5, 0.1, 5).to_numpy(), ref.to_numpy()):
        np.testing.assert_array_equal(a, b)
    big = _law(2, "full", 200, 10)  # 200 (n + 1) components of 111 floats: above 1 MiB from n = 5
    assert small_generation(big, 0.1, 0.5, 10) is None
    assert big.n_components * 11 * 8 * 111 >= 1 << 20
    law = hl.generation(big, 0.5, 0.1, 10)
    rho, rho2, neg_c, w = generation_terms(0.1, 0.5, 10)
    ref = structured_law([(big, rho, rho2, neg_c, w, 0.5 * rho.item(0), 0.5 * min(w.item(0), w.item(10)))])
    for a, b in zip(law.to_numpy(), ref.to_numpy()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("J,K,d", [(3, 4, 3), (2, 200, 2), (40, 10, 4), (1, 300, 1)])
def test_subtract_on_diagonals_both_layouts(J, K, d):
    """Both loop layouts (below and above _PER_POSITION_FROM components) equal the entry-by-entry update."""
    from hermite_limit._recursion_fast import _subtract_on_diagonals

    rng = np.random.default_rng(J * K * d)
    C, neg = rng.standard_normal((J, K * d * d)), rng.standard_normal(J)
    ref = C.copy().reshape(J, K, d, d)
    for j in range(J):
        for k in range(K):
            for i in range(d):
                ref[j, k, i, i] -= neg[j]
    _subtract_on_diagonals(C, neg, K, d)
    np.testing.assert_array_equal(C, ref.reshape(J, K * d * d))
