"""Run a plan whose steps are in a semiring other than sum-product.

The plan is the sum-product's (the same order serves every semiring); what
changes is each operation: a label summed away before the pairwise steps is
⊕-reduced (:func:`.semiring.semiring_reduce`), each pairwise step is
:func:`.semiring.semiring_dot` (the log semiring's a rescaled GEMM, max-plus
and min-plus the SIMD kernel on CPU), and slices of a sliced plan are
combined with ⊕ (:func:`combine`) into an accumulator that starts at the
semiring's zero. Diagonals, broadcast size-1 axes and transposes are the
sum-product's.

>>> import numpy as np
>>> from contract.spec import parse
>>> from contract.planner import in_semiring, make_plan
>>> p = in_semiring(make_plan(parse("ij,jk->ik").bind([(1, 2), (2, 1)]), ("float32",) * 2,
...                           "float32"), "max-plus")
>>> execute(p, None, np.array([[1.0, 5.0]], np.float32), np.array([[2.0], [0.0]], np.float32)).tolist()
[[5.0]]
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ..planner import Plan
from ..semiring import Semiring, resolve
from .jax import prepare, step_dims
from .semiring import semiring_dot, semiring_reduce

__all__ = ["combine", "execute"]


def combine(x: jax.Array, y: jax.Array, semiring: Semiring) -> jax.Array:
    """``x ⊕ y`` elementwise (two slices' partial results).

    >>> combine(jnp.array([0.0, -jnp.inf]), jnp.array([0.0, -jnp.inf]), resolve("log")).tolist()
    [0.6931471824645996, -inf]
    """
    name = semiring.name
    if name == "log":
        return jnp.logaddexp(x, y)
    if name in ("max-plus", "max-product"):
        return jnp.maximum(x, y)
    if name == "min-plus":
        return jnp.minimum(x, y)
    return semiring.add(jnp.stack([x, y]), (0,))


def execute(plan: Plan, precision: Any, *operands: Any) -> jax.Array:
    """Run ``plan`` in its semiring (traceable: works under jit/grad/vmap)."""
    ring = resolve(plan.semiring)
    reduce = partial(semiring_reduce, semiring=ring)
    arrays = []
    for x, labels, drop, prep in zip(operands, plan.inputs, plan.squeeze, plan.preps):
        x = jnp.asarray(x)
        arrays.append(prepare(lax.squeeze(x, drop) if drop else x, labels, prep, reduce))
    result = plan.walk(arrays, lambda a, b, step: semiring_dot(a, b, step_dims(step), ring,
                                                               precision))
    if plan.final != plan.output:
        result = lax.transpose(result, [plan.final.index(l) for l in plan.output])
    return result.astype(plan.result_dtype)
