"""Starting trees by recursive hypergraph bisection with KaHyPar (an optional
dependency: ``pip install contract[hq]``), the partitioner cotengra's
hyper-optimizer uses.

Each level splits a group of tensors in two, cutting few (log2-weighted)
legs; groups of ``k`` or fewer are ordered optimally (:func:`.tree.optimal_tree`).
Partitioning sees the whole network where greedy sees the next pair, and on
large random graphs its trees anneal to far cheaper paths (3-regular, 1,000
tensors: 10^42-10^43 after 300 moves per tensor, against 10^55-10^59 from
greedy trees; see ``bench/PLANNER.md``). Ranked by their own FLOPs the trees
say little (they order the top contractions badly), so the planner anneals
each before choosing.

Without kahypar, :func:`partition_tree` falls back to a Python bisection
(Fiduccia-Mattheyses passes): slower and worse, but the same kind of tree. A tree is a pure function of the network and the ``rng`` draws:
KaHyPar runs single-threaded with the seed drawn from ``rng``.

>>> import random
>>> from .tree import Net, tree_flops
>>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...           {"a": 8, "b": 16, "c": 32, "d": 4})
>>> tree_flops(net, partition_tree(net, random.Random(0), 0.1))
2560.0
"""

from __future__ import annotations

import os
import random
from typing import Callable

from .tree import Net, Tree, bit_list, optimal_tree, replace_leaves

try:
    import kahypar
except ImportError:  # pragma: no cover - exercised by the fallback test
    kahypar = None

__all__ = ["BISECTIONS", "partition_tree"]

# What bisects auto-hq's starting trees in this install: plans differ with and
# without kahypar, so the report names it (and the plan cache keys on it).
BISECTIONS = "KaHyPar bisections" if kahypar is not None else \
    "Python bisections: kahypar not installed"

# Groups this small are split by the Python bisection (:func:`_bisect`): a
# KaHyPar call costs ~0.5 ms of set-up (its preset is re-read per call), and
# they are ~30% of the calls.
_SMALL = 16

# KaHyPar's "sea20" recursive-bisection preset (its wheel ships none).
_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kahypar_cut.ini")


def partition_tree(net: Net, rng: random.Random, imbalance: float, k: int = 6) -> Tree:
    """A tree by recursive bisection of ``net``'s tensors (KaHyPar's, or the
    Python fallback), halves within ``imbalance`` of an even split."""
    if kahypar is None or not os.path.exists(_PROFILE):
        return _bisected(net, rng, k, imbalance)
    return _bisected(net, rng, k, imbalance, _split)


def _split(group: list[int], holders: dict[int, list[int]], net: Net, rng: random.Random,
           imbalance: float) -> tuple[list[int], list[int]]:
    """Two non-empty halves of ``group`` by one KaHyPar bisection (the Python
    bisection for groups of ``_SMALL`` or fewer)."""
    if len(group) <= _SMALL:  # KaHyPar's set-up costs more than the split
        return _bisect(group, holders, net, rng, imbalance)
    pos = {v: i for i, v in enumerate(group)}
    index, pins, weights = [0], [], []
    seen: set[int] = set()
    for v in group:
        for l in bit_list(net.legs[v] & ~net.out):
            if l in seen:
                continue
            seen.add(l)
            inside = [pos[u] for u in holders[l] if u in pos]
            if len(inside) > 1:
                pins += inside
                index.append(len(pins))
                weights.append(max(1, round(net.log[l])))
    seed = rng.randrange(2**31)  # drawn whatever happens, so later draws do not shift
    half = len(group) // 2
    if not weights:  # no leg joins two of them: any split cuts nothing
        return group[:half], group[half:]
    graph = kahypar.Hypergraph(len(group), len(weights), index, pins, 2, weights, [])
    # A fresh context per call: KaHyPar keeps block weights in it between runs.
    context = kahypar.Context()
    context.loadINIconfiguration(_PROFILE)
    context.setK(2)
    context.setSeed(seed)
    context.suppressOutput(True)
    context.setEpsilon(2 * imbalance)
    kahypar.partition(graph, context)
    left = [v for v in group if graph.blockID(pos[v]) == 0]
    right = [v for v in group if graph.blockID(pos[v]) != 0]
    if not left or not right:
        return group[:half], group[half:]
    return left, right


Split = Callable[[list[int], dict[int, list[int]], Net, random.Random, float],
                 tuple[list[int], list[int]]]


def _bisected(net: Net, rng: random.Random, k: int, imbalance: float,
              split: "Split | None" = None) -> Tree:
    """A tree by recursive bisection: split the tensors in two halves cutting
    few (log-weighted) legs, recurse, and order groups of ``k`` or fewer
    optimally. Partitioning sees the whole network, where greedy only sees
    the next pair; on large graphs it finds far better starting trees.
    ``split(group, holders, net, rng, imbalance)`` makes each cut (default
    :func:`_bisect`). Recursive, but only logarithmically deep: each half
    keeps about ``0.5 - imbalance`` of its group or more (``auto-hq`` draws
    ``imbalance`` below 0.3)."""
    split = _bisect if split is None else split
    size = net.size
    holders: dict[int, list[int]] = {}
    for v, b in enumerate(net.legs):
        for l in bit_list(b & ~net.out):
            holders.setdefault(l, []).append(v)

    def build(group: list[int]) -> Tree:
        if len(group) <= k:
            inside = set(group)
            out = 0
            for v in group:  # legs needed outside the group, or in the output
                for l in bit_list(net.legs[v]):
                    if net.out >> l & 1 or any(u not in inside for u in holders.get(l, ())):
                        out |= 1 << l
            sub = optimal_tree([net.legs[v] for v in group], out, size)[1]
            return replace_leaves(sub, group)
        left, right = split(group, holders, net, rng, imbalance)
        return (build(left), build(right))

    return build(list(range(len(net.legs))))


def _bisect(group: list[int], holders: dict[int, list[int]], net: Net, rng: random.Random,
            imbalance: float) -> tuple[list[int], list[int]]:
    """Two halves of ``group``: grown by breadth-first search from a random
    tensor, then improved by Fiduccia-Mattheyses passes (move the tensor that
    most reduces the cut, lock it, keep the best prefix of moves)."""
    inside = set(group)
    legs = {v: [l for l in bit_list(net.legs[v] & ~net.out)] for v in group}
    weight = net.log
    target = len(group) // 2
    # Both halves keep at least one tensor, so the recursion always shrinks.
    lo = max(1, int(len(group) * (0.5 - imbalance)))
    hi = min(len(group) - 1, int(len(group) * (0.5 + imbalance)) + 1)
    side = {v: 1 for v in group}
    start = rng.choice(group)
    queue, seen = [start], {start}
    count = 0
    while count < target:
        if not queue:  # disconnected: restart from an unvisited tensor
            rest = [v for v in group if v not in seen]
            queue = [rng.choice(rest)]
            seen.add(queue[0])
        v = queue.pop(0)
        side[v] = 0
        count += 1
        nbrs = [u for l in legs[v] for u in holders[l] if u in inside and u not in seen]
        rng.shuffle(nbrs)
        for u in nbrs:
            if u not in seen:
                seen.add(u)
                queue.append(u)
    # Per leg, how many of its holders in the group sit on each side.
    counts: dict[int, list[int]] = {}
    for v in group:
        for l in legs[v]:
            counts.setdefault(l, [0, 0])[side[v]] += 1

    def gain(v: int) -> float:
        g, s = 0.0, side[v]
        for l in legs[v]:
            c = counts[l]
            was = c[0] > 0 and c[1] > 0
            now = c[s] - 1 > 0 and c[1 - s] + 1 > 0
            g += weight[l] * (was - now)
        return g

    n_left = count

    def flip(v: int) -> int:
        """Move ``v`` to the other side; the change in the left side's size."""
        s = side[v]
        for l in legs[v]:
            counts[l][s] -= 1
            counts[l][1 - s] += 1
        side[v] = 1 - s
        return 1 if s else -1

    for _ in range(4):  # Fiduccia-Mattheyses passes, until one gains nothing
        moves, total, best, best_at = [], 0.0, 0.0, 0
        locked: set[int] = set()
        for _ in range(len(group)):
            options = [v for v in group if v not in locked
                       and lo <= n_left + (1 if side[v] else -1) <= hi]
            if not options:
                break
            v = max(options, key=gain)
            total += gain(v)
            n_left += flip(v)
            locked.add(v)
            moves.append(v)
            if total > best + 1e-12:
                best, best_at = total, len(moves)
            elif len(moves) - best_at > 24:
                break  # a long run of losing moves rarely turns round
        for v in moves[best_at:]:  # undo the moves past the best prefix
            n_left += flip(v)
        if best_at == 0:
            break
    left = [v for v in group if side[v] == 0]
    right = [v for v in group if side[v] == 1]
    return left, right
