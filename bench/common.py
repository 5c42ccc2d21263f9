"""Timing harness shared by the benchmark scripts.

Fair timing on a small shared machine, in one process (:func:`race`):

* every system is warmed up first (JIT compiles, caches fill);
* fast calls are *autoranged*: looped until one sample lasts at least
  ``min_seconds`` (0.2 s by default), so timer and scheduler noise averages out;
* systems are timed in *rounds*, the order rotated each round, so a change of
  load on the machine hits all of them alike, and none always runs first;
* before each sample the process waits until the previous system's thread
  pools have gone idle (:func:`settle`): OpenBLAS threads spin a full core for
  about 0.1 s after a call and torch's OpenMP pool for a few ms, which would
  otherwise steal a core from whoever runs next;
* the result is the best sample per system (the minimum is the least noisy
  estimate of the cost on a shared machine).

Ratios are contract / fastest peer: below 1.0 means contract is faster.
:func:`environment` records threads and library versions (NumPy's BLAS and the
kernel it picked, via threadpoolctl) for the results file.

>>> t = race({"noop": lambda: None}, rounds=2, min_seconds=0.001)
>>> t["noop"] >= 0
True
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax

__all__ = ["race", "best_time", "settle", "autorange", "Row", "table", "block", "parser",
           "torch_or_none", "machine", "environment", "MIN_SECONDS"]

# Shortest sample: fast calls loop until one sample lasts this long.
MIN_SECONDS = 0.2
_QUICK = False  # set by parser().parse_args(["--quick"]): shorter samples


def block(x: Any) -> Any:
    """Wait for JAX results so timings include the work (torch and NumPy are eager)."""
    return jax.block_until_ready(x)


def settle(quiet: float = 0.1, window: float = 0.005, timeout: float = 1.0) -> float:
    """Sleep until this process's threads are idle; return the seconds waited.

    Idle means two consecutive ``window``-long intervals in which the whole
    process (every thread of every library: XLA's pool, OpenBLAS's, torch's
    OpenMP and MKL threads) used less than ``quiet`` of one core. Measured on
    this 2-core machine after a 512x512 matmul: OpenBLAS's threads spin about
    115 ms, torch's about 5 ms, XLA's not measurably.

    >>> 0 <= settle(timeout=0.05) < 1
    True
    """
    start = time.perf_counter()
    calm = 0
    while calm < 2 and time.perf_counter() - start < timeout:
        c0, w0 = time.process_time(), time.perf_counter()
        time.sleep(window)
        busy = (time.process_time() - c0) / (time.perf_counter() - w0)
        calm = calm + 1 if busy < quiet else 0
    return time.perf_counter() - start


def _sample(fn: Callable[[], Any], number: int) -> float:
    """Seconds per call of ``fn`` over ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        out = fn()
    block(out)
    return (time.perf_counter() - start) / number


def autorange(fn: Callable[[], Any], min_seconds: float = MIN_SECONDS) -> int:
    """How many calls make one sample last at least ``min_seconds`` (1, 2, 5, 10, ...).

    >>> autorange(lambda: time.sleep(0.002), min_seconds=0.01) in (2, 5)
    True
    """
    number = 1
    while True:
        for step in (1, 2, 5):
            n = number * step
            if _sample(fn, n) * n >= min_seconds:
                return n
        number *= 10


def race(fns: dict[str, Callable[[], Any]], rounds: int = 7, warmup: int = 2,
         min_seconds: float | None = None) -> dict[str, float]:
    """Best seconds per call of each function, timed in rotated rounds.

    Each function is warmed up and autoranged once; then ``rounds`` rounds
    time every function once each, the starting system rotating by one each
    round, with :func:`settle` before every sample. ``min_seconds`` defaults
    to :data:`MIN_SECONDS` (a tenth of it after ``--quick``).
    """
    if min_seconds is None:
        min_seconds = MIN_SECONDS / 10 if _QUICK else MIN_SECONDS
    names = list(fns)
    numbers = {}
    for name in names:
        for _ in range(warmup):
            block(fns[name]())
        settle()
        numbers[name] = autorange(fns[name], min_seconds)
    best = dict.fromkeys(names, float("inf"))
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            settle()
            best[name] = min(best[name], _sample(fns[name], numbers[name]))
    return best


def best_time(fn: Callable[[], Any], repeat: int = 7, warmup: int = 2,
              min_seconds: float | None = None) -> float:
    """Best seconds per call of ``fn`` alone (see :func:`race`; use that for peers)."""
    return race({"fn": fn}, rounds=repeat, warmup=warmup, min_seconds=min_seconds)["fn"]


@dataclass
class Row:
    """One workload: contract's time and each peer's (None = not available)."""

    name: str
    contract: float
    peers: dict[str, float | None] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float:
        times = [t for t in self.peers.values() if t]
        return self.contract / min(times) if times else float("nan")

    @property
    def fastest(self) -> str:
        """The fastest peer's name ('' when none ran)."""
        times = {p: t for p, t in self.peers.items() if t}
        return min(times, key=times.__getitem__) if times else ""


def _fmt(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def _ratio(r: float) -> str:
    """Two decimals, or three significant digits below 0.1 (never a bare 0.00x).

    >>> _ratio(1.234), _ratio(0.00123)
    ('1.23x', '0.00123x')
    """
    return f"{r:.2f}x" if r >= 0.1 or r != r else f"{r:.3g}x"


def table(rows: list[Row], title: str) -> str:
    """A Markdown table: workload, contract, each peer, ratio to the fastest peer."""
    peers: list[str] = []
    for r in rows:
        peers += [p for p in r.peers if p not in peers]
    head = ["workload", "contract", *peers, "ratio (contract / fastest peer)"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.name + (f" ({r.note})" if r.note else ""), _fmt(r.contract),
                 *(_fmt(r.peers.get(p)) for p in peers), _ratio(r.ratio)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    """One line describing where the numbers were taken."""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"jax {jax.__version__} on {jax.default_backend()}")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> list[str]:
    """Markdown bullet lines: library versions, thread counts, NumPy's BLAS kernel."""
    import numpy as np

    from . import DROPPED_VAR, FORCED_BLAS_VARS

    from contract import native

    torch = torch_or_none()  # loaded first, so that its thread pools are listed too
    native.available()  # and contract's kernels, with MKL's pool where they call it
    lines = [f"- python {platform.python_version()}; jax {jax.__version__}, jaxlib "
             f"{_version('jaxlib')} ({jax.default_backend()}, {jax.local_device_count()} "
             f"device); numpy {np.__version__}; opt_einsum {_version('opt_einsum')}; cotengra "
             f"{_version('cotengra')}; cotengrust {_version('cotengrust')}; torch "
             f"{_version('torch')}"]
    try:
        from threadpoolctl import threadpool_info

        pools = [" ".join(str(x) for x in (p["internal_api"], p.get("version"),
                                           p.get("architecture") and "kernel " + p["architecture"])
                          if x) + f": {p['num_threads']} threads ({os.path.basename(p['filepath'])})"
                 for p in threadpool_info()]
        lines.append("- thread pools (threadpoolctl): " + "; ".join(pools))
    except ImportError:
        lines.append("- thread pools: threadpoolctl not installed")
    if torch is not None:
        libs = [n for n, ok in (("MKL", torch.backends.mkl.is_available()),
                                ("oneDNN", torch.backends.mkldnn.is_available())) if ok]
        lines.append(f"- torch: {torch.get_num_threads()} intra-op threads, "
                     f"{torch.get_num_interop_threads()} inter-op; {', '.join(libs) or 'no MKL'}")
    lines.append(f"- contract's native kernels: {native.status()}, BLAS {native.blas()}")
    forced = [k for k in FORCED_BLAS_VARS if k in os.environ]
    dropped = os.environ.get(DROPPED_VAR, "")
    lines.append("- " + (f"still set (not run as `python -m bench`): {forced}" if forced else
                         f"dropped for this run: {dropped}" if dropped else
                         f"{' and '.join(FORCED_BLAS_VARS)} not set"))
    lines.append(f"- XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    return lines


def torch_or_none() -> Any:
    """The torch module when installed (CPU peer, all cores), else None."""
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        return torch
    except ImportError:
        return None


class _Parser(argparse.ArgumentParser):
    def parse_args(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        global _QUICK
        ns = super().parse_args(*args, **kwargs)
        _QUICK = bool(getattr(ns, "quick", False))
        return ns


def parser(description: str) -> argparse.ArgumentParser:
    """Common flags: ``--quick`` (small sizes, short samples) and ``--repeat`` (rounds).

    >>> from bench import common
    >>> parser("x").parse_args(["--quick"]).quick, common._QUICK
    (True, True)
    >>> parser("x").parse_args([]).quick, common._QUICK
    (False, False)
    """
    p = _Parser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--repeat", type=int, default=7, help="rounds per row, best taken (default 7)")
    return p
