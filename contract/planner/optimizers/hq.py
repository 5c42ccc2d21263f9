"""``optimize="auto"`` (past dp's range) and ``optimize="auto-hq"``.

Both planners are a pure function of the network and the seed: their
search is counted in trials and moves, never in seconds. A time fuse only
stops a search that has run far past its expected length, and warns.

1. **Starting trees** (:mod:`.starts`): cotengrust's randomised greedy
   trials (Rust), opt_einsum's plain greedy, and for ``auto-hq`` recursive
   bisections.
2. **Simulated annealing** (:mod:`.anneal`) of the best starting trees by
   local rotations, each move judged against the cost of the two nodes it
   changes. Starting from a random-greedy tree is what makes ``auto`` beat
   cotengra's ``RandomGreedyOptimizer(128)`` everywhere: greedy finds good
   local structure, annealing repairs the few contractions near the root
   that dominate the cost.
3. **Subtree reconfiguration** (``auto-hq`` only, :func:`.tree._reconfigure`):
   the ``k`` largest sub-contractions under every node re-ordered optimally.

Small networks (up to ``k`` tensors) are solved optimally by DP.

>>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
>>> optimize(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
[(1, 2), (0, 1)]
>>> annealed_greedy(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
[(1, 2), (0, 1)]
"""

from __future__ import annotations

import math
import random
import sys
import time
import warnings
from typing import Any, Sequence

from .anneal import anneal
from .objective import FLOPS, Objective, parse_minimize
from .progress import Bar
from .starts import _bisected, greedy_tree, random_greedy_trees
from .tree import Tree, _Legs, _linear, _Net, _optimal, _reconfigure, tree_flops, tree_totals

__all__ = ["annealed_greedy", "optimize", "tree_flops"]

Path = list[tuple[int, ...]]


def _trivial(n: int) -> Path | None:
    return [(0,)] if n == 1 else [(0, 1)] if n == 2 else [] if n == 0 else None


def _width(net: _Net, tree: Tree, legs: _Legs) -> float:
    """log2 of the largest intermediate of ``tree``."""
    biggest, stack = 1.0, [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, int):
            biggest = max(biggest, net.size(legs(node)))
            stack += [node[0], node[1]]
    return math.log2(biggest)


def _best(net: _Net, trees: list[Tree], objective: Objective = FLOPS) -> tuple[Tree, _Legs]:
    legs = _Legs(net)
    if objective == FLOPS:
        return min(trees, key=lambda t: tree_flops(net, t, legs)), legs
    return min(trees, key=lambda t: objective.key(*tree_totals(net, t, legs))), legs


def _fused(label: str, fuse: float, start: float) -> None:
    if time.perf_counter() - start > fuse:
        warnings.warn(f"{label}: the {fuse:g} s time fuse stopped the search early; this plan "
                      "depends on the machine's speed (pass max_time= to "
                      "contract.optimizer to allow more)", stacklevel=3)


POLISH_HOT = 0.3


def _annealed(net: _Net, tree: Tree, moves: int, deadline: float, rng: random.Random,
              hot: float, objective: Objective, progress: Any) -> Tree:
    """Anneal by FLOPs; for another objective, then polish by it for half as
    many moves (see :mod:`.objective` for why)."""
    if objective == FLOPS:
        return anneal(net, tree, moves, deadline, rng, hot=hot, cold=0.02, timed=False,
                      progress=progress)
    polish = moves // 2
    total = moves + polish
    first = progress and (lambda done, _: progress(done, total))
    second = progress and (lambda done, _: progress(moves + done, total))
    tree = anneal(net, tree, moves, deadline, rng, hot=hot, cold=0.02, timed=False,
                  progress=first)
    # Its own generator, drawn from the search's, so the FLOPs phase of every
    # chain matches the minimize="flops" search's draw for draw.
    return anneal(net, tree, polish, deadline, random.Random(rng.getrandbits(32) ^ 0x5EED),
                  hot=POLISH_HOT, cold=0.02, timed=False, objective=objective, progress=second)


def _local(objective: Objective) -> Any:
    """The objective's node cost for the DP, None for FLOPs (its fast path)."""
    return None if objective == FLOPS else objective.node


def _schedule(n: int, width: float) -> tuple[int, int]:
    """(random greedy trials, annealing moves) for ``auto``.

    Trials shrink with the network (cotengrust's trial costs grow faster than
    its size); moves grow with the start tree's width (log2 of its largest
    intermediate): wide networks are where the greedy tree is far from the
    best and annealing pays, and where random greedy itself is slow.
    """
    trials = 48 if n <= 1000 else int(48 * (1000 / n) ** 3)
    per_tensor = max(60.0, min(1000.0, 1.5 * width))
    return trials, min(int(per_tensor * n), 1_000_000)


def annealed_greedy(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
                    memory_limit: int | None = None, *, seed: int = 0,
                    fuse: float = 60.0, minimize: Any = "flops",
                    progress: bool = False) -> Path:
    """``optimize="auto"``'s choice past ``dp``'s range.

    The cheapest of cotengrust's random greedy trials and opt_einsum's greedy,
    annealed (see :func:`_schedule` for how many trials and moves). Never
    worse than opt_einsum's greedy up to 128 tensors, where it is part of the
    start (beyond, only measured: every bench network up to 2,000 tensors;
    not the 10,000-tensor graph), deterministic for a given ``seed``. ``fuse`` seconds stop
    a run that is far slower than expected (with a warning). ``minimize`` is
    the objective (:mod:`.objective`): the best start and the annealing
    judge trees by it. ``progress`` draws a bar on stderr. ``memory_limit``
    is accepted for the interface and not used.

    >>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
    >>> annealed_greedy(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
    [(1, 2), (0, 1)]
    """
    n = len(inputs)
    trivial = _trivial(n)
    if trivial is not None:
        return trivial
    objective = parse_minimize(minimize)
    start = time.perf_counter()
    net = _Net(inputs, output, sizes)
    trials, _ = _schedule(n, 0.0)
    candidates = random_greedy_trees(net, trials, seed)
    if n <= 128:  # a guarantee, cheap only on small networks (quadratic)
        candidates.append(greedy_tree(net))
    tree, legs = _best(net, candidates, objective)
    _, moves = _schedule(n, _width(net, tree, legs))
    bar = Bar("annealed-greedy", 1) if progress else None
    tree = _annealed(net, tree, moves, start + fuse, random.Random(seed), 0.3, objective,
                     bar and bar.chain(0))
    if objective != FLOPS:  # the annealed tree, or the start when it is better
        tree, _ = _best(net, [tree] + candidates, objective)
    _fused("optimize='auto'", fuse, start)
    return _linear(tree, n)


def optimize(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
             memory_limit: int | None = None, *, chains: int = 3, moves: int | None = None,
             k: int = 8, seconds: float | None = None, seed: int = 0,
             hot: float = 1.0, minimize: Any = "flops", progress: bool = False) -> Path:
    """``optimize="auto-hq"``: see the module docstring.

    ``chains`` annealing runs of ``moves`` rotations per tensor each (by
    default 10 per unit of log2 width of the start, 500 to 4,000, at most
    300,000 per run), from different kinds of start: the best of 128 random
    greedy trials, opt_einsum's greedy, a recursive bisection, more random
    greedy seeds; then reconfiguration of the best with ``k`` parts.
    ``seconds`` (default 600) is only a fuse. Deterministic for a given
    ``seed``. ``minimize`` is the objective (:mod:`.objective`) that the
    annealing, the reconfiguration and the choice among chains follow;
    ``progress`` draws one bar per chain on stderr. ``memory_limit`` is
    accepted for the interface and not used.

    >>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
    >>> optimize(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
    [(1, 2), (0, 1)]
    """
    n = len(inputs)
    if n < 2:
        return [(0,)] if n == 1 else []
    objective = parse_minimize(minimize)
    local = _local(objective)
    net = _Net(inputs, output, sizes)
    if n <= k:
        return _linear(_optimal(net.legs, net.out, net.size, local)[1], n)
    fuse = 600.0 if seconds is None else seconds
    start = time.perf_counter()
    rng = random.Random(seed)
    bar = Bar("auto-hq", chains) if progress else None
    found = []
    for c in range(chains):
        # Different kinds of starting tree explore different parts of the
        # space: random greedy (each chain its own seed), plain greedy, a
        # bisection.
        if c == 1 and n <= 2000:
            tree = greedy_tree(net)
        elif c == 2:
            tree = _bisected(net, rng, 6, rng.uniform(0.02, 0.25))
        else:
            trials = 128 if n <= 1000 else max(1, int(128 * (1000 / n) ** 3))
            tree, _ = _best(net, random_greedy_trees(net, trials, seed + c), objective)
        if moves is None:
            per_tensor = max(500.0, min(4000.0, 10 * _width(net, tree, _Legs(net))))
            count = min(int(per_tensor * n), 300_000)
        else:
            count = moves * n
        found.append(_annealed(net, tree, count, start + fuse, rng, hot, objective,
                               bar and bar.chain(c)))
    best, _ = _best(net, found, objective)
    # Reconfiguration recurses down the tree, and trees of large networks
    # can be nearly as deep as they have leaves.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 2 * n + 1000))
    try:
        best = _reconfigure(net, best, k, start + fuse, local=local)
    finally:
        sys.setrecursionlimit(limit)
    _fused("optimize='auto-hq'", fuse, start)
    return _linear(best, n)
