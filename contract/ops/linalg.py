"""Linear-algebra operations lowered to einsums.

``dot``, ``vecdot``, ``matmul``, ``tensordot``, ``outer``, ``trace`` and
``diagonal``, with NumPy's semantics. Each call becomes one einsum run by the
planner: a multiply-then-sum such as ``vecdot`` is a single ``dot_general``
(the product is never stored), and ``trace``/``diagonal`` take the diagonal as
a strided slice of a reshaped view, never as a mask.

Broadcast batch dimensions of size 1 are squeezed away before the einsum (a
size-1 axis adds nothing to a product), so ``matmul`` of ``(1, 3, 4)`` and
``(5, 4, 2)`` is ``'bc,acd->abd'``, without copying ``x1`` five times.

>>> import contract
>>> print(contract.lower(contract.matmul, [[1.0, 2.0]], [[3.0], [4.0]]))
matmul:
  einsum 'ab,bc->ac'  shapes (1, 2), (2, 1)
>>> print(contract.lower(contract.trace, [[1, 2], [3, 4]]))
trace:
  einsum 'aa->'  shapes (2, 2)
  result int32
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..api import einsum
from ..errors import ContractError
from ._args import dtype_arg, normalize_axes, normalize_axis, operand, reject_out, resolve_alias
from ._compiled import letters, run
from .lowering import Lowering, register
from .reduce import sum_result_dtype

__all__ = ["dot", "vecdot", "matmul", "tensordot", "outer", "trace", "diagonal"]

Window = tuple[tuple[int, int, int], ...]


def _kernel(*arrays: jax.Array, spec: str, drop: tuple[tuple[int, ...], ...] = (),
            window: Window = (), flat: bool = False, conj: bool = False,
            cast: str | None = None, result: str | None = None) -> jax.Array:
    """Shape the operands (squeeze, slice, ravel, conjugate, cast), then one einsum."""
    ops = list(arrays)
    for n, axes in enumerate(drop):
        if axes:
            ops[n] = lax.squeeze(ops[n], axes)
    for axis, start, stop in window:
        ops[0] = lax.slice_in_dim(ops[0], start, stop, axis=axis)
    if flat:
        ops = [x.reshape(-1) for x in ops]
    if conj and jnp.issubdtype(ops[0].dtype, jnp.complexfloating):
        ops[0] = jnp.conj(ops[0])
    if cast is not None:
        ops = [x.astype(cast) for x in ops]
    return einsum(spec, *ops, preferred_element_type=result)


def _shapes(arrays: Sequence[jax.Array], p: dict) -> tuple[tuple[int, ...], ...]:
    """Operand shapes as the einsum sees them (after squeeze/slice/ravel)."""
    out = []
    for n, x in enumerate(arrays):
        shape = list(x.shape)
        if n == 0:
            for axis, start, stop in p.get("window", ()):
                shape[axis] = stop - start
        drop = p.get("drop", ())
        if n < len(drop):
            shape = [d for a, d in enumerate(shape) if a not in drop[n]]
        out.append((int(np.prod(shape)),) if p.get("flat") else tuple(shape))
    return tuple(out)


def _lowering(op: str, arrays: Sequence[jax.Array], p: dict, *notes: str) -> Lowering:
    """The one-stage :class:`Lowering` of a kernel call, with what happens before it."""
    extra = [f"x{n + 1}: broadcast size-1 axes {d} squeezed"
             for n, d in enumerate(p.get("drop", ())) if d]
    if p.get("window"):
        extra.append("x sliced first: " + ", ".join(f"axis {a} [{s}:{e}]"
                                                   for a, s, e in p["window"]))
    if p.get("cast"):
        extra.append(f"input cast to {p['cast']} first")
    if p.get("result"):
        extra.append(f"result {p['result']}")
    return Lowering(op, ((p["spec"], _shapes(arrays, p)),), "; ".join([*notes, *extra]))


def _two(op: str, a: Any, b: Any, out: Any) -> tuple[jax.Array, jax.Array]:
    reject_out(out, op)
    return operand(a, op), operand(b, op)


def _mismatch(op: str, what: str, na: int, nb: int) -> ContractError:
    return ContractError(f"{op}(): {what}: size {na} in x1 but {nb} in x2")


def _align(op: str, sa: tuple[int, ...], sb: tuple[int, ...], labels: str,
           contracted: int | None = None) -> tuple[str, str, str, tuple[int, ...], tuple[int, ...]]:
    """Right-align two shapes and label them NumPy-broadcast style.

    Returns each operand's labels, the output labels, and the size-1 axes of
    each operand to squeeze (they broadcast). ``contracted`` is a position
    (of ``len(labels)``) summed over, whose sizes must match.
    """
    n = len(labels)
    la, lb, lout, da, db = [], [], [], [], []
    for pos, label in enumerate(labels):
        ia, ib = pos - (n - len(sa)), pos - (n - len(sb))
        xa = sa[ia] if ia >= 0 else None
        xb = sb[ib] if ib >= 0 else None
        if pos == contracted:
            if xa is None or xb is None:
                raise ContractError(f"{op}(): x{1 if xa is None else 2} has no axis {pos - n} "
                                    f"to contract (shapes {sa} and {sb})")
            if xa != xb:
                raise _mismatch(op, f"the contracted axis {pos - n}", xa, xb)
            la.append(label), lb.append(label)
            continue
        if xa is not None and xb is not None and xa != xb and 1 not in (xa, xb):
            raise _mismatch(op, f"broadcast axis {pos - n} (sizes must match or be 1)", xa, xb)
        for x, other, labs, drops, i in ((xa, xb, la, da, ia), (xb, xa, lb, db, ib)):
            if x is None:
                continue
            if x == 1 and other is not None and other != 1:
                drops.append(i)
            else:
                labs.append(label)
        lout.append(label)
    return "".join(la), "".join(lb), "".join(lout), tuple(da), tuple(db)


# ---------------------------------------------------------------- dot, vecdot


def _dot_args(a: Any, b: Any, *, out: Any = None) -> tuple[list[jax.Array], dict]:
    a, b = _two("dot", a, b, out)
    la = letters(a.ndim + b.ndim, "dot")[: a.ndim]
    lb = letters(a.ndim + b.ndim, "dot")[a.ndim :]
    if a.ndim and b.ndim:
        k = -2 if b.ndim > 1 else -1  # NumPy: last of a with second-to-last of b
        if a.shape[-1] != b.shape[k]:
            raise _mismatch("dot", f"the last axis of x1 and axis {k} of x2", a.shape[-1],
                            b.shape[k])
        lb = lb[:k] + la[-1] + (lb[k + 1 :] if k == -2 else "")
        free_b = lb.replace(la[-1], "")
        return [a, b], dict(spec=f"{la},{lb}->{la[:-1]}{free_b}")
    return [a, b], dict(spec=f"{la},{lb}->{la}{lb}")  # a scalar: elementwise product


def dot(a: Any, b: Any, *, out: Any = None) -> jax.Array:
    """NumPy ``dot``: inner product of vectors, matrix product, and for N-D a
    sum over the last axis of ``a`` and the second-to-last of ``b``.

    >>> dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]).item()
    32.0
    """
    return run(_dot_args, _kernel, a, b, out=out)


@register(dot)
def _lower_dot(*args: Any, **kwargs: Any) -> Lowering:
    arrays, p = _dot_args(*args, **kwargs)
    return _lowering("dot", arrays, p)


def _vecdot_args(x1: Any, x2: Any, axis: Any = None, *, dim: Any = None,
                 out: Any = None) -> tuple[list[jax.Array], dict]:
    a, b = _two("vecdot", x1, x2, out)
    if a.ndim == 0 or b.ndim == 0:
        raise ContractError("vecdot(): x1 and x2 must have at least one axis")
    n = max(a.ndim, b.ndim)
    axis = normalize_axis(resolve_alias("axis", axis, "dim", dim, "vecdot", -1), n, "vecdot")
    la, lb, lout, da, db = _align("vecdot", a.shape, b.shape, letters(n, "vecdot"), axis)
    return [a, b], dict(spec=f"{la},{lb}->{lout}", drop=(da, db), conj=True)


def vecdot(x1: Any, x2: Any, axis: int | None = None, *, dim: int | None = None,
           out: Any = None) -> jax.Array:
    """Array-API ``vecdot``: ``sum(conj(x1) * x2, axis)`` with broadcasting,
    as one multiply-then-sum einsum (``axis=-1`` by default; ``dim=`` alias).
    A positive ``axis`` counts in the broadcast shape; prefer negative axes,
    as the array API does.

    >>> vecdot([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [2.0, 2.0]], axis=0).tolist()
    [7.0, 10.0]
    """
    return run(_vecdot_args, _kernel, x1, x2, axis, dim=dim, out=out)


@register(vecdot)
def _lower_vecdot(*args: Any, **kwargs: Any) -> Lowering:
    arrays, p = _vecdot_args(*args, **kwargs)
    return _lowering("vecdot", arrays, p, "x1 conjugated first when complex")


# ---------------------------------------------------------------- matmul, tensordot, outer


def _matmul_args(a: Any, b: Any, *, out: Any = None) -> tuple[list[jax.Array], dict]:
    a, b = _two("matmul", a, b, out)
    if a.ndim == 0 or b.ndim == 0:
        raise ContractError("matmul(): x1 and x2 must have at least one axis (use multiply "
                            "for scalars)")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise _mismatch("matmul", "the contracted axis (last of x1, second-to-last of x2)",
                        ka, kb)
    ba, bb = a.shape[:-2], b.shape[:-2]
    n = max(len(ba), len(bb))
    labels = letters(n + 3, "matmul")
    la, lb, lout, da, db = _align("matmul", ba, bb, labels[:n])
    i, k, j = labels[n:]
    la += (i + k) if a.ndim > 1 else k  # NumPy: a 1-D x1 is a row, then dropped
    lb += (k + j) if b.ndim > 1 else k  # a 1-D x2 is a column, then dropped
    lout += (i if a.ndim > 1 else "") + (j if b.ndim > 1 else "")
    return [a, b], dict(spec=f"{la},{lb}->{lout}", drop=(da, db))


def matmul(x1: Any, x2: Any, *, out: Any = None) -> jax.Array:
    """NumPy ``matmul`` (``@``): batch dimensions broadcast, 1-D operands are
    promoted to a row (``x1``) or a column (``x2``) and the axis dropped.

    >>> matmul([[1.0, 2.0], [3.0, 4.0]], [1.0, 1.0]).tolist()
    [3.0, 7.0]
    """
    return run(_matmul_args, _kernel, x1, x2, out=out)


@register(matmul)
def _lower_matmul(*args: Any, **kwargs: Any) -> Lowering:
    arrays, p = _matmul_args(*args, **kwargs)
    return _lowering("matmul", arrays, p)


def _tensordot_axes(axes: Any, a: jax.Array,
                    b: jax.Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        n = int(axes)
        if not 0 <= n <= min(a.ndim, b.ndim):
            raise ContractError(f"tensordot(): axes={n} must be between 0 and "
                                f"min(x1.ndim, x2.ndim) = {min(a.ndim, b.ndim)}")
        return tuple(range(a.ndim - n, a.ndim)), tuple(range(n))
    try:
        xa, xb = axes
    except (TypeError, ValueError):
        raise ContractError(f"tensordot(): axes must be an int or a pair of axis sequences, "
                            f"got {axes!r}") from None
    pair = []
    for x, arr, name in ((xa, a, "x1"), (xb, b, "x2")):
        seq = (x,) if isinstance(x, (int, np.integer)) else tuple(x)
        normalize_axes(seq, arr.ndim, "tensordot")  # range and duplicate checks
        pair.append(tuple(int(v) % max(arr.ndim, 1) for v in seq))
    if len(pair[0]) != len(pair[1]):
        raise ContractError(f"tensordot(): {len(pair[0])} axes of x1 but {len(pair[1])} of x2")
    return pair[0], pair[1]


def _tensordot_args(a: Any, b: Any, axes: Any = None, *, dims: Any = None,
                    out: Any = None) -> tuple[list[jax.Array], dict]:
    a, b = _two("tensordot", a, b, out)
    axa, axb = _tensordot_axes(resolve_alias("axes", axes, "dims", dims, "tensordot", 2), a, b)
    labels = letters(a.ndim + b.ndim, "tensordot")
    la, lb = list(labels[: a.ndim]), list(labels[a.ndim :])
    for i, j in zip(axa, axb):
        if a.shape[i] != b.shape[j]:
            raise _mismatch("tensordot", f"contracted axes {i} of x1 and {j} of x2",
                            a.shape[i], b.shape[j])
        lb[j] = la[i]
    lout = ([l for n, l in enumerate(la) if n not in axa]
            + [l for n, l in enumerate(lb) if n not in axb])
    return [a, b], dict(spec=f"{''.join(la)},{''.join(lb)}->{''.join(lout)}")


def tensordot(a: Any, b: Any, axes: Any = None, *, dims: Any = None, out: Any = None) -> jax.Array:
    """Sum over the given axes of ``a`` and ``b`` (``axes=2`` by default: the
    last two of ``a`` with the first two of ``b``; ``dims=`` alias).

    >>> tensordot([[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]], axes=([1], [0])).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    return run(_tensordot_args, _kernel, a, b, axes, dims=dims, out=out)


@register(tensordot)
def _lower_tensordot(*args: Any, **kwargs: Any) -> Lowering:
    arrays, p = _tensordot_args(*args, **kwargs)
    return _lowering("tensordot", arrays, p)


def _outer_args(a: Any, b: Any, *, out: Any = None) -> tuple[list[jax.Array], dict]:
    return list(_two("outer", a, b, out)), dict(spec="a,b->ab", flat=True)


def outer(a: Any, b: Any, *, out: Any = None) -> jax.Array:
    """Outer product of the flattened inputs (NumPy).

    >>> outer([1, 2], [1, 10, 100]).tolist()
    [[1, 10, 100], [2, 20, 200]]
    """
    return run(_outer_args, _kernel, a, b, out=out)


@register(outer)
def _lower_outer(*args: Any, **kwargs: Any) -> Lowering:
    arrays, p = _outer_args(*args, **kwargs)
    return _lowering("outer", arrays, p, "inputs flattened first")


# ---------------------------------------------------------------- trace, diagonal


def _diagonal_spec(op: str, x: jax.Array, offset: Any, axis1: Any, axis2: Any,
                   keep_diagonal: bool) -> dict:
    """The window (a square block) whose main diagonal is the wanted one, and
    the einsum repeating one label on both axes."""
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise ContractError(f"{op}(): offset must be an int, got {offset!r}")
    if x.ndim < 2:
        raise ContractError(f"{op}(): needs an array of rank >= 2, got shape {tuple(x.shape)}")
    a1, a2 = normalize_axis(axis1, x.ndim, op), normalize_axis(axis2, x.ndim, op)
    if a1 == a2:
        raise ContractError(f"{op}(): axis1 and axis2 are both axis {a1}; they must differ")
    s1 = min(max(0, -int(offset)), x.shape[a1])
    s2 = min(max(0, int(offset)), x.shape[a2])
    length = max(0, min(x.shape[a1] - s1, x.shape[a2] - s2))
    labels = list(letters(x.ndim, op))
    labels[a2] = labels[a1]
    rest = "".join(l for n, l in enumerate(labels) if n not in (a1, a2))
    out = rest + labels[a1] if keep_diagonal else rest
    window = tuple((a, s, s + length) for a, s in ((a1, s1), (a2, s2))
                   if (s, s + length) != (0, x.shape[a]))
    return dict(spec=f"{''.join(labels)}->{out}", window=window)


def _trace_args(x: Any, offset: Any = 0, axis1: Any = 0, axis2: Any = 1, dtype: Any = None, *,
                out: Any = None) -> tuple[list[jax.Array], dict]:
    reject_out(out, "trace")
    x = operand(x, "trace")
    p = _diagonal_spec("trace", x, offset, axis1, axis2, keep_diagonal=False)
    dt = dtype_arg(dtype, "trace")
    cast = None if dt is None else dt.name
    return [x], dict(p, cast=cast, result=cast or sum_result_dtype(jnp.dtype(x.dtype).name))


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None, *,
          out: Any = None) -> jax.Array:
    """Sum along a diagonal (NumPy ``trace``); dtypes follow :func:`contract.sum`.

    >>> trace([[1, 2], [3, 4]]).item(), trace([[1, 2], [3, 4]], offset=1).item()
    (5, 2)
    """
    return run(_trace_args, _kernel, x, offset, axis1, axis2, dtype, out=out)


@register(trace)
def _lower_trace(*args: Any, **kwargs: Any) -> Lowering:
    arrays, p = _trace_args(*args, **kwargs)
    return _lowering("trace", arrays, p)


def _diagonal_args(x: Any, offset: Any = 0, axis1: Any = 0,
                   axis2: Any = 1) -> tuple[list[jax.Array], dict]:
    x = operand(x, "diagonal")
    return [x], _diagonal_spec("diagonal", x, offset, axis1, axis2, keep_diagonal=True)


def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> jax.Array:
    """The diagonal of ``axis1``/``axis2`` as the last axis (NumPy ``diagonal``):
    a strided slice, not a mask.

    >>> diagonal([[1, 2, 3], [4, 5, 6]]).tolist(), diagonal([[1, 2, 3], [4, 5, 6]], 1).tolist()
    ([1, 5], [2, 6])
    """
    return run(_diagonal_args, _kernel, x, offset, axis1, axis2)


@register(diagonal)
def _lower_diagonal(*args: Any, **kwargs: Any) -> Lowering:
    arrays, p = _diagonal_args(*args, **kwargs)
    return _lowering("diagonal", arrays, p)
