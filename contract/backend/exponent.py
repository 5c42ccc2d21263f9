"""Overflow-safe contraction (``strip_exponent=True``): the result as
``(mantissa, exponent)``, its value ``mantissa * 10**exponent``, as cotengra's.

Each float operand and each step's intermediate is multiplied, as it is
made, by the power of two that brings its largest magnitude into [0.5, 1),
and the powers are counted in an int32 ``k``: the value carried is
``x * 2**k``. A normalized pair's entries are below the contracted size, so
whatever the network's value no step overflows, nor does its largest entry
underflow.
Powers of two make the rescaling exact (no rounding of the mantissa) and the
count exact (no rounding of a running sum of logarithms); :func:`finish`
turns it into a base-10 exponent once, at the end, and scales the mantissa
to a largest magnitude of 1 (a scalar's mantissa is its sign or phase).

The scales are held constant under differentiation (``lax.stop_gradient``):
``jax.grad`` of a function of the mantissa differentiates ``result *
10**-exponent`` with the exponent fixed, so the mantissa's gradient is the
result's in units of ``10**exponent``, and ``log|mantissa| + exponent *
log(10)`` has the gradient of ``log|result|``.

>>> import numpy as np, contract
>>> x = np.full((2, 2), 1e20, np.float32)
>>> contract.einsum("ij,jk,kl->il", x, x, x).tolist()[0]
[inf, inf]
>>> m, e = contract.einsum("ij,jk,kl->il", x, x, x, strip_exponent=True)
>>> m.tolist()[0], round(e.item(), 4)
([1.0, 1.0], 60.6021)
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ..errors import ContractError
from ..planner import Plan, SlicedPlan

__all__ = ["align", "check", "exponent_dtype", "finish", "rescale"]

# log10(2) split so that k * _LOG10_2_HI is exact in float32 (12 significant
# bits, |k| < 2**24 / 1233): the exponent then carries one rounding, not k's
# multiple of float32's rounding of log10(2).
_LOG10_2_HI = 1233 / 4096
_LOG10_2_LO = math.log10(2) - _LOG10_2_HI


def check(plan: Plan | SlicedPlan, sharded: bool) -> None:
    """Refuse what ``strip_exponent=True`` cannot run: an integer or bool
    result, or a plan sharded over a mesh.

    >>> from contract.spec import parse
    >>> from contract.planner import make_plan
    >>> check(make_plan(parse("i,i->").bind([(3,), (3,)]), ("int32",) * 2, "int32"), False)
    Traceback (most recent call last):
    contract.errors.ContractError: strip_exponent=True needs a floating-point or complex result; einsum 'i,i->' gives int32
    """
    if not jnp.issubdtype(jnp.dtype(plan.result_dtype), jnp.inexact):
        raise ContractError("strip_exponent=True needs a floating-point or complex result; "
                            f"einsum {plan.spec!r} gives {plan.result_dtype}")
    if sharded:
        raise ContractError("strip_exponent is not supported with mesh= yet, nor on a plan "
                            f"its operands' sharding shards (einsum {plan.spec!r})")


def exponent_dtype(result: Any) -> Any:
    """The exponent's dtype for a result dtype: its real part, at least float32
    (a bfloat16 exponent of 100 would be off by 0.5).

    >>> [exponent_dtype(d).name for d in ("bfloat16", "complex64", "float32")]
    ['float32', 'float32', 'float32']
    """
    return jnp.promote_types(_real(result), jnp.float32)


def _real(dtype: Any) -> Any:
    return jnp.finfo(dtype).dtype


def _largest(x: jax.Array) -> jax.Array:
    """The largest magnitude in ``x`` (0 for an empty array), held constant under grad."""
    return jnp.max(jnp.abs(lax.stop_gradient(x)), initial=0)


def _pow2(d: jax.Array, dtype: Any) -> jax.Array:
    """``2.0 ** d`` in the real float ``dtype``, exactly (built from its bits):
    0 below the normal range, the largest power of two above it.

    >>> _pow2(jnp.array([-3, -200, 200]), jnp.float32).tolist()
    [0.125, 0.0, 1.7014118346046923e+38]
    """
    info = jnp.finfo(dtype)
    ints = jnp.dtype(f"int{info.bits}")
    # A biased exponent of 0 with a zero fraction is +0.0.
    biased = jnp.clip(d, info.minexp - 1, info.maxexp - 1).astype(ints) + (info.maxexp - 1)
    return lax.bitcast_convert_type(lax.shift_left(biased, ints.type(info.nmant)), dtype)


def rescale(x: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x * 2**k`` as ``(x', k')`` with ``x'``'s largest magnitude in [0.5, 1)
    where the float range allows; zeros, integers and non-finite values as they are.

    >>> x, k = rescale(jnp.array([3.0, -24.0]), jnp.int32(1))
    >>> x.tolist(), k.item()
    ([0.09375, -0.75], 6)
    """
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return x, k
    real = _real(x.dtype)
    info = jnp.finfo(real)
    _, e = jnp.frexp(_largest(x))  # 0 for 0, inf and nan
    d = jnp.clip(-e, info.minexp, info.maxexp - 1)
    return x * _pow2(d, real), k - d


def align(a: jax.Array, ka: jax.Array, b: jax.Array,
          kb: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``a * 2**ka`` and ``b * 2**kb`` as ``(a', b', k)``, both times ``2**k``
    for the larger of the two exponents: what adding slices needs. An all-zero
    array does not set ``k`` (beside small slices it would flush them to zero).

    >>> a, b, k = align(jnp.array([0.5]), jnp.int32(3), jnp.array([0.75]), jnp.int32(1))
    >>> a.tolist(), b.tolist(), k.item()
    ([0.5], [0.1875], 3)
    """
    k = jnp.where(jnp.any(a != 0), jnp.where(jnp.any(b != 0), jnp.maximum(ka, kb), ka), kb)
    real = _real(a.dtype)
    return a * _pow2(ka - k, real), b * _pow2(kb - k, real), k


def finish(x: jax.Array, k: jax.Array, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """``x * 2**k`` as ``(mantissa, exponent)``: the mantissa in ``dtype`` with a
    largest magnitude of 1, the exponent (base 10) in :func:`exponent_dtype`;
    ``(0, 0.0)`` for an all-zero result.

    >>> m, e = finish(jnp.array([0.5, -0.25]), jnp.int32(10), "float32")
    >>> m.tolist(), round(e.item(), 6)
    ([1.0, -0.5], 2.70927)
    """
    edtype = exponent_dtype(dtype)
    s = _largest(x)
    zero = s == 0
    s = jnp.where(zero, jnp.ones_like(s), s)
    kf = k.astype(edtype)
    exponent = kf * _LOG10_2_HI + (kf * _LOG10_2_LO + jnp.log10(s.astype(edtype)))
    return (x / s).astype(dtype), jnp.where(zero, jnp.zeros((), edtype), exponent)
