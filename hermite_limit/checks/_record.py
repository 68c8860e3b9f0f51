"""The record every theorem check returns, and the helper that builds it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


# relation -> the inequality it stands for (shown in report.md)
RELATIONS = {
    "=": "|measured - predicted| <= tolerance",
    "<=": "measured <= predicted + tolerance",
    ">=": "measured >= predicted - tolerance",
    "ratio": "|measured / predicted - 1| <= tolerance",
}


@dataclasses.dataclass
class CheckRecord:
    """One numerical check of one claim.

    ``predicted`` and ``measured`` are the figures compared; ``tolerance`` is the allowed gap (or,
    for one-sided claims, the slack in the inequality); ``relation`` says how they are compared
    (one of :data:`RELATIONS`):

    - ``"="``: ``|measured - predicted| <= tolerance``;
    - ``"<="``: ``measured <= predicted + tolerance``;
    - ``">="``: ``measured >= predicted - tolerance``;
    - ``"ratio"``: ``|measured / predicted - 1| <= tolerance``.

    When a claim is checked on many cases the row shows the worst case, so ``passed`` implies the
    relation on the row's numbers; ``passed`` may require more (stated in ``claim``, numbers in
    ``details``). ``figure`` is the matplotlib Figure the check draws (saved by the report).
    """

    name: str
    claim: str
    predicted: float
    measured: float
    tolerance: float
    passed: bool
    relation: str
    details: dict = dataclasses.field(default_factory=dict)
    figure: Any = None

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise ValueError(f"relation must be one of {list(RELATIONS)}; got relation={self.relation!r}")

    def holds(self) -> bool:
        """Whether the row's own numbers satisfy ``relation`` (``passed`` implies it)."""
        p, m, tol = float(self.predicted), float(self.measured), float(self.tolerance)
        if self.relation == "=":
            return abs(m - p) <= tol
        if self.relation == "<=":
            return m <= p + tol
        if self.relation == ">=":
            return m >= p - tol
        return abs(m / p - 1) <= tol

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "claim": self.claim,
            "predicted": _finite_or_str(self.predicted),
            "measured": _finite_or_str(self.measured),
            "tolerance": _finite_or_str(self.tolerance),
            "passed": bool(self.passed),
            "relation": self.relation,
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
