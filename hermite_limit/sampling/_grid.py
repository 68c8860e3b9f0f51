"""Time grids for the reverse-time samplers: ``T = t_0 > t_1 > ... > t_N = t0`` in OU time."""

from __future__ import annotations

import jax.numpy as jnp

from .._precision import x64
from .._validation import check_choice

GRIDS = ("uniform", "geometric")


@x64
def time_grid(t0, T, n_steps: int, grid: str = "uniform"):
    """Decreasing OU times from ``T`` to ``t0`` (``n_steps + 1`` points; ``t0``, ``T`` may be traced).

    ``uniform``: ``t_k = T - (T - t0) k / N``. ``geometric``: ``t_k = T (t0 / T)^{k/N}``, equal ratios, so the
    steps shrink towards ``t0`` where the score varies fastest. The endpoints are exact.

    ``t0 > 0``, ``T > t0`` (checked when concrete), ``n_steps`` an integer in ``[1, 10^7]``.
    """
    from ._reverse import check_steps, check_times  # the shared sampler checks (import here: no cycle)

    t0, T = check_times(t0, T)
    n_steps = check_steps(n_steps)
    check_choice(grid, "grid", GRIDS)
    k = jnp.arange(n_steps + 1, dtype=jnp.float64) / n_steps
    t0 = jnp.asarray(t0, dtype=jnp.float64)
    T = jnp.asarray(T, dtype=jnp.float64)
    if grid == "uniform":
        ts = T - (T - t0) * k
    elif grid == "geometric":
        ts = jnp.exp(jnp.log(T) + (jnp.log(t0) - jnp.log(T)) * k)
    else:  # unreachable: checked above
        raise ValueError(f"grid must be one of {GRIDS}; got grid={grid!r}")
    return ts.at[0].set(T).at[-1].set(t0)
