"""A 2-D convolution as :mod:`contract.native`'s conv kernel on CPU.

The kernel (``conv.cc``) gathers the patches of a block of output rows into a
buffer that stays in cache and multiplies them by the filters with one BLAS
GEMM written straight into the NCHW output, so the input and the output pass
through memory once each (docs/lowering.md has the figures). Only the primal
goes through the kernel: ``custom_jvp`` gives the tangent as the same
convolution in XLA (the caller's lowering, ``xla``), which is linear in the
tangents, so ``grad`` and ``vjp`` transpose XLA's own operations; ``vmap``
adds a batch dimension to both operands, which the kernel treats as groups.

>>> import numpy as np
>>> x, w = np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 2, 2), np.float32)
>>> conv_kernel(x, w, (1, 1), ((0, 0), (0, 0)), None).tolist() if usable(x.dtype) else [[[[4.0, 4.0], [4.0, 4.0]]]]
[[[[4.0, 4.0], [4.0, 4.0]]]]
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp

from .ffi import registered

__all__ = ["conv_kernel", "usable"]

_TARGET = {"float32": "f32", "float64": "f64"}


def usable(dtype: Any) -> bool:
    """Whether a convolution in ``dtype`` may run as the kernel in this process
    (float32 and float64, a single device: a custom call has no sharding rule)."""
    return (jnp.dtype(dtype).name in _TARGET and jax.device_count() == 1
            and registered("contract_conv", tuple(_TARGET.values())))


@partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def conv_kernel(x: jax.Array, w: jax.Array, stride: tuple[int, int],
                padding: tuple[tuple[int, int], tuple[int, int]],
                xla: Callable[[jax.Array, jax.Array], jax.Array] | None) -> jax.Array:
    """``x`` (N, C, H, W) cross-correlated with ``w`` (O, C, kH, kW), ``padding``
    zeros ``(low, high)`` per spatial dim, computed by the kernel; ``xla(x, w)``
    is the same convolution in XLA, for tangents."""
    (n, _, h, wd), (o, _, kh, kw) = x.shape[-4:], w.shape[-4:]
    (top, bottom), (left, right) = padding
    out = ((h + top + bottom - kh) // stride[0] + 1, (wd + left + right - kw) // stride[1] + 1)
    shape = jax.ShapeDtypeStruct((*x.shape[:-4], n, o, *out), x.dtype)
    call = jax.ffi.ffi_call(f"contract_conv_{_TARGET[x.dtype.name]}", shape,
                            vmap_method="broadcast_all")
    # The kernel takes the zeros in front only: it reads the output size from
    # its buffer and every read past the input's end as a zero, so the high
    # padding is implied by ``out``.
    return call(x, w, stride_h=stride[0], stride_w=stride[1], pad_h=top, pad_w=left)


@conv_kernel.defjvp
def _conv_jvp(stride: tuple[int, int], padding: tuple[tuple[int, int], tuple[int, int]],
              xla: Any, primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    x, w = primals
    dx, dw = tangents
    if xla is None:
        raise ValueError("conv_kernel needs its XLA lowering to differentiate")
    return conv_kernel(x, w, stride, padding, xla), xla(dx, w) + xla(x, dw)
