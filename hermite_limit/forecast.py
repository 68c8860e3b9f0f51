"""What N generations of retraining will do to your data, and the mildest annealed schedule that keeps
the damage under a budget.

Everything here is exact (no sampling), from three identities of the recursion
``p_{i+1} = P_{t_i}(alpha p_data + (1 - alpha) p_i)``, ``p_0 = p_data`` (docs/conventions.md,
"Retraining recursion" and "Attenuation and contraction rates"):

* every Hermite coefficient of total order m is multiplied by the same factor,
  ``a_n(p_k) = f_m^{(k)} a_n(p_data)`` with ``f^{(0)} = 1``, ``f^{(i+1)} = rho_i^m (alpha + (1 - alpha) f^{(i)})``
  (``hl.schedule_attenuation``), so the order-m energy is ``E_m(p_k) = (f_m^{(k)})^2 E_m(p_data)``;
* the first two moments follow from orders 1 and 2: ``mean(p_k) = f_1 mean(p_data)`` and
  ``E_{p_k}[X X^T] - I = f_2 (E_{p_data}[X X^T] - I)``;
* the OU semigroup commutes with projection on a unit vector u, so the 1-D law of ``u.X`` under p_k has
  coefficients ``f_m^{(k)} a_m(u.X under p_data)``.

Error measure (the "budget" quantity). The relative spectral error of a law p_k is

    err(p_k) = sum_{m=1}^{M} (1 - f_m^{(k)})^2 E_m(p_data) / sum_{m=1}^{M} E_m(p_data)
             = ||dp_k/dgamma - dp_data/dgamma||^2 / ||dp_data/dgamma - 1||^2   (orders 1..M of L2(gamma)),

the squared L2(gamma) distance between the density ratios of p_k and of the data, truncated at order M,
relative to the data's own truncated chi2 to gamma. 0 means no structure lost, 1 means all of it (the
law became gamma in those orders). It depends on M: high orders carry more energy in high dimension.

Schedule families, each a grid ordered from mildest (constant t0) to strongest annealing:

* ``power-law``: ``t_i = t0 / (i + 1)^p``, ``p = 0, 0.05, ..., 4``;
* ``geometric``: ``t_i = t0 r^i``, ``r = 1, 0.99, ..., 0.5``.

err after N generations decreases monotonically along each grid (smaller times, larger factors). The
chosen schedule of a family is its first grid entry with ``err <= budget`` (so the entry before it, the
next milder one, exceeds the budget). Across families the recommendation is the chosen schedule whose
final truncation time ``t_{N-1}`` is largest (the least aggressive early stopping at the end, the costliest
generation to run with a small t), power-law first on ties.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ._mixture import GaussianMixture, as_mixture, empirical
from ._validation import (
    FLOAT_BYTES,
    as_float_array,
    check_alpha,
    check_choice,
    check_int,
    check_memory,
    check_time,
    check_work,
    fmt,
    real_scalar,
)

FAMILIES = {
    "power-law": ("power", np.round(np.arange(0.0, 4.0 + 1e-9, 0.05), 10)),
    "geometric": ("ratio", np.round(np.arange(1.0, 0.5 - 1e-9, -0.01), 10)),
}
from .trajectory import MAX_COMPONENTS_FOR_W2  # above it the exact W2 on PC 1 is skipped (seconds per generation)
from .trajectory import check_generations

# Generations of one forecast: the schedule search alone runs 132 candidate schedules through every
# generation; above this the request is refused.
MAX_GENERATIONS = 10**4


def family_times(family: str, t0: float, parameter: float, n: int) -> np.ndarray:
    """Times t_0..t_{n-1} of a family member: ``t0/(i+1)^p`` (power-law, ``p >= 0``) or ``t0 r^i``
    (geometric, ``0 < r <= 1``); ``n`` in ``[0, MAX_GENERATIONS]``."""
    check_choice(family, "family", sorted(FAMILIES))
    t0 = check_time(t0, "t0")
    if family == "power-law":
        parameter = real_scalar("parameter", parameter, low=0.0)
    else:
        parameter = real_scalar("parameter", parameter, low=0.0, high=1.0, low_open=True)
    n = _check_generations_count(n, "n", minimum=0)
    i = np.arange(int(n), dtype=np.float64)
    if family == "power-law":
        return t0 / (i + 1.0) ** parameter
    if family == "geometric":
        return t0 * parameter**i
    raise ValueError(f"family must be one of {sorted(FAMILIES)}; got family={family!r}")


def relative_spectral_error(factors: Any, energies: Any) -> float:
    """``sum_{m>=1} (1 - f_m)^2 E_m / sum_{m>=1} E_m`` (index 0 is the order-0 mode, excluded).

    ``factors`` and ``energies``: finite 1-D arrays of the same length; energies non-negative.
    """
    f = as_float_array("factors", factors, ndim=1)
    E = as_float_array("energies", energies, ndim=1)
    if f.shape != E.shape or f.size == 0:
        raise ValueError(f"factors and energies must be non-empty and of the same length; got {f.size} and {E.size}")
    if np.any(E < 0):
        raise ValueError(f"energies must be non-negative; got min(energies)={fmt(float(E.min()))}")
    den = float(np.sum(E[1:]))
    if den <= 0:
        return 0.0
    return float(np.sum((1.0 - f[1:]) ** 2 * E[1:]) / den)


def _factors(alpha: float, times: np.ndarray, order: int) -> np.ndarray:
    """``f_m^{(k)}`` for k = 0..len(times), m = 0..order: array (len(times) + 1, order + 1)."""
    m = np.arange(order + 1, dtype=np.float64)
    f = np.ones_like(m)
    out = [f]
    for t in times:
        f = np.exp(-m * t) * (alpha + (1.0 - alpha) * f)
        out.append(f)
    return np.stack(out)


def data_energies(data: GaussianMixture, order: int) -> np.ndarray:
    """``E_m(p_data)``, m = 0..order: all coefficients for d <= 3, ``energy_spectrum`` above."""
    from .plots import energies_of

    data = as_mixture(data, "data")
    order = _check_order(order, data, minimum=0)
    return np.asarray(energies_of(data, order), dtype=np.float64)


@dataclasses.dataclass
class Forecast:
    """What N generations do; every array is exact (see the module docstring for the formulas)."""

    alpha: float
    t0: float
    generations: int
    budget: float
    order: int
    dim: int
    orders: np.ndarray                 # 0..order
    data_energies: np.ndarray          # E_m(p_data)
    factors: np.ndarray                # f_m^{(N)} with constant t0
    mode_loss: np.ndarray              # 1 - f_m^{(N)}: fraction of each order-m coefficient lost
    limit_attenuation: np.ndarray      # lambda_m (the n -> infinity factor)
    generation_energies: np.ndarray    # E_m(p_N) = f_m^2 E_m(p_data)
    spectral_error: np.ndarray         # err(p_n), n = 0..N, constant t0
    gelbrich_to_data: np.ndarray       # W2 between moment-matched Gaussians of p_n and p_data, n = 0..N
    w2_pc1_to_data: np.ndarray | None  # exact W2 of the PC-1 projections (None for large mixtures)
    pc_directions: np.ndarray          # (k, d) unit vectors, top principal components of the data
    pc_variance: np.ndarray            # data variance along each PC
    pc_data_energies: np.ndarray       # (k, order + 1) 1-D Hermite energies a_m^2 of u.X under p_data
    pc_generation_energies: np.ndarray # (k, order + 1) the same under p_N
    pc_energy_lost: np.ndarray         # (k,) sum_{m>=1}(a_m^2 - (f_m a_m)^2) / sum_{m>=1} a_m^2
    pc_rank: np.ndarray                # PC indices, most structure lost first
    search: dict                       # per family: grid, errors, chosen parameter, times, next milder
    recommended: dict | None           # the recommended schedule (None if no family meets the budget)

    def to_json(self) -> dict:
        def conv(v):
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, (np.floating, np.integer)):
                return v.item()
            return v

        out = {f.name: conv(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["error_measure"] = ("relative spectral error: sum_{m=1..order} (1 - f_m)^2 E_m(data) / "
                                "sum_{m=1..order} E_m(data)")
        out["constant_schedule_error"] = float(self.spectral_error[-1])
        out["constant_meets_budget"] = bool(self.spectral_error[-1] <= self.budget)
        return out

    def figure(self, path=None):
        from .plots import forecast_figure

        return forecast_figure(self, path=path)


def forecast(data: Any, alpha: float, t0: float, generations: int, budget: float, *, order: int = 8,
             n_pcs: int = 5) -> Forecast:
    """Forecast N generations of retraining with constant truncation ``t0`` and search the mildest
    annealed schedule meeting ``budget`` (relative spectral error at generation N; module docstring).

    Parameters
    ----------
    data : GaussianMixture, result with ``.mixture``, or samples (N, d) or (N,) (taken as their empirical law)
    alpha : float in [0, 1]; t0 : float > 0
    generations : int in [1, MAX_GENERATIONS]; when the exact W2 on PC 1 is computed (data of at most
        ``MAX_COMPONENTS_FOR_W2`` components) also within ``trajectory.MAX_TOTAL_COMPONENTS`` components built
    budget : float in (0, 1], allowed relative spectral error after ``generations`` generations
    order : int >= 1, highest total Hermite order M of the error measure
    n_pcs : int >= 1, principal components reported (at most d)
    """
    from .hermite import attenuation, hermite_coefficients

    data = _as_data(data)
    alpha = float(check_alpha(alpha))
    t0 = float(check_time(t0, "t0"))
    N = _check_generations_count(generations, "generations", minimum=1)
    if data.n_components <= MAX_COMPONENTS_FOR_W2:  # the exact W2 on PC 1 builds every generation
        check_generations(N, data.n_components, "generations")
    B = real_scalar("budget", budget)
    if not (0 < B <= 1):
        raise ValueError(f"budget must lie in (0, 1] (a relative error); got budget={fmt(B)}")
    M = _check_order(order, data, minimum=1)
    n_schedules = sum(len(grid) for _, grid in FAMILIES.values())
    check_work("generations", float(n_schedules) * N * (M + 1),
               detail=f"{n_schedules} candidate schedules x {fmt(N)} generations x {M + 1} orders")
    k = min(check_int(n_pcs, "n_pcs", minimum=1), data.dim)

    E = data_energies(data, M)
    F = _factors(alpha, np.full(N, t0), M)
    f = F[-1]
    errs = np.array([relative_spectral_error(Fk, E) for Fk in F])
    lam = np.asarray(attenuation(np.arange(M + 1), alpha, t0))

    gel = _gelbrich(data, F)
    w2 = None
    if data.n_components <= MAX_COMPONENTS_FOR_W2:
        w2 = _w2_pc1(data, alpha, t0, N)

    lam_pc, V = np.linalg.eigh(np.asarray(data.cov()))
    dirs = V[:, ::-1][:, :k].T.copy()
    var = lam_pc[::-1][:k].copy()
    for j in range(k):  # a deterministic sign: the largest-magnitude entry positive
        if dirs[j, np.argmax(np.abs(dirs[j]))] < 0:
            dirs[j] = -dirs[j]
    a = np.stack([np.asarray(hermite_coefficients(data.project(u), M).values) for u in dirs])
    pc_E = a**2
    pc_EN = (f[None, :] * a) ** 2
    den = np.sum(pc_E[:, 1:], axis=1)
    lost = np.where(den > 0, np.sum(pc_E[:, 1:] - pc_EN[:, 1:], axis=1) / np.where(den > 0, den, 1.0), 0.0)
    rank = np.argsort(-lost, kind="stable")

    search = {fam: _search(fam, alpha, t0, N, E, B) for fam in FAMILIES}
    chosen = [s for s in search.values() if s["chosen"] is not None]
    recommended = None
    if chosen:
        best = max(chosen, key=lambda s: s["chosen"]["times"][-1])  # stable: power-law first on ties
        recommended = dict(best["chosen"], family=best["family"])

    return Forecast(alpha, t0, N, B, M, data.dim, np.arange(M + 1), E, f, 1.0 - f, lam, f**2 * E, errs, gel, w2,
                    dirs, var, pc_E, pc_EN, lost, rank, search, recommended)


def _check_generations_count(n: Any, name: str, *, minimum: int) -> int:
    n = check_int(n, name, minimum=minimum)
    if n > MAX_GENERATIONS:
        raise ValueError(
            f"{name} too large: {name}={fmt(n)} is over the limit of {MAX_GENERATIONS:,} generations per forecast "
            "(every candidate schedule is run through every generation)"
        )
    return n


def _check_order(order: Any, data: GaussianMixture, *, minimum: int) -> int:
    """Highest total order; the coefficient table (``C(order + d, d)`` per component for d <= 3) must fit."""
    import math

    M = check_int(order, "order", minimum=minimum)
    count = math.comb(M + data.dim, data.dim) if data.dim <= 3 else M + 1
    check_memory("order", float(FLOAT_BYTES) * count * max(data.n_components, 1),
                 detail=f"{count:.3g} Hermite coefficients of order <= {fmt(M)} for {data.n_components} components")
    return M


def _as_data(data: Any) -> GaussianMixture:
    if isinstance(data, GaussianMixture) or isinstance(getattr(data, "mixture", None), GaussianMixture):
        return as_mixture(data, "data")
    x = as_float_array("data", data, ndim=(1, 2))
    if x.shape[0] == 0 or (x.ndim == 2 and x.shape[1] == 0):
        raise ValueError(f"data must hold at least one sample of dimension >= 1; got shape {x.shape}")
    return empirical(x)


def _gelbrich(data: GaussianMixture, F: np.ndarray) -> np.ndarray:
    """Gelbrich W2 of each generation to the data from the exact moments (orders 1 and 2)."""
    from .divergences import gaussian_w2

    m0 = np.asarray(data.mean())
    S0 = np.asarray(data.cov())
    second0 = S0 + np.outer(m0, m0)
    eye = np.eye(data.dim)
    out = []
    for Fk in F:
        m = Fk[1] * m0
        second = Fk[2] * (second0 - eye) + eye if len(Fk) > 2 else second0
        out.append(gaussian_w2(m, second - np.outer(m, m), m0, S0))
    return np.array(out)


def _w2_pc1(data: GaussianMixture, alpha: float, t0: float, N: int) -> np.ndarray:
    """Exact W2 between the PC-1 projections of p_n and p_data, n = 0..N (as ``trajectory`` reports).

    Projection commutes with the OU semigroup, so p_n projected is generation n of the projected data:
    the recursion runs in one dimension.
    """
    from ._limit import generation
    from .divergences import w2_1d
    from .trajectory import principal_axis

    d1 = data.project(principal_axis(data))
    return np.array([0.0] + [w2_1d(generation(d1, alpha, t0, n), d1).value for n in range(1, N + 1)])


def _search(family: str, alpha: float, t0: float, N: int, E: np.ndarray, B: float) -> dict:
    name, grid = FAMILIES[family]
    M = len(E) - 1
    errors = np.array([relative_spectral_error(_factors(alpha, family_times(family, t0, g, N), M)[-1], E)
                       for g in grid])
    ok = np.nonzero(errors <= B)[0]
    out = {"family": family, "parameter": name, "grid": grid, "errors": errors, "chosen": None, "next_milder": None}
    if ok.size:
        i = int(ok[0])
        times = family_times(family, t0, grid[i], N)
        out["chosen"] = {"parameter": name, "value": float(grid[i]), "error": float(errors[i]), "times": times,
                         "rule": _rule(family, t0, grid[i])}
        if i > 0:
            out["next_milder"] = {"parameter": name, "value": float(grid[i - 1]), "error": float(errors[i - 1])}
    return out


def _rule(family: str, t0: float, g: float) -> str:
    if family == "power-law":
        return "constant t_i = t0 = %g" % t0 if g == 0 else f"t_i = {t0:g} / (i + 1)^{g:g}"
    return "constant t_i = t0 = %g" % t0 if g == 1 else f"t_i = {t0:g} * {g:g}^i"


