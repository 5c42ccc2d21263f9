"""Reductions lowered to einsums: ``sum``, ``mean``, ``var``, ``std``, ``batch_stats``.

A reduction over axes ``(1,)`` of a rank-4 array is the single-operand einsum
``'abcd->acd'`` (the planner sums the labels missing from the output with one
XLA ``reduce``). ``var`` is two-pass: the mean, then the sum of squared
deviations as the multiply-then-sum einsum ``'abcd,abcd->b'`` — a
``dot_general``, so the squares are never stored (XLA fuses it with the
centring into one pass over ``x``).

Result dtypes (x64 off, so the default integer is int32):

* ``sum``: bool, int8, int16, uint8 and uint16 accumulate and return int32
  (as NumPy and PyTorch promote small integers); float16/bfloat16 accumulate
  in float32 and return their own dtype; other dtypes keep theirs.
  ``dtype=`` casts the input first, then reduces, and is the result dtype.
* ``mean``/``var``/``std``: integer and bool inputs give float32;
  float16/bfloat16 accumulate in float32 and return their own dtype;
  ``var``/``std`` of complex64 are float32.

>>> import contract
>>> contract.sum([[1, 2], [3, 4]]).item(), contract.sum([[1, 2], [3, 4]], axis=0).tolist()
(10, [4, 6])
>>> print(contract.lower(contract.sum, [[1, 2], [3, 4]], dim=1))
sum:
  einsum 'ab->a'  shapes (2, 2)
  result int32
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..api import einsum
from ..errors import ContractError
from ._args import dtype_arg, normalize_axes, operand, reject_out, resolve_alias
from ._compiled import letters, run
from .lowering import Lowering, register

__all__ = ["sum", "mean", "var", "std", "batch_stats", "BatchStats"]

# Integer widths that NumPy/PyTorch widen for a sum (to int64 there; x64 is
# off here, so to int32, the default integer).
_WIDENED = frozenset({"bool", "int8", "int16", "uint8", "uint16"})


@dataclass(frozen=True)
class _Layout:
    """Where a reduction of one shape over some axes puts things."""

    spec: str  # 'abcd->b': the reduction itself
    pair: str  # 'abcd,abcd->b': the multiply-then-sum of two same-shape arrays
    count: int  # elements summed into each result entry
    kept: tuple[int, ...]  # the keepdims shape (size 1 on reduced axes)
    shape: tuple[int, ...]  # the shape returned (kept or reduced)
    keep: bool  # keepdims: the einsum's result is reshaped to ``kept``


@functools.lru_cache(maxsize=1024)
def _layout(shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool, op: str) -> _Layout:
    labels = letters(len(shape), op)
    out = "".join(l for a, l in enumerate(labels) if a not in axes)
    kept = tuple(1 if a in axes else d for a, d in enumerate(shape))
    reduced = tuple(d for a, d in enumerate(shape) if a not in axes)
    return _Layout(f"{labels}->{out}", f"{labels},{labels}->{out}",
                   math.prod(shape[a] for a in axes), kept, kept if keepdims else reduced,
                   keepdims and kept != reduced)


def _common(op: str, x: Any, axis: Any, dim: Any, keepdims: Any, keepdim: Any,
            out: Any) -> tuple[jax.Array, _Layout]:
    """Check the arguments every reduction shares."""
    reject_out(out, op)
    x = operand(x, op)
    axis = resolve_alias("axis", axis, "dim", dim, op)
    keep = resolve_alias("keepdims", keepdims, "keepdim", keepdim, op, False)
    if not isinstance(keep, (bool, np.bool_)):
        raise ContractError(f"{op}(): keepdims must be True or False, got {keep!r}")
    axes = normalize_axes(axis, x.ndim, op)
    return x, _layout(tuple(x.shape), axes, bool(keep), op)


def sum_result_dtype(name: str) -> str:
    """The dtype :func:`sum` returns for an input dtype (without ``dtype=``).

    >>> sum_result_dtype("uint8"), sum_result_dtype("bfloat16")
    ('int32', 'bfloat16')
    """
    return "int32" if name in _WIDENED else name


def _float_dtypes(name: str) -> tuple[str, str]:
    """(accumulator, result) dtypes of mean/var/std for an input dtype."""
    if name in ("float16", "bfloat16"):
        return "float32", name
    if name in ("float32", "complex64"):
        return name, name
    return "float32", "float32"  # bool and integers


def _name(x: Any) -> str:
    return jnp.dtype(x.dtype).name


def _cast(x: jax.Array, dtype: str | None) -> jax.Array:
    return x if dtype is None or _name(x) == dtype else x.astype(dtype)


def _reshape(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return x if x.shape == shape else x.reshape(shape)


def _notes(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# ---------------------------------------------------------------- sum


def _sum_args(x: Any, axis: Any = None, keepdims: Any = None, dtype: Any = None, *,
              dim: Any = None, keepdim: Any = None, out: Any = None) -> tuple[list, dict]:
    x, lay = _common("sum", x, axis, dim, keepdims, keepdim, out)
    dt = dtype_arg(dtype, "sum")
    cast = None if dt is None else dt.name
    result = cast if cast is not None else sum_result_dtype(_name(x))
    return [x], dict(cast=cast, spec=lay.spec, result=result, shape=lay.shape)


def _sum_kernel(x: jax.Array, *, cast: str | None, spec: str, result: str,
                shape: tuple[int, ...]) -> jax.Array:
    y = einsum(spec, _cast(x, cast), preferred_element_type=result)
    return _reshape(y, shape)


def sum(x: Any, axis: Any = None, keepdims: bool | None = None, dtype: Any = None, *,
        dim: Any = None, keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """Sum over ``axis`` (``dim=``; an int, a tuple or None for all axes).

    ``dtype=`` casts the input first, then reduces (PyTorch semantics).
    Small integers and bool return int32; float16/bfloat16 accumulate in
    float32.

    >>> sum([[1, 2], [3, 4]], axis=1).tolist()
    [3, 7]
    >>> sum([[1, 2], [3, 4]], dim=0, keepdim=True).tolist()
    [[4, 6]]
    >>> sum([1.5, 2.5], dtype="int32").item()  # cast first: 1 + 2
    3
    """
    return run(_sum_args, _sum_kernel, x, axis, keepdims, dtype, dim=dim, keepdim=keepdim,
               out=out)


@register(sum)
def _lower_sum(*args: Any, **kwargs: Any) -> Lowering:
    (x,), p = _sum_args(*args, **kwargs)
    return Lowering("sum", ((p["spec"], (tuple(x.shape),)),), _notes(
        p["cast"] and f"input cast to {p['cast']} first", f"result {p['result']}",
        _kept(p)))


def _kept(p: dict) -> str:
    reduced = len(p["spec"].split("->")[1]) != len(p["shape"])
    return f"reshaped to {p['shape']} (keepdims)" if reduced else ""


# ---------------------------------------------------------------- mean, var, std


def _moment_args(op: str, x: Any, axis: Any, keepdims: Any, dtype: Any, dim: Any,
                 keepdim: Any, out: Any) -> tuple[jax.Array, _Layout, str | None, str, str]:
    x, lay = _common(op, x, axis, dim, keepdims, keepdim, out)
    dt = dtype_arg(dtype, op)
    if dt is not None and dt.kind not in "fc" and dt.name != "bfloat16":
        raise ContractError(f"{op}(): dtype={dt} is not a floating or complex dtype; "
                            f"the {op} of integers is a float")
    cast = None if dt is None else dt.name
    acc, result = _float_dtypes(cast or _name(x))
    return x, lay, cast, acc, result


def _mean_of(x: jax.Array, spec: str, acc: str, count: int) -> jax.Array:
    # 0 / 0 is NaN, as NumPy's mean of an empty axis.
    return einsum(spec, _cast(x, acc), preferred_element_type=acc) / count


def _squared_deviations(x: jax.Array, mean: jax.Array, pair: str, kept: tuple[int, ...],
                        acc: str) -> jax.Array:
    """Sum of |x - mean|^2 as a multiply-then-sum einsum (no stored squares)."""
    d = _cast(x, acc) - mean.reshape(kept)
    if jnp.issubdtype(d.dtype, jnp.complexfloating):
        re, im = jnp.real(d), jnp.imag(d)
        return einsum(pair, re, re) + einsum(pair, im, im)
    return einsum(pair, d, d, preferred_element_type=acc)


def _correction(op: str, correction: Any, ddof: Any) -> float:
    c = resolve_alias("correction", correction, "ddof", ddof, op, 0)
    if isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)) or c < 0:
        raise ContractError(f"{op}(): correction/ddof must be a non-negative number, got {c!r}")
    return float(c)


def _mean_args(x: Any, axis: Any = None, keepdims: Any = None, dtype: Any = None, *,
               dim: Any = None, keepdim: Any = None, out: Any = None) -> tuple[list, dict]:
    x, lay, cast, acc, result = _moment_args("mean", x, axis, keepdims, dtype, dim, keepdim, out)
    return [x], dict(cast=cast, spec=lay.spec, acc=acc, result=result, count=lay.count,
                     shape=lay.shape)


def _mean_kernel(x: jax.Array, *, cast: str | None, spec: str, acc: str, result: str,
                 count: int, shape: tuple[int, ...]) -> jax.Array:
    m = _mean_of(_cast(x, cast), spec, acc, count)
    return _reshape(m.astype(result), shape)


def mean(x: Any, axis: Any = None, keepdims: bool | None = None, dtype: Any = None, *,
         dim: Any = None, keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """Arithmetic mean over ``axis``: the sum einsum scaled by 1/N.

    >>> mean([[1, 2], [3, 4]], axis=0).tolist()
    [2.0, 3.0]
    """
    return run(_mean_args, _mean_kernel, x, axis, keepdims, dtype, dim=dim, keepdim=keepdim,
               out=out)


@register(mean)
def _lower_mean(*args: Any, **kwargs: Any) -> Lowering:
    (x,), p = _mean_args(*args, **kwargs)
    return Lowering("mean", ((p["spec"], (tuple(x.shape),)),), _notes(
        f"accumulate in {p['acc']}, scale by 1/{p['count']}", f"result {p['result']}",
        _kept(p)))


def _var_args(op: str, x: Any, axis: Any = None, keepdims: Any = None, dtype: Any = None, *,
              correction: Any = None, ddof: Any = None, dim: Any = None, keepdim: Any = None,
              out: Any = None) -> tuple[list, dict]:
    x, lay, cast, acc, result = _moment_args(op, x, axis, keepdims, dtype, dim, keepdim, out)
    real = "float32" if result == "complex64" else result
    return [x], dict(cast=cast, spec=lay.spec, pair=lay.pair, kept=lay.kept, acc=acc,
                     result=real, count=lay.count, shape=lay.shape,
                     correction=_correction(op, correction, ddof), root=op == "std")


_VAR_ARGS = functools.partial(_var_args, "var")
_STD_ARGS = functools.partial(_var_args, "std")


def _var_kernel(x: jax.Array, *, cast: str | None, spec: str, pair: str, kept: tuple[int, ...],
                acc: str, result: str, count: int, shape: tuple[int, ...], correction: float,
                root: bool) -> jax.Array:
    x = _cast(x, cast)
    ss = _squared_deviations(x, _mean_of(x, spec, acc, count), pair, kept, acc)
    v = ss / max(count - correction, 0.0)
    if root:
        v = jnp.sqrt(v)
    return _reshape(v.astype(result), shape)


def var(x: Any, axis: Any = None, keepdims: bool | None = None, dtype: Any = None, *,
        correction: float | None = None, ddof: float | None = None, dim: Any = None,
        keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """Variance over ``axis``, centred two-pass; divisor ``N - correction``.

    ``correction=`` (array API, PyTorch) and ``ddof=`` (NumPy) are aliases;
    the default 0 is the population variance, 1 the sample variance.

    >>> var([1.0, 2.0, 3.0, 4.0]).item(), round(var([1.0, 2.0, 3.0, 4.0], ddof=1).item(), 4)
    (1.25, 1.6667)
    """
    return run(_VAR_ARGS, _var_kernel, x, axis, keepdims, dtype, correction=correction,
               ddof=ddof, dim=dim, keepdim=keepdim, out=out)


def std(x: Any, axis: Any = None, keepdims: bool | None = None, dtype: Any = None, *,
        correction: float | None = None, ddof: float | None = None, dim: Any = None,
        keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """Standard deviation: the square root of :func:`var` (same arguments).

    >>> std([1.0, 3.0]).item()
    1.0
    """
    return run(_STD_ARGS, _var_kernel, x, axis, keepdims, dtype, correction=correction,
               ddof=ddof, dim=dim, keepdim=keepdim, out=out)


def _lower_var(op: str, *args: Any, **kwargs: Any) -> Lowering:
    (x,), p = _var_args(op, *args, **kwargs)
    shape = (tuple(x.shape),)
    return Lowering(op, ((p["spec"], shape), (p["pair"], shape * 2)), _notes(
        f"pass 1: mean = first einsum / {p['count']}",
        f"pass 2: d = x - mean; second einsum (d, d) / max(N - {p['correction']:g}, 0)",
        "sqrt" if p["root"] else "", f"accumulate in {p['acc']}, result {p['result']}"))


register(var)(functools.partial(_lower_var, "var"))
register(std)(functools.partial(_lower_var, "std"))


# ---------------------------------------------------------------- batch_stats


class BatchStats(NamedTuple):
    """Sum, mean and (population or corrected) variance over the same axes."""

    sum: jax.Array
    mean: jax.Array
    var: jax.Array


def _stats_args(x: Any, axis: Any = None, keepdims: Any = None, *, correction: Any = None,
                ddof: Any = None, dim: Any = None, keepdim: Any = None) -> tuple[list, dict]:
    x, lay, _, acc, result = _moment_args("batch_stats", x, axis, keepdims, None, dim, keepdim,
                                          None)
    return [x], dict(spec=lay.spec, pair=lay.pair, kept=lay.kept, count=lay.count,
                     shape=lay.shape, total=sum_result_dtype(_name(x)), acc=acc, result=result,
                   correction=_correction("batch_stats", correction, ddof))


def _stats_kernel(x: jax.Array, *, spec: str, pair: str, kept: tuple[int, ...], count: int,
                  shape: tuple[int, ...], total: str, acc: str, result: str,
                  correction: float) -> BatchStats:
    # For float inputs the sum and mean einsums are the same reduce, which
    # XLA computes once; integer sums stay exact in int32.
    s = einsum(spec, x, preferred_element_type=total)
    m = _mean_of(x, spec, acc, count)
    v = _squared_deviations(x, m, pair, kept, acc) / max(count - correction, 0.0)
    real = "float32" if result == "complex64" else result
    return BatchStats(_reshape(s, shape), _reshape(m.astype(result), shape),
                      _reshape(v.astype(real), shape))


def batch_stats(x: Any, axis: Any = None, keepdims: bool | None = None, *,
                correction: float | None = None, ddof: float | None = None, dim: Any = None,
                keepdim: bool | None = None) -> BatchStats:
    """Sum, mean and variance over ``axis`` in one compiled program.

    For an image batch ``(N, C, H, W)``: ``axis=(0, 2, 3)`` per channel,
    ``(1, 2, 3)`` per image, ``None`` overall. Result dtypes follow
    :func:`sum` and :func:`var`. Min and max are not sums of products, so
    they are not einsums and not included: use ``jnp.min``/``jnp.max``
    (under one ``jax.jit`` with this call XLA reads ``x`` in the same pass).

    >>> s = batch_stats([[1.0, 2.0], [3.0, 6.0]], axis=0)
    >>> s.sum.tolist(), s.mean.tolist(), s.var.tolist()
    ([4.0, 8.0], [2.0, 4.0], [1.0, 4.0])
    """
    return run(_stats_args, _stats_kernel, x, axis, keepdims, correction=correction, ddof=ddof,
               dim=dim, keepdim=keepdim)


@register(batch_stats)
def _lower_stats(*args: Any, **kwargs: Any) -> Lowering:
    (x,), p = _stats_args(*args, **kwargs)
    shape = (tuple(x.shape),)
    return Lowering("batch_stats", ((p["spec"], shape), (p["pair"], shape * 2)), _notes(
        f"sum (result {p['total']}) and mean = sum / {p['count']} from the first einsum",
        "var: second einsum of (x - mean, x - mean)", "one compiled program"))
