"""An inclusive scan along one axis as :mod:`contract.native`'s CPU scan kernel.

XLA's CPU backend has no scan kernel: ``jnp.cumsum`` is a reduce-window, and
the portable lowering in :mod:`contract.ops.scan` spends ``L`` multiply-adds
per element in triangular products. ``scan.cc`` adds each element once, walks
independent lanes side by side, splits long lanes into chunks whose totals are
scanned first, and shares the work with XLA's intra-op threads; float32
accumulates in float64. The figures are in docs/lowering.md.

:func:`cumsum` calls it through ``jax.ffi.ffi_call`` with the axis counted from
the end, so the leading batch dimension ``vmap`` adds leaves it in place.
Only the primal goes through the kernel: ``custom_jvp`` gives the tangent as
``lax.cumsum``, so ``jvp``, ``grad`` and ``vjp`` work (reverse mode transposes
that). :func:`usable` says when a scan may take this path: the kernel is
loaded, the dtype is one it has, and the process has a single device (a
custom call has no sharding rule). Callers pick it inside
``lax.platform_dependent``'s CPU branch only.

>>> import numpy as np
>>> x = np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3)
>>> cumsum(x, 1, False).tolist() if usable("float32") else [[1.0, 3.0, 6.0], [4.0, 9.0, 15.0]]
[[1.0, 3.0, 6.0], [4.0, 9.0, 15.0]]
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .ffi import registered

__all__ = ["cumsum", "usable"]

_TARGET = {"float32": "f32", "float64": "f64", "int32": "s32", "int64": "s64",
           "uint32": "u32", "uint64": "u64"}


def usable(dtype: Any) -> bool:
    """Whether a scan in ``dtype`` may run as the native kernel in this process.

    >>> usable("complex64") or usable("bfloat16")
    False
    """
    return (jnp.dtype(dtype).name in _TARGET and jax.device_count() == 1
            and registered("contract_cumsum", tuple(_TARGET.values())))


def _call(x: jax.Array, axis: int, reverse: bool) -> jax.Array:
    call = jax.ffi.ffi_call(f"contract_cumsum_{_TARGET[x.dtype.name]}",
                            jax.ShapeDtypeStruct(x.shape, x.dtype), vmap_method="broadcast_all")
    return call(x, axis_from_end=np.int64(x.ndim - 1 - axis), reverse=bool(reverse))


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _differentiable(x: jax.Array, axis: int, reverse: bool) -> jax.Array:
    return _call(x, axis, reverse)


@_differentiable.defjvp
def _scan_jvp(axis: int, reverse: bool, primals: tuple, tangents: tuple) -> tuple:
    (x,), (dx,) = primals, tangents
    return _differentiable(x, axis, reverse), lax.cumsum(dx, axis, reverse=reverse)


def cumsum(x: jax.Array, axis: int, reverse: bool) -> jax.Array:
    """The inclusive cumsum of ``x`` along ``axis`` (from the end if ``reverse``), in ``x``'s dtype.

    Integers wrap as NumPy's do; floating types are differentiable.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return _differentiable(x, axis, reverse)
    return _call(x, axis, reverse)
