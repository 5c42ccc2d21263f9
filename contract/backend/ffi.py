"""Registering :mod:`contract.native`'s XLA FFI handlers with JAX, once.

>>> registered("contract_gemm", ("f32",)) == __import__("contract").native.available()
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
    cache lifetime; False where the kernels are not loaded."""
    module = native.kernels()
    if module is None:
        return False
    handlers = module.handlers()
    for suffix in suffixes:
        name = f"{prefix}_{suffix}"
        jax.ffi.register_ffi_target(name, handlers[name], platform="cpu")
    return True
