"""Cumulative sums with contract: the seed examples, dtypes, and the einsum behind them.

    python examples/cumsum_examples.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import contract

# A 1-D running total.
print(contract.cumsum([1, 2, 3, 4]))  # [ 1  3  6 10]

# Along rows (axis=1, or PyTorch's dim=1) and down columns (axis=0).
x = np.array([[5, 6, 7], [1, 2, 3]])
print(contract.cumsum(x, axis=1))  # [[ 5 11 18] [ 1  3  6]]
print(contract.cumsum(x, dim=0))   # [[ 5  6  7] [ 6  8 10]]

# dtype= casts the input first, then sums (PyTorch semantics): 1.5 -> 1, 2.5 -> 2, 3.5 -> 3.
print(contract.cumsum([1.5, 2.5, 3.5], 0, dtype=jnp.int32))  # [1 3 6]

# Narrow integers and bool widen to int32 instead of overflowing.
print(contract.cumsum(np.full(4, 100, np.int8)))  # [100 200 300 400], int32
print(contract.cumsum(np.array([True, False, True])).dtype)  # int32

# bfloat16 accumulates in float32, returns bfloat16.
print(contract.cumsum(jnp.ones(1000, jnp.bfloat16))[-1])  # 1000, not bfloat16's 256

# From the end: flip, cumsum, flip.
print(contract.cumsum([1, 2, 3, 4], reverse=True))  # [10  9  7  4]

# axis=None scans the flattened array, as NumPy does.
print(contract.cumsum(x))  # [ 5 11 18 19 21 24]

# Every line above agrees with NumPy (cast first where dtype= is given).
np.testing.assert_array_equal(contract.cumsum(x, axis=1), np.cumsum(x, 1))
np.testing.assert_array_equal(contract.cumsum([1.5, 2.5, 3.5], 0, dtype=jnp.int32), [1, 3, 6])
np.testing.assert_array_equal(contract.cumsum(np.full(4, 100, np.int8)), [100, 200, 300, 400])
np.testing.assert_array_equal(contract.cumsum([1, 2, 3, 4], reverse=True), [10, 9, 7, 4])
assert float(contract.cumsum(jnp.ones(1000, jnp.bfloat16))[-1]) == 1000

# It composes with JAX transformations.
print(jax.jit(lambda v: contract.cumsum(v, axis=1))(x.astype(np.float32)))
print(jax.grad(lambda v: contract.cumsum(v)[-2])(jnp.arange(4.0)))  # [1. 1. 1. 0.]

# The einsums it runs: block totals, their scan within a row of blocks, and the
# running sums within each block of L, with triangular ones matrices.
print(contract.lower(contract.cumsum, np.ones((1024, 4096), np.float32), axis=1))
