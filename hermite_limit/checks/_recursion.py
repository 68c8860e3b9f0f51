"""Checks of the recursion's closed form: fixed point, independence of init, geometric rates.

All use exact one-dimensional metrics (quantile W2, quadrature TV) on exact laws, so the only
error is quadrature error, which each estimate reports and each check adds to its tolerance.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._limit import generation, limit_distribution
from .._mixture import GaussianMixture, standard_normal
from ..divergences import tv_distance, w2_1d
from ._record import CheckRecord
from ._figures import rate_figure, density_figure


def check_fixed_point(data: GaussianMixture, alpha: float, t0: float, tol: float = 1e-12,
                      candidate: GaussianMixture | None = None) -> CheckRecord:
    """The truncated series limit is a fixed point of the generation map to within ``tol``.

    ``candidate`` replaces the closed-form limit as the law tested (to show a wrong one is caught).
    """
    lim = limit_distribution(data, alpha, t0, tol)
    if candidate is not None:
        lim = dataclasses.replace(lim, law=candidate)
    nxt = generation(data, alpha, t0, 1, init=lim.mixture)
    w2 = w2_1d(nxt, lim)
    gens = [generation(data, alpha, t0, n) for n in (0, 2, 10)]
    fig = density_figure(
        [(g, f"generation {n}") for g, n in zip(gens, (0, 2, 10))] + [(lim.mixture, "limit (closed form)")],
        title=f"Fixed point: alpha={alpha:g}, t0={t0:g}",
    )
    return CheckRecord(
        name=f"fixed_point[alpha={alpha:g},t0={t0:g}]",
        claim="p_inf = sum_k alpha (1-alpha)^{k-1} P_{k t0} p_data is a fixed point: W2(G(p_inf), p_inf) = 0",
        predicted=0.0,
        measured=w2.value,
        tolerance=tol + w2.error,
        relation="=",
        passed=w2.value <= tol + w2.error,
        details={"n_terms": lim.n_terms, "tail_mass": lim.tail_mass, "w2_error": w2.error},
        figure=fig,
    )


def check_init_independence(data: GaussianMixture, alpha: float, t0: float, n: int = 40,
                            kappa: float | None = None) -> CheckRecord:
    """From any initial model, ``W2(p_n, p_inf) <= kappa^n W2(p_0, p_inf)`` (``kappa`` overridable)."""
    lim = limit_distribution(data, alpha, t0, 1e-14)
    kappa = math.sqrt(1 - alpha) * math.exp(-t0) if kappa is None else kappa
    inits = {
        "p_data": data,
        "N(0,1)": standard_normal(1),
        "N(5, 0.1)": GaussianMixture([1.0], [[5.0]], [0.1]),
        "N(-3, 4)": GaussianMixture([1.0], [[-3.0]], [4.0]),
    }
    worst_ratio, bound_total, measured_total = 0.0, 0.0, 0.0
    for init in inits.values():
        start = w2_1d(init, lim).value
        end = w2_1d(generation(data, alpha, t0, n, init=init), lim)
        bound = kappa**n * start + lim.w2_error_bound + end.error
        worst_ratio = max(worst_ratio, end.value / bound)
        bound_total, measured_total = max(bound_total, bound), max(measured_total, end.value)
    return CheckRecord(
        name=f"init_independence[alpha={alpha:g},t0={t0:g}]",
        claim=f"the limit does not depend on p_0: W2(p_{n}, p_inf) <= kappa^{n} W2(p_0, p_inf) for 4 initial models "
        "(row: largest W2(p_n, p_inf) against the largest bound)",
        predicted=bound_total,
        measured=measured_total,
        tolerance=0.0,
        relation="<=",
        passed=worst_ratio <= 1.0,
        details={"kappa": kappa, "worst_ratio_to_bound": worst_ratio, "inits": list(inits)},
    )


def check_w2_rate(data: GaussianMixture, alpha: float, t0: float, n: int = 15, kappa: float | None = None) -> CheckRecord:
    """Per-generation W2 ratios to the limit lie below ``kappa = sqrt(1-alpha) e^{-t0}``.

    ``kappa`` may be overridden (to test that a wrong rate is detected).
    """
    lim = limit_distribution(data, alpha, t0, 1e-15)
    kappa_true = math.sqrt(1 - alpha) * math.exp(-t0)
    kappa = kappa_true if kappa is None else kappa
    dist = [w2_1d(generation(data, alpha, t0, i), lim) for i in range(n + 1)]
    values = np.array([e.value for e in dist])
    noise = np.array([e.error for e in dist]) + lim.w2_error_bound
    usable = values[1:] > 1e3 * noise[1:]
    ratios = values[1:][usable] / values[:-1][usable]
    measured = float(ratios.max()) if ratios.size else float("nan")
    fig = rate_figure(values, kappa, f"W2(p_n, p_inf), alpha={alpha:g}, t0={t0:g}", "W2 to the limit")
    return CheckRecord(
        name=f"w2_rate[alpha={alpha:g},t0={t0:g}]",
        claim="W2(p_{n+1}, p_inf) <= kappa W2(p_n, p_inf), kappa = sqrt(1-alpha) e^{-t0} (row: largest ratio against kappa)",
        predicted=kappa,
        measured=measured,
        tolerance=1e-6 * kappa,
        relation="<=",
        passed=bool(ratios.size) and measured <= kappa * (1 + 1e-6),
        details={"ratios": ratios.tolist(), "kappa_theory": kappa_true},
        figure=fig,
    )


def check_tv_rate(data: GaussianMixture, alpha: float, t0: float, n: int = 10, rate: float | None = None) -> CheckRecord:
    """Per-generation TV ratios to the limit lie below ``1 - alpha``."""
    lim = limit_distribution(data, alpha, t0, 1e-15)
    rate = 1 - alpha if rate is None else rate
    dist = [tv_distance(generation(data, alpha, t0, i), lim) for i in range(n + 1)]
    values = np.array([e.value for e in dist])
    errors = np.array([e.error for e in dist]) + lim.tail_mass
    usable = values[1:] > 1e2 * errors[1:]
    # one-sided: the ratio may exceed the rate only by the quadrature error of both estimates
    slack = (errors[1:] + rate * errors[:-1]) / values[:-1]
    excess = (values[1:] / values[:-1] - rate - slack)[usable]
    ratios = (values[1:] / values[:-1])[usable]
    measured = float(ratios.max()) if ratios.size else float("nan")
    return CheckRecord(
        name=f"tv_rate[alpha={alpha:g},t0={t0:g}]",
        claim="TV(p_{n+1}, p_inf) <= (1-alpha) TV(p_n, p_inf) (row: largest ratio against 1-alpha)",
        predicted=rate,
        measured=measured,
        tolerance=float(slack[usable].max()) if ratios.size else 0.0,
        relation="<=",
        passed=bool(ratios.size) and bool(np.all(excess <= 0)),
        details={"ratios": ratios.tolist()},
        figure=rate_figure(values, rate, f"TV(p_n, p_inf), alpha={alpha:g}, t0={t0:g}", "TV to the limit"),
    )


def check_no_fresh_data(data: GaussianMixture, t0: float, n: int = 60, rate: float | None = None) -> CheckRecord:
    """With alpha = 0, ``p_n = P_{n t0} p_0 -> N(0, I)``: ``W2(p_n, gamma) <= e^{-n t0} W2(p_0, gamma)``.

    ``rate`` replaces the per-generation contraction ``e^{-t0}``."""
    gamma = standard_normal(1)
    start = w2_1d(data, gamma).value
    end = w2_1d(generation(data, 0.0, t0, n), gamma)
    bound = (math.exp(-t0) if rate is None else rate) ** n * start
    return CheckRecord(
        name=f"no_fresh_data[t0={t0:g}]",
        claim=f"alpha = 0 collapses to N(0, 1): W2(p_{n}, N(0,1)) <= e^(-n t0) W2(p_0, N(0,1))",
        predicted=bound,
        measured=end.value,
        tolerance=end.error,
        relation="<=",
        passed=end.value <= bound + end.error,
    )
