r"""A one-line progress bar on stderr for long searches (no dependency).

Drawing only reports: the search runs the same with or without a bar.

>>> import io
>>> out = io.StringIO()
>>> report = Bar("auto-hq", 2, stream=out, every=0.0).chain(1)
>>> report(500, 1000); report(1000, 1000)
>>> out.getvalue().split("\r")[-1].rsplit(" ", 2)[0]
'auto-hq chain 2/2 [########################] 100% 1,000/1,000 moves'
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

__all__ = ["Bar"]


class Bar:
    """One bar per annealing chain: ``Bar(label, chains).chain(c)`` is the
    ``progress(done, total)`` callback of chain ``c``; the bar ends its line
    when ``done == total``. Redraws at most every ``every`` seconds."""

    def __init__(self, label: str, chains: int, stream: TextIO | None = None,
                 every: float = 0.1, width: int = 24) -> None:
        self.label, self.chains, self.every, self.width = label, chains, every, width
        self.stream = stream
        self.start = time.perf_counter()

    def chain(self, c: int) -> Callable[[int, int], None]:
        last = [-float("inf")]

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            end = done >= total
            if not end and now - last[0] < self.every:
                return
            last[0] = now
            frac = min(done / max(total, 1), 1.0)
            fill = int(frac * self.width)
            stream = self.stream or sys.stderr
            stream.write(f"\r{self.label} chain {c + 1}/{self.chains} "
                         f"[{'#' * fill}{'.' * (self.width - fill)}] {100 * frac:3.0f}% "
                         f"{done:,}/{total:,} moves {now - self.start:.1f} s"
                         + ("\n" if end else ""))
            stream.flush()

        return report
