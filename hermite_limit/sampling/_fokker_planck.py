"""Output density of the reverse-time sampler in d = 1, 2 by a Fokker-Planck solve, with its accuracy.

The sampler's SDE in reverse time ``tau = T - t`` is ``dY = b(Y, t) dtau + sqrt(2) dB`` with drift
``b = y + 2 (s + e)`` (``s = grad log P_t q`` exact, ``e`` an optional score error). Its density solves

    dp/dtau = -div J,    J = b p - grad p,    p(tau = 0) = P_T q  (or N(0, I)),

from ``tau = 0`` to ``tau = T - t0``. Discretisation:

- **Space**: finite volumes on a uniform grid over a box, zero flux through the box's faces (mass is
  conserved exactly), Scharfetter-Gummel fluxes ``J_f = [B(-P_f) p_left - B(P_f) p_right] / h`` with
  ``P_f = b_f h`` and the Bernoulli function ``B(x) = x / (e^x - 1)``. The flux is exact for a constant
  drift between the two cells, upwinds itself when ``|P_f|`` is large, and keeps the scheme second order
  in ``h`` for smooth data.
- **Time**: Crank-Nicolson on a grid geometric in ``t`` (fine near ``t0``, where the score varies
  fastest), each step one tridiagonal solve per grid line (``jax.lax.linalg.tridiagonal_solve``). In 2-D,
  Strang splitting: half a step along x, a full step along y, half a step along x (second order).
- **Box**: per axis, 8 standard deviations beyond every component of ``P_t q`` for ``t`` in
  ``{t0, T}`` and of ``N(0, 1)``; the initial law's mass outside it (``tail_mass``) is the only mass the
  solve does not carry.
- **Accuracy**: the solve is repeated with half the cells per axis and half the time steps. The fine
  solution averaged onto the coarse cells differs from the coarse one by ``l1_change`` (L1); for a
  second-order scheme the fine solution's L1 error is about ``l1_change / 3``, reported as ``error``
  (plus ``tail_mass``). Divergences to a reference law are computed on both solves; their difference is
  part of each divergence's error.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.special import ndtr

from .._mixture import GaussianMixture, as_mixture, standard_normal
from .._ou import _push
from .._precision import x64
from .._validation import FLOAT_BYTES, as_float_array, check_choice, check_int, check_memory, check_work, fmt
from ..divergences import Estimate
from ._grid import time_grid
from ._reverse import DEFAULT_T, INITS, check_field, check_times
from ._score import mixture_score

_BOX_SD = 8.0
# Size limits (refused up front): cells per solve (the solve keeps about ten arrays of (n + 1) n^(d-1)
# floats, plus the score's (cells x components) temporaries), time steps, and the total work
# cells x steps x components within the shared work budget.
MAX_CELLS = 2**21
MAX_STEPS = 10**6
# The box must hold this much of the starting law: the solve has zero flux through the box, so a box
# that misses the law squeezes its mass into the box and the output is meaningless.
MIN_BOX_MASS = 0.5


@dataclasses.dataclass(frozen=True)
class FokkerPlanckOutput:
    """The sampler's output density on a grid (cell averages), with its accuracy.

    Attributes
    ----------
    axes : tuple of arrays, the cell centres along each axis (length ``d``).
    density : array of shape ``(n,)`` or ``(n, n)``, cell averages of the output density (indexing ``ij``).
    coarse_density : the same solve with half the cells and steps (for the error estimate).
    box : tuple of ``(lo, hi)`` per axis.
    mass : ``sum density * cell volume`` (1 up to ``tail_mass`` and rounding: the scheme conserves mass).
    tail_mass : the initial law's mass outside the box.
    l1_change : L1 distance between the fine solve (averaged onto coarse cells) and the coarse solve.
    error : estimated L1 error of ``density``: ``l1_change / 3 + tail_mass`` (second-order scheme).
    n_grid, n_steps : cells per axis and time steps of the fine solve.
    """

    axes: tuple
    density: np.ndarray
    coarse_density: np.ndarray
    box: tuple
    mass: float
    tail_mass: float
    l1_change: float
    error: float
    n_grid: int
    n_steps: int

    @property
    def dim(self) -> int:
        return len(self.axes)

    @property
    def cell_volume(self) -> float:
        return float(np.prod([(hi - lo) / self.n_grid for lo, hi in self.box]))

    def density_at(self, x: Any) -> np.ndarray:
        """The density at points ``x`` (n, d) by (bi)linear interpolation of the cell values; 0 outside the box."""
        x = as_float_array("x", x)
        if x.ndim > 2 or (x.ndim >= 1 and x.shape[-1] != self.dim and not (self.dim == 1 and x.ndim == 1)):
            raise ValueError(f"x must have shape (n, {self.dim}); got shape {x.shape}")
        x = x.reshape(-1, self.dim)
        return _interpolator(self.axes, self.density)(x)

    def log_density(self, x: Any) -> np.ndarray:
        """``log density_at(x)`` (``-inf`` where the density is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.density_at(x))

    def tv_to(self, ref: Any) -> Estimate:
        """``TV(output, ref) = (1/2) int |p - r|`` by the midpoint rule on the grid."""
        return self._divergence(ref, "tv")

    def kl_to(self, ref: Any) -> Estimate:
        """``KL(output || ref) = int p log(p / r)`` by the midpoint rule on the grid."""
        return self._divergence(ref, "kl")

    def chi2_to(self, ref: Any) -> Estimate:
        """``chi2(output || ref) = int (p - r)^2 / r`` by the midpoint rule on the grid."""
        return self._divergence(ref, "chi2")

    def _divergence(self, ref: Any, kind: str) -> Estimate:
        gm = as_mixture(ref, "ref")
        if gm.dim != self.dim:
            raise ValueError(f"ref has dimension {gm.dim} but the density has dimension {self.dim}")
        fine = _grid_divergence(self.density, self.axes, self.box, gm, kind)
        coarse_axes = _centres(self.box, self.n_grid // 2)
        coarse = _grid_divergence(self.coarse_density, coarse_axes, self.box, gm, kind)
        ref_outside = _outside_mass(gm, self.box)
        # the divergence's sensitivity to an L1 error of p: 1/2 for TV; for KL and chi2 it is bounded by the
        # grid's largest |log(p/r)| + 1 and |p/r - 1| * 2, evaluated where p carries mass
        sens = _sensitivity(self.density, self.axes, gm, kind)
        err = abs(fine - coarse) + sens * self.error + (0.5 * ref_outside if kind == "tv" else 0.0)
        detail = {"coarse": coarse, "tail_mass": self.tail_mass, "ref_outside_box": ref_outside, "l1_error": self.error}
        return Estimate(float(fine), float(err), f"Fokker-Planck grid {self.n_grid}^{self.dim}, midpoint rule", detail)


@x64
def fokker_planck_output(
    q: Any,
    t0: Any,
    *,
    T: Any = DEFAULT_T,
    score_error: Callable | None = None,
    init: str = "exact",
    n_grid: int | None = None,
    n_steps: int | None = None,
    box: Any = None,
) -> FokkerPlanckOutput:
    """The output density of the continuous-time reverse SDE for a 1-D or 2-D Gaussian-mixture law ``q``.

    Solves ``dp/dtau = -div((y + 2 (s + e)) p) + Laplacian p`` from ``p = P_T q`` (``init="exact"``) or
    ``N(0, I)`` (``"gaussian"``) at ``t = T`` down to ``t = t0``, with the exact score ``s`` of ``P_t q`` and
    an optional score error ``e(x, t)``. Without an error and from the exact start, the answer is
    ``P_t0 q`` (the reverse SDE is exact in continuous time): the check of the solver's accuracy.

    Parameters
    ----------
    q : GaussianMixture, ``d`` = 1 or 2.
    t0 : float > 0. T : float > t0 (default 4).
    score_error : callable ``e(x, t)`` on (n, d) arrays, optional (e.g. :func:`score_error`).
    init : {"exact", "gaussian"}.
    n_grid : int, even, cells per axis (default 800 in 1-D, 160 in 2-D).
    n_steps : int, even, time steps (default 400 in 1-D, 200 in 2-D). The coarse solve uses half of both.
    box : sequence of ``(lo, hi)`` per axis, optional (default: see the module notes). Each pair needs
        ``hi - lo > 1e-9 max(1, |lo|, |hi|)``, ``|lo|, |hi| <= 1e100``, and the box must hold at least half of
        the starting law's mass (the solve has zero flux through the box's faces).

    Limits (refused up front, naming the argument): at most ``MAX_CELLS`` = 2^21 cells (``n_grid^d``),
    ``MAX_STEPS`` = 10^6 steps, and ``n_steps * cells * components`` within the library's work budget.

    Returns
    -------
    FokkerPlanckOutput
        Cell averages with ``error`` (estimated L1 error) and divergences to a reference law.

    Notes
    -----
    Finite volumes with Scharfetter-Gummel fluxes, Crank-Nicolson on a geometric time grid, Strang
    splitting in 2-D; the error is estimated from a second solve at half resolution (see the module notes).
    With the defaults, the L1 error against the exact ``P_t0 q`` is about 1e-4 in 1-D and 1e-3 in 2-D
    for the test laws of ``tests/test_sampling_fokker_planck.py``; it falls as ``h^2``.
    """
    gm = as_mixture(q, "q")
    d = gm.dim
    if d not in (1, 2):
        raise ValueError(f"q must have dimension 1 or 2 for the Fokker-Planck solve; got dimension {d}")
    t0, T = check_times(t0, T)
    check_choice(init, "init", INITS)
    n_grid = _check_even(n_grid, "n_grid", 800 if d == 1 else 160)
    n_steps = _check_even(n_steps, "n_steps", 400 if d == 1 else 200)
    cells = float(n_grid) ** d
    if cells > MAX_CELLS:
        raise ValueError(
            f"n_grid too large: {fmt(n_grid)} cells per axis make {cells:.3g} cells in d={d}, over the limit of "
            f"{MAX_CELLS:,} cells (memory: ten arrays of that size plus the score's temporaries)"
        )
    check_memory("n_grid", 10.0 * FLOAT_BYTES * cells * max(gm.n_components, 1), detail=f"{fmt(n_grid)}^{d} cells x {gm.n_components} components")
    if n_steps > MAX_STEPS:
        raise ValueError(f"n_steps too large: n_steps={fmt(n_steps)} is over the limit of {MAX_STEPS:,} time steps")
    check_work("n_steps", float(n_steps) * cells * max(gm.n_components, 1),
               detail=f"{fmt(n_steps)} steps x {cells:.3g} cells x {gm.n_components} components")
    if score_error is not None:
        check_field(score_error, "score_error", d, T, gm)
    box = _default_box(gm, float(t0), float(T)) if box is None else _check_box(box, d)

    start = _push(gm, T) if init == "exact" else standard_normal(d)
    tail = _outside_mass(start, box)
    if tail > 1.0 - MIN_BOX_MASS:
        raise ValueError(
            f"box misses the law: it holds at most {fmt(1.0 - tail)} of the starting law's mass (at least "
            f"{MIN_BOX_MASS:g} is needed; the zero-flux solve would squeeze the rest into the box); got box={box}"
        )
    score = mixture_score(gm)
    fine = _solve(gm, start, score, score_error, float(t0), float(T), box, n_grid, n_steps)
    coarse = _solve(gm, start, score, score_error, float(t0), float(T), box, n_grid // 2, n_steps // 2)
    volume = float(np.prod([(hi - lo) / n_grid for lo, hi in box]))
    l1_change = float(np.sum(np.abs(_restrict(fine) - coarse)) * volume * 2**d)
    if not (np.all(np.isfinite(fine)) and np.all(np.isfinite(coarse))):
        raise ValueError(
            f"box / n_grid out of range: the solve produced non-finite densities (cells of width "
            f"{fmt(min((hi - lo) / n_grid for lo, hi in box))} on the box {box}); use the default box or more cells"
        )
    return FokkerPlanckOutput(
        axes=_centres(box, n_grid), density=fine, coarse_density=coarse, box=tuple(box),
        mass=float(np.sum(fine) * volume), tail_mass=tail, l1_change=l1_change, error=l1_change / 3.0 + tail,
        n_grid=n_grid, n_steps=n_steps,
    )


# -- the solve ---------------------------------------------------------------------------------


def _bernoulli(x):
    """``B(x) = x / (e^x - 1)``, ``B(0) = 1``, stable for every ``x``."""
    small = jnp.abs(x) < 1e-6
    safe = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 - 0.5 * x + x * x / 12.0, safe / jnp.expm1(safe))


def _operator(drift_faces, h):
    """Tridiagonal ``(lower, diag, upper)`` of ``L p = -(J_{i+1} - J_i) / h`` along the last axis.

    ``drift_faces`` (..., n + 1): the drift component normal to each face, faces 0 and n being the box
    boundary (their flux is zero).
    """
    P = drift_faces * h
    Bm, Bp = _bernoulli(-P), _bernoulli(P)  # J_f = (Bm_f p_{f-1} - Bp_f p_f) / h
    inner = jnp.ones_like(P).at[..., 0].set(0.0).at[..., -1].set(0.0)
    Bm, Bp = Bm * inner, Bp * inner
    diag = -(Bm[..., 1:] + Bp[..., :-1]) / h**2
    upper = Bp[..., 1:] / h**2  # coefficient of p_{i+1} in cell i (zero for the last cell)
    lower = Bm[..., :-1] / h**2  # coefficient of p_{i-1} in cell i (zero for the first cell)
    return lower, diag, upper


def _apply(op, p):
    lower, diag, upper = op
    out = diag * p
    out = out.at[..., 1:].add(lower[..., 1:] * p[..., :-1])
    return out.at[..., :-1].add(upper[..., :-1] * p[..., 1:])


def _crank_nicolson(p, op_now, op_next, k):
    """``(I - k/2 L_next) p_new = (I + k/2 L_now) p`` along the last axis."""
    rhs = p + 0.5 * k * _apply(op_now, p)
    lower, diag, upper = op_next
    dl = (-0.5 * k * lower).at[..., 0].set(0.0)
    du = (-0.5 * k * upper).at[..., -1].set(0.0)
    dd = 1.0 - 0.5 * k * diag
    return jax.lax.linalg.tridiagonal_solve(dl, dd, du, rhs[..., None])[..., 0]


def _solve(gm, start, score, error, t0, T, box, n, n_steps):
    """Cell averages of the output density on an ``n^d`` grid (numpy array)."""
    d = gm.dim
    lo = np.array([b[0] for b in box])
    hi = np.array([b[1] for b in box])
    h = (hi - lo) / n
    centres = [lo[a] + (np.arange(n) + 0.5) * h[a] for a in range(d)]
    faces = [lo[a] + np.arange(n + 1) * h[a] for a in range(d)]
    times = jnp.asarray(time_grid(t0, T, n_steps, "geometric"))

    def drift(y, t):
        b = y + 2.0 * score(y, t)
        return b + 2.0 * error(y, t) if error is not None else b

    with jax.enable_x64(True):
        if d == 1:
            pts = jnp.asarray(faces[0])[:, None]
            p0 = _cell_averages(start, box, n)

            def op(t):
                return _operator(drift(pts, t)[:, 0], h[0])

            def body(p, k):
                t, t_next = times[k], times[k + 1]
                return _crank_nicolson(p, op(t), op(t_next), t - t_next), None

        else:
            X, Y = jnp.meshgrid(jnp.asarray(faces[0]), jnp.asarray(centres[1]), indexing="ij")
            x_pts = jnp.stack([X.ravel(), Y.ravel()], axis=1)  # x-faces: (n + 1) x n
            X, Y = jnp.meshgrid(jnp.asarray(centres[0]), jnp.asarray(faces[1]), indexing="ij")
            y_pts = jnp.stack([X.ravel(), Y.ravel()], axis=1)  # y-faces: n x (n + 1)
            p0 = _cell_averages(start, box, n)

            def op_x(t):  # along axis 0: operate on p.T (rows = y index), faces along x
                bx = drift(x_pts, t)[:, 0].reshape(n + 1, n).T
                return _operator(bx, h[0])

            def op_y(t):
                by = drift(y_pts, t)[:, 1].reshape(n, n + 1)
                return _operator(by, h[1])

            def body(p, k):
                t, t_next = times[k], times[k + 1]
                t_mid = 0.5 * (t + t_next)
                k_tau = t - t_next
                p = _crank_nicolson(p.T, op_x(t), op_x(t_mid), 0.5 * k_tau).T
                p = _crank_nicolson(p, op_y(t), op_y(t_next), k_tau)
                p = _crank_nicolson(p.T, op_x(t_mid), op_x(t_next), 0.5 * k_tau).T
                return p, None

        p, _ = jax.lax.scan(body, jnp.asarray(p0), jnp.arange(n_steps))
        return np.asarray(p)


# -- grids, boxes, references ------------------------------------------------------------------


def _centres(box, n):
    return tuple(lo + (np.arange(n) + 0.5) * (hi - lo) / n for lo, hi in box)


def _component_params(gm: GaussianMixture):
    """Weights, means (K, d) and per-axis standard deviations (K, d) of a mixture."""
    covs = np.asarray(gm.full_covs())
    return np.asarray(gm.weights), np.asarray(gm.means), np.sqrt(np.diagonal(covs, axis1=1, axis2=2))


def _cell_averages(gm: GaussianMixture, box, n):
    """Exact cell averages of a mixture density (products of 1-D CDF differences; full covariances in
    2-D fall back to the midpoint density, accurate to O(h^2))."""
    w, m, s = _component_params(gm)
    d = gm.dim
    edges = [np.linspace(lo, hi, n + 1) for lo, hi in box]
    volume = np.prod([(hi - lo) / n for lo, hi in box])
    if d == 1 or gm.cov_type != "full":
        out = 0.0
        for wk, mk, sk in zip(w, m, s):
            mass = [np.diff(ndtr((edges[a] - mk[a]) / sk[a])) for a in range(d)]
            out = out + wk * (mass[0] if d == 1 else np.outer(mass[0], mass[1]))
        return out / volume
    X, Y = np.meshgrid(*_centres(box, n), indexing="ij")
    return np.exp(np.asarray(gm.logpdf(np.stack([X.ravel(), Y.ravel()], 1)))).reshape(n, n)


def _outside_mass(gm: GaussianMixture, box) -> float:
    """Upper bound on a mixture's mass outside the box (union bound over axes, exact per axis)."""
    w, m, s = _component_params(gm)
    total = 0.0
    for a, (lo, hi) in enumerate(box):
        total += float(np.sum(w * (ndtr((lo - m[:, a]) / s[:, a]) + ndtr(-(hi - m[:, a]) / s[:, a]))))
    return min(1.0, total)


def _default_box(gm: GaussianMixture, t0: float, T: float):
    w, m, s = _component_params(gm)
    box = []
    for a in range(gm.dim):
        lo, hi = -_BOX_SD, _BOX_SD  # N(0, 1)
        for t in (t0, T):
            rho = math.exp(-t)
            mt = rho * m[:, a]
            st = np.sqrt(rho**2 * s[:, a] ** 2 + 1 - rho**2)
            lo, hi = min(lo, float(np.min(mt - _BOX_SD * st))), max(hi, float(np.max(mt + _BOX_SD * st)))
        box.append((lo, hi))
    return box


def _restrict(p):
    """Average a fine grid onto the coarse one (2 fine cells per coarse cell per axis)."""
    if p.ndim == 1:
        return 0.5 * (p[0::2] + p[1::2])
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def _interpolator(axes, values):
    if len(axes) == 1:
        return lambda x: np.interp(x[:, 0], axes[0], values, left=0.0, right=0.0)
    f = RegularGridInterpolator(axes, values, bounds_error=False, fill_value=0.0)
    return lambda x: f(x)


def _ref_on_grid(gm: GaussianMixture, axes):
    if len(axes) == 1:
        pts = axes[0][:, None]
    else:
        X, Y = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([X.ravel(), Y.ravel()], 1)
    return np.exp(np.asarray(gm.logpdf(pts))).reshape([len(a) for a in axes])


def _grid_divergence(p, axes, box, gm, kind):
    volume = np.prod([(hi - lo) / len(a) for a, (lo, hi) in zip(axes, box)])
    r = _ref_on_grid(gm, axes)
    if kind == "tv":
        return 0.5 * float(np.sum(np.abs(p - r)) * volume)
    if kind == "kl":
        pos = p > 0
        return float(np.sum(p[pos] * (np.log(p[pos]) - np.log(r[pos]))) * volume)
    return float(np.sum((p - r) ** 2 / r) * volume)


def _sensitivity(p, axes, gm, kind):
    """Bound on |d divergence| per unit L1 change of p, where p carries mass."""
    if kind == "tv":
        return 0.5
    r = _ref_on_grid(gm, axes)
    mask = p > 1e-12 * p.max()
    ratio = p[mask] / r[mask]
    if kind == "kl":
        return float(np.max(np.abs(np.log(ratio))) + 1.0)
    return float(2.0 * np.max(np.abs(ratio - 1.0)))


def _check_even(value, name, default):
    if value is None:
        return default
    value = check_int(value, name, minimum=1)
    if value < 4 or value % 2:
        raise ValueError(f"{name} must be an even integer >= 4 (the error estimate halves it); got {name}={value}")
    return value


def _check_box(box, d):
    try:
        box = [(float(lo), float(hi)) for lo, hi in box]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"box must be a sequence of (lo, hi) pairs, one per axis; got box={box!r}") from None
    if len(box) != d or any(not (np.isfinite(lo) and np.isfinite(hi) and hi > lo) for lo, hi in box):
        raise ValueError(f"box must hold {d} finite (lo, hi) pairs with hi > lo; got box={box!r}")
    for lo, hi in box:
        # cells must be resolvable in float64 (and far from its range) on both solves' grids
        if not (hi - lo) > 1e-9 * max(1.0, abs(lo), abs(hi)) or max(abs(lo), abs(hi)) > 1e100:
            raise ValueError(
                f"box is degenerate: each (lo, hi) needs hi - lo > 1e-9 max(1, |lo|, |hi|) and |lo|, |hi| <= 1e100; "
                f"got box={box!r}"
            )
    return box
