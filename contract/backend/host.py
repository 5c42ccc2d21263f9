"""Run a plan once on the host, step by step with NumPy's BLAS: no XLA compile.

A plan of hundreds of pairwise steps (a tensor-network amplitude, a PEPS
environment) compiled by XLA for one call spends almost all of that call
compiling: a 369-tensor circuit amplitude (368 steps, complex64) takes
XLA 1.7 s to compile (1.1 s with its fastest compile options) and 0.04 s to
run, where these steps, as NumPy ``matmul`` calls on transposed views, run
in 0.06 s with nothing to compile. Compiling op by op does not help either:
eager ``jnp`` calls compile each distinct transpose, reshape and matmul
shape (10 s for the same 368 steps on their first pass).
:func:`contract.backend.policy.first_call` says when a first eager call
takes this path; later calls of the same plan run the compiled program.

Each step is the plan's own ``dot_general``: the operands transposed to
(batch, free, contracted) and (batch, contracted, free), reshaped to three
dimensions and multiplied by ``np.matmul`` (BLAS ``gemm``), in the plan's
compute dtype, which the policy restricts to BLAS's four types.

>>> import numpy as np
>>> from contract.spec import parse
>>> from contract.planner import make_plan
>>> p = make_plan(parse("ab,bc,cd->da").bind([(2, 3), (3, 4), (4, 5)]), ("float32",) * 3, "float32")
>>> x, y, z = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.ones((4, 5), np.float32)
>>> run(p, [x, y, z]).shape, run(p, [x, y, z])[0, 0].item()
((5, 2), 12.0)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import opt_einsum

from ..planner import Plan, Prep, SlicedPlan, Step
from ..validate import is_array
from .policy import first_call

__all__ = ["on_host", "run"]


def _prepare(x: np.ndarray, labels: Sequence[str], prep: Prep) -> np.ndarray:
    """Diagonals taken and lone labels summed, as the plan's prep says."""
    if not (prep.diagonal or prep.summed):
        return x
    letters = {l: opt_einsum.get_symbol(n) for n, l in enumerate(dict.fromkeys(labels))}
    spec = "".join(letters[l] for l in labels) + "->" + "".join(letters[l] for l in prep.labels)
    return np.einsum(spec, x)


def _step(a: np.ndarray, b: np.ndarray, step: Step, sizes: dict[str, int]) -> np.ndarray:
    """``lax.dot_general``'s result layout (batch, lhs free, rhs free) by one batched GEMM."""
    lhs, rhs, batch, contracted = step.lhs, step.rhs, step.batch, step.contracted
    free_a = [l for l in lhs if l not in batch and l not in contracted]
    free_b = [l for l in rhs if l not in batch and l not in contracted]
    nb, m, n, k = (math.prod(sizes[l] for l in g) for g in (batch, free_a, free_b, contracted))
    a3 = a.transpose([lhs.index(l) for l in (*batch, *free_a, *contracted)]).reshape(nb, m, k)
    b3 = b.transpose([rhs.index(l) for l in (*batch, *contracted, *free_b)]).reshape(nb, k, n)
    return np.matmul(a3, b3).reshape([sizes[l] for l in (*batch, *free_a, *free_b)])


def run(plan: Plan, operands: Sequence[Any]) -> np.ndarray:
    """``plan``'s result for concrete ``operands``, computed with NumPy in the
    plan's compute dtype and returned in its result dtype. Overflow gives
    inf and NaN silently, as XLA's does."""
    with np.errstate(all="ignore"):
        return _run(plan, operands)


def _run(plan: Plan, operands: Sequence[Any]) -> np.ndarray:
    cdtype = np.dtype(plan.compute_dtype)
    sizes = dict(plan.sizes)
    arrays = []
    for x, labels, drop, prep in zip(operands, plan.inputs, plan.squeeze, plan.preps):
        x = np.asarray(x)
        if drop:
            x = x.squeeze(drop)
        arrays.append(_prepare(x.astype(cdtype, copy=False), labels, prep))
    result = plan.walk(arrays, lambda a, b, step: _step(a, b, step, sizes))
    if plan.final != plan.output:
        result = result.transpose([plan.final.index(l) for l in plan.output])
    return result.astype(plan.result_dtype, copy=False)


def _local(x: Any) -> bool:
    """Whether ``x`` is a concrete operand in this process's memory: a NumPy
    array or number, or a ``jax.Array`` on one CPU device."""
    if type(x) is np.ndarray or isinstance(x, (bool, int, float, complex, np.generic)):
        return True
    return is_array(x) and len(x.devices()) == 1 and next(iter(x.devices())).platform == "cpu"


def on_host(p: Plan | SlicedPlan, precision: Any, ops: Sequence[Any]) -> Any:
    """``p``'s result computed on the host (:func:`run`) where the
    backend policy runs a first call there (:func:`~contract.backend.policy.first_call`),
    else None. ``precision`` below HIGHEST is not honoured by NumPy, so such
    calls compile."""
    if not (precision is None or precision == jax.lax.Precision.HIGHEST):
        return None
    if not isinstance(p, Plan) or first_call(p) is None or not all(map(_local, ops)):
        return None
    return jnp.asarray(run(p, ops))
