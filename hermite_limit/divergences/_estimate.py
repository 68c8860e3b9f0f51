"""The result type of every numerical estimate: a value with its own error estimate."""

from __future__ import annotations

from typing import NamedTuple


class Estimate(NamedTuple):
    """``value`` with an ``error`` estimate (``|true - value| <= error`` as far as the method can tell).

    ``method`` names how it was computed and ``detail`` holds diagnostics (nodes used, tail mass).
    """

    value: float
    error: float
    method: str
    detail: dict

    def __float__(self) -> float:
        return float(self.value)
