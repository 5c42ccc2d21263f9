"""What a planner minimises: ``minimize="flops" | "size" | "write" | "combo"``, as cotengra names them.

Counted over a contraction tree's internal nodes (the root included), in
cotengra's units (a contraction costs the product of the sizes of every
label it touches, no factor 2):

* ``flops``: the total contraction cost (the default; what ``plan.flops``
  counts, up to opt_einsum's factor 2 for summed labels);
* ``write``: the total number of elements written (the sum of the sizes of
  every intermediate and of the result);
* ``size``: the largest intermediate (ties broken by FLOPs);
* ``combo``: ``flops + factor * write`` (``"combo"`` is ``"combo-64"``;
  ``"combo-256"`` weighs writes 256 times a multiply-add).

The annealer and the subtree DP need a cost that adds up over nodes and
judges a move by the two nodes it changes, so each objective has a *local*
cost per node (:meth:`Objective.node`): the exact one for ``flops``,
``write`` and ``combo``; for ``size`` the eighth power of a node's size (a
soft maximum that the largest intermediates dominate) plus its FLOPs (the
tie-break). Candidate trees are always compared by the exact
:meth:`Objective.key`.

Annealing by ``write`` or ``size`` alone is a poor search: a rotation only
changes the size of one intermediate, and the landscape is flat. The planners
therefore anneal by FLOPs first and then polish by the objective (measured on
a 150-tensor 3-regular graph from the same start: write-only annealing
reached write 2^23.7 and width 2^23, FLOPs then write 2^20.7, width 2^19).

>>> parse_minimize("combo-128")
Objective(kind='combo', factor=128.0)
>>> parse_minimize("size").node(64.0, 2.0)
320.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import ContractError

__all__ = ["FLOPS", "Objective", "parse_minimize"]

_KINDS = ("flops", "size", "write", "combo")

# cotengra's DEFAULT_COMBO_FACTOR.
_COMBO = 64.0

# The soft maximum of "size": sizes capped so that size**8 stays below the
# 2**1000 cap of tree._BIG (no contraction that large can ever run). The
# 8th power lowered the width where the 4th did not on two of eight 3-regular
# graphs of 80-120 tensors (and tied elsewhere, as cotengra's
# HyperOptimizer(minimize="size") does on them).
_SOFT_CAP = 2.0 ** 120
_POWER = 8


@dataclass(frozen=True)
class Objective:
    """One of cotengra's objectives; see the module docstring."""

    kind: str = "flops"
    factor: float = _COMBO

    def __str__(self) -> str:
        return f"combo-{self.factor:g}" if self.kind == "combo" else self.kind

    def node(self, contraction: float, out: float) -> float:
        """The local cost of a node whose contraction touches labels of
        product ``contraction`` and whose result has ``out`` elements."""
        kind = self.kind
        if kind == "flops":
            return contraction
        if kind == "write":
            return out
        if kind == "combo":
            return contraction + self.factor * out
        return min(out, _SOFT_CAP) ** _POWER + contraction

    def key(self, flops: float, write: float, size: float) -> tuple[float, ...]:
        """The exact score of a whole tree (lower is better) from its totals."""
        kind = self.kind
        if kind == "flops":
            return (flops, size)
        if kind == "write":
            return (write, flops)
        if kind == "combo":
            return (flops + self.factor * write, size)
        return (size, flops)


FLOPS = Objective()


def parse_minimize(minimize: Any) -> Objective:
    """An :class:`Objective` from a name (``"flops"``, ``"size"``, ``"write"``,
    ``"combo"``, ``"combo-<factor>"``) or an :class:`Objective`.

    >>> str(parse_minimize("combo")), parse_minimize("flops") == FLOPS
    ('combo-64', True)
    """
    if isinstance(minimize, Objective):
        return minimize
    if isinstance(minimize, str):
        name, _, param = minimize.lower().partition("-")
        if name in _KINDS and not param:
            return Objective(name)
        if name == "combo":
            try:
                factor = float(param)
            except ValueError:
                factor = -1.0
            if factor >= 0:
                return Objective("combo", factor)
    raise ContractError(f"unknown minimize={minimize!r}; valid objectives are "
                        + ", ".join(repr(k) for k in _KINDS) + " and 'combo-<factor>' "
                        "(such as 'combo-64', cotengra's default)")
