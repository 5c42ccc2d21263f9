"""contract's native CPU kernels, built on first use: a batched BLAS GEMM and a scan.

``gemm.cc`` and ``scan.cc`` (next to this file) are XLA FFI handlers, compiled
on first use into one library with the machine's C++ compiler against the FFI
headers jaxlib installs, into ``$XDG_CACHE_HOME/contract`` (or
``~/.cache/contract``), keyed by the sources and the jaxlib version, so later
processes only load it. No BLAS is linked: the GEMM routines' addresses are
read from SciPy's ``scipy.linalg.cython_blas`` capsules (OpenBLAS in SciPy's
wheels), or from MKL's ``libmkl_rt`` where the ``mkl`` wheel is installed
(``pip install contract[mkl]``), and handed to the library once it is loaded.

Why: XLA's CPU backend runs a complex ``dot`` several times slower than
OpenBLAS's ``cgemm``, and it has no scan kernel, so a cumsum costs it a
reduce-window or our triangular products where one add per element would do
(docs/lowering.md has the figures). Complex GEMM steps on CPU go through
:mod:`contract.backend.blas`, cumsums through :mod:`contract.backend.scan`.
Everything degrades cleanly: no compiler, no SciPy, a failed build or
``CONTRACT_NATIVE=0`` leave :func:`available` False and contract lowers those
steps with XLA's own operations, as before; :func:`status` says why.

This module imports no JAX (the planner's report asks it which lowering a
step gets).

>>> status() in ("available", "off (CONTRACT_NATIVE=0)") or status().startswith("unavailable")
True
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from .caching import memoized

__all__ = ["BF16_ROUTINE", "BLAS_ENV", "ENV", "LOCAL_THREADS", "ROUTINES", "S8_ROUTINE",
           "available", "blas", "cpu_has", "library", "status"]

ENV = "CONTRACT_NATIVE"
BLAS_ENV = "CONTRACT_BLAS"
SOURCES = tuple(Path(__file__).with_name(name)
                for name in ("gemm.cc", "conv.cc", "scan.cc", "anneal.cc"))
HEADERS = tuple(Path(__file__).with_name(name) for name in ("blas.h", "parallel.h"))
# BLAS routine per element type, in the order of gemm.cc's slots.
ROUTINES = {"float32": "sgemm", "float64": "dgemm", "complex64": "cgemm", "complex128": "zgemm"}
# bfloat16 operands, float32 accumulation and result; int8 operands, int32
# accumulation and result: MKL only.
BF16_ROUTINE = "cblas_gemm_bf16bf16f32"
S8_ROUTINE = "cblas_gemm_s8u8s32"
# With MKL the kernel runs its own tasks on XLA's thread pool, MKL sequential
# in each (gemm.cc says why).
LOCAL_THREADS = "MKL_Set_Num_Threads_Local"


def _include_dir() -> Path | None:
    """jaxlib's FFI headers (what ``jax.ffi.include_dir()`` returns), found without importing JAX."""
    spec = importlib.util.find_spec("jaxlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    inc = Path(list(spec.submodule_search_locations)[0]) / "include"
    return inc if (inc / "xla" / "ffi" / "api" / "ffi.h").is_file() else None


def _build_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "contract"


def _build(include: Path) -> Path:
    """The compiled library for these sources and jaxlib, building it if needed."""
    key = hashlib.sha256(b"".join(src.read_bytes() for src in SOURCES + HEADERS)
                         + importlib.metadata.version("jaxlib").encode())
    target = _build_dir() / f"kernels-{key.hexdigest()[:16]}.so"
    if target.is_file():
        return target
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise OSError("no C++ compiler (c++, g++ or $CXX) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built under a temporary name and renamed: processes racing to build
    # (an SPMD launch) each see either no library or a whole one.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    # -O3, not -O2: GCC vectorizes the scan's loops only there (1.6x, measured).
    cmd = [compiler, "-O3", "-std=c++17", "-shared", "-fPIC", "-w", f"-I{include}",
           *map(str, SOURCES), "-o", tmp]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            names = " and ".join(src.name for src in SOURCES)
            raise OSError(f"compiling {names} failed: {done.stderr.strip()[-500:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _scipy_pointer(name: str) -> int:
    """The address of SciPy's BLAS routine ``name`` (from its Cython capsule)."""
    from scipy.linalg import cython_blas  # noqa: PLC0415 - only when the kernel is wanted

    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get(capsule, get_name(capsule))


def _mkl() -> ctypes.CDLL | None:
    """MKL's single dynamic library from the ``mkl`` wheel, if that is installed."""
    try:
        dist = importlib.metadata.distribution("mkl")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name.startswith("libmkl_rt.so"):
            return ctypes.CDLL(os.path.realpath(dist.locate_file(f)))
    return None


def _blas() -> tuple[str, Callable[[str], int | None]]:
    """(which BLAS, routine name -> address or None): MKL where its wheel is installed
    (``contract[mkl]``; ``CONTRACT_BLAS=openblas`` declines it), else SciPy's
    OpenBLAS. MKL's batched GEMMs run about twice as fast on this CPU
    (docs/lowering.md), so real batched steps use the kernel only with it.
    :data:`LOCAL_THREADS` is MKL's C function (lower-case, it is the Fortran one, which takes a pointer)."""
    mkl = None if os.environ.get(BLAS_ENV, "").strip().lower() == "openblas" else _mkl()
    if mkl is not None:
        return "mkl", lambda name: ctypes.cast(
            getattr(mkl, name if name == LOCAL_THREADS else f"{name}_"), ctypes.c_void_p).value
    mkl_only = (BF16_ROUTINE, S8_ROUTINE, LOCAL_THREADS)
    return "openblas", lambda name: None if name in mkl_only else _scipy_pointer(name)


@memoized("native kernel", 1)
def _load() -> tuple[ctypes.CDLL | None, str, str | None]:
    """(the loaded library, "available", its BLAS), or (None, why not, None)."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None, f"off ({ENV}=0)", None
    include = _include_dir()
    if include is None:
        return None, "unavailable: jaxlib's FFI headers are missing", None
    try:
        lib = ctypes.CDLL(str(_build(include)))
        which, pointer = _blas()
        for slot, routine in enumerate(ROUTINES.values()):
            if lib.contract_set_gemm(slot, ctypes.c_void_p(pointer(routine))):
                raise OSError(f"could not install {routine}")
        lib.contract_set_gemm_bf16(ctypes.c_void_p(pointer(BF16_ROUTINE)))
        lib.contract_set_gemm_s8(ctypes.c_void_p(pointer(S8_ROUTINE)))
        lib.contract_set_local_threads(ctypes.c_void_p(pointer(LOCAL_THREADS)))
    except (OSError, ImportError, KeyError, AttributeError, subprocess.SubprocessError) as e:
        return None, f"unavailable: {e}", None
    return lib, "available", which


def library() -> ctypes.CDLL | None:
    """The loaded kernel library, or None (see :func:`status`)."""
    return _load()[0]


def available() -> bool:
    """Whether the native kernels are built and loaded in this process."""
    return _load()[0] is not None


def status() -> str:
    """``"available"``, or why the kernels are not used."""
    return _load()[1]


@memoized("cpu flags", 1)
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no flags known
        return frozenset()
    line = next((l for l in text.splitlines() if l.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def cpu_has(flag: str) -> bool:
    """Whether this machine's CPU reports ``flag`` (``/proc/cpuinfo``; False elsewhere).

    >>> cpu_has("no_such_flag")
    False
    """
    return flag in _cpu_flags()


def blas() -> str | None:
    """The BLAS the GEMM kernel calls: ``"mkl"``, ``"openblas"``, or None without the kernels."""
    return _load()[2]
