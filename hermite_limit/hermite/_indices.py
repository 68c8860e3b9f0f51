"""Multi-indices in graded order and the size guard for truncation orders.

All multi-indices ``n`` in ``N^d`` with total order ``|n| <= order`` are listed level by level
(``|n| = 0, 1, ..., order``); index 0 is the zero multi-index, and in one dimension
``indices[n] == n``. Each index ``m != 0`` is generated once, from the parent ``m - e_j`` with
``j`` the last non-zero coordinate of ``m``; the same parent links drive the exact recursion.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .._validation import (
    FLOAT_BYTES,
    MEMORY_BUDGET_BYTES,
    PY_ITERATION_COST,
    check_int,
    check_work,
)

# Largest number of float64 elements (multi-indices x work per index) we agree to touch: a quarter
# of the library's memory budget per array (the index tables hold several arrays of that size).
MAX_ELEMENTS = MEMORY_BUDGET_BYTES // (4 * FLOAT_BYTES)


def n_indices(order: int, dim: int) -> int:
    """Number of multi-indices of total order ``<= order`` in ``dim`` dimensions: C(order + d, d)."""
    return math.comb(order + dim, dim)


def check_order(order, dim: int, work_per_index: float = 1.0, *, name: str = "order") -> int:
    """Validate ``order`` and refuse it, before any work, when it would not fit in memory."""
    order = check_int(order, name, minimum=0)
    dim = check_int(dim, "dim", minimum=1)
    # Time first (one Python-level step per level), so absurd orders never reach math.comb on huge numbers.
    check_work(name, float(order) * PY_ITERATION_COST, detail=f"{name}={order}: one table level per order")
    if dim > MAX_ELEMENTS:
        raise ValueError(f"dim={dim} is too large: more than {MAX_ELEMENTS:,} coordinates per multi-index")
    M = n_indices(order, dim)
    need = M * max(float(work_per_index), 1.0)
    if need > MAX_ELEMENTS:
        raise ValueError(
            f"{name}={order} in d={dim} gives {M:,} multi-indices x {work_per_index:,.0f} work each "
            f"= {need:.3g} float64 elements ({need * FLOAT_BYTES / 2**30:.3g} GiB), more than the limit "
            f"{MAX_ELEMENTS:,} ({MAX_ELEMENTS * FLOAT_BYTES / 2**30:g} GiB, a quarter of the memory budget); "
            f"lower {name} (or use hl.energy_spectrum for per-order energies in high dimension)"
        )
    return order


def graded_indices(order: int, dim: int) -> np.ndarray:
    """All multi-indices with ``|n| <= order`` as an (M, d) int64 array, graded order.

    ``order >= 0`` and ``dim >= 1`` are integers; requests with more than ``MAX_ELEMENTS``
    entries are refused before any work.
    """
    dim = check_int(dim, "dim", minimum=1)
    order = check_order(order, dim, dim)
    return _graded_indices(order, dim)


@functools.lru_cache(maxsize=128)
def _graded_indices(order: int, dim: int) -> np.ndarray:
    return _tables(order, dim)["indices"]


@functools.lru_cache(maxsize=128)
def order_of_indices(order: int, dim: int) -> np.ndarray:
    """Total order ``|n|`` of each row of :func:`graded_indices`."""
    return _graded_indices(order, dim).sum(axis=1)


@functools.lru_cache(maxsize=64)
def _tables(order: int, dim: int, full: bool = False) -> dict:
    """Index list plus the per-level recursion tables (padded to the widest level).

    For level ``L >= 1`` and slot ``s`` holding ``m`` (``|m| = L``): ``j`` last non-zero
    coordinate of ``m``, ``n = m - e_j``; ``parent`` = slot of ``n`` in level L-1; ``div =
    sqrt(m_j)``. Diagonal tables (``full=False``) hold ``grand`` = slot of ``n - e_j`` in level
    L-2 and ``coef = sqrt(n_j)``, shapes (order, W); full tables hold them for every ``k``,
    shapes (order, W, d). Missing entries have slot 0 and coefficient 0; padded slots ``div = 1``.
    """
    levels = [np.zeros((1, dim), dtype=np.int64)]
    parents = [np.zeros(1, dtype=np.int64)]
    js = [np.zeros(1, dtype=np.int64)]
    for L in range(1, order + 1):
        prev = levels[-1]
        last = np.where(prev.any(axis=1), dim - 1 - np.argmax(prev[:, ::-1] != 0, axis=1), 0)
        counts = dim - last
        par = np.repeat(np.arange(prev.shape[0]), counts)
        start = np.repeat(last, counts)
        offs = np.arange(par.size) - np.repeat(np.cumsum(counts) - counts, counts)
        j = start + offs
        child = prev[par].copy()
        child[np.arange(par.size), j] += 1
        levels.append(child)
        parents.append(par)
        js.append(j)
    indices = np.concatenate(levels)
    widths = [lv.shape[0] for lv in levels]
    W = max(widths)
    shape = (order, W, dim) if full else (order, W)
    j_tab = np.zeros((order, W), dtype=np.int64)
    par_tab = np.zeros((order, W), dtype=np.int64)
    grand_tab = np.zeros(shape, dtype=np.int64)
    coef_tab = np.zeros(shape)
    div_tab = np.ones((order, W))
    for L in range(1, order + 1):
        w = widths[L]
        j = js[L]
        n = levels[L - 1][parents[L]]  # (w, d) = m - e_j
        j_tab[L - 1, :w] = j
        par_tab[L - 1, :w] = parents[L]
        div_tab[L - 1, :w] = np.sqrt(levels[L][np.arange(w), j])
        if L < 2:
            continue
        ks = range(dim) if full else [None]
        for k in ks:
            kk = j if k is None else np.full(w, k)
            nk = n[np.arange(w), kk]
            rows = np.flatnonzero(nk > 0)
            g = n[rows].copy()
            g[np.arange(rows.size), kk[rows]] -= 1
            slot = _find_rows(levels[L - 2], g)
            if k is None:
                grand_tab[L - 1, rows] = slot
                coef_tab[L - 1, rows] = np.sqrt(nk[rows])
            else:
                grand_tab[L - 1, rows, k] = slot
                coef_tab[L - 1, rows, k] = np.sqrt(nk[rows])
    flat = np.concatenate([L * W + np.arange(w) for L, w in enumerate(widths)])
    for arr in (indices, j_tab, par_tab, grand_tab, coef_tab, div_tab, flat):
        arr.setflags(write=False)
    return dict(indices=indices, widths=tuple(widths), W=W, j=j_tab, parent=par_tab,
                grand=grand_tab, coef=coef_tab, div=div_tab, flat=flat)


def _find_rows(table: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Row numbers of ``queries`` in ``table`` (every query is present), vectorised."""
    if queries.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    tv = np.ascontiguousarray(table).view(np.dtype((np.void, table.dtype.itemsize * table.shape[1]))).ravel()
    qv = np.ascontiguousarray(queries).view(np.dtype((np.void, table.dtype.itemsize * table.shape[1]))).ravel()
    order = np.argsort(tv)
    pos = np.searchsorted(tv[order], qv)
    return order[pos]
