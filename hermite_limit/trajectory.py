"""The exact trajectory of retraining: distances of every generation to the data and to the limit.

Distances that need no sampling, valid in any dimension:
- mean and covariance errors (Euclidean, Frobenius);
- the Gelbrich bound: ``W2(p, q) >= W2(N(m_p, S_p), N(m_q, S_q))`` (moment-matched Gaussians);
- exact W2 of the one-dimensional projections on the data's first principal axis (skipped, NaN, when
  the data has more than ``MAX_COMPONENTS_FOR_W2`` components: the quantile coupling of thousands of point
  masses costs seconds per generation, minutes against the limit).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._limit import generation, limit_distribution
from ._mixture import GaussianMixture, as_mixture
from ._pushed import PushedCopies
from ._time import schedule_times
from ._validation import check_alpha, check_int, fmt
from .divergences import gaussian_w2, w2_1d


MAX_COMPONENTS_FOR_W2 = 256
# Every generation's exact law is built: p_k has about (k + 1) K components, so n generations handle about
# K (n + 1)(n + 2) / 2 components in all. Requests above this total are refused (they would run for hours).
MAX_TOTAL_COMPONENTS = 2**24


def check_generations(n, n_components: int, name: str = "n", *, minimum: int = 0) -> int:
    """A number of generations whose exact laws (about ``K (n + 1)(n + 2) / 2`` components in all) fit
    ``MAX_TOTAL_COMPONENTS``."""
    n = check_int(n, name, minimum=minimum)
    total = n_components * (n + 1.0) * (n + 2.0) / 2.0
    if total > MAX_TOTAL_COMPONENTS:
        raise ValueError(
            f"{name} too large: {name}={fmt(n)} generations of a {n_components}-component law build about "
            f"{total:.3g} mixture components in all (generation k has about (k + 1) x {n_components}), over the "
            f"limit of {MAX_TOTAL_COMPONENTS:,}; use fewer generations"
        )
    return n


@dataclasses.dataclass
class Trajectory:
    """Per-generation distances (index n = 0..N) of the exact laws ``p_n``."""

    times: np.ndarray
    mean_error: np.ndarray
    cov_error: np.ndarray
    gelbrich_to_data: np.ndarray
    w2_pc1_to_data: np.ndarray
    w2_pc1_to_limit: np.ndarray | None

    def to_json(self) -> dict:
        out = {f.name: None if getattr(self, f.name) is None else np.asarray(getattr(self, f.name)).tolist()
               for f in dataclasses.fields(self)}
        out["generations"] = len(self.mean_error) - 1
        return out

    def figure(self, title: str = ""):
        """The distances against generation (:func:`hermite_limit.plots.trajectory_figure`)."""
        from .plots import trajectory_figure

        return trajectory_figure(self, title=title)


def principal_axis(gm: GaussianMixture) -> np.ndarray:
    """Unit eigenvector of the largest eigenvalue of the mixture covariance."""
    if not isinstance(gm, PushedCopies):
        gm = as_mixture(gm, "gm")
    lam, V = np.linalg.eigh(_moments(gm)[1])
    return V[:, -1]


def _moments(law) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance on the host (numpy). The laws of successive generations have different
    component counts, and JAX compiles every eager operation anew for each shape: done with jnp, the
    moments of 30 generations cost about 15 s of compilation for microseconds of arithmetic."""
    if isinstance(law, PushedCopies):
        x, v = np.asarray(law.points), np.asarray(law.point_weights)
        rho, c, w = np.asarray(law.rho), np.asarray(law.var), np.asarray(law.term_weights)
        mu = v @ x
        C = (x - mu).T @ ((x - mu) * v[:, None])
        a, b = w @ rho, w @ (rho * rho)
        return a * mu, b * C + (b - a * a) * np.outer(mu, mu) + (w @ c) * np.eye(x.shape[1])
    w, m, S = np.asarray(law.weights), np.asarray(law.means), np.asarray(law.covs)
    d = m.shape[1]
    mean = w @ m
    within = {"iso": lambda: (w @ S) * np.eye(d), "diag": lambda: np.diag(w @ S), "full": lambda: np.einsum("k,kij->ij", w, S)}[law.cov_type]()
    mc = m - mean
    return mean, within + (mc * w[:, None]).T @ mc


def trajectory(data: GaussianMixture, alpha: float, schedule, n: int, init: GaussianMixture | None = None) -> Trajectory:
    """Distances of ``p_0..p_n`` to the data (and to the limit when the schedule is constant).

    ``data`` and ``init`` are mixtures of the same dimension, ``alpha`` in [0, 1], ``n >= 0`` generations
    within ``MAX_TOTAL_COMPONENTS`` (see :func:`check_generations`), ``schedule`` as in ``hl.schedule_times``.
    """
    data = as_mixture(data, "data")
    alpha = check_alpha(alpha)
    n = check_generations(n, data.n_components + (0 if init is None else as_mixture(init, "init").n_components))
    if init is not None:
        init = as_mixture(init, "init")
        if init.dim != data.dim:
            raise ValueError(f"init has dimension {init.dim} but data has dimension {data.dim}")
    times = schedule_times(schedule, n)
    u = principal_axis(data)
    data_1d = data.project(u)
    init_1d = None if init is None else init.project(u)
    m0, S0 = _moments(data)
    constant = np.allclose(times, times[0], rtol=1e-14)
    exact = data.n_components <= MAX_COMPONENTS_FOR_W2
    lim_1d = limit_distribution(data_1d, alpha, float(times[0]), 1e-13) if constant and alpha > 0 and exact else None
    rows = []
    for k in range(n + 1):
        p = generation(data, alpha, times, k, init=init)
        m, S = _moments(p)
        # <u, P_t X> = P_t <u, X> for a unit u: the projected generation is the generation of the projection
        p_1d = generation(data_1d, alpha, times, k, init=init_1d)
        rows.append((
            np.linalg.norm(m - m0),
            np.linalg.norm(S - S0),
            gaussian_w2(m, S, m0, S0),
            w2_1d(p_1d, data_1d).value if exact else np.nan,
            w2_1d(p_1d, lim_1d).value if lim_1d is not None else np.nan,
        ))
    cols = np.array(rows).T
    return Trajectory(times, cols[0], cols[1], cols[2], cols[3], cols[4] if lim_1d is not None else None)
