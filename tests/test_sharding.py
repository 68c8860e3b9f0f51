"""Multi-device runs (4 forced host CPU devices, in a subprocess) give the single-device results.

The sampler's particle sharding is tested in ``tests/test_sampling_samplers.py``
(``test_sharded_over_four_devices_equals_single_device``); here: the quadrature's node-axis
sharding for ``hermite_coefficients(..., method="quadrature")``, tensor Gauss-Hermite (d = 2) and RQMC (d = 4),
and the sampler once more at a particle count that divides the device count, end to end.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, jax, numpy as np
import hermite_limit as hl
out = {"devices": len(jax.devices())}
g2 = hl.GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.0, 0.0]], [0.5, 0.8])
c2 = hl.hermite_coefficients(g2, 6, method="quadrature")
out["q2"] = np.asarray(c2.values).tolist()
g4 = hl.GaussianMixture([0.5, 0.5], [[1.0, 0, 0, 0], [-1.0, 0.5, 0, 0]], [0.6, 0.9])
c4 = hl.hermite_coefficients(g4, 3, method="quadrature", log2_points=10, n_random=4)
out["q4"] = np.asarray(c4.values).tolist()
s = hl.reverse_sample(jax.random.key(0), hl.datasets.seed_gmm10(), 64, t0=0.05, n_steps=20)
out["sample"] = np.asarray(s.particles).tolist()
out["sample_devices"] = len(s.particles.sharding.device_set)
print(json.dumps(out))
"""


def _run(n_devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_four_devices_match_one():
    one, four = _run(1), _run(4)
    assert one["devices"] == 1 and four["devices"] == 4
    assert four["sample_devices"] == 4
    for k in ("q2", "q4"):
        np.testing.assert_allclose(four[k], one[k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(four["sample"], one["sample"], rtol=1e-12, atol=1e-12)


def test_quadrature_nodes_are_sharded():
    script = r"""
import jax, jax.numpy as jnp
from hermite_limit.hermite._quadrature import _shard_nodes, tensor_rule
with jax.enable_x64(True):
    z, w = tensor_rule(7, 2)   # 49 nodes: padded to 52
    zs, ws = _shard_nodes(z, w)
    assert zs.shape == (52, 2) and len(zs.sharding.device_set) == 4, zs.sharding
    assert float(ws[49:].sum()) == 0.0 and abs(float(ws.sum()) - float(w.sum())) < 1e-15
print("ok")
"""
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
