"""Lower a :class:`~contract.planner.Plan` to JAX: one ``lax.dot_general`` per step.

Policy (see docs/dtypes.md):

* bfloat16/float16 accumulate in float32, narrow integers and bool in (u)int32;
  the result is cast back to the result dtype at the end. ``jnp.einsum`` sums
  bfloat16 in bfloat16 and overflows int8 — this does not.
* float32 (and complex64) contractions default to ``Precision.HIGHEST`` so GPUs do not drop to
  TF32 silently; ``precision=`` overrides.
* On CPU a complex step with a GEMM in it runs as real GEMMs over the real
  and imaginary parts, and a real operand of a complex plan stays real
  (:mod:`.complex`); other platforms keep the complex ``dot_general``.
* Repeated labels become a strided slice of a reshaped view (a diagonal is
  every (n+1)-th element of the flattened square), never a masked copy.

>>> import numpy as np
>>> from contract.spec import parse
>>> from contract.planner import make_plan
>>> p = make_plan(parse("ii->i").bind([(3, 3)]), ("float32",), "float32")
>>> execute(p, None, np.arange(9.0, dtype=np.float32).reshape(3, 3)).tolist()
[0.0, 4.0, 8.0]
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from ..planner import Plan, Prep, compute_dtype
from ..planner.costs import KEPT
from .blas import cpu_dtype, gemm_dot, real_step
from .complex import complex_dot, dot_sizes, real_dtype

__all__ = ["execute"]


def _diagonal(x: jax.Array, labels: list[str], label: str) -> tuple[jax.Array, list[str]]:
    """Take the diagonal over every axis carrying ``label``, as a strided slice."""
    axes = [a for a, l in enumerate(labels) if l == label]
    rest = [a for a in range(x.ndim) if a not in axes]
    n = x.shape[axes[0]]
    k = len(axes)
    if rest + axes != list(range(x.ndim)):
        x = lax.transpose(x, rest + axes)
    lead = tuple(x.shape[a] for a in range(len(rest)))
    x = x.reshape(lead + (n**k,))
    # In the flattened k-cube, the diagonal is every (1 + n + ... + n^(k-1))-th
    # element; that stride is 1 when n == 1.
    stride = sum(n**p for p in range(k))
    x = lax.slice_in_dim(x, 0, n**k, stride, axis=x.ndim - 1) if n else x[..., :0]
    return x, [labels[a] for a in rest] + [label]


def _prepare(x: jax.Array, labels: Sequence[str], prep: Prep, cdtype: Any) -> jax.Array:
    labels = list(labels)
    for label in prep.diagonal:
        x, labels = _diagonal(x, labels, label)
    if prep.summed:
        axes = tuple(labels.index(l) for l in prep.summed)
        x = jnp.sum(x, axis=axes, dtype=cdtype)
        labels = [l for l in labels if l not in prep.summed]
    order = [labels.index(l) for l in prep.labels]
    if order != list(range(len(order))):
        x = lax.transpose(x, order)
    return x


# Operand dtypes a dot_general takes as they are, accumulating in the plan's
# wider compute dtype (preferred_element_type): measured on this CPU (512^3),
# int8 -> int32 0.19 ms instead of 32.8 ms after a cast, bfloat16 -> float32
# 0.28 ms instead of 7.5 ms (XLA's CPU dot has int8/bf16 kernels). float16 and
# int16 gain nothing on CPU and are cast as before; unsigned types: see _dot.
_KEPT = frozenset(map(jnp.dtype, KEPT))


def _operand_dtype(dtype: Any, cdtype: Any) -> Any:
    """The dtype an operand enters the steps in (see :func:`execute`)."""
    if jnp.issubdtype(cdtype, jnp.complexfloating) and not jnp.issubdtype(dtype, jnp.complexfloating):
        return real_dtype(cdtype)
    if dtype in _KEPT and compute_dtype(dtype.name) == cdtype.name:
        return dtype
    return cdtype


def _dot(a: jax.Array, b: jax.Array, dims: Any, precision: Any, cdtype: Any,
         rounded: bool = False) -> jax.Array:
    """One real or integer step, accumulating in ``cdtype``; ``rounded``: a
    float32 step whose result is rounded to bfloat16 (the plan's last)."""
    if a.dtype != b.dtype:
        a, b = a.astype(cdtype), b.astype(cdtype)
    if jnp.issubdtype(cdtype, jnp.unsignedinteger):
        # XLA's CPU dot has no fast unsigned kernel (uint32 512^3: 313 ms, int32:
        # 33 ms). Two's-complement products and sums wrap alike, so the signed
        # dot of the same bits is the unsigned dot, wrap-around included.
        signed = jnp.dtype(cdtype.name[1:])
        a, b = (lax.bitcast_convert_type(x.astype(cdtype), signed) for x in (a, b))
        out = lax.dot_general(a, b, dims, preferred_element_type=signed)
        return lax.bitcast_convert_type(out, cdtype)
    if a.dtype != cdtype:
        precision = None  # narrow operands: their products are exact in cdtype
    def xla(a: jax.Array, b: jax.Array) -> jax.Array:
        out = lax.dot_general(a, b, dims, precision=precision, preferred_element_type=cdtype)
        return out.astype(jnp.bfloat16) if rounded else out

    if compute_dtype(a.dtype.name) == cdtype.name:  # cdtype operands, or KEPT ones
        sizes = dot_sizes(a.shape, b.shape, dims)
        wide = cpu_dtype(a.dtype, *sizes)
        if wide != a.dtype or real_step(wide, *sizes):
            # With MKL, batched and large float GEMMs run faster as the BLAS
            # kernel; without AMX, large bfloat16 ones faster in float32.
            cpu = partial(_cpu_dot, dims=dims, dtype=wide, xla=xla, rounded=rounded)
            return lax.platform_dependent(a, b, cpu=cpu, default=xla)
    return xla(a, b)


def _cpu_dot(a: jax.Array, b: jax.Array, dims: Any, dtype: Any, xla: Any,
             rounded: bool) -> jax.Array:
    """A step on CPU: its operands read as ``dtype``, then the BLAS kernel or XLA's dot."""
    if not real_step(dtype, *dot_sizes(a.shape, b.shape, dims)):
        return xla(a.astype(dtype), b.astype(dtype))
    if dtype == jnp.float32:  # float32 operands, or bfloat16 ones the kernel widens
        return gemm_dot(a, b, dims, rounded=rounded, widened=a.dtype == jnp.bfloat16)
    out = gemm_dot(a, b, dims)
    return out.astype(jnp.bfloat16) if rounded else out


def execute(plan: Plan, precision: Any, *operands: Any) -> jax.Array:
    """Run ``plan`` on ``operands`` (traceable: works under jit/grad/vmap).

    Operands enter the steps in their own dtype where a dot can widen them
    itself (int8 and bfloat16, :data:`_KEPT`), else in the compute dtype; in a
    complex plan a real operand stays real, in the real counterpart dtype, so
    its steps need half the real products or fewer (:mod:`.complex`).
    """
    cdtype = jnp.dtype(plan.compute_dtype)
    cplx = jnp.issubdtype(cdtype, jnp.complexfloating)
    arrays = []
    for x, labels, drop, prep in zip(operands, plan.inputs, plan.squeeze, plan.preps):
        x = jnp.asarray(x)
        if drop:
            x = lax.squeeze(x, drop)
        dtype = _operand_dtype(x.dtype, cdtype)
        if x.dtype != dtype:
            x = x.astype(dtype)
        arrays.append(_prepare(x, labels, prep, cdtype if dtype in _KEPT else dtype))
    if precision is None and cdtype in (jnp.float32, jnp.complex64):
        precision = lax.Precision.HIGHEST
    out_dtype = jnp.dtype(plan.result_dtype)
    for n, step in enumerate(plan.steps):
        i, j = step.operands
        a, b = (arrays[j], arrays[i]) if step.swap else (arrays[i], arrays[j])
        lhs, rhs = step.lhs, step.rhs
        dims = (
            (tuple(lhs.index(l) for l in step.contracted),
             tuple(rhs.index(l) for l in step.contracted)),
            (tuple(lhs.index(l) for l in step.batch), tuple(rhs.index(l) for l in step.batch)),
        )
        if cplx and (jnp.iscomplexobj(a) or jnp.iscomplexobj(b)):
            out = complex_dot(a, b, dims, precision, cdtype=cdtype)
        else:
            # A bfloat16 result of a float32 last step is rounded by that step.
            rounded = (n == len(plan.steps) - 1 and plan.final == plan.output
                       and out_dtype == jnp.bfloat16 and cdtype == jnp.float32)
            out = _dot(a, b, dims, precision, a.dtype if cplx else cdtype, rounded)
        arrays = arrays[:i] + arrays[i + 1 : j] + arrays[j + 1 :] + [out]
    (result,) = arrays
    if plan.final != plan.output:
        result = lax.transpose(result, [plan.final.index(l) for l in plan.output])
    if result.dtype != out_dtype:
        result = result != 0 if out_dtype == jnp.bool_ else result.astype(out_dtype)
    return result
