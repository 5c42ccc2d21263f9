"""``cumsum`` as a blocked triangular einsum.

The scanned axis ``n`` is cut into rows of ``B`` blocks of length ``L``,
``(R, B, L)``, and three einsums with structured constant operands do the work:

* ``"prbl,lm->prbm"`` with the ``L x L`` upper-triangular ones matrix: every
  block's own running sum;
* ``"prbl->prb"``: the block totals, and ``"prb,bc->prc"`` with the ``B x B``
  *strictly* upper-triangular ones matrix: the sum of the earlier blocks in
  the same row (an exclusive scan of the totals);
* the carry of whole rows: the row totals ``"prb->pr"`` scanned by the same
  function, recursively, then shifted by one.

Their sum is the cumsum; XLA fuses it into one pass that reads the input and
writes the output once. A length that is not a multiple of ``L`` is padded
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
from ..errors import ContractError
from ..plan import compute_dtype
from ._args import cast_dtype, normalize_axis, operand, reject_out, resolve_alias
from ._compiled import call
from .lowering import Lowering, register

__all__ = ["cumsum", "block_length"]

# Block length L per backend. CPU: measured by ``python -m bench.cumsum_bench``
# (the sweep table in docs/operations.md): short blocks keep the L
# multiply-adds per element well under the cost of the memory passes, long
# blocks keep the number of levels down; 32 was the fastest on 1e7 elements
# and on (1024, 4096) rows. GPU/TPU: a guess (not measured): matrix units
# want a wide contraction and the extra flops are free there.
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


def _result_dtype(dtype: Any) -> tuple[Any, Any]:
    """(accumulation dtype, result dtype) of a cumsum over ``dtype``.

    Integers and bool accumulate and return in at least 32 bits (as NumPy and
    PyTorch promote them to the default integer); bfloat16/float16 accumulate
    in float32 and return in their own dtype.

    >>> [str(d) for d in _result_dtype(jnp.dtype("int8"))]
    ['int32', 'int32']
    >>> [str(d) for d in _result_dtype(jnp.dtype("bfloat16"))]
    ['float32', 'bfloat16']
    """
    acc = jnp.dtype(compute_dtype(jnp.dtype(dtype).name))
    return acc, (acc if jnp.dtype(dtype).kind in "biu" else jnp.dtype(dtype))


@functools.lru_cache(maxsize=64)
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
    """Shift an inclusive scan along its last axis by one, filling in zero."""
    shift = [(0, 0, 0)] * (inclusive.ndim - 1) + [(-1, 1, 0) if reverse else (1, -1, 0)]
    return lax.pad(inclusive, jnp.zeros((), inclusive.dtype), shift)


def _scan(x: jax.Array, reverse: bool, block: int, ein: Callable[..., jax.Array]) -> jax.Array:
    """Inclusive scan along the last axis of ``x`` shaped ``(P, n)``.

    The axis becomes ``(R, B, L)``: rows of ``B`` blocks of ``L``. Three
    einsums over the same blocks -- block totals, the exclusive scan of the
    totals within a row (a strictly triangular ``B x B`` matrix) and the
    running sums within each block (``L x L``) -- plus the carry of whole
    rows, scanned recursively, make one expression that XLA fuses into a
    single pass writing the output once.
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
    local = ein(f"p{r}bl,lm->p{r}bm", blocks, _triangle(block, reverse, False, x.dtype.name))
    out = (local + carry[..., None]).reshape(x.shape[0], padded)
    return out[:, :n] if padded != n else out


def _einsum(spec: str, *operands: Any) -> jax.Array:
    """The engine's einsum at full float32 precision (exact for integers)."""
    return einsum(spec, *operands, precision="highest")


def _kernel(x: jax.Array, *, axis: int, reverse: bool, block: int,
            ein: Callable[..., jax.Array] = _einsum) -> jax.Array:
    """Cast to the accumulation dtype, scan ``axis`` as the last of ``(P, n)``, cast back."""
    acc, result = _result_dtype(x.dtype)
    if x.dtype != acc:
        x = x.astype(acc)
    if x.size:
        moved = jnp.moveaxis(x, axis, -1)  # a transpose only when axis is not last
        flat = _scan(moved.reshape(-1, x.shape[axis]), reverse, block, ein)
        x = jnp.moveaxis(flat.reshape(moved.shape), -1, axis)
    return x if x.dtype == result else x.astype(result)


def _arguments(x: Any, axis: Any, dtype: Any, reverse: Any, dim: Any, out: Any,
               block: Any) -> tuple[jax.Array, int, bool, int]:
    """Validate a call; returns (array, axis, reverse, block length)."""
    reject_out(out, "cumsum")
    axis = resolve_alias("axis", axis, "dim", dim, "cumsum")
    arr = cast_dtype(operand(x, "cumsum"), dtype, "cumsum")
    if arr.dtype.kind not in "biufc" and arr.dtype != jnp.bfloat16:
        raise ContractError(f"cumsum(): dtype {arr.dtype} is not numeric")
    if not isinstance(reverse, (bool, np.bool_)):
        raise ContractError(f"cumsum(): reverse must be True or False, got {reverse!r}")
    if block is None:
        block = block_length()
    elif isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 2:
        raise ContractError(f"cumsum(): block must be an int >= 2, got {block!r}")
    if axis is None or arr.ndim == 0:
        # NumPy: axis=None scans the flattened array; a 0-d array becomes 1-d.
        if axis is not None:
            normalize_axis(axis, 0, "cumsum")
        return arr.reshape(-1), 0, bool(reverse), int(block)
    return arr, normalize_axis(axis, arr.ndim, "cumsum"), bool(reverse), int(block)


def cumsum(x: Any, axis: int | None = None, dtype: Any = None, reverse: bool = False, *,
           dim: int | None = None, out: Any = None, block: int | None = None) -> jax.Array:
    """Cumulative sum along ``axis`` (``dim=`` alias), as a blocked triangular einsum.

    ``axis=None`` scans the flattened array (NumPy). ``dtype=`` casts the input
    first, then scans (PyTorch). bool and integers narrower than 32 bits
    return int32 (uint8/uint16: uint32); bfloat16/float16 accumulate in
    float32 and return in their own dtype. ``reverse=True`` sums from the end
    (``flip(cumsum(flip(x)))``). ``block`` overrides the block length ``L``
    (default :func:`block_length`); see :func:`contract.lower` for the stages.

    >>> cumsum([[5, 6, 7], [1, 2, 3]], axis=0).tolist()
    [[5, 6, 7], [6, 8, 10]]
    >>> cumsum([1, 2, 3], dim=0, reverse=True).tolist()
    [6, 5, 3]
    >>> cumsum([True, True, False]).dtype
    dtype('int32')
    """
    arr, ax, rev, blk = _arguments(x, axis, dtype, reverse, dim, out, block)
    return call(_kernel, arr, axis=ax, reverse=rev, block=blk)


@register(cumsum)
def _lower_cumsum(x: Any, axis: int | None = None, dtype: Any = None, reverse: bool = False, *,
                  dim: int | None = None, out: Any = None, block: int | None = None) -> Lowering:
    """The einsum stages of a cumsum call, recorded by tracing it abstractly.

    >>> print(_lower_cumsum(np.ones((2, 100), np.float32), axis=1, block=32))
    cumsum:
      einsum 'pbl->pb'  shapes (2, 4, 32)
      einsum 'pb,bc->pc'  shapes (2, 4), (4, 4)
      einsum 'pbl,lm->pbm'  shapes (2, 4, 32), (32, 32)
      L=32, rows of B <= 128 blocks; axis 1 of (2, 100) as (P, n) = (2, 100); pad 100 -> 128; accumulate in float32, result float32; block totals, their exclusive scan within each row (B x B strictly triangular), the running sums within each block (L x L triangular) and the carry of whole rows (the same scan, recursively) are added in one fused pass
    """
    arr, ax, rev, blk = _arguments(x, axis, dtype, reverse, dim, out, block)
    acc, result = _result_dtype(arr.dtype)
    stages: list[tuple[str, tuple[tuple[int, ...], ...]]] = []

    def record(spec: str, *operands: Any) -> jax.Array:
        stages.append((spec, tuple(tuple(o.shape) for o in operands)))
        return _einsum(spec, *operands)

    jax.eval_shape(functools.partial(_kernel, axis=ax, reverse=rev, block=blk, ein=record),
                   jax.ShapeDtypeStruct(arr.shape, arr.dtype))
    n = arr.shape[ax]
    padded = [f"{len_} -> {r * b * blk}" for len_ in _lengths(n, blk) if len_ > blk
              for r, b in [_rows(len_, blk)] if r * b * blk != len_]
    notes = (f"L={blk}, rows of B <= {_ROW} blocks; axis {ax} of {arr.shape} as (P, n) = "
             f"({arr.size // max(n, 1) if n else 0}, {n})"
             + ("; axis moved last (a transpose each way)" if ax != arr.ndim - 1 else "")
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
