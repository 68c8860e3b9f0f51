"""Convergence order of the samplers on a non-Gaussian law, with no Monte Carlo noise.

For ``q`` the bimodal 1-D mixture the score is nonlinear, so the Gaussian moment test in
``test_sampling_samplers.py`` does not cover it. The *law* of the discrete sampler's output is computed
deterministically instead, and its exact 1-D W2 to ``P_t0 q`` regressed on the step size:

- ``em`` / ``exponential``: one step is ``Y' = m(Y) + b(Y) Z`` (affine in the noise; ``m``, ``b`` read off
  the library's own step map at ``z = 0, 1``), so the density is carried on a fine grid by
  ``p'(y) = int p(x) N(y; m(x), b(x)^2) dx`` (trapezoid rule in ``x``: the integrand is smooth and the
  kernel width is resolved by more than 20 grid cells, so the rule converges spectrally), and the last
  step's CDF is the same sum with ``Phi`` in place of the normal density.
- ``ode``: Heun's map is deterministic and increasing, so the output quantile function is the map applied
  to the exact quantiles of ``P_T q``.

The reference quantiles of ``P_t0 q`` and ``P_T q`` come from scipy's normal CDF by bisection (independent
of the package's quantile code). ``W2^2 = int_0^1 (Q_out - Q_exact)^2 du`` on a midpoint grid in ``u``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import bimodal_1d
from scipy.special import ndtr

import hermite_limit as hl
from hermite_limit.sampling import time_grid
from hermite_limit.sampling._solvers import scan_loop, step

T0, T = 0.05, 4.0
U = (np.arange(40_000) + 0.5) / 40_000  # midpoint rule in u


def mixture_quantiles(gm, u, lo=-12.0, hi=12.0, iters=80):
    """Quantiles of a 1-D Gaussian mixture by bisection on scipy's ``ndtr`` (to ~1e-15 absolute)."""
    w, m = np.asarray(gm.weights), np.asarray(gm.means)[:, 0]
    s = np.sqrt(np.asarray(gm.full_covs())[:, 0, 0])
    a, b = np.full_like(u, lo), np.full_like(u, hi)
    for _ in range(iters):
        c = 0.5 * (a + b)
        below = (w * ndtr((c[:, None] - m) / s)).sum(axis=1) < u
        a, b = np.where(below, c, a), np.where(below, b, c)
    return 0.5 * (a + b)


def _step_maps(method, q, ts):
    """``m(x, k), b(x, k)`` of every step, vectorised over a point array (jitted once per method)."""
    score = hl.mixture_score(q)

    def one(x, t, tn, z):
        return step(method, x[None, None], t, tn, z[None, None], score)[0, 0]

    f = jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))

    def maps(x, k):
        with jax.enable_x64(True):
            x = jnp.asarray(x)
            t, tn = jnp.float64(ts[k]), jnp.float64(ts[k + 1])
            m = np.asarray(f(x, t, tn, jnp.float64(0.0)))
            b = np.asarray(f(x, t, tn, jnp.float64(1.0))) - m
        return m, b

    return maps


def sampler_w2(method, n_steps, cells=2400, half_width=9.0):
    """Exact (noise-free) W2 between the law of the sampler's output (uniform grid) and ``P_t0 q``."""
    q = bimodal_1d()
    with jax.enable_x64(True):
        ts = np.asarray(time_grid(T0, T, n_steps, "uniform"))
    maps = _step_maps(method, q, ts)
    exact = mixture_quantiles(hl.ou_push(q, T0), U)
    if method == "ode":
        y = mixture_quantiles(hl.ou_push(q, T), U)
        for k in range(n_steps):
            y, _ = maps(y, k)
        assert np.all(np.diff(y) >= 0), "Heun map not monotone: refine the grid"
        return float(np.sqrt(np.mean((y - exact) ** 2)))
    x = np.linspace(-half_width, half_width, cells)
    dx = x[1] - x[0]
    start = hl.ou_push(q, T)
    p = np.exp(np.asarray(start.logpdf(x[:, None])))
    trap = np.full(cells, dx)
    trap[[0, -1]] = 0.5 * dx
    for k in range(n_steps):
        m, b = maps(x, k)
        assert np.all(b > 0) and np.min(b) > 20 * dx, "kernel not resolved by the grid"
        z = (x[:, None] - m[None, :]) / b[None, :]  # (target y_i, source x_j)
        kernel = ndtr(z) if k == n_steps - 1 else np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * b[None, :])
        p = kernel @ (trap * p)  # the last step gives the CDF on the grid
    cdf = np.maximum.accumulate(p)
    assert abs(cdf[-1] - 1.0) < 1e-10 and cdf[0] < 1e-10, (cdf[0], cdf[-1])
    # quantiles of the output by inverse interpolation of its CDF (dense grid: error ~ dx^2, far below the bias)
    out = np.interp(U, cdf, x)
    return float(np.sqrt(np.mean((out - exact) ** 2)))


@pytest.mark.parametrize("method,steps,order", [
    ("em", (10, 20, 40, 80), 1.0),
    ("exponential", (10, 20, 40, 80), 1.0),
    ("ode", (10, 20, 40, 80, 160), 2.0),
])
def test_w2_of_output_law_shrinks_at_the_solver_order_on_a_mixture(method, steps, order):
    errs = np.array([sampler_w2(method, n) for n in steps])
    assert np.all(np.diff(errs) < 0), errs
    slope = np.polyfit(np.log((T - T0) / np.asarray(steps)), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.2, (slope, errs)
    finest = np.log2(errs[-2] / errs[-1])  # observed order of the finest halving: the asymptotic regime
    assert abs(finest - order) < 0.1, (finest, errs)


def test_grid_transport_is_resolved():
    """The grid answer does not move when the grid is refined (the test measures the sampler, not the grid)."""
    coarse = sampler_w2("em", 20, cells=2400)
    fine = sampler_w2("em", 20, cells=4800)
    assert abs(coarse - fine) < 1e-3 * fine, (coarse, fine)


def test_ode_quantile_map_agrees_with_sampled_particles():
    """The deterministic ODE route equals pushing sampled particles through the sampler itself."""
    q = bimodal_1d()
    x0 = np.sort(np.asarray(hl.ou_push(q, T).sample(jax.random.key(5), 2000))[:, 0])
    with jax.enable_x64(True):
        ts = np.asarray(time_grid(T0, T, 30, "uniform"))
    maps = _step_maps("ode", q, ts)
    y = x0
    for k in range(30):
        y, _ = maps(y, k)
    with jax.enable_x64(True):
        direct = scan_loop(jax.random.key(0), jnp.asarray(x0[:, None]), jnp.asarray(ts), hl.mixture_score(q), "ode")[0]
    np.testing.assert_allclose(np.asarray(direct)[:, 0], y, rtol=1e-12, atol=1e-12)
