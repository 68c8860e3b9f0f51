"""Writing a verification report atomically: report.json, report.md and the figures."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from ._record import CheckRecord


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
    lines += ["| check | claim | predicted | measured | tolerance | result |", "|---|---|---|---|---|---|"]
    for e in payload["checks"]:
        verdict = "pass" if e["passed"] else "**FAIL**"
        lines.append(
            f"| {e['name']} | {e['claim']} | {_fmt(e['predicted'])} | {_fmt(e['measured'])} | {_fmt(e['tolerance'])} | {verdict} |"
        )
    lines.append("")
    for name, png in payload.get("figures", {}).items():
        lines += [f"### {name}", "", f"![{name}]({png})", ""]
    for e in payload["checks"]:
        if "figure" in e:
            lines += [f"### {e['name']}", "", f"![{e['name']}]({e['figure']})", ""]
    return "\n".join(lines)


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_")


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
