"""Sample Hermite coefficient vectors of one sample set, their covariance, and bootstrap draws.

For samples ``x_1..x_N`` the coefficient vector ``a = (a_n)_{1 <= |n| <= order}`` (graded order, the
constant mode excluded) is estimated by ``a_hat = mean_j h(x_j)`` with ``h(x) = (h_n(x))_n``; its
covariance is estimated by ``Sigma_hat = cov_j(h(x_j)) / N`` (``ddof = 1``).

How it is computed (the same numbers as ``np.cov`` of the (N, M) feature matrix, to rounding, at a
fraction of the cost). The products ``h_n h_m`` are polynomials of degree ``<= 2 order``, and the
linearisation formula of the normalised probabilists' Hermite polynomials,

    h_a(x) h_b(x) = sum_{k=0}^{min(a, b)} k! C(a, k) C(b, k) sqrt((a + b - 2k)! / (a! b!)) h_{a+b-2k}(x),

applied coordinate by coordinate writes every entry of ``mean_j h(x_j) h(x_j)^T`` as a fixed positive
combination of the sample means ``mu_r = mean_j h_r(x_j)``, ``|r| <= 2 order``. Those ``C(2 order + d, d)``
means (43 758 for d = 10, order 4, against 10^6 entries of ``H^T H``) are the only pass over the samples:
the coordinates are split into two halves ``x = (x_a, x_b)``, ``h_r(x) = h_{r_a}(x_a) h_{r_b}(x_b)``, and
``mu`` is one matrix product per degree ``p`` of ``r_a``, ``F_{a,p}^T F_{b, <= 2 order - p}`` (each ``mu_r``
computed once; the widest, high-degree blocks summed sub-block by sub-block without being written, see
:class:`_HalfFeatures`), chunked over the points, in float64.

Bootstrap. :func:`influence_draws` resamples the N points with replacement ``n_boot`` times
(multinomial counts ``c_j``) and returns ``sum_j (c_j - 1) s_j / N`` for given per-point values
``s_j = h(x_j) . V`` (a linear functional of the resampled coefficient vector; see
:func:`hermite_limit._diagnose._diagnosis.diagnose` for the one-step bootstrap that uses it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln

from .._precision import x64
from ..hermite._indices import _tables
from ..hermite._polynomials import _products

# Elements of the widest per-chunk feature block (8 MB): with two sets in flight, two such blocks and their
# products stay within the 32 MB L3 cache (2^21 was 25% slower at the full size, 2^18 15% slower).
_CHUNK_ELEMENTS = 2**20


@dataclasses.dataclass(frozen=True)
class SampleStats:
    """``mean`` (M,), ``cov`` (M, M) covariance of ``mean``, ``n`` points."""

    mean: np.ndarray
    cov: np.ndarray
    n: int


def _lin_coef(a: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``k! C(a, k) C(b, k) sqrt((a + b - 2k)! / (a! b!))`` elementwise (small integers)."""
    lf = gammaln
    la, lb, lk = lf(a + 1.0), lf(b + 1.0), lf(k + 1.0)
    return np.exp(lk + (la - lf(k + 1.0) - lf(a - k + 1.0)) + (lb - lf(k + 1.0) - lf(b - k + 1.0))
                  + 0.5 * (lf(a + b - 2 * k + 1.0) - la - lb))


def _rank_lookup(table: np.ndarray, base: int):
    """A function mapping rows of multi-indices (all entries < base) to their row in ``table``."""
    dim = table.shape[1]
    if dim == 0:
        return lambda rows: np.zeros(rows.shape[0], dtype=np.int64)
    if base ** dim < 2**62:
        w = base ** np.arange(dim, dtype=np.int64)
        codes = table.astype(np.int64) @ w
        order = np.argsort(codes)
        sc = codes[order]
        return lambda rows: order[np.searchsorted(sc, rows.astype(np.int64) @ w)]
    lookup = {tuple(r): i for i, r in enumerate(table.tolist())}
    return lambda rows: np.array([lookup[tuple(r)] for r in rows.tolist()], dtype=np.int64)


def _graded_tensor_indices(D: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Multi-indices of ``dim`` coordinates with total degree ``<= D`` in the order :func:`_features` makes
    them (graded: degree blocks contiguous), and the start of each degree block (D + 2,)."""
    if dim == 0:
        blocks = [np.zeros((1, 0), dtype=np.int64)] + [np.zeros((0, 0), dtype=np.int64)] * D
    else:
        blocks = _index_blocks(D, 0, dim)
    sizes = [b.shape[0] for b in blocks]
    return np.concatenate(blocks).astype(np.int64), np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _index_blocks(D: int, lo: int, hi: int) -> list:
    """Degree blocks of the multi-indices of coordinates ``lo..hi-1``, in :func:`_feature_blocks`' order:
    coordinates split in two halves, block q = concatenation over k of (left block k) x (right block q - k),
    left index outer."""
    if hi - lo == 1:
        return [np.array([[q]], dtype=np.int64) for q in range(D + 1)]
    mid = (lo + hi) // 2
    B1, B2 = _index_blocks(D, lo, mid), _index_blocks(D, mid, hi)
    out = []
    for q in range(D + 1):
        parts = [np.concatenate([np.repeat(B1[k], B2[q - k].shape[0], axis=0),
                                 np.tile(B2[q - k], (B1[k].shape[0], 1))], axis=1) for k in range(q + 1)]
        out.append(np.concatenate(parts))
    return out


def _feature_blocks(P: list, D: int, lo: int, hi: int) -> list:
    """Degree blocks (each (n_q, n)) of the products of the per-coordinate polynomials ``P[k][c]`` (n,),
    coordinates ``lo..hi-1``: outer products of the two halves' blocks (few, wide, vectorised products)."""
    if hi - lo == 1:
        return [P[q][lo][None] for q in range(D + 1)]
    mid = (lo + hi) // 2
    B1, B2 = _feature_blocks(P, D, lo, mid), _feature_blocks(P, D, mid, hi)
    n = P[0].shape[-1]
    return [jnp.concatenate([(B1[k][:, None, :] * B2[q - k][None, :, :]).reshape(-1, n) for k in range(q + 1)])
            for q in range(D + 1)]


def _features(x: jax.Array, D: int, mask: jax.Array | None = None) -> jax.Array:
    """``h_r(x)`` for every multi-index of :func:`_graded_tensor_indices` (D, x.shape[1]), feature-major
    (n_features, n), times ``mask`` (n,) when given (applied once, to the first coordinate's polynomials).
    The per-coordinate polynomials of :func:`_polynomials`, then products by :func:`_feature_blocks`."""
    n, dim = x.shape
    if dim == 0:
        one = jnp.ones((1, n), x.dtype)
        return one if mask is None else one * mask[None]
    return jnp.concatenate(_feature_blocks(_polynomials(x, D, mask), D, 0, dim))


def _polynomials(x: jax.Array, D: int, mask: jax.Array | None = None) -> list:
    """``[h_k(x^T) for k = 0..D]``, each (dim, n), by the recurrence ``h_{k+1} = (x h_k - sqrt(k) h_{k-1}) /
    sqrt(k + 1)`` unrolled; the first coordinate's rows times ``mask`` (n,) when given."""
    xt = x.T  # (dim, n)
    P = [jnp.ones_like(xt), xt]
    for k in range(1, D):
        P.append((xt * P[k] - np.sqrt(k) * P[k - 1]) * (1.0 / np.sqrt(k + 1.0)))
    P = P[:D + 1]
    return P if mask is None else [p.at[0].multiply(mask) for p in P]


@functools.lru_cache(maxsize=16)
def _plan(order: int, d: int) -> dict:
    """Static layout of the moment pass and the linearisation of ``h_n h_m`` (upper triangle ``n <= m``).

    Moments ``mu_r``, ``r = (r_a, r_b)``, ``|r| <= 2 order``, come from matrix products of feature blocks:
    the centre ``F_{a, <= order}^T F_{b, <= order}`` and, for ``p > order``, ``F_{a, p}^T F_{b, <= 2 order - p}``
    and ``F_{b, p}^T F_{a, <= 2 order - p}``: every moment exactly once, no product wider than needed.
    """
    D = 2 * order
    da = (d + 1) // 2
    db = d - da
    Ia, sa = _graded_tensor_indices(D, da)
    Ib, sb = _graded_tensor_indices(D, db)
    # blocks: (side, row start, row stop, number of leading columns of the other side, offset)
    blocks = [("c", 0, int(sa[order + 1]), int(sb[order + 1]), 0)]
    off = int(sa[order + 1] * sb[order + 1])
    for side, s_own, s_oth in (("a", sa, sb), ("b", sb, sa)):
        for p in range(order + 1, D + 1):
            r0, r1, nc = int(s_own[p]), int(s_own[p + 1]), int(s_oth[D - p + 1])
            if r1 > r0:
                blocks.append((side, r0, r1, nc, off))
                off += (r1 - r0) * nc
    n_mom = off
    rank_a, rank_b = _rank_lookup(Ia, D + 1), _rank_lookup(Ib, D + 1)

    def position(r):
        ra, rb = r[:, :da], r[:, da:]
        ia, ib = rank_a(ra), rank_b(rb)
        pa, pb = ra.sum(1), rb.sum(1)
        pos = ia * int(sb[order + 1]) + ib  # centre
        for side, r0, r1, nc, o in blocks[1:]:
            if side == "a":
                sel = (pa > order) & (ia >= r0) & (ia < r1)
                pos = np.where(sel, o + (ia - r0) * nc + ib, pos)
            else:
                sel = (pb > order) & (ib >= r0) & (ib < r1)
                pos = np.where(sel, o + (ib - r0) * nc + ia, pos)
        return pos

    idx = _tables(order, d)["indices"][1:]
    M = idx.shape[0]
    mean_pos = position(idx)
    # linearisation of h_u h_v, u <= v: expand k coordinate by coordinate
    iu, iv = np.triu_indices(M)
    nu, nv = idx[iu], idx[iv]
    pair = np.arange(iu.size)
    r = nu + nv
    coef = np.ones(iu.size)
    for j in range(d):
        mn = np.minimum(nu[pair, j], nv[pair, j])
        reps = mn + 1
        if np.all(reps == 1):
            continue
        src = np.repeat(np.arange(pair.size), reps)
        k = np.arange(src.size) - np.repeat(np.cumsum(reps) - reps, reps)
        pair, r, coef = pair[src], r[src].copy(), coef[src]
        a, b = nu[pair, j], nv[pair, j]
        r[:, j] = a + b - 2 * k
        coef = coef * _lin_coef(a, b, k)
    lin_pos = position(r)
    # Group the pairs by their number of terms t: each group is a dense (n_t, t) gather and a row sum (no
    # scatter), and the covariance is one gather of the grouped sums through ``cov_slot`` (M, M).
    cnt = np.bincount(pair, minlength=iu.size)
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    groups, slot, off = [], np.empty(iu.size, dtype=np.int64), 0
    for t in np.unique(cnt):
        sel = np.flatnonzero(cnt == t)
        take = start[sel][:, None] + np.arange(t)[None]
        groups.append((lin_pos[take], coef[take]))
        slot[sel] = off + np.arange(sel.size)
        off += sel.size
    pid = np.empty((M, M), dtype=np.int64)
    pid[iu, iv] = np.arange(iu.size)
    pid[iv, iu] = np.arange(iu.size)
    return {"da": da, "na": Ia.shape[0], "nb": Ib.shape[0], "blocks": tuple(blocks), "n_mom": n_mom, "M": M,
            "mean_pos": mean_pos, "lin_pos": lin_pos, "lin_pair": pair, "lin_coef": coef, "iu": iu, "iv": iv,
            "n_pairs": iu.size, "groups": tuple(groups), "cov_slot": slot[pid].astype(np.int32)}


@functools.lru_cache(maxsize=16)
def _assembly_tables(order: int, d: int) -> tuple:
    """The plan's assembly tables as device arrays (built once per shape)."""
    pl = _plan(order, d)
    with jax.enable_x64(True):
        return (jnp.asarray(pl["mean_pos"]), tuple((jnp.asarray(p), jnp.asarray(c)) for p, c in pl["groups"]),
                jnp.asarray(pl["cov_slot"]))


def _chunks(x: jax.Array, width: int) -> tuple[jax.Array, jax.Array]:
    """``x`` (P, d) zero-padded into (n_chunks, chunk, d) with a (n_chunks, chunk) mask of the real rows, inside
    the caller's jit (the points cross to the device once, unpadded: no padded host copy)."""
    P, d = x.shape
    chunk = int(max(1, min(P, max(64, _CHUNK_ELEMENTS // max(width, 1)))))
    n_chunks = -(-P // chunk)
    pad = n_chunks * chunk - P
    padded = jnp.concatenate([x, jnp.zeros((pad, d), x.dtype)]).reshape(n_chunks, chunk, d)
    mask = (jnp.arange(n_chunks * chunk) < P).astype(x.dtype).reshape(n_chunks, chunk)
    return padded, mask


def stats_dispatch(x: np.ndarray, order: int):
    """Dispatch the statistics of one sample set (asynchronously: nothing is collected on the host).
    Returns device arrays ``(mean (M,), cov (M, M))``."""
    x = np.asarray(x, dtype=np.float64)
    return _stats_jit(jnp.asarray(x), _assembly_tables(order, x.shape[1]), order=order)


@x64
def sample_stats(x: np.ndarray, order: int) -> SampleStats:
    """Coefficient vector (orders 1..order) and its covariance (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    mean, cov = stats_dispatch(x, order)
    return SampleStats(np.asarray(mean), np.asarray(cov), x.shape[0])


@functools.partial(jax.jit, static_argnames=("order",))
def _stats_jit(x, tables, *, order: int):
    """Moment pass and covariance assembly in one executable."""
    P, d = x.shape
    pl = _plan(order, d)
    xp, mask = _chunks(x, 2 * (pl["na"] + pl["nb"]))
    mom = _moment_sums(xp, mask, order=order) / P
    return _assemble(mom, tables, P=P)


def _assemble(mom, tables, *, P):
    """``mean`` and ``cov`` from the moments: ``mean h h^T`` entry by entry as the linearisation's sums (one
    dense gather and row sum per group of pairs with the same number of terms), minus ``mean mean^T``."""
    mean_pos, groups, cov_slot = tables
    mean = mom[mean_pos]
    s2 = jnp.concatenate([jnp.sum(coef * mom[pos], axis=1) for pos, coef in groups])
    cov = (s2[cov_slot] - mean[:, None] * mean[None, :]) / max(P - 1, 1)
    return mean, cov


@functools.partial(jax.jit, static_argnames=("order",))
def _moment_sums(xp, mask, *, order: int):
    d = xp.shape[-1]
    pl = _plan(order, d)
    da = pl["da"]
    D = 2 * order

    def body(acc, chunk):
        xc, mc = chunk
        # the mask goes on both halves (mask^2 = mask): every product below then carries it exactly once
        halves = {"a": _HalfFeatures(xc[:, :da], D, mc), "b": _HalfFeatures(xc[:, da:], D, mc)}
        parts = []
        for side, r0, r1, nc, _ in pl["blocks"]:
            own, oth = (halves["a"], halves["b"]) if side in ("a", "c") else (halves["b"], halves["a"])
            G = oth.upto(order)[:nc]
            if side == "c":
                parts.append((own.upto(order) @ G.T).reshape(-1))
            else:
                parts.append(own.degree_times(own.degree_of_row(r0), G))
        return acc + jnp.concatenate(parts), None

    acc, _ = jax.lax.scan(body, jnp.zeros(pl["n_mom"]), (xp, mask))
    return acc


class _HalfFeatures:
    """Degree blocks of ``h_r(x)`` over the coordinates of one half (the layout of :func:`_features`), built on
    demand, and the sums ``sum_j h_r(x_j) G_c(x_j)`` over one degree ``p`` of ``r``.

    A degree block is the concatenation over ``k`` of the outer products of the degree-``k`` block of the first
    sub-half and the degree-``(p - k)`` block of the second. The high-degree blocks (degree 7 and 8 at
    order 4: 64% of the 1287 features of five coordinates) meet only the one to six lowest features of the
    other half, so their sums are taken sub-block by sub-block, ``sum_j B1_k (B2_{p-k} G_c)``, with ``G``
    folded into the smaller sub-block: the wide block is never written (at d = 10 about 1,000 values written
    per point and half instead of 1,587, and about a third less CPU time per sample set).
    """

    def __init__(self, x, D: int, mask):
        n, dim = x.shape
        self.n, self.dim = n, dim
        self._upto = {}
        if dim == 0:
            self.blocks = {0: mask[None]}
            self.sub = None
            return
        P = _polynomials(x, D, mask)
        if dim == 1:
            self.blocks = {q: P[q] for q in range(D + 1)}
            self.sub = None
        else:
            mid = dim // 2
            self.sub = (_feature_blocks(P, D, 0, mid), _feature_blocks(P, D, mid, dim))
            self.blocks = {}
        sizes = [math.comb(q + dim - 1, dim - 1) for q in range(D + 1)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)])

    def degree(self, q: int):
        if q not in self.blocks:
            B1, B2 = self.sub
            self.blocks[q] = jnp.concatenate([(B1[k][:, None, :] * B2[q - k][None, :, :]).reshape(-1, self.n)
                                              for k in range(q + 1)])
        return self.blocks[q]

    def upto(self, q: int):
        if self.dim == 0:
            return self.blocks[0]
        if q not in self._upto:  # traced once per chunk body, shared by every block that reads it
            self._upto[q] = jnp.concatenate([self.degree(r) for r in range(q + 1)])
        return self._upto[q]

    def degree_of_row(self, r0: int) -> int:
        return int(np.searchsorted(self.starts, r0, side="right") - 1)

    def degree_times(self, p: int, G):
        """``(sum_j h_r(x_j) G_c(x_j))`` for ``|r| = p`` (rows in :func:`_features`' order) and the rows ``c`` of
        ``G`` (nc, n), flattened row-major (r outer)."""
        nc = G.shape[0]
        if self.sub is None or p in self.blocks:
            return (self.degree(p) @ G.T).reshape(-1)
        B1, B2 = self.sub
        n1 = [B1[k].shape[0] for k in range(p + 1)]
        n2 = [B2[p - k].shape[0] for k in range(p + 1)]
        split_writes = 0 if nc == 1 else sum(min(a, b) for a, b in zip(n1, n2)) * nc
        if split_writes >= sum(a * b for a, b in zip(n1, n2)):
            return (self.degree(p) @ G.T).reshape(-1)
        out = []
        for k in range(p + 1):
            L, R = B1[k], B2[p - k]
            if nc == 1:  # G is the other half's constant feature: the mask, already on L
                out.append((L @ R.T).reshape(-1))
            elif n2[k] <= n1[k]:
                RG = (R[:, None, :] * G[None]).reshape(-1, self.n)  # rows (i2, c)
                out.append((L @ RG.T).reshape(-1))
            else:
                LG = (L[:, None, :] * G[None]).reshape(-1, self.n)  # rows (i1, c)
                out.append((LG @ R.T).reshape(n1[k], nc, n2[k]).transpose(0, 2, 1).reshape(-1))
        return jnp.concatenate(out)


@functools.lru_cache(maxsize=16)
def _value_plan(order: int, d: int) -> dict:
    """Where each coefficient ``n = (n_a, n_b)`` sits among the half-coordinate features of degree <= order."""
    da = (d + 1) // 2
    Ia, sa = _graded_tensor_indices(order, da)
    Ib, sb = _graded_tensor_indices(order, d - da)
    idx = _tables(order, d)["indices"][1:]
    ia = _rank_lookup(Ia, order + 1)(idx[:, :da])
    ib = _rank_lookup(Ib, order + 1)(idx[:, da:])
    return {"da": da, "na": Ia.shape[0], "nb": Ib.shape[0], "sa": tuple(int(v) for v in sa),
            "sb": tuple(int(v) for v in sb), "ia": ia, "ib": ib}


@x64
def feature_values(x: np.ndarray, order: int, V: np.ndarray) -> np.ndarray:
    """``s_j = h(x_j) . V`` (N, p) for the coefficient directions ``V`` (M, p), chunked.

    With ``h_n(x) = h_{n_a}(x_a) h_{n_b}(x_b)``: ``s_j = sum_q sum_{|n_a| = q} h_{n_a}(x_{j,a})
    sum_{|n_b| <= order - q} V_n h_{n_b}(x_{j,b})``, one matrix product per degree q (2 N M p flops)."""
    x = jnp.asarray(x, dtype=jnp.float64)
    P, d = x.shape
    vp = _value_plan(order, d)
    V = np.asarray(V, dtype=np.float64)
    Vf = np.zeros((vp["na"], vp["nb"], V.shape[1]))
    Vf[vp["ia"], vp["ib"]] = V
    return np.asarray(_feature_values_jit(x, jnp.asarray(Vf), order=order))


@functools.partial(jax.jit, static_argnames=("order",))
def _feature_values_jit(x, Vf, *, order: int):
    """:func:`_feature_values` of the points ``x`` (P, d): (P, p)."""
    vp = _value_plan(order, x.shape[-1])
    xp, _ = _chunks(x, 4 * (vp["na"] + vp["nb"]))
    s = _feature_values(xp, Vf, order=order)
    return s.reshape(-1, s.shape[-1])[: x.shape[0]]


def _feature_values(xp, Vf, *, order: int):
    """Per-point values of :func:`feature_values` on zero-padded chunks ``xp`` (n_chunks, chunk, d)."""
    vp = _value_plan(order, xp.shape[-1])
    da, sa, sb = vp["da"], vp["sa"], vp["sb"]

    def one(xc):
        Fa, Fb = _features(xc[:, :da], order), _features(xc[:, da:], order)
        out = 0.0
        for q in range(order + 1):
            a0, a1, nb = sa[q], sa[q + 1], sb[order - q + 1]
            if a1 > a0:
                T = jnp.einsum("abp,bj->apj", Vf[a0:a1, :nb], Fb[:nb])
                out = out + jnp.einsum("aj,apj->jp", Fa[a0:a1], T)
        return out

    return jax.lax.map(one, xp)


@x64
def influence_draws(key, s: np.ndarray, n_boot: int) -> np.ndarray:
    """``n_boot`` draws of ``sum_j (c_j - 1) s_j / N``, ``c`` multinomial(N, 1/N) counts (resampling with
    replacement); ``s`` (N, p). Returns (n_boot, p).

    Index ``j`` of replicate ``b`` is ``floor(u N / 2^32)`` with ``u`` the high 32 bits of the SplitMix64
    output for the counter ``b N + j`` (seed: 64 bits drawn from ``key``); non-uniformity below
    ``N / 2^32`` (2e-5 at N = 10^5). A counter-based hash fused into the gather: 2-3x faster on CPU than
    drawing the 32-bit words with ``jax.random.bits`` (threefry), and SplitMix64 passes BigCrush, more than
    a bootstrap needs."""
    s = jnp.asarray(s, dtype=jnp.float64)
    if s.shape[0] >= 2**32:
        raise ValueError(f"a sample set has {s.shape[0]} points; the bootstrap supports fewer than 2^32")
    return np.asarray(_influence_draws(key, s, n_boot=int(n_boot)))


def _splitmix64(z):
    z = z * jnp.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> jnp.uint64(30))) * jnp.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> jnp.uint64(27))) * jnp.uint64(0x94D049BB133111EB)
    return z ^ (z >> jnp.uint64(31))


@functools.partial(jax.jit, static_argnames=("n_boot",))
def _influence_draws(key, s, *, n_boot: int):
    P, p = s.shape
    kd = jax.random.bits(key, (2,), jnp.uint32).astype(jnp.uint64)
    seed = (kd[0] << jnp.uint64(32)) | kd[1]
    mean = s.mean(0)
    j = jnp.arange(P, dtype=jnp.uint64)
    # Columns packed in pairs as complex numbers: one gather moves two values (XLA's CPU gather costs per
    # index, not per byte: 2.6x faster than gathering rows of two float64 at N = 10^5).
    sp = jnp.pad(s, ((0, 0), (0, p % 2)))
    index_type = jnp.int32 if P < 2**31 else jnp.int64
    packed = jax.lax.complex(sp[:, 0::2], sp[:, 1::2]).T  # (ceil(p / 2), P)

    def one(b):
        z = _splitmix64(seed + b.astype(jnp.uint64) * jnp.uint64(P) + j + jnp.uint64(1))
        i = (((z >> jnp.uint64(32)) * jnp.uint64(P)) >> jnp.uint64(32)).astype(index_type)
        v = jnp.sum(packed[:, i], axis=1) / P
        return jnp.stack([v.real, v.imag], axis=1).reshape(-1)[:p] - mean

    return jax.lax.map(one, jnp.arange(n_boot), batch_size=min(n_boot, 8))


# Host threads that feed the device with independent sample sets. XLA:CPU runs one executable's matrix
# products on its own thread pool but its elementwise loops on one core; two executions in flight keep
# both cores of the 2-core machine busy (statistics of one set at d = 10, 10^5 points: 0.39 s one after
# another, 0.25 s per set two at a time).
SET_THREADS = 2


def each_set(fn, n_sets: int) -> list:
    """``[fn(k) for k in range(n_sets)]``, on :data:`SET_THREADS` host threads, results in set order.

    ``fn`` runs with 64-bit JAX types (the context is thread-local), so every thread hits the same
    compiled executables; the results do not depend on which thread ran which set.
    """
    def run(k):
        with jax.enable_x64(True):
            return fn(k)

    if n_sets < 2:
        return [run(k) for k in range(n_sets)]
    with ThreadPoolExecutor(max_workers=SET_THREADS, thread_name_prefix="hermite-limit-set") as pool:
        return list(pool.map(run, range(n_sets)))


@x64
def bootstrap_draws_many(keys, sets, order: int, V, n_boot: int) -> np.ndarray:
    """``sum_k`` :func:`influence_draws` ``(keys[k], feature_values(sets[k], order, V[k]), n_boot)`` (n_boot, p),
    the same numbers: each set's per-point values and draws in one executable (the per-point values never
    leave the device), sets two at a time (:func:`each_set`), summed in set order. ``V`` (K, M, p), a
    device array or numpy."""
    V = jnp.asarray(V, dtype=jnp.float64)
    sets = [np.asarray(x, dtype=np.float64) for x in sets]
    for x in sets:
        if x.shape[0] >= 2**32:
            raise ValueError(f"a sample set has {x.shape[0]} points; the bootstrap supports fewer than 2^32")

    def draws(k):
        return np.asarray(_boot_one(keys[k], jnp.asarray(sets[k]), V[k], order=order, n_boot=int(n_boot)))

    total = None
    for dr in each_set(draws, len(sets)):
        total = dr if total is None else total + dr
    return total


@functools.partial(jax.jit, static_argnames=("order", "n_boot"))
def _boot_one(key, x, V, *, order: int, n_boot: int):
    vp = _value_plan(order, x.shape[-1])
    Vf = jnp.zeros((vp["na"], vp["nb"], V.shape[1]), V.dtype).at[vp["ia"], vp["ib"]].set(V)
    return _influence_draws(key, _feature_values_jit(x, Vf, order=order), n_boot=n_boot)


@x64
def batch_stats(x, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Means (R, M) and covariances of the means (R, M, M) of R sample sets ``x`` (R, n, d) at once."""
    x = jnp.asarray(x, dtype=jnp.float64)
    R, P, d = x.shape
    s1, s2 = _batch_sums(x, order=order)
    mean = s1 / P
    cov = (s2 - P * mean[:, :, None] * mean[:, None, :]) / max(P - 1, 1) / P
    return np.asarray(mean), np.asarray(cov)


@functools.partial(jax.jit, static_argnames=("order",))
def _batch_sums(x, *, order: int):
    d = x.shape[-1]
    idx = _tables(order, d)["indices"][1:]

    def one(xr):
        H = _products(xr, idx, order)
        return H.sum(0), H.T @ H

    return jax.lax.map(one, x)
