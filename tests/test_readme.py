"""Every shell command the README shows runs as written, in an empty folder, and writes what it promises.

Commands are taken from the README's code blocks (indented or fenced, not ``python`` fences): every line
starting with ``hermite-limit`` or ``python -c``. Left out: the set-up lines at the top (virtual
environment, ``pip install``), a full ``hermite-limit verify`` (without ``--quick``; the main job, minutes)
and ``python -m benchmarks`` (its own test runs it at the smallest size). A command runs after the
``python -c`` lines before it in the same block (which write its input files), as a reader would run them.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hermite_limit import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# files each subcommand promises in its --out folder (the README and the subcommand's --help name them)
PROMISED = {
    "limit": ["limit.json", "limit.png"],
    "generations": ["generations.json", "generations.png"],
    "spectrum": ["spectrum.json", "spectrum.png", "attenuation.png"],
    "forecast": ["forecast.json", "forecast.png"],
    "verify": ["report.json", "report.md"],
}
SLOW_SUBCOMMANDS = {"verify"}  # verify --quick takes more than a minute


def readme_blocks(text: str) -> list[list[str]]:
    """Shell code blocks of a Markdown text: lists of lines (indented blocks and non-python fences)."""
    blocks, current, fence = [], [], None
    for line in text.splitlines():
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith("```"):
                if fence not in ("python", "py", "pycon"):
                    blocks.append(current)
                current, fence = [], None
            else:
                current.append(line)
            continue
        if stripped.startswith("```"):
            if current:
                blocks.append(current)
            current, fence = [], stripped[3:].strip().lower()
        elif line.startswith("    ") and stripped:
            current.append(stripped)
        elif current and not stripped:
            blocks.append(current)
            current = []
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _join_continuations(lines):
    out, buf = [], ""
    for ln in lines:
        if ln.rstrip().endswith("\\"):
            buf += ln.rstrip()[:-1] + " "
        else:
            out.append((buf + ln).strip())
            buf = ""
    return out


def _runs(cmd: str) -> bool:
    if cmd.startswith("python -c"):
        return True
    if not cmd.startswith("hermite-limit"):
        return False
    argv = shlex.split(cmd)[1:]
    return not (argv[:1] == ["verify"] and "--quick" not in argv)


def readme_commands() -> list[tuple[str, list[str]]]:
    """``(command, earlier python -c commands of its block)`` for every command this test runs."""
    found = []
    for block in readme_blocks(README.read_text()):
        setup = []
        for cmd in _join_continuations(block):
            if _runs(cmd):
                found.append((cmd, list(setup)))
                if cmd.startswith("python -c"):
                    setup.append(cmd)
    return found


def _python_c(cmd: str, cwd: Path) -> None:
    argv = shlex.split(cmd)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"


def _params():
    out = []
    for cmd, setup in readme_commands():
        words = shlex.split(cmd)
        slow = words[0] == "hermite-limit" and len(words) > 1 and words[1] in SLOW_SUBCOMMANDS
        out.append(pytest.param(cmd, setup, id=cmd[:60], marks=[pytest.mark.slow] if slow else []))
    return out


def test_readme_commands_are_found():
    cmds = [c for c, _ in readme_commands()]
    assert any(c.startswith("hermite-limit forecast --data samples.npy") for c in cmds)
    assert any(c.startswith("hermite-limit spectrum") for c in cmds)
    # the file forecast reads is written by a command before it in the same block
    (fc_setup,) = [s for c, s in readme_commands() if c.startswith("hermite-limit forecast")]
    assert any("samples.npy" in s for s in fc_setup)
    assert not any("venv" in c or "pip install" in c for c in cmds)


def test_block_parser_on_a_small_document():
    doc = "text\n\n    hermite-limit a --out x\n    python -c \"print(1)\"\n\n```python\nhermite-limit no\n```\n" \
          "```bash\nhermite-limit b \\\n  --out y\n```\n"
    blocks = readme_blocks(doc)
    assert blocks == [["hermite-limit a --out x", 'python -c "print(1)"'], ["hermite-limit b \\", "  --out y"]]
    assert _join_continuations(blocks[1]) == ["hermite-limit b    --out y"]


@pytest.mark.parametrize("cmd, setup", _params())
def test_readme_command_runs_as_written(cmd, setup, tmp_path, monkeypatch, capsys):
    for earlier in setup:
        _python_c(earlier, tmp_path)
    if cmd.startswith("python -c"):
        _python_c(cmd, tmp_path)
        written = re.findall(r"['\"]([\w.-]+\.(?:npy|npz|csv|json|toml))['\"]", cmd)
        assert written, f"{cmd} names no file it writes"
        for name in written:
            assert (tmp_path / name).is_file()
        return
    argv = shlex.split(cmd)[1:]
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 0, capsys.readouterr().err[-2000:]
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else None
    if out is not None:
        assert out.is_dir()
        promised = PROMISED.get(argv[0])
        if promised is None:
            assert any(out.iterdir()), f"{cmd} wrote nothing in {out}"
        for name in promised or []:
            assert (out / name).is_file() and (out / name).stat().st_size > 0, f"{cmd} did not write {name}"
