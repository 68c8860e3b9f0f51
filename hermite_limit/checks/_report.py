"""Writing a verification report atomically: report.json, report.md and the figures."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from ._record import RELATIONS, CheckRecord


def write_report(records: Sequence[CheckRecord], out_dir: str | os.PathLike, meta: dict | None = None,
                 figures: dict | None = None) -> Path:
    """Write ``report.json``, ``report.md`` and one PNG per figure into ``out_dir``.

    ``figures`` maps names to extra matplotlib figures (not checks) shown in ``report.md``.

    Everything is first written to a temporary folder beside ``out_dir`` and then moved in, with
    ``report.json`` last, so an interrupted run never leaves a half-written report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        entries = []
        for rec in records:
            entry = rec.to_json()
            if rec.figure is not None:
                png = _safe_name(rec.name) + ".png"
                rec.figure.savefig(staging / png, dpi=110)
                entry["figure"] = png
                _close(rec.figure)
            entries.append(entry)
        extra = {}
        for name, fig in (figures or {}).items():
            png = _safe_name(name) + ".png"
            fig.savefig(staging / png, dpi=110)
            _close(fig)
            extra[name] = png
        payload = {"meta": meta or {}, "checks": entries, "all_passed": all(e["passed"] for e in entries), "figures": extra}
        (staging / "report.md").write_text(_markdown(payload))
        (staging / "report.json").write_text(json.dumps(payload, indent=2))
        for name in sorted(os.listdir(staging), key=lambda n: n == "report.json"):
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "report.json"


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
            f"| {_cell(e['name'])} | {_cell(e['claim'])} | {_fmt(e['predicted'])} | `{e.get('relation', '?')}` | "
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
