"""Validation of user arguments, shared by the einsum entry points, ops and ``contract.jit``.

Each helper either returns the checked value or raises a
:class:`~contract.errors.ContractError` that names the argument.

>>> check_precision("highest")
Precision.HIGHEST
>>> is_concrete(np.ones(2)), is_concrete(2.0), is_concrete(np.array(["a"])), is_concrete([1])
(True, True, False, False)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .caching import LRU
from .errors import ContractError

__all__ = ["as_operand", "check_precision", "is_array", "is_concrete", "is_tracer",
           "numeric_dtype"]

_PRECISIONS = {
    "default": lax.Precision.DEFAULT, "high": lax.Precision.HIGH,
    "highest": lax.Precision.HIGHEST, "fastest": lax.Precision.DEFAULT,
}
# Concrete operand classes jit accepts as they are, learned as they are seen:
# a type lookup costs ~0.1 µs where isinstance(x, jax.Array), an ABC check,
# costs ~1.5 µs. Python scalars are weakly typed, as as_operand makes them.
_SCALARS = frozenset({float, int, complex, bool})
_ARRAY_TYPES: "LRU[bool]" = LRU("array types", 64)


def is_tracer(x: Any) -> bool:
    """Whether ``x`` is a JAX tracer (we are inside ``jit``/``grad``/``vmap``)."""
    return isinstance(x, jax.core.Tracer)


def as_operand(x: Any, n: int) -> jax.Array:
    """Convert one operand to a JAX array or raise a clear :class:`ContractError`.

    >>> as_operand([1, 2], 0).dtype
    dtype('int32')
    >>> as_operand("ab", 1)
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: operand 1 is a str, not an array or number
    """
    if isinstance(x, (jax.Array, jax.core.Tracer)):
        return x
    if isinstance(x, (bool, int, float, complex)):
        return jnp.asarray(x)  # weakly typed, as in jnp: 2.0 * bf16 stays bf16
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError as e:
            raise ContractError(f"operand {n} is not a rectangular array: {e}") from None
        if arr.dtype.kind not in "biufc" and arr.dtype.name != "bfloat16":
            raise ContractError(
                f"operand {n} has dtype {arr.dtype}, which is not numeric"
            )
        return jnp.asarray(arr)
    if _is_torch(x):
        raise ContractError(
            f"operand {n} is a PyTorch {type(x).__name__}; contract takes JAX or NumPy arrays: "
            f"convert it with jnp.from_dlpack(t.detach()) (no copy, any dtype) or "
            f"jnp.asarray(t.numpy(force=True))")
    raise ContractError(f"operand {n} is a {type(x).__name__}, not an array or number")


def _is_torch(x: Any) -> bool:
    """Whether ``x`` is a PyTorch object (a tensor, a dtype), without importing torch.

    The module prefix also covers torchvision/torchaudio tensor subclasses.
    """
    return type(x).__module__.startswith("torch")


def check_precision(precision: Any) -> Any:
    """Validate ``precision=``: None, a ``lax.Precision``, a name or a pair.

    >>> check_precision("highest")
    Precision.HIGHEST
    """
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, str) and precision.lower() in _PRECISIONS:
        return _PRECISIONS[precision.lower()]
    if isinstance(precision, tuple) and len(precision) == 2:
        return tuple(check_precision(p) for p in precision)
    raise ContractError(
        f"unknown precision {precision!r}; use None, a jax.lax.Precision, or one of "
        + ", ".join(repr(k) for k in _PRECISIONS)
    )


def numeric_dtype(dtype: Any, what: str) -> np.dtype:
    """Validate a dtype argument named ``what``; its canonical (x64-aware) dtype.

    >>> numeric_dtype("float64", "dtype")  # x64 is off: float64 means float32
    dtype('float32')
    """
    if _is_torch(dtype):
        name = str(dtype).removeprefix("torch.")
        raise ContractError(f"{what} {dtype} is a PyTorch dtype; pass its name or the JAX "
                            f"dtype instead: {name!r} or jnp.{name}")
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise ContractError(f"{what} {dtype!r} is not a dtype") from None
    if dt.kind not in "biufc" and dt.name != "bfloat16":
        raise ContractError(f"{what} {dt} is not numeric: use a bool, integer, float or "
                            f"complex dtype")
    return jax.dtypes.canonicalize_dtype(dt)


def is_concrete(x: Any) -> bool:
    """Whether ``x`` can go straight to a jitted eager entry: a concrete array or number."""
    t = type(x)
    if t in _SCALARS:
        return True
    if t is np.ndarray:  # non-numeric arrays take the slow path to a ContractError
        return x.dtype.kind in "biufc"
    return is_array(x)


def is_array(x: Any) -> bool:
    """Whether ``x`` is a concrete ``jax.Array`` (not a tracer).

    >>> is_array(jnp.ones(2)), is_array(np.ones(2))
    (True, False)
    """
    t = type(x)
    if _ARRAY_TYPES.get(t):
        return True
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
        _ARRAY_TYPES.put(t, True)
        return True
    return False
