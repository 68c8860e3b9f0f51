"""Every core public function refuses invalid input eagerly, naming the argument, within a time bound.

Structure (shared with ``tests/test_bad_inputs_sampling.py``, which adds its own rows):

* ``BAD`` maps an argument *kind* (probability, time, count, order, array, covariance, key, callable,
  choice, law, ...) to a hypothesis strategy of values that are invalid for every argument of that
  kind (None, strings such as ``'0.5'``, bools, complex, lists where scalars belong, NaN / inf, huge
  integers, negative or fractional counts, batched keys, ...).
* ``REGISTRY`` lists ``Row(name, call, valid, kinds)``: ``call(**kwargs)`` runs the function,
  ``valid`` are keyword arguments that work, ``kinds`` maps each argument to its kind. The
  hypothesis test substitutes one bad value at a time and asserts a ``ValueError``/``TypeError``
  whose message names the argument, within ``TIME_BOUND`` seconds (a hang guard run in a worker
  thread, not a speed assertion).
* A sibling file reuses the machinery: ``from test_bad_inputs import BAD, Row, assert_refused,
  run_bounded``, builds its own rows and parametrises the same test body
  (``value = data.draw(BAD[row.kinds[arg]]); assert_refused(row, arg, value)``); kinds it needs
  beyond ``BAD`` can be added to ``BAD`` (a dict) from that file.
* ``AUDIT`` replays each row of the outside audit that concerns these functions: the call and the
  argument its error must name (or, for extreme-but-valid input, the correct finite value).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hermite_limit as hl

TIME_BOUND = 20.0  # seconds per call: a hang guard (the refusals take microseconds to milliseconds)
nan, inf = float("nan"), float("inf")

# -- invalid values by kind -------------------------------------------------------------------

_common = st.sampled_from([None, "0.5", "x", True, False, 1 + 2j, object(), {"a": 1}])
_non_finite = st.sampled_from([nan, inf, -inf, np.float64(nan)])
_huge_int = st.sampled_from([2**1100, -(2**1100)])
_scalar_bad = st.one_of(_common, _non_finite, _huge_int, st.just([0.5]), st.just(np.array([0.1, 0.2])))

BAD: dict[str, st.SearchStrategy] = {
    # a number in [0, 1]
    "probability": st.one_of(
        _scalar_bad, st.floats(1.0, 1e300, exclude_min=True), st.floats(-1e300, 0.0, exclude_max=True)
    ),
    # a time > 0
    "time": st.one_of(_scalar_bad, st.floats(-1e300, 0.0)),
    # a time >= 0
    "time0": st.one_of(_scalar_bad, st.floats(-1e300, 0.0, exclude_max=True)),
    # OU times >= 0, scalar or array
    "times": st.one_of(
        _common, _non_finite, _huge_int, st.floats(-1e300, 0.0, exclude_max=True),
        st.sampled_from([[0.1, nan], [-1.0], [[0.1, inf]], ["0.1"]]),
    ),
    # a tolerance in (0, 1)
    "tolerance": st.one_of(_scalar_bad, st.floats(-1.0, 0.0), st.floats(1.0, 10.0)),
    # a positive real (scale, power, bandwidth)
    "positive": st.one_of(_scalar_bad, st.floats(-1e300, 0.0)),
    # a count >= 0 that allocates: negatives, fractions, non-integers, sizes beyond the budgets
    "count": st.one_of(
        _common.filter(lambda v: v is not False and v is not True) | st.sampled_from([True, False]),
        st.integers(max_value=-1),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not float(v).is_integer() or True),
        st.sampled_from([2.0, 1.5, np.float64(3.0), [3], 2**63, 2**70, 10**12]),
    ),
    # an order (truncation degree)
    "order": st.one_of(
        _common, st.integers(max_value=-1), st.sampled_from([1.5, 2.0, nan, [3], 2**62, 2**70, 10**7])
    ),
    # a finite real array
    "array": st.one_of(
        st.sampled_from([None, "x", "0.5", [[0.0, "a"]], [1 + 1j], [[nan, 0.0]], [[inf, 1.0]], object()]),
        st.lists(st.floats(allow_nan=True), min_size=1, max_size=3).filter(lambda v: not all(map(math.isfinite, v))),
    ),
    # a symmetric positive (semi-)definite matrix
    "covariance": st.sampled_from(
        [[[1.0, 2.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 1.0]], -np.eye(2), [[nan, 0.0], [0.0, 1.0]], "eye", [1.0, 2.0, 3.0]]
    ),
    # a stack of K = 2 covariances in d = 2 (full, diagonal or isotropic)
    "covs": st.sampled_from(
        [[[[1.0, 2.0], [0.0, 1.0]]] * 2, [-np.eye(2)] * 2, [[[1.0, 2.0], [2.0, 1.0]]] * 2, [[-1.0, 1.0], [1.0, 1.0]],
         [-1.0, 1.0], [nan, 1.0], "eye", None, [1.0, 2.0, 3.0], np.ones((2, 3, 3))]
    ),
    # a single PRNG key
    "key": st.sampled_from(
        [None, "k", 0, 1.5, np.zeros(3), jax.random.split(jax.random.key(0), 3), np.zeros((2, 2), np.uint32)]
    ),
    # a callable i -> t_i or a time
    "schedule": st.sampled_from(
        [None, "0.1", lambda: 0.1, lambda i, j: 0.1, lambda i: "x", lambda i: -1.0 + 0 * i, lambda i: nan + 0 * i, -0.1, nan, [0.1, -0.2], True]
    ),
    # a string out of a fixed set
    "choice": st.sampled_from([None, 1, "nonsense", "", True]),
    # a law (GaussianMixture or a result carrying one)
    "law": st.sampled_from([None, "data", 1.0, object(), {"weights": [1.0]}]),
    # a non-empty integer index set in [0, d)
    "indices": st.sampled_from([None, "0", 1.5, [], [5], [-1], [[0.5, 1.0]], [0.5]]),
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One public callable: ``call(**kwargs)``, working ``valid`` kwargs, and the kind of each argument.

    ``names`` optionally gives, per argument, the words an error message may use for it (default:
    the argument's own name).
    """

    name: str
    call: Callable[..., Any]
    valid: dict
    kinds: dict
    names: dict = dataclasses.field(default_factory=dict)


def _gm1():
    return hl.GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.25, 0.5])


def _gm2():
    return hl.GaussianMixture([0.4, 0.6], [[0.0, 1.0], [2.0, -1.0]], [[[1.0, 0.2], [0.2, 0.5]], [[0.7, 0.0], [0.0, 1.2]]])


GM1, GM2 = _gm1(), _gm2()
COEF = hl.hermite_coefficients(GM1, 4)
KEY = jax.random.key(0)
S = np.eye(2)

REGISTRY: list[Row] = [
    Row("GaussianMixture", lambda weights, means, covs: hl.GaussianMixture(weights, means, covs),
        dict(weights=[0.5, 0.5], means=[[0.0, 0.0], [1.0, 1.0]], covs=[S, S]),
        dict(weights="array", means="array", covs="covs")),
    Row("GaussianMixture.logpdf", lambda x: GM2.logpdf(x), dict(x=[[0.0, 1.0]]), dict(x="array")),
    Row("GaussianMixture.score", lambda x: GM2.score(x), dict(x=[[0.0, 1.0]]), dict(x="array")),
    Row("GaussianMixture.sample", lambda key, n: GM2.sample(key, n), dict(key=KEY, n=5), dict(key="key", n="count")),
    Row("GaussianMixture.marginal", lambda dims: GM2.marginal(dims), dict(dims=[1]), dict(dims="indices")),
    Row("GaussianMixture.project", lambda direction: GM2.project(direction), dict(direction=[1.0, 0.0]), dict(direction="array")),
    Row("GaussianMixture.as_cov_type", lambda cov_type: GM2.as_cov_type(cov_type), dict(cov_type="full"), dict(cov_type="choice")),
    Row("empirical", lambda samples: hl.empirical(samples), dict(samples=[[0.0], [1.0]]), dict(samples="array")),
    Row("mix", lambda alpha, p, q: hl.mix(alpha, p, q), dict(alpha=0.5, p=GM1, q=GM1), dict(alpha="probability", p="law", q="law")),
    Row("standard_normal", lambda dim, cov_type: hl.standard_normal(dim, cov_type), dict(dim=2, cov_type="iso"),
        dict(dim="count", cov_type="choice")),
    Row("ou_push", lambda dist, t: hl.ou_push(dist, t), dict(dist=GM1, t=0.1), dict(dist="law", t="time0")),
    Row("rho_from_time", lambda t: hl.rho_from_time(t), dict(t=0.1), dict(t="times")),
    Row("noise_variance", lambda t: hl.noise_variance(t), dict(t=0.1), dict(t="times")),
    Row("time_from_rho", lambda rho: hl.time_from_rho(rho), dict(rho=0.5), dict(rho="times")),
    Row("time_from_noise_variance", lambda sigma2: hl.time_from_noise_variance(sigma2), dict(sigma2=0.5), dict(sigma2="array")),
    Row("vp_to_ou_time", lambda s, beta_min, beta_max: hl.vp_to_ou_time(s, beta_min, beta_max),
        dict(s=0.5, beta_min=0.1, beta_max=20.0), dict(s="array", beta_min="time0", beta_max="time0")),
    Row("ddpm_linear_betas", lambda n_steps, beta_start, beta_end: hl.ddpm_linear_betas(n_steps, beta_start, beta_end),
        dict(n_steps=10, beta_start=1e-4, beta_end=0.02), dict(n_steps="count", beta_start="probability", beta_end="probability"),
        names=dict(beta_start=("beta_start", "betas"), beta_end=("beta_end", "betas"))),
    Row("ddpm_to_ou_time", lambda betas, step: hl.ddpm_to_ou_time(betas, step), dict(betas=[0.1, 0.2], step=1),
        dict(betas="array", step="order")),
    Row("constant", lambda t0: hl.constant(t0).times(3), dict(t0=0.1), dict(t0="time")),
    Row("harmonic", lambda t0: hl.harmonic(t0).times(3), dict(t0=0.1), dict(t0="time")),
    Row("power_law", lambda t0, power: hl.power_law(t0, power).times(3), dict(t0=0.1, power=1.0), dict(t0="time", power="positive")),
    Row("geometric", lambda t0, ratio: hl.geometric(t0, ratio).times(3), dict(t0=0.1, ratio=0.5), dict(t0="time", ratio="time")),
    Row("Schedule.times", lambda n: hl.harmonic(0.1).times(n), dict(n=3), dict(n="count")),
    Row("schedule_times", lambda schedule, n: hl.schedule_times(schedule, n), dict(schedule=0.1, n=3),
        dict(schedule="schedule", n="count")),
    Row("half_power_order", lambda alpha, t0: hl.half_power_order(alpha, t0), dict(alpha=0.5, t0=0.1),
        dict(alpha="probability", t0="time")),
    Row("limit_distribution", lambda data, alpha, t0, tol: hl.limit_distribution(data, alpha, t0, tol),
        dict(data=GM1, alpha=0.5, t0=0.1, tol=1e-6), dict(data="law", alpha="probability", t0="time", tol="tolerance")),
    Row("generation", lambda data, alpha, schedule, n: hl.generation(data, alpha, schedule, n),
        dict(data=GM1, alpha=0.5, schedule=0.1, n=3), dict(data="law", alpha="probability", schedule="schedule", n="count")),
    Row("generations", lambda data, alpha, schedule, n: hl.generations(data, alpha, schedule, n),
        dict(data=GM1, alpha=0.5, schedule=0.1, n=3), dict(data="law", alpha="probability", schedule="schedule", n="count")),
    Row("attenuation", lambda m, alpha, t0: hl.attenuation(m, alpha, t0), dict(m=[0, 1, 2], alpha=0.5, t0=0.1),
        dict(m="array", alpha="probability", t0="time")),
    Row("contraction_rate", lambda m, alpha, t0: hl.contraction_rate(m, alpha, t0), dict(m=[0, 1, 2], alpha=0.5, t0=0.1),
        dict(m="array", alpha="probability", t0="time")),
    Row("mode_half_life", lambda m, alpha, t0: hl.mode_half_life(m, alpha, t0), dict(m=[0, 1, 2], alpha=0.5, t0=0.1),
        dict(m="array", alpha="probability", t0="time")),
    Row("schedule_attenuation", lambda m, alpha, schedule, n: hl.schedule_attenuation(m, alpha, schedule, n),
        dict(m=[0, 1, 2], alpha=0.5, schedule=0.1, n=3), dict(m="array", alpha="probability", schedule="schedule", n="count")),
    Row("graded_indices", lambda order, dim: hl.graded_indices(order, dim), dict(order=3, dim=2), dict(order="order", dim="count")),
    Row("hermite_polynomials", lambda x, order: hl.hermite_polynomials(x, order), dict(x=[0.5], order=3), dict(x="array", order="order")),
    Row("hermite_products", lambda x, indices: hl.hermite_products(x, indices), dict(x=[[0.5, 1.0]], indices=[[1, 0], [0, 2]]),
        dict(x="array", indices="indices")),
    Row("gauss_hermite", lambda n_nodes: hl.gauss_hermite(n_nodes), dict(n_nodes=5), dict(n_nodes="count")),
    Row("hermite_coefficients", lambda dist, order, method: hl.hermite_coefficients(dist, order, method=method),
        dict(dist=GM1, order=3, method="exact"), dict(dist="law", order="order", method="choice")),
    Row("hermite_coefficients(quadrature)", lambda scale, cov: hl.hermite_coefficients(GM1, 3, method="quadrature", scale=scale, cov=cov),
        dict(scale=1.0, cov=[[1.0]]), dict(scale="positive", cov="covariance")),
    Row("hermite_coefficients(samples)", lambda key, n_samples: hl.hermite_coefficients(GM1, 3, method="samples", key=key, n_samples=n_samples),
        dict(key=KEY, n_samples=100), dict(key="key", n_samples="count")),
    Row("hermite_coefficients(function)", lambda dist: hl.hermite_coefficients(dist, 3, dim=1, method="quadrature"),
        dict(dist=lambda x: -0.5 * x @ x), dict(dist="schedule")),
    Row("energy_spectrum", lambda dist, order, method: hl.energy_spectrum(dist, order, method=method),
        dict(dist=GM1, order=3, method="exact"), dict(dist="law", order="order", method="choice")),
    Row("ou_push_coefficients", lambda coeffs, t: hl.ou_push_coefficients(coeffs, t), dict(coeffs=COEF, t=0.1),
        dict(coeffs="law", t="time0")),
    Row("HermiteCoefficients.coefficient", lambda n: COEF.coefficient(n), dict(n=2), dict(n="indices")),
    Row("HermiteCoefficients.density_ratio", lambda x: COEF.density_ratio(x), dict(x=[0.5]), dict(x="array")),
    Row("HermiteCoefficients.ou_push", lambda t: COEF.ou_push(t), dict(t=0.1), dict(t="time0")),
    *[
        Row(f.__name__, (lambda f: lambda m0, S0, m1, S1: f(m0, S0, m1, S1))(f), dict(m0=[0.0, 0.0], S0=S, m1=[1.0, 0.0], S1=2 * S),
            dict(m0="array", S0="covariance", m1="array", S1="covariance"))
        for f in (hl.gaussian_kl, hl.gaussian_w2, hl.gaussian_chi2)
    ],
    *[
        Row(f.__name__, (lambda f: lambda p, q, n_panels: f(p, q, n_panels=n_panels))(f), dict(p=GM1, q=hl.ou_push(GM1, 0.3), n_panels=16),
            dict(p="law", q="law", n_panels="count"))
        for f in (hl.kl_divergence, hl.chi2_divergence, hl.tv_distance)
    ],
]

# valid-only "bad" values: a count 0 is fine where zero items are allowed, etc. Keys are (row, arg).
_ALLOWED = {
    ("GaussianMixture.sample", "n"): lambda v: _is_int(v) and 0 <= v,
    ("Schedule.times", "n"): lambda v: _is_int(v) and 0 <= v,
    ("schedule_times", "n"): lambda v: _is_int(v) and 0 <= v,
    ("generation", "n"): lambda v: _is_int(v) and 0 <= v,
    ("generations", "n"): lambda v: _is_int(v) and 0 <= v,
    ("schedule_attenuation", "n"): lambda v: _is_int(v) and 0 <= v,
    **{(f.__name__, "n_panels"): (lambda v: v is None) for f in (hl.kl_divergence, hl.chi2_divergence, hl.tv_distance)},
    ("mix", "alpha"): lambda v: False,
    ("schedule_times", "schedule"): lambda v: isinstance(v, list) and False,
    ("geometric", "ratio"): lambda v: False,
}


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(v) < 2**40


def run_bounded(fn):
    """Run ``fn`` in a worker thread; fail if it does not finish within TIME_BOUND (a hang guard)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn).result(timeout=TIME_BOUND)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"call did not finish within {TIME_BOUND} s")
    finally:
        pool.shutdown(wait=False)


def _names(row: Row, arg: str) -> tuple[str, ...]:
    names = row.names.get(arg, arg)
    return (names,) if isinstance(names, str) else tuple(names)


def assert_refused(row: Row, arg: str, value):
    kwargs = dict(row.valid, **{arg: value})

    def call():
        try:
            row.call(**kwargs)
        except (ValueError, TypeError) as exc:
            return exc
        return None

    exc = run_bounded(call)
    allowed = _ALLOWED.get((row.name, arg))
    if exc is None:
        assert allowed is not None and allowed(value), f"{row.name}({arg}={value!r}) was accepted"
        return
    msg = str(exc)
    assert any(re.search(rf"\b{re.escape(n)}\b", msg) for n in _names(row, arg)), (
        f"{row.name}({arg}={value!r}) raised {type(exc).__name__} not naming {arg!r}: {msg}"
    )
    assert "np.float64(" not in msg and "np.int64(" not in msg, msg


_CASES = [(row, arg) for row in REGISTRY for arg in row.kinds]


@pytest.mark.parametrize("row,arg", _CASES, ids=[f"{r.name}-{a}" for r, a in _CASES])
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_invalid_input_is_refused_naming_the_argument(row, arg, data):
    value = data.draw(BAD[row.kinds[arg]], label=arg)
    assert_refused(row, arg, value)


@pytest.mark.parametrize("row", REGISTRY, ids=[r.name for r in REGISTRY])
def test_valid_row_runs(row):
    """The registry's valid arguments work (else every refusal above would be meaningless)."""
    out = run_bounded(lambda: row.call(**row.valid))
    leaves = [np.asarray(v) for v in jax.tree.leaves(out) if isinstance(v, (np.ndarray, jax.Array, float))]
    assert all(np.all(np.isfinite(v)) for v in leaves if v.dtype.kind == "f")


# -- finite valid input gives finite output -----------------------------------------------------

_reals = st.floats(-1e6, 1e6)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    x=st.lists(st.floats(-1e140, 1e140), min_size=1, max_size=4),
    t=st.floats(0.0, 1e300),
    alpha=st.floats(0.0, 1.0),
    t0=st.floats(1e-300, 1e300),
)
def test_finite_valid_input_gives_finite_output(x, t, alpha, t0):
    pts = np.asarray(x)
    for out in (GM1.logpdf(pts), GM1.score(pts), GM2.logpdf(np.stack([pts, pts[::-1]], -1)), GM2.score(np.stack([pts, -pts], -1))):
        assert np.all(np.isfinite(np.asarray(out)))
    for out in (hl.rho_from_time(t), hl.noise_variance(t), hl.attenuation([0, 1, 5], alpha, t0),
                hl.contraction_rate([0, 1, 5], alpha, t0), hl.half_power_order(alpha, t0)):
        assert np.all(np.isfinite(np.asarray(out)))
    pushed = hl.ou_push(GM2, t)
    assert np.all(np.isfinite(np.asarray(pushed.means))) and np.all(np.isfinite(np.asarray(pushed.covs)))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(shift=st.floats(-1e200, 1e200), var=st.floats(1e-100, 1e100))
def test_gaussian_closed_forms_far_apart(shift, var):
    """W2 is exact for any finite means; KL and chi2 are either finite or refused naming the limit."""
    m0, m1 = np.array([shift, 0.0]), np.array([0.0, 0.0])
    S0, S1 = var * np.eye(2), 2 * var * np.eye(2)
    w2 = hl.gaussian_w2(m0, S0, m1, S1)
    bures = 2 * var * (3 - 2 * math.sqrt(2))  # tr(S0 + S1 - 2 (S0^1/2 S1 S0^1/2)^1/2) for commuting S
    np.testing.assert_allclose(w2, math.hypot(abs(shift), math.sqrt(bures)), rtol=1e-12)
    for f in (hl.gaussian_kl, hl.gaussian_chi2):
        try:
            value = f(m0, S0, m1, S1)
        except ValueError as exc:
            assert "float64" in str(exc) and "m0" in str(exc)
        else:
            assert math.isfinite(value) and value >= 0


# -- the outside audit's rows for these functions -------------------------------------------------

EMP1 = hl.empirical([[0.0], [1.0]])
GM5 = hl.GaussianMixture(np.ones(5) / 5, np.arange(5.0)[:, None], np.ones(5))

# (call, argument its error must name)
AUDIT = [
    ("gm1.logpdf([1e300])", "x"),
    ("gm2.logpdf([[1e200, 0.0]])", "x"),
    ("gm1.score([1e300])", "x"),
    ("gm2.score([[1e200, 0.0]])", "x"),
    ("gm2.project([1e200, 1e200])", "direction"),
    ("hl.rho_from_time(nan)", "t"),
    ("hl.rho_from_time(inf)", "t"),
    ("hl.rho_from_time(-1.0)", "t"),
    ("hl.rho_from_time(None)", "t"),
    ("hl.rho_from_time([0.1, nan])", "t"),
    ("hl.noise_variance(nan)", "t"),
    ("hl.noise_variance(inf)", "t"),
    ("hl.noise_variance(-1.0)", "t"),
    ("hl.noise_variance(None)", "t"),
    ("hl.noise_variance([0.1, nan])", "t"),
    ("hl.half_power_order(-0.1, 0.1)", "alpha"),
    ("hl.half_power_order(1.5, 0.1)", "alpha"),
    ("hl.hermite_coefficients(gm1, 4, method='quadrature', scale=1.0, n_nodes=None, seed=0, mean=None, cov=[[-1.0]])", "cov"),
    ("hl.gaussian_kl([1e200, 0.0], np.eye(2), [1.0, 0.0], 2 * np.eye(2))", "m0"),
    ("hl.gaussian_w2([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]], [1.0, 0.0], 2 * np.eye(2))", "S0"),
    ("hl.gaussian_w2([0.0, 0.0], -np.eye(2), [1.0, 0.0], 2 * np.eye(2))", "S0"),
    ("hl.gaussian_w2([0.0, 0.0], np.eye(2), [1.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])", "S1"),
    ("hl.gaussian_chi2([1e200, 0.0], np.eye(2), [1.0, 0.0], 2 * np.eye(2))", "m0"),
    # class d
    ("hl.standard_normal(10**9, 'iso')", "dim"),
    ("hl.ddpm_linear_betas(10**9, 1e-4, 0.02)", "n_steps"),
    ("hl.schedule_times(0.1, 10**9)", "n"),
    ("hl.harmonic(0.1).times(10**9)", "n"),
    ("hl.generation(gm1, 0.5, 0.1, n=10**9, init=None, scheme='fresh')", "n"),
    ("hl.generations(gm1, 0.5, 0.1, 10**9)", "n"),
    ("hl.generations(gm1, 0.5, 0.1, 2**63)", "n"),
    ("hl.schedule_attenuation([0, 1, 2], 0.5, 0.1, 10**9)", "n"),
    ("hl.graded_indices(10**6, 2)", "order"),
    ("hl.graded_indices(10**9, 2)", "order"),
    ("hl.graded_indices(2**70, 2)", "order"),
    ("hl.graded_indices(3, 10**9)", "dim"),
    ("hl.hermite_products([[0.5, 1.0]], [[2**62, 0]])", "indices"),
    ("hl.hermite_coefficients(gm1, 3, method='samples', key=key, n_samples=10**9)", "n_samples"),
    # class b
    ("gm1.sample(None, 10)", "key"),
    ("gm1.sample('k', 10)", "key"),
    ("gm1.sample(jax.random.split(key, 3), 10)", "key"),
    ("gm1.sample(key, 10**9)", "n"),
    ("gm1.sample(key, 2**63)", "n"),
    ("hl.empirical(np.zeros((3, 0)), None)", "samples"),
    ("hl.mix(2**1100, gm1, emp1)", "alpha"),
    ("hl.ou_push(gm1, 2**1100)", "t"),
    ("hl.ddpm_linear_betas(2**63, 1e-4, 0.02)", "n_steps"),
    ("hl.constant(2**1100).times(3)", "t0"),
    ("hl.harmonic(2**1100).times(3)", "t0"),
    ("hl.harmonic('0.1').times(3)", "t0"),
    ("hl.power_law(2**1100, 1.0).times(3)", "t0"),
    ("hl.power_law(0.1, 1e300).times(3)", "power"),
    ("hl.geometric(2**1100, 0.5).times(3)", "t0"),
    ("hl.geometric(0.1, 1e-300).times(3)", "ratio"),
    ("hl.schedule_times(lambda i: 'x', 3)", "schedule"),
    ("hl.schedule_times(lambda: 0.1, 3)", "schedule"),
    ("hl.schedule_times(0.1, 2**63)", "n"),
    ("hl.limit_distribution(gm1, alpha=2**1100, t0=0.1, tol=1e-12)", "alpha"),
    ("hl.limit_distribution(gm1, alpha=0.5, t0=2**1100, tol=1e-12)", "t0"),
    ("hl.generation(gm1, 2**1100, 0.1, n=3, init=None, scheme='fresh')", "alpha"),
    ("hl.generation(gm1, 0.5, lambda i: 'x', n=3, init=None, scheme='fresh')", "schedule"),
    ("hl.generation(gm1, 0.5, lambda: 0.1, n=3, init=None, scheme='fresh')", "schedule"),
    ("hl.generation(gm1, 0.5, 0.1, n=2**63, init=None, scheme='fresh')", "n"),
    ("hl.generations(gm1, 0.5, lambda i: 'x', 3)", "schedule"),
    ("hl.attenuation([0, 1, 2], 2**1100, 0.1)", "alpha"),
    ("hl.attenuation([0, 1, 2], 0.5, 2**1100)", "t0"),
    ("hl.contraction_rate([0, 1, 2], 2**1100, 0.1)", "alpha"),
    ("hl.contraction_rate([0, 1, 2], 0.5, 2**1100)", "t0"),
    ("hl.mode_half_life([0, 1, 2], 2**1100, 0.1)", "alpha"),
    ("hl.mode_half_life([0, 1, 2], 0.5, 2**1100)", "t0"),
    ("hl.schedule_attenuation([0, 1, 2], 0.5, lambda i: 'x', 3)", "schedule"),
    ("hl.schedule_attenuation([0, 1, 2], 0.5, lambda: 0.1, 3)", "schedule"),
    ("hl.schedule_attenuation([0, 1, 2], 0.5, 0.1, 2**63)", "n"),
    ("hl.half_power_order(2**1100, 0.1)", "alpha"),
    ("hl.half_power_order(0.5, 2**1100)", "t0"),
    ("hl.graded_indices(-1, 2)", "order"),
    ("hl.graded_indices(1.5, 2)", "order"),
    ("hl.graded_indices('3', 2)", "order"),
    ("hl.graded_indices(None, 2)", "order"),
    ("hl.graded_indices(nan, 2)", "order"),
    ("hl.graded_indices(True, 2)", "order"),
    ("hl.graded_indices([3], 2)", "order"),
    ("hl.graded_indices(3, 0)", "dim"),
    ("hl.graded_indices(3, 1.5)", "dim"),
    ("hl.graded_indices(3, '3')", "dim"),
    ("hl.graded_indices(3, None)", "dim"),
    ("hl.graded_indices(3, nan)", "dim"),
    ("hl.graded_indices(3, inf)", "dim"),
    ("hl.graded_indices(3, [3])", "dim"),
    ("hl.graded_indices(3, True)", "dim"),
    ("hl.graded_indices(3, 3+0j)", "dim"),
    ("hl.hermite_coefficients(gm1, 4, method='quadrature', scale=1e300, n_nodes=None, seed=0, mean=None, cov=None)", "scale"),
    ("hl.hermite_coefficients(lambda x: jnp.nan * x[0], 3, dim=1, method='quadrature', log2_points=12, n_random=16)", "dist"),
    ("hl.hermite_coefficients(lambda x: 'x', 3, dim=1, method='quadrature', log2_points=12, n_random=16)", "dist"),
    ("hl.hermite_coefficients(lambda x, y: 0.0, 3, dim=1, method='quadrature', log2_points=12, n_random=16)", "dist"),
    ("hl.hermite_coefficients(lambda x: x, 3, dim=1, method='quadrature', log2_points=12, n_random=16)", "dist"),
    ("hl.hermite_coefficients(gm1, 3, method='samples', key='k', n_samples=100)", "key"),
    ("hl.hermite_coefficients(gm1, 3, method='samples', key=jax.random.split(key, 3), n_samples=100)", "key"),
    ("hl.hermite_coefficients(gm1, 3, method='samples', key=key, n_samples=2**63)", "n_samples"),
    ("hl.ou_push_coefficients(coef1, 2**1100)", "t"),
    ("coef1.coefficient('x')", "n"),
    ("coef1.coefficient(1.5)", "n"),
]

# Extreme-but-valid audit rows that now compute the correct value: (call, reference)
AUDIT_VALUES = [
    # W2 between Gaussians 1e200 apart: the mean distance dominates; exact in float64
    ("hl.gaussian_w2([1e200, 0.0], np.eye(2), [1.0, 0.0], 2 * np.eye(2))", 1e200),
    # chi2 diverges (2 S0^-1 - S1^-1 is not positive definite): +inf is the exact value, documented
    ("hl.gaussian_chi2([0.0, 0.0], np.eye(2), [1.0, 0.0], [[1e-300, 0.0], [0.0, 1.0]])", math.inf),
    # energy_spectrum's block is a memory knob: a block larger than the data is capped, not an error
    ("float(hl.energy_spectrum(gm5, 4, method='auto', block=10**9).energies[1])", float(np.mean(np.arange(5.0)) ** 2)),
]


def _env():
    return dict(hl=hl, np=np, jax=jax, jnp=jnp, nan=nan, inf=inf, key=KEY, gm1=_gm1(), gm2=_gm2(), emp1=EMP1, gm5=GM5, coef1=COEF)


@pytest.mark.parametrize("call,arg", AUDIT, ids=[c for c, _ in AUDIT])
def test_audit_row_is_refused_naming_the_argument(call, arg):
    def run():
        try:
            eval(call, _env())
        except (ValueError, TypeError) as exc:
            return exc
        return None

    exc = run_bounded(run)
    assert exc is not None, f"{call} was accepted"
    assert re.search(rf"\b{re.escape(arg)}\b", str(exc)), str(exc)
    assert "np.float64(" not in str(exc)


@pytest.mark.parametrize("call,expected", AUDIT_VALUES, ids=[c for c, _ in AUDIT_VALUES])
def test_audit_row_extreme_but_valid_value(call, expected):
    value = run_bounded(lambda: eval(call, _env()))
    if math.isinf(expected):
        assert value == expected
    else:
        np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_kde_bandwidth_beyond_the_limit_is_refused_by_name():
    with pytest.raises(ValueError, match=r"kde_bandwidth must lie in \(0, 1e\+100\]"):
        hl.limit_distribution(_gm1(), None, 0.1, synthetic_fraction=0.5, kde_bandwidth=1e300)
