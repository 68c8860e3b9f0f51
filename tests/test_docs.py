"""The project documents itself: no reference to a design file outside the repository, no matplotlib
backend chosen by the library, its notebooks or benchmarks, and every section of docs/conventions.md that
the code cites exists."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist"}
# Spelled in two pieces so that this file does not match itself.
OUTSIDE_DESIGN = "DESIGN" + ".md"
SET_BACKEND = "matplotlib" + ".use"
LIBRARY_TREES = ("hermite_limit", "README.md", "notebooks", "docs", "benchmarks")


def _tracked_files() -> list[Path]:
    """The repository's tracked files (``git ls-files``), or every file outside SKIP_DIRS without git."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30).stdout
        files = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        files = [p for p in ROOT.rglob("*") if p.is_file()]
    return [p for p in files if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # binary (PNG, ...)


def _hits(needle: str, files) -> list[str]:
    hits = []
    for p in files:
        text = _text(p)
        if text is None:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if needle in line:
                hits.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    return hits


def test_tracked_files_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in _tracked_files()}
    assert {"README.md", "docs/conventions.md", "hermite_limit/__init__.py", "tests/test_docs.py"} <= names


def test_no_reference_to_an_outside_design_file():
    assert _hits(OUTSIDE_DESIGN, _tracked_files()) == []


def test_library_notebooks_and_benchmarks_never_set_the_matplotlib_backend():
    files = [p for p in _tracked_files() if p.relative_to(ROOT).parts[0] in LIBRARY_TREES]
    assert any(p.suffix == ".ipynb" for p in files) and any(p.name == "plots.py" for p in files)
    assert _hits(SET_BACKEND, files) == []


def test_every_cited_section_of_the_conventions_exists():
    doc = (ROOT / "docs" / "conventions.md").read_text()
    headings = {m.group(1).strip() for m in re.finditer(r"^#+\s+(.+)$", doc, flags=re.M)}
    cited = set()
    for p in _tracked_files():
        text = _text(p)
        if text is None or p.name in ("conventions.md", "test_docs.py"):
            continue
        # the form  docs/conventions.md, "Section"  (and "Other section" ...), possibly across a line break
        for m in re.finditer(r"docs/conventions\.md[`)\]]*,?\s*((?:\"[^\"]+\"(?:\s*(?:,|and)\s*)?)+)", text):
            cited.update(" ".join(c.split()) for c in re.findall(r"\"([^\"]+)\"", m.group(1)))
    assert len(cited) >= 5  # the docstrings cite sections by name
    assert cited <= headings, f"cited but missing: {sorted(cited - headings)}"
    # the in-page contents links resolve to headings (GitHub anchors: lower case, spaces to dashes)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    links = set(re.findall(r"\]\(#([^)]+)\)", doc))
    assert links and links <= anchors, sorted(links - anchors)
