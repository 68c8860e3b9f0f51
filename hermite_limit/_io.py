"""Reading user data (mixtures in JSON/TOML, samples in .npy/.npz/.csv) and writing outputs atomically."""

from __future__ import annotations

import json
import os
import tempfile
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
    """Write JSON to ``path`` through a temporary file and an atomic rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def save_figure_atomic(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure through a temporary file and an atomic rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
