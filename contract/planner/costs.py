"""The cost convention, written once: itemsizes, FLOPs, bytes and peak memory.

Every count in a plan, its report, the slice search and the benchmarks comes
from here:

* **FLOPs**: a pairwise step costs the product of the sizes of every label it
  touches, times 2 when it contracts a label (a multiply and an add, as
  opt_einsum counts) and times 1 when it only multiplies (outer/Hadamard).
  A single-operand reduction costs one add per element read.
* **bytes** are counted in the plan's *compute* dtype (what the arrays hold
  while the plan runs): bfloat16/float16 accumulate in float32, narrow
  integers in (u)int32, bool in int32.
* **peak** is the most the contraction itself holds at once *beyond the
  caller's inputs*: the arrays it makes (a prepared operand whose diagonal is
  taken or labels summed away, each step's result while its inputs are alive,
  a final transpose next to the result it reads) and never less than the
  output. The inputs exist before and after the call whatever the plan, so
  no plan can save them; casts to the compute dtype are not counted. A sliced
  plan holds one slice's copies of the inputs it cuts (``dynamic_slice``
  materialises them) and its arrays, next to the full output accumulator
  (:func:`~contract.planner.slicing.slice_plan`). Budgets
  (``memory_limit``) are compared with this number, on both sides.

>>> compute_dtype("bfloat16"), itemsize("complex64")
('float32', 8)
>>> path_cost([frozenset("ab"), frozenset("bc")], frozenset("ac"), {"a": 2, "b": 3, "c": 4}, [(0, 1)])
24
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from .. import native

if TYPE_CHECKING:
    from .model import Plan, Prep

__all__ = ["KEPT", "Cost", "compute_dtype", "costs", "held", "itemsize", "live_peak", "path_cost",
           "prod", "step_dtype", "step_flops", "complex_lowering", "cpu_lowerings", "real_lowering"]

# numpy's itemsize by dtype name, without importing numpy for ml_dtypes' names.
_ITEMSIZE = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2,
             "bfloat16": 2, "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8,
             "float64": 8, "complex64": 8, "complex128": 16}


def itemsize(dtype: str) -> int:
    """Bytes per element of a dtype name (bfloat16 and the float8 types included).

    >>> itemsize("bfloat16"), itemsize("float8_e4m3fn"), itemsize("int64")
    (2, 1, 8)
    """
    if dtype in _ITEMSIZE:
        return _ITEMSIZE[dtype]
    if dtype.startswith(("float8", "float4", "int4", "uint4", "int2", "uint2")):
        return 1
    import numpy as np

    return np.dtype(dtype).itemsize


# Operand dtypes a contraction step takes as they are, accumulating in their
# compute dtype (the backend's reason: contract/backend/jax.py).
KEPT = frozenset({"bfloat16", "int8"})


def compute_dtype(result: str) -> str:
    """The dtype a contraction accumulates in for a given result dtype.

    >>> compute_dtype("bfloat16"), compute_dtype("int8"), compute_dtype("bool")
    ('float32', 'int32', 'int32')
    >>> compute_dtype("uint16"), compute_dtype("float64")
    ('uint32', 'float64')
    """
    if result in ("bfloat16", "float16") or result.startswith("float8"):
        return "float32"
    if result == "bool":
        return "int32"
    if result in ("int8", "int16"):
        return "int32"
    if result in ("uint8", "uint16"):
        return "uint32"
    return result


def prod(labels: Iterable[str], sizes: dict[str, int]) -> int:
    """Number of elements of an array with these labels.

    >>> prod("ab", {"a": 2, "b": 3})
    6
    """
    return math.prod(sizes[l] for l in labels)


def step_flops(labels: Iterable[str], sizes: dict[str, int], contracts: bool) -> int:
    """FLOPs of one pairwise step touching ``labels`` (see the module docstring).

    >>> step_flops("ijk", {"i": 2, "j": 3, "k": 4}, True), step_flops("ij", {"i": 2, "j": 3}, False)
    (48, 6)
    """
    return prod(labels, sizes) * (2 if contracts else 1)


def path_cost(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
              path: Sequence[Sequence[int]]) -> int:
    """Sum over a path's steps of the size of each step's label union.

    This is FLOPs up to the factor 2 of :func:`step_flops`, the quantity
    path optimizers compare. Entries may name any number of operands.

    >>> path_cost([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 2, "b": 3, "c": 4, "d": 5}, [(1, 2), (0, 1)])
    90
    """
    terms = list(inputs)
    cost = 0
    for entry in path:
        picked = [terms[i] for i in entry]
        terms = [t for i, t in enumerate(terms) if i not in entry]
        union = frozenset().union(*picked)
        cost += prod(union, sizes)
        terms.append(union & (output.union(*terms)))
    return cost


def held(inputs: Sequence[Sequence[str]], preps: Sequence["Prep"], sizes: dict[str, int],
         cut: frozenset[str] = frozenset()) -> list[int]:
    """Elements of each prepared operand that the contraction itself holds.

    A caller's operand used as it is costs nothing (0); one with a diagonal
    taken or labels summed away is a new array of its prepared size; one
    with a label in ``cut`` (a slice of it, copied out by ``dynamic_slice``)
    holds its slice, at the sizes in ``sizes``.

    >>> from contract.planner import Prep
    >>> preps = [Prep(("i",), ("i",), ()), Prep(("j", "k"), (), ())]
    >>> held([("i", "i"), ("j", "k")], preps, {"i": 3, "j": 2, "k": 4})
    [3, 0]
    >>> held([("i", "i"), ("j", "k")], preps, {"i": 3, "j": 2, "k": 4}, frozenset("k"))
    [3, 8]
    """
    return [prod(t, sizes) if cut.intersection(t) else
            prod(p.labels, sizes) if p.diagonal or p.summed else 0
            for t, p in zip(inputs, preps)]


def live_peak(operands: Sequence[int], steps: Sequence[tuple[tuple[int, int], int]],
              output: int, transpose: bool = False) -> int:
    """Peak elements held (the module's *peak*): ``operands`` from :func:`held`,
    then each ``((i, j), out_size)`` step, then an optional final ``transpose``
    to the ``output``-element result; never less than ``output``.

    A step's result is alive together with everything still waiting,
    including its own two inputs (they are freed after it); the transpose's
    result together with the last step's.

    >>> live_peak([0, 0], [((0, 1), 8)], 8), live_peak([6, 0], [((0, 1), 8)], 8, True)
    (8, 16)
    """
    live = list(operands)
    peak = max(sum(live), output)
    for (i, j), size in steps:
        peak = max(peak, sum(live) + size)
        live = live[:i] + live[i + 1 : j] + live[j + 1 :] + [size]
    if transpose:
        peak = max(peak, sum(live) + output)
    return peak


# Thresholds measured on this 2-core machine (figures in docs/lowering.md),
# written here so the report can show the choice the backend makes: a
# side of the GEMM thinner than _MIN_SIDE runs at memory speed either way,
# where splitting the parts only adds a copy of the large operand; Gauss's
# trick wins once each GEMM is large enough to hide its extra adds.
_MIN_SIDE = 32
_MIN_K = 4
_GAUSS_MIN = 128
# The BLAS kernel wins from thin GEMMs up (complex64, m x n x k: 2048x8x2048
# 2.8 ms against XLA's complex dot's 3.8 ms, 4096x16x64 0.18 ms against 0.44);
# a matrix-vector product stays with XLA (2048x1x2048: 1.2 ms, BLAS gemm 2.4).
_BLAS_MIN_SIDE = 4
# Real float steps take the kernel only when it calls MKL, where it measured
# faster than XLA's CPU dot (quiet 2-core run, ms): batched 64x128^3 1.32
# against 2.50, 64 attention heads of 256x64x256 2.40 against 4.97, 1024^3
# 7.28 against 8.10; a thin 32768x144x32 GEMM tied (1.19 against 1.22).
# OpenBLAS lost or tied on all of them (bench/kernel_bench.py).
_MKL_MIN_SIDE = 32
_MKL_MIN_2D = 1024
# bfloat16 x bfloat16 -> float32 (MKL's gemm_bf16bf16f32) against XLA's CPU
# dot, batched (ms, best of two interleaved runs on a noisy 2-core machine
# without AMX): 64 attention heads 256x64x256 5.67 against 8.59, 8x128^3 0.27
# against 0.45, 16x64x256x64 0.33 against 0.44, 64x256x32x256 2.97 against
# 3.78; 64x64^3 tied (0.50 against 0.47). 2-D products tied or better with
# XLA (1024^3 15.1 against 16.2, 512^3 1.87 against 2.03, within the noise),
# so they stay with it.
_BF16_MIN_SIDE = 32
# Without AMX, MKL's bfloat16 GEMM runs on AVX-512 at less than its float32
# speed, so on such CPUs a bfloat16 step the float32 rule sends to the MKL
# kernel reads its operands as float32 instead: the same products (a bfloat16
# product is exact in float32) and the same float32 sums. Measured with torch
# in the process (ms, 2-core machine without AMX): 64 attention heads
# 256x64x256 3.92 against 5.28 (bfloat16 kernel) and 10.5 (XLA), 8x128^3
# 0.43 against 0.54 and 0.60. 2-D products from _BF16_WIDE_2D up read as
# float32 too, XLA's float32 dot beating its bfloat16 one (512^3 1.61
# against 2.31, 1024^3 11.9 against 15.6); smaller ones stay bfloat16 (64^3
# 0.016 against 0.026).
_BF16_WIDE_2D = 256
# int8 x int8 -> int32 (MKL's gemm_s8u8s32, exact) against XLA's CPU dot
# (ms, best of two interleaved runs, 2-core machine without AMX): 512^3 0.33
# against 1.36, 1024^3 2.37 against 9.23, 128^3 0.024 against 0.053,
# 4096x64x64 0.11 against 0.22, batched 32x128^3 0.51 against 1.12 and
# 8x256^3 0.45 against 1.47; 64^3 0.018 against 0.021, and a thin
# 96x48x34816 slower (2.71 against 1.66). On a CPU with AMX int8 tiles XLA's
# dot wins everywhere (2-core machine with AMX, ms): 512^3 0.24 against 0.58,
# 1024^3 0.67 against 2.72, batched 32x128^3 0.24 against 0.69, 64 heads of
# 256x64x256 1.01 against 2.17; so there int8 steps stay with XLA.
_S8_MIN_SIDE = 64


def step_dtype(dtype: str, batch: int, m: int, n: int, k: int, mkl: bool, amx: bool) -> str:
    """The dtype a real step's operands, held in ``dtype``, are multiplied in
    on CPU: ``dtype``, except that bfloat16 reads as float32 where that
    measured faster, on CPUs without AMX (see _BF16_WIDE_2D).

    >>> step_dtype("bfloat16", 64, 256, 256, 64, mkl=True, amx=False)
    'float32'
    >>> step_dtype("bfloat16", 64, 256, 256, 64, mkl=True, amx=True)
    'bfloat16'
    >>> step_dtype("bfloat16", 1, 64, 64, 64, mkl=True, amx=False)
    'bfloat16'
    """
    if dtype != "bfloat16" or amx:
        return dtype
    wide = (real_lowering(batch, m, n, k, mkl=mkl) == "blas"
            or batch == 1 and min(m, n, k) >= _BF16_WIDE_2D)
    return "float32" if wide else dtype


def real_lowering(batch: int, m: int, n: int, k: int, mkl: bool, dtype: str = "float32",
                  amx_int8: bool = False) -> str:
    """How a real step with these sizes, its operands in ``dtype``, is lowered
    on CPU: ``"blas"`` (the GEMM kernel) only where ``mkl`` is its BLAS and
    the step is batched or large, else ``"native"`` (XLA's ``dot_general``).
    bfloat16 operands (float32 accumulation) take the kernel only batched
    (see _BF16_MIN_SIDE), int8 ones (int32 accumulation) with every side at
    least _S8_MIN_SIDE, and not on CPUs with AMX int8 tiles (``amx_int8``).

    >>> real_lowering(64, 128, 128, 128, mkl=True), real_lowering(64, 128, 128, 128, mkl=False)
    ('blas', 'native')
    >>> real_lowering(1, 512, 512, 512, mkl=True)
    'native'
    >>> real_lowering(1, 2048, 2048, 2048, mkl=True, dtype="bfloat16")
    'native'
    >>> real_lowering(1, 512, 512, 512, mkl=True, dtype="int8")
    'blas'
    >>> real_lowering(1, 512, 512, 512, mkl=True, dtype="int8", amx_int8=True)
    'native'
    """
    if not mkl or dtype not in ("float32", "float64", *KEPT):
        return "native"
    if dtype == "bfloat16":
        return "blas" if batch > 1 and min(m, n, k) >= _BF16_MIN_SIDE else "native"
    if dtype == "int8":
        return "blas" if min(m, n, k) >= _S8_MIN_SIDE and not amx_int8 else "native"
    if min(m, n, k) >= _MKL_MIN_SIDE and (batch > 1 or min(m, n, k) >= _MKL_MIN_2D):
        return "blas"
    return "native"


def complex_lowering(batch: int, m: int, n: int, k: int, highest: bool = True,
           mixed: bool = False, blas: bool = False) -> str:
    """How a complex step with these sizes is lowered on CPU (``contract.backend.complex``).

    ``highest`` says the caller wants full accuracy (contract's default);
    ``mixed`` says one operand holds real values; ``blas`` that the BLAS GEMM
    kernel (:mod:`contract.native`) can run it. Plain Python, no JAX: the
    same answer on every machine for the same shapes and options.

    >>> complex_lowering(1, 512, 512, 512, highest=False), complex_lowering(8, 64, 64, 64, mixed=True)
    ('gauss', 'real-mixed')
    >>> complex_lowering(32, 128, 128, 128, blas=True)
    'blas'
    """
    if blas and not mixed and batch and min(m, n) >= _BLAS_MIN_SIDE:
        return "blas"
    if min(m, n) < _MIN_SIDE or k < _MIN_K or batch == 0:
        return "native"
    if mixed:
        return "real-mixed"
    if not highest and min(m, n, k) >= _GAUSS_MIN:
        return "gauss"
    return "real"


# What each complex lowering is, in the report's words.
LOWERING_NAMES = {"native": "native complex dot", "blas": "1 BLAS gemm (XLA FFI kernel)",
                  "real": "1 real GEMM (2x2 real block)",
                  "gauss": "3 real GEMMs (Gauss)", "real-mixed": "real x complex: 1 real GEMM"}


def cpu_lowerings(plan: "Plan") -> list[str]:
    """How each step of ``plan`` is lowered on CPU, at the default precision:
    ``"real dot"`` (XLA's), a complex lowering, or the BLAS kernel.

    >>> from contract.planner import make_plan
    >>> from contract.spec import parse
    >>> p = make_plan(parse("ij,jk->ik").bind([(512, 512)] * 2), ("complex64",) * 2, "complex64")
    >>> cpu_lowerings(p) == [LOWERING_NAMES["blas" if native.available() else "real"]]
    True
    """
    sizes = dict(plan.sizes)
    cplx = plan.compute_dtype.startswith("complex")
    real = [not d.startswith("complex") for d in plan.dtypes]
    # The dtype each operand enters the steps in: a KEPT one as it is (a
    # reduction in its prep returns the compute dtype), any other cast.
    kept = [d if d in KEPT and compute_dtype(d) == plan.compute_dtype and not prep.summed
            else plan.compute_dtype for d, prep in zip(plan.dtypes, plan.preps)]
    blas = native.available()
    mkl = native.blas() == "mkl"
    amx, amx_int8 = native.cpu_has("amx_bf16"), native.cpu_has("amx_int8")
    out = []
    for s in plan.steps:
        i, j = s.operands
        free_l = [l for l in s.lhs if l not in s.rhs]
        free_r = [l for l in s.rhs if l not in s.lhs]
        shape = (prod(s.batch, sizes), prod(free_l, sizes), prod(free_r, sizes),
                 prod(s.contracted, sizes))
        both_real = real[i] and real[j]
        if both_real:
            given = kept[i] if kept[i] == kept[j] else plan.compute_dtype
            dtype = step_dtype(given, *shape, mkl=mkl, amx=amx)
            fast = not cplx and real_lowering(*shape, mkl=mkl, dtype=dtype,
                                              amx_int8=amx_int8) == "blas"
            how = "1 MKL gemm (XLA FFI kernel)" if fast else "real dot"
            out.append(how if dtype == given else f"{how} on {given} read as {dtype}")
        else:
            choice = complex_lowering(*shape, mixed=real[i] or real[j], blas=blas)
            out.append(LOWERING_NAMES[choice])
        real = real[:i] + real[i + 1 : j] + real[j + 1 :] + [both_real]
        kept = kept[:i] + kept[i + 1 : j] + kept[j + 1 :] + [plan.compute_dtype]  # wide results
    return out


@dataclass(frozen=True)
class Cost:
    """What one operation of a plan costs.

    ``name`` is ``"prep 2"`` (operand 2's diagonal/reduction), a step number,
    or ``"final"`` (the closing transpose); ``inputs`` holds the label tuples
    read, ``output`` the labels written. Bytes are in the compute dtype.
    """

    name: str
    inputs: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]
    kind: str
    flops: int
    bytes_read: int
    bytes_written: int
    size: int

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved (0 for pure data movement)."""
        return self.flops / max(self.bytes_read + self.bytes_written, 1)


def costs(plan: "Plan") -> list[Cost]:
    """One :class:`Cost` per operation of a (one-slice) plan, in execution order.

    >>> from contract.planner import make_plan
    >>> from contract.spec import parse
    >>> p = make_plan(parse("ij,jk->ik").bind([(2, 3), (3, 4)]), ("float32",) * 2, "float32")
    >>> [(c.name, c.kind, c.flops) for c in costs(p)]
    [('0', 'GEMM', 48)]
    """
    sizes = dict(plan.sizes)
    item = itemsize(plan.compute_dtype)
    rows = []
    for n, (term, prep) in enumerate(zip(plan.inputs, plan.preps)):
        if prep.summed or prep.diagonal:
            kind = "reduction" if prep.summed else "diagonal"
            # A reduction adds every element it reads once; a diagonal only copies.
            flops = prod(dict.fromkeys(term), sizes) if prep.summed else 0
            rows.append(Cost(f"prep {n}", (term,), prep.labels, kind, flops,
                             prod(term, sizes) * item, prod(prep.labels, sizes) * item,
                             prod(prep.labels, sizes)))
    for k, s in enumerate(plan.steps):
        rows.append(Cost(str(k), (s.lhs, s.rhs), s.output, s.kind, s.flops,
                         (prod(s.lhs, sizes) + prod(s.rhs, sizes)) * item, s.size * item, s.size))
    if plan.final != plan.output:
        n = prod(plan.output, sizes)
        rows.append(Cost("final", (plan.final,), plan.output, "transpose", 0, n * item, n * item, n))
    return rows
