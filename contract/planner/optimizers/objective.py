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

A ``limit`` (``memory_limit``, in elements, as opt_einsum counts it) makes
the largest intermediate a constraint: a node whose result has ``x`` times
more elements costs ``2^40 x^2`` times its contraction on top of its own
cost, so the annealer and the DP shrink every such node before anything
else (the square: a move that halves an excess pays even when it costs
FLOPs), and
:meth:`Objective.key` ranks a tree that keeps the limit before any tree that
does not. (A penalty, not a wall: a starting tree over the limit can still
be annealed below it.)

Annealing by ``write`` or ``size`` alone is a poor search: a rotation only
changes the size of one intermediate, and the landscape is flat. The planners
therefore anneal by FLOPs first and then polish by the objective (measured on
a 150-tensor 3-regular graph from the same start: write-only annealing
reached write 2^23.7 and width 2^23, FLOPs then write 2^20.7, width 2^19).

>>> parse_minimize("combo-128")
Objective(kind='combo', factor=128.0, limit=None)
>>> parse_minimize("size").node(64.0, 2.0)
320.0
>>> parse_minimize("flops").limited(16).key(1e3, 0.0, 32.0)
(True, 32.0, 1000.0, 32.0)
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

# A node over the memory limit costs this many times its contraction times
# the square of its excess on top (capped so the product stays finite:
# tree._BIG is 2^1000).
_PENALTY = 2.0 ** 40
_PENALTY_CAP = 2.0 ** 800
_OVER_CAP = 2.0 ** 60


@dataclass(frozen=True)
class Objective:
    """One of cotengra's objectives; see the module docstring."""

    kind: str = "flops"
    factor: float = _COMBO
    limit: float | None = None

    def __str__(self) -> str:
        name = f"combo-{self.factor:g}" if self.kind == "combo" else self.kind
        return name if self.limit is None else f"{name} (largest intermediate <= {self.limit:g})"

    def limited(self, limit: float | None) -> "Objective":
        """This objective with its largest intermediate capped at ``limit``
        elements (None: no cap; the tighter of two caps)."""
        if limit is None:
            return self
        limit = float(limit) if self.limit is None else min(self.limit, float(limit))
        return Objective(self.kind, self.factor, limit)

    def node(self, contraction: float, out: float) -> float:
        """The local cost of a node whose contraction touches labels of
        product ``contraction`` and whose result has ``out`` elements."""
        kind = self.kind
        if kind == "flops":
            cost = contraction
        elif kind == "write":
            cost = out
        elif kind == "combo":
            cost = contraction + self.factor * out
        else:
            cost = min(out, _SOFT_CAP) ** _POWER + contraction
        if self.limit is not None and out > self.limit:
            over = min(out / self.limit, _OVER_CAP)
            cost += min(contraction, _PENALTY_CAP) * _PENALTY * over * over
        return cost

    def key(self, flops: float, write: float, size: float) -> tuple[Any, ...]:
        """The exact score of a whole tree (lower is better) from its totals."""
        kind = self.kind
        if kind == "flops":
            score: tuple[Any, ...] = (flops, size)
        elif kind == "write":
            score = (write, flops)
        elif kind == "combo":
            score = (flops + self.factor * write, size)
        else:
            score = (size, flops)
        if self.limit is None:
            return score
        over = size > self.limit  # any tree within the limit, then the narrowest
        return (over, size if over else 0.0) + score


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
