"""Registering :mod:`contract.native`'s XLA FFI handlers with JAX, once.

>>> registered("contract_gemm", ("f32",)) == __import__("contract").native.available()
True
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import native
from ..caching import memoized

__all__ = ["FLOAT_SUFFIXES", "SUFFIXES", "kernels_usable", "registered"]

# The dtypes the max/min, max-plus and min-plus kernels take, as their names end;
# the log repair and max-plus gradient kernels take the floating ones.
SUFFIXES = {"float32": "f32", "float64": "f64", "int32": "s32", "int64": "s64"}
FLOAT_SUFFIXES = {"float32": "f32", "float64": "f64"}


@memoized("native kernel registration", 16)
def registered(prefix: str, suffixes: tuple[str, ...]) -> bool:
    """Register the handlers ``{prefix}_{suffix}`` for the CPU (idempotent), once per
    cache lifetime; False where the kernels are not loaded."""
    module = native.kernels()
    if module is None:
        return False
    handlers = module.handlers()
    for suffix in suffixes:
        name = f"{prefix}_{suffix}"
        jax.ffi.register_ffi_target(name, handlers[name], platform="cpu")
    return True


def kernels_usable(dtype: Any, *prefixes: str, dtypes: dict[str, str] = SUFFIXES) -> bool:
    """Whether the kernels ``{prefix}_{suffix}`` may run on ``dtype`` here: a
    dtype they take (``dtypes``: name -> suffix), one device (their calls are
    not partitioned), loaded.

    >>> kernels_usable("bfloat16", "contract_max")
    False
    >>> kernels_usable("int32", "contract_logrepair", dtypes=FLOAT_SUFFIXES)
    False
    """
    return (jnp.dtype(dtype).name in dtypes and jax.device_count() == 1
            and all(registered(p, tuple(dtypes.values())) for p in prefixes))
