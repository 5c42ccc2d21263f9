"""A result narrower than its float operands on several devices: partial sums
(per device, then ``psum``) are added in the operands' type and converted
once (docs/coming_from.md#preferred-narrow), never converted per device.

The calls need several devices, so they run in a subprocess started with 4
forced host devices (XLA reads the flag when JAX starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _device_checks() -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import contract

    rng = np.random.default_rng(1)
    a, b, c = (rng.uniform(0, 1, s).astype(np.float32) for s in ((8, 64), (64, 64), (64, 8)))
    dims = (((1,), (0,)), ((), ()))
    one = np.asarray(jax.lax.dot_general(a, b, dims, preferred_element_type=jnp.int32))
    chain = np.trunc(np.einsum("ij,jk,kl->il", a.astype(np.float64), b, c)).astype(np.int32)
    mesh = jax.make_mesh((4,), ("x",), axis_types=(AxisType.Explicit,))
    # The contracted label j is split over the devices: each holds a partial sum.
    A = jax.device_put(a, NamedSharding(mesh, P(None, "x")))
    B = jax.device_put(b, NamedSharding(mesh, P("x", None)))
    results = {}
    plan = contract.plan("ij,jk->ik", A, B, preferred_element_type=jnp.int32)
    results["split contracted label"] = plan.shards == (("j", ("x",)),)
    def psum(x: jax.Array, y: jax.Array) -> jax.Array:
        return contract.einsum("ij,jk->ik", x, y, preferred_element_type=jnp.int32)

    for how, run in (("eager", psum), ("jit", jax.jit(psum))):
        got = run(A, B)
        results[f"psum {how}"] = got.dtype == jnp.int32 and np.array_equal(np.asarray(got), one)
    # Sliced over the mesh: blocks of i, and j sliced for the budget.
    got = contract.einsum("ij,jk,kl->il", a, b, c, preferred_element_type=jnp.int32, mesh=mesh,
                          memory_limit=300)
    results["mesh= and memory_limit= chain"] = np.abs(np.asarray(got) - chain).max() <= 1
    print(json.dumps({k: bool(v) for k, v in results.items()}))


def test_partial_sums_on_devices_are_converted_once() -> None:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    code = "from tests.test_preferred_sharded import _device_checks; _device_checks()"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results == dict.fromkeys(results, True) and len(results) == 4, results
