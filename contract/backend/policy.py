"""How this machine runs each step of a plan: the backend policy, in one place.

A plan (:mod:`contract.planner`) is the same on every machine; how each of
its pairwise steps runs here depends on the host: whether contract's FFI
kernels loaded (:mod:`contract.native`), which BLAS they call, and whether the
CPU has AMX tiles. Those facts are read once per process
(:func:`capabilities`); the rules that turn them into a choice are the pure
functions below (:func:`step_dtype`, :func:`real_lowering`,
:func:`complex_lowering`), and :func:`real_step` / :func:`complex_step` are
the one decision that execution (:mod:`.jax`, :mod:`.complex`), ``lower()``,
``explain()`` and the plan report all read, so no two tables can drift.

The report learns these lines through :func:`contract.planner.report.set_machine_lines`,
registered when this module is imported: the planner itself reads no host.

>>> caps = Capabilities(kernels=True, blas="mkl", amx_bf16=False, amx_int8=False)
>>> real_step("float32", 64, 128, 128, 128, caps), real_step("float32", 64, 128, 128, 128, NO_KERNELS)
(Decision(how='blas', dtype='float32'), Decision(how='xla', dtype='float32'))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax

from .. import native
from ..planner import report
from ..planner.costs import KEPT, compute_dtype, prod

if TYPE_CHECKING:
    from ..planner.model import Plan

__all__ = ["HOST_MIN_STEPS", "NO_KERNELS", "Capabilities", "Decision", "capabilities", "complex_lowering",
           "complex_step", "first_call", "lowerings", "machine_lines", "semiring_lowering", "real_lowering",
           "real_step", "step_dtype"]


@dataclass(frozen=True)
class Capabilities:
    """What this process can run besides XLA: the FFI kernels (``kernels``),
    the BLAS they call (``"mkl"``, ``"openblas"`` or None) and the CPU's AMX
    tiles for bfloat16 and int8."""

    kernels: bool
    blas: str | None
    amx_bf16: bool
    amx_int8: bool

    @property
    def mkl(self) -> bool:
        """Whether the kernels call MKL (the only BLAS here with bfloat16/int8 GEMMs)."""
        return self.kernels and self.blas == "mkl"


# A host where only XLA runs (no kernels): what every step falls back to.
NO_KERNELS = Capabilities(kernels=False, blas=None, amx_bf16=False, amx_int8=False)


def capabilities() -> Capabilities:
    """This process's :class:`Capabilities`: process facts that
    :mod:`contract.native` reads once (:func:`contract.clear_caches` keeps them).

    >>> capabilities().kernels == native.available()
    True
    """
    return Capabilities(kernels=native.available(), blas=native.blas(),
                        amx_bf16=native.cpu_has("amx_bf16"), amx_int8=native.cpu_has("amx_int8"))


# Thresholds measured on a 2-core x86 machine (figures in docs/lowering.md): a
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


@dataclass(frozen=True)
class Decision:
    """How a real step runs on CPU: ``how`` is ``"blas"`` (the FFI GEMM kernel)
    or ``"xla"`` (XLA's ``dot_general``), its operands read as ``dtype``."""

    how: str
    dtype: str


def real_step(dtype: str, batch: int, m: int, n: int, k: int,
              caps: Capabilities | None = None) -> Decision:
    """How a real step of these sizes, its operands held in ``dtype``, runs on
    this CPU (``caps``: this process's :func:`capabilities` by default).

    >>> real_step("int32", 64, 128, 128, 128, NO_KERNELS)
    Decision(how='xla', dtype='int32')
    >>> amx = Capabilities(kernels=True, blas="mkl", amx_bf16=False, amx_int8=False)
    >>> real_step("bfloat16", 64, 256, 256, 64, amx)
    Decision(how='blas', dtype='float32')
    """
    caps = caps or capabilities()
    wide = step_dtype(dtype, batch, m, n, k, mkl=caps.mkl, amx=caps.amx_bf16)
    fast = caps.mkl and real_lowering(batch, m, n, k, mkl=True, dtype=wide,
                                      amx_int8=caps.amx_int8) == "blas"
    return Decision("blas" if fast else "xla", wide)


def complex_step(batch: int, m: int, n: int, k: int, highest: bool = True, mixed: bool = False,
                 caps: Capabilities | None = None) -> str:
    """How a complex step runs on this CPU: a :data:`LOWERING_NAMES` key.

    >>> complex_step(32, 128, 128, 128, caps=NO_KERNELS)
    'real'
    """
    caps = caps or capabilities()
    return complex_lowering(batch, m, n, k, highest, mixed, blas=caps.kernels)


def lowerings(plan: "Plan", caps: Capabilities | None = None) -> list[str]:
    """How each step of ``plan`` runs on this CPU, at the default precision:
    ``"real dot"`` (XLA's), a complex lowering, or the BLAS kernel.

    >>> from contract.planner import make_plan
    >>> from contract.spec import parse
    >>> p = make_plan(parse("ij,jk->ik").bind([(512, 512)] * 2), ("complex64",) * 2, "complex64")
    >>> lowerings(p, NO_KERNELS)
    ['1 real GEMM (2x2 real block)']
    """
    sizes = dict(plan.sizes)
    cplx = plan.compute_dtype.startswith("complex")
    real = [not d.startswith("complex") for d in plan.dtypes]
    # The dtype each operand enters the steps in: a KEPT one as it is (a
    # reduction in its prep returns the compute dtype), any other cast.
    kept = [d if d in KEPT and compute_dtype(d) == plan.compute_dtype and not prep.summed
            else plan.compute_dtype for d, prep in zip(plan.dtypes, plan.preps)]
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
            step = real_step(given, *shape, caps=caps)
            how = "1 MKL gemm (XLA FFI kernel)" if step.how == "blas" and not cplx else "real dot"
            out.append(how if step.dtype == given else f"{how} on {given} read as {step.dtype}")
        else:
            out.append(LOWERING_NAMES[complex_step(*shape, mixed=real[i] or real[j], caps=caps)])
        real = real[:i] + real[i + 1 : j] + real[j + 1 :] + [both_real]
        kept = kept[:i] + kept[i + 1 : j] + kept[j + 1 :] + [plan.compute_dtype]  # wide results
    return out


# A first eager call runs on the host (:mod:`.host`) where compiling would
# cost more than the run: XLA's CPU compile costs 3-5 ms a step whatever the
# steps' shapes (368 complex64 steps of a circuit amplitude: 1.7 s, 1.1 s
# with -O0; the run 0.04 s, NumPy's 0.06 s), so from HOST_MIN_STEPS steps
# up it dominates any run under _HOST_MAX_FLOPS (a second of BLAS work on
# 2 cores). Smaller plans keep the compiled path, whose repeat calls are
# what einsum users time; heavier ones are bound by their GEMMs and
# transposes, which XLA runs with all cores.
HOST_MIN_STEPS = 32
_HOST_MAX_FLOPS = 10**10
_HOST_DTYPES = frozenset({"float32", "float64", "complex64", "complex128"})


def first_call(plan: "Plan", backend: str | None = None) -> str | None:
    """Why the first eager call of ``plan`` in this process runs on the host
    (NumPy's BLAS, nothing compiled), or None where it is compiled as every
    later call is. ``backend`` is JAX's default backend (read here by default).

    The rule is fixed: a plain (unsliced) plan of at least 32 steps and at
    most 10^10 FLOPs in one of BLAS's four dtypes, on a CPU backend. The call
    itself must also be eager, on unsharded concrete operands, without
    ``mesh=``, ``strip_exponent`` or a precision below HIGHEST (``api`` checks).

    >>> from contract.planner import make_plan
    >>> from contract.spec import parse
    >>> chain = ",".join(f"{a}{b}" for a, b in zip("abcdefghijklmnopqrstuvwxyzABCDEFGH",
    ...                                            "bcdefghijklmnopqrstuvwxyzABCDEFGHI"))
    >>> p = make_plan(parse(chain + "->aI").bind([(2, 2)] * 34), ("complex64",) * 34, "complex64")
    >>> first_call(p, "cpu")
    'the first eager call runs on the host (NumPy BLAS): 33 steps would cost XLA about 0.1 s to compile'
    >>> first_call(p, "gpu") is None
    True
    """
    if plan.sliced or len(plan.steps) < HOST_MIN_STEPS:
        return None
    if plan.flops > _HOST_MAX_FLOPS or (backend or jax.default_backend()) != "cpu":
        return None
    if not _HOST_DTYPES.issuperset((*plan.dtypes, plan.compute_dtype, plan.result_dtype)):
        return None
    if plan.compute_dtype != plan.result_dtype or plan.semiring != "sum-product":
        return None
    return (f"the first eager call runs on the host (NumPy BLAS): {len(plan.steps)} steps "
            f"would cost XLA about {0.004 * len(plan.steps):.1f} s to compile")


# Semirings whose ⊕ is max or min: their reductions run as extreme.cc's kernel,
# over each run of adjacent axes of more than FOLDED elements; a shorter run (a
# pooling window) stays XLA's reduce, which fuses with the view it reads.
EXTREME_SEMIRINGS = {"max-plus": True, "max-product": True, "min-plus": False}
FOLDED = 16


def semiring_lowering(name: str, kernels: bool) -> str:
    """How each pairwise step of a semiring contraction runs here
    (:mod:`contract.backend.semiring`).

    >>> semiring_lowering("log", False)
    'one GEMM on rescaled exponentials each (entries whose terms underflow recomputed exactly)'
    >>> semiring_lowering("max-plus", True)
    "contract's SIMD max-plus kernel on CPU (XLA FFI), XLA's fused reduce elsewhere"
    """
    if name == "log":
        how = "one GEMM on rescaled exponentials each (entries whose terms underflow recomputed exactly"
        return how + (", on CPU by contract's repair kernel)" if kernels else ")")
    if name in ("max-plus", "min-plus") and kernels:
        return f"contract's SIMD {name} kernel on CPU (XLA FFI), XLA's fused reduce elsewhere"
    return "XLA's fused reduce over a broadcast (no m x k x n temporary)"


def machine_lines(plan: "Plan") -> list[str]:
    """The report's lines on how this machine runs ``plan``: 64-bit dtypes JAX
    narrows here (x64 off), the steps that do not run as XLA's real dot, and
    a note when the FFI kernels cannot run."""
    lowered = lowerings(plan)
    lines = []
    narrowed = {d: jax.dtypes.canonicalize_dtype(d).name
                for d in dict.fromkeys((*plan.dtypes, plan.result_dtype))}
    narrowed = {d: n for d, n in narrowed.items() if d != n}
    if narrowed:
        lines.append("x64           off here: JAX runs " + ", ".join(
            f"{d} as {n}" for d, n in narrowed.items())
            + " (jax.config.update('jax_enable_x64', True) keeps them)")
    if plan.semiring != "sum-product":
        lines.append(f"{plan.semiring} steps {semiring_lowering(plan.semiring, native.available())}")
        lowered = []  # the sum-product lowerings do not apply
    reduced = any(prep.summed for prep in plan.preps)
    if reduced and plan.semiring in EXTREME_SEMIRINGS and native.available():
        lines.append("reductions    of dropped labels: contract's SIMD max/min kernel on CPU over runs "
                     f"of more than {FOLDED} elements, XLA's reduce otherwise")
    if any(how != "real dot" for how in lowered):
        lines.append("CPU lowering  " + ", ".join(
            f"step {k}: {how}" for k, how in enumerate(lowered) if how != "real dot"))
    host = first_call(plan)
    if host:
        lines.append(f"execution     {host}; later calls run compiled")
    if native.status().startswith("unavailable"):  # not when switched off on purpose
        lines.append(f"CPU kernels   {native.status()} (contract doctor says more)")
    return lines


report.set_machine_lines(machine_lines)
