"""Benchmarks: each module prints a ratio table of contract against its peers.

Run as ``python -m bench`` (or ``python -m bench.<module>``), the process first
drops ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` from its environment and
re-executes itself: some machines set them to force an older OpenBLAS kernel
(a workaround for old OpenBLAS builds), which slows NumPy's BLAS, a peer here.
They must be gone before NumPy loads OpenBLAS, hence the re-exec at package
import, before anything imports NumPy. Only the benchmark process is changed:
importing ``bench`` from tests (doctests) changes nothing.
"""

from __future__ import annotations

import os
import sys

# Variables that force an OpenBLAS core type or cache size.
FORCED_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Set by the re-exec to what was dropped, so the results can say so.
DROPPED_VAR = "CONTRACT_BENCH_DROPPED"


def _run_as_bench() -> bool:
    """True when this interpreter was started as ``python [...] -m bench[.module]``."""
    argv = getattr(sys, "orig_argv", [])
    for flag, value in zip(argv, argv[1:]):
        if flag == "-m":
            return value == "bench" or value.startswith("bench.")
    return False


def _drop_forced_blas_vars() -> None:
    forced = {k: os.environ[k] for k in FORCED_BLAS_VARS if k in os.environ}
    if not forced or "numpy" in sys.modules or not _run_as_bench():
        return
    env = {k: v for k, v in os.environ.items() if k not in forced}
    env[DROPPED_VAR] = ",".join(f"{k}={v}" for k, v in forced.items())
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


_drop_forced_blas_vars()
