"""Simulated annealing of a contraction tree by local rotations.

A move picks an internal node ``p = (x, (g, h))`` and rotates it to
``p = ((x, g), h)``. Only the costs of ``p`` and its rewritten child change
(every other node keeps its set of leaves, hence its legs), so a move costs a
handful of bitset operations however large the network.

A move that raises the cost of those two nodes from ``c`` to ``c'`` is
accepted with probability ``exp(-log2(c'/c) / T)``, ``T`` falling
geometrically from ``hot`` to ``cold``. Judging a move against the two nodes'
own cost, not the whole tree's, matters: the total is dominated by a few
contractions near the root, so against it every move lower down looks free,
and the lower tree drifts into disorder that the root then pays for. Judged
locally, every part of the tree is annealed at its own scale; at ``T -> 0`` the
two rules agree (a move is kept when it lowers the total). Measured on random
3-regular graphs (three seeds each, greedy starting trees): with 20,000 moves
per tensor the local rule found paths 1.2-4.4x cheaper than the global rule
with 12,000 at 150 tensors, and 2.5-26x cheaper than the global rule with
50,000 at 200 tensors.

Annealing contraction trees over these rotations was studied by Schindler and
Jermyn, "Algorithms for tensor network contraction ordering", Mach. Learn.:
Sci. Technol. 1 (2020) 035001.

The network is anything with ``legs`` (a leg bitset per leaf), ``out`` (the
output's legs) and ``log`` (each leg's log2 size), as
:class:`contract.planner.optimizers.tree.Net` has. The move loop runs in C++
(:mod:`.compiled`); this module turns trees into its flat arrays and back.

>>> import random
>>> from contract.planner.optimizers.tree import Net, tree_flops
>>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...           {"a": 8, "b": 16, "c": 32, "d": 4})
>>> tree = anneal(net, ((0, 1), 2), 2000, deadline=float("inf"), rng=random.Random(0))
>>> tree_flops(net, tree)   # (0, (1, 2)): 16*32*4 + 8*16*4
2560.0
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable

from . import compiled
from .objective import FLOPS, Objective

__all__ = ["anneal", "scale_for"]

# The compiled loop caps a size at 2^1000 (a float overflows at 2^1024): past
# it every contraction costs the same, moves near the root look free, the
# tree drifts, and the loop's own ranking of trees by their capped sums keeps
# the drift (10,000-tensor 3-regular graph: annealed on capped costs, a greedy
# tree of 10^517 came back at 10^1218). Costs are kept below 2^CEILING
# instead, leaving moves that raise the largest contraction 2^(100 * scale)
# of headroom.
CEILING = 900.0

Tree = Any  # an int (leaf) or a pair of trees, as in contract.planner.optimizers.hq


def _indexed(tree: Tree, n: int) -> tuple[list[int], list[int]]:
    """(left, right) child of every node of ``tree`` over ``n`` leaves, its
    internal nodes numbered ``n ..`` in post-order (the root last, ``2n - 2``),
    without recursion (trees can be as deep as they have leaves)."""
    left, right = [-1] * (2 * n - 1), [-1] * (2 * n - 1)
    ids: dict[int, int] = {}
    nxt = n
    stack = [tree]
    while stack:
        node = stack[-1]
        if isinstance(node, int):
            stack.pop()
            continue
        todo = [c for c in node if not isinstance(c, int) and id(c) not in ids]
        if todo:
            stack += todo
            continue
        stack.pop()
        if id(node) in ids:  # the same tuple object reached twice
            continue
        ids[id(node)] = v = nxt
        nxt += 1
        left[v], right[v] = (c if isinstance(c, int) else ids[id(c)] for c in node)
    return left, right


def _nested(shape: tuple[list[int], list[int]], n: int) -> Tree:
    """The nested-tuple tree of ``(left, right)`` arrays (root ``2n - 2``),
    built bottom-up without recursion."""
    left, right = shape
    root = 2 * n - 2
    built: dict[int, Tree] = {}
    order, stack = [], [root]
    while stack:
        v = stack.pop()
        if v >= n:
            order.append(v)
            stack += [left[v], right[v]]
    for v in reversed(order):
        a, b = left[v], right[v]
        built[v] = (built[a] if a >= n else a, built[b] if b >= n else b)
    return built[root] if root >= n else root


def scale_for(log2_flops: float) -> float:
    """The ``scale`` for :func:`anneal` of a tree of ``2^log2_flops`` FLOPs:
    1 (costs as they are) while they stay below 2^:data:`CEILING`, else the
    factor that brings them there. Annealed with sizes to the power
    ``1 / scale``, the cost of a tree is a sum of powers of its contraction
    costs, still dominated by the largest ones; the planners rank the
    trees it returns by their exact costs.

    >>> scale_for(517.4 / 0.30103) > 1.9, scale_for(800.0)
    (True, 1.0)
    """
    return max(1.0, log2_flops / CEILING)


def anneal(net: Any, tree: Tree, moves: int, deadline: float, rng: random.Random,
           hot: float = 3.0, cold: float = 0.05, focus: float = 0.0,
           objective: Objective = FLOPS,
           progress: Callable[[int, int], None] | None = None, scale: float = 1.0) -> Tree:
    """The cheapest tree seen while annealing ``tree`` for ``moves`` proposed
    rotations, cooling by moves alone: the result is a pure function of the
    inputs unless ``time.perf_counter()`` passes ``deadline`` (a fuse) first.

    ``focus`` is the share of moves spent on the costliest nodes (those
    within a factor 10^4 of the most expensive contraction, re-listed every
    1000 moves): the total is dominated by a few contractions near the root,
    and uniform picks spend nearly every move on nodes that cannot change it.

    ``objective`` sets each node's local cost (:meth:`.Objective.node`; the
    FLOP count by default); ``progress(done, moves)`` is called every 1000
    moves (it only reports: the run is the same with or without it).

    ``scale`` (:func:`scale_for`) anneals sizes to the power ``1 / scale``
    for networks whose contractions pass the compiled loop's 2^1000 cap; the
    temperatures keep their meaning (a move that doubles the cost of the
    nodes it changes is accepted as often).

    The moves run in C++ (:mod:`.compiled`, the extension ``contract._anneal``
    built with the package), with the GIL released."""
    n = len(net.legs)
    if n < 3:
        return tree
    seconds = deadline - time.perf_counter()
    if seconds < 0:
        return tree
    shape = _indexed(tree, n)
    changed = compiled.anneal(net, shape, moves, rng.getrandbits(64), hot / scale,
                              cold / scale, focus, objective, seconds, progress, scale)
    return _nested(shape, n) if changed else tree
