"""Reading user data (mixtures in JSON/TOML, samples in .npy/.npz/.csv) and writing outputs atomically."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from ._mixture import GaussianMixture, empirical

MIXTURE_SUFFIXES = (".json", ".toml")
SAMPLE_SUFFIXES = (".npy", ".npz", ".csv")


def load_data(path: str | os.PathLike) -> GaussianMixture:
    """Load a mixture (JSON/TOML with keys ``weights``, ``means``, ``covariances``) or samples.

    Samples: ``.npy`` (an (N, d) array), ``.npz`` (key ``samples``, or its only array), ``.csv``
    (comma-separated, one sample per row, an optional header line). Errors name the file and key.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"data file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in MIXTURE_SUFFIXES:
        return _load_mixture(p, suffix)
    if suffix in SAMPLE_SUFFIXES:
        return empirical(_load_samples(p, suffix))
    raise ValueError(f"data file {p} must end in one of {MIXTURE_SUFFIXES + SAMPLE_SUFFIXES}")


def _load_mixture(p: Path, suffix: str) -> GaussianMixture:
    try:
        raw = json.loads(p.read_text()) if suffix == ".json" else tomllib.loads(p.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"data file {p} is not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"data file {p} must hold an object with keys weights, means, covariances")
    missing = [k for k in ("weights", "means", "covariances") if k not in raw]
    if missing:
        raise ValueError(f"data file {p} is missing key(s) {missing} (need weights, means, covariances)")
    try:
        return GaussianMixture(raw["weights"], raw["means"], raw["covariances"])
    except ValueError as exc:
        raise ValueError(f"data file {p}: {exc}") from None


def _load_samples(p: Path, suffix: str) -> np.ndarray:
    try:
        if suffix == ".npy":
            x = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                key = "samples" if "samples" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise ValueError(f"data file {p} has arrays {keys}; name the samples array 'samples'")
                x = z[key]
        else:
            x = _read_csv(p)
    except (OSError, EOFError) as exc:
        raise ValueError(f"data file {p} could not be read: {exc}") from None
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"data file {p} must hold samples of shape (N, d); got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"data file {p} must hold numbers; got dtype {x.dtype}")
    return x.astype(np.float64)


def _read_csv(p: Path) -> np.ndarray:
    lines = [ln for ln in p.read_text().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"data file {p} is empty")
    try:
        float(lines[0].split(",")[0])
        body = lines
    except ValueError:
        body = lines[1:]  # a header line
    try:
        rows = [[float(v) for v in ln.split(",")] for ln in body]
    except ValueError as exc:
        raise ValueError(f"data file {p} has a non-numeric entry: {exc}") from None
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"data file {p} has rows of different lengths")
    return np.array(rows)


def mixture_to_json(gm: GaussianMixture) -> dict:
    """A mixture as plain lists (keys weights, means, covariances, covariance_type)."""
    return {
        "weights": np.asarray(gm.weights).tolist(),
        "means": np.asarray(gm.means).tolist(),
        "covariances": np.asarray(gm.covs).tolist(),
        "covariance_type": gm.cov_type,
    }


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    """Write JSON to ``path`` through a temporary file and an atomic rename.

    The file gets the permissions of a plain ``open`` (``0o666`` less the process umask).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(p.parent, f".{p.name}.", "")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def save_figure_atomic(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure through a temporary file and an atomic rename (umask permissions)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(p.parent, f".{p.stem}.", p.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def _create_temp(folder: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """Create a new file ``folder/prefix<random>suffix`` with mode ``0o666`` less the umask.

    ``tempfile.mkstemp`` would create it ``0o600`` (and the rename would keep that mode); here the
    kernel applies the umask as for any ``open``, without reading or changing the process umask.
    """
    for _ in range(100):
        name = os.path.join(folder, f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")


# -- staging folders (a whole set of outputs moved in at once) ------------------------------------

STAGING_GRACE_SECONDS = 1.0  # an unlocked staging folder younger than this may be one being created (not yet locked)


class StagingFolder:
    """A hidden folder ``out/<prefix>XXXX`` where outputs are written before being moved into ``out``.

    Use as a context manager. Entering creates ``out`` if needed, removes staging folders with the same
    prefix that no running process holds (left by a run that was killed), then creates this run's
    folder and holds an exclusive ``flock`` on it for the life of the process. Leaving, on success or on
    any exception (Ctrl-C included), removes the folder, and removes ``out`` too if this run created it
    and it is still empty. :meth:`commit` moves the staged files into ``out`` (``last`` moved last).

    A killed process cannot clean up; the kernel releases its lock, and the next run (or any later
    :meth:`commit` in the same folder) removes the folder. Without ``fcntl`` (Windows) a staging folder
    counts as left behind once it is a day old.
    """

    def __init__(self, out: str | os.PathLike, prefix: str):
        self.out = Path(out)
        self.prefix = prefix
        self.path: Path | None = None
        self._lock: int | None = None
        self._created_out = False

    def __enter__(self) -> "StagingFolder":
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"out must be a folder; {self.out} is a file")
        self._created_out = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(self.out, self.prefix)
        self.path = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.out))
        self._lock = _try_lock(self.path)
        return self

    def commit(self, last: str | None = None) -> None:
        """Move every staged file into ``out`` (replacing same-named files), ``last`` last."""
        for name in sorted(os.listdir(self.path), key=lambda n: n == last):
            os.replace(self.path / name, self.out / name)
        remove_stale_staging(self.out, self.prefix, keep=self.path)

    def __exit__(self, *exc) -> None:
        try:
            if self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None
            if self._created_out and self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()


def remove_stale_staging(out: str | os.PathLike, prefix: str, keep: Path | None = None) -> list[Path]:
    """Remove folders ``out/<prefix>*`` that no live process holds; return those removed."""
    removed = []
    try:
        candidates = [p for p in Path(out).iterdir() if p.name.startswith(prefix) and p.is_dir()]
    except FileNotFoundError:
        return removed
    for folder in candidates:
        if keep is not None and folder == keep:
            continue
        try:
            age = time.time() - folder.stat().st_mtime
        except FileNotFoundError:
            continue
        lock = _try_lock(folder)
        if lock is None:
            if _HAVE_FLOCK or age < 86_400:
                continue  # held by a running process (or, without flock, possibly recent)
        elif age < STAGING_GRACE_SECONDS:
            os.close(lock)  # possibly just created, not yet locked by its owner
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            if lock is not None:
                os.close(lock)
    return removed


try:
    import fcntl

    _HAVE_FLOCK = True
except ImportError:  # Windows
    fcntl = None
    _HAVE_FLOCK = False


def _try_lock(folder: Path) -> int | None:
    """An open descriptor holding an exclusive flock on ``folder``, or None if another process holds it."""
    if not _HAVE_FLOCK:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
