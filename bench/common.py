"""Timing harness shared by the benchmark scripts.

Every row times contract and its peers in the same process, after warm-up,
as the best of N repeats (the minimum is the least noisy estimate of the
cost on a shared machine). Ratios are contract / fastest peer: below 1.0
means contract is faster.

>>> t = best_time(lambda: None, repeat=3)
>>> t >= 0
True
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax

__all__ = ["best_time", "Row", "table", "block", "parser", "torch_or_none", "machine"]


def block(x: Any) -> Any:
    """Wait for JAX (and torch) results so timings include the work."""
    return jax.block_until_ready(x)


def best_time(fn: Callable[[], Any], repeat: int = 7, warmup: int = 2,
              min_seconds: float = 0.0) -> float:
    """Best wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup``.

    Fast calls are looped so each sample lasts at least ``min_seconds``.
    """
    for _ in range(warmup):
        block(fn())
    inner = 1
    if min_seconds:
        start = time.perf_counter()
        block(fn())
        once = time.perf_counter() - start
        inner = max(1, int(min_seconds / max(once, 1e-9)))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            out = fn()
        block(out)
        best = min(best, (time.perf_counter() - start) / inner)
    return best


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


def torch_or_none() -> Any:
    """The torch module when installed (CPU peer), else None."""
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        return torch
    except ImportError:
        return None


def parser(description: str) -> argparse.ArgumentParser:
    """Common flags: ``--quick`` (small sizes, few repeats) and ``--repeat``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--repeat", type=int, default=7, help="best of N (default 7)")
    return p
