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

import functools
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
    w, m, c = gm._host_arrays()
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


# -- the structured fast path: closed-form terms, one write of the output, screens instead of comparisons --

# Outputs at least this large (all three arrays together) are written into 64-byte aligned arrays, which a
# later device_put aliases instead of copying; smaller ones are plain numpy arrays, as a numpy user's would be
# (the carving and the writes through views cost more than the products themselves below about 1 MiB).
_ALIGNED_FROM_BYTES = 1 << 20


def _outputs(shapes: list) -> list:
    """Uninitialised float64 arrays of these shapes: for a large total, carved 64-byte aligned out of one buffer
    (one allocation and one address query for all), else plain ``np.empty`` arrays."""
    sizes = [math.prod(s) for s in shapes]
    if 8 * sum(sizes) < _ALIGNED_FROM_BYTES:
        return [np.empty(s) for s in shapes]
    spans = [-(-n // 8) * 8 for n in sizes]  # whole 64-byte lines each, so every array starts aligned
    raw = np.empty(sum(spans) + 8)
    off = (-raw.ctypes.data % _ALIGN) // 8
    out = []
    for shape, n, span in zip(shapes, sizes, spans):
        out.append(raw[off : off + n].reshape(shape))
        off += span
    return out


def series_terms(k: np.ndarray, t0: float, alpha: float):
    """``(rho, rho^2, expm1(-2 k t0), w)`` for the OU times ``k t0``: ``rho = e^{-k t0}``, ``w = alpha (1-alpha)^{k-1}``.

    ``rho^2`` is ``rho * rho`` and ``c = 1 - rho^2`` is returned negated, as ``expm1(-2 k t0)`` (adding ``c``
    is subtracting it, bitwise); ``-2 k t0`` is ``2 (k (-t0))`` exactly. Bitwise the values of the general
    path (``np.exp(-k t0)``, ``-np.expm1(-2 k t0)``, ``alpha * (1 - alpha) ** (k - 1)``).
    """
    x = k * -t0
    rho = np.exp(x)
    x += x
    return rho, rho * rho, np.expm1(x), alpha * (1.0 - alpha) ** (k - 1.0)


def generation_terms(t0: float, alpha: float, n: int):
    """``(rho, rho^2, -c, w)`` of the n-th generation for a constant ``t0`` (fresh data, ``n >= 1``): ``n + 1`` entries.

    Entries ``0..n-1`` are the data terms ``(rho^k, 1 - rho^{2k}, alpha (1-alpha)^{k-1})`` for ``k = n..1``
    (the order of :func:`constant_schedule_terms`) and entry ``n`` is the initial model's term
    ``(rho^n, 1 - rho^{2n}, (1-alpha)^n)``; see :func:`series_terms` for the representation.
    """
    k = np.arange(n, -1, -1, dtype=np.float64)
    k[n] = n  # n, ..., 1, then the initial model's time n t0
    rho, rho2, neg_c, w = series_terms(k, t0, alpha)
    w[n] = (1.0 - alpha) ** n
    return rho, rho2, neg_c, w


def _summary(gm: GaussianMixture) -> tuple:
    """(smallest weight, smallest over components of the largest mean entry ``max_i |m_ki|``), kept on the law."""
    w, m, _ = gm._host_arrays()
    return float(w.min()), float(np.abs(m).max(axis=1).min())


def structured_law(blocks, stationary_mass: float = 0.0, stationary_var: float = 1.0, *, block_bytes: int = 1 << 20):
    """``sum_blocks sum_j w_j law(rho_j X + sqrt(c_j) Z) + stationary_mass N(0, var I)`` in one write, or None.

    The fast path of :func:`assemble` for the common case. ``blocks`` is a list of
    ``(gm, rho, rho2, neg_c, w, rho_low, w_low)``: mixtures with densities sharing one covariance structure,
    ``rho2 = rho^2``, ``neg_c = -c <= 0``, and lower bounds ``rho_low <= min rho``, ``w_low <= min w``.
    Component ``(j, k)`` is ``N(rho_j m_k, rho2_j S_k - neg_c_j I)`` of weight ``w_j w_k``, written
    straight into the output (covariances term by term in chunks of about ``block_bytes``, 1 MiB, one core's
    L2 on the machine measured, so the diagonal update finds them in cache). The weights are not renormalised: they sum to 1 within a few units in the
    last place, as the terms' weights and the mixtures' do (every entry has a relative error of a few
    units, all are positive, and the exact sum is 1).

    Instead of comparing every output component with the stationary law, screens on the inputs prove that
    none can merge and none has zero weight; when they cannot, None is returned and the caller runs
    :func:`assemble`, whose law this is (to rounding). For each block:

    * ``w_low * min_k w_k > 0``, so no product of weights is zero (rounding is monotone);
    * every component's largest mean entry times ``rho_low`` exceeds 2^-60 (the test of :func:`assemble`
      is ``max_i |rho_j m_ki| <= 2^-60`` together with the covariance entries), or failing that, per
      component, a mean, off-diagonal or diagonal entry provably far from the stationary law's
      (:func:`_never_stationary`).
    """
    kind = blocks[0][0].cov_type
    hosts = []
    n_total = 1 if stationary_mass > 0 else 0
    for gm, rho, _, _, _, rho_low, w_low in blocks:
        if gm._density is not True or gm.cov_type != kind:
            return None
        host = gm._host_arrays()
        w_min, mean_min = gm._cached("_recursion_summary", _summary)
        if not (w_low * w_min > 0.0):
            return None
        if not (rho_low * mean_min > MERGE_SCALE or _never_stationary(host[1], host[2], kind, rho_low, stationary_var)):
            return None
        hosts.append(host)
        n_total += rho.size * host[0].size
    d = hosts[0][1].shape[1]
    tail = host[2].shape[1:]
    # products broadcast over whole rows (J, K * entries): long contiguous inner loops
    if len(blocks) == 1 and not stationary_mass > 0 and 8 * n_total * (1 + d + math.prod(tail)) < _ALIGNED_FROM_BYTES:
        # a small law from one block: the products themselves are the outputs (no views to write through)
        _, rho, rho2, neg_c, w, _, _ = blocks[0]
        gw, gmeans, gcovs = host
        J, K = rho.size, gw.size
        W = np.multiply(w[:, None], gw).reshape(n_total)
        M = np.multiply(rho[:, None], gmeans.reshape(1, K * d)).reshape(n_total, d)
        C = np.multiply(rho2[:, None], gcovs.reshape(1, gcovs.size))
        if kind == "full":
            diag = C.reshape(J, K, d * d)[:, :, :: d + 1]
            np.subtract(diag, neg_c[:, None, None], diag)
        else:
            np.subtract(C, neg_c[:, None], C)
        return GaussianMixture._from_host(W, M, C.reshape((n_total,) + tail), density=True)
    if 8 * n_total * (1 + d + math.prod(tail)) < _ALIGNED_FROM_BYTES:
        W, M, C = np.empty(n_total), np.empty((n_total, d)), np.empty((n_total,) + tail)
    else:
        W, M, C = _outputs([(n_total,), (n_total, d), (n_total,) + tail])
    off = 0
    for (_, rho, rho2, neg_c, w, _, _), (gw, gmeans, gcovs) in zip(blocks, hosts):
        J, K = rho.size, gw.size
        end = off + J * K
        np.multiply(w[:, None], gw, W[off:end].reshape(J, K))
        np.multiply(rho[:, None], gmeans.reshape(1, K * d), M[off:end].reshape(J, K * d))
        per_term = gcovs.size  # covariance entries of one term
        block = C[off:end].reshape(J, per_term)
        if kind != "full":
            np.multiply(rho2[:, None], gcovs.reshape(1, per_term), block)
            np.subtract(block, neg_c[:, None], block)
        elif 8 * J * per_term <= block_bytes:
            np.multiply(rho2[:, None], gcovs.reshape(1, per_term), block)
            _subtract_on_diagonals(block, neg_c, K, d)
        else:  # in chunks of terms that stay in cache for the diagonal update
            step = max(1, block_bytes // (8 * per_term))
            flat = gcovs.reshape(1, per_term)
            for a in range(0, J, step):
                b = min(a + step, J)
                np.multiply(rho2[a:b, None], flat, block[a:b])
                _subtract_on_diagonals(block[a:b], neg_c[a:b], K, d)
        off = end
    if stationary_mass > 0:
        W[-1] = stationary_mass
        M[-1] = 0.0
        if kind == "full":
            last = C[-1].reshape(d * d)
            last.fill(0.0)
            last[:: d + 1] = stationary_var
        else:
            C[-1] = stationary_var
    return GaussianMixture._from_host(W, M, C, density=True)


# Below this many components the diagonals are updated through one (J, K, d) strided view; from it, through
# d views of J K entries each (one diagonal position of every component, the term's value repeated over its
# K components): numpy's loops then run over J K entries instead of d (1.3-2.2x faster from a few hundred
# components, measured on (J, K) = (201, 10), (2, 1000), (51, 100) with d = 10).
_PER_POSITION_FROM = 256


def _subtract_on_diagonals(C: np.ndarray, neg_c: np.ndarray, K: int, d: int) -> None:
    """In place: subtract ``neg_c[j]`` from every diagonal entry of the J K covariances of ``C`` (J, K d^2)."""
    J = C.shape[0]
    if J * K < _PER_POSITION_FROM:
        diag = C.reshape(J, K, d * d)[:, :, :: d + 1]
        np.subtract(diag, neg_c.reshape(J, 1, 1), diag)
        return
    rows = C.reshape(J * K, d * d)
    per_row = np.repeat(neg_c.reshape(J), K)
    for i in range(0, d * d, d + 1):
        col = rows[:, i]
        np.subtract(col, per_row, col)


def _never_stationary(m: np.ndarray, S: np.ndarray, kind: str, rmin: float, var: float) -> bool:
    """True when no push ``N(rho m_k, rho^2 S_k + c I)``, ``rho >= rmin``, can be within 2^-60 of ``N(0, var I)``.

    ``var >= 1``, ``c = var (1 - rho^2)`` to a few units in the last place. Per component, one of: the
    largest mean entry (``rmin max_i |m_ki| > 2^-60``), the largest off-diagonal entry
    (``rmin^2 max_{i != j} |S_kij| > 2^-60``; both exact bounds, rounding being monotone), or a diagonal
    entry, whose deviation is ``rho^2 (S_ii - var)`` plus rounding errors below ``2^-48 (var + |S_ii|)``:
    ``rmin^2 |S_ii - var| > 2^-40 (var + |S_ii|)`` leaves a computed deviation above ``2^-41 var > 2^-60``.
    """
    K, d = m.shape
    r2 = rmin * rmin
    ok = rmin * np.abs(m).max(axis=1) > MERGE_SCALE
    if kind == "full":
        flat = np.abs(S.reshape(K, d * d))
        diag = S.reshape(K, d * d)[:, :: d + 1]
        off = flat.copy()
        off[:, :: d + 1] = 0.0
        ok |= r2 * off.max(axis=1) > MERGE_SCALE
    else:
        diag = S if kind == "diag" else S[:, None]
    ok |= np.any(r2 * np.abs(diag - var) > 2.0**-40 * (var + np.abs(diag)), axis=1)
    return bool(ok.all())


# -- the small one-source path: per-law constants kept on the law, per-size index columns cached ------------------
#
# At the sizes of interactive calls (a few thousand output entries) the cost of a law is the number of numpy
# calls and the Python around them, not the flops. Here the terms are computed as (J, 1) columns (they then
# broadcast against a law's (1, K * entries) rows without a view per product), the index columns ``k`` and
# ``k - 1`` come from a cache keyed on the size alone, and what depends only on the data law (its rows, the
# screens' summaries, the bytes per component) is computed once and kept on the law. Bitwise the values of
# :func:`generation_terms` / :func:`series_terms` and :func:`structured_law`: the same operations on the same
# operands, in the same order.

# Index columns are cached up to this many terms (64 KiB per column pair at most; the cache holds 128 pairs).
_COLUMN_CACHE_MAX = 4096


def _readonly_columns(k: np.ndarray) -> tuple:
    km1 = k - 1.0
    k.setflags(write=False)
    km1.setflags(write=False)
    return k.reshape(-1, 1), km1.reshape(-1, 1)


def _generation_columns_uncached(n: int) -> tuple:
    k = np.arange(n, -1, -1, dtype=np.float64)
    k[n] = n  # n, ..., 1, then the initial model's time n t0 (as generation_terms)
    return _readonly_columns(k)


def _series_columns_uncached(J: int) -> tuple:
    return _readonly_columns(np.arange(1, J + 1, dtype=np.float64))


_generation_columns_cached = functools.lru_cache(maxsize=128)(_generation_columns_uncached)
_series_columns_cached = functools.lru_cache(maxsize=128)(_series_columns_uncached)


def generation_columns(n: int) -> tuple:
    """``(k, k - 1)`` as read-only (n + 1, 1) columns, ``k = n, ..., 1, n`` (the order of :func:`generation_terms`)."""
    return _generation_columns_cached(n) if n <= _COLUMN_CACHE_MAX else _generation_columns_uncached(n)


def series_columns(J: int) -> tuple:
    """``(k, k - 1)`` as read-only (J, 1) columns, ``k = 1, ..., J`` (the series terms of the limit)."""
    return _series_columns_cached(J) if J <= _COLUMN_CACHE_MAX else _series_columns_uncached(J)


def law_plan(gm: GaussianMixture) -> tuple:
    """Per-law constants of the small path, computed once and kept on the (immutable) law.

    ``(K, d, per, tail, bytes_per_component, w_min, mean_min, weights, means_row, covs_row, diag_mask, eye)``:
    ``per`` covariance entries per component, ``tail`` the covariance shape of one component, the smallest
    weight and the smallest over components of ``max_i |m_ki|`` (the screens of :func:`structured_law`), the
    host arrays as a (K,) vector and (1, K d) / (1, K per) rows, and for full covariances a (1, K d^2) mask of
    the diagonal entries and the identity (None otherwise).
    """
    w, m, c = gm._host_arrays()
    K, d = m.shape
    per = c.size // K
    w_min, mean_min = gm._cached("_recursion_summary", _summary)
    mask = eye = None
    if per > d:
        mask = np.zeros((1, K * per), dtype=bool)
        mask.reshape(K, per)[:, :: d + 1] = True
        eye = np.eye(d)
    return (K, d, per, c.shape[1:], 8 * (1 + d + per), w_min, mean_min, w, m.reshape(1, K * d), c.reshape(1, K * per),
            mask, eye)


def _screens_pass(gm: GaussianMixture, plan: tuple, rho_low: float, w_low: float, var: float) -> bool:
    """The screens of :func:`structured_law` for one block: no zero weight, no push equal to ``N(0, var I)``."""
    if not (w_low * plan[5] > 0.0):
        return False
    if rho_low * plan[6] > MERGE_SCALE:
        return True
    _, m, c = gm._host_arrays()
    return _never_stationary(m, c, gm.cov_type, rho_low, var)


# Full covariances of at most this many entries get ``c`` subtracted through a diagonal mask (one ufunc call);
# larger ones through a strided view of the diagonals (a masked loop visits every entry, a view only d per d^2).
_MASKED_DIAGONAL_MAX = 512


def _write_covs(C, rho2: np.ndarray, crow: np.ndarray, neg_c: np.ndarray, mask, K: int, d: int) -> np.ndarray:
    """``C = rho2 * covs - neg_c`` on the diagonal (all entries when ``mask`` is None, i.e. not full); C is
    (J, K per), or None for a new array."""
    C = np.multiply(rho2, crow, C)
    if mask is not None and C.size <= _MASKED_DIAGONAL_MAX:
        np.subtract(C, neg_c, C, where=mask)
    elif mask is not None:
        _subtract_on_diagonals(C, neg_c, K, d)
    else:
        np.subtract(C, neg_c, C)
    return C


def small_generation(gm: GaussianMixture, t0: float, alpha: float, n: int):
    """The n-th generation for ``p_0 = p_data``, a constant ``t0`` and a small law (below 1 MiB), or None.

    The law of :func:`structured_law` on the single block of :func:`generation_terms` (bitwise), computed on
    (n + 1, 1) columns. The caller has checked ``0 < alpha < 1``, ``t0 > 1e-12``, ``n t0 < 700``, ``n >= 1``
    and that ``gm`` has a density; None means the output is not small or a screen declined (run the general
    path).
    """
    plan = gm._cached("_small_plan", law_plan)
    K, d, per, tail, bytes_per, _, _, gw, mrow, crow, mask, eye = plan
    J = n + 1
    if J * K * bytes_per >= _ALIGNED_FROM_BYTES:
        return None
    # rho^k and alpha (1-alpha)^{k-1} fall with k: the smallest are at k = n (for the weights, the data term
    # or the initial model's). Computed here by Python's math, within a few units of numpy's entries, and
    # halved: lower bounds of every entry, known before any array is made
    tail_w = (1.0 - alpha) ** n
    w_low = 0.5 * min(alpha * (1.0 - alpha) ** (n - 1), tail_w)
    if not _screens_pass(gm, plan, 0.5 * math.exp(n * -t0), w_low, 1.0):
        return None
    rho, w, neg_c = _term_columns(*generation_columns(n), t0, alpha)
    w[n, 0] = tail_w
    n_total = J * K
    W = np.multiply(w, gw).reshape(n_total)
    M = np.multiply(rho, mrow).reshape(n_total, d)
    C = _write_covs(None, rho * rho, crow, neg_c, mask, K, d)
    return GaussianMixture._from_host(W, M, C.reshape((n_total,) + tail), density=True)


def _term_columns(k, km1, t0: float, alpha: float):
    """Columns of the series' terms at ``k`` (with ``km1 = k - 1``): ``rho_k = e^{-k t0}``, weights
    ``alpha (1-alpha)^{k-1}`` and ``-c_k = expm1(-2 k t0)``, in the operation order of the general writer (bitwise)."""
    x = k * -t0
    rho = np.exp(x)
    w = (1.0 - alpha) ** km1
    w *= alpha
    x += x
    return rho, w, np.expm1(x)


def small_limit(gm: GaussianMixture, t0: float, alpha: float, J: int, stationary_mass: float, stationary_var: float):
    """``sum_{k<=J} alpha (1-alpha)^{k-1} P_{k t0} gm + stationary_mass N(0, var I)`` for a small law, or None.

    The law of :func:`structured_law` on the block of :func:`series_terms` (bitwise; ``c_k`` scaled by
    ``var`` when ``var != 1``), computed on (J, 1) columns. None: not small, or a screen declined.
    """
    plan = gm._cached("_small_plan", law_plan)
    K, d, per, tail, bytes_per, _, _, gw, mrow, crow, mask, eye = plan
    extra = 1 if stationary_mass > 0 else 0  # the stationary component's row (none when its mass is 0)
    n_total = J * K + extra
    if n_total * bytes_per >= _ALIGNED_FROM_BYTES:
        return None
    # the smallest rho^k and weight are at k = J: by Python's math, halved (lower bounds, as above)
    if not _screens_pass(gm, plan, 0.5 * math.exp(J * -t0), 0.5 * alpha * (1.0 - alpha) ** (J - 1), stationary_var):
        return None
    rho, w, neg_c = _term_columns(*series_columns(J), t0, alpha)
    if stationary_var != 1.0:
        neg_c *= stationary_var
    W, M, C = np.empty(n_total), np.empty((n_total, d)), np.empty((n_total,) + tail)
    end = J * K
    np.multiply(w, gw, W[:end].reshape(J, K))
    np.multiply(rho, mrow, M[:end].reshape(J, K * d))
    _write_covs(C[:end].reshape(J, K * per), rho * rho, crow, neg_c, mask, K, d)
    if not extra:
        return GaussianMixture._from_host(W, M, C, density=True)
    W[-1] = stationary_mass
    M[-1] = 0.0
    C[-1] = stationary_var if eye is None else (eye if stationary_var == 1.0 else stationary_var * eye)
    return GaussianMixture._from_host(W, M, C, density=True)
