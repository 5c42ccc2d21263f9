"""The seed's custom sum layer, as a plain JAX function with a gradient.

Run: ``python examples/custom_sum_layer.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np

import contract


def sum_layer(x: jax.Array) -> jax.Array:
    """Batch x Channels x Time -> Batch x Time: sums dim 1 ('abc->ac')."""
    return contract.sum(x, dim=1)


def weighted_sum_layer(w: jax.Array, x: jax.Array) -> jax.Array:
    """A trainable variant: a learned weight per channel, summed over channels
    as one multiply-then-sum einsum (no weighted copy of x is stored)."""
    return contract.einsum("c,bct->bt", w, x)


x = jnp.asarray(np.random.default_rng(0).standard_normal((8, 32, 64)), jnp.float32)
out = sum_layer(x)
print(out.shape)  # (8, 64)
print(contract.lower(contract.sum, x, dim=1))

# It composes with jit, vmap and grad like any JAX function.
fast = jax.jit(sum_layer)
np.testing.assert_allclose(fast(x), jnp.sum(x, axis=1), rtol=1e-5, atol=1e-5)
per_example = jax.vmap(lambda xi: contract.sum(xi, dim=0))(x)
np.testing.assert_allclose(per_example, out, rtol=1e-6)

w = jnp.ones(32)
loss = lambda w: jnp.mean(weighted_sum_layer(w, x) ** 2)
g = jax.grad(loss)(w)
print("d loss / d w:", g.shape, g[:4])
np.testing.assert_allclose(weighted_sum_layer(w, x), out, rtol=1e-5, atol=1e-5)
