"""How a :class:`~contract.plan.Plan` is shown: per-step costs and a text report.

:func:`costs` lists one :class:`Cost` row per thing the compiled program does
(operand reductions, pairwise steps, a final transpose) with its FLOPs, bytes
moved and arithmetic intensity; :func:`render` turns them into the report that
``str(plan)`` and ``plan.report()`` show. Past ``_MAX_ROWS`` rows the table
keeps the costliest rows and adds a per-kind summary, so a 500-operand plan
stays readable.

>>> import contract
>>> print(contract.plan("ij,jk->ik", (8, 16), (16, 4)))  # doctest: +ELLIPSIS
spec        ij,jk->ik
shapes      (8, 16), (16, 4)   float32 -> float32
...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["Cost", "costs", "render", "human", "itemsize", "ratio"]

# Past this many rows the table shows the costliest ones and a summary by kind.
_MAX_ROWS = 40


def human(n: float, unit: str = "") -> str:
    """Short engineering notation: ``human(1.5e9, "B")`` → ``'1.50 GB'``.

    >>> human(1.5e9, "B"), human(512)
    ('1.50 GB', '512')
    """
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {prefix}{unit}"
    return f"{n:.0f}{' ' + unit if unit else ''}"


def ratio(x: float) -> str:
    """A speedup factor: ``ratio(6.4)`` → ``'6.4x'``, huge ones in scientific notation.

    >>> ratio(6.4), ratio(4.2e37)
    ('6.4x', '4.2e+37x')
    """
    return f"{x:.1f}x" if x < 1e4 else f"{x:.2g}x"


def itemsize(dtype: str) -> int:
    """Bytes per element of a dtype name (bfloat16 included).

    >>> itemsize("bfloat16"), itemsize("complex64")
    (2, 8)
    """
    import numpy as np

    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


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
    """One :class:`Cost` per operation, in execution order.

    >>> import contract
    >>> [(c.name, c.kind, c.flops) for c in costs(contract.plan("ij,jk->ik", (2, 3), (3, 4)))]
    [('0', 'GEMM', 48)]
    """
    sizes = dict(plan.sizes)
    item = itemsize(plan.compute_dtype)

    def count(labels: tuple[str, ...]) -> int:
        return math.prod(sizes[l] for l in labels)

    rows = []
    for n, (term, prep) in enumerate(zip(plan.inputs, plan.preps)):
        if prep.summed or prep.diagonal:
            kind = "reduction" if prep.summed else "diagonal"
            # A reduction adds every element it reads once; a diagonal only copies.
            flops = count(tuple(dict.fromkeys(term))) if prep.summed else 0
            rows.append(Cost(f"prep {n}", (term,), prep.labels, kind, flops,
                             count(term) * item, count(prep.labels) * item, count(prep.labels)))
    for k, s in enumerate(plan.steps):
        rows.append(Cost(str(k), (s.lhs, s.rhs), s.output, s.kind, s.flops,
                         (count(s.lhs) + count(s.rhs)) * item, s.size * item, s.size))
    if plan.final != plan.output:
        n = count(plan.output)
        rows.append(Cost("final", (plan.final,), plan.output, "transpose", 0, n * item, n * item, n))
    return rows


def _labels(labels: tuple[str, ...], named: bool) -> str:
    return (" ".join(labels) if named else "".join(labels)) or "(scalar)"


def _table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                      for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]


def render(plan: "Plan") -> str:
    """The text report shown by ``str(plan)`` and ``plan.report()``.

    >>> import contract
    >>> print(render(contract.plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4))))
    spec        ij,jk,kl->il
    shapes      (8, 16), (16, 32), (32, 4)   float32 -> float32
    optimizer   auto (ran optimal)   path [(1, 2), (0, 1)]
    FLOPs       naive 49.15 k  planned 5.12 k  speedup 9.6x
    memory      largest intermediate 64 elements (256 B), peak live 3.33 kB
    step  contraction  kind  FLOPs   read     written  FLOP/B  share
       0  jk,kl->jl    GEMM  4.10 k  2.56 kB  256 B      1.45  80.0%
       1  ij,jl->il    GEMM  1.02 k  768 B    128 B      1.14  20.0%
    """
    named = any(len(l) > 1 for t in plan.inputs for l in t)
    item = itemsize(plan.compute_dtype)
    shapes = ", ".join(str(s) for s in plan.shapes)
    lines = [
        f"spec        {plan.spec}",
        f"shapes      {shapes}   {'/'.join(sorted(set(plan.dtypes)))} -> {plan.result_dtype}"
        + (f" (accumulates in {plan.compute_dtype})" if plan.compute_dtype != plan.result_dtype else ""),
        f"optimizer   {plan.optimize}"
        + (f" (ran {plan.strategy})" if plan.strategy != plan.optimize else "")
        + f"   path {_path(plan)}",
        f"FLOPs       naive {human(plan.naive_flops)}  planned {human(plan.flops)}"
        f"  speedup {ratio(plan.speedup)}",
        f"memory      largest intermediate {human(plan.largest_intermediate)} elements"
        f" ({human(plan.largest_intermediate * item, 'B')}), peak live {human(plan.peak_bytes, 'B')}",
    ]
    rows = costs(plan)
    if not rows:
        lines.append("no work: the result is an operand as given")
        return "\n".join(lines)
    total = max(sum(c.flops for c in rows), 1)
    shown = rows
    if len(rows) > _MAX_ROWS:
        keep = set(sorted(range(len(rows)), key=lambda i: -rows[i].flops)[:_MAX_ROWS])
        shown = [c for i, c in enumerate(rows) if i in keep]
    table = [("step", "contraction", "kind", "FLOPs", "read", "written", "FLOP/B", "share")]
    for c in shown:
        expr = ",".join(_labels(t, named) for t in c.inputs) + "->" + _labels(c.output, named)
        table.append((c.name, expr, c.kind, human(c.flops), human(c.bytes_read, "B"),
                      human(c.bytes_written, "B"), f"{c.intensity:.2f}",
                      f"{100 * c.flops / total:.1f}%"))
    lines += _table(table, right={0, 6, 7})
    if len(shown) < len(rows):
        lines.append(f"... {len(rows) - len(shown)} cheaper rows not shown; all {len(rows)} by kind:")
        lines += _summary(rows, total)
    return "\n".join(lines)


def _path(plan: "Plan") -> str:
    """The linear path, elided in the middle when long."""
    path = [tuple(p) for p in plan.path]
    if len(path) <= 12:
        return str(path)
    head = ", ".join(map(str, path[:6]))
    tail = ", ".join(map(str, path[-3:]))
    return f"[{head}, ... {len(path) - 9} more ..., {tail}]"


def _summary(rows: list[Cost], total: int) -> list[str]:
    by_kind: dict[str, list[Cost]] = {}
    for c in rows:
        by_kind.setdefault(c.kind, []).append(c)
    table = [("kind", "count", "FLOPs", "share", "largest output")]
    for kind, group in sorted(by_kind.items(), key=lambda kv: -sum(c.flops for c in kv[1])):
        flops = sum(c.flops for c in group)
        table.append((kind, str(len(group)), human(flops), f"{100 * flops / total:.1f}%",
                      human(max(c.size for c in group))))
    return ["  " + line for line in _table(table, right={1, 3})]
