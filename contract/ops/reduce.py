"""Reductions lowered to einsums: ``sum``; ``logsumexp``, ``amax`` and ``amin`` (the
same one-operand einsum in the log, max-plus and min-plus semirings); and the
machinery the statistics share.

:mod:`contract.ops.moments` builds ``mean``, ``var``, ``std`` and
``batch_stats`` on the layouts and reductions here.

A reduction over axes ``(1,)`` of a rank-4 array is the single-operand einsum
``'abcd->acd'`` (the planner sums the labels missing from the output with one
XLA ``reduce``). Eager float32 ``sum``/``mean`` of large
arrays on CPU may be a dot with ones vectors instead (:func:`_gemv`).

Result dtypes are ``jnp``'s, with x64 off and on (the default integer is
int32 or int64, :func:`contract.validate.widened_integer`):

* ``sum``: bool and integers narrower than the default integer of their
  kind accumulate in and return it (x64 off: int8 gives int32, uint8 uint32;
  x64 on: int32 gives int64, uint32 uint64; PyTorch gives int64);
  float16/bfloat16 accumulate in float32 and return their own dtype; other
  dtypes keep theirs. ``dtype=`` casts the input first, then reduces, and is
  the result dtype; a 64-bit ``dtype=`` with x64 off warns as ``jnp`` does.
* ``mean``/``var``/``std``: bool and integers up to 32 bits give float32,
  int64/uint64 (x64 only) float64; float16/bfloat16 accumulate in float32
  and return their own dtype; ``var``/``std`` of complex64 are float32, of
  complex128 float64 (with a complex ``dtype=``, that dtype, as ``jnp``).
* ``logsumexp``: as ``mean`` (``jax.nn.logsumexp``'s dtypes); float16/bfloat16
  computed in float32. ``amax``/``amin``: the input dtype, integers exact.
  Complex inputs are refused (no order; no principal log-sum-exp).

>>> import contract
>>> contract.sum([[1, 2], [3, 4]]).item(), contract.sum([[1, 2], [3, 4]], axis=0).tolist()
(10, [4, 6])
>>> print(contract.lower(contract.sum, [[1, 2], [3, 4]], dim=1))
sum:
  einsum 'ab->a'  shapes (2, 2)
  result int32
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..api import einsum
from ..backend.layout import is_sharded
from ..caching import memoized
from ..errors import ContractError
from ..validate import inexact_dtype, widened_integer
from ._args import dtype_arg, normalize_axes, operand, reject_out, resolve_alias
from ._compiled import letters, positional, run
from .lowering import Lowering, register

__all__ = ["Layout", "Reduction", "amax", "amin", "as_dtype", "join_notes", "keepdims_or_dtype",
           "kept_note", "logsumexp", "reduction_args", "reshaped", "sum", "sum_result_dtype"]

# XLA's CPU reduce of a large float32 array over leading axes runs well below
# memory speed; a dot_general with ones vectors (a GEMV, multi-threaded) does
# not. Jitted programs, jax 0.10.2, 2-core bench machine, best of 11 rotated
# rounds (bench.common.race) in each of 3 processes: sum over axis 0 of
# 4096x4096 1.36-2.04 ms as the GEMV vs 2.15-3.52 ms as the reduce; per
# channel of (512, 3, 64, 64) 440-447 vs 454-462 us, per image 454-476 vs
# 462-482 us, mean per channel 435-447 vs 447-451 us; axis 1 of 4096x4096 ties
# (1174-1197 vs 1188-1190 us). So every partial sum takes the GEMV; full sums
# (two GEMVs: 1.40-2.65 vs 1.48-1.87 ms) and small arrays (dispatch) do not.
# Two-pass programs (var, std, batch_stats) take the mean with the reduce:
# per channel, var 1051-1107 us (jnp.var 1047-1072) vs 1139-1211 us with a
# GEMV mean, batch_stats 1068-1076 vs 1137-1219 us; per image, var 1110-1217
# us with a GEMV mean vs jnp.var's 1071-1097 us.
_GEMV_MIN_SIZE = 1 << 15


class Reduction(NamedTuple):
    """One reduction einsum: ``x`` reshaped to ``groups`` (unless empty), then
    contracted with one ones vector per size in ``ones``; or, in another
    ``semiring``, ``spec`` alone with that semiring's ⊕.

    >>> import jax.numpy as jnp
    >>> Reduction("ab->a").apply(jnp.ones((2, 3)), "float32").tolist()
    [3.0, 3.0]
    >>> Reduction("ab,b->a", (2, 3), (3,)).apply(jnp.ones((2, 3)), "float32").tolist()
    [3.0, 3.0]
    >>> Reduction("ab->a", semiring="max-plus").apply(jnp.eye(2), "float32").tolist()
    [1.0, 1.0]
    """

    spec: str
    groups: tuple[int, ...] = ()
    ones: tuple[int, ...] = ()
    semiring: str = "sum-product"

    def apply(self, x: jax.Array, result: str) -> jax.Array:
        """The reduction of ``x``, accumulated in and returned as ``result`` (in
        another semiring: computed in ``x``'s dtype, then cast to ``result``)."""
        if self.semiring != "sum-product":
            return as_dtype(einsum(self.spec, x, semiring=self.semiring), result)
        if not self.ones:
            return einsum(self.spec, x, preferred_element_type=result)
        ones = (jnp.ones(n, x.dtype) for n in self.ones)
        return einsum(self.spec, x.reshape(self.groups), *ones, preferred_element_type=result)

    def stage(self, shape: tuple[int, ...]) -> tuple[str, tuple[tuple[int, ...], ...]]:
        """The (spec, operand shapes) pair a :class:`Lowering` shows."""
        return self.spec, (self.groups or shape, *((n,) for n in self.ones))

    def note(self) -> str:
        if self.semiring != "sum-product":
            return f"in the {self.semiring} semiring ({_ADD[self.semiring]} over the dropped labels)"
        if not self.ones:
            return ""
        return (f"x viewed as {self.groups}; ones vectors sum the other axes "
                f"(faster than XLA's CPU reduce here)")


def _gemv(shape: tuple[int, ...], axes: tuple[int, ...], op: str) -> Reduction | None:
    """The ones-vector form of a reduction, where it is the faster one."""
    if (jax.default_backend() != "cpu" or math.prod(shape) < _GEMV_MIN_SIZE
            or len(axes) in (0, len(shape))):
        return None
    groups: list[list[Any]] = []  # adjacent axes of one kind merge: [reduced, size]
    for a, d in enumerate(shape):
        if groups and groups[-1][0] == (a in axes):
            groups[-1][1] *= d
        else:
            groups.append([a in axes, d])
    labels = letters(len(groups), op)
    ones = ",".join(l for l, (red, _) in zip(labels, groups) if red)
    out = "".join(l for l, (red, _) in zip(labels, groups) if not red)
    return Reduction(f"{labels},{ones}->{out}", tuple(d for _, d in groups),
                     tuple(d for red, d in groups if red))


@dataclass(frozen=True)
class Layout:
    """Where a reduction of one shape over some axes puts things (the
    statistics of :mod:`.moments` share it with :func:`sum`).

    >>> lay = _layout((2, 3, 4), (0, 2), False, "sum")
    >>> lay.spec, lay.pair, lay.count, lay.kept, lay.shape
    ('abc->b', 'abc,abc->b', 8, (1, 3, 1), (3,))
    """

    spec: str  # 'abcd->b': the reduction itself
    gemv: Reduction | None  # its ones-vector form, where that is faster (float32 only)
    pair: str  # 'abcd,abcd->b': the multiply-then-sum of two same-shape arrays
    count: int  # elements summed into each result entry
    kept: tuple[int, ...]  # the keepdims shape (size 1 on reduced axes)
    shape: tuple[int, ...]  # the shape returned (kept or reduced)

    def reduction(self, x: jax.Array, dtype: str, two_pass: bool = False) -> Reduction:
        """The reduction einsum for ``x`` (cast to ``dtype``).

        Under a trace ``x`` may be an expression XLA would fuse into a
        reduce (``sum(a * b, 0)`` under ``jax.jit``); a dot_general cannot
        fuse its inputs, so the product would be stored: 5x slower on
        4096x4096. The ones-vector form is used only on concrete arrays, and
        not on sharded ones: its reshape would merge sharded axes.

        ``two_pass``: the first pass of a program that reads ``x`` again
        (``var``, ``std``, ``batch_stats``) is always the reduce, which is
        faster there (figures above ``_GEMV_MIN_SIZE``).
        """
        if (two_pass or self.gemv is None or dtype != "float32"
                or isinstance(x, jax.core.Tracer) or is_sharded(x)):
            return Reduction(self.spec)
        return self.gemv


@memoized("reduction layouts")
def _layout(shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool, op: str) -> Layout:
    labels = letters(len(shape), op)
    out = "".join(l for a, l in enumerate(labels) if a not in axes)
    kept = tuple(1 if a in axes else d for a, d in enumerate(shape))
    reduced = tuple(d for a, d in enumerate(shape) if a not in axes)
    return Layout(f"{labels}->{out}", _gemv(shape, axes, op), f"{labels},{labels}->{out}",
                  math.prod(shape[a] for a in axes), kept, kept if keepdims else reduced)


def reduction_args(op: str, x: Any, axis: Any, dim: Any, keepdims: Any, keepdim: Any,
                   out: Any) -> tuple[jax.Array, Layout]:
    """The operand and its :class:`Layout`, from the arguments every reduction
    shares: ``axis``/``dim``, ``keepdims``/``keepdim`` and ``out`` (rejected).

    >>> x, lay = reduction_args("mean", [[1.0, 2.0]], None, 1, None, True, None)
    >>> x.shape, lay.spec, lay.shape
    ((1, 2), 'ab->a', (1, 1))
    """
    reject_out(out, op)
    x = operand(x, op)
    axis = resolve_alias("axis", axis, "dim", dim, op)
    keep = resolve_alias("keepdims", keepdims, "keepdim", keepdim, op, False)
    if not isinstance(keep, (bool, np.bool_)):
        raise ContractError(f"{op}(): keepdims must be True or False, got {keep!r}")
    axes = normalize_axes(axis, x.ndim, op)
    return x, _layout(tuple(x.shape), axes, bool(keep), op)


def keepdims_or_dtype(op: str, keepdims: Any, dtype: Any) -> tuple[Any, Any]:
    """Read the third argument as PyTorch's ``keepdim`` or NumPy's ``dtype``.

    ``sum(x, 1, True)`` is PyTorch's ``(x, dim, keepdim)``; ``sum(x, 1,
    "int32")`` is NumPy's ``(x, axis, dtype)``: a bool (or None) is keepdims,
    anything that names a dtype is the dtype.

    >>> keepdims_or_dtype("sum", True, None), keepdims_or_dtype("sum", "int8", None)
    ((True, None), (None, 'int8'))
    """
    if keepdims is None or isinstance(keepdims, (bool, np.bool_)):
        return keepdims, dtype
    if isinstance(keepdims, (int, float, np.number)) or (
            isinstance(keepdims, str) and not _parses_as_dtype(keepdims)):
        raise ContractError(f"{op}(): keepdims must be True or False, got {keepdims!r} "
                            f"(a dtype there is read as dtype=, NumPy's order x, axis, dtype)")
    if dtype is not None:
        raise ContractError(
            f"{op}(): the third argument {keepdims!r} is a dtype (NumPy's order x, axis, dtype) "
            f"and {dtype!r} follows it; pass dtype= and keepdims= by keyword")
    return None, keepdims


def _parses_as_dtype(name: str) -> bool:
    try:
        jnp.dtype(name)
    except TypeError:
        return False
    return True


def sum_result_dtype(name: str) -> str:
    """The dtype :func:`sum` returns for an input dtype (without ``dtype=``).

    Small integers widen to the default integer of their kind, as in
    ``jnp.sum`` (x64 off: bool, int8 and int16 to int32, uint8 and uint16 to
    uint32; x64 on: every integer to int64 or uint64).

    >>> sum_result_dtype("int8"), sum_result_dtype("uint8"), sum_result_dtype("bfloat16")
    ('int32', 'uint32', 'bfloat16')
    """
    return widened_integer(name)


def as_dtype(x: jax.Array, dtype: str | None) -> jax.Array:
    """``x`` cast to ``dtype`` (a name); unchanged when it has it or ``dtype`` is None.

    >>> as_dtype(jnp.ones(2, "int8"), "float32").dtype, as_dtype(jnp.ones(2), None).dtype
    (dtype('float32'), dtype('float32'))
    """
    return x if dtype is None or x.dtype.name == dtype else x.astype(dtype)


def reshaped(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``x`` reshaped to ``shape``, with no reshape in the program when it has it already.

    >>> reshaped(jnp.ones(2), (2, 1)).shape
    (2, 1)
    """
    return x if x.shape == shape else x.reshape(shape)


def join_notes(*parts: str) -> str:
    """The notes of a :class:`Lowering`, the empty ones left out.

    >>> join_notes("result int32", "", "reshaped to (2, 1)")
    'result int32; reshaped to (2, 1)'
    """
    return "; ".join(p for p in parts if p)


# ---------------------------------------------------------------- sum


def _sum_args(x: Any, axis: Any = None, keepdims: Any = None, dtype: Any = None, *,
              dim: Any = None, keepdim: Any = None, out: Any = None) -> tuple[list, dict]:
    keepdims, dtype = keepdims_or_dtype("sum", keepdims, dtype)
    x, lay = reduction_args("sum", x, axis, dim, keepdims, keepdim, out)
    dt = dtype_arg(dtype, "sum")
    cast = None if dt is None else dt.name
    result = cast if cast is not None else sum_result_dtype(x.dtype.name)
    return [x], dict(cast=cast, red=lay.reduction(x, cast or x.dtype.name), result=result,
                     shape=lay.shape)


def _reduction_kernel(x: jax.Array, *, cast: str | None, red: Reduction, result: str,
                shape: tuple[int, ...]) -> jax.Array:
    return reshaped(red.apply(as_dtype(x, cast), result), shape)


def sum(x: Any, axis: Any = None, keepdims: bool | None = None, dtype: Any = None, *,
        dim: Any = None, keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """Sum over ``axis`` (``dim=``; an int, a tuple or None for all axes).

    ``dtype=`` casts the input first, then reduces (PyTorch semantics).
    Small integers and bool return the default integer of their kind as
    ``jnp.sum`` (x64 off: int32/uint32, x64 on: int64/uint64);
    float16/bfloat16 accumulate in float32. The third argument is
    ``keepdims`` when it is a bool (PyTorch's ``sum(x, dim, keepdim)``) and
    ``dtype`` when it is a dtype (NumPy's ``sum(x, axis, dtype)``).

    >>> sum([[1, 2], [3, 4]], axis=1).tolist()
    [3, 7]
    >>> sum([[1, 2], [3, 4]], dim=0, keepdim=True).tolist()
    [[4, 6]]
    >>> sum([1.5, 2.5], dtype="int32").item()  # cast first: 1 + 2
    3
    >>> sum([[1, 2], [3, 4]], 1, True).tolist(), sum([[1, 2], [3, 4]], 1, "float32").tolist()
    ([[3], [7]], [3.0, 7.0])
    """
    return run(_SUM_ARGS, _reduction_kernel, x, axis, keepdims, dtype, dim, keepdim, out)


# run() gets every argument positionally (no keyword dictionary, a shorter key).
_SUM_ARGS = positional(_sum_args, "dim", "keepdim", "out")


def _lowerer(op: str, args_fn: Callable[..., tuple[list, dict]]) -> Callable[..., Lowering]:
    """The :func:`contract.lower` of a reduction whose args function gives
    ``cast``, ``red``, ``result`` and ``shape`` (:func:`sum`'s kernel's params)."""

    def lower_reduction(*args: Any, **kwargs: Any) -> Lowering:
        (x,), p = args_fn(*args, **kwargs)
        return Lowering(op, (p["red"].stage(tuple(x.shape)),), join_notes(
            p["cast"] and f"input cast to {p['cast']} first", p["red"].note(),
            f"result {p['result']}", kept_note(x, p)))

    return lower_reduction


register(sum)(_lowerer("sum", _sum_args))


def kept_note(x: jax.Array, p: dict) -> str:
    """A note for :func:`contract.lower` when the reduction's result is
    reshaped (keepdims, merged axes): ``p`` holds the op's ``red`` and ``shape``."""
    out = jax.eval_shape(lambda v: p["red"].apply(v, v.dtype.name), x).shape
    if out == p["shape"]:
        return ""
    return f"reshaped to {p['shape']}" + (" (keepdims)" if len(p["shape"]) == x.ndim else "")


# ---------------------------------------------------------------- logsumexp, amax, amin

# ⊕ of each semiring these reductions use, for the notes of contract.lower.
_ADD = {"log": "log-sum-exp", "max-plus": "max", "min-plus": "min"}


def _semiring_args(op: str, ring: str) -> Callable[..., tuple[list, dict]]:
    """The args function of a reduction that is ``ring``'s ⊕: the params of
    :func:`sum`'s kernel, so all of them run (and lower) alike."""

    def args(x: Any, axis: Any = None, keepdims: Any = None, *, dim: Any = None,
             keepdim: Any = None, out: Any = None) -> tuple[list, dict]:
        x, lay = reduction_args(op, x, axis, dim, keepdims, keepdim, out)
        dt = x.dtype
        if dt.kind == "c":
            raise ContractError(f"{op}(): x has dtype {dt.name}; {op} takes real numbers "
                                f"(complex ones have no order or principal log), e.g. x.real")
        if ring == "log":
            # jax.nn.logsumexp's dtypes; half floats computed in float32.
            result = inexact_dtype(dt.name)
            cast = "float32" if result in ("float16", "bfloat16") else result
        else:
            if lay.count == 0:
                empty = [a for a in range(x.ndim) if x.shape[a] == 0 and lay.kept[a] == 1]
                raise ContractError(
                    f"{op}(): x has shape {tuple(x.shape)} and axis {empty[0]} of size 0 is "
                    f"reduced: the {_ADD[ring]} of no elements is undefined (jnp raises "
                    f"ValueError too); reduce non-empty axes only")
            # max of bools is `any` (jnp.max keeps bool); the semiring takes 0/1.
            result, cast = dt.name, ("uint8" if dt.kind == "b" else None)
        cast = None if cast == dt.name else cast
        return [x], dict(cast=cast, red=Reduction(lay.spec, semiring=ring), result=result,
                         shape=lay.shape)

    args.__name__ = f"_{op}_args"
    return args


_LOGSUMEXP_ARGS = _semiring_args("logsumexp", "log")
_AMAX_ARGS = _semiring_args("amax", "max-plus")
_AMIN_ARGS = _semiring_args("amin", "min-plus")


def logsumexp(x: Any, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
              keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """``log(sum(exp(x)))`` over ``axis`` (``dim=``; an int, a tuple, or None for
    all axes), without overflow: the one-operand einsum in the log semiring.

    As ``jax.nn.logsumexp``: integers and bool give float32 (int64 float64),
    float16/bfloat16 are computed in float32 and returned in their dtype, an
    empty reduction is ``-inf``, ``axis=()`` reduces nothing. Complex ``x`` is
    refused. Unlike ``jax.nn.logsumexp``, the gradient (the softmax of ``x``)
    is 0, not NaN, where every term is ``-inf``. The third argument is
    ``keepdims``, as PyTorch's ``logsumexp(x, dim, keepdim)``.

    >>> x = jnp.array([[0.0, 0.0], [1.0, -jnp.inf]], jnp.float32)
    >>> logsumexp(x, dim=1).tolist()
    [0.6931471824645996, 1.0]
    >>> logsumexp(x, 0, True).shape
    (1, 2)
    """
    return run(_LOGSUMEXP_RUN, _reduction_kernel, x, axis, keepdims, dim, keepdim, out)


def amax(x: Any, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
         keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """The maximum over ``axis`` (``dim=``; an int, a tuple, or None for all
    axes): the one-operand einsum in the max-plus semiring.

    As ``jnp.max``: the input dtype (integers exact, bool is ``any``), NaN
    propagates, ties share the gradient evenly, ``axis=()`` reduces nothing
    (PyTorch's ``amax(x, dim=())`` reduces all). Reducing an axis of size 0
    raises :class:`ContractError`; complex ``x`` is refused.

    >>> amax([[1, 5], [7, 2]], dim=1).tolist(), amax([[1, 5], [7, 2]]).item()
    ([5, 7], 7)
    """
    return run(_AMAX_RUN, _reduction_kernel, x, axis, keepdims, dim, keepdim, out)


def amin(x: Any, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
         keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """The minimum over ``axis`` (``dim=``): the one-operand einsum in the
    min-plus semiring; otherwise as :func:`amax` (``jnp.min``'s semantics).

    >>> amin([[1, 5], [7, 2]], 0, True).tolist()
    [[1, 2]]
    """
    return run(_AMIN_RUN, _reduction_kernel, x, axis, keepdims, dim, keepdim, out)


_LOGSUMEXP_RUN = positional(_LOGSUMEXP_ARGS, "dim", "keepdim", "out")
_AMAX_RUN = positional(_AMAX_ARGS, "dim", "keepdim", "out")
_AMIN_RUN = positional(_AMIN_ARGS, "dim", "keepdim", "out")
register(logsumexp)(_lowerer("logsumexp", _LOGSUMEXP_ARGS))
register(amax)(_lowerer("amax", _AMAX_ARGS))
register(amin)(_lowerer("amin", _AMIN_ARGS))
