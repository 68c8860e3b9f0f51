"""The verification suite behind ``hermite-limit verify``: every claim checked on the built-in data."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from .. import datasets
from .._validation import check_alpha, check_positive_int, check_time
from ._record import CheckRecord
from ._recursion import check_fixed_point, check_init_independence, check_no_fresh_data, check_tv_rate, check_w2_rate
from ._propagation import (
    check_discounted_accumulation,
    check_girsanov_kl,
    check_seed_chi2_bounds,
    check_w2_ball,
    seed_experiment_panels,
)
from ._spectral import check_annealed_schedules, check_attenuation, check_mode_rates
from ._learned import LEARNED_FULL, LEARNED_QUICK, check_learned_family


@dataclasses.dataclass(frozen=True)
class VerifyConfig:
    """Settings of a verification run (all overridable from a TOML file with the same keys).

    The defaults are the seeds' synthetic experiment: alpha in {0.1, 0.5, 0.9}, 20 generations,
    the 10-D mixture of five N(mu_k, 0.6^2 I) (see ``datasets.seed_gmm10``), truncation ``t0``.
    ``only`` restricts the run to some check families (names in :data:`CHECK_FAMILIES`: the check
    functions' names without ``check_``, and ``seed_experiment_pc_panels`` for the figure of the full
    run); empty means everything.
    """

    alphas: tuple[float, ...] = (0.1, 0.5, 0.9)
    t0: float = 0.1
    generations: int = 20
    seed: int = 0
    quick: bool = False
    only: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.alphas:
            raise ValueError("alphas must contain at least one value")
        for a in self.alphas:
            check_alpha(a, "alphas")
        check_time(self.t0, "t0")
        check_positive_int(self.generations, "generations", allow_zero=False)
        check_positive_int(self.seed, "seed")
        if isinstance(self.only, str) or not all(isinstance(f, str) for f in self.only):
            raise TypeError(f"only must be a sequence of check family names; got only={self.only!r}")
        unknown = sorted(set(self.only) - set(CHECK_FAMILIES))
        if unknown:
            raise ValueError(f"only has unknown check families {unknown}; known: {list(CHECK_FAMILIES)}")

    @classmethod
    def from_toml(cls, path: str | Path, **overrides) -> "VerifyConfig":
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
        raw = raw.get("verify", raw)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"config file {path} has unknown keys {sorted(unknown)}; known: {sorted(known)}")
        for key in ("alphas", "only"):
            if isinstance(raw.get(key), list):
                raw[key] = tuple(raw[key])
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)


CHECK_FAMILIES = (
    "fixed_point", "w2_rate", "tv_rate", "attenuation", "mode_rates", "annealed_schedules", "init_independence",
    "no_fresh_data", "girsanov_kl", "seed_chi2_bounds", "discounted_accumulation", "w2_ball", "seed_experiment_pc_panels",
    "learned",
)


def planned_checks(config: VerifyConfig) -> list[tuple[str, Callable[[], CheckRecord]]]:
    """The checks of a run, as (label, thunk) pairs, so progress can be shown per check."""
    bimodal = datasets.bimodal_1d()
    t0 = config.t0
    plan: list[tuple[str, Callable[[], CheckRecord]]] = []

    def add(family: str, label: str, thunk: Callable) -> None:
        if not config.only or family in config.only:
            plan.append((label, thunk))

    for alpha in config.alphas:
        add("fixed_point", f"fixed point alpha={alpha}", lambda a=alpha: check_fixed_point(bimodal, a, t0))
        add("w2_rate", f"W2 rate alpha={alpha}", lambda a=alpha: check_w2_rate(bimodal, a, t0, n=8 if config.quick else 15))
        add("tv_rate", f"TV rate alpha={alpha}", lambda a=alpha: check_tv_rate(bimodal, a, t0, n=6 if config.quick else 10))
    seed = datasets.seed_gmm10()
    for alpha in config.alphas:
        add("attenuation", f"attenuation alpha={alpha}", lambda a=alpha: check_attenuation(seed, a, t0, order=3 if config.quick else 4))
        add("mode_rates", f"mode rates alpha={alpha}", lambda a=alpha: check_mode_rates(bimodal, a, t0))
    mid = config.alphas[len(config.alphas) // 2]
    add("annealed_schedules", "annealed schedules",
        lambda: check_annealed_schedules(bimodal, mid, t0, n_asymptotic=5000 if config.quick else 20_000))
    add("init_independence", "init independence", lambda: check_init_independence(bimodal, mid, t0))
    add("no_fresh_data", "no fresh data", lambda: check_no_fresh_data(bimodal, t0))
    # error propagation (second paper): the seeds' early stopping t0 = 0.02
    t_seed = 0.02
    key_seed = config.seed
    add("girsanov_kl", "Girsanov KL bound", lambda: check_girsanov_kl(d=3, n_errors=12 if config.quick else 40, seed=key_seed))
    add("seed_chi2_bounds", "seed chi2 bounds", lambda: check_seed_chi2_bounds(d=2, n_paths=2000 if config.quick else 8000,
                                                                               n_steps=100 if config.quick else 300, seed=key_seed))
    add("discounted_accumulation", "discounted accumulation",
        lambda: check_discounted_accumulation(bimodal, config.alphas, t_seed, n=8 if config.quick else config.generations))
    if config.quick:
        ring = datasets.ring_2d()
        add("w2_ball", "W2 ball (ring-2d)", lambda: check_w2_ball(ring, mid, t_seed, n_generations=6, n_particles=400,
                                                                  n_steps=40, seed=key_seed))
    else:
        for alpha in config.alphas:
            add("w2_ball", f"W2 ball alpha={alpha}",
                lambda a=alpha: check_w2_ball(seed, a, t_seed, config.generations, 600, 100, seed=key_seed))
        add("w2_ball", "W2 ball with score error",
            lambda: check_w2_ball(seed, mid, t_seed, config.generations, 600, 100, eps=0.3, seed=key_seed))
    # learned scores (a network retrained every generation): one family per data set and t0
    setting = LEARNED_QUICK if config.quick else LEARNED_FULL
    alphas = sorted({min(config.alphas), max(config.alphas)}) if setting["extreme_alphas"] else config.alphas
    for name in setting["datasets"]:
        for t in setting["t0s"]:
            add("learned", f"learned {name} t0={t}", lambda nm=name, tt=t: check_learned_family(
                nm, datasets.preset(nm), alphas, tt, setting["generations"] or config.generations,
                setting["n_particles"], setting["learner"](), setting["n_steps"], seed=key_seed))
    return plan


def planned_figures(config: VerifyConfig) -> list[tuple[str, Callable]]:
    """Figures of the report that are not checks: the seeds' principal-component sample panels."""
    if config.quick or (config.only and "seed_experiment_pc_panels" not in config.only):
        return []
    seed = datasets.seed_gmm10()
    return [("seed_experiment_pc_panels",
             lambda: seed_experiment_panels(seed, config.alphas, 0.02, (0, 10, 20), 1000, 100, config.seed))]


def run_checks(config: VerifyConfig, progress: bool = True, writer=None) -> tuple[list[CheckRecord], dict]:
    """Run every planned check and figure, in order, with a progress bar. Returns (records, figures).

    With ``writer`` (a :class:`ReportWriter` inside its ``with`` block) every record and figure is
    handed to it as soon as it is computed, so its figure is saved and closed at once.
    """
    import matplotlib

    plan = planned_checks(config)
    extra = planned_figures(config)
    records, figures = [], {}
    # each record keeps its figure open until the report is written: silence the open-figure warning
    quiet = matplotlib.rc_context({"figure.max_open_warning": 0})
    with quiet, tqdm(total=len(plan) + len(extra), desc="verify", unit="step", disable=not progress) as bar:
        for label, thunk in plan:
            bar.set_postfix_str(label)
            out = thunk()
            new = out if isinstance(out, list) else [out]
            records.extend(new)
            if writer is not None:
                for rec in new:
                    writer.add(rec)
            bar.update()
        for name, thunk in extra:
            bar.set_postfix_str(name)
            figures[name] = thunk()
            if writer is not None:
                writer.add_figure(name, figures[name])
            bar.update()
    return records, figures
