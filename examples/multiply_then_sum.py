"""Multiply two tensors and sum along the first dimension: the three ways.

Run: ``python examples/multiply_then_sum.py``. All three give the same
result; the einsum and ``vecdot`` forms are one ``dot_general`` that never
stores the product, and the naive form is fused too under ``jax.jit`` or
``contract.jit``.
"""

import jax
import numpy as np

import contract

rng = np.random.default_rng(0)
tensor1 = rng.standard_normal((3, 4), dtype=np.float32)
tensor2 = rng.standard_normal((3, 4), dtype=np.float32)

# 1. Naive: product, then sum (stores tensor1 * tensor2 when run eagerly).
naive = contract.sum(tensor1 * tensor2, dim=0)
# 2. einsum.
via_einsum = contract.einsum("ik,ik->k", tensor1, tensor2)
# 3. The operation.
fused = contract.vecdot(tensor1, tensor2, dim=0)
print(naive, via_einsum, fused, sep="\n")
np.testing.assert_allclose(via_einsum, naive, rtol=1e-5)
np.testing.assert_allclose(fused, naive, rtol=1e-5)

# What they compile to: one dot_general, no mul.
print(jax.make_jaxpr(lambda a, b: contract.einsum("ik,ik->k", a, b))(tensor1, tensor2))
print(contract.lower(contract.vecdot, tensor1, tensor2, dim=0))

# contract.jit rewrites the naive form into the same einsum.
naive_jit = contract.jit(lambda a, b: contract.sum(a * b, dim=0))
np.testing.assert_allclose(naive_jit(tensor1, tensor2), naive, rtol=1e-5)
print(naive_jit.explain(tensor1, tensor2))
