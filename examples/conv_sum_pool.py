"""Conv + sum pool with contract: a tiny image layer, its einsums and its gradient.

Run: ``python examples/conv_sum_pool.py``. It prints what each operation
lowers to, checks the results against ``jax.lax`` and shows that the layer
composes with ``jax.jit``, ``jax.grad`` and ``jax.vmap``.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import contract

# A 4x4 image, one channel: sum_pool adds each 2x2 block.
image = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
print(contract.sum_pool(image, 2)[0, 0])  # [[10. 18.] [42. 50.]]
assert contract.sum_pool(image, 2)[0, 0].tolist() == [[10.0, 18.0], [42.0, 50.0]]

# Integers sum exactly into int32 (an int8 window of 100s would wrap at 127).
print(contract.sum_pool(np.full((4, 4), 100, np.int8), 2))  # [[400 400] [400 400]]
assert contract.sum_pool(np.full((4, 4), 100, np.int8), 2).dtype == jnp.int32

# The layer: 16 2x2 filters with stride 2 on (N, 3, 60, 60) images,
# then a 2x2 sum pool: (N, 3, 60, 60) -> (N, 16, 30, 30) -> (N, 16, 15, 15).
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 3, 60, 60), dtype=np.float32)
w = rng.standard_normal((16, 3, 2, 2), dtype=np.float32)


def layer(x, w):
    return contract.sum_pool(contract.conv(x, w, stride=2), 2)


out = layer(x, w)
print(out.shape)  # (8, 16, 15, 15)

# What each call becomes: kernel == stride, so the conv is one einsum over
# reshaped blocks and the pool sums 4 strided slices.
print(contract.lower(contract.conv, x, w, stride=2))
print(contract.lower(contract.sum_pool, np.empty((8, 16, 30, 30), np.float32), 2))
# Overlapping windows (3x3, stride 1) lower to a row view and a tap sum.
print(contract.lower(contract.conv, x, rng.standard_normal((16, 3, 3, 3), dtype=np.float32),
                     padding=1))

# Same result as jax.lax.
ref = lax.reduce_window(
    lax.conv_general_dilated(x, w, (2, 2), "VALID", precision=lax.Precision.HIGHEST),
    0.0, lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)

# It composes: jit, the gradient with respect to the filters, vmap over a
# stack of filter banks.
jitted = jax.jit(layer)(x, w)
grad_w = jax.grad(lambda w: jnp.sum(layer(x, w) ** 2))(w)
banks = jax.vmap(lambda w: layer(x, w))(np.stack([w, -w]))
print(grad_w.shape, banks.shape)  # (16, 3, 2, 2) (2, 8, 16, 15, 15)
np.testing.assert_allclose(jitted, out, rtol=1e-6, atol=1e-5)
np.testing.assert_allclose(banks[1], -out, rtol=1e-6, atol=1e-5)

# Bad arguments say what is wrong.
try:
    contract.conv(x, w[:, :2])
except contract.ContractError as e:
    print("ContractError:", e)
