"""contract's native CPU kernels: the extension module ``contract._kernels``, loaded once.

``csrc/kernels`` (a batched BLAS GEMM, a conv and a scan, as XLA FFI
handlers) is compiled by the package build (scikit-build-core + CMake +
nanobind, docs/install.md), never in a user's process. Loading it here only
imports the module, checks that the running XLA can call handlers built
against its FFI API version, and hands it the BLAS routines' addresses: no
BLAS is linked. They are read from SciPy's ``scipy.linalg.cython_blas``
capsules (OpenBLAS in SciPy's wheels), or from MKL's ``libmkl_rt`` where the
``mkl`` wheel is installed (``pip install contract[mkl]``).

Why: XLA's CPU backend runs a complex ``dot`` several times slower than
OpenBLAS's ``cgemm``, and it has no scan kernel, so a cumsum costs it a
reduce-window or our triangular products where one add per element would do
(docs/lowering.md has the figures). Everything degrades cleanly: an install
without the kernels, another platform, an FFI version the running jaxlib does
not know, or a damaged file leave :func:`available` False, contract lowers
those steps with XLA's own operations, and a :class:`~contract.errors.ContractWarning`
says so once per process, naming the fix; ``CONTRACT_NATIVE=0`` switches the
kernels off on purpose (no warning). :func:`status` says why; ``contract
doctor`` says more.

This module imports no JAX: :mod:`contract.backend.policy` reads it, and the
planner reads neither.

>>> status() in ("available", "off (CONTRACT_NATIVE=0)") or status().startswith("unavailable")
True
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.metadata
import importlib.util
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

from .errors import ContractWarning

__all__ = ["BF16_ROUTINE", "BLAS_ENV", "ENV", "LOCAL_THREADS", "REINSTALL", "ROUTINES",
           "S8_ROUTINE", "Loaded", "available", "blas", "build", "cpu_has", "kernels",
           "reload", "running_ffi_version", "status"]

ENV = "CONTRACT_NATIVE"
BLAS_ENV = "CONTRACT_BLAS"
# BLAS routine per element type, in the order of the kernel's gemm slots.
ROUTINES = {"float32": "sgemm", "float64": "dgemm", "complex64": "cgemm", "complex128": "zgemm"}
# bfloat16 operands, float32 accumulation and result; int8 operands, int32
# accumulation and result: MKL only.
BF16_ROUTINE = "cblas_gemm_bf16bf16f32"
S8_ROUTINE = "cblas_gemm_s8u8s32"
# With MKL the kernel runs its own tasks on XLA's thread pool, MKL sequential
# in each (csrc/kernels/gemm.cc says why).
LOCAL_THREADS = "MKL_Set_Num_Threads_Local"
# What rebuilds the kernels for the Python and jaxlib that run contract.
REINSTALL = ("pip install --force-reinstall --no-deps --no-build-isolation contract "
             "(from a checkout: pip install -e .); docs/install.md")


@dataclass(frozen=True)
class Loaded:
    """The outcome of loading the kernels: the module (or None), why not, the BLAS."""

    module: ModuleType | None
    status: str
    blas: str | None


def running_ffi_version() -> tuple[int, int] | None:
    """The newest XLA FFI API version the installed jaxlib implements (read
    from the headers it ships, without importing JAX), or None if unknown.

    >>> running_ffi_version() is None or running_ffi_version() >= (0, 1)
    True
    """
    spec = importlib.util.find_spec("jaxlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    header = Path(list(spec.submodule_search_locations)[0]) / "include/xla/ffi/api/c_api.h"
    try:
        text = header.read_text()
    except OSError:
        return None
    found = [re.search(rf"#define XLA_FFI_API_{part}\s+(\d+)", text) for part in ("MAJOR", "MINOR")]
    if None in found:
        return None
    return int(found[0].group(1)), int(found[1].group(1))


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


def _blas() -> tuple[str, Callable[[str], int]]:
    """(which BLAS, routine name -> address, 0 where it has none): MKL where its
    wheel is installed (``contract[mkl]``; ``CONTRACT_BLAS=openblas`` declines
    it), else SciPy's OpenBLAS. MKL's batched GEMMs run about twice as fast on
    this CPU (docs/lowering.md), so real batched steps use the kernel only
    with it. :data:`LOCAL_THREADS` is MKL's C function (lower-case, it is the
    Fortran one, which takes a pointer)."""
    mkl = None if os.environ.get(BLAS_ENV, "").strip().lower() == "openblas" else _mkl()
    if mkl is not None:
        return "mkl", lambda name: ctypes.cast(
            getattr(mkl, name if name == LOCAL_THREADS else f"{name}_"), ctypes.c_void_p).value or 0
    mkl_only = (BF16_ROUTINE, S8_ROUTINE, LOCAL_THREADS)
    return "openblas", lambda name: 0 if name in mkl_only else _scipy_pointer(name)


def _unavailable(why: str, fix: str) -> Loaded:
    """The kernels are off for ``why``: said once per process (this runs once)."""
    warnings.warn(f"contract's CPU kernels are off: {why}. Results stay right on XLA's own "
                  f"lowering, only slower (complex GEMMs, cumsums, convs). To fix: {fix}.",
                  ContractWarning, stacklevel=4)
    return Loaded(None, f"unavailable: {why}", None)


@functools.cache
def _load() -> Loaded:
    """Import, check and set up ``contract._kernels``, once per process (a
    process fact: :func:`contract.clear_caches` keeps it)."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return Loaded(None, f"off ({ENV}=0)", None)
    try:
        module = importlib.import_module("contract._kernels")
    except ModuleNotFoundError:
        return _unavailable("contract was installed without its FFI kernels (CONTRACT_FFI=OFF, "
                            "or a build for another platform)", f"reinstall with a C++ compiler: {REINSTALL}")
    except (ImportError, OSError) as e:  # a damaged or foreign file
        return _unavailable(f"the extension contract._kernels does not load ({e})",
                            f"reinstall it: {REINSTALL}")
    built, running = tuple(module.FFI_API_VERSION), running_ffi_version()
    if running is not None and (built[0] != running[0] or built[1] > running[1]):
        return _unavailable(
            f"they were built against XLA FFI API {built[0]}.{built[1]} (jaxlib "
            f"{module.JAXLIB_VERSION}), which the running jaxlib "
            f"{importlib.metadata.version('jaxlib')} (FFI API {running[0]}.{running[1]}) "
            "does not support", f"pip install --upgrade jaxlib, or rebuild against this jaxlib: {REINSTALL}")
    which, pointer = _blas()
    try:
        for slot, routine in enumerate(ROUTINES.values()):
            module.set_gemm(slot, pointer(routine))
        module.set_gemm_bf16(pointer(BF16_ROUTINE))
        module.set_gemm_s8(pointer(S8_ROUTINE))
        module.set_local_threads(pointer(LOCAL_THREADS))
    except (ImportError, KeyError, AttributeError, OSError) as e:  # no SciPy, or a BLAS lacking a routine
        return _unavailable(f"no BLAS for the GEMM kernel ({type(e).__name__}: {e})",
                            "pip install scipy (OpenBLAS) or contract[mkl]")
    return Loaded(module, "available", which)


def reload() -> None:
    """Forget this process's load: the next use reads ``CONTRACT_NATIVE`` and
    ``CONTRACT_BLAS`` again, and warns again if the kernels are off. For tests
    that switch the kernels; targets already registered with JAX stay."""
    _load.cache_clear()


def kernels() -> ModuleType | None:
    """The loaded ``contract._kernels`` module, or None (see :func:`status`)."""
    return _load().module


def available() -> bool:
    """Whether the native kernels are loaded in this process."""
    return _load().module is not None


def status() -> str:
    """``"available"``, or why the kernels are not used."""
    return _load().status


def blas() -> str | None:
    """The BLAS the GEMM kernel calls: ``"mkl"``, ``"openblas"``, or None without the kernels."""
    return _load().blas


def build() -> dict[str, object]:
    """How the kernels were built, and whether this jaxlib runs them (for ``contract doctor``).

    >>> sorted(build())[:3]
    ['compiler', 'ffi_api', 'jaxlib']
    """
    try:
        module = importlib.import_module("contract._kernels")
    except (ImportError, OSError):
        return {"compiler": None, "ffi_api": None, "jaxlib": None, "path": None,
                "running_ffi_api": _dotted(running_ffi_version())}
    return {"compiler": module.COMPILER, "ffi_api": _dotted(tuple(module.FFI_API_VERSION)),
            "jaxlib": module.JAXLIB_VERSION, "path": module.__file__,
            "running_ffi_api": _dotted(running_ffi_version())}


def _dotted(version: tuple[int, ...] | None) -> str | None:
    return None if version is None else ".".join(map(str, version))


@functools.cache
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
