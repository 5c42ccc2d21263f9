"""A ``dot_general`` as one batched BLAS GEMM on CPU (:mod:`contract.native`'s kernel).

:func:`gemm_dot` arranges each operand as ``(batch, rows, contracted)`` or
``(batch, contracted, rows)`` — whichever needs no transpose, else the first —
flattens the label groups, and calls the kernel through ``jax.ffi.ffi_call``,
passing transposed operands as BLAS transpose flags instead of copies. Only
the primal goes through BLAS: ``custom_jvp`` gives the tangent as the same
contraction in ``lax.dot_general``, so ``jvp``, ``grad`` and ``vjp`` work
(reverse mode transposes those XLA dots), and ``vmap`` adds a batch dimension
the kernel loops over.

:func:`usable` says when a step may take this path: the kernel is loaded, the
dtype is one BLAS has, and the process has a single device (a custom call has
no sharding rule, so under a multi-device mesh XLA would gather its operands;
``shard_map`` bodies keep XLA's dots too). Callers pick it inside
``lax.platform_dependent``'s CPU branch only.

>>> import numpy as np
>>> a = (np.arange(6.0) + 1j).reshape(2, 3).astype(np.complex64)
>>> dims = (((1,), (0,)), ((), ()))
>>> np.allclose(gemm_dot(a, a.T, dims), a @ a.T) if usable("complex64") else True
True
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ..planner.costs import KEPT, compute_dtype
from .ffi import registered
from .policy import capabilities, real_step as decide

__all__ = ["cpu_dtype", "gemm_dot", "real_step", "usable"]

Dims = tuple[tuple[tuple[int, ...], tuple[int, ...]], tuple[tuple[int, ...], tuple[int, ...]]]
# KEPT operands (bfloat16, int8) give the dtype they accumulate in, as
# preferred_element_type does: MKL's gemm_bf16bf16f32 and gemm_s8u8s32.
_TARGET = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128",
           "bfloat16": "bf16", "int8": "s8"}


def usable(dtype: Any) -> bool:
    """Whether a step in ``dtype`` may run as a BLAS GEMM in this process
    (bfloat16 and int8 only with MKL, the one BLAS here that has them)."""
    name = jnp.dtype(dtype).name
    return (name in _TARGET and (name not in KEPT or capabilities().mkl)
            and jax.device_count() == 1
            and registered("contract_gemm", (*_TARGET.values(), "f32_bf16", "bf16w", "bf16w_bf16")))


def real_step(dtype: Any, batch: int, m: int, n: int, k: int) -> bool:
    """Whether a real float step of these sizes, its operands in ``dtype``,
    runs as the kernel (:func:`contract.backend.policy.real_step` decides).

    >>> real_step("int32", 64, 128, 128, 128)
    False
    """
    return (decide(jnp.dtype(dtype).name, batch, m, n, k).how == "blas"
            and usable(dtype))


def cpu_dtype(dtype: Any, batch: int, m: int, n: int, k: int) -> Any:
    """The dtype a real step of these sizes multiplies operands held in
    ``dtype`` in on this CPU (:func:`contract.backend.policy.real_step`:
    bfloat16 reads as float32 where that is faster, on CPUs without AMX).

    >>> cpu_dtype("float32", 1, 8, 8, 8)
    dtype('float32')
    """
    return jnp.dtype(decide(jnp.dtype(dtype).name, batch, m, n, k).dtype)


def _result(dtype: Any) -> Any:
    """The kernel's result dtype for operands in ``dtype``."""
    return jnp.dtype(compute_dtype(jnp.dtype(dtype).name))


def _arrange(x: jax.Array, batch: tuple[int, ...], rows: list[int],
             contracted: tuple[int, ...], rows_first: bool) -> tuple[jax.Array, bool]:
    """``x`` as a 3-d ``(batch, rows, contracted)`` array (``rows_first``) or
    ``(batch, contracted, rows)``, and whether it is the other one (a BLAS
    transpose flag): the layout that needs no transpose wins.

    >>> y, flip = _arrange(jnp.zeros((2, 3, 4)), (0,), [2], (1,), rows_first=True)
    >>> y.shape, flip
    ((2, 3, 4), True)
    """
    groups = [batch, rows, contracted] if rows_first else [batch, contracted, rows]
    flip = False
    if [*batch, *groups[1], *groups[2]] != list(range(x.ndim)):
        flip = [*batch, *groups[2], *groups[1]] == list(range(x.ndim))
        if flip:
            groups = [batch, groups[2], groups[1]]
        else:
            x = lax.transpose(x, [d for g in groups for d in g])
            groups = [range(a, a + len(g)) for a, g in zip((0, len(batch), x.ndim - len(groups[2])),
                                                           groups)]
    return x.reshape([math.prod(x.shape[d] for d in g) for g in groups]), flip


@partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def gemm_dot(a: jax.Array, b: jax.Array, dims: Dims, rounded: bool = False,
             widened: bool = False) -> jax.Array:
    """``lax.dot_general(a, b, dims)`` for two arrays of one BLAS dtype, computed by
    BLAS (bfloat16: ``preferred_element_type=float32``, int8: ``int32``).

    ``widened`` (bfloat16 operands): multiplied by the float32 GEMM, each
    block widened in the kernel, instead of MKL's bfloat16 one; ``rounded``
    (float32 products): the result rounded to bfloat16 by the kernel, as
    ``.astype(bfloat16)`` would round it."""
    (lc, rc), (lb, rb) = dims
    free_a = [d for d in range(a.ndim) if d not in lc and d not in lb]
    free_b = [d for d in range(b.ndim) if d not in rc and d not in rb]
    a3, trans_a = _arrange(a, lb, free_a, lc, rows_first=True)
    b3, trans_b = _arrange(b, rb, free_b, rc, rows_first=False)
    m = a3.shape[2] if trans_a else a3.shape[1]
    n = b3.shape[1] if trans_b else b3.shape[2]
    target = _TARGET[a.dtype.name]
    if widened:
        if target != "bf16":
            raise ValueError(f"only bfloat16 operands are widened, not {a.dtype}")
        target += "w"
    if rounded:
        if target not in ("f32", "bf16w"):
            raise ValueError(f"a bfloat16-rounded product needs a float32 product, not {a.dtype}")
        target += "_bf16"
    out = jax.ShapeDtypeStruct((a3.shape[0], m, n),
                               jnp.bfloat16 if rounded else _result(a.dtype))
    call = jax.ffi.ffi_call(f"contract_gemm_{target}", out, vmap_method="broadcast_all")
    c = call(a3, b3, trans_a=trans_a, trans_b=trans_b)
    shape = ([a.shape[d] for d in lb] + [a.shape[d] for d in free_a]
             + [b.shape[d] for d in free_b])
    return c.reshape(shape)


@gemm_dot.defjvp
def _gemm_jvp(dims: Dims, rounded: bool, widened: bool, primals: tuple,
              tangents: tuple) -> tuple[jax.Array, jax.Array]:
    a, b = primals
    da, db = tangents
    out = gemm_dot(a, b, dims, rounded, widened)
    if not jnp.issubdtype(a.dtype, jnp.inexact):  # integers: no derivative (float0)
        return out, jnp.zeros(out.shape, jax.dtypes.float0)
    dot = partial(lax.dot_general, dimension_numbers=dims, precision=lax.Precision.HIGHEST,
                  preferred_element_type=_result(a.dtype))
    return out, (dot(da, b) + dot(a, db)).astype(out.dtype)
