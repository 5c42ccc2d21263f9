"""Starting trees by recursive hypergraph bisection with KaHyPar (an optional
dependency: ``pip install contract[hq]``), the partitioner cotengra's
hyper-optimizer uses.

Each level splits a group of tensors in two, cutting few (log2-weighted)
legs; groups of ``k`` or fewer are ordered optimally (:func:`.tree._optimal`).
Partitioning sees the whole network where greedy sees the next pair, and on
large random graphs its trees anneal to far cheaper paths (3-regular, 1,000
tensors: 10^42-10^43 after 300 moves per tensor, against 10^55-10^59 from
greedy trees; see ``bench/PLANNER.md``). Ranked by their own FLOPs the trees
say little (they order the top contractions badly), so the planner anneals
each before choosing.

Without kahypar, :func:`partition_tree` falls back to the Python bisection of
:mod:`.starts` (Fiduccia-Mattheyses passes): slower and worse, but the same
kind of tree. A tree is a pure function of the network and the ``rng`` draws:
KaHyPar runs single-threaded with the seed drawn from ``rng``.

>>> import random
>>> from .tree import _Net, tree_flops
>>> net = _Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...            {"a": 8, "b": 16, "c": 32, "d": 4})
>>> tree_flops(net, partition_tree(net, random.Random(0), 0.1))
2560.0
"""

from __future__ import annotations

import os
import random

from .starts import _bisect, _bisected
from .tree import Tree, _bit_list, _Net

try:
    import kahypar
except ImportError:  # pragma: no cover - exercised by the fallback test
    kahypar = None

__all__ = ["partition_tree"]

# Groups this small are split by the Python bisection of :mod:`.starts`: a
# KaHyPar call costs ~0.5 ms of set-up (its preset is re-read per call), and
# they are ~30% of the calls.
_SMALL = 16

# KaHyPar's "sea20" recursive-bisection preset (its wheel ships none).
_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kahypar_cut.ini")


def partition_tree(net: _Net, rng: random.Random, imbalance: float, k: int = 6) -> Tree:
    """A tree by recursive bisection of ``net``'s tensors (KaHyPar's, or the
    Python fallback), halves within ``imbalance`` of an even split."""
    if kahypar is None or not os.path.exists(_PROFILE):
        return _bisected(net, rng, k, imbalance)
    return _bisected(net, rng, k, imbalance, _split)


def _split(group: list[int], holders: dict[int, list[int]], net: _Net, rng: random.Random,
           imbalance: float) -> tuple[list[int], list[int]]:
    """Two non-empty halves of ``group`` by one KaHyPar bisection (the Python
    bisection for groups of ``_SMALL`` or fewer)."""
    if len(group) <= _SMALL:  # KaHyPar's set-up costs more than the split
        return _bisect(group, holders, net, rng, imbalance)
    pos = {v: i for i, v in enumerate(group)}
    index, pins, weights = [0], [], []
    seen: set[int] = set()
    for v in group:
        for l in _bit_list(net.legs[v] & ~net.out):
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
