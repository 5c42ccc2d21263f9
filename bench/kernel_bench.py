"""The BLAS GEMM kernel (contract/native.py) against XLA's CPU dot, GEMM by GEMM.

Run: ``python -m bench.kernel_bench [--quick]``. This is the evidence for
which steps contract sends to the kernel: each row is one ``dot_general``,
timed with :func:`bench.common.race` as ``jax.jit`` of ``lax.dot_general``
(XLA's own CPU dot, ``Precision.HIGHEST``), ``jax.jit`` of the kernel's
``gemm_dot`` (OpenBLAS through an XLA FFI custom call, the operands passed
with transpose flags, no copies), and NumPy's ``matmul`` (numpy's own
OpenBLAS build) for reference. The last column is XLA's time over the
kernel's: above 1 the kernel is faster. contract uses the kernel where it
wins by a wide margin on every shape class measured: complex steps; real
float32 steps stay with XLA (the issue's bar is 1.3x on batched, attention
and im2col GEMMs).

A second table times the conv kernel (``contract/conv.cc``) against
contract's own XLA lowerings of the same convolution (the einsums over window
views that run off CPU): the evidence for ``contract.conv`` taking the kernel
on CPU for every float32 shape.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import jax
import numpy as np
from jax import lax

import contract
from contract import native
from contract.backend.blas import gemm_dot, usable
from contract.ops import convolution

from .common import _fmt, machine, parser, race

# (name, batch, m, k, n, dtype): the GEMMs behind the einsum rows of the bench.
SHAPES = [
    ("batched matmul 64x128^3", 64, 128, 128, 128, "float32"),
    ("attention bhqd,bhkd->bhqk (64 heads x 256x64x256)", 64, 256, 64, 256, "float32"),
    ("conv 3x3 im2col GEMM 32768x144x32", 1, 32768, 144, 32, "float32"),
    ("matmul 1024^3", 1, 1024, 1024, 1024, "float32"),
    ("matmul 512^3", 1, 512, 512, 512, "float32"),
    ("complex64 matmul 512^3", 1, 512, 512, 512, "complex64"),
    ("complex64 batched 32x128^3", 32, 128, 128, 128, "complex64"),
    ("complex64 thin 2048x8x2048", 1, 2048, 2048, 8, "complex64"),
]


# (name, x shape, w shape, stride, padding): the bench's conv rows, then the
# layer shapes of a ResNet-style network (stem, pointwise, deep 3x3).
CONVS = [
    ("3x3 pad 1 (32,16,32,32)*(32,16,3,3)", (32, 16, 32, 32), (32, 16, 3, 3), 1, 1),
    ("2x2 stride 2 (32,3,60,60)*(16,3,2,2)", (32, 3, 60, 60), (16, 3, 2, 2), 2, 0),
    ("7x7 stride 2 pad 3 (8,3,224,224)*(64,3,7,7)", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    ("1x1 (8,64,56,56)*(64,64,1,1)", (8, 64, 56, 56), (64, 64, 1, 1), 1, 0),
    ("3x3 pad 1 (8,512,7,7)*(512,512,3,3)", (8, 512, 7, 7), (512, 512, 3, 3), 1, 1),
]


def conv_row(name: str, xshape: tuple[int, ...], wshape: tuple[int, ...], stride: int,
             padding: int, rounds: int) -> str:
    rng = np.random.default_rng(0)
    x = jax.numpy.asarray(rng.standard_normal(xshape).astype(np.float32))
    w = jax.numpy.asarray(rng.standard_normal(wshape).astype(np.float32))
    # Two functions: jax.jit caches a function's trace, which holds the choice.
    kernel = jax.jit(lambda a, b: contract.conv(a, b, stride, padding)).lower(x, w).compile()
    with mock.patch.object(convolution, "usable", lambda dtype: False):  # the lowering off CPU
        xla = jax.jit(lambda a, b: contract.conv(a, b, stride, padding)).lower(x, w).compile()
    if not np.allclose(kernel(x, w), xla(x, w), rtol=1e-4, atol=1e-3):
        raise AssertionError(f"{name}: the conv kernel disagrees with the XLA lowering")
    t = race({"xla": lambda: xla(x, w), "kernel": lambda: kernel(x, w)}, rounds)
    return f"| {name} | {_fmt(t['xla'])} | {_fmt(t['kernel'])} | {t['xla'] / t['kernel']:.2f}x |"


def _operands(batch: int, m: int, k: int, n: int, dtype: str) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for shape in ((batch, m, k), (batch, k, n)):
        x = rng.standard_normal(shape).astype(np.float32)
        if dtype == "complex64":
            x = (x + 1j * rng.standard_normal(shape).astype(np.float32)).astype(np.complex64)
        out.append(x)
    return out


def row(name: str, batch: int, m: int, k: int, n: int, dtype: str, rounds: int) -> str:
    a, b = _operands(batch, m, k, n, dtype)
    ja, jb = jax.numpy.asarray(a), jax.numpy.asarray(b)
    dims = (((2,), (1,)), ((0,), (0,)))
    xla = jax.jit(lambda x, y: lax.dot_general(x, y, dims, precision=lax.Precision.HIGHEST))
    kernel = jax.jit(lambda x, y: gemm_dot(x, y, dims))
    want = np.matmul(a.astype(np.complex128), b.astype(np.complex128))
    got = np.asarray(kernel(ja, jb))
    if not np.allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max()):
        raise AssertionError(f"{name}: the kernel disagrees with numpy")
    fns: dict[str, Any] = {"xla": lambda: xla(ja, jb), "kernel": lambda: kernel(ja, jb),
                           "numpy": lambda: np.matmul(a, b)}
    t = race(fns, rounds)
    return (f"| {name} | {_fmt(t['xla'])} | {_fmt(t['kernel'])} | {_fmt(t['numpy'])} | "
            f"{t['xla'] / t['kernel']:.2f}x |")


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    rounds = min(args.repeat, 3) if args.quick else args.repeat
    print(f"machine: {machine()}; kernel: {native.status()}, BLAS: {native.blas()}\n")
    if not usable("complex64"):
        print("(the kernel is not available here: nothing to measure)")
        return
    print("### BLAS kernel vs XLA's CPU dot (one dot_general each)\n")
    print("| GEMM | XLA dot_general | BLAS kernel | numpy.matmul | XLA / kernel |")
    print("|---|---|---|---|---|")
    for shape in SHAPES[:3] + SHAPES[5:6] if args.quick else SHAPES:
        print(row(*shape, rounds), flush=True)
    if not convolution.usable("float32"):
        return
    print("\n### conv kernel vs contract's XLA lowering of the same conv (float32)\n")
    print("| conv | XLA lowering | conv kernel | XLA / kernel |")
    print("|---|---|---|---|")
    for conv in CONVS[:2] if args.quick else CONVS:
        print(conv_row(*conv, rounds), flush=True)


if __name__ == "__main__":
    main()
