"""Mode energy spectrum ``E_m = sum_{|n| = m} a_n^2`` without enumerating multi-indices.

Identity. For laws ``p, q`` and ``|r| < 1`` (as formal power series in ``r`` in general)

    G_pq(r) = sum_n r^{|n|} a_n(p) a_n(q) = E_{X~p, Y~q} M_r(X, Y) = sum_m r^m E_m(p, q),

``M_r`` the Mehler kernel, so ``E_m(p) = [r^m] G_pp``. For two Gaussian components
``N(m1, S1)``, ``N(m2, S2)`` with ``B_i = S_i - I`` the coefficients' generating functions are
``F_i(s) = exp(s.m_i + s^T B_i s / 2)``, and ``sum_n c_n d_n r^{|n|} / n! = E[F_1(sqrt(r) Z)
F_2(sqrt(r) conj Z)]`` for a standard complex Gaussian ``Z`` (``E Z^n conj(Z)^k = n! delta``).
That Gaussian integral gives the closed form (derived here, checked against enumeration)

    G_12(r) = det(I - r^2 C)^{-1/2} exp( r m1^T (I - r^2 C)^{-1} m2
              + (r^2/2) m1^T (I - r^2 C)^{-1} B2 m1 + (r^2/2) m2^T (I - r^2 C')^{-1} B1 m2 ),

with ``C = B2 B1`` and ``C' = B1 B2``. (Point masses, ``B = -I``: the Mehler kernel
``(1-r^2)^{-d/2} exp((2 r x.y - r^2(|x|^2+|y|^2)) / (2(1-r^2)))``.) Expanding
``log det(I - r^2 C) = -sum_j r^{2j} tr(C^j)/j`` and ``(I - r^2 C)^{-1} = sum_i r^{2i} C^i`` gives
``log G_12 = sum_k l_k r^k`` with

    l_{2i+1} = m1^T C^i m2,
    l_{2j}   = tr(C^j) / (2j) + (1/2) m1^T C^{j-1} B2 m1 + (1/2) m2^T C'^{j-1} B1 m2,

and ``G = exp(L)`` by the power-series recursion ``g_0 = 1``, ``g_m = (1/m) sum_{k=1}^m k l_k g_{m-k}``.
This is the *direct recursion* (exact Taylor coefficients, no aliasing) rather than a Cauchy
integral on a circle, whose round-off grows like ``R^{-m}``. Costs: isotropic covariances
(including point masses / samples) need only the Gram matrix of the means, ``O(K^2 d + K^2
order^2)``; diagonal ones ``O(K^2 d order)``; full ones ``O(K^2 order d^3)``.

Accuracy. The ``g_m`` are sums of terms of both signs; with ``|l_k|`` in place of ``l_k`` the same
recursion gives ``G^abs_m``, which bounds every intermediate term. The reported error is
``8 eps (m + 1) sum_{kl} w_k w_l G^abs_m`` (a round-off bound, tight when the terms cancel, e.g.
for point masses in high dimension where ``G^abs_m ~ (d/2)^{m/2}/(m/2)!``).

Samples. For i.i.d. ``x_1..x_N ~ p``, ``K_m(x, y) = [r^m] M_r(x, y) = sum_{|n|=m} h_n(x) h_n(y)``
(a polynomial in ``x.y``, ``|x|^2``, ``|y|^2``, from the same recursion with ``B = -I``) has
``E K_m(X, Y) = E_m`` for independent ``X, Y``, so the U-statistic
``U_m = sum_{i != j} K_m(x_i, x_j) / (N (N-1))`` is unbiased. Its standard error is
``sqrt(4 (N-2) zeta1 / (N (N-1)) + 2 zeta2 / (N (N-1)))`` with ``zeta1`` the sample variance of the
row means ``mean_{j != i} K_m(x_i, x_j)`` (slightly conservative) and ``zeta2`` the variance of
``K_m`` over pairs (Hoeffding). Note ``K_m(x, y) != (x.y)^m / m!`` in general: the ``|x|^2``,
``|y|^2`` terms and the ``(1 - r^2)^{-d/2}`` prefactor contribute at every even order.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._mixture import GaussianMixture
from .._precision import x64
from .._validation import FLOAT_BYTES, as_float_array, check_choice, check_memory, check_positive_int, is_concrete
from ._indices import MAX_ELEMENTS

EPS = float(np.finfo(np.float64).eps)
MAX_ORDER = 200


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class EnergySpectrum:
    """Per-order energies ``E_m = sum_{|n|=m} a_n^2``, ``m = 0..order``, with error estimates.

    Attributes
    ----------
    energies, errors : jax.Array (order+1,)
    order, dim : int
    method : str, ``"exact"`` (mixture, exact series) or ``"samples"`` (U-statistic)
    """

    energies: jax.Array
    errors: jax.Array
    order: int
    dim: int
    method: str

    def tree_flatten(self):
        return (self.energies, self.errors), (self.order, self.dim, self.method)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    @x64
    def chi2(self) -> jax.Array:
        """Truncated Parseval sum ``sum_{m=1}^{order} E_m``: a lower bound on ``chi2(p || gamma)``
        for exact spectra (higher orders dropped)."""
        return jnp.sum(self.energies[1:])


@x64
def energy_spectrum(dist: Any, order: int, *, method: str = "auto", block: int | None = None) -> EnergySpectrum:
    """Mode energies ``E_m = sum_{|n| = m} a_n(p)^2`` for ``m <= order``, in any dimension.

    Parameters
    ----------
    dist : GaussianMixture (or result with ``.mixture``) or samples array (N, d)
        For a mixture (including ``hl.empirical``, whose spectrum is the V-statistic of its
        points) the energies are exact; for a samples array they are the unbiased U-statistic.
    order : int, 0 <= order <= 200
    method : {"auto", "exact", "samples"}
        ``exact`` on an array treats it as the empirical law (V-statistic).
    block : int, optional; rows of the pair matrix processed at once (memory knob).

    Returns
    -------
    EnergySpectrum with ``energies``, ``errors`` (round-off bound, plus the standard error for
    samples), ``chi2()``.

    Notes
    -----
    ``sum_m r^m E_m = E_{X, Y ~ p} M_r(X, Y)``, evaluated in closed form per pair of Gaussian
    components and expanded by an exact power-series recursion; see the module docstring of
    ``hermite_limit.hermite._spectrum`` for the formula, derivation, cost and accuracy.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> s = hl.energy_spectrum(hl.GaussianMixture([1.0], [[1.0, 0.0]], [1.0]), 3)
    >>> [round(float(e), 12) for e in s.energies]  # N(mu, I): E_m = |mu|^{2m} / m!
    [1.0, 1.0, 0.5, 0.166666666667]
    """
    method = check_choice(method, "method", ("auto", "exact", "samples"))
    order = check_positive_int(order, "order")
    if order > MAX_ORDER:
        raise ValueError(f"order must be <= {MAX_ORDER} for energy_spectrum; got order={order}")
    from .._pushed import as_pushed, is_pushed

    if is_pushed(dist) and method in ("auto", "exact") and as_pushed(dist).is_ou_push():
        # a_n(p) = (sum_k w_k rho_k^|n|) a_n(points), so E_m(p) = (sum_k w_k rho_k^m)^2 E_m(points)
        law = as_pushed(dist)
        base = energy_spectrum(GaussianMixture.tree_unflatten(None, (law.point_weights, law.points, jnp.zeros(law.n_points))), order, block=block)
        factor = jnp.asarray(law.term_sums(order)) ** 2
        return EnergySpectrum(base.energies * factor, base.errors * factor + 4 * EPS * base.energies * factor, order, base.dim, "exact")
    inner = getattr(dist, "mixture", None)
    if isinstance(inner, GaussianMixture):
        dist = inner
    if isinstance(dist, GaussianMixture):
        if method == "samples":
            raise ValueError("dist: method='samples' needs a samples array; draw with dist.sample(key, n)")
        gm = dist
    else:
        if is_concrete(dist):
            dist = as_float_array("dist", dist, ndim=(1, 2))
        x = jnp.asarray(dist, dtype=jnp.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.shape[0] < 1:
            raise ValueError("dist must contain at least one sample")
        if method == "exact":
            N = x.shape[0]
            gm = GaussianMixture.tree_unflatten(None, (jnp.full(N, 1.0 / N), x, jnp.zeros(N)))
        else:
            if x.shape[0] < 3:
                raise ValueError(f"dist needs at least 3 samples for a U-statistic error; got {x.shape[0]}")
            blk = _block(x.shape[0], order, block)
            e, err = _ustat(x, order=order, block=blk)
            return EnergySpectrum(e, err, order, x.shape[1], "samples")
    K, d = gm.n_components, gm.dim
    if gm.cov_type == "full":
        if K * K * (order // 2 + 2) * d * d > 8 * MAX_ELEMENTS:
            raise ValueError(f"order={order} with {K} full {d}x{d} covariances is too much work; use diagonal covariances or fewer components")
        e, err = _full(gm.weights, gm.means, gm.covs - jnp.eye(d), order=order)
    else:
        B = gm.covs - 1.0
        if gm.cov_type == "iso":
            blk = _block(K, order, block)
            e, err = _iso(gm.weights, gm.means, B, order=order, block=blk)
        else:
            if K * K * (order + 2) > 4 * MAX_ELEMENTS or K * d * (order + 2) > MAX_ELEMENTS:
                raise ValueError(f"order={order} with {K} diagonal components in d={d} exceeds the memory limit")
            e, err = _diag(gm.weights, gm.means, B, order=order)
    return EnergySpectrum(e, err, order, d, "exact")


def _block(N: int, order: int, block: int | None) -> int:
    if block is not None:
        blk = min(check_positive_int(block, "block", allow_zero=False), N)
        check_memory("block", FLOAT_BYTES * 4.0 * blk * N * (order + 1), detail=f"{blk} rows x {N} columns x {order + 1} orders")
        return blk
    return int(max(1, min(N, (2**22) // max(1, N * (order + 1)))))


def _exp_series(ell, order):
    """``g = exp(sum_k l_k r^k)`` (l_0 = 0) as truncated series; also the |l| majorant."""
    def run(l):
        g = [jnp.ones_like(l[..., 0])]
        for m in range(1, order + 1):
            acc = sum(k * l[..., k] * g[m - k] for k in range(1, m + 1))
            g.append(acc / m)
        return jnp.stack(g, axis=-1)

    return run(ell), run(jnp.abs(ell))


def _iso_log_series(g, qk, ql, bk, bl, d, order):
    """Log-series coefficients for isotropic pairs: arrays broadcast over pairs."""
    c = bk * bl
    out = [jnp.zeros_like(g)]
    for k in range(1, order + 1):
        if k % 2:
            i = (k - 1) // 2
            out.append(c**i * g)
        else:
            j = k // 2
            out.append(d * c**j / (2 * j) + 0.5 * c ** (j - 1) * (bl * qk + bk * ql))
    return jnp.stack(out, axis=-1)


def _blocks(a, block: int):
    """Zero-pad the leading axis to a multiple of ``block`` and split it: (n, ...) -> (n_blocks, block, ...)."""
    pad = (-a.shape[0]) % block
    a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
    return a.reshape((-1, block) + a.shape[1:])


@functools.partial(jax.jit, static_argnames=("order", "block"))
def _iso(w, means, b, *, order, block):
    K, d = means.shape
    q = jnp.sum(means**2, axis=1)
    mp, wp, bp, qp = (_blocks(a, block) for a in (means, w, b, q))

    def body(carry, rows):
        mr, wr, br, qr = rows
        G = mr @ means.T  # (block, K)
        ell = _iso_log_series(G, qr[:, None], q[None, :], br[:, None], b[None, :], d, order)
        f, fa = _exp_series(ell, order)
        ww = wr[:, None, None] * w[None, :, None]
        return (carry[0] + jnp.sum(ww * f, (0, 1)), carry[1] + jnp.sum(ww * fa, (0, 1))), None

    z = jnp.zeros(order + 1)
    (e, ea), _ = jax.lax.scan(body, (z, z), (mp, wp, bp, qp))
    return e, _roundoff(ea, order)


def _roundoff(ea, order):
    return 8.0 * EPS * (jnp.arange(order + 1) + 1.0) * ea


@functools.partial(jax.jit, static_argnames=("order",))
def _diag(w, means, B, *, order):
    npow = order // 2 + 1
    P = jnp.stack([B**i for i in range(npow + 1)])  # (npow+1, K, d)
    m2 = means**2
    out = [jnp.zeros((means.shape[0],) * 2)]
    for k in range(1, order + 1):
        if k % 2:
            i = (k - 1) // 2
            out.append((means * P[i]) @ (means * P[i]).T)
        else:
            j = k // 2
            half = 0.5 * (m2 * P[j - 1]) @ P[j].T
            out.append((P[j] @ P[j].T) / (2 * j) + half + half.T)
    ell = jnp.stack(out, axis=-1)
    f, fa = _exp_series(ell, order)
    ww = (w[:, None] * w[None, :])[..., None]
    return jnp.sum(ww * f, (0, 1)), _roundoff(jnp.sum(ww * fa, (0, 1)), order)


@functools.partial(jax.jit, static_argnames=("order",))
def _full(w, means, B, *, order):
    npow = order // 2 + 1

    def pair(m1, B1, m2, B2):
        C = B2 @ B1
        Cp = B1 @ B2
        ell = [jnp.zeros(())]
        u = m2  # C^i m2
        s = B2 @ m1  # C^i B2 m1
        t = B1 @ m2  # C'^i B1 m2
        Cj = jnp.eye(C.shape[0])
        odd, even_q, tr = [], [], []
        for i in range(npow):
            odd.append(m1 @ u)
            even_q.append(0.5 * (m1 @ s) + 0.5 * (m2 @ t))
            Cj = Cj @ C
            tr.append(jnp.trace(Cj))
            u, s, t = C @ u, C @ s, Cp @ t
        for k in range(1, order + 1):
            if k % 2:
                ell.append(odd[(k - 1) // 2])
            else:
                j = k // 2
                ell.append(tr[j - 1] / (2 * j) + even_q[j - 1])
        return jnp.stack(ell)

    def row(carry, args):
        m1, B1, w1 = args
        ell = jax.vmap(pair, in_axes=(None, None, 0, 0))(m1, B1, means, B)  # (K, order+1)
        f, fa = _exp_series(ell, order)
        return (carry[0] + w1 * (w @ f), carry[1] + w1 * (w @ fa)), None

    z = jnp.zeros(order + 1)
    (e, ea), _ = jax.lax.scan(row, (z, z), (means, B, w))
    return e, _roundoff(ea, order)


@functools.partial(jax.jit, static_argnames=("order", "block"))
def _ustat(x, *, order, block):
    N, d = x.shape
    q = jnp.sum(x**2, axis=1)
    xp, qp = _blocks(x, block), _blocks(q, block)
    nb = xp.shape[0]
    rows = jnp.arange(nb * block).reshape(nb, block)
    neg = -jnp.ones(())

    def body(carry, args):
        xr, qr, ir = args
        G = xr @ x.T
        ell = _iso_log_series(G, qr[:, None], q[None, :], neg, neg, d, order)
        f, fa = _exp_series(ell, order)
        mask = ((ir[:, None] != jnp.arange(N)[None, :]) & (ir[:, None] < N))[..., None]
        f = jnp.where(mask, f, 0.0)
        fa = jnp.where(mask, fa, 0.0)
        s, s2, sa = carry
        return (s + f.sum((0, 1)), s2 + (f * f).sum((0, 1)), sa + fa.sum((0, 1))), f.sum(1)

    z = jnp.zeros(order + 1)
    (s, s2, sa), rowsum = jax.lax.scan(body, (z, z, z), (xp, qp, rows))
    rowsum = rowsum.reshape(nb * block, order + 1)[:N]
    npairs = N * (N - 1)
    U = s / npairs
    h1 = rowsum / (N - 1)
    zeta1 = jnp.var(h1, axis=0, ddof=1)
    zeta2 = jnp.maximum(s2 / npairs - U**2, 0.0)
    se = jnp.sqrt(4.0 * (N - 2) * zeta1 / npairs + 2.0 * zeta2 / npairs)
    return U, se + _roundoff(sa / npairs, order)
