"""contract.jit on ordinary model code: attention with a low-rank projection.

Run: ``python examples/attention_jit.py``. The function below is written the
way it usually is: the query and key projections are applied as low-rank
factors left to right, and the output projection follows the attention. It
prints what contract.jit found (the softmax stays as written; each chain of
matrix products is planned as one network), checks the result against
jax.jit, and times both.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import contract


def attention(x, wq_down, wq_up, wk_down, wk_up, wv, wo):
    """Single-head attention with low-rank (down @ up) query/key projections."""
    q = x @ wq_up.T @ wq_down.T  # (n, d) @ (d, r) ... written as full-width products
    k = x @ wk_up.T @ wk_down.T
    scores = jax.nn.softmax(q @ k.T / np.sqrt(q.shape[-1]), axis=-1)
    return scores @ (x @ wv) @ wo


def best(fn, *args, repeat=20):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    r = np.random.default_rng(0)
    n, d, rank, dv = 512, 512, 16, 64
    arr = lambda *s: jnp.asarray(r.standard_normal(s) / np.sqrt(s[-1]), jnp.float32)
    args = (arr(n, d), arr(d, rank), arr(rank, d), arr(d, rank), arr(rank, d), arr(d, dv),
            arr(dv, d))
    fast = contract.jit(attention)
    print(fast.explain(*args))
    np.testing.assert_allclose(fast(*args), jax.jit(attention)(*args), rtol=1e-3, atol=1e-3)
    t_ours, t_jax = best(fast, *args), best(jax.jit(attention), *args)
    print(f"\ncontract.jit {t_ours * 1e3:.2f} ms   jax.jit {t_jax * 1e3:.2f} ms   "
          f"ratio {t_ours / t_jax:.2f}x")


if __name__ == "__main__":
    main()
