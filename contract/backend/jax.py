"""Lower a :class:`~contract.planner.Plan` to JAX: one ``lax.dot_general`` per step.

Policy (see docs/guide.md, "Dtypes", and docs/lowering.md):

* bfloat16/float16 accumulate in float32, narrow integers and bool in (u)int32;
  the result is cast back to the result dtype at the end. ``jnp.einsum`` sums
  bfloat16 in bfloat16 and overflows int8 — this does not.
* A result narrower than the float operands (an integer or bool
  ``preferred_element_type``, float32 on float64) is accumulated in the
  operands' type and converted once, as ``lax.dot_general`` does
  (:func:`accumulation_dtype`); a plan of one step *is* that
  ``lax.dot_general``.
* Operands of two dtypes go to XLA's ``dot_general`` as they are, with
  ``preferred_element_type`` (as ``jnp.einsum`` hands them over): no
  converted copy of the narrower one. The BLAS kernels, the unsigned
  integer trick and explicit dot algorithms need one dtype and still convert.
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
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..planner import Plan, Prep, Step, compute_dtype
from ..planner.costs import KEPT
from .blas import cpu_dtype, gemm_dot, real_step
from .complex import complex_dot, dot_sizes, real_dtype
from .exponent import rescale

__all__ = ["accumulates_in", "accumulation_dtype", "diagonal", "execute", "prepare", "step_dims"]


def diagonal(x: jax.Array, labels: list[str], label: str) -> tuple[jax.Array, list[str]]:
    """Take the diagonal over every axis carrying ``label``, as a strided slice;
    it becomes the last axis.

    >>> x, labels = diagonal(jnp.arange(8.0).reshape(2, 2, 2), ["i", "j", "i"], "i")
    >>> x.tolist(), labels
    ([[0.0, 5.0], [2.0, 7.0]], ['j', 'i'])
    """
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


def step_dims(step: Step) -> Any:
    """The ``lax.dot_general`` dimension numbers of a plan's step.

    >>> from contract.spec import parse
    >>> from contract.planner import make_plan
    >>> step_dims(make_plan(parse("bij,bjk->bik").bind([(2, 3, 4), (2, 4, 5)]),
    ...                     ("float32",) * 2, "float32").steps[0])
    (((2,), (1,)), ((0,), (0,)))
    """
    lhs, rhs = step.lhs, step.rhs
    return ((tuple(lhs.index(l) for l in step.contracted),
             tuple(rhs.index(l) for l in step.contracted)),
            (tuple(lhs.index(l) for l in step.batch), tuple(rhs.index(l) for l in step.batch)))


def prepare(x: jax.Array, labels: Sequence[str], prep: Prep,
            reduce: Callable[[jax.Array, tuple[int, ...]], jax.Array]) -> jax.Array:
    """One operand as the steps take it (its :class:`~contract.planner.Prep`):
    diagonals taken, lone labels reduced away by ``reduce(x, axes)`` (a sum,
    or a semiring's ⊕), axes in the prep's order.

    >>> from contract.planner import Prep
    >>> x = jnp.arange(12.0).reshape(3, 2, 2)
    >>> prepare(x, "abb", Prep(("b",), ("b",), ("a",)), lambda v, axes: v.sum(axes)).tolist()
    [12.0, 21.0]
    """
    labels = list(labels)
    for label in prep.diagonal:
        x, labels = diagonal(x, labels, label)
    if prep.summed:
        x = reduce(x, tuple(labels.index(l) for l in prep.summed))
        labels = [l for l in labels if l not in prep.summed]
    order = [labels.index(l) for l in prep.labels]
    if order != list(range(len(order))):
        x = lax.transpose(x, order)
    return x


# Operand dtypes a dot_general takes as they are, accumulating in the plan's
# wider compute dtype (preferred_element_type): measured on this CPU (512^3),
# int8 -> int32 0.19 ms instead of 32.8 ms after a cast, bfloat16 -> float32
# 0.28 ms instead of 7.5 ms (XLA's CPU dot has int8/bf16 kernels). A pair of
# float16 or int16 operands gains nothing on CPU and is cast as before;
# unsigned types: see _dot.
_KEPT = frozenset(map(jnp.dtype, KEPT))


def accumulation_dtype(plan: Plan) -> Any:
    """The dtype ``plan``'s steps accumulate in.

    The plan's compute dtype, except where the result is narrower than the
    operands' promoted real floating type (an integer or bool
    ``preferred_element_type`` on float operands, float32 on float64 ones):
    there the products are summed in the operands' type (bfloat16 and
    float16 widened to float32 as everywhere) and the sum is converted once,
    as ``lax.dot_general`` does, never the operands first.

    >>> from contract.spec import parse
    >>> from contract.planner import make_plan
    >>> p = make_plan(parse("ij,jk->ik").bind([(2, 3), (3, 4)]), ("float32",) * 2, "int32")
    >>> p.compute_dtype, accumulation_dtype(p).name
    ('int32', 'float32')
    """
    return accumulates_in(plan.dtypes, plan.compute_dtype)


def accumulates_in(operands: Sequence[Any], compute: Any) -> Any:
    """The dtype a contraction of ``operands`` (dtypes) whose result is computed
    in ``compute`` sums its products in: :func:`accumulation_dtype`'s rule.

    >>> accumulates_in(["float32", "float32"], "int32").name, accumulates_in(["int8"], "int32").name
    ('float32', 'int32')
    """
    cdtype = jnp.dtype(compute)
    given = jnp.result_type(*(jnp.dtype(d) for d in operands))
    if not jnp.issubdtype(given, jnp.floating) or jnp.issubdtype(cdtype, jnp.complexfloating):
        return cdtype
    wide = jnp.dtype(compute_dtype(given.name))
    if jnp.issubdtype(cdtype, jnp.floating) and cdtype.itemsize >= wide.itemsize:
        return cdtype
    return wide


def _operand_dtype(dtype: Any, cdtype: Any) -> Any:
    """The dtype an operand enters the steps in (see :func:`execute`)."""
    if not jnp.issubdtype(cdtype, jnp.complexfloating):
        return dtype  # each step decides (see _dot)
    return real_dtype(cdtype) if not jnp.issubdtype(dtype, jnp.complexfloating) else cdtype


def _as_they_are(a: Any, b: Any, cdtype: Any, precision: Any) -> bool:
    """Whether XLA's dot takes operands of dtypes ``a`` and ``b`` (two dtypes)
    as they are, accumulating in ``cdtype``, with the values a cast to
    ``cdtype`` gives: neither is wider than ``cdtype`` (a weak Python scalar
    can be: int64 under x64 next to int8), ``precision`` names no dot
    algorithm (which fixes the operand types), and lax accepts the pair."""
    if not (precision is None or isinstance(precision, (lax.Precision, tuple))):
        return False
    if any(jnp.promote_types(d, cdtype) != cdtype for d in (a, b)):
        return False
    scalar = (((), ()), ((), ()))
    try:
        jax.eval_shape(partial(lax.dot_general, dimension_numbers=scalar,
                               preferred_element_type=cdtype),
                       jax.ShapeDtypeStruct((), a), jax.ShapeDtypeStruct((), b))
    except TypeError:  # e.g. two float8 types lax cannot rank
        return False
    return True


def _dot(a: jax.Array, b: jax.Array, dims: Any, precision: Any, cdtype: Any,
         rounded: bool = False) -> jax.Array:
    """One real or integer step, accumulating in ``cdtype``; ``rounded``: a
    float32 step whose result is rounded to bfloat16 (the plan's last).

    Operands of one dtype enter as they are where the dot widens them itself
    (:data:`_KEPT`), else cast to ``cdtype``; operands of two dtypes enter
    as they are, as ``jnp.einsum`` passes them, with
    ``preferred_element_type=cdtype`` (no converted copy of either)."""
    if jnp.issubdtype(cdtype, jnp.unsignedinteger):
        # XLA's CPU dot has no fast unsigned kernel (uint32 512^3: 313 ms, int32:
        # 33 ms). Two's-complement products and sums wrap alike, so the signed
        # dot of the same bits is the unsigned dot, wrap-around included.
        signed = jnp.dtype(cdtype.name[1:])
        a, b = (lax.bitcast_convert_type(x.astype(cdtype), signed) for x in (a, b))
        out = lax.dot_general(a, b, dims, preferred_element_type=signed)
        return lax.bitcast_convert_type(out, cdtype)
    if a.dtype == b.dtype != cdtype and not (a.dtype in _KEPT
                                             and compute_dtype(a.dtype.name) == cdtype.name):
        a, b = a.astype(cdtype), b.astype(cdtype)  # float16, int16, bool: as before
    if a.dtype != b.dtype and not _as_they_are(a.dtype, b.dtype, cdtype, precision):
        a, b = a.astype(cdtype), b.astype(cdtype)
    if a.dtype == b.dtype != cdtype:
        precision = None  # narrow operands: their products are exact in cdtype
    def xla(a: jax.Array, b: jax.Array) -> jax.Array:
        out = lax.dot_general(a, b, dims, precision=precision, preferred_element_type=cdtype)
        return out.astype(jnp.bfloat16) if rounded else out

    # The dtype the CPU kernels read the operands in: a mixed pair in cdtype.
    given = a.dtype if a.dtype == b.dtype else cdtype
    sizes = dot_sizes(a.shape, b.shape, dims)
    wide = cpu_dtype(given, *sizes)
    if wide != given or real_step(wide, *sizes):
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
    if a.dtype != b.dtype:  # the kernel multiplies one dtype
        a, b = a.astype(dtype), b.astype(dtype)
    if dtype == jnp.float32:  # float32 operands, or bfloat16 ones the kernel widens
        return gemm_dot(a, b, dims, rounded=rounded, widened=a.dtype == jnp.bfloat16)
    out = gemm_dot(a, b, dims)
    return out.astype(jnp.bfloat16) if rounded else out


def _as_lax(plan: Plan, a: jax.Array, b: jax.Array, i: int, j: int, dims: Any,
            precision: Any, acc: Any) -> jax.Array:
    """The one step of a plan whose result is narrower than its float operands:
    exactly ``lax.dot_general(a, b, preferred_element_type=result)``, the
    operands as the caller gave them. An operand whose labels were summed
    away beforehand holds ``acc``; the other one then joins it there, so a
    pair the caller gave in one dtype reaches lax in one dtype."""
    if a.dtype != b.dtype and plan.dtypes[i] == plan.dtypes[j]:
        a, b = a.astype(acc), b.astype(acc)
    return lax.dot_general(a, b, dims, precision=precision,
                           preferred_element_type=jnp.dtype(plan.result_dtype))


def execute(plan: Plan, precision: Any, *operands: Any,
            strip_exponent: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Run ``plan`` on ``operands`` (traceable: works under jit/grad/vmap).

    Operands of a real plan enter the steps in their own dtype and each
    step decides (:func:`_dot`): a mixed pair goes to ``dot_general`` as it
    is, a pair of one dtype as it is where the dot widens it itself (int8
    and bfloat16, :data:`_KEPT`), else cast to the accumulation dtype. In a
    complex plan a real operand stays real, in the real counterpart dtype,
    so its steps need half the real products or fewer (:mod:`.complex`).

    With ``strip_exponent`` each float operand and each step's result is
    rescaled by a power of two as it is made (:func:`.exponent.rescale`),
    and the return is ``(x, k)``: the result is ``x * 2**k``.
    """
    k = np.int32(0)  # a constant: no equation in the program of a plain run
    cdtype = accumulation_dtype(plan)
    cplx = jnp.issubdtype(cdtype, jnp.complexfloating)
    arrays = []
    for x, labels, drop, prep in zip(operands, plan.inputs, plan.squeeze, plan.preps):
        x = jnp.asarray(x)
        if drop:
            x = lax.squeeze(x, drop)
        dtype = _operand_dtype(x.dtype, cdtype)
        if x.dtype != dtype:
            x = x.astype(dtype)
        if strip_exponent:
            x, k = rescale(x, k)
        arrays.append(prepare(x, labels, prep, partial(jnp.sum, dtype=dtype if cplx else cdtype)))
    if precision is None and cdtype in (jnp.float32, jnp.complex64):
        precision = lax.Precision.HIGHEST
    out_dtype = jnp.dtype(plan.result_dtype)
    narrowed = cdtype != jnp.dtype(plan.compute_dtype)

    def pair(a: jax.Array, b: jax.Array, step: Step) -> jax.Array:
        nonlocal k
        dims = step_dims(step)
        if narrowed and len(plan.steps) == 1:
            out = _as_lax(plan, a, b, *step.operands, dims, precision, cdtype)
        elif cplx and (jnp.iscomplexobj(a) or jnp.iscomplexobj(b)):
            out = complex_dot(a, b, dims, precision, cdtype=cdtype)
        else:
            # A bfloat16 result of a float32 last step is rounded by that step.
            rounded = (step is plan.steps[-1] and plan.final == plan.output
                       and out_dtype == jnp.bfloat16 and cdtype == jnp.float32)
            out = _dot(a, b, dims, precision, a.dtype if cplx else cdtype, rounded)
        if strip_exponent:
            out, k = rescale(out, k)
        return out

    result = plan.walk(arrays, pair)
    if plan.final != plan.output:
        result = lax.transpose(result, [plan.final.index(l) for l in plan.output])
    if result.dtype != out_dtype:
        result = result != 0 if out_dtype == jnp.bool_ else result.astype(out_dtype)
    return (result, k) if strip_exponent else result
