"""The main demo: an einsum, its printed plan, and a timing line against jnp.einsum.

Run: ``python examples/demo.py`` (JAX on CPU is the default).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import contract


def best_of(fn, n: int = 20) -> float:
    """Best wall time of ``fn()`` in seconds (after one warm-up call)."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    spec = "ab,bc,cd,de->ae"  # a skewed chain: the order of the products matters
    shapes = [(512, 8), (8, 512), (512, 4), (4, 512)]
    ops = [jnp.asarray(rng.standard_normal(s), dtype=jnp.float32) for s in shapes]

    result = contract.einsum(spec, *ops)
    reference = np.einsum(spec, *[np.asarray(x, np.float64) for x in ops], optimize=True)
    print(f"contract.einsum({spec!r}) -> shape {result.shape}, "
          f"max |error| vs numpy float64 {float(np.abs(result - reference).max()):.2e}\n")
    np.testing.assert_allclose(result, reference, rtol=1e-4, atol=1e-3)
    print(contract.plan(spec, *ops))

    naive = jax.jit(lambda *xs: jnp.einsum(spec, *xs, optimize=False))
    planned_jnp = jax.jit(lambda *xs: jnp.einsum(spec, *xs))
    t_contract = best_of(lambda: contract.einsum(spec, *ops))
    t_jnp = best_of(lambda: planned_jnp(*ops))
    t_naive = best_of(lambda: naive(*ops))
    print(f"\ntiming (best of 20, {jax.default_backend()}): contract.einsum (eager) "
          f"{t_contract * 1e6:.0f} µs | jax.jit(jnp.einsum) {t_jnp * 1e6:.0f} µs "
          f"| jax.jit(jnp.einsum, optimize=False) {t_naive * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
