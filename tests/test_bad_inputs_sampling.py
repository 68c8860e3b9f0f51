"""Bad and extreme inputs of ``hermite_limit.sampling``, ``hermite_limit.forecast`` and ``hermite_limit.trajectory``.

Three parts:

- every row of the outside audit (issue 17, item 5) for these functions, replayed: each raises a
  ``ValueError`` / ``TypeError`` naming the argument, within a time guard (a hang guard, not a speed test);
- hypothesis drives each public function with one invalid argument at a time (the rest valid) and asserts
  the same, again within the time guard;
- finite valid inputs give finite results, checked against independent references where one is cheap
  (the exact score of ``hl.ou_push(q, t)``, the closed-form ideal Gaussian output, the error formula).

The samplers compile once per shape (seconds on a CPU): the valid-input sampler check uses one shape only.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hermite_limit as hl
from hermite_limit import forecast as hlf
from hermite_limit import trajectory as hlt
from hermite_limit.forecast import data_energies, family_times, relative_spectral_error
from hermite_limit.sampling import fit_gmm, time_grid

GUARD_SECONDS = 20.0  # a refusal must come at once; this only catches hangs
nan, inf = float("nan"), float("inf")

GM1 = hl.GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.25, 0.5])
GM2 = hl.GaussianMixture([0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], [0.5, 1.0])
EMP1 = hl.empirical(np.array([[0.0], [1.0], [2.0]]))
KEY = jax.random.key(0)
SE1 = hl.score_error("aligned", GM1, 0.1, t0=0.02, T=1.0)


@contextlib.contextmanager
def time_guard(seconds: float = GUARD_SECONDS):
    """Fail (TimeoutError) if the block runs longer than ``seconds`` (SIGALRM; main thread, Unix)."""

    def alarm(signum, frame):
        raise TimeoutError(f"call still running after {seconds} s (hang guard)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


def assert_refused(call, name: str):
    """``call()`` raises ValueError/TypeError whose message names ``name`` (as a word), within the guard."""
    with time_guard():
        with pytest.raises((ValueError, TypeError)) as info:
            call()
    message = str(info.value)
    assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message), (name, message)
    assert "Traceback" not in message
    return message


# -- 1. the audit's rows ------------------------------------------------------------------------

AUDIT_ROWS = [
    # class c: silent NaN / wrong value
    ("c score x nan", lambda: hl.mixture_score(GM1)([[nan]], 0.5), "x"),
    ("c score t nan", lambda: hl.mixture_score(GM1)([[0.0]], nan), "t"),
    ("c score t negative", lambda: hl.mixture_score(GM1)([[0.0]], -1.0), "t"),
    ("c score t=0 point masses", lambda: hl.mixture_score(EMP1)([[0.0]], 0), "t"),
    ("c path_energy n=1", lambda: hl.path_energy(KEY, GM1, SE1, 1, t0=0.02, T=1.0, n_steps=10, method="em",
                                                 process="learned"), "n"),
    ("c observability n=2", lambda: hl.observability(KEY, GM1, SE1, 2, t0=0.02, T=1.0, n_steps=10, degree=2,
                                                     n_boot=20), "n"),
    ("c observability n=3", lambda: hl.observability(KEY, GM1, SE1, 3, t0=0.02, T=1.0, n_steps=10, degree=2,
                                                     n_boot=20), "n"),
    *[(f"c observability n_boot={nb}", (lambda nb=nb: hl.observability(KEY, GM1, SE1, 64, t0=0.02, T=1.0, n_steps=10,
                                                                      degree=2, n_boot=nb)), "n_boot")
      for nb in (0, -1, 1)],
    *[(f"c gaussian rtol={rt}", (lambda rt=rt: hl.gaussian_output_moments([0.5], [[1.0]], t0=0.02, T=2.0, A=None,
                                                                         b=None, init="exact", rtol=rt, atol=1e-13)),
       "rtol") for rt in (0, -1)],
    ("c fokker degenerate box", lambda: hl.fokker_planck_output(GM1, 0.1, T=1.0, score_error=None, init="exact",
                                                                n_grid=40, n_steps=20, box=[(0.0, 1e-300)]), "box"),
    # class d: hang / memory
    ("d reverse n_steps=1e9", lambda: hl.reverse_sample(KEY, GM1, 16, t0=0.1, T=1.0, n_steps=10**9, method="em",
                                                        grid="uniform", init="exact", backend="scan",
                                                        brownian="unsafe", score=None, score_error=None), "n_steps"),
    ("d gaussian A nan", lambda: hl.gaussian_output_moments([0.5], [[1.0]], t0=0.02, T=2.0, A=lambda t: np.nan, b=None,
                                                            init="exact", rtol=1e-11, atol=1e-13), "A"),
    ("d gaussian rtol nan", lambda: hl.gaussian_output_moments([0.5], [[1.0]], t0=0.02, T=2.0, A=None, b=None,
                                                               init="exact", rtol=nan, atol=1e-13), "rtol"),
    ("d gaussian atol nan", lambda: hl.gaussian_output_moments([0.5], [[1.0]], t0=0.02, T=2.0, A=None, b=None,
                                                               init="exact", rtol=1e-11, atol=nan), "atol"),
    ("d fokker n_grid=1e7", lambda: hl.fokker_planck_output(GM1, 0.1, T=1.0, score_error=None, init="exact",
                                                            n_grid=10**7, n_steps=20, box=None), "n_grid"),
    ("d fokker n_steps=1e8", lambda: hl.fokker_planck_output(GM1, 0.1, T=1.0, score_error=None, init="exact",
                                                             n_grid=40, n_steps=10**8, box=None), "n_steps"),
    ("d forecast generations=1e9", lambda: hlf.forecast(GM1, 0.5, 0.1, 10**9, 0.05, order=4, n_pcs=1), "generations"),
    ("d trajectory n=1e9", lambda: hlt.trajectory(GM1, 0.5, 0.1, 10**9), "n"),
    # class b: wrong exception / unhelpful message
    ("b reverse key None", lambda: hl.reverse_sample(None, GM1, 16, t0=0.1, T=1.0, n_steps=10), "key"),
    ("b reverse key str", lambda: hl.reverse_sample("k", GM1, 16, t0=0.1, T=1.0, n_steps=10), "key"),
    ("b reverse key batch", lambda: hl.reverse_sample(jax.random.split(KEY, 3), GM1, 16, t0=0.1, T=1.0, n_steps=10),
     "key"),
    ("b reverse n=1e9", lambda: hl.reverse_sample(KEY, GM1, 10**9, t0=0.1, T=1.0, n_steps=10), "n"),
    ("b reverse n=2**63", lambda: hl.reverse_sample(KEY, GM1, 2**63, t0=0.1, T=1.0, n_steps=10), "n"),
    ("b reverse t0=2**1100", lambda: hl.reverse_sample(KEY, GM1, 16, t0=2**1100, T=1.0, n_steps=10), "t0"),
    ("b reverse n_steps=2**63", lambda: hl.reverse_sample(KEY, GM1, 16, t0=0.1, T=1.0, n_steps=2**63), "n_steps"),
]


@pytest.mark.parametrize("call,name", [row[1:] for row in AUDIT_ROWS], ids=[row[0] for row in AUDIT_ROWS])
def test_audit_rows_are_refused_naming_the_argument(call, name):
    assert_refused(call, name)


def test_audit_limits_are_stated():
    """Size refusals say which limit was hit (memory budget, step or component limits)."""
    assert "memory budget" in assert_refused(lambda: hl.reverse_sample(KEY, GM1, 10**9, t0=0.1, n_steps=10), "n")
    assert "10,000,000" in assert_refused(lambda: hl.reverse_sample(KEY, GM1, 16, t0=0.1, n_steps=10**8), "n_steps")
    assert "cells" in assert_refused(lambda: hl.fokker_planck_output(GM1, 0.1, n_grid=10**7), "n_grid")
    assert "16,777,216" in assert_refused(lambda: hlt.trajectory(GM1, 0.5, 0.1, 10**9), "n")
    assert "work budget" in assert_refused(
        lambda: hl.observability(KEY, GM1, SE1, 64, t0=0.02, T=1.0, n_steps=10, n_boot=10**9), "n_boot")


# -- 2. hypothesis: one invalid argument at a time -------------------------------------------------

TIMES = [None, "0.5", "x", nan, inf, -inf, -1.0, 0.0, True, 1j, [0.1, 0.2], 2**1100]
COUNTS = [None, "3", 1.5, 2.0, nan, -1, 0, True, [3], 2**63, 10**12, 1j]
CHOICES = ["nope", None, 3, ["em"]]
KEYS = [None, "k", 0, 1.5, jax.random.split(KEY, 3), np.zeros(3)]
TOLS = [0, 0.0, -1.0, nan, inf, "1e-8", None, 2.0, True]
FIELDS = [3, "f", lambda: 0.0, lambda x: x, lambda x, t: jnp.nan * x, lambda x, t: x[:, :0], lambda x, t: "s"]
NOT_LAWS = [None, 3, "q", np.zeros((2, 1))]

# function -> (call(**kwargs), valid kwargs, {argument: invalid values})
SPECS = {
    "mixture_score": (
        lambda x, t: hl.mixture_score(GM1)(x, t),
        dict(x=[[0.0]], t=0.5),
        {"x": [[[nan]], [[inf]], "x", None, [[0.0, 1.0]], np.zeros((2, 2, 1)), [[1e300]]],
         "t": [t for t in TIMES if t != 0.0]},
    ),
    "mixture_score(point masses)": (
        lambda x, t: hl.mixture_score(EMP1)(x, t),
        dict(x=[[0.5]], t=0.5),
        {"t": TIMES},
    ),
    "ScoreError": (
        lambda x, t: SE1(x, t),
        dict(x=[[0.0]], t=0.5),
        {"x": [[[nan]], "x", None, [[0.0, 1.0]]], "t": [t for t in TIMES if t != 0.0]},
    ),
    "reverse_sample": (
        lambda **kw: hl.reverse_sample(kw.pop("key"), kw.pop("q"), kw.pop("n"), **kw),
        dict(key=KEY, q=GM1, n=16, t0=0.1, T=1.0, n_steps=10),
        {"key": KEYS, "q": NOT_LAWS, "n": COUNTS, "t0": TIMES, "T": TIMES, "n_steps": COUNTS,
         "method": CHOICES, "grid": CHOICES, "init": CHOICES, "backend": CHOICES, "brownian": CHOICES,
         "score": FIELDS, "score_error": FIELDS},
    ),
    "time_grid": (
        lambda **kw: time_grid(**kw),
        dict(t0=0.1, T=1.0, n_steps=10),
        {"t0": TIMES, "T": TIMES, "n_steps": COUNTS, "grid": CHOICES},
    ),
    "score_error": (
        lambda **kw: hl.score_error(kw.pop("kind"), kw.pop("q"), kw.pop("eps"), **kw),
        dict(kind="random", q=GM1, eps=0.1, t0=0.02, T=1.0, key=KEY),
        {"kind": CHOICES, "q": NOT_LAWS, "eps": [None, "0.1", nan, inf, -1.0, 1j, 2**1100], "t0": TIMES, "T": TIMES,
         "key": [k for k in KEYS if k is not None] + [None]},
    ),
    "path_energy": (
        lambda **kw: hl.path_energy(kw.pop("key"), kw.pop("q"), kw.pop("error"), kw.pop("n"), **kw),
        dict(key=KEY, q=GM1, error=SE1, n=16, t0=0.02, T=1.0, n_steps=10),
        {"key": KEYS, "q": NOT_LAWS, "error": FIELDS + [None], "n": COUNTS + [1], "t0": TIMES, "T": TIMES,
         "n_steps": COUNTS, "method": CHOICES + ["ode"], "grid": CHOICES, "init": CHOICES, "process": CHOICES},
    ),
    "observability": (
        lambda **kw: hl.observability(kw.pop("key"), kw.pop("q"), kw.pop("error"), kw.pop("n"), **kw),
        dict(key=KEY, q=GM1, error=SE1, n=64, t0=0.02, T=1.0, n_steps=10, degree=2, n_boot=20),
        {"key": KEYS, "q": NOT_LAWS, "error": FIELDS, "n": COUNTS + [1, 2, 3, 7], "t0": TIMES, "T": TIMES,
         "n_steps": COUNTS, "degree": COUNTS + [10**6], "n_boot": COUNTS + [1, 10**9], "grid": CHOICES,
         "init": CHOICES},
    ),
    "gaussian_output_moments": (
        lambda **kw: hl.gaussian_output_moments(kw.pop("mean"), kw.pop("cov"), **kw),
        dict(mean=[0.5], cov=[[1.0]], t0=0.02, T=2.0, A=[[0.1]]),
        {"mean": [None, "x", [nan], [[0.5]], []], "cov": [None, [[-1.0]], [[nan]], [[1.0, 0.0]], [[0.0]]],
         "t0": TIMES, "T": TIMES, "init": CHOICES, "rtol": TOLS, "atol": TOLS,
         "A": [np.eye(2), [[nan]], "A", lambda t: np.nan, lambda t: np.eye(2), lambda: 1.0, lambda t: "x",
               lambda t: 1.0 if t > 1.0 else np.inf, [[1e200]]],
         "b": [[nan, 0.0], [nan], lambda t: [np.nan], [1e300]]},
    ),
    "fokker_planck_output": (
        lambda **kw: hl.fokker_planck_output(kw.pop("q"), kw.pop("t0"), **kw),
        dict(q=GM1, t0=0.1, T=1.0, n_grid=40, n_steps=20),
        {"q": NOT_LAWS + [hl.GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [1.0])], "t0": TIMES, "T": TIMES,
         # None is valid here (the default resolution)
         "n_grid": COUNTS[1:] + [2, 7, 10**7], "n_steps": COUNTS[1:] + [2, 7, 10**8], "init": CHOICES,
         "score_error": FIELDS,
         "box": ["wide", [(1.0, -1.0)], [(0.0, 1e-300)], [(nan, 1.0)], [(-1e300, 1e300)], [(50.0, 60.0)],
                 [(0.0, 1.0), (0.0, 1.0)], [(0.0,)]]},
    ),
    "fit_gmm": (
        lambda **kw: fit_gmm(**kw),
        dict(x=np.linspace(-2.0, 2.0, 20)[:, None], init=GM1, n_iter=3),
        {"x": [None, "x", np.full((3, 1), nan), np.zeros((3, 2)), np.zeros((0, 1)), np.zeros(3)],
         "init": NOT_LAWS, "n_iter": [c for c in COUNTS if c not in (0, 2**63, 10**12)],
         "reg": [None, "1e-6", nan, -1.0, 0.0]},
    ),
    "forecast": (
        lambda **kw: hlf.forecast(kw.pop("data"), kw.pop("alpha"), kw.pop("t0"), kw.pop("generations"),
                                  kw.pop("budget"), **kw),
        dict(data=GM1, alpha=0.5, t0=0.1, generations=3, budget=0.1, order=4, n_pcs=1),
        {"data": [None, "x", [[nan]]], "alpha": [None, "0.5", nan, -0.1, 1.5, 2**1100], "t0": TIMES,
         "generations": COUNTS + [10**9], "budget": [None, "0.1", nan, 0.0, 2.0, -1.0],
         "order": COUNTS + [10**9], "n_pcs": [c for c in COUNTS if c not in (2**63, 10**12)]},  # clipped to d
    ),
    "family_times": (
        lambda **kw: family_times(**kw),
        dict(family="geometric", t0=0.1, parameter=0.9, n=5),
        {"family": CHOICES, "t0": TIMES, "parameter": [None, "0.9", nan, 0.0, 1.5, -1.0],
         "n": [c for c in COUNTS if c != 0]},
    ),
    "relative_spectral_error": (
        lambda **kw: relative_spectral_error(**kw),
        dict(factors=[1.0, 0.5, 0.2], energies=[1.0, 0.3, 0.1]),
        {"factors": [None, "x", [1.0, nan], [[1.0, 0.5, 0.2]]], "energies": [None, [1.0, nan, 0.1], [1.0, -1.0, 0.1]]},
    ),
    "data_energies": (
        lambda **kw: data_energies(**kw),
        dict(data=GM1, order=3),
        {"data": NOT_LAWS, "order": [c for c in COUNTS if c != 0] + [10**9]},
    ),
    "trajectory": (
        lambda **kw: hlt.trajectory(kw.pop("data"), kw.pop("alpha"), kw.pop("schedule"), kw.pop("n"), **kw),
        dict(data=GM1, alpha=0.5, schedule=0.1, n=2),
        {"data": NOT_LAWS, "alpha": [None, "0.5", nan, -0.1, 1.5], "n": [c for c in COUNTS if c != 0] + [10**9],
         "init": [3, "x", GM2]},
    ),
}


def _invalid_calls():
    for fname, (call, valid, bad) in SPECS.items():
        for arg, values in bad.items():
            for value in values:
                yield fname, arg, value


INVALID = list(_invalid_calls())


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.sampled_from(range(len(INVALID))))
def test_hypothesis_invalid_argument_is_refused_naming_it(i):
    fname, arg, value = INVALID[i]
    call, valid, _ = SPECS[fname]
    kwargs = dict(valid, **{arg: value})
    assert_refused(lambda: call(**kwargs), arg)


def test_every_listed_invalid_input_is_refused():
    """The whole table once (hypothesis samples it; this sweeps it), each call within the guard."""
    for fname, arg, value in INVALID:
        call, valid, _ = SPECS[fname]
        kwargs = dict(valid, **{arg: value})
        try:
            assert_refused(lambda: call(**kwargs), arg)
        except (AssertionError, pytest.fail.Exception) as exc:  # report which entry failed
            raise AssertionError(f"{fname}({arg}={value!r}): {exc}") from None


def test_every_public_sampling_name_is_covered():
    import hermite_limit.sampling as sampling

    public = {n for n in dir(sampling) if not n.startswith("_") and callable(getattr(sampling, n))}
    results = {"ReverseSample", "MCEstimate", "Observability", "GaussianOutput", "FokkerPlanckOutput",
               "RetrainRecords", "RetrainResult"}  # result containers, built by the functions
    # validated in their own module's tests (retrain and the learners' settings: tests/test_learned.py)
    owned_elsewhere = {"retrain", "Learner", "LearnedScore", "TrainingSet", "ExactScore", "ParticleScore", "RefitScore",
                       "KDEScore", "NeuralScore", "NeuralScoreFunction"}
    covered = {"mixture_score", "MixtureScore", "ScoreError", "reverse_sample", "time_grid", "score_error",
               "path_energy", "observability", "gaussian_output_moments", "fokker_planck_output", "fit_gmm"}
    assert public - results - owned_elsewhere <= covered, public - results - owned_elsewhere - covered


# -- 3. finite valid input gives finite (and correct) output --------------------------------------


@st.composite
def mixtures(draw, d=None):
    d = draw(st.sampled_from([1, 2])) if d is None else d
    K = draw(st.integers(1, 3))
    w = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=K, max_size=K)))
    means = np.array(draw(st.lists(st.floats(-5.0, 5.0), min_size=K * d, max_size=K * d))).reshape(K, d)
    covs = np.array(draw(st.lists(st.floats(0.0, 3.0), min_size=K, max_size=K)))
    return hl.GaussianMixture(w / w.sum(), means, covs)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(mixtures(), st.floats(1e-6, 50.0), st.floats(-1e3, 1e3))
def test_score_of_valid_input_is_finite_and_exact(q, t, shift):
    """Against ``hl.ou_push(q, t).score`` (the law's own score: a separate implementation)."""
    x = np.stack([np.full(q.dim, shift), np.linspace(-3.0, 3.0, q.dim)])
    with time_guard():
        s = np.asarray(hl.mixture_score(q)(x, t))
    assert np.all(np.isfinite(s))
    ref = np.asarray(hl.ou_push(q, t).score(x))
    np.testing.assert_allclose(s, ref, rtol=1e-6, atol=1e-6 * (1.0 + np.abs(ref).max()))


@settings(max_examples=15, deadline=None, derandomize=True)
@given(mixtures(d=1), st.floats(1e-12, 1e3), st.floats(1e100, 1e300))
def test_score_far_or_at_tiny_times_is_finite_or_refused(q, t, far):
    """Extreme but valid: a finite score, or a refusal naming x or t and the float64 limit; never NaN."""
    s = hl.mixture_score(q)
    for x in ([[far]], [[-far]], [[1.0]]):
        with time_guard():
            try:
                out = np.asarray(s(x, t))
            except ValueError as exc:
                assert re.match(r"(x|t) out of range", str(exc)), str(exc)
                continue
        assert np.all(np.isfinite(out))


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(1, 3), st.floats(1e-3, 0.5), st.floats(0.5, 6.0), st.floats(-0.5, 0.5), st.integers(0, 2**31))
def test_gaussian_output_of_valid_input_is_finite_and_matches_closed_form(d, t0, span, a, seed):
    """The ideal output's ODE solution against its closed form ``(rho m, rho^2 S + (1 - rho^2) I)``."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((d, d))
    S = G @ G.T / d + 0.2 * np.eye(d)
    m = rng.standard_normal(d)
    with time_guard():
        out = hl.gaussian_output_moments(m, S, t0=t0, T=t0 + span, A=a * np.eye(d), b=0.1 * np.ones(d))
    for name in ("learned_mean", "learned_cov", "energy_hat", "energy_star", "kl", "w2", "kl_bound"):
        assert np.all(np.isfinite(getattr(out, name))), name
    assert out.chi2 >= 0  # may be +inf (a divergent integral), never NaN
    np.testing.assert_allclose(out.ideal_mean_ode, out.ideal_mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(out.ideal_cov_ode, out.ideal_cov, rtol=1e-7, atol=1e-9)
    assert out.kl <= out.kl_bound * (1 + 1e-6) + 1e-12  # Girsanov


@settings(max_examples=6, deadline=None, derandomize=True)
@given(st.floats(1e-3, 1.0), st.floats(0.1, 8.0))
def test_reverse_sample_of_valid_input_is_finite(t0, span):
    """One shape (one compilation); ``t0``, ``T`` are traced. Uniform grid of 10 steps, so ``h <= 0.8``."""
    with time_guard(120.0):  # the first call compiles
        y = np.asarray(hl.reverse_sample(KEY, GM1, 64, t0=t0, T=t0 + span, n_steps=10).particles)
    assert y.shape == (64, 1) and np.all(np.isfinite(y))


def test_reverse_sample_divergence_is_refused_naming_n_steps():
    """Valid but far too coarse: T = 1e6 in 10 Euler steps (h = 1e5) diverges; refused, never returned."""
    with time_guard(120.0):
        message = assert_refused(lambda: hl.reverse_sample(KEY, GM1, 64, t0=0.1, T=1e6, n_steps=10), "n_steps")
    assert "diverged" in message


def test_fokker_planck_valid_box_is_finite_and_conserves_mass():
    """A user box around the law: finite cell averages whose mass is 1 minus the starting law's outside mass."""
    with time_guard(120.0):
        out = hl.fokker_planck_output(GM1, 0.1, T=1.0, n_grid=40, n_steps=20, box=[(-6.0, 6.0)])
    assert np.all(np.isfinite(out.density)) and np.all(out.density >= -1e-12)
    assert 0 <= out.tail_mass < 1e-6
    assert abs(out.mass - (1.0 - out.tail_mass)) <= 1e-9


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1e3)), min_size=2, max_size=12))
def test_relative_spectral_error_is_finite_and_matches_its_formula(pairs):
    f = np.array([p[0] for p in pairs])
    E = np.array([p[1] for p in pairs])
    got = relative_spectral_error(f, E)
    den = math.fsum(E[1:])
    want = 0.0 if den <= 0 else math.fsum((1 - f[1:]) ** 2 * E[1:]) / den
    assert math.isfinite(got) and 0.0 <= got <= 1.0 + 1e-12
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.sampled_from(["power-law", "geometric"]), st.floats(1e-6, 10.0), st.floats(0.1, 1.0), st.integers(0, 200))
def test_family_times_are_finite_positive_and_non_increasing(family, t0, parameter, n):
    t = family_times(family, t0, parameter, n)
    assert t.shape == (n,) and np.all(np.isfinite(t)) and np.all(t > 0)
    assert np.all(np.diff(t) <= 0)
    if n:
        assert t[0] == pytest.approx(t0, rel=1e-15)
