"""How :meth:`contract.jit(f).explain(...) <contract.jit.Jitted.explain>` shows its clusters.

>>> import jax.numpy as jnp, contract
>>> f = contract.jit(lambda a, b: (a * b).sum(0))
>>> e = f.explain(jnp.ones((8, 4)), jnp.ones((8, 4)))
>>> [(c.spec, c.rewritten) for c in e.clusters]
[('ab,ab->b', True)]
>>> print(str(e).splitlines()[0])
contract.jit: 1 contraction cluster, 1 rewritten
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..planner.report import render
from .cluster import Cluster

__all__ = ["Explanation"]


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


def _replaced(prims: Sequence[str]) -> str:
    """Primitive names with repeats folded: ``dot_general x2, transpose``."""
    counts: dict[str, int] = {}
    for p in prims:
        counts[p] = counts.get(p, 0) + 1
    return ", ".join(p if n == 1 else f"{p} x{n}" for p, n in counts.items())


def _change(written: int, planned: int) -> str:
    """How the planned FLOPs compare with the code as written, in words.

    >>> _change(400, 100), _change(100, 100), _change(100, 130), _change(1000, 999)
    ('4x fewer', 'the same', '1.3x more', '0.1% fewer')
    """
    if planned == written:
        return "the same"
    if planned > written:
        return f"{planned / max(written, 1):.3g}x more"
    ratio = written / max(planned, 1)
    return f"{ratio:.3g}x fewer" if ratio >= 1.01 else f"{100 * (written - planned) / written:.2g}% fewer"


def _cluster(n: int, c: Cluster) -> list[str]:
    state = "rewritten" if c.rewritten else "kept as written"
    lines = [f"cluster {n}{' in ' + c.where.rstrip(' >') if c.where else ''}: {state} ({c.reason})",
             f"  replaces   {len(c.primitives)} equations: {_replaced(c.primitives)}",
             f"  einsum     '{c.spec}'" + (f"  x {c.net.scale:g}" if c.net.scale != 1 else "")]
    planned = c.planned_flops
    if planned is not None and c.plan is not None:
        lines.append(f"  FLOPs      as written {_count(c.net.flops)}  planned {_count(planned)}"
                     f"  ({_change(c.net.flops, planned)})")
        lines.append(f"  largest    as written {_count(c.net.largest)} elements  planned "
                     f"{_count(c.plan.largest_intermediate)} elements")
        lines += ["  " + line for line in render(c.plan).splitlines()]
    else:
        lines.append(f"  FLOPs      as written {_count(c.net.flops)}")
    return lines


@dataclass(frozen=True)
class Explanation:
    """The contraction clusters :func:`contract.jit` found for one signature.

    ``clusters`` lists every cluster that sums something, rewritten or not, in
    program order (those inside ``scan``/``while``/``cond`` bodies first);
    ``str()`` is the report.
    """

    clusters: tuple[Cluster, ...]

    @property
    def rewritten(self) -> tuple[Cluster, ...]:
        """The clusters replaced by a planned einsum."""
        return tuple(c for c in self.clusters if c.rewritten)

    def __str__(self) -> str:
        n = len(self.clusters)
        head = (f"contract.jit: {n} contraction cluster{'s' if n != 1 else ''}, "
                f"{len(self.rewritten)} rewritten")
        lines = [head]
        for k, c in enumerate(self.clusters, 1):
            lines += [""] + _cluster(k, c)
        if not n:
            lines.append("nothing to plan: the program is the one jax.jit builds")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)
