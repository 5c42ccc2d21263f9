"""``contract.compare``: run several optimizers on one contraction, side by side.

>>> import contract
>>> t = contract.compare("ij,jk,kl->il", (8, 16), (16, 32), (32, 4), optimizers=["auto", "greedy"])
>>> [r.optimizer for r in t.rows], t.rows[0].flops
(['auto', 'greedy'], 5120)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from .api import plan
from .backend.measure import run_time
from .errors import ContractError
from .planner.report import brief, human

__all__ = ["compare", "Comparison", "Entry", "DEFAULT_OPTIMIZERS"]

DEFAULT_OPTIMIZERS = ("auto", "greedy", "dp", "random-greedy-128", "auto-hq")
# Exhaustive optimizers are skipped by default past this many operands.
_EXHAUSTIVE = {"dp": 14, "optimal": 8, "branch-all": 10}


@dataclass(frozen=True)
class Entry:
    """One optimizer's result; ``error`` is set (and numbers are None) when it failed."""

    optimizer: str
    planning_seconds: float | None
    flops: int | None
    peak_bytes: int | None
    largest_intermediate: int | None
    run_seconds: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Comparison:
    """The table ``compare`` returns; ``str()`` prints it (Markdown)."""

    spec: str
    rows: tuple[Entry, ...]

    @property
    def best(self) -> Entry:
        """The row with the fewest FLOPs (or the fastest run when measured)."""
        ok = [r for r in self.rows if not r.error]
        if not ok:
            raise ContractError(f"every optimizer failed for '{self.spec}'")
        if all(r.run_seconds is not None for r in ok):
            return min(ok, key=lambda r: r.run_seconds)
        return min(ok, key=lambda r: r.flops)

    def __str__(self) -> str:
        measured = any(r.run_seconds is not None for r in self.rows)
        head = ["optimizer", "planning", "FLOPs", "vs best", "peak memory", "largest intermediate"]
        head += ["run time"] if measured else []
        fewest = min((r.flops for r in self.rows if r.flops is not None), default=1) or 1
        lines = [f"spec: {brief(self.spec)}", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]
        for r in self.rows:
            if r.error:
                cells = [r.optimizer, r.error] + [""] * (len(head) - 2)
            else:
                cells = [r.optimizer, _seconds(r.planning_seconds), human(r.flops),
                         f"{r.flops / fewest:.2f}x", human(r.peak_bytes, "B"),
                         human(r.largest_intermediate)]
                cells += [_seconds(r.run_seconds)] if measured else []
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _seconds(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"


def compare(spec: str, *shapes: Any, optimizers: Sequence[Any] | None = None,
            measure: bool = False, dtype: Any = None,
            memory_limit: int | None = None) -> Comparison:
    """Plan ``spec`` for ``shapes`` with each optimizer and tabulate the time
    each plan took to build, its FLOPs and peak bytes; ``measure=True``
    also compiles and times each plan. An optimizer that fails gets a row
    with its error instead of numbers."""
    # Spec and shape errors are the caller's, not an optimizer's: raise them.
    plan(spec, *shapes, optimize=False, dtype=dtype)
    if optimizers is None:
        n = len(shapes)
        optimizers = [o for o in DEFAULT_OPTIMIZERS if n <= _EXHAUSTIVE.get(o, n)]
    rows = []
    for opt in optimizers:
        name = opt if isinstance(opt, str) else "explicit"
        start = time.perf_counter()
        try:
            p = plan(spec, *shapes, optimize=opt, dtype=dtype, memory_limit=memory_limit)
        except ContractError as e:
            rows.append(Entry(name, None, None, None, None, error=str(e)))
            continue
        # A cache hit answers in microseconds; report the time the plan took to build.
        seconds = max(p.planning_seconds, 0.0) or time.perf_counter() - start
        rows.append(Entry(name, seconds, p.flops, p.peak_bytes, p.largest_intermediate,
                          run_time(p) if measure else None))
    return Comparison(spec, tuple(rows))
