"""Building the exact laws of the recursion on the host: one pass over the output, no transfer.

``sum_terms sum_j w_j law(rho_j X + sqrt(c_j) Z)`` (X a Gaussian mixture) has ``J K`` components
``N(rho_j m_k, rho_j^2 S_k + c_j I)`` of weight ``w_j w_k``. They are written straight into
preallocated 64-byte aligned float64 arrays (``rho^2 S`` by one broadcast multiply into the output,
then ``c_j`` added on the diagonal only), so the cost is one write of the output; the returned
mixture keeps the arrays on the host until first use, when one zero-copy ``device_put`` hands them
to JAX. Components equal to the stationary law ``N(0, v I)`` in float64 are found from per-component
summaries (the largest off-diagonal ``|S|`` and ``|m|`` entries, and the diagonal of the output),
which give exactly the deviation ``max(|c - v I|, |m|)`` that a full comparison would.
"""

from __future__ import annotations

import math

import numpy as np

from ._mixture import COV_TYPES, GaussianMixture

# A pushed copy equal to N(0, v I) to this many units in each mean and covariance entry is merged
# into one stationary component (the same rule as the recursion's bookkeeping).
MERGE_SCALE = 2.0**-60
_ALIGN = 64


def aligned_empty(shape: tuple) -> np.ndarray:
    """An uninitialised float64 array whose data is 64-byte aligned (JAX's CPU client then aliases it)."""
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(n * 8 + _ALIGN, dtype=np.uint8)
    offset = (-raw.ctypes.data) % _ALIGN
    return raw[offset : offset + n * 8].view(np.float64).reshape(shape)


def host_arrays(gm: GaussianMixture, kind: str):
    """(weights, means, covs) of ``gm`` as numpy arrays, covariances in the structure ``kind``."""
    arrays = gm._arrays if gm._on_host else tuple(np.asarray(a) for a in gm._arrays)
    w, m, c = arrays
    if kind == gm.cov_type:
        return w, m, c
    d = m.shape[1]
    if kind == "full":
        eye = np.eye(d)
        return w, m, (c[:, :, None] * eye if gm.cov_type == "diag" else c[:, None, None] * eye)
    return w, m, np.broadcast_to(c[:, None], m.shape)  # iso -> diag


def assemble(terms, stationary_mass: float, stationary_var: float = 1.0):
    """``sum_terms sum_j w_j law(rho_j X + sqrt(c_j) Z) + stationary_mass N(0, stationary_var I)``.

    ``terms`` is a list of ``(gm, rho, c, w)`` (X ~ gm, the last three arrays over ``j``). Components equal
    to the stationary law in float64 (every mean entry and every covariance entry within 2^-60 of it)
    are merged into one; zero weights are dropped; weights are renormalised.
    Returns (mixture, number of components removed by merging).
    """
    terms = [t for t in terms if t[1].size]
    kind = max((t[0].cov_type for t in terms), key=COV_TYPES.index)
    d = terms[0][0].dim
    var = float(stationary_var)
    sizes = [t[1].size * t[0].n_components for t in terms]
    n_total = sum(sizes) + (1 if stationary_mass > 0 else 0)
    tail = {"iso": (), "diag": (d,), "full": (d, d)}[kind]
    W, M, C = aligned_empty((n_total,)), aligned_empty((n_total, d)), aligned_empty((n_total,) + tail)
    dev = np.empty(n_total)
    off = 0
    # a pushed copy rho^2 S + c I (c >= 0) of a law with positive definite covariances has them too
    density = stationary_var > 0
    for (gm, rho, add, w), size in zip(terms, sizes):
        gw, gmeans, gcovs = host_arrays(gm, kind)
        J, K = rho.size, gw.size
        sl = slice(off, off + size)
        np.multiply(w[:, None], gw[None, :], out=W[sl].reshape(J, K))
        np.multiply(rho[:, None, None], gmeans[None], out=M[sl].reshape(J, K, d))
        rho2 = rho * rho
        block = C[sl].reshape((J, K) + tail)
        np.multiply(rho2.reshape((J,) + (1,) * (1 + len(tail))), gcovs[None], out=block)
        # deviation from the stationary law per component, built up as a running maximum over
        # (J, K)-sized slices (numpy reductions over a short last axis are slow)
        dev_jk = dev[sl].reshape(J, K)
        # |rho m_ki| is largest where |m_ki| is (rounding is monotone)
        np.multiply(rho[:, None], np.abs(gmeans).max(axis=1)[None, :], out=dev_jk)
        if kind == "full":
            # off-diagonal entries are rho^2 S_ij exactly: their largest magnitude is rho^2 max|S_ij|
            off_abs = np.abs(gcovs).reshape(K, d * d).copy()
            off_abs[:, :: d + 1] = 0.0
            np.maximum(dev_jk, rho2[:, None] * off_abs.max(axis=1)[None, :], out=dev_jk)
            diag = block.reshape(J, K, d * d)[:, :, :: d + 1]  # a strided view of the diagonals
            diag += add[:, None, None]
            _running_max(dev_jk, diag, var)
        elif kind == "diag":
            block += add[:, None, None]
            _running_max(dev_jk, block, var)
        else:
            block += add[:, None]
            np.maximum(dev_jk, np.abs(block - var), out=dev_jk)
        density = density and gm._density is True and bool(np.all(add >= 0))
        off += size
    if stationary_mass > 0:
        W[-1], M[-1], C[-1], dev[-1] = stationary_mass, 0.0, (var * np.eye(d) if kind == "full" else var), 0.0
    is_std = (dev <= MERGE_SCALE) & (W > 0)
    n_std = int(np.count_nonzero(is_std))
    merged = max(n_std - 1, 0)
    if merged:
        keep = np.flatnonzero(~is_std)
        mass = W[is_std].sum()
        W, M, C = _gather(W, keep, mass), _gather(M, keep, 0.0), _gather(C, keep, var * np.eye(d) if kind == "full" else var)
    if not np.all(W > 0):
        keep = np.flatnonzero(W > 0)
        W, M, C = _gather(W, keep), _gather(M, keep), _gather(C, keep)
    W /= W.sum()
    return GaussianMixture._from_host(W, M, C, density=True if density else None), merged


def _running_max(dev: np.ndarray, entries: np.ndarray, var: float) -> None:
    """``dev = max(dev, max_i |entries[..., i] - var|)`` in place; entries (J, K, d)."""
    if dev.size <= 4096:  # few components: one vectorised reduction (fewest numpy calls)
        np.maximum(dev, np.abs(entries - var).max(axis=2), out=dev)
        return
    for i in range(entries.shape[2]):  # many: d passes over (J, K) slices (short-axis reductions are slow)
        np.maximum(dev, np.abs(entries[:, :, i] - var), out=dev)


def _gather(a: np.ndarray, keep: np.ndarray, last=None) -> np.ndarray:
    """``a[keep]`` (plus one row equal to ``last`` when given) into a fresh aligned array."""
    out = aligned_empty((keep.size + (last is not None),) + a.shape[1:])
    np.take(a, keep, axis=0, out=out[: keep.size])
    if last is not None:
        out[-1] = last
    return out


def constant_schedule_terms(t0: float, alpha: float, n: int):
    """The terms of the n-th generation for a constant ``t0`` (fresh data), or None when they need merging.

    Data terms ``(rho^k, 1 - rho^{2k}, alpha (1-alpha)^{k-1})`` for ``k = n..1`` (increasing ``rho``, the
    order the general bookkeeping sorts them into) and the initial model's term
    ``(rho^n, 1 - rho^{2n}, (1-alpha)^n)``. The terms are distinct and every weight is positive when
    ``0 < alpha < 1``, ``t0 > 1e-12`` (consecutive ``rho^k`` differ by more than 1e-14 relative) and
    ``n t0 < 700`` (no ``rho^k`` underflows), and ``(1-alpha)^n > 0``; otherwise None is returned and the
    caller runs the general merge.
    """
    if not (0.0 < alpha < 1.0 and t0 > 1e-12 and n * t0 < 700.0 and n >= 1):
        return None
    k = np.arange(n, 0, -1, dtype=np.float64)
    w = alpha * (1.0 - alpha) ** (k - 1)
    tail = (1.0 - alpha) ** n
    if not (w[0] > 0 and tail > 0):
        return None
    data = (np.exp(-k * t0), -np.expm1(-2.0 * k * t0), w)
    init = (np.array([math.exp(-n * t0)]), np.array([-math.expm1(-2.0 * n * t0)]), np.array([tail]))
    return data, init
