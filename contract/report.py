"""How a :class:`~contract.plan.Plan` is shown: a readable text report.

>>> import contract
>>> print(contract.plan("ij,jk->ik", (8, 16), (16, 4)))  # doctest: +ELLIPSIS
spec        ij,jk->ik
shapes      (8, 16), (16, 4)   float32 -> float32
...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["render", "human"]

# Past this many steps the table shows the costliest ones and a summary line.
_MAX_ROWS = 40


def human(n: float, unit: str = "") -> str:
    """Short engineering notation: ``human(1.5e9, "B")`` → ``'1.50 GB'``.

    >>> human(1.5e9, "B"), human(512)
    ('1.50 GB', '512')
    """
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {prefix}{unit}"
    return f"{n:.0f}{' ' + unit if unit else ''}"


def _labels(labels: tuple[str, ...], named: bool) -> str:
    return " ".join(labels) if named else "".join(labels) or "(scalar)"


def render(plan: "Plan") -> str:
    """The text report shown by ``str(plan)``."""
    named = any(len(l) > 1 for t in plan.inputs for l in t)
    shapes = ", ".join(str(s) for s in plan.shapes)
    lines = [
        f"spec        {plan.spec}",
        f"shapes      {shapes}   {'/'.join(sorted(set(plan.dtypes)))} -> {plan.result_dtype}"
        + (f" (accumulates in {plan.compute_dtype})" if plan.compute_dtype != plan.result_dtype else ""),
        f"optimizer   {plan.optimize}   path {list(plan.path)}",
        f"FLOPs       naive {human(plan.naive_flops)}  planned {human(plan.flops)}"
        f"  speedup {plan.speedup:.1f}x",
        f"memory      largest intermediate {human(plan.largest_intermediate)} elements,"
        f" peak live {human(plan.peak_bytes, 'B')}",
    ]
    for n, prep in enumerate(plan.preps):
        if prep.diagonal or prep.summed:
            what = []
            if prep.diagonal:
                what.append(f"diagonal over {_labels(prep.diagonal, named)}")
            if prep.summed:
                what.append(f"sum over {_labels(prep.summed, named)}")
            lines.append(f"operand {n}   {', '.join(what)} first")
    if not plan.steps:
        lines.append("no pairwise steps (a single reduction/transpose)")
        return "\n".join(lines)
    total = max(plan.flops, 1)
    rows = list(enumerate(plan.steps))
    hidden = 0
    if len(rows) > _MAX_ROWS:
        keep = sorted(sorted(rows, key=lambda r: -r[1].flops)[:_MAX_ROWS])
        hidden = len(rows) - len(keep)
        rows = keep
    table = [("step", "contraction", "kind", "FLOPs", "share", "out size")]
    for k, s in rows:
        expr = f"{_labels(s.lhs, named)},{_labels(s.rhs, named)}->{_labels(s.output, named)}"
        table.append((str(k), expr, s.kind, human(s.flops), f"{100 * s.flops / total:.1f}%",
                      human(s.size)))
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    for row in table:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if hidden:
        lines.append(f"... {hidden} cheaper steps not shown")
    return "\n".join(lines)
