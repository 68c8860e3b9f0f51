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


@dataclasses.dataclass(frozen=True)
class VerifyConfig:
    """Settings of a verification run (all overridable from a TOML file with the same keys).

    The defaults are the seeds' synthetic experiment: alpha in {0.1, 0.5, 0.9}, 20 generations,
    the 10-D mixture of five N(mu_k, 0.6^2 I) (see ``datasets.seed_gmm10``), truncation ``t0``.
    """

    alphas: tuple[float, ...] = (0.1, 0.5, 0.9)
    t0: float = 0.1
    generations: int = 20
    seed: int = 0
    quick: bool = False

    def __post_init__(self):
        if not self.alphas:
            raise ValueError("alphas must contain at least one value")
        for a in self.alphas:
            check_alpha(a, "alphas")
        check_time(self.t0, "t0")
        check_positive_int(self.generations, "generations", allow_zero=False)
        check_positive_int(self.seed, "seed")

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
        if "alphas" in raw:
            raw["alphas"] = tuple(raw["alphas"])
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)


def planned_checks(config: VerifyConfig) -> list[tuple[str, Callable[[], CheckRecord]]]:
    """The checks of a run, as (label, thunk) pairs, so progress can be shown per check."""
    bimodal = datasets.bimodal_1d()
    t0 = config.t0
    plan: list[tuple[str, Callable[[], CheckRecord]]] = []
    for alpha in config.alphas:
        plan.append((f"fixed point alpha={alpha}", lambda a=alpha: check_fixed_point(bimodal, a, t0)))
        plan.append((f"W2 rate alpha={alpha}", lambda a=alpha: check_w2_rate(bimodal, a, t0, n=8 if config.quick else 15)))
        plan.append((f"TV rate alpha={alpha}", lambda a=alpha: check_tv_rate(bimodal, a, t0, n=6 if config.quick else 10)))
    plan.append(("init independence", lambda: check_init_independence(bimodal, config.alphas[len(config.alphas) // 2], t0)))
    plan.append(("no fresh data", lambda: check_no_fresh_data(bimodal, t0)))
    return plan


def run_checks(config: VerifyConfig, progress: bool = True) -> list[CheckRecord]:
    """Run every planned check, in order, with a progress bar."""
    plan = planned_checks(config)
    records = []
    with tqdm(plan, desc="verify", unit="check", disable=not progress) as bar:
        for label, thunk in bar:
            bar.set_postfix_str(label)
            records.append(thunk())
    return records
