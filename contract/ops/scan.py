"""``cumsum`` as a blocked triangular einsum.

The scanned axis ``n`` is cut into rows of ``B`` blocks of length ``L``,
``(R, B, L)``, and three einsums with structured constant operands do the work:

* ``"bl,lm->bm"`` over all ``P * R * B`` blocks with the ``L x L``
  upper-triangular ones matrix: every block's own running sum;
* ``"prbl->prb"``: the block totals, and ``"prb,bc->prc"`` with the ``B x B``
  *strictly* upper-triangular ones matrix: the sum of the earlier blocks in
  the same row (an exclusive scan of the totals);
* the carry of whole rows: the row totals ``"prb->pr"`` scanned by the same
  function, recursively, then shifted by one.

Their sum is the cumsum. For floating dtypes XLA's CPU backend fuses it into
one pass that reads the input and writes the output once (integer products go
through a separate dot, then one fused add). A length that is not a multiple of ``L`` is padded
with zeros and sliced back; ``reverse=True`` uses the lower triangles.

Each element costs ``L + B / L`` multiply-adds instead of one, but they run as
matrix products and stay under the cost of the memory traffic. Integers are
exact (int32 products summing in int32); float32 error grows with ``L``, ``B``
and the number of levels, not with the length as in a sequential scan.

>>> import numpy as np, contract
>>> contract.cumsum([1, 2, 3, 4]).tolist()
[1, 3, 6, 10]
>>> contract.cumsum([[5, 6, 7], [1, 2, 3]], axis=1).tolist()
[[5, 11, 18], [1, 3, 6]]
>>> contract.cumsum([1.5, 2.5, 3.5], 0, dtype="int32").tolist()
[1, 3, 6]
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..api import einsum
from ..backend import scan as native_scan
from ..backend.layout import read
from ..backend.sharded import scan_blocks
from ..caching import memoized
from ..errors import ContractError
from ..planner import compute_dtype
from ..validate import widened_integer
from ._args import cast_dtype, normalize_axis, operand, reject_out, resolve_alias
from ._compiled import call
from .lowering import Lowering, register

__all__ = ["cumsum", "block_length"]

# Block length L per backend. CPU: measured by ``python -m bench.cumsum_bench``
# (the sweep table in docs/operations.md): short blocks keep the L
# multiply-adds per element under the cost of the memory pass, long blocks
# keep the rows and levels down; 16 and 32 tie on 1e7 elements and on
# (1024, 4096) rows, 8 and 64+ are slower, and 32 needs half the rows.
# GPU/TPU: a guess, not measured: matrix units want a wide contraction and
# the extra multiply-adds are free there.
_BLOCK = {"cpu": 32, "gpu": 128, "cuda": 128, "rocm": 128, "tpu": 128}
_DEFAULT_BLOCK = 32
# Blocks per row (B <= _ROW): the B x B carry einsum costs B / L multiply-adds
# per element, and a row of B * L elements stays cache-resident.
_ROW = 128


def block_length(backend: str | None = None) -> int:
    """The block length ``L`` cumsum uses on ``backend`` (default: JAX's).

    >>> block_length("cpu")
    32
    """
    return _BLOCK.get(backend or jax.default_backend(), _DEFAULT_BLOCK)


def _result_dtype(dtype: Any, requested: Any = None) -> tuple[Any, Any]:
    """(accumulation dtype, result dtype) of a cumsum over ``dtype``.

    Bool and integers return what ``jnp.sum`` returns for them, the default
    integer of their kind when they are narrower (int32/uint32, with x64
    int64/uint64), as NumPy and PyTorch widen them; ``jnp.cumsum`` keeps
    int8/int16/uint8/uint16 (and with x64 int32/uint32) and wraps: the one
    marked exception to following jnp (docs/coming_from.md). bfloat16/float16
    accumulate in float32 and return in their own dtype. A ``requested``
    dtype (the ``dtype=`` argument) is the result dtype, as in NumPy, jnp and
    PyTorch: an int8 scan wraps, a bool one is a running "any".

    >>> [str(d) for d in _result_dtype(jnp.dtype("int8"))]
    ['int32', 'int32']
    >>> [str(d) for d in _result_dtype(jnp.dtype("int8"), "int8")]
    ['int32', 'int8']
    >>> [str(d) for d in _result_dtype(jnp.dtype("bfloat16"))]
    ['float32', 'bfloat16']
    """
    result = jnp.dtype(requested if requested is not None else widened_integer(jnp.dtype(dtype).name))
    return jnp.dtype(compute_dtype(result.name)), result


@memoized("cumsum triangles", 64)
def _triangle(n: int, reverse: bool, strict: bool, dtype: str) -> np.ndarray:
    """``T[l, m] = 1`` where element ``l`` counts towards position ``m``.

    Upper-triangular for a forward scan, lower for ``reverse``; ``strict``
    drops the diagonal (an exclusive scan: earlier blocks only).

    >>> _triangle(3, False, True, "int32").tolist()
    [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    """
    k = 1 if strict else 0
    ones = np.ones((n, n), dtype=jnp.dtype(dtype))
    return np.tril(ones, -k) if reverse else np.triu(ones, k)


def _rows(n: int, block: int) -> tuple[int, int]:
    """Split ``n > block`` elements into ``R`` rows of ``B`` blocks of ``L``.

    ``B <= _ROW``; a ``B`` that divides the block count exactly is preferred,
    so only a length that is not a multiple of ``L`` needs padding.

    >>> _rows(10_000_000, 32)  # 312500 blocks: 2500 rows of 125
    (2500, 125)
    >>> _rows(4096, 32)
    (1, 128)
    """
    blocks = math.ceil(n / block)
    if blocks <= _ROW:
        return 1, blocks
    for b in range(_ROW, _ROW // 2, -1):
        if blocks % b == 0:
            return blocks // b, b
    rows = math.ceil(blocks / _ROW)
    return rows, math.ceil(blocks / rows)


def _exclusive(inclusive: jax.Array, reverse: bool) -> jax.Array:
    """Shift an inclusive scan along its last axis by one, filling in zero.

    >>> _exclusive(jnp.array([[1, 3, 6]]), False).tolist()
    [[0, 1, 3]]
    """
    shift = [(0, 0, 0)] * (inclusive.ndim - 1) + [(-1, 1, 0) if reverse else (1, -1, 0)]
    return lax.pad(inclusive, jnp.zeros((), inclusive.dtype), shift)


def _scan(x: jax.Array, reverse: bool, block: int, ein: Callable[..., jax.Array]) -> jax.Array:
    """Inclusive scan along the last axis of ``x`` shaped ``(P, n)``.

    The axis becomes ``(R, B, L)``: rows of ``B`` blocks of ``L``. Three
    einsums over the same blocks -- block totals, the exclusive scan of the
    totals within a row (a strictly triangular ``B x B`` matrix) and the
    running sums within each block (``L x L``) -- plus the carry of whole
    rows, scanned recursively, make one expression that XLA (CPU) fuses into
    a single pass that reads the input and writes the output once.

    >>> _scan(jnp.arange(1, 8).reshape(1, 7), False, 2, _einsum).tolist()
    [[1, 3, 6, 10, 15, 21, 28]]
    """
    n = x.shape[1]
    if n <= block:
        return ein("pl,lm->pm", x, _triangle(n, reverse, False, x.dtype.name))
    rows, per_row = _rows(n, block)
    padded = rows * per_row * block
    if padded != n:
        x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (0, padded - n, 0)])
    # A single row drops its axis: a size-1 label would cost a relayout copy.
    r, lead = ("r", (rows,)) if rows > 1 else ("", ())
    blocks = x.reshape((x.shape[0],) + lead + (per_row, block))
    totals = ein(f"p{r}bl->p{r}b", blocks)
    carry = ein(f"p{r}b,bc->p{r}c", totals, _triangle(per_row, reverse, True, x.dtype.name))
    if rows > 1:
        across = _scan(ein("prb->pr", totals), reverse, block, ein)
        carry = carry + _exclusive(across, reverse)[:, :, None]
    # Every block as one row of a 2-D product: XLA's CPU fusion then adds the
    # carry in place, where a 4-D product costs a full-size scratch buffer.
    local = ein("bl,lm->bm", blocks.reshape(-1, block),
                _triangle(block, reverse, False, x.dtype.name))
    out = (local + carry.reshape(-1)[:, None]).reshape(x.shape[0], padded)
    return out[:, :n] if padded != n else out


# Integer scans along a leading axis whose rows hold at least this many
# elements run as a loop over the rows (below).
_ROW_SCAN_MIN = 1024


def _by_rows(x: jax.Array, axis: int) -> bool:
    """Whether to scan ``x`` along ``axis`` as a loop of row additions.

    XLA's CPU dot has no fast integer kernel: an int32 (1024, 4096) cumsum
    along axis 0 ran 57 ms as triangular products (jnp.cumsum: 27 ms), and
    2.7 ms as ``lax.scan`` adding one 4096-wide row per step, each step a
    vector add on contiguous memory. Exact for integers, so only they take
    it; floats keep the blocked products, whose error does not grow with the
    length. The axis must lead (nothing before it but size-1 axes), so the
    rows are contiguous without a transpose.
    """
    return (jnp.issubdtype(x.dtype, jnp.integer) and axis < x.ndim - 1
            and math.prod(x.shape[:axis]) == 1 and math.prod(x.shape[axis + 1:]) >= _ROW_SCAN_MIN)


def _row_scan(x: jax.Array, axis: int, reverse: bool) -> jax.Array:
    """Inclusive scan along ``axis`` as one row addition per step (see :func:`_by_rows`).

    >>> _row_scan(jnp.arange(6).reshape(3, 2), 0, False).tolist()
    [[0, 1], [2, 4], [6, 9]]
    """
    rows = x.reshape(x.shape[axis], -1)

    def add(total: jax.Array, row: jax.Array) -> tuple[jax.Array, jax.Array]:
        total = total + row
        return total, total

    _, out = lax.scan(add, jnp.zeros(rows.shape[1:], rows.dtype), rows, reverse=reverse)
    return out.reshape(x.shape)


def _einsum(spec: str, *operands: Any) -> jax.Array:
    """The engine's einsum at full float32 precision (exact for integers).

    >>> _einsum("l,lm->m", jnp.ones(3), _triangle(3, False, False, "float32")).tolist()
    [1.0, 2.0, 3.0]
    """
    return einsum(spec, *operands, precision="highest")


def _portable(x: jax.Array, axis: int, reverse: bool, block: int,
              ein: Callable[..., jax.Array]) -> jax.Array:
    """The scan in XLA's own operations: row additions or blocked triangular products.

    >>> _portable(jnp.arange(6).reshape(2, 3), 1, False, 2, _einsum).tolist()
    [[0, 1, 3], [3, 7, 12]]
    """
    if _by_rows(x, axis):
        return _row_scan(x, axis, reverse)
    moved = jnp.moveaxis(x, axis, -1)  # a transpose only when axis is not last
    flat = _scan(moved.reshape(-1, x.shape[axis]), reverse, block, ein)
    return jnp.moveaxis(flat.reshape(moved.shape), -1, axis)


def _native(dtype: Any, block: int | None) -> bool:
    """Whether a scan accumulating in ``dtype`` runs as the native CPU kernel.

    Only without an explicit ``block=`` (which asks for the triangular
    lowering) and where :func:`contract.backend.scan.usable`; other
    platforms still take the portable branch of ``lax.platform_dependent``.
    """
    return block is None and jax.default_backend() == "cpu" and native_scan.usable(dtype)


def _kernel(x: jax.Array, *, axis: int | None, cast: str | None, reverse: bool,
            block: int | None, ein: Callable[..., jax.Array] = _einsum,
            layout: Any = None) -> jax.Array:
    """Cast, scan ``axis``, cast back.

    Everything, including ``dtype=``'s cast and ``axis=None``'s flattening,
    happens here so that it compiles into the one program (an eager reshape
    or cast would each write a full copy first). On CPU the scan is the
    native kernel where :func:`_native` allows, else :func:`_portable`.

    >>> _kernel(jnp.ones((2, 3), jnp.int8), axis=None, cast=None, reverse=True, block=2).tolist()
    [6, 5, 4, 3, 2, 1]
    """
    if cast is not None:
        x = x.astype(cast)
    if axis is None:
        x, axis, layout = x.reshape(-1), 0, None  # the layout was the unflattened one's
    acc, result = _result_dtype(x.dtype, cast)
    if x.dtype != acc:
        x = x.astype(acc)
    if x.size:
        portable = functools.partial(_portable, axis=axis, reverse=reverse,
                                     block=block or block_length(), ein=ein)

        def along(x: jax.Array) -> jax.Array:
            if not _native(x.dtype, block):
                return portable(x)
            cpu = functools.partial(native_scan.cumsum, axis=axis, reverse=reverse)
            return lax.platform_dependent(x, cpu=cpu, default=portable)

        # Sharded: each device scans its block (one carry exchange if axis is sharded).
        x = scan_blocks(x, axis, reverse, along, layout)
    return x if x.dtype == result else x.astype(result)


def _arguments(x: Any, axis: Any, dtype: Any, reverse: Any, dim: Any, out: Any,
               block: Any) -> tuple[jax.Array, dict[str, Any]]:
    """Validate a call; returns the array and the kernel's static parameters.

    >>> _arguments([1.5], -1, "int32", False, None, None, 8)[1]
    {'axis': 0, 'cast': 'int32', 'reverse': False, 'block': 8}
    """
    reject_out(out, "cumsum")
    axis = resolve_alias("axis", axis, "dim", dim, "cumsum")
    arr = operand(x, "cumsum")
    if arr.dtype.kind not in "biufc" and arr.dtype != jnp.bfloat16:
        raise ContractError(f"cumsum(): dtype {arr.dtype} is not numeric")
    cast = None
    if dtype is not None:
        # Validated and canonicalised without touching the data; the kernel casts.
        cast = jax.eval_shape(functools.partial(cast_dtype, dtype=dtype, op="cumsum"),
                              jax.ShapeDtypeStruct((), arr.dtype)).dtype.name
    if not isinstance(reverse, (bool, np.bool_)):
        raise ContractError(f"cumsum(): reverse must be True or False, got {reverse!r}")
    if block is not None and (isinstance(block, bool) or block < 2
                              or not isinstance(block, (int, np.integer))):
        raise ContractError(f"cumsum(): block must be an int >= 2, got {block!r}")
    if axis is not None:
        # NumPy scans a 0-d array as 1-d, so axis 0 (or -1) is valid there.
        axis = normalize_axis(axis, max(arr.ndim, 1), "cumsum")
        if arr.ndim == 0:
            axis = None
    block = None if block is None else int(block)
    return arr, {"axis": axis, "cast": cast, "reverse": bool(reverse), "block": block}


def cumsum(x: Any, axis: int | None = None, dtype: Any = None, reverse: bool = False, *,
           dim: int | None = None, out: Any = None, block: int | None = None) -> jax.Array:
    """Cumulative sum along ``axis`` (``dim=`` alias), as a blocked triangular einsum.

    ``axis=None`` scans the flattened array (NumPy; PyTorch requires ``dim``).
    ``dtype=`` casts the input first, then scans (PyTorch), and is the result
    dtype (NumPy, jnp and PyTorch: ``dtype="int8"`` wraps). Without it, bool
    and integers narrower than the default integer return it (int32, with x64
    int64; unsigned: uint32/uint64), as NumPy and PyTorch widen them and as
    ``jnp.sum`` does (``jnp.cumsum`` keeps them);
    bfloat16/float16 accumulate in float32 and return in their own dtype. ``reverse=True`` sums from the end
    (``flip(cumsum(flip(x)))``). ``block`` overrides the block length ``L``
    (default :func:`block_length`); see :func:`contract.lower` for the stages.

    >>> cumsum([[5, 6, 7], [1, 2, 3]], axis=0).tolist()
    [[5, 6, 7], [6, 8, 10]]
    >>> cumsum([1, 2, 3], dim=0, reverse=True).tolist()
    [6, 5, 3]
    >>> cumsum([True, True, False]).dtype
    dtype('int32')
    """
    arr, params = _arguments(x, axis, dtype, reverse, dim, out, block)
    # A concrete array's sharding (auto axes too, which the trace hides).
    return call(_kernel, arr, **params, layout=read([arr], auto=True))


@register(cumsum)
def _lower_cumsum(x: Any, axis: int | None = None, dtype: Any = None, reverse: bool = False, *,
                  dim: int | None = None, out: Any = None, block: int | None = None) -> Lowering:
    """The einsum stages of a cumsum call, recorded by tracing it abstractly.

    >>> print(_lower_cumsum(np.ones((2, 100), np.float32), axis=1, block=32))
    cumsum:
      einsum 'pbl->pb'  shapes (2, 4, 32)
      einsum 'pb,bc->pc'  shapes (2, 4), (4, 4)
      einsum 'bl,lm->bm'  shapes (8, 32), (32, 32)
      L=32, rows of B <= 128 blocks; axis 1 of (2, 100) as (P, n) = (2, 100); pad 100 -> 128; accumulate in float32, result float32; block totals, their exclusive scan within each row (B x B strictly triangular), the running sums within each block (L x L triangular) and the carry of whole rows (the same scan, recursively) are added in one fused pass
    """
    arr, params = _arguments(x, axis, dtype, reverse, dim, out, block)
    rev = params["reverse"]
    shape = arr.shape if params["axis"] is not None else (arr.size,)
    ax = params["axis"] or 0
    acc, result = _result_dtype(params["cast"] or arr.dtype, params["cast"])
    if _native(acc, params["block"]):
        return Lowering("cumsum", (), (
            f"native scan kernel (XLA FFI) along axis {ax} of {shape}: one add per element,"
            f" {'from the end, ' if rev else ''}lanes walked side by side, long lanes in chunks"
            f" whose totals are scanned first; accumulate in {acc}"
            f"{' (float64 inside the kernel)' if acc == jnp.float32 else ''}, result {result}"))
    params["block"] = blk = params["block"] or block_length()
    stages: list[tuple[str, tuple[tuple[int, ...], ...]]] = []

    def record(spec: str, *operands: Any) -> jax.Array:
        stages.append((spec, tuple(tuple(o.shape) for o in operands)))
        return _einsum(spec, *operands)

    jax.eval_shape(functools.partial(_kernel, **params, ein=record),
                   jax.ShapeDtypeStruct(arr.shape, arr.dtype))
    n = shape[ax]
    if _by_rows(jax.ShapeDtypeStruct(shape, acc), ax):
        rest = math.prod(shape[ax + 1:])
        return Lowering("cumsum", (), (
            f"integer scan along leading axis {ax} of {shape}: {n} steps of one {rest}-element "
            f"row addition (lax.scan{', reverse' if rev else ''}), exact; accumulate in {acc}, "
            f"result {result}"))
    padded = [f"{len_} -> {r * b * blk}" for len_ in _lengths(n, blk) if len_ > blk
              for r, b in [_rows(len_, blk)] if r * b * blk != len_]
    outer = math.prod(shape[:ax] + shape[ax + 1:])
    notes = (f"L={blk}, rows of B <= {_ROW} blocks; axis {ax} of {shape} as (P, n) = "
             f"({outer}, {n})"
             + ("; axis moved last (a transpose each way)" if ax != len(shape) - 1 else "")
             + (f"; pad {', '.join(padded)}" if padded else "")
             + f"; accumulate in {acc}, result {result}"
             + ("; reverse: lower-triangular matrices" if rev else "")
             + "; block totals, their exclusive scan within each row (B x B strictly"
             " triangular), the running sums within each block (L x L triangular) and the"
             " carry of whole rows (the same scan, recursively) are added in one fused pass")
    return Lowering("cumsum", tuple(stages), notes)


def _lengths(n: int, block: int) -> list[int]:
    """The scanned length at each level of the recursion over rows.

    >>> _lengths(10_000_000, 32)
    [10000000, 2500]
    """
    out = [n]
    while out[-1] > block and _rows(out[-1], block)[0] > 1:
        out.append(_rows(out[-1], block)[0])
    return out
