"""Learners: what a generation of :func:`retrain` learns from its training set, and what it carries forward.

One protocol, :class:`Learner`, with three methods:

- ``init(key, data) -> state``: the state before generation 0 (e.g. the network's initial weights);
- ``fit(key, training, state) -> LearnedScore``: from the generation's :class:`TrainingSet` (the exact
  training law ``hat-q_i = alpha p_data + (1 - alpha) hat-p_i`` and, for learners that train on samples,
  ``n`` samples of it: ``round(alpha n)`` fresh draws of ``p_data`` and the rest drawn without replacement
  from the previous generation's particles), return the score ``s(x, t)`` the sampler uses, the state the
  next generation starts from, and per-generation training information (e.g. the loss curve);
- ``model(particles, training, state) -> (GaussianMixture, state)``: the law ``hat-p_{i+1}`` that the
  generation's particles stand for, which the next training law is built from.

The learners:

============================  =====================================================  ==========================
learner                       score of generation ``i``                              carried model ``hat-p_{i+1}``
============================  =====================================================  ==========================
:class:`ExactScore`           exact score of ``P_t hat-q_i``                         closed form ``p_{i+1}``
:class:`ParticleScore`        exact score of ``P_t hat-q_i``                         empirical law of particles
:class:`RefitScore`           exact score of ``P_t hat-q_i``                         EM mixture fit to particles
:class:`KDEScore`             exact score of ``P_t`` (KDE of the ``n`` samples)      empirical law of particles
:class:`NeuralScore`          MLP trained by denoising score matching on samples     empirical law of particles
============================  =====================================================  ==========================

(``retrain(carry="analytic" | "particles" | "refit")`` is a synonym for the first three.)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from .._limit import generation
from .._mixture import GaussianMixture, _assemble, _draws, empirical
from .._noise import _threefry_key_words, threefry2x32
from .._precision import x64
from ._refit import fit_gmm
from ._score import mixture_score

__all__ = [
    "Learner",
    "TrainingSet",
    "LearnedScore",
    "ExactScore",
    "ParticleScore",
    "RefitScore",
    "KDEScore",
    "NeuralScore",
    "NeuralScoreFunction",
]


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """What generation ``i`` of :func:`retrain` trains on.

    Attributes
    ----------
    generation : int, ``i`` (0-based; its output is ``hat-p_{i+1}``).
    data : GaussianMixture, ``p_data``.
    alpha, t0, T : float, fresh-data fraction, truncation time, start time of the sampler.
    law : GaussianMixture
        The exact training law ``hat-q_i = alpha p_data + (1 - alpha) hat-p_i`` (``hat-p_0 = p_data``), zero-weight
        padded to a bucketed size (fixed shapes under jit).
    previous : jax.Array (n, d) or None
        The particles of generation ``i - 1`` (None for ``i = 0``).
    samples : jax.Array (n, d) or None
        Only for learners with ``needs_samples``: ``round(alpha n)`` fresh draws of ``p_data`` followed by
        ``n - round(alpha n)`` rows of ``previous`` drawn without replacement (for ``i = 0``, draws of
        ``p_data``): a sample of ``law``.
    """

    generation: int
    data: GaussianMixture
    alpha: float
    t0: float
    T: float
    law: GaussianMixture
    previous: Any
    samples: Any


class LearnedScore(NamedTuple):
    """Result of :meth:`Learner.fit`: the score ``s(x, t)`` for the sampler, the next state, training info.

    ``info`` may hold ``"loss_curve"`` (1-D array, the training loss averaged over equal blocks of steps) and
    ``"loss_steps"`` (the last step of each block).
    """

    score: Callable
    state: Any
    info: dict


@runtime_checkable
class Learner(Protocol):
    """The protocol :func:`retrain` runs every learner through (see the module docstring)."""

    name: str
    needs_samples: bool

    def init(self, key: Any, data: GaussianMixture) -> Any: ...

    def fit(self, key: Any, training: TrainingSet, state: Any) -> LearnedScore: ...

    def model(self, particles: Any, training: TrainingSet, state: Any) -> tuple[GaussianMixture, Any]: ...


# -- learners with the exact score of the training law ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ExactScore:
    """The perfect learner: the exact score of ``P_t hat-q_i``, and the closed-form output as the next model.

    The particles only measure the sampler: the model carried forward is ``hl.generation(data, alpha, t0,
    i + 1)``, so nothing the particles contain is fed back (``carry="analytic"``).
    """

    name: str = dataclasses.field(default="analytic", init=False)
    needs_samples: bool = dataclasses.field(default=False, init=False)

    def init(self, key, data):
        return None

    def fit(self, key, training, state):
        return LearnedScore(mixture_score(training.law), state, {})

    def model(self, particles, training, state):
        return generation(training.data, training.alpha, training.t0, training.generation + 1), state


@dataclasses.dataclass(frozen=True)
class ParticleScore(ExactScore):
    """A perfectly memorising learner: exact score of ``P_t hat-q_i``; the particles' empirical law is the next model.

    Next round's training law ``alpha p_data + (1-alpha) (1/n) sum_j delta_{y_j}`` has point masses, but its
    pushes ``P_t hat-q`` (``t >= t0 > 0``) are mixtures with ``K + n`` components whose score is exact. Cost per
    sampler step ``O(n (K + n) d)`` (``carry="particles"``). Fits as :class:`ExactScore`; only the model differs.
    """

    name: str = dataclasses.field(default="particles", init=False)

    def model(self, particles, training, state):
        return empirical(particles), state


@dataclasses.dataclass(frozen=True)
class RefitScore:
    """An imperfect learner: exact score of ``P_t hat-q_i``; the next model is a ``K``-component full-covariance
    mixture fitted to the particles by ``n_iter`` EM steps, warm-started at the previous fit (``K`` =
    components of ``p_data``; ``carry="refit"``)."""

    n_iter: int = 30
    name: str = dataclasses.field(default="refit", init=False)
    needs_samples: bool = dataclasses.field(default=False, init=False)

    def __post_init__(self):
        _check_int(self.n_iter, "n_iter", 1)

    def init(self, key, data):
        return data if data.cov_type == "full" else data.as_cov_type("full")

    def fit(self, key, training, state):
        return LearnedScore(mixture_score(training.law), state, {})

    def model(self, particles, training, state):
        fitted = fit_gmm(particles, state, self.n_iter)
        return fitted, fitted


@dataclasses.dataclass(frozen=True)
class KDEScore:
    """Gaussian kernel-density learner: the exact score of ``P_t`` applied to the KDE of the ``n`` training samples.

    The KDE ``(1/n) sum_j N(x_j, h^2 I)`` pushed by ``P_t`` is the mixture of ``N(rho x_j, (rho^2 h^2 + 1 -
    rho^2) I)``, so its score is exact (cost ``O(n^2 d)`` per sampler step). The next model is the empirical law
    of the particles. The closed form of this learner applied to the exact training law (the limit of many
    samples) is ``hl.generation(..., kde_bandwidth=h)``.

    Parameters
    ----------
    bandwidth : float > 0, ``h``.
    """

    bandwidth: float = 0.6
    name: str = dataclasses.field(default="kde", init=False)
    needs_samples: bool = dataclasses.field(default=True, init=False)

    def __post_init__(self):
        _check_rate(self.bandwidth, "bandwidth")

    def init(self, key, data):
        return None

    def fit(self, key, training, state):
        x = jnp.asarray(training.samples, jnp.float64)
        n = x.shape[0]
        kde = GaussianMixture.tree_unflatten(None, (jnp.full(n, 1.0 / n), x, jnp.full(n, float(self.bandwidth) ** 2)))
        return LearnedScore(mixture_score(kde), state, {})

    def model(self, particles, training, state):
        return empirical(particles), state


# -- the neural learner ---------------------------------------------------------------------------


def _time_features(t, lo: float, hi: float, n_freq: int, dtype):
    """``[u, sin(pi f_k u), cos(pi f_k u)]``, ``u = (log t - log t_min) / (log T - log t_min)``, ``f_k`` geometric in
    [1/2, 32]: shape ``t.shape + (2 n_freq + 1,)``. In float32 the sines and cosines are :func:`_sincos32` (to
    1e-7 absolute, 7x faster than XLA's CPU ``sin`` and ``cos``); training and evaluation both come here."""
    u = ((jnp.log(t) - lo) / (hi - lo)).astype(dtype)
    f = jnp.asarray(np.pi * np.geomspace(0.5, 32.0, n_freq), dtype)
    ang = u[..., None] * f
    sin, cos = _sincos32(ang) if ang.dtype == jnp.float32 else (jnp.sin(ang), jnp.cos(ang))
    return jnp.concatenate([u[..., None], sin, cos], axis=-1)


# sin r = r + r^3 P(r^2), cos r = 1 - r^2 / 2 + r^4 Q(r^2) on |r| <= pi / 4 (Cephes sinf / cosf minimax coefficients)
_SIN32 = (-1.6666654611e-1, 8.3321608736e-3, -1.9515295891e-4)
_COS32 = (4.166664568298827e-2, -1.388731625493765e-3, 2.443315711809948e-5)
# pi / 2 in three parts, the first two with few enough bits that k * part is exact in float32 for |k| < 2^15
_PIO2_32 = (1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8)


def _sincos32(a):
    """``(sin a, cos a)`` of float32 ``a`` by Cody-Waite reduction to ``r = a - k pi/2``, ``|r| <= pi/4``, and the
    Cephes polynomials, rotated by the quadrant ``k mod 4``: within 1e-7 absolute for ``|a| < 2^15`` (the angles
    here are below 101). One vectorised fusion, where XLA's CPU ``sin`` / ``cos`` run a scalar loop."""
    f32 = np.float32
    k = jnp.round(a * f32(2.0 / math.pi))
    r = ((a - k * f32(_PIO2_32[0])) - k * f32(_PIO2_32[1])) - k * f32(_PIO2_32[2])
    z = r * r
    s = r + r * z * (f32(_SIN32[0]) + z * (f32(_SIN32[1]) + z * f32(_SIN32[2])))
    c = f32(1.0) - f32(0.5) * z + z * z * (f32(_COS32[0]) + z * (f32(_COS32[1]) + z * f32(_COS32[2])))
    q = k.astype(jnp.int32) & 3
    sin = jnp.where(q == 0, s, jnp.where(q == 1, c, jnp.where(q == 2, -s, -c)))
    cos = jnp.where(q == 0, c, jnp.where(q == 1, -s, jnp.where(q == 2, -c, s)))
    return sin, cos


# XLA's float32 erf_inv (Giles 2010): erfinv(x) = x P(w), w = -log(1 - x^2), P in w - 2.5 (w < 5) or sqrt(w) - 3
_ERFINV_LT5 = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
               -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_GE5 = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
               0.00943887047, 1.00167406, 2.83297682)


def _normal32(key, shape):
    """``jax.random.normal(key, shape, float32)``'s draws, recomputed 6x faster on CPU (same key, same numbers to
    6e-6 relative).

    ``jax.random.normal`` is ``sqrt 2 erfinv(u)`` of a uniform ``u`` on ``(-1, 1)`` made from the threefry bits. Here
    the bits are the same words (:func:`hermite_limit._noise.threefry2x32` unrolled, where JAX's CPU lowering loops
    over memory), ``u`` is built exactly as ``jax.random.uniform`` builds it, and the polynomial is XLA's; only
    ``1 - u^2`` is ``(1 - u)(1 + u)`` under a ``log`` instead of ``log1p(-u^2)``, whose CPU version is scalar and
    was most of the cost. The result is within 3e-7 relative of ``sqrt 2 erfinv(u)`` of the same ``u`` (``jax.random
    .normal`` within 6e-6: ``u^2`` is rounded before its ``log1p``). Keys of other generators go through
    ``jax.random.normal``.
    """
    words = _threefry_key_words(key)
    n = math.prod(shape)
    if words is None or n >= 2**32 or not jax.config.jax_threefry_partitionable:
        return jax.random.normal(key, shape, jnp.float32)
    f32 = np.float32
    low = jax.lax.iota(jnp.uint32, n)
    b1, b2 = threefry2x32(words[0], words[1], jnp.zeros_like(low), low)  # jax.random.bits(key, shape, uint32)
    bits = (b1 ^ b2).reshape(shape)
    lo = np.nextafter(f32(-1.0), f32(0.0))
    unit = jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | np.uint32(0x3F800000), jnp.float32) - f32(1.0)
    u = jnp.maximum(lo, unit * (f32(1.0) - lo) + lo)  # jax.random.uniform(key, shape, float32, lo, 1)
    w = -jnp.log((f32(1.0) - u) * (f32(1.0) + u))
    small = w < f32(5.0)
    v = jnp.where(small, w - f32(2.5), jnp.sqrt(w) - f32(3.0))
    p = jnp.where(small, f32(_ERFINV_LT5[0]), f32(_ERFINV_GE5[0]))
    for a, b in zip(_ERFINV_LT5[1:], _ERFINV_GE5[1:]):
        p = jnp.where(small, f32(a), f32(b)) + p * v
    return f32(math.sqrt(2.0)) * (p * u)


class NeuralScoreFunction(eqx.Module):
    """The score of a trained :class:`NeuralScore` network: ``s(x, t) = -eps_theta(x, t) / sigma(t)``.

    A pytree (the sampler's jit takes new weights without recompiling). ``x`` (n, d) or (d,) in float64, ``t`` a
    scalar; the network runs in its own dtype and the score is returned in float64.
    """

    net: eqx.nn.MLP
    log_t_min: float = eqx.field(static=True)
    log_T: float = eqx.field(static=True)
    n_freq: int = eqx.field(static=True)

    def eps(self, x, t):
        """Noise prediction ``eps_theta(x, t)`` for ``x`` (n, d), ``t`` scalar or (n,), in the network's dtype."""
        dtype = self.net.layers[0].weight.dtype
        x = jnp.asarray(x).astype(dtype)
        t = jnp.broadcast_to(jnp.asarray(t), x.shape[:1])
        feats = jnp.concatenate([x, _time_features(t, self.log_t_min, self.log_T, self.n_freq, dtype)], axis=-1)
        return jax.vmap(self.net)(feats)

    def __call__(self, x, t):
        with jax.enable_x64(True):
            x = jnp.asarray(x)
            single = x.ndim == 1
            x2 = x[None] if single else x
            t = jnp.asarray(t, jnp.float64)
            sigma = jnp.sqrt(-jnp.expm1(-2.0 * t))
            out = -self.eps(x2, t).astype(jnp.float64) / sigma
            return out[0] if single else out


@dataclasses.dataclass(frozen=True)
class NeuralScore:
    """A score network trained each generation by denoising score matching (DSM) on the training samples.

    Network: an equinox MLP (``depth`` hidden layers of ``width`` units, SiLU) taking ``x`` and the time
    features ``[u, sin(pi f_k u), cos(pi f_k u)]_{k < time_embedding}`` of ``u = (log t - log t_min) / (log T -
    log t_min)`` (frequencies ``f_k`` geometric in [1/2, 32]), predicting the noise ``eps_theta(x, t)``; the
    score is ``s_theta = -eps_theta / sigma(t)``.

    Loss: for the forward process ``dX = -X dt + sqrt(2) dW``, ``x_t = rho x_0 + sigma z`` with ``rho = e^{-t}``,
    ``sigma^2 = 1 - rho^2``, ``z ~ N(0, I)``, and ``log t`` uniform on ``[log t_min, log T]``:

        L(theta) = E |eps_theta(x_t, t) - z|^2 / d
                 = E_t sigma(t)^2 E |s_theta(x_t, t) - grad log p_t(x_t)|^2 / d + C,

    i.e. score matching with weight ``lambda(t) = sigma(t)^2 / (t log(T / t_min))`` in ``dt`` (the density of
    ``t`` times ``sigma^2``), where ``p_t`` is the push of the law the ``x_0`` are drawn from and ``C`` does not
    depend on ``theta``. ``C`` is the loss of the exact score, so ``L - L(exact)`` is the excess loss.

    Training: ``steps`` AdamW steps (weight decay ``weight_decay``, gradient norm clipped at 1) with a linear
    warm-up over ``warmup`` steps to ``lr`` and a cosine decay to ``lr / 100``; minibatches of ``batch`` drawn
    with replacement from the generation's ``n`` training samples (``alpha n`` fresh, the rest the previous
    model's samples; see :class:`TrainingSet`), fresh ``t`` and ``z`` each step (drawn from ``fold_in(key, step)``).
    The whole run of one generation is one jitted program: a ``lax.scan`` over chunks of steps, each drawing its
    steps' minibatches at once and applying them in an inner ``lax.scan``, on one flat parameter vector. The
    exponential moving average of this run's iterates (decay ``ema``, bias-corrected: weights ``(1 - ema)
    ema^(steps - k) / (1 - ema^steps)`` on step ``k``'s weights, so the initial weights do not linger) is the network
    used for sampling and the state carried forward: with ``warm_start`` the next generation starts from it,
    otherwise from fresh random weights.

    Parameters
    ----------
    width, depth, steps, batch : int >= 1.
    lr : float > 0. warmup : int in [0, steps), default ``steps // 20``. ema : float in [0, 1).
    weight_decay : float >= 0. time_embedding : int >= 1, number of frequencies.
    warm_start : bool. dtype : {"float32", "float64"}, the network's (training and evaluation) precision.
    t_min, T : floats with ``0 < t_min < T``, the training range of ``t``; default the run's ``t0`` and ``T``
        (it must contain the sampler's ``[t0, T]``).

    Notes
    -----
    Same key, same weights and samples (bitwise on CPU). A non-finite loss stops the run with a
    ``RuntimeError`` naming the generation and the step.
    """

    width: int = 64
    depth: int = 3
    steps: int = 3000
    batch: int = 256
    lr: float = 2e-3
    warmup: int | None = None
    ema: float = 0.999
    weight_decay: float = 1e-4
    time_embedding: int = 16
    warm_start: bool = True
    dtype: str = "float32"
    t_min: float | None = None
    T: float | None = None
    name: str = dataclasses.field(default="neural", init=False)
    needs_samples: bool = dataclasses.field(default=True, init=False)

    def __post_init__(self):
        for name in ("width", "depth", "steps", "batch", "time_embedding"):
            _check_int(getattr(self, name), name, 1)
        _check_rate(self.lr, "lr")
        if self.warmup is not None:
            _check_int(self.warmup, "warmup", 0)
            if self.warmup >= self.steps:
                raise ValueError(f"warmup must be < steps={self.steps}; got warmup={self.warmup}")
        ema = _float(self.ema, "ema")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be in [0, 1); got ema={self.ema!r}")
        wd = _float(self.weight_decay, "weight_decay")
        if not wd >= 0.0:
            raise ValueError(f"weight_decay must be >= 0; got weight_decay={self.weight_decay!r}")
        if not isinstance(self.warm_start, bool):
            raise ValueError(f"warm_start must be a bool; got warm_start={self.warm_start!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got dtype={self.dtype!r}")
        if self.t_min is not None:
            _check_rate(self.t_min, "t_min")
        if self.T is not None:
            _check_rate(self.T, "T")
        if self.t_min is not None and self.T is not None and not self.T > self.t_min:
            raise ValueError(f"the training range needs 0 < t_min < T; got t_min={self.t_min!r}, T={self.T!r}")

    @property
    def warmup_steps(self) -> int:
        return self.steps // 20 if self.warmup is None else int(self.warmup)

    def network(self, key, dim: int) -> eqx.nn.MLP:
        """A freshly initialised network (equinox's default initialisation) for data of dimension ``dim``."""
        with jax.enable_x64(True):
            return _new_mlp(key, dim + 2 * self.time_embedding + 1, dim, self.width, self.depth, self.dtype)

    def init(self, key, data):
        return self.network(key, data.dim)

    def t_range(self, t0: float, T: float) -> tuple[float, float]:
        lo = t0 if self.t_min is None else float(self.t_min)
        hi = T if self.T is None else float(self.T)
        if lo > t0 * (1 + 1e-12):
            raise ValueError(f"t_min={lo!r} must be <= the run's t0={t0!r} (the sampler evaluates the score down to t0)")
        if hi < T * (1 - 1e-12):
            raise ValueError(f"T={hi!r} (training range) must be >= the sampler's T={T!r}")
        if not hi > lo:
            raise ValueError(f"the training range needs 0 < t_min < T; got t_min={lo!r}, T={hi!r}")
        return lo, hi

    def score_function(self, net, t0: float, T: float) -> NeuralScoreFunction:
        lo, hi = self.t_range(t0, T)
        return NeuralScoreFunction(net, math.log(lo), math.log(hi), int(self.time_embedding))

    def fit(self, key, training, state):
        lo, hi = self.t_range(training.t0, training.T)
        k_init, k_train = jax.random.split(key)
        net0 = state if (self.warm_start and state is not None) else self.network(k_init, training.data.dim)
        x = jnp.asarray(training.samples)
        with jax.enable_x64(True):
            net, losses = _train(net0, x.astype(net0.layers[0].weight.dtype), k_train, jnp.float64(math.log(lo)),
                                 jnp.float64(math.log(hi)), self)
        losses = np.asarray(losses, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            raise RuntimeError(f"NeuralScore: non-finite DSM loss in generation {training.generation} at step "
                               f"{int(bad[0])} (of {self.steps}); lower lr or check the training samples")
        if not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))):
            raise RuntimeError(f"NeuralScore: non-finite weights after generation {training.generation} "
                               f"(step {self.steps - 1})")
        blocks = min(100, self.steps)
        size = self.steps // blocks
        curve = losses[: blocks * size].reshape(blocks, size).mean(axis=1)
        info = {"loss_curve": curve, "loss_steps": np.arange(1, blocks + 1) * size - 1}
        return LearnedScore(self.score_function(net, training.t0, training.T), net, info)

    def model(self, particles, training, state):
        return empirical(particles), state


@eqx.filter_jit
def _new_mlp(key, in_size: int, out_size: int, width: int, depth: int, dtype: str) -> eqx.nn.MLP:
    """``eqx.nn.MLP`` (SiLU) with equinox's default initialisation, built in one compiled program: the same draws as
    building it eagerly, where each layer's weight and bias draw compiled on its own (eight small compilations
    per network shape, about 1 s)."""
    return eqx.nn.MLP(in_size, out_size, width, depth, activation=jax.nn.silu, key=key,
                      dtype=jnp.float32 if dtype == "float32" else jnp.float64)


# per-chunk bound on the pre-drawn inputs (features and noise), in numbers (1 MiB in float32): larger chunks cost
# slightly less CPU per step, but XLA splits their bulk draws over its threads, and on a loaded machine a split
# waits for a descheduled thread (500 steps at batch 256, load 12: chunks of 125 steps 1.4 ms/step wall, 10 steps
# 0.55 ms, for 0.40 and 0.46 ms of CPU time)
_CHUNK_FLOATS = 1 << 18


def _dsm_inputs(key, step, x, batch: int, log_lo, log_hi, n_freq: int):
    """The network inputs and targets of DSM step ``step``: ``(features (batch, d + 2 n_freq + 1), z (batch, d))``.

    From ``fold_in(key, step)`` split in three: ``batch`` rows ``x_0`` of ``x`` drawn with replacement, ``log t``
    uniform on ``[log_lo, log_hi]``, ``z ~ N(0, I)``; the features are ``[x_t, time features of t]`` with ``x_t =
    rho x_0 + sigma z``. Depends on ``step`` only through the key, so ``vmap`` over steps draws the same numbers as
    one call per step. In float32, ``z`` is :func:`_normal32` (the draws of ``jax.random.normal``, to 6e-6).
    """
    dtype = x.dtype
    n, d = x.shape
    k1, k2, k3 = jax.random.split(jax.random.fold_in(key, step), 3)
    x0 = x[jax.random.randint(k1, (batch,), 0, n)]
    t = jnp.exp(log_lo + (log_hi - log_lo) * jax.random.uniform(k2, (batch,), dtype))
    z = _normal32(k3, (batch, d)) if dtype == jnp.float32 else jax.random.normal(k3, (batch, d), dtype)
    rho = jnp.exp(-t)
    sigma = jnp.sqrt(-jnp.expm1(-2.0 * t))
    feats = jnp.concatenate([rho[:, None] * x0 + sigma[:, None] * z, _time_features(t, log_lo, log_hi, n_freq, dtype)],
                            axis=-1)
    return feats, z


class _DSMStep(NamedTuple):
    """One DSM training step on a flat parameter vector: ``init`` the state ``(params, ema, opt_state)`` of a
    network, ``update(state, features, z) -> (state, loss)``, ``network(ema, steps)`` the bias-corrected EMA
    network after ``steps`` updates."""

    init: Callable
    update: Callable
    network: Callable


def _dsm_step(net, cfg: NeuralScore) -> _DSMStep:
    """The step :class:`NeuralScore` trains with (its fused scan and any per-step loop call the same ``update``).

    The weights are one flat vector (``ravel_pytree``; the network is rebuilt from it inside the loss, which XLA
    reduces to slices), so the clipping, AdamW, and the EMA are a few fused elementwise passes over one array
    instead of one per leaf.
    """
    probe = np.linspace(-2.0, 2.0, 5)
    if net.activation is not jax.nn.silu or not np.array_equal(np.asarray(net.final_activation(probe)), probe) \
            or not all(lin.use_bias for lin in net.layers):
        raise ValueError("the DSM step trains the MLP of NeuralScore.network (SiLU hidden layers, linear output)")
    params, static = eqx.partition(net, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    dtype = flat.dtype
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.lr / 100.0)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=cfg.weight_decay))
    decay = jnp.asarray(cfg.ema, dtype)

    def loss_fn(p, feats, z):
        # the MLP of NeuralScore.network (SiLU between layers, none after the last) on the batch as columns:
        # eps^T = W_L silu(... silu(W_1 [x_t, features]^T + b_1) ...) + b_L, the same function as vmap(model)
        h = feats.T
        layers = unravel(p).layers
        for i, lin in enumerate(layers):
            h = lin.weight @ h + lin.bias[:, None]
            if i < len(layers) - 1:
                h = jax.nn.silu(h)
        return jnp.mean((h - z.T) ** 2)

    def init(p=flat):
        return p, jnp.zeros_like(p), opt.init(p)

    def update(state, feats, z):
        p, ema, s = state
        loss, g = jax.value_and_grad(loss_fn)(p, feats, z)
        upd, s = opt.update(g, s, p)
        p = p + upd
        return (p, decay * ema + (1 - decay) * p, s), loss

    def network(ema, steps: int):
        # bias correction: the average of this run's iterates, weights (1 - decay) decay^(steps - k) / (1 - decay^steps)
        return eqx.combine(unravel(ema / (1 - decay**steps)), static)

    return _DSMStep(init, update, network)


def _chunk(steps: int, row_floats: int) -> tuple[int, int]:
    """(steps per chunk, chunks) for the pre-drawn inputs: the largest divisor of ``steps`` within the memory bound
    when it is at least a quarter of the bound (no remainder), else the bound with a remainder run after."""
    cap = max(1, min(steps, 128, _CHUNK_FLOATS // max(1, row_floats)))
    div = max(c for c in range(1, cap + 1) if steps % c == 0)
    size = div if 4 * div >= cap else cap
    return size, steps // size


@eqx.filter_jit
def _train(net, x, key, log_lo, log_hi, cfg: NeuralScore):
    """``cfg.steps`` DSM steps on the rows of ``x`` in one jitted program: returns (EMA network, losses (steps,)).

    An outer ``lax.scan`` over chunks of steps draws each chunk's inputs at once (``vmap`` of :func:`_dsm_inputs`
    over the chunk's steps: the same numbers as drawing per step), and an inner ``lax.scan`` applies the steps.
    """
    dtype = x.dtype
    log_lo = log_lo.astype(dtype)
    log_hi = log_hi.astype(dtype)
    step = _dsm_step(net, cfg)
    n_in = net.layers[0].in_features
    size, n_chunks = _chunk(cfg.steps, cfg.batch * (n_in + x.shape[1]))

    def inputs(first, count):
        return jax.vmap(lambda i: _dsm_inputs(key, i, x, cfg.batch, log_lo, log_hi, cfg.time_embedding))(
            first + jnp.arange(count))

    def inner(state, batch):
        return step.update(state, *batch)

    def chunk(state, c):
        return jax.lax.scan(inner, state, inputs(c * size, size))

    state, losses = jax.lax.scan(chunk, step.init(), jnp.arange(n_chunks))
    losses = losses.reshape(-1)
    rest = cfg.steps - size * n_chunks
    if rest:
        state, tail = jax.lax.scan(inner, state, inputs(size * n_chunks, rest))
        losses = jnp.concatenate([losses, tail])
    return step.network(state[1], cfg.steps), losses


# -- the DSM loss of any score, for the records ------------------------------------------------------


def dsm_batch(key, law: GaussianMixture, n_eval: int, t0: float, T: float, n_levels: int = 32):
    """An evaluation batch for :func:`dsm_loss`: ``x_0 ~ law``, ``n_levels`` levels of ``t`` at the midpoints of a
    uniform grid in ``log t`` on ``[t0, T]`` (``n_eval // n_levels`` rows each), ``z ~ N(0, I)``."""
    per = max(1, n_eval // n_levels)
    with jax.enable_x64(True):
        if isinstance(law, GaussianMixture):
            # the random numbers compile once per batch shape, apart from the law's small program (see _sample)
            draws, z = _dsm_draws(key, n_levels, per, law.dim)
            x0 = _assemble(law, *draws).reshape(n_levels, per, law.dim)
        else:
            k1, k2 = jax.random.split(key)
            x0 = law.sample(k1, n_levels * per).reshape(n_levels, per, law.dim)
            z = jax.random.normal(k2, x0.shape, jnp.float64)
        u = (np.arange(n_levels) + 0.5) / n_levels
        return x0, jax.device_put(np.exp(math.log(t0) + u * (math.log(T) - math.log(t0)))), z


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _dsm_draws(key, n_levels: int, per: int, d: int):
    """The random numbers of :func:`dsm_batch`: the law's draws (as ``law.sample(k1, n_levels per)``) and ``z``."""
    k1, k2 = jax.random.split(key)
    return _draws(k1, n_levels * per, d), jax.random.normal(k2, (n_levels, per, d), jnp.float64)


@x64
def dsm_loss(score, x0, t, z):
    """Per-row DSM losses ``|sigma(t) s(x_t, t) + z|^2 / d`` of a score ``s`` on a batch from :func:`dsm_batch`
    (the loss :class:`NeuralScore` trains on, with ``t`` stratified): a flat array, whose mean is the loss."""
    return _dsm_loss(score, jnp.asarray(x0, jnp.float64), jnp.asarray(t, jnp.float64), jnp.asarray(z, jnp.float64))


@eqx.filter_jit
def _dsm_loss(score, x0, t, z):

    def level(args):
        x, tt, zz = args
        rho, sigma = jnp.exp(-tt), jnp.sqrt(-jnp.expm1(-2.0 * tt))
        s = score(rho * x + sigma * zz, tt)
        return jnp.mean((sigma * s + zz) ** 2, axis=-1)

    return jax.lax.map(level, (x0, t, z)).reshape(-1)


# -- validation ------------------------------------------------------------------------------------


def _float(x, name):
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number; got {name}={x!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {name}={x!r}")
    return v


def _check_rate(x, name):
    v = _float(x, name)
    if not v > 0:
        raise ValueError(f"{name} must be > 0; got {name}={x!r}")
    return v


def _check_int(x, name, lo):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {lo}; got {name}={x!r}")
    if x < lo:
        raise ValueError(f"{name} must be >= {lo}; got {name}={x!r}")
    return int(x)


LEARNERS = {"analytic": ExactScore, "particles": ParticleScore, "refit": RefitScore}


def as_learner(learner, carry: str | None, refit_iters: int) -> Any:
    """The learner of a :func:`retrain` call: ``learner`` if given, else the one ``carry`` names."""
    if learner is not None:
        if carry is not None:
            raise ValueError("give either learner= or carry=, not both")
        missing = [m for m in ("init", "fit", "model") if not callable(getattr(learner, m, None))]
        if missing or not isinstance(getattr(learner, "name", None), str):
            raise ValueError(f"learner must implement the Learner protocol (name, needs_samples, init, fit, model); "
                             f"got {type(learner).__name__}")
        return learner
    carry = "analytic" if carry is None else carry
    if carry not in LEARNERS:
        raise ValueError(f"carry must be one of {tuple(LEARNERS)}; got carry={carry!r}")
    return RefitScore(refit_iters) if carry == "refit" else LEARNERS[carry]()
