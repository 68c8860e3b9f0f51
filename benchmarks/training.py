"""Denoising-score-matching training steps per second: our fused loop against the loops a user would write.

Ours: ``NeuralScore``'s training run (``hermite_limit.sampling._learners._train``), every step of one generation
in one jitted program: an outer ``lax.scan`` over chunks of steps draws each chunk's minibatches at once (``vmap`` of
``_dsm_inputs`` over the chunk's step indices), an inner ``lax.scan`` applies the chunk's steps (``_dsm_step``: one
flat float32 parameter vector for the network, AdamW and the EMA). The network is the issue's contract learner
``NeuralScore(width=64, depth=3)``: an MLP on ``x`` (d = 10) and 33 time features of ``log t`` (the normalised ``u``
and sin / cos of 16 frequencies), 3 hidden SiLU layers of 64 units, noise prediction; AdamW (weight decay 1e-4)
after global-norm clipping at 1, linear warm-up then cosine decay, EMA of the weights; minibatches of 256 rows
drawn with replacement from a training set of n = 20000 samples of the seed law, ``log t`` uniform on
[log t0, log T], fresh Gaussian noise each step; float32. In float32 the noise is ``_normal32`` (threefry unrolled,
``jax.random.normal``'s polynomial with ``log`` for its scalar ``log1p``: the same draws to 6e-6 relative, 6x faster) and
the time features' sines and cosines ``_sincos32`` (7x faster than XLA's CPU ``sin`` / ``cos``).

Peers, with the same network (the same initial weights), optimiser, schedule, EMA, batch and dtype:

(a) the obvious equinox + optax loop, written from those libraries' tutorials (``tutorial_fn``): the network is the
    ``eqx.nn.MLP`` pytree (applied batch-major, ``jax.vmap(model)``); one ``@eqx.filter_jit def make_step(model,
    opt_state, ema, x, key, step)`` per Python iteration draws its minibatch from ``fold_in(key, step)``
    (``randint`` / ``uniform`` / ``normal``, ``sin`` / ``cos`` time features), takes ``eqx.filter_value_and_grad`` of
    the DSM loss, ``optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))`` with ``optax.chain(
    clip_by_global_norm(1), adamw(warmup_cosine_decay_schedule, weight_decay=1e-4))``, ``eqx.apply_updates``, and
    the EMA by ``jax.tree_util.tree_map``. Target 3x. Its random numbers are ours (the same key and stream; our
    float32 normals equal ``jax.random.normal``'s to 6e-6 relative), so its weights after the run are compared with
    ours (``ours_error``: max |difference| over the weights relative to their largest entry): rounding only.
(a') informational, no target ("fusion alone", ``dispatch_fn``): the learner's own step (``_dsm_inputs`` then
    ``_dsm_step(...).update``) under one ``eqx.filter_jit`` call per Python iteration: the same arithmetic and
    draws as ours, so the ratio is what the fusion alone buys (one program instead of a dispatch per step, the
    draws made per chunk instead of per step), without the flat-vector optimiser and the faster float32 draws
    that separate ours from (a).
(b) PyTorch on the CPU, eager mode: ``nn.Linear`` / ``nn.SiLU`` with our initial weights copied in,
    ``torch.optim.AdamW`` + ``LambdaLR`` with the same warm-up + cosine factor, ``clip_grad_norm_``,
    an EMA by ``torch._foreach_lerp_``. Timed at PyTorch's default thread count and with one thread; the
    faster is the peer. PyTorch is only in the ``bench`` extra: without it the row says "peer not installed".

Throughput rows report seconds per step (``peer_seconds``, ``ours_seconds``); the ratio is steps per second of
ours over the peer's. Each side's time is the fastest of several runs of the whole training (compile excluded,
GC off), the sides alternating so that load from other processes hits both alike. The fraction of the float32
matmul peak row counts the matrix-product flops of a step (forward ``2 B sum_l in_l out_l``, the weight
gradients the same again, the input gradients of every layer but the first) against the faster of numpy's
BLAS and XLA's dot on a square float32 product, measured in the run.

The group ends with the wall time of one learned generation, training and sampling apart
(``benchmarks/learned_generation.py``).
"""

from __future__ import annotations

import gc
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import hermite_limit as hl
from hermite_limit.sampling._learners import _dsm_inputs, _dsm_step, _train

from . import learned_generation
from ._harness import TaskResult, time_fn

SIZES = {"tiny": (50, 2), "quick": (500, 2), "full": (3000, 5)}  # steps per run, timed runs per side
DIM, N_TRAIN, T0, T = 10, 20_000, 0.02, 5.0
NOT_INSTALLED = "peer not installed"


def _learner(steps: int) -> hl.NeuralScore:
    return hl.NeuralScore(width=64, depth=3, steps=steps, batch=256)


def _problem(steps: int):
    cfg = _learner(steps)
    key = jax.random.key(0)
    with jax.enable_x64(True):
        x = np.asarray(hl.datasets.seed_gmm10().sample(jax.random.fold_in(key, 1), N_TRAIN), dtype=np.float32)
    net = cfg.network(jax.random.fold_in(key, 2), DIM)
    return cfg, jnp.asarray(x), net


def ours_fn(cfg, x, net):
    """The fused training run exactly as ``NeuralScore.fit`` calls it."""
    key = jax.random.key(3)

    def run():
        with jax.enable_x64(True):
            return _train(net, x, key, jnp.float64(math.log(T0)), jnp.float64(math.log(T)), cfg)

    return run


def tutorial_fn(cfg, x, net):
    """Peer (a): the equinox + optax tutorial loop, written as a user would write it from those tutorials.

    The network is the ``eqx.nn.MLP`` pytree itself (batch-major, ``jax.vmap(model)``); one ``@eqx.filter_jit``
    ``make_step(model, opt_state, ema, x, key, step)`` per Python iteration draws its minibatch from ``fold_in(key,
    step)`` (``jax.random.randint`` / ``uniform`` / ``normal``, ``sin`` / ``cos`` time features), takes
    ``eqx.filter_value_and_grad`` of the DSM loss, ``optim.update(grads, opt_state, eqx.filter(model,
    eqx.is_array))`` with ``optax.chain(clip_by_global_norm(1), adamw(warmup_cosine_decay_schedule, weight_decay))``,
    ``eqx.apply_updates``, and the EMA by ``jax.tree_util.tree_map``. Run under ``jax.enable_x64`` as
    ``NeuralScore.fit`` runs ``_train`` (so ``randint`` draws the same int64 indices): its random numbers are ours
    (our float32 normals equal ``jax.random.normal``'s to 6e-6 relative), so the weights compare to rounding.
    """
    lo, hi = np.float32(math.log(T0)), np.float32(math.log(T))
    n, d = x.shape
    freqs = jnp.asarray(np.pi * np.geomspace(0.5, 32.0, cfg.time_embedding), jnp.float32)
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.lr / 100.0)
    optim = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=cfg.weight_decay))
    key = jax.random.key(3)  # the key _train gets (NeuralScore.fit splits its own key before calling _train)
    decay = cfg.ema

    def loss_fn(model, x_t, time_feats, z):
        return jnp.mean((jax.vmap(model)(jnp.concatenate([x_t, time_feats], axis=-1)) - z) ** 2)

    @eqx.filter_jit
    def make_step(model, opt_state, ema, x, key, step):
        k1, k2, k3 = jax.random.split(jax.random.fold_in(key, step), 3)
        x0 = x[jax.random.randint(k1, (cfg.batch,), 0, n)]
        t = jnp.exp(lo + (hi - lo) * jax.random.uniform(k2, (cfg.batch,), jnp.float32))
        z = jax.random.normal(k3, (cfg.batch, d), jnp.float32)
        x_t = jnp.exp(-t)[:, None] * x0 + jnp.sqrt(-jnp.expm1(-2.0 * t))[:, None] * z
        u = (jnp.log(t) - lo) / (hi - lo)
        ang = u[:, None] * freqs
        time_feats = jnp.concatenate([u[:, None], jnp.sin(ang), jnp.cos(ang)], axis=-1)
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x_t, time_feats, z)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        model = eqx.apply_updates(model, updates)
        ema = jax.tree_util.tree_map(lambda e, p: decay * e + (1 - decay) * p, ema, eqx.filter(model, eqx.is_array))
        return model, opt_state, ema, loss

    def run():
        with jax.enable_x64(True):
            model = net
            opt_state = optim.init(eqx.filter(model, eqx.is_array))
            ema = jax.tree_util.tree_map(jnp.zeros_like, eqx.filter(model, eqx.is_array))
            losses = []
            for step in range(cfg.steps):
                model, opt_state, ema, loss = make_step(model, opt_state, ema, x, key, jnp.asarray(step))
                losses.append(loss)
            ema = jax.tree_util.tree_map(lambda e: e / (1 - decay**cfg.steps), ema)  # bias correction, as ours
            return eqx.combine(ema, model), jnp.stack(losses)

    return run


def dispatch_fn(cfg, x, net):
    """Informational: our own step (``_dsm_inputs`` then ``_dsm_step(...).update``), one ``eqx.filter_jit`` call per
    Python iteration: the same arithmetic and random draws as the fused run, so the ratio measures the fusion alone
    (one program instead of a dispatch per step, the draws made per chunk instead of per step)."""
    lo, hi = np.float32(math.log(T0)), np.float32(math.log(T))
    key = jax.random.key(3)
    step = _dsm_step(net, cfg)

    @eqx.filter_jit
    def make_step(state, i):
        feats, z = _dsm_inputs(key, i, x, cfg.batch, lo, hi, cfg.time_embedding)
        return step.update(state, feats, z)

    def run():
        with jax.enable_x64(True):  # as NeuralScore.fit calls _train
            state, losses = step.init(), []
            for i in jnp.arange(cfg.steps):
                state, loss = make_step(state, i)
                losses.append(loss)
            return step.network(state[1], cfg.steps), jnp.stack(losses)

    return run


def torch_fn(cfg, x, net, threads: int | None):
    """Peer (b): PyTorch eager on the CPU, the same network, initial weights, optimiser and schedule."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = []
    for i, lin in enumerate(net.layers):
        tl = torch.nn.Linear(lin.in_features, lin.out_features)
        with torch.no_grad():
            tl.weight.copy_(torch.from_numpy(np.array(lin.weight)))
            tl.bias.copy_(torch.from_numpy(np.array(lin.bias)))
        layers += [tl] + ([torch.nn.SiLU()] if i < len(net.layers) - 1 else [])
    model = torch.nn.Sequential(*layers)
    params = list(model.parameters())
    xt = torch.from_numpy(np.array(x))
    n, d = xt.shape
    lo, hi = math.log(T0), math.log(T)
    freqs = torch.tensor(np.pi * np.geomspace(0.5, 32.0, cfg.time_embedding), dtype=torch.float32)
    warm, steps = cfg.warmup_steps, cfg.steps

    def factor(i):  # optax.warmup_cosine_decay_schedule(0, lr, warm, steps, lr / 100) / lr
        if i < warm:
            return i / warm
        frac = min(1.0, (i - warm) / max(1, steps - warm))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac))

    def run():
        with torch.no_grad():
            for tp, lin in zip([m for m in model if isinstance(m, torch.nn.Linear)], net.layers):
                tp.weight.copy_(torch.from_numpy(np.array(lin.weight)))
                tp.bias.copy_(torch.from_numpy(np.array(lin.bias)))
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=1e-8)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        ema = [torch.zeros_like(p) for p in params]
        gen = torch.Generator().manual_seed(3)
        losses = torch.empty(steps)
        for i in range(steps):
            x0 = xt[torch.randint(0, n, (cfg.batch,), generator=gen)]
            t = torch.exp(lo + (hi - lo) * torch.rand(cfg.batch, generator=gen))
            z = torch.randn(cfg.batch, d, generator=gen)
            rho, sigma = torch.exp(-t), torch.sqrt(-torch.expm1(-2.0 * t))
            u = (torch.log(t) - lo) / (hi - lo)
            ang = u[:, None] * freqs
            feats = torch.cat([rho[:, None] * x0 + sigma[:, None] * z, u[:, None], torch.sin(ang), torch.cos(ang)], dim=1)
            loss = torch.mean((model(feats) - z) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            with torch.no_grad():
                torch._foreach_lerp_(ema, params, 1.0 - cfg.ema)
                losses[i] = loss.detach()
        return [e / (1 - cfg.ema**steps) for e in ema], losses

    return run


def matmul_peak_gflops32(n: int = 2000, repeats: int = 5) -> tuple[float, str]:
    """Measured float32 matmul rate (the faster of numpy's BLAS and XLA's dot) in GFLOP/s, and its source."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    _, t_blas, _ = time_fn(lambda: a @ a, repeats)
    aj = jnp.asarray(a)
    square = jax.jit(lambda m: m @ m)
    _, t_xla, _ = time_fn(lambda: square(aj), repeats)
    rates = {"numpy BLAS": 2.0 * n**3 / t_blas / 1e9, "XLA dot": 2.0 * n**3 / t_xla / 1e9}
    best = max(rates, key=rates.get)
    return rates[best], f"{best}; " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())


def step_flops(net, batch: int) -> float:
    """Matrix-product flops of one training step: forward, weight gradients, input gradients (not layer 0's)."""
    sizes = [lin.in_features * lin.out_features for lin in net.layers]
    return 2.0 * batch * (2 * sum(sizes) + sum(sizes[1:]))


def _best_interleaved(fns: dict, repeats: int) -> dict:
    """Fastest of ``repeats`` runs of each function, the functions alternating, GC off."""
    best = {k: float("inf") for k in fns}
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for k, fn in fns.items():
                t = time.perf_counter()
                jax.block_until_ready(fn())
                best[k] = min(best[k], time.perf_counter() - t)
    finally:
        if enabled:
            gc.enable()
    return best


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run(size: str = "full") -> list[TaskResult]:
    steps, repeats = SIZES[size]
    cfg, x, net = _problem(steps)
    fns = {"ours": ours_fn(cfg, x, net), "tutorial": tutorial_fn(cfg, x, net), "dispatch": dispatch_fn(cfg, x, net)}
    first = {}
    outs = {}
    for k, fn in fns.items():  # first calls: tracing and compilation
        t = time.perf_counter()
        outs[k] = jax.block_until_ready(fn())
        first[k] = time.perf_counter() - t
    torch_ok = _torch_available()
    torch_note = ""
    if torch_ok:
        import torch

        default_threads = torch.get_num_threads()
        fns["torch"] = torch_fn(cfg, x, net, None)
        outs["torch"] = fns["torch"]()
        fns["torch 1 thread"] = torch_fn(cfg, x, net, 1)
        fns["torch 1 thread"]()
        torch.set_num_threads(default_threads)
        # set_num_threads is process-wide: each torch run sets its own count on entry
        fns["torch"] = _with_threads(fns["torch"], default_threads)
        fns["torch 1 thread"] = _with_threads(fns["torch 1 thread"], 1)
    best = _best_interleaved(fns, repeats)
    if torch_ok:
        torch.set_num_threads(default_threads)
    per = {k: v / steps for k, v in best.items()}
    compile_s = first["ours"] - best["ours"]

    def flat(model):
        return np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))])

    w_ours = flat(outs["ours"][0])
    dev = {k: float(np.max(np.abs(w_ours - flat(outs[k][0]))) / np.max(np.abs(flat(outs[k][0]))))
           for k in ("tutorial", "dispatch")}
    label = f"DSM training step (d={DIM}, MLP 3x64 SiLU, batch {cfg.batch}, float32, {steps} steps)"
    rows = [TaskResult(label, "equinox + optax tutorial loop: filter_jit make_step per Python iteration", per["tutorial"],
                       per["ours"], 3.0, None, dev["tutorial"], compile_s,
                       f"ours {1 / per['ours']:.0f} steps/s, peer {1 / per['tutorial']:.0f} steps/s; ours_error: max |EMA "
                       f"weights of ours - of the tutorial loop| / max |weight| (the same random numbers to 6e-6: "
                       f"rounding only); peer compile {first['tutorial'] - best['tutorial']:.2f} s"),
            TaskResult(label.replace("DSM training step", "DSM training step, fusion alone"),
                       "our own step, filter_jit per Python iteration (informational)", per["dispatch"], per["ours"], None,
                       None, dev["dispatch"], compile_s,
                       f"the learner's _dsm_inputs + _dsm_step dispatched once per step: the same arithmetic and draws, "
                       f"so the ratio is the fusion alone; {1 / per['dispatch']:.0f} steps/s; no target")]
    if torch_ok:
        which = "torch" if per["torch"] <= per["torch 1 thread"] else "torch 1 thread"
        l_ours = float(np.mean(np.asarray(outs["ours"][1])[-max(1, steps // 10):]))
        l_torch = float(outs["torch"][1][-max(1, steps // 10):].mean())
        torch_note = (f"ours {1 / per['ours']:.0f} steps/s; PyTorch {torch.__version__} eager {1 / per['torch']:.0f} steps/s at "
                      f"{default_threads} threads (its default), {1 / per['torch 1 thread']:.0f} at 1 thread; the peer is the "
                      f"faster ({which}). Mean DSM loss over the last tenth of the run: ours {l_ours:.4f}, PyTorch {l_torch:.4f} "
                      f"(same start, different random draws)")
        rows.append(TaskResult(label, f"PyTorch {torch.__version__} CPU eager ({'default threads' if which == 'torch' else '1 thread'})",
                               per[which], per["ours"], 1.5, None, None, compile_s, torch_note))
    else:
        rows.append(TaskResult(label, f"PyTorch CPU eager: {NOT_INSTALLED} (pip install '.[bench]')", float("nan"),
                               per["ours"], None, None, None, compile_s,
                               f"{NOT_INSTALLED}: no measurement, so the 1.5x target is neither met nor missed"))
    peak, source = matmul_peak_gflops32(500 if size == "tiny" else 2000)
    flops = step_flops(net, cfg.batch)
    gflops = flops / per["ours"] / 1e9
    rows.append(TaskResult(label.replace("DSM training step", "DSM training step, fraction of float32 matmul peak"),
                           f"time at the measured float32 matmul peak ({peak:.0f} GFLOP/s)", flops / (peak * 1e9), per["ours"],
                           None, None, None, compile_s,
                           f"{flops / 1e6:.1f} MFLOP of matrix products per step; ours {gflops:.1f} GFLOP/s = "
                           f"{100 * gflops / peak:.1f}% of the peak ({source})"))
    return rows + learned_generation.run(size)


def _with_threads(fn, threads: int):
    import torch

    def run():
        torch.set_num_threads(threads)
        return fn()

    return run
