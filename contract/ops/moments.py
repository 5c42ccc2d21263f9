"""Two-pass statistics lowered to einsums: ``mean``, ``var``, ``std``, ``batch_stats``.

``mean`` is :func:`contract.ops.reduce.sum`'s reduction divided by the
count. ``var`` is two-pass: the mean, then the sum of squared deviations as
the multiply-then-sum einsum ``'abcd,abcd->b'`` — a ``dot_general``, so the
squares are never stored (XLA fuses it with the centring into one pass over
``x``). ``batch_stats`` returns the sum, the mean and the variance from one
compiled program. Axes, ``keepdims``/``keepdim`` and result dtypes follow
:mod:`contract.ops.reduce` (see its docstring).

>>> import contract
>>> contract.mean([[1.0, 2.0], [3.0, 6.0]], axis=0).tolist()
[2.0, 4.0]
>>> contract.var([[1.0, 2.0], [3.0, 6.0]], dim=0, correction=0).tolist()
[1.0, 4.0]
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..api import einsum
from ..errors import ContractError
from ..validate import inexact_dtype
from ._args import dtype_arg, resolve_alias
from ._compiled import positional, run
from .lowering import Lowering, register
from .reduce import (Layout, Reduction, as_dtype, join_notes, keepdims_or_dtype, kept_note,
                     reduction_args, reshaped, sum_result_dtype)

__all__ = ["mean", "var", "std", "batch_stats", "BatchStats"]


# ---------------------------------------------------------------- mean, var, std


def _float_dtypes(name: str) -> tuple[str, str]:
    """(accumulator, result) dtypes of mean/var/std for an input dtype, as ``jnp.mean``.

    >>> _float_dtypes("int8"), _float_dtypes("bfloat16"), _float_dtypes("complex64")
    (('float32', 'float32'), ('float32', 'bfloat16'), ('complex64', 'complex64'))
    """
    result = inexact_dtype(name)
    return ("float32" if result in ("float16", "bfloat16") else result), result


def _real(name: str) -> str:
    """The real counterpart of a complex dtype (the dtype of a variance).

    >>> _real("complex64"), _real("complex128"), _real("bfloat16")
    ('float32', 'float64', 'bfloat16')
    """
    return {"complex64": "float32", "complex128": "float64"}.get(name, name)


def _moment_args(op: str, x: Any, axis: Any, keepdims: Any, dtype: Any, dim: Any,
                 keepdim: Any, out: Any) -> tuple[jax.Array, Layout, str | None, str, str]:
    x, lay = reduction_args(op, x, axis, dim, keepdims, keepdim, out)
    dt = dtype_arg(dtype, op)
    if dt is not None and dt.kind not in "fc" and dt.name != "bfloat16":
        raise ContractError(f"{op}(): dtype={dt} is not a floating or complex dtype; "
                            f"the {op} of integers is a float")
    cast = None if dt is None else dt.name
    acc, result = _float_dtypes(cast or x.dtype.name)
    return x, lay, cast, acc, result


def _mean_of(x: jax.Array, red: Reduction, acc: str, count: int) -> jax.Array:
    # 0 / 0 is NaN, as NumPy's mean of an empty axis.
    return red.apply(as_dtype(x, acc), acc) / count


def _squared_deviations(x: jax.Array, mean: jax.Array, pair: str, kept: tuple[int, ...],
                        acc: str) -> jax.Array:
    """Sum of |x - mean|^2 as a multiply-then-sum einsum (no stored squares)."""
    d = as_dtype(x, acc) - mean.reshape(kept)
    if jnp.issubdtype(d.dtype, jnp.complexfloating):
        re, im = jnp.real(d), jnp.imag(d)
        return einsum(pair, re, re) + einsum(pair, im, im)
    return einsum(pair, d, d, preferred_element_type=acc)


def _correction(op: str, correction: Any, ddof: Any, unbiased: Any = None) -> float:
    """The divisor's correction from ``correction=``, ``ddof=`` or PyTorch's ``unbiased=``."""
    if unbiased is not None:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise ContractError(f"{op}(): unbiased must be True or False, got {unbiased!r}")
        given = "correction=" if correction is not None else "ddof=" if ddof is not None else ""
        if given:
            raise ContractError(f"{op}() got both unbiased= and {given}; pass only one "
                                f"(unbiased=True is correction=1)")
        correction = int(unbiased)
    c = resolve_alias("correction", correction, "ddof", ddof, op, 0)
    if isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)) or c < 0:
        raise ContractError(f"{op}(): correction/ddof must be a non-negative number, got {c!r}")
    return float(c)


def _divide(ss: jax.Array, count: int, correction: float) -> jax.Array:
    """``ss / (N - correction)``; NaN where that is not positive, as ``jnp.var``
    (NumPy and PyTorch give inf there)."""
    if count - correction > 0:
        return ss / (count - correction)
    return jnp.full_like(ss, jnp.nan)


def _mean_args(x: Any, axis: Any = None, keepdims: Any = None, dtype: Any = None, *,
               dim: Any = None, keepdim: Any = None, out: Any = None) -> tuple[list, dict]:
    keepdims, dtype = keepdims_or_dtype("mean", keepdims, dtype)
    x, lay, cast, acc, result = _moment_args("mean", x, axis, keepdims, dtype, dim, keepdim, out)
    return [x], dict(cast=cast, red=lay.reduction(x, cast or x.dtype.name), acc=acc, result=result,
                     count=lay.count, shape=lay.shape)


def _mean_kernel(x: jax.Array, *, cast: str | None, red: Reduction, acc: str, result: str,
                 count: int, shape: tuple[int, ...]) -> jax.Array:
    m = _mean_of(as_dtype(x, cast), red, acc, count)
    return reshaped(m.astype(result), shape)


def mean(x: Any, axis: Any = None, keepdims: bool | None = None, dtype: Any = None, *,
         dim: Any = None, keepdim: bool | None = None, out: Any = None) -> jax.Array:
    """Arithmetic mean over ``axis``: the sum einsum scaled by 1/N.

    The third argument is ``keepdims`` (a bool) or ``dtype`` (a dtype), as
    for :func:`sum`.

    >>> mean([[1, 2], [3, 4]], axis=0).tolist()
    [2.0, 3.0]
    """
    return run(_MEAN_ARGS, _mean_kernel, x, axis, keepdims, dtype, dim, keepdim, out)


_MEAN_ARGS = positional(_mean_args, "dim", "keepdim", "out")


@register(mean)
def _lower_mean(*args: Any, **kwargs: Any) -> Lowering:
    (x,), p = _mean_args(*args, **kwargs)
    return Lowering("mean", (p["red"].stage(tuple(x.shape)),), join_notes(
        p["red"].note(), f"accumulate in {p['acc']}, scale by 1/{p['count']}",
        f"result {p['result']}", kept_note(x, p)))


def _var_args(op: str, x: Any, axis: Any = None, dtype: Any = None, *, keepdims: Any = None,
              correction: Any = None, ddof: Any = None, unbiased: Any = None, dim: Any = None,
              keepdim: Any = None, out: Any = None) -> tuple[list, dict]:
    if isinstance(dtype, (bool, np.bool_)):
        raise ContractError(
            f"{op}(x, dim, {dtype}) is ambiguous: PyTorch reads a bool there as unbiased=, "
            f"NumPy's third argument is dtype=; pass unbiased= or keepdims= by keyword")
    x, lay, cast, acc, result = _moment_args(op, x, axis, keepdims, dtype, dim, keepdim, out)
    if cast is not None and jnp.iscomplexobj(x) and jnp.dtype(cast).kind != "c":
        raise ContractError(f"{op}(): dtype={cast} is real but the input is complex; the {op} "
                            f"of complex values is real already: pass a complex dtype or none")
    # A variance is real; a complex dtype= is still the result dtype, as in jnp.
    real = result if cast is not None else _real(result)
    return [x], dict(cast=cast, red=lay.reduction(x, cast or x.dtype.name, True), pair=lay.pair,
                     kept=lay.kept, acc=acc, result=real, count=lay.count, shape=lay.shape,
                     correction=_correction(op, correction, ddof, unbiased), root=op == "std")


def _var_kernel(x: jax.Array, *, cast: str | None, red: Reduction, pair: str, kept: tuple[int, ...],
                acc: str, result: str, count: int, shape: tuple[int, ...], correction: float,
                root: bool) -> jax.Array:
    x = as_dtype(x, cast)
    ss = _squared_deviations(x, _mean_of(x, red, acc, count), pair, kept, acc)
    v = _divide(ss, count, correction)
    if root:
        v = jnp.sqrt(v)
    return reshaped(v.astype(result), shape)


def var(x: Any, axis: Any = None, dtype: Any = None, *, keepdims: bool | None = None,
        correction: float | None = None, ddof: float | None = None,
        unbiased: bool | None = None, dim: Any = None, keepdim: bool | None = None,
        out: Any = None) -> jax.Array:
    """Variance over ``axis``, centred two-pass; divisor ``N - correction``.

    ``correction=`` (array API, PyTorch) and ``ddof=`` (NumPy) are aliases,
    and PyTorch's ``unbiased=True``/``False`` means correction 1/0; the
    default 0 is the population variance (``jnp.var``; PyTorch's default is
    1). A divisor ``N - correction <= 0`` gives NaN, as ``jnp.var``.
    Positional arguments follow NumPy, ``(x, axis, dtype)``; a bool in third
    place is an error, since PyTorch reads it as ``unbiased``.

    >>> var([1.0, 2.0, 3.0, 4.0]).item(), round(var([1.0, 2.0, 3.0, 4.0], ddof=1).item(), 4)
    (1.25, 1.6667)
    """
    return run(_VAR_ARGS, _var_kernel, x, axis, dtype, keepdims, correction, ddof, unbiased, dim,
               keepdim, out)


_VAR_KEYWORDS = ("keepdims", "correction", "ddof", "unbiased", "dim", "keepdim", "out")
_VAR_ARGS = positional(functools.partial(_var_args, "var"), *_VAR_KEYWORDS)
_STD_ARGS = positional(functools.partial(_var_args, "std"), *_VAR_KEYWORDS)


def std(x: Any, axis: Any = None, dtype: Any = None, *, keepdims: bool | None = None,
        correction: float | None = None, ddof: float | None = None,
        unbiased: bool | None = None, dim: Any = None, keepdim: bool | None = None,
        out: Any = None) -> jax.Array:
    """Standard deviation: the square root of :func:`var` (same arguments).

    >>> std([1.0, 3.0]).item()
    1.0
    """
    return run(_STD_ARGS, _var_kernel, x, axis, dtype, keepdims, correction, ddof, unbiased, dim,
               keepdim, out)


def _lower_var(op: str, *args: Any, **kwargs: Any) -> Lowering:
    (x,), p = _var_args(op, *args, **kwargs)
    shape = (tuple(x.shape),)
    return Lowering(op, (p["red"].stage(shape[0]), (p["pair"], shape * 2)), join_notes(
        p["red"].note(),
        f"pass 1: mean = first einsum / {p['count']}",
        f"pass 2: d = x - mean; second einsum (d, d) / (N - {p['correction']:g}) "
        "(NaN if not positive)",
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
                ddof: Any = None, unbiased: Any = None, dim: Any = None,
                keepdim: Any = None) -> tuple[list, dict]:
    x, lay, _, acc, result = _moment_args("batch_stats", x, axis, keepdims, None, dim, keepdim,
                                          None)
    return [x], dict(red=lay.reduction(x, x.dtype.name, True), pair=lay.pair, kept=lay.kept,
                     count=lay.count, shape=lay.shape, total=sum_result_dtype(x.dtype.name),
                     acc=acc, result=result,
                     correction=_correction("batch_stats", correction, ddof, unbiased))


def _stats_kernel(x: jax.Array, *, red: Reduction, pair: str, kept: tuple[int, ...], count: int,
                  shape: tuple[int, ...], total: str, acc: str, result: str,
                  correction: float) -> BatchStats:
    # For float inputs the sum and mean einsums are the same reduction, which
    # XLA computes once; integer sums stay exact in (u)int32.
    s = red.apply(x, total)
    m = _mean_of(x, red, acc, count)
    v = _divide(_squared_deviations(x, m, pair, kept, acc), count, correction)
    real = _real(result)
    return BatchStats(reshaped(s, shape), reshaped(m.astype(result), shape),
                      reshaped(v.astype(real), shape))


def batch_stats(x: Any, axis: Any = None, keepdims: bool | None = None, *,
                correction: float | None = None, ddof: float | None = None,
                unbiased: bool | None = None, dim: Any = None,
                keepdim: bool | None = None) -> BatchStats:
    """Sum, mean and variance over ``axis`` in one compiled program.

    For an image batch ``(N, C, H, W)``: ``axis=(0, 2, 3)`` per channel,
    ``(1, 2, 3)`` per image, ``None`` overall. ``dim=``/``keepdim=`` are
    PyTorch's names for ``axis``/``keepdims``; ``correction=``/``ddof=``/
    ``unbiased=`` as for :func:`var`. Result dtypes follow :func:`sum` and
    :func:`var`. Min and max are not sums of products, so
    they are not einsums and not included: use ``jnp.min``/``jnp.max``
    (under one ``jax.jit`` with this call XLA reads ``x`` in the same pass).

    >>> s = batch_stats([[1.0, 2.0], [3.0, 6.0]], axis=0)
    >>> s.sum.tolist(), s.mean.tolist(), s.var.tolist()
    ([4.0, 8.0], [2.0, 4.0], [1.0, 4.0])
    """
    return run(_STATS_ARGS, _stats_kernel, x, axis, keepdims, correction, ddof, unbiased, dim,
               keepdim)


_STATS_ARGS = positional(_stats_args, "correction", "ddof", "unbiased", "dim", "keepdim")


@register(batch_stats)
def _lower_stats(*args: Any, **kwargs: Any) -> Lowering:
    (x,), p = _stats_args(*args, **kwargs)
    shape = (tuple(x.shape),)
    return Lowering("batch_stats", (p["red"].stage(shape[0]), (p["pair"], shape * 2)), join_notes(
        p["red"].note(),
        f"sum (result {p['total']}) and mean = sum / {p['count']} from the first einsum",
        "var: second einsum of (x - mean, x - mean)", "one compiled program"))
