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

from ..planner.report import brief, human, render, versus
from .cluster import Cluster

__all__ = ["Explanation"]


def _replaced(prims: Sequence[str]) -> str:
    """Primitive names with repeats folded: ``dot_general x2, transpose``."""
    counts: dict[str, int] = {}
    for p in prims:
        counts[p] = counts.get(p, 0) + 1
    return ", ".join(p if n == 1 else f"{p} x{n}" for p, n in counts.items())


def _cluster(n: int, c: Cluster) -> list[str]:
    """One cluster's block: the decision and why, the equations, the einsum, costs."""
    state = "rewritten" if c.rewritten else "kept as written"
    # Some reasons for keeping a cluster end by saying so: say it once.
    reason = c.reason.removesuffix(": " + state)
    verb = "replaces" if c.rewritten else "covers"  # a kept cluster replaces nothing
    count = len(c.primitives)
    lines = [f"cluster {n}{' in ' + c.where.rstrip(' >') if c.where else ''}: {state} ({reason})",
             f"  {verb:<10} {count} equation{'' if count == 1 else 's'}: {_replaced(c.primitives)}",
             f"  einsum     '{brief(c.spec)}'"
             + (f"  x {c.net.scale:g}" if c.net.scale != 1 else "")]
    planned = c.planned_flops
    if planned is not None and c.plan is not None:
        lines.append(f"  FLOPs      as written {human(c.net.flops)}  planned {human(planned)}"
                     f"  ({versus(planned, c.net.flops, 'as written')})")
        lines.append(f"  largest    as written {human(c.net.largest)} elements  planned "
                     f"{human(c.plan.largest_intermediate)} elements")
        lines += ["  " + line for line in render(c.plan).splitlines()]
    else:
        lines.append(f"  FLOPs      as written {human(c.net.flops)}")
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
