"""Validation of user arguments, shared by the einsum entry points, ops and ``contract.jit``.

Each helper either returns the checked value or raises a
:class:`~contract.errors.ContractError` that names the argument.

>>> check_precision("highest"), check_precision("tensorfloat32"), check_precision(("high", "float32"))
(Precision.HIGHEST, Precision.HIGH, (Precision.HIGH, Precision.HIGHEST))
>>> widened_integer("int8"), inexact_dtype("int16")  # x64 off: the default int is int32
('int32', 'float32')
>>> is_concrete(np.ones(2)), is_concrete(2.0), is_concrete(np.array(["a"])), is_concrete([1])
(True, True, False, False)
"""

from __future__ import annotations

import os
from pathlib import Path
import sys
import warnings
from typing import Any

import jax
import jaxlib
import jax.numpy as jnp
import numpy as np
from jax import lax

from .caching import LearnedSet, memoized
from .errors import ContractError
from .planner.report import brief

__all__ = ["as_operand", "check_precision", "check_strip", "concrete_type", "inexact_dtype",
           "failed_in_jax", "is_array", "is_concrete", "is_tracer", "numeric_dtype", "refused_by_jax",
           "unsupported_keywords",
           "widened_integer"]

# The precision names jax.lax accepts (lax.Precision("float32") is HIGHEST, ...).
_PRECISION_NAMES = ("default", "high", "highest", "fastest", "bfloat16", "bfloat16_3x",
                    "tensorfloat32", "float32")
_ALGORITHMS = (lax.Precision, lax.DotAlgorithm, lax.DotAlgorithmPreset)
# Concrete operand classes jit accepts as they are, learned as they are seen:
# a type lookup costs ~0.1 µs where isinstance(x, jax.Array), an ABC check,
# costs ~1.5 µs. Python scalars are weakly typed, as as_operand makes them.
_SCALARS = frozenset({float, int, complex, bool})
# Types every instance of which is a concrete operand: Python numbers, and the
# concrete jax.Array classes once one is seen (jaxlib has a handful, tracers
# are never added). A set lookup is the whole test on the eager hot path
# (0.05 us per operand, against 0.36 us through an LRU of array types).
_CONCRETE = LearnedSet("concrete types", _SCALARS)
# ``concrete_type(type(x))``: that set's lookup as one C call (no Python frame),
# for the eager hot path; False only means "ask is_concrete".
concrete_type = _CONCRETE.contains


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
    """Validate ``precision=`` as ``jnp.einsum`` does; its canonical, hashable form.

    Accepted: None; a ``lax.Precision``, or its name or alias (``"highest"``,
    ``"float32"``, ``"tensorfloat32"``, ``"bfloat16_3x"``, ``"bfloat16"``,
    ``"fastest"``, ...); a ``lax.DotAlgorithmPreset`` or its name
    (``"BF16_BF16_F32"``); a ``lax.DotAlgorithm``; a pair of precisions or
    names, one per operand. An algorithm the default backend's ``dot_general``
    refuses (on CPU all but a few presets) is a ContractError here, where
    ``jnp`` raises while lowering.

    >>> check_precision("BF16_BF16_F32"), check_precision([lax.Precision.HIGH, "default"])
    (DotAlgorithmPreset.BF16_BF16_F32, (Precision.HIGH, Precision.DEFAULT))
    >>> check_precision("fast")
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: unknown precision 'fast'; use None, a jax.lax.Precision, a jax.lax.DotAlgorithmPreset, a jax.lax.DotAlgorithm, a pair of precisions, or one of 'default', 'high', 'highest', 'fastest', 'bfloat16', 'bfloat16_3x', 'tensorfloat32', 'float32' or a DotAlgorithmPreset name such as 'BF16_BF16_F32'
    """
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, _ALGORITHMS):
        return _runs(precision)
    if isinstance(precision, str):
        # Exact spellings first, as jax reads them ("DEFAULT" is the preset),
        # then any case.
        for name in (precision, precision.lower(), precision.upper()):
            if name in _PRECISION_NAMES:
                return lax.Precision(name)
            if name in lax.DotAlgorithmPreset.__members__:
                return _runs(lax.DotAlgorithmPreset[name])
    elif isinstance(precision, (tuple, list)) and len(precision) == 2 and all(
            isinstance(p, (str, lax.Precision)) for p in precision):
        pair = tuple(check_precision(p) for p in precision)
        if all(isinstance(p, lax.Precision) for p in pair):
            return pair
    raise ContractError(
        f"unknown precision {precision!r}; use None, a jax.lax.Precision, a "
        "jax.lax.DotAlgorithmPreset, a jax.lax.DotAlgorithm, a pair of precisions, or one of "
        + ", ".join(repr(k) for k in _PRECISION_NAMES)
        + " or a DotAlgorithmPreset name such as 'BF16_BF16_F32'"
    )


def _runs(algorithm: Any) -> Any:
    """``algorithm`` if the default backend's ``dot_general`` takes it, else a ContractError."""
    backend = jax.default_backend()
    refused = _refusal(algorithm, backend)
    if refused is not None:
        raise ContractError(f"precision={algorithm} cannot run on {backend}: {refused}")
    return algorithm


@memoized("precision refusals", 64)
def _refusal(algorithm: Any, backend: str) -> str | None:
    """JAX's reason for refusing ``algorithm`` on ``backend``, learned by lowering a
    2x2 float32 dot (a few ms, once per algorithm), or None."""
    x = jax.ShapeDtypeStruct((2, 2), jnp.float32)
    try:
        jax.jit(lambda a, b: lax.dot(a, b, precision=algorithm)).lower(x, x)
    except (ValueError, TypeError, NotImplementedError) as e:
        return str(e).splitlines()[0]
    return None


def numeric_dtype(dtype: Any, what: str, fun: str | None = None, *,
                  narrow: bool = True) -> np.dtype:
    """Validate a dtype argument named ``what``; its canonical (x64-aware) dtype.

    A 64-bit dtype that x64 mode cannot honour warns (a ``UserWarning``) and
    narrows, exactly as ``jnp`` does for an explicitly requested dtype (or
    raises, under ``jax_explicit_x64_dtypes="error"``). ``fun`` names the
    function in the warning (default: the part of ``what`` before ``()``).
    ``narrow=False`` returns the dtype asked for, x64 or not, and warns of
    nothing: what planning needs (a plan is data, not a run).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     numeric_dtype("float64", "sum(): dtype")  # x64 is off: float64 means float32
    dtype('float32')
    >>> print(str(w[0].message)[:72])
    Explicitly requested dtype float64 requested in sum is not available, an
    """
    if _is_torch(dtype):
        name = str(dtype).removeprefix("torch.")
        raise ContractError(f"{what} {dtype} is a PyTorch dtype; pass its name or the JAX "
                            f"dtype instead: {name!r} or jnp.{name}")
    if isinstance(dtype, jax.Array):
        raise ContractError(f"{what} must be a dtype, not an array (use arr.dtype)")
    try:
        dt = jnp.dtype(dtype)
    except (TypeError, ValueError):
        raise ContractError(f"{what} {dtype!r} is not a dtype") from None
    if dt.kind not in "biufc" and dt.name != "bfloat16":
        raise ContractError(f"{what} {dt} is not numeric: use a bool, integer, float or "
                            f"complex dtype")
    canonical = jax.dtypes.canonicalize_dtype(dt)
    if canonical == dt or not narrow:
        return dt
    mode = getattr(jax.config, "jax_explicit_x64_dtypes", None)
    mode = getattr(mode, "name", str(mode)).upper()  # an IntEnum: WARN, ERROR or ALLOW
    if mode == "ALLOW":
        return dt
    fun = fun or what.split("()")[0]
    if mode == "ERROR":
        raise ContractError(
            f"Explicitly requested dtype {dt} requested in {fun} is not available. To enable "
            "more dtypes, set the jax_enable_x64 or allow_explicit_x64_dtypes configuration "
            "options.")
    # jnp's words, so filters written for jnp's warning catch this one too.
    warnings.warn(
        f"Explicitly requested dtype {dt} requested in {fun} is not available, and will be "
        f"truncated to dtype {canonical.name}. To enable more dtypes, set the jax_enable_x64 "
        "configuration option or the JAX_ENABLE_X64 shell environment variable. See "
        "https://github.com/jax-ml/jax#current-gotchas for more.",
        UserWarning, stacklevel=_user_stacklevel())
    return canonical


def widened_integer(name: str) -> str:
    """The dtype ``jnp.sum`` returns for ``name`` (no ``dtype=``): bool and
    integers narrower than the default integer of their kind widen to it.

    The default integer is int32 with x64 off and int64 with it on, so
    ``sum`` of int32 is int32 or int64 as ``jnp.sum`` returns it.

    >>> widened_integer("bool"), widened_integer("uint8"), widened_integer("bfloat16")
    ('int32', 'uint32', 'bfloat16')
    """
    dt = jax.dtypes.canonicalize_dtype(jnp.dtype(name))
    if dt.kind == "b":
        return jax.dtypes.canonicalize_dtype(np.int64).name
    if dt.kind in "iu":
        default = jax.dtypes.canonicalize_dtype(np.int64 if dt.kind == "i" else np.uint64)
        return default.name if dt.itemsize < default.itemsize else dt.name
    return dt.name


def inexact_dtype(name: str) -> str:
    """The dtype ``jnp.mean`` returns for ``name`` (no ``dtype=``): floats keep
    theirs; bool and integers up to 32 bits give float32, 64-bit ones float64.

    >>> inexact_dtype("uint32"), inexact_dtype("bfloat16"), inexact_dtype("complex64")
    ('float32', 'bfloat16', 'complex64')
    """
    dt = jax.dtypes.canonicalize_dtype(jnp.dtype(name))
    if dt.kind in "biu":
        return jax.dtypes.canonicalize_dtype(np.float64 if dt.itemsize == 8 else np.float32).name
    return dt.name


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the user's line, past the frames
    of contract and of JAX (the eager einsum plans while ``jax.jit`` traces)."""
    level, frame = 2, sys._getframe(2)  # 1: numeric_dtype, 2: its caller
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        level, frame = level + 1, frame.f_back
    return level


_INTERNAL = tuple(os.path.dirname(m.__file__) + os.sep for m in (jax, sys.modules[__package__]))


def is_concrete(x: Any) -> bool:
    """Whether ``x`` can go straight to a jitted eager entry: a concrete array or number."""
    t = type(x)
    if concrete_type(t):
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
    if concrete_type(t):
        return t not in _SCALARS
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
        _CONCRETE.add(t)
        return True
    return False


def check_strip(value: Any, mesh: Any = None, out_sharding: Any = None) -> bool:
    """``strip_exponent=value`` as a bool, refused where it cannot run yet.

    >>> check_strip(1)
    Traceback (most recent call last):
    contract.errors.ContractError: strip_exponent must be True or False, got 1
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ContractError(f"strip_exponent must be True or False, got {value!r}")
    if value and mesh is not None:
        raise ContractError("strip_exponent is not supported with mesh= yet")
    if value and out_sharding is not None:
        raise ContractError("strip_exponent is not supported with out_sharding= yet")
    return bool(value)


def unsupported_keywords(kwargs: dict[str, Any]) -> ContractError:
    """NumPy keywords einsum cannot honour (``out=``, ``dtype=``, ``order=``, ...).

    >>> print(unsupported_keywords({"out": [1.0]}))
    einsum() takes only out=None: JAX arrays are immutable; use the returned array
    """
    if "out" in kwargs:
        return ContractError("einsum() takes only out=None: JAX arrays are immutable; "
                             "use the returned array")
    if "dtype" in kwargs:
        return ContractError("einsum() does not take dtype=: cast the operands first, or "
                             "pass preferred_element_type= for the result dtype")
    names = ", ".join(repr(k) for k in kwargs)
    return ContractError(
        f"einsum() got unexpected keyword argument(s) {names}; it takes optimize=, "
        "precision=, preferred_element_type=, memory_limit=, mesh=, out_sharding= and "
        "strip_exponent="
    )


# Where JAX's and jaxlib's own code lives: an error raised there is a refusal
# to translate; one raised anywhere else (contract's code) is ours.
_JAX_CODE = tuple(str(Path(m.__file__).parent) + os.sep for m in (jax, jaxlib))


def refused_by_jax(e: BaseException) -> bool:
    """Whether ``e`` is JAX/XLA refusing a program (raised in JAX's or jaxlib's
    code, or an XLA runtime error), not a bug of contract's own.

    >>> refused_by_jax(ValueError("raised here, in contract"))
    False
    >>> try:
    ...     jax.lax.dot_general(jnp.ones(2), jnp.ones(3), (((0,), (0,)), ((), ())))
    ... except TypeError as e:
    ...     refused_by_jax(e)
    True
    """
    if isinstance(e, jax.errors.JaxRuntimeError):
        return True
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.startswith(_JAX_CODE)


def failed_in_jax(spec: str, precision: Any, e: Exception) -> ContractError:
    """A JAX/XLA error while compiling a plan, with the call's context.

    >>> print(failed_in_jax("ij,jk", "TF32_TF32_F32", ValueError("not supported on CPU")))
    einsum 'ij,jk' with precision='TF32_TF32_F32' failed in JAX: ValueError: not supported on CPU
    """
    what = f"einsum {brief(spec)!r}" + ("" if precision is None else f" with precision={precision!r}")
    return ContractError(f"{what} failed in JAX: {type(e).__name__}: {e}")
