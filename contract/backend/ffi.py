"""Registering :mod:`contract.native`'s XLA FFI handlers with JAX, once.

>>> registered("contract_gemm", ("f32",)) == (__import__("contract").native.library() is not None)
True
"""

from __future__ import annotations

import jax

from .. import native
from ..caching import memoized

__all__ = ["registered"]


@memoized("native kernel registration", 8)
def registered(prefix: str, suffixes: tuple[str, ...]) -> bool:
    """Register the handlers ``{prefix}_{suffix}`` for the CPU (idempotent), once per
    cache lifetime; False where the native library is not loaded."""
    lib = native.library()
    if lib is None:
        return False
    for suffix in suffixes:
        name = f"{prefix}_{suffix}"
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
    return True
