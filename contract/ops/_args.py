"""Argument handling shared by the array operations.

NumPy/array-API keywords with PyTorch aliases: ``dim=`` for ``axis=``,
``keepdim=`` for ``keepdims=``; passing both spellings is an error, as is
``out=`` (JAX arrays are immutable).

>>> normalize_axes((-1, 0), 3, "sum")
(0, 2)
>>> resolve_alias("axis", 1, "dim", None, "sum")
1
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ..validate import as_operand, numeric_dtype
from ..errors import ContractError

__all__ = ["resolve_alias", "normalize_axes", "normalize_axis", "reject_out", "operand", "cast_dtype",
           "dtype_arg"]

_UNSET: Any = object()


def resolve_alias(name: str, value: Any, alias: str, alias_value: Any, op: str,
                  default: Any = None) -> Any:
    """Merge a keyword and its PyTorch alias; both given is a ContractError."""
    if value is not None and alias_value is not None:
        raise ContractError(f"{op}() got both {name}= and its alias {alias}=; pass only one")
    if value is not None:
        return value
    return alias_value if alias_value is not None else default


def normalize_axes(axis: Any, ndim: int, op: str) -> tuple[int, ...]:
    """Sorted, non-negative axes; ``None`` means all axes.

    >>> normalize_axes(None, 2, "sum")
    (0, 1)
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    try:
        axes = tuple(axes)
    except TypeError:
        raise ContractError(f"{op}(): axis must be an int, a tuple of ints or None, got {axis!r}") from None
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise ContractError(f"{op}(): axis entries must be ints, got {a!r}")
        if not -ndim <= a < ndim:  # a 0-d array has no axis (jnp; NumPy and torch allow 0)
            raise ContractError(
                f"{op}(): axis {a} is out of range for an array of rank {ndim} "
                + (f"(valid: {-ndim}..{ndim - 1})" if ndim else "(it has no axes: use axis=None)")
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ContractError(f"{op}(): axis {axis!r} names the same axis more than once")
    return tuple(sorted(out))


def normalize_axis(axis: Any, ndim: int, op: str) -> int:
    """One non-negative axis (for ``cumsum`` and friends).

    >>> normalize_axis(-1, 3, "cumsum")
    2
    """
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ContractError(f"{op}(): axis must be a single int, got {axis!r}")
    (a,) = normalize_axes(int(axis), ndim, op)
    return a


def reject_out(out: Any, op: str) -> None:
    """JAX arrays are immutable: ``out=`` cannot be honoured."""
    if out is not None:
        raise ContractError(
            f"{op}(): out= is not supported because JAX arrays are immutable; "
            f"use the return value instead (y = contract.{op}(...))"
        )


def operand(x: Any, op: str) -> jax.Array:
    """Convert the input of an operation; non-arrays raise ContractError."""
    try:
        return as_operand(x, 0)
    except ContractError as e:
        raise ContractError(f"{op}(): {e}") from None


def cast_dtype(x: jax.Array, dtype: Any, op: str) -> jax.Array:
    """``dtype=`` means cast the input first, then compute (PyTorch semantics).

    >>> cast_dtype(jax.numpy.asarray([1.5]), "int32", "cumsum").tolist()
    [1]
    """
    dt = dtype_arg(dtype, op)
    return x if dt is None else x.astype(dt)


def dtype_arg(dtype: Any, op: str) -> np.dtype | None:
    """Validate an op's ``dtype=`` argument: its canonical dtype, or None.

    A 64-bit dtype with x64 off narrows with jnp's warning (:func:`numeric_dtype`).

    >>> dtype_arg("int8", "sum"), dtype_arg(None, "sum")
    (dtype('int8'), None)
    """
    return None if dtype is None else numeric_dtype(dtype, f"{op}(): dtype")
