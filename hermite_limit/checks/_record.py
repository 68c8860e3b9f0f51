"""The record every theorem check returns, and the helper that builds it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class CheckRecord:
    """One numerical check of one claim.

    ``predicted`` and ``measured`` are the figures compared; ``tolerance`` is the allowed gap (or,
    for one-sided claims, the slack in the inequality); ``passed`` is the verdict. ``figure`` is the
    matplotlib Figure the check draws (saved by the report) and ``details`` any extra numbers.
    """

    name: str
    claim: str
    predicted: float
    measured: float
    tolerance: float
    passed: bool
    details: dict = dataclasses.field(default_factory=dict)
    figure: Any = None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "claim": self.claim,
            "predicted": _finite_or_str(self.predicted),
            "measured": _finite_or_str(self.measured),
            "tolerance": _finite_or_str(self.tolerance),
            "passed": bool(self.passed),
            "details": {k: _jsonable(v) for k, v in self.details.items()},
        }


def _finite_or_str(x: float):
    x = float(x)
    return x if math.isfinite(x) else str(x)


def _jsonable(v):
    if isinstance(v, (list, tuple)):
        return [_jsonable(u) for u in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(u) for k, u in v.items()}
    if isinstance(v, (bool, str)) or v is None:
        return v
    try:
        return _finite_or_str(float(v))
    except (TypeError, ValueError):
        return str(v)
