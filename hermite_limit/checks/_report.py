"""Writing a verification report atomically: report.json, report.md and the figures."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from .._io import StagingFolder
from ._record import RELATIONS, CheckRecord


STAGING_PREFIX = ".report-"


def write_report(records: Sequence[CheckRecord], out_dir: str | os.PathLike, meta: dict | None = None,
                 figures: dict | None = None) -> Path:
    """Write ``report.json``, ``report.md`` and one PNG per figure into ``out_dir``.

    ``figures`` maps names to extra matplotlib figures (not checks) shown in ``report.md``.
    Equivalent to adding every record and figure to a :class:`ReportWriter` and committing it.
    """
    with ReportWriter(out_dir) as writer:
        for rec in records:
            writer.add(rec)
        for name, fig in (figures or {}).items():
            writer.add_figure(name, fig)
        return writer.commit(meta)


class ReportWriter:
    """A report written as the checks run, published at once.

    Use as a context manager. Each figure is saved into a hidden staging folder ``out_dir/.report-XXXX``
    when its record is added (and the figure closed), so a long run keeps no figure open; :meth:`commit`
    writes ``report.md`` and ``report.json`` there and moves everything into ``out_dir``, ``report.json``
    last, so an interrupted run never leaves a half-written report. The staging folder is removed on
    leaving, whether the run succeeded, failed or was interrupted (Ctrl-C); one left by a killed run is
    removed by the next run in the same folder (see :class:`hermite_limit._io.StagingFolder`).
    """

    def __init__(self, out_dir: str | os.PathLike):
        self._stage = StagingFolder(out_dir, STAGING_PREFIX)
        self._entries: list[dict] = []
        self._extra: dict[str, str] = {}

    @property
    def staging(self) -> Path | None:
        """The staging folder (None outside the ``with`` block)."""
        return self._stage.path

    def __enter__(self) -> "ReportWriter":
        self._stage.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._stage.__exit__(*exc)

    def add(self, rec: CheckRecord) -> None:
        """Record a check; its figure (if any) is saved now and closed."""
        entry = rec.to_json()
        if rec.figure is not None:
            png = _safe_name(rec.name) + ".png"
            try:
                rec.figure.savefig(self._stage.path / png, dpi=110)
            finally:
                _close(rec.figure)
            entry["figure"] = png
        self._entries.append(entry)

    def add_figure(self, name: str, fig) -> None:
        """An extra figure (not a check) shown in ``report.md``; saved now and closed."""
        png = _safe_name(name) + ".png"
        try:
            fig.savefig(self._stage.path / png, dpi=110)
        finally:
            _close(fig)
        self._extra[name] = png

    def commit(self, meta: dict | None = None) -> Path:
        """Write report.md and report.json and move the whole report into ``out_dir``."""
        entries = self._entries
        payload = {"meta": meta or {}, "checks": entries, "all_passed": all(e["passed"] for e in entries),
                   "figures": self._extra}
        (self._stage.path / "report.md").write_text(_markdown(payload))
        (self._stage.path / "report.json").write_text(json.dumps(payload, indent=2))
        self._stage.commit(last="report.json")
        return self._stage.out / "report.json"


def _markdown(payload: dict) -> str:
    lines = ["# hermite-limit verify", ""]
    meta = payload["meta"]
    if meta:
        lines += [", ".join(f"{k}: {v}" for k, v in meta.items()), ""]
    n_pass = sum(e["passed"] for e in payload["checks"])
    lines += [f"**{n_pass} of {len(payload['checks'])} checks passed.**", ""]
    used = [r for r in RELATIONS if any(e.get("relation") == r for e in payload["checks"])]
    if used:
        lines += ["Each row compares measured with predicted by its relation, in the worst case checked (the claim says what the "
                  "row measures and any further condition of the verdict):", ""]
        lines += [f"- `{r}`: {RELATIONS[r]}" for r in used] + [""]
    lines += ["| check | claim | predicted | relation | measured | tolerance | result |", "|---|---|---|---|---|---|---|"]
    for e in payload["checks"]:
        verdict = "pass" if e["passed"] else "**FAIL**"
        lines.append(
            f"| {_cell(e['name'])} | {_cell(e['claim'])} | {_fmt(e['predicted'], 6)} | `{e.get('relation', '?')}` | "
            f"{_fmt(e['measured'], 6)} | {_fmt(e['tolerance'])} | {verdict} |"
        )
    lines.append("")
    for name, png in payload.get("figures", {}).items():
        lines += [f"### {name}", "", f"![{name}]({png})", ""]
    for e in payload["checks"]:
        if "figure" in e:
            lines += [f"### {e['name']}", "", f"![{e['name']}]({e['figure']})", ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Table-cell text: a literal ``|`` would end the cell, so it is escaped."""
    return str(text).replace("|", "\\|")


def _fmt(x, digits: int = 4) -> str:
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_")


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
