"""Complex contraction steps on CPU as real GEMMs.

XLA's CPU ``dot`` runs complex64 at about a third of its float32 speed (a 512²
complex64 matmul: 10.6 ms, against 4.5 ms as one float32 GEMM of the same
arithmetic, on this 2-core machine). So on CPU a complex step with enough
work in it becomes real ``dot_general``s over the real and imaginary parts,
chosen per step from its shape by :func:`method`:

``"blas"`` (the default where :mod:`contract.native`'s kernel loads)
    One call to OpenBLAS's ``cgemm``/``zgemm`` through an XLA FFI custom call
    (:mod:`.blas`): 1.2-1.9x faster than ``"real"`` on this machine, with the
    rounding of a native complex GEMM. Single-device processes only (a
    custom call has no sharding rule).
``"real"`` (the default without the kernel)
    One real GEMM over stacked parts: ``[ar ai]`` (the parts as a new
    contracted axis) times the 2x2 real block ``[[br bi], [-bi br]]`` built
    from the smaller operand, giving ``[cr ci]`` in one call. Each output
    element is the same four real products and sums as a complex dot, so the
    rounding is that of the native dot.
``"gauss"``
    Gauss's three real GEMMs, ``ar·br``, ``ai·bi`` and ``(ar+ai)·(br+bi)``:
    a quarter fewer FLOPs, but the imaginary part comes from a difference of
    large terms, so its error scales with ``|a||b|`` rather than with the
    imaginary part (on nearly real data its relative error grows by orders
    of magnitude). Used only when the caller asked for less than
    ``Precision.HIGHEST`` (``precision="default"``/``"high"``), for large steps.
``"real-mixed"``
    A complex operand times a real one (an input that was real before the
    plan promoted it): one real GEMM of the complex operand's stacked parts
    with the real operand, half the work of a complex dot.
``"native"``
    The complex ``dot_general`` as before: steps too thin for a GEMM (a
    matrix-vector product is bound by memory, and splitting the parts would
    add a copy of the large operand), and every platform but CPU.

The choice is made twice over: :func:`method` on the static shapes (plain
Python, the same on every machine), and ``lax.platform_dependent`` at
lowering time, so only a computation lowered for CPU takes the real branch
and GPU/TPU programs keep their native complex dot. Every branch is built
from differentiable ``lax`` ops, so ``grad``, ``vjp`` and ``vmap`` go through.

>>> import numpy as np
>>> a = (np.arange(6.0) + 1j).reshape(2, 3).astype(np.complex64)
>>> dims = (((1,), (0,)), ((), ()))
>>> np.allclose(complex_dot(a, a.T, dims, None, "real"), a @ a.T)
True
>>> method(1, 512, 512, 512), method(1, 2048, 1, 2048)
('real', 'native')
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from .blas import gemm_dot, usable
from .policy import complex_lowering as method

__all__ = ["METHODS", "complex_dot", "dot_sizes", "method", "real_dtype"]

METHODS = ("native", "blas", "real", "gauss", "real-mixed")

Dims = tuple[tuple[tuple[int, ...], tuple[int, ...]], tuple[tuple[int, ...], tuple[int, ...]]]

def dot_sizes(lhs: Sequence[int], rhs: Sequence[int], dims: Dims) -> tuple[int, int, int, int]:
    """(batch, lhs free, rhs free, contracted) element counts of a ``dot_general``.

    >>> dot_sizes((4, 8, 16), (4, 16, 2), (((2,), (1,)), ((0,), (0,))))
    (4, 8, 2, 16)
    """
    (lc, rc), (lb, rb) = dims
    batch = math.prod(lhs[a] for a in lb)
    k = math.prod(lhs[a] for a in lc)
    m = math.prod(lhs) // max(batch * k, 1) if all(lhs) else 0
    n = math.prod(rhs) // max(batch * k, 1) if all(rhs) else 0
    return batch, m, n, k


def _highest(precision: Any) -> bool:
    """Whether ``precision`` asks for full accuracy (None means contract's default, HIGHEST)."""
    if precision is None:
        return True
    pair = precision if isinstance(precision, tuple) else (precision,)
    return any(p is None or p == lax.Precision.HIGHEST for p in pair)


def real_dtype(cdtype: Any) -> Any:
    """The real counterpart of a complex dtype: float32 for complex64.

    >>> real_dtype("complex64")
    dtype('float32')
    """
    return jnp.finfo(cdtype).dtype


def _shift(axes: tuple[int, ...], at: int) -> tuple[int, ...]:
    """Axis numbers after inserting a new axis at position ``at``."""
    return tuple(a + (a >= at) for a in axes)


def _parts(x: jax.Array, axis: int) -> jax.Array:
    """``[re x, im x]`` stacked as a new axis at ``axis``."""
    return jnp.stack([lax.real(x), lax.imag(x)], axis=axis)


def _layout(ndim: int, p: int, q: int) -> list:
    """Axis order after inserting part axes "p" before axis ``p`` and "q" before
    axis ``q`` of an ``ndim``-d array ("q" first where both go before one axis).

    >>> _layout(2, 0, 2), _layout(2, 1, 1)
    (['p', 0, 1, 'q'], [0, 'q', 'p', 1])
    """
    order: list = []
    for axis in range(ndim + 1):
        order += (["q"] if axis == q else []) + (["p"] if axis == p else [])
        order += [axis] if axis < ndim else []
    return order


def _block(x: jax.Array, order: list) -> jax.Array:
    """The 2x2 real block ``[[re, im], [-im, re]]`` of ``x``, its part axes
    placed as in ``order`` (see :func:`_layout`): "p" is contracted with the
    other operand's parts, "q" indexes the result's parts.

    Against the parts ``[ar, ai]`` of the other operand along p, q = 0 gives
    ``ar·re - ai·im`` and q = 1 gives ``ar·im + ai·re``: the real and imaginary
    parts of the product, whichever side the block is on.
    """
    re, im = lax.real(x), lax.imag(x)
    block = jnp.stack([jnp.stack([re, im]), jnp.stack([-im, re])])  # (p, q, *x.shape)
    return jnp.moveaxis(block, (0, 1), (order.index("p"), order.index("q")))


def _native(a: jax.Array, b: jax.Array, dims: Dims, precision: Any, cdtype: Any) -> jax.Array:
    return lax.dot_general(a.astype(cdtype), b.astype(cdtype), dims, precision=precision,
                           preferred_element_type=cdtype)


def _stacked(a: jax.Array, b: jax.Array, dims: Dims, precision: Any, cdtype: Any) -> jax.Array:
    """One real GEMM: parts of the larger operand against the 2x2 block of the smaller."""
    (lc, rc), (lb, rb) = dims
    rdtype = real_dtype(cdtype)
    # The contracted part axis goes just before the first contracted axis, so
    # that it and the contracted axes stay one contiguous run (one GEMM
    # dimension); the block's result part axis just after its last free axis.
    pa, pb = (min(lc), min(rc)) if lc else (a.ndim, b.ndim)
    block_rhs = b.size <= a.size
    x, xc, xb, px = (b, rc, rb, pb) if block_rhs else (a, lc, lb, pa)
    free = [d for d in range(x.ndim) if d not in xc and d not in xb]
    order = _layout(x.ndim, px, max(free, default=x.ndim - 1) + 1)
    blk = _block(x, order)
    bc, bb = (order.index("p"), *(order.index(d) for d in xc)), tuple(order.index(d) for d in xb)
    if block_rhs:
        a2, b2 = _parts(a, pa), blk
        dims2 = (((pa, *_shift(lc, pa)), bc), (_shift(lb, pa), bb))
    else:
        a2, b2 = blk, _parts(b, pb)
        dims2 = ((bc, (pb, *_shift(rc, pb))), (bb, _shift(rb, pb)))
    out = lax.dot_general(a2, b2, dims2, precision=precision, preferred_element_type=rdtype)
    # The block's result part axis: the last output axis when the block is the
    # rhs, else the last of the lhs's free axes.
    q = out.ndim - 1 if block_rhs else len(lb) + a.ndim - len(lc) - len(lb)
    re = lax.index_in_dim(out, 0, q, keepdims=False)
    im = lax.index_in_dim(out, 1, q, keepdims=False)
    return lax.complex(re, im)


def _gauss(a: jax.Array, b: jax.Array, dims: Dims, precision: Any, cdtype: Any) -> jax.Array:
    """Three real GEMMs (Gauss): cr = t1 - t2, ci = t3 - t1 - t2."""
    rdtype = real_dtype(cdtype)
    dot = partial(lax.dot_general, dimension_numbers=dims, precision=precision,
                  preferred_element_type=rdtype)
    ar, ai, br, bi = lax.real(a), lax.imag(a), lax.real(b), lax.imag(b)
    t1, t2, t3 = dot(ar, br), dot(ai, bi), dot(ar + ai, br + bi)
    return lax.complex(t1 - t2, t3 - t1 - t2)


def _mixed(a: jax.Array, b: jax.Array, dims: Dims, precision: Any, cdtype: Any) -> jax.Array:
    """Complex times real: the complex operand's parts as a new free axis, one real GEMM."""
    (lc, rc), (lb, rb) = dims
    rdtype = real_dtype(cdtype)
    if jnp.iscomplexobj(a):
        free = [x for x in range(a.ndim) if x not in lc and x not in lb]
        s = min(free, default=a.ndim)
        a2, b2 = _parts(a, s), b.astype(rdtype)
        dims2 = ((_shift(lc, s), rc), (_shift(lb, s), rb))
        q = len(lb) + sum(x < s for x in free)
    else:
        free = [x for x in range(b.ndim) if x not in rc and x not in rb]
        s = min(free, default=b.ndim)
        a2, b2 = a.astype(rdtype), _parts(b, s)
        dims2 = ((lc, _shift(rc, s)), (lb, _shift(rb, s)))
        q = len(lb) + (a.ndim - len(lc) - len(lb)) + sum(x < s for x in free)
    out = lax.dot_general(a2, b2, dims2, precision=precision, preferred_element_type=rdtype)
    re = lax.index_in_dim(out, 0, q, keepdims=False)
    im = lax.index_in_dim(out, 1, q, keepdims=False)
    return lax.complex(re, im)


def _blas(a: jax.Array, b: jax.Array, dims: Dims, precision: Any, cdtype: Any) -> jax.Array:
    """One BLAS complex GEMM (always full precision: ``precision`` asks no less)."""
    return gemm_dot(a, b, dims)


_LOWERINGS = {"blas": _blas, "real": _stacked, "gauss": _gauss, "real-mixed": _mixed}


def complex_dot(a: Any, b: Any, dims: Dims, precision: Any, choice: str | None = None,
                cdtype: Any = None) -> jax.Array:
    """A complex ``dot_general`` of ``a`` and ``b``, lowered by ``choice`` on CPU.

    ``choice`` defaults to :func:`method` on the operands' shapes; at least one
    of ``a``, ``b`` is complex, and where the other is real any real lowering
    becomes ``"real-mixed"`` (and ``"real-mixed"`` of two complex operands
    ``"real"``). ``cdtype`` is the complex result dtype (by default the
    operands' promoted one). Other platforms always run the native dot.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if cdtype is None:
        cdtype = jnp.result_type(a.dtype, b.dtype, jnp.complex64)
    mixed = not (jnp.iscomplexobj(a) and jnp.iscomplexobj(b))
    blas = not mixed and usable(cdtype)
    if choice is None:
        choice = method(*dot_sizes(a.shape, b.shape, dims), _highest(precision), mixed=mixed,
                        blas=blas)
    elif choice != "native":
        choice = "real-mixed" if mixed else "real" if choice == "real-mixed" else choice
        choice = "real" if choice == "blas" and not blas else choice
    native = partial(_native, dims=dims, precision=precision, cdtype=cdtype)
    if choice == "native":
        return native(a, b)
    if not mixed:
        a, b = a.astype(cdtype), b.astype(cdtype)
    cpu = partial(_LOWERINGS[choice], dims=dims, precision=precision, cdtype=cdtype)
    return lax.platform_dependent(a, b, cpu=cpu, default=native)
