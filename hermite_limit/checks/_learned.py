"""Checks of the theory against *learned* scores: a network retrained every generation (``hl.NeuralScore``).

For each data set, truncation time ``t0`` and fresh-data fraction ``alpha``, :func:`retrain` runs the learner
for ``n_generations`` (one run per alpha, shared by the checks below):

- ``learned_w2_ball``: the theorem ``sliced_w2_i <= sum_j kappa^{i-j} delta_j`` (per-generation errors
  ``delta_j`` measured against the ideal output of the training set actually used) must hold, and the learner
  must be good enough that the trajectory stays in the ball of a *declared* per-generation budget
  ``delta_budget`` (``sliced_w2_i <= delta_budget (1 - kappa^{i+1}) / (1 - kappa)``): a learner that does not
  learn fails this check;
- ``learned_attenuation``: the Hermite coefficients of each coordinate marginal after the last generation
  against the closed form ``hl.generation`` (hence the filter ``lambda_m``): orders ``m <= m_required`` must
  agree within 4 standard errors plus the W2-ball allowance; the first order that leaves 4 standard errors (the
  order at which the network's own smoothing or bias takes over) is reported, not tuned away; for ``d >= 3`` the
  energies per total order are reported beside the filtered data energies;
- ``learned_drift_order``: the drift ``sliced W2(p_N, p_data)`` after the last generation is ordered in alpha as
  the closed form orders it (less fresh data, more drift): no pair of alphas is reversed by more than the two
  drifts' sampling-noise floors (a reversal inside them is reported as a tie), and each learned drift is
  within the W2-ball bound (plus sampling noise) of the closed-form one (triangle inequality).
"""

from __future__ import annotations

import math

import jax
import numpy as np

from .._limit import generation
from .._precision import x64
from ..sampling._learners import NeuralScore
from ..sampling._retrain import RetrainResult, _bucket, _rms, retrain
from ..sampling._score import pad_mixture
from ..sampling._stats import law_cells, projected_w2_cells
from ._figures import PALETTE, _plt, integer_ticks, legend_outside
from ._record import CheckRecord

Z = 4.0  # standard errors allowed

# the learned family of ``hermite-limit verify``: --quick and the full run (generations None: the config's)
LEARNED_QUICK = dict(datasets=("bimodal-1d", "ring-2d"), t0s=(0.1,), generations=5, n_particles=1000, n_steps=40,
                     learner=lambda: NeuralScore(width=32, depth=2, steps=1000), extreme_alphas=True)
LEARNED_FULL = dict(datasets=("bimodal-1d", "ring-2d", "seed-gmm10"), t0s=(0.02, 0.1), generations=None,
                    n_particles=4000, n_steps=200, learner=lambda: NeuralScore(width=64, depth=3, steps=3000),
                    extreme_alphas=False)


@x64
def learned_run(data, alpha: float, t0: float, n_generations: int, n_particles: int, learner=None, n_steps: int = 100,
                seed: int = 0) -> tuple[RetrainResult, np.ndarray]:
    """One learned run (exponential integrator, geometric grid, ``T = 4``) and its drift ``sliced W2(hat-p_i, p_data)``
    per generation (``(N,)``, on the run's directions)."""
    learner = NeuralScore(width=32, depth=2, steps=1000) if learner is None else learner
    data_pad = pad_mixture(data, _bucket(data.n_components))
    drift = []
    res = retrain(jax.random.key(seed), data, alpha, t0, n_generations, n_particles, learner=learner, n_steps=n_steps,
                  method="exponential", grid="geometric", progress=False, callback=lambda i, x: drift.append(x),
                  n_record=4000)
    U = res.records.directions
    cells = law_cells(data_pad, U, min(n_particles, 4000))  # the data's side of every generation's W2
    drifts = np.array([_rms(projected_w2_cells(x[:4000], U, cells)) for x in drift])
    return res, drifts


def delta_budget(data, floor: float, factor: float = 0.1) -> float:
    """The per-generation error a good learner is allowed: ``factor * sqrt(tr Cov(p_data) / d) + 3 * floor``."""
    scale = math.sqrt(float(np.trace(np.asarray(data.cov()))) / data.dim)
    return factor * scale + 3.0 * floor


def check_learned_w2_ball(res: RetrainResult, data, label: str, budget_factor: float = 0.1) -> CheckRecord:
    """The W2 ball of a learned run: the theorem (``sliced_w2 <= w2_bound``) and the declared budget (see module)."""
    R = res.records
    kappa = R.kappa
    N = R.sliced_w2.shape[0]
    budget = delta_budget(data, float(np.max(R.sliced_w2_floor)), budget_factor)
    radius = budget * (1 - kappa ** np.arange(1, N + 1)) / (1 - kappa)
    theorem = bool(np.all(R.sliced_w2 <= R.w2_bound * (1 + 1e-9) + 1e-12))
    inside = bool(np.all(R.sliced_w2 <= radius))
    ratio = float(np.max(R.sliced_w2 / radius))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    g = np.arange(1, N + 1)
    ax.plot(g, R.sliced_w2, "o-", color=PALETTE[0], label="sliced W2(learned, closed form)")
    ax.plot(g, R.w2_bound, "s--", color=PALETTE[1], label="sum kappa^(i-j) delta_j (measured delta)")
    ax.plot(g, radius, "-", color=PALETTE[3], label="ball of the declared budget")
    ax.plot(g, R.sliced_w2_floor, ":", color="0.4", label="sampling-noise floor")
    ax.set_xlabel("generation n")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("sliced W2")
    ax.set_title(f"learned W2 ball {label}")
    legend_outside(ax)
    why = [] if theorem else ["sliced_w2 exceeds sum kappa^(i-j) delta_j (the theorem fails: a bug)"]
    if not inside:
        worst = int(np.argmax(R.sliced_w2 / radius))
        why.append(f"the learned trajectory leaves the W2 ball of the declared budget delta={budget:.3g} at generation "
                   f"{worst + 1} (sliced W2 {R.sliced_w2[worst]:.3g} > radius {radius[worst]:.3g}): the learner's "
                   f"per-generation error delta={R.delta[worst]:.3g} is too large")
    return CheckRecord(
        name=f"learned_w2_ball[{label}]",
        claim="a learned score retrained every generation stays in the W2 ball sum_j kappa^(i-j) delta of the closed "
              "form, for its measured delta (theorem) and for a declared per-generation budget (learner quality)",
        predicted=1.0,
        relation="<=",
        measured=ratio,  # max over generations of sliced W2 / the ball's radius
        tolerance=0.0,
        passed=theorem and inside,
        details={"kappa": kappa, "delta_budget": budget, "max_ratio_to_radius": ratio, "theorem_holds": theorem,
                 "sliced_w2": R.sliced_w2.tolist(), "w2_bound": R.w2_bound.tolist(), "delta": R.delta.tolist(),
                 "floor": R.sliced_w2_floor.tolist(), "loss_excess": R.loss_excess.tolist(),
                 "verdict": "; ".join(why) or "inside"},
        figure=fig,
    )


def attenuation_orders(res: RetrainResult, generation_index: int = -1):
    """Per order ``m = 1..order``: the worst z-score ``|a_m - a_m^exact| / se`` over coordinates, the same after the
    W2-ball allowance, and the first order whose z-score exceeds 4 (None when all follow)."""
    R = res.records
    h, ex, se, al = (np.asarray(a)[generation_index][:, 1:] for a in (R.hermite, R.hermite_exact, R.hermite_se,
                                                                        R.hermite_allowance))
    z = np.max(np.abs(h - ex) / se, axis=0)
    z_allow = np.max(np.maximum(np.abs(h - ex) - al, 0.0) / se, axis=0)
    off = np.flatnonzero(z > Z)
    return z, z_allow, (int(off[0]) + 1 if off.size else None)


def check_learned_attenuation(res: RetrainResult, data, label: str, m_required: int = 2) -> CheckRecord:
    """Per-order attenuation of a learned run against the closed form (see module)."""
    R = res.records
    z, z_allow, takeover = attenuation_orders(res)
    order = z.shape[0]
    m = np.arange(order + 1)
    N = R.hermite.shape[0]
    rho = math.exp(-res.t0)
    lam = np.asarray(R.hermite_limit)
    measured = float(np.max(z_allow[:m_required]))
    details = {
        "generations": N, "z_per_order": z.tolist(), "z_after_w2_allowance_per_order": z_allow.tolist(),
        "takeover_order": takeover if takeover is not None else f"none up to order {order}",
        "hermite": R.hermite[-1].tolist(), "hermite_exact": R.hermite_exact[-1].tolist(),
        "hermite_se": R.hermite_se[-1].tolist(), "hermite_limit": lam.tolist(),
        "mode_contraction_per_generation": ((1 - res.alpha) * rho ** m).tolist(),
    }
    if data.dim >= 3:
        ze = np.abs(R.energy[-1] - R.energy_exact[-1]) / R.energy_se[-1]
        off = np.flatnonzero(ze[1:] > Z)
        details.update(energy=R.energy[-1].tolist(), energy_se=R.energy_se[-1].tolist(),
                       energy_exact=R.energy_exact[-1].tolist(), energy_limit=np.asarray(R.energy_limit).tolist(),
                       energy_takeover_order=int(off[0]) + 1 if off.size else f"none up to order {order}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    orders = np.arange(1, order + 1)
    ax.semilogy(orders, np.maximum(z, 1e-3), "o-", color=PALETTE[0], label="|a_m - closed form| / se")
    ax.semilogy(orders, np.maximum(z_allow, 1e-3), "s--", color=PALETTE[1], label="after the W2-ball allowance")
    ax.axhline(Z, color=PALETTE[3], ls=":", label=f"{Z:g} se")
    if takeover is not None:
        ax.axvline(takeover, color="0.5", ls="--", label=f"learner takes over at m={takeover}")
    ax.set_xlabel("Hermite order m")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("z-score (worst coordinate)")
    ax.set_title(f"learned per-order attenuation {label}")
    legend_outside(ax)
    return CheckRecord(
        name=f"learned_attenuation[{label}]",
        claim=f"after {N} learned generations the Hermite coefficients of orders <= {m_required} follow the closed form "
              f"(filter lambda_m) within {Z:g} standard errors plus the W2-ball allowance; the order where the "
              "learner's smoothing takes over is reported",
        predicted=0.0,
        relation="<=",
        measured=measured,
        tolerance=Z,
        passed=measured <= Z,
        details=details,
        figure=fig,
    )


def drift_order_verdict(alphas, learned, exact, slack, noise) -> dict:
    """The alpha ordering of the final drifts, and the W2 ball around each.

    A pair of alphas is *misordered* when its learned drifts are reversed against the closed-form order by
    more than their sampling noise, ``(learned_i - learned_j) sign(exact_i - exact_j) < -(noise_i + noise_j)``
    (``noise``: the sampling-noise floor of each sliced W2); a reversal inside the noise is a tie, listed under
    ``tied_pairs``, not a verdict on the mechanism. ``same_order`` holds when no pair is misordered;
    ``within_ball`` when every learned drift is within its allowance ``slack`` of the closed form.
    """
    learned, exact, slack, noise = (np.asarray(a, dtype=np.float64) for a in (learned, exact, slack, noise))
    tied, misordered = [], []
    for i in range(len(alphas)):
        for j in range(i + 1, len(alphas)):
            gap = (learned[i] - learned[j]) * np.sign(exact[i] - exact[j])
            if gap < -(noise[i] + noise[j]):
                misordered.append([alphas[i], alphas[j]])
            elif gap < 0:
                tied.append([alphas[i], alphas[j]])
    return {"same_order": not misordered, "within_ball": bool(np.all(np.abs(learned - exact) <= slack)),
            "misordered_pairs": misordered, "tied_pairs": tied}


@x64
def check_learned_drift_order(runs: dict, data, label: str, n_exact: int = 20_000, seed: int = 0) -> CheckRecord:
    """Alpha ordering of the drift ``sliced W2(hat-p_N, p_data)`` (see module). ``runs``: alpha -> (result, drifts)."""
    alphas = sorted(runs)
    key = jax.random.key(seed + 17)
    data_pad = pad_mixture(data, _bucket(data.n_components))
    learned, exact, slack, noise = [], [], [], []
    curves = {}
    for a in alphas:
        res, drifts = runs[a]
        R = res.records
        N = R.sliced_w2.shape[0]
        U = R.directions
        ex = []
        cells = law_cells(data_pad, U, n_exact)  # the data's side of every generation's W2
        for i in range(N):
            p = generation(data, a, res.t0, i + 1)
            p = pad_mixture(p, _bucket(p.n_components))
            ex.append(_rms(projected_w2_cells(p.sample(jax.random.fold_in(key, i), n_exact), U, cells)))
        curves[a] = (drifts, np.array(ex))
        learned.append(drifts[-1])
        exact.append(ex[-1])
        slack.append(R.w2_bound[-1] + 3 * R.sliced_w2_floor[-1])
        noise.append(R.sliced_w2_floor[-1])
    learned, exact, slack = map(np.asarray, (learned, exact, slack))
    verdict = drift_order_verdict(alphas, learned, exact, slack, noise)
    same_order, within = verdict["same_order"], verdict["within_ball"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for j, a in enumerate(alphas):
        dl, de = curves[a]
        g = np.arange(1, len(dl) + 1)
        ax.plot(g, dl, "o-", color=PALETTE[j % len(PALETTE)], label=f"learned alpha={a:g}")
        ax.plot(g, de, "--", color=PALETTE[j % len(PALETTE)], label=f"closed form alpha={a:g}")
    ax.set_xlabel("generation n")
    integer_ticks(ax.xaxis)
    ax.set_ylabel("sliced W2(p_n, p_data)")
    ax.set_title(f"drift from the data {label}")
    legend_outside(ax)
    return CheckRecord(
        name=f"learned_drift_order[{label}]",
        claim="with a learned score the drift from the data after the last generation is ordered in alpha as the closed "
              "form orders it (less fresh data, more drift), no pair reversed beyond its sampling noise, and each is "
              "within the W2-ball bound of the closed form",
        predicted=float(np.max(exact)),
        relation="=",  # each alpha within its allowance implies the maxima are within the largest one
        measured=float(np.max(learned)),
        tolerance=float(np.max(slack)),
        passed=same_order and within,
        details={"alphas": alphas, "drift_learned": learned.tolist(), "drift_closed_form": exact.tolist(),
                 "allowance": slack.tolist(), **verdict},
        figure=fig,
    )


def check_learned_family(name: str, data, alphas, t0: float, n_generations: int, n_particles: int, learner=None,
                         n_steps: int = 100, seed: int = 0) -> list[CheckRecord]:
    """Every learned check on one data set and ``t0``: one run per alpha, shared by the checks."""
    runs = {float(a): learned_run(data, float(a), t0, n_generations, n_particles, learner, n_steps, seed)
            for a in alphas}
    out = []
    for a, (res, _) in runs.items():
        label = f"{name},alpha={a:g},t0={t0:g}"
        out.append(check_learned_w2_ball(res, data, label))
        out.append(check_learned_attenuation(res, data, label))
    if len(runs) >= 2:
        out.append(check_learned_drift_order(runs, data, f"{name},t0={t0:g}", seed=seed))
    return out
