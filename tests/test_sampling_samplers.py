"""Reverse-time samplers: output law at t0, convergence order, backends, sharding, bad input."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit.sampling import time_grid
from hermite_limit.sampling._solvers import step

from helpers import bimodal_1d


def exact_hermite_1d(gm, t, order=4):
    """a_n of P_t gm in 1-D by a_{n+1} = (mu a_n + (s2 - 1) sqrt(n) a_{n-1}) / sqrt(n+1), per component."""
    p = hl.ou_push(gm, t)
    w, mu, s2 = np.asarray(p.weights), np.asarray(p.means)[:, 0], np.asarray(p.full_covs())[:, 0, 0]
    a = [np.ones_like(mu), mu]
    for n in range(1, order):
        a.append((mu * a[n] + (s2 - 1.0) * np.sqrt(n) * a[n - 1]) / np.sqrt(n + 1.0))
    return np.array([w @ an for an in a[: order + 1]])


def sample_hermite_1d(x, order=4):
    """Sample means of h_n(x) by h_{n+1} = (x h_n - sqrt(n) h_{n-1}) / sqrt(n+1), with standard errors.

    Written out here, independently of ``hermite_limit.hermite``, so the sampler is checked against code it
    does not share.
    """
    x = np.asarray(x).ravel()
    h = [np.ones_like(x), x]
    for n in range(1, order):
        h.append((x * h[n] - np.sqrt(n) * h[n - 1]) / np.sqrt(n + 1.0))
    H = np.array(h[: order + 1])
    return H.mean(axis=1), H.std(axis=1, ddof=1) / np.sqrt(x.size)


@pytest.mark.parametrize("method,n_steps", [("em", 200), ("exponential", 200), ("ode", 100)])
def test_hermite_coefficients_match_exact_within_4_se(method, n_steps):
    q, t0 = bimodal_1d(), 0.05
    out = hl.reverse_sample(jax.random.key(0), q, 40_000, t0=t0, T=4.0, n_steps=n_steps, method=method, grid="geometric")
    assert out.particles.shape == (40_000, 1) and out.particles.dtype == jnp.float64
    a, se = sample_hermite_1d(out.particles)
    exact = exact_hermite_1d(q, t0)
    z = np.abs(a[1:] - exact[1:]) / se[1:]
    assert np.all(z < 4.0), z


def _gaussian_output(method, n_steps, m=1.5, s2=0.3, t0=0.1, T=2.0, grid="uniform"):
    """Exact law (mean, var) of the discrete sampler for q = N(m, s2): every step is affine in (y, z)."""
    q = hl.GaussianMixture([1.0], [[m]], [s2])
    s = hl.mixture_score(q)
    with jax.enable_x64(True):
        ts = np.asarray(time_grid(t0, T, n_steps, grid))
        f = jax.jit(jax.vmap(lambda y, t, tn, z: step(method, y[None, None], t, tn, z[None, None], s)[0, 0]))
        t, tn = jnp.asarray(ts[:-1]), jnp.asarray(ts[1:])
        zero, one = jnp.zeros(n_steps), jnp.ones(n_steps)
        c = np.asarray(f(zero, t, tn, zero))
        A = np.asarray(f(one, t, tn, zero)) - c
        B = np.asarray(f(zero, t, tn, one)) - c
    rho = np.exp(-T)
    mean, var = rho * m, rho**2 * s2 + 1 - rho**2
    for k in range(n_steps):
        mean, var = A[k] * mean + c[k], A[k] ** 2 * var + B[k] ** 2
    rho0 = np.exp(-t0)
    exact_mean, exact_var = rho0 * m, rho0**2 * s2 + 1 - rho0**2
    return np.hypot(mean - exact_mean, np.sqrt(var) - np.sqrt(exact_var))


@pytest.mark.parametrize("method,order", [("em", 1.0), ("exponential", 1.0), ("ode", 2.0)])
def test_weak_order_from_exact_gaussian_moments(method, order):
    """W2 error of the sampler's exact output law (Gaussian case, no Monte Carlo) ~ h^order."""
    steps = np.array([20, 40, 80, 160, 320])
    errs = np.array([_gaussian_output(method, n) for n in steps])
    slope = np.polyfit(np.log((2.0 - 0.1) / steps), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.15, (slope, errs)
    assert np.all(np.diff(errs) < 0)


def test_geometric_grid_endpoints_and_monotone():
    with jax.enable_x64(True):
        ts = np.asarray(time_grid(0.01, 4.0, 10, "geometric"))
    assert ts[0] == 4.0 and ts[-1] == 0.01 and np.all(np.diff(ts) < 0)
    np.testing.assert_allclose(ts[1:] / ts[:-1], (0.01 / 4.0) ** 0.1, rtol=1e-12)


def test_same_key_same_particles_and_no_recompile_over_t0():
    q = bimodal_1d()
    a = hl.reverse_sample(jax.random.key(3), q, 100, t0=0.1, n_steps=20).particles
    b = hl.reverse_sample(jax.random.key(3), q, 100, t0=0.1, n_steps=20).particles
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    from hermite_limit.sampling._reverse import _sample_core

    before = _sample_core.wide._cached._cache_size()
    hl.reverse_sample(jax.random.key(3), q, 100, t0=0.2, T=3.0, n_steps=20)
    assert _sample_core.wide._cached._cache_size() == before


def test_learned_score_loop_compiles_once_over_law_sizes_and_gives_the_same_particles():
    """With a score that is not a mixture's (a network), the initial draw is compiled apart and the loop once for
    training laws of different sizes; the particles are those of the one-program sampler, bit for bit."""
    from hermite_limit.sampling._reverse import _loop_core, _sample_core
    from hermite_limit.sampling._score import pad_mixture

    cfg = hl.NeuralScore(width=8, depth=1, steps=5)
    with jax.enable_x64(True):
        net = cfg.score_function(cfg.network(jax.random.key(1), 2), 0.1, 4.0)
        laws = [pad_mixture(hl.datasets.ring_2d(), 16), pad_mixture(hl.datasets.ring_2d(), 48)]
        sizes = []
        for j, q in enumerate(laws):
            got = hl.reverse_sample(jax.random.key(5), q, 64, t0=0.1, n_steps=7, method="exponential",
                                    grid="geometric", score=net).particles
            sizes.append(_loop_core.wide._cached._cache_size())
            if j == 1:
                ref = _sample_core(jax.random.key(5), q, 64, time_grid(0.1, 4.0, 7, "geometric"), net, None,
                                   "exponential", "exact", "scan", "unsafe", None)
                np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
    assert sizes[0] == sizes[1]  # the second law reused the loop


@pytest.mark.parametrize("method", ["em", "exponential", "ode"])
def test_wide_vector_compilation_changes_nothing_but_speed(method):
    """The samplers compile with LOOP_COMPILER_OPTIONS (512-bit vectors); XLA's defaults give the same draws."""
    from hermite_limit.sampling._reverse import _sample_core
    from hermite_limit.sampling._solvers import LOOP_COMPILER_OPTIONS

    assert LOOP_COMPILER_OPTIONS == {"xla_cpu_prefer_vector_width": 512}
    q = hl.datasets.seed_gmm10()
    kw = dict(t0=0.02, n_steps=40, method=method, grid="geometric")
    ours = hl.reverse_sample(jax.random.key(4), q, 2048, **kw).particles
    with jax.enable_x64(True):
        times = time_grid(0.02, 4.0, 40, "geometric")
        args = (jax.random.key(4), q, 2048, times, hl.mixture_score(q), None, method, "exact", "scan", "unsafe", None)
        wide = _sample_core.wide(*args)
        ref = _sample_core.plain(*args)
    assert np.all(np.isfinite(np.asarray(ours)))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(wide))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-12, atol=1e-12)


def test_sampler_inside_jit_vmap_and_grad_equals_top_level():
    """JAX refuses compiler options on a nested jit: under a caller's transformations the plain compilation runs."""
    q = bimodal_1d()
    kw = dict(t0=0.05, n_steps=30)
    top = np.asarray(hl.reverse_sample(jax.random.key(5), q, 256, **kw).particles)
    with jax.enable_x64(True):  # a caller's jit is lowered outside the library's float64 context
        jitted = jax.jit(lambda k: hl.reverse_sample(k, q, 256, **kw).particles)(jax.random.key(5))
        keys = jax.random.split(jax.random.key(6), 3)
        batched = jax.vmap(lambda k: hl.reverse_sample(k, q, 64, **kw).particles)(keys)
    np.testing.assert_allclose(np.asarray(jitted), top, rtol=1e-12, atol=1e-12)
    for k, b in zip(keys, batched):
        np.testing.assert_allclose(np.asarray(b), np.asarray(hl.reverse_sample(k, q, 64, **kw).particles),
                                   rtol=1e-12, atol=1e-12)

    def mean_at(t0):
        return hl.reverse_sample(jax.random.key(5), q, 256, t0=t0, n_steps=30, method="ode").particles.mean()

    h = 1e-5
    with jax.enable_x64(True):
        slope = float(jax.grad(mean_at)(0.05))
        fd = (float(mean_at(0.05 + h)) - float(mean_at(0.05 - h))) / (2 * h)
    assert np.isfinite(slope) and abs(slope - fd) <= 1e-5 * max(1.0, abs(fd))


def test_diffrax_backend_agrees_with_scan():
    q = bimodal_1d()
    kw = dict(t0=0.05, n_steps=60, grid="geometric")
    ode_scan = hl.reverse_sample(jax.random.key(1), q, 500, method="ode", **kw).particles
    ode_dfx = hl.reverse_sample(jax.random.key(1), q, 500, method="ode", backend="diffrax", **kw).particles
    np.testing.assert_allclose(np.asarray(ode_dfx), np.asarray(ode_scan), rtol=1e-10, atol=1e-10)
    exact = exact_hermite_1d(q, 0.05)
    for brownian in ["unsafe", "tree"]:
        x = hl.reverse_sample(jax.random.key(2), q, 10_000, method="em", backend="diffrax", brownian=brownian,
                              t0=0.05, n_steps=200, grid="geometric").particles
        a, se = sample_hermite_1d(x)
        assert np.all(np.abs(a[1:] - exact[1:]) < 4 * se[1:])


def test_score_error_and_custom_score_are_used():
    q = hl.GaussianMixture([1.0], [[0.0]], [1.0])
    s = hl.mixture_score(q)
    base = hl.reverse_sample(jax.random.key(0), q, 1000, t0=0.1, n_steps=20).particles
    same = hl.reverse_sample(jax.random.key(0), q, 1000, t0=0.1, n_steps=20, score=s).particles
    np.testing.assert_array_equal(np.asarray(base), np.asarray(same))
    shift = hl.reverse_sample(jax.random.key(0), q, 1000, t0=0.1, n_steps=20,
                              score_error=lambda x, t: jnp.ones_like(x)).particles
    assert np.mean(np.asarray(shift) - np.asarray(base)) > 1.0


SHARD_SCRIPT = textwrap.dedent(
    """
    import sys, jax, numpy as np, hermite_limit as hl
    assert len(jax.devices()) == 4, jax.devices()
    q = hl.GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [1.5, 1.0]], [0.25, 0.5])
    out = hl.reverse_sample(jax.random.key(7), q, 64, t0=0.05, n_steps=30, method=sys.argv[2])
    assert len(out.particles.sharding.device_set) == 4, out.particles.sharding
    np.save(sys.argv[1], np.asarray(out.particles))
    """
)


@pytest.mark.parametrize("method", ["em", "ode"])
def test_sharded_over_four_devices_equals_single_device(tmp_path, method):
    script = tmp_path / "shard.py"
    script.write_text(SHARD_SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout's package first
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "x.npy"), method], env=env,
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    q = hl.GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [1.5, 1.0]], [0.25, 0.5])
    single = np.asarray(hl.reverse_sample(jax.random.key(7), q, 64, t0=0.05, n_steps=30, method=method).particles)
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), single, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(t0=0.0), "t0"),
        (dict(t0=-1.0), "t0"),
        (dict(t0=0.5, T=0.5), "T must be > t0"),
        (dict(t0=0.1, n_steps=0), "n_steps"),
        (dict(t0=0.1, method="rk4"), "method"),
        (dict(t0=0.1, grid="log"), "grid"),
        (dict(t0=0.1, init="zeros"), "init"),
        (dict(t0=0.1, backend="diffrax", method="exponential"), "exponential"),
        (dict(t0=0.1, score=3.0), "score"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):  # TypeError: a non-callable score
        hl.reverse_sample(jax.random.key(0), bimodal_1d(), 10, **kwargs)


def test_mismatched_dimensions_raise():
    q2 = hl.GaussianMixture([1.0], [[0.0, 0.0]], [1.0])
    q3 = hl.GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [1.0])
    with pytest.raises(ValueError, match="score_error has dimension 3"):
        hl.reverse_sample(jax.random.key(0), q2, 10, t0=0.1, score_error=hl.score_error("aligned", q3, 0.1, t0=0.1))
    with pytest.raises(ValueError, match="score has dimension 3"):
        hl.reverse_sample(jax.random.key(0), q2, 10, t0=0.1, score=hl.mixture_score(q3))
    with pytest.raises(ValueError, match="n must be"):
        hl.reverse_sample(jax.random.key(0), q2, 0, t0=0.1)
