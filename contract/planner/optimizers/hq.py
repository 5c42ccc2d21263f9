"""``optimize="auto"`` (past dp's range) and ``optimize="auto-hq"``.

Both planners are a pure function of the network and the seed: their
search is counted in trials and moves, never in seconds. A time fuse only
stops a search that has run far past its expected length, and warns.

1. **Starting trees** (:mod:`.starts`): cotengrust's randomised greedy
   trials (Rust), opt_einsum's plain greedy, and for ``auto-hq`` recursive
   bisections (:mod:`.partition`: KaHyPar's when it is installed).
2. **Simulated annealing** (:mod:`.anneal`, its move loop compiled in
   :mod:`.compiled`) of the best starting trees by local rotations, each
   move judged against the cost of the two nodes it changes. Starting from
   a random-greedy tree is what makes ``auto`` beat
   cotengra's ``RandomGreedyOptimizer(128)`` everywhere: greedy finds good
   local structure, annealing repairs the few contractions near the root
   that dominate the cost.
3. **Subtree reconfiguration** (``auto-hq`` only, :func:`.tree.reconfigure`):
   the ``k`` largest sub-contractions under every node re-ordered optimally,
   never widening the tree.

A ``memory_limit`` (elements) caps the largest intermediate: a constraint of
the objective (:mod:`.objective`) for the annealing, the DP and the choice
among trees.

Small networks (up to ``k`` tensors) are solved optimally by DP.

>>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
>>> optimize(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
[(1, 2), (0, 1)]
>>> annealed_greedy(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
[(1, 2), (0, 1)]
"""

from __future__ import annotations

import random
import time
import warnings
from typing import Any, Sequence

from . import compiled
from .anneal import anneal, scale_for
from .objective import FLOPS, Objective, parse_minimize
from .progress import Bar
from .partition import partition_tree
from .greedy import greedy_tree
from .starts import random_greedy_trees
from .graph import Graph, exact_totals, log2_int
from .paths import linear_path
from .tree import Legs, Net, Tree, optimal_tree, reconfigure, tree_totals, tree_width

__all__ = ["annealed_greedy", "narrowed", "optimize"]

Path = list[tuple[int, ...]]


def _trivial(n: int) -> Path | None:
    return [(0,)] if n == 1 else [(0, 1)] if n == 2 else [] if n == 0 else None


# combo's key adds a float factor times the elements written: past 10^308 the
# float overflows, so combo compares totals capped here (as the annealer does).
_COMBO_CAP = 2 ** 1000


def _key(objective: Objective, totals: tuple[int, int, int]) -> tuple:
    """``objective``'s key of a tree from its exact integer totals
    (:func:`.tree.exact_totals`): two trees compare exactly however large
    (float totals overflow at 10^308 and the annealer caps sizes at 2^1000,
    where every large tree looked equal)."""
    if objective.kind == "combo":
        totals = tuple(float(min(x, _COMBO_CAP)) for x in totals)
    return objective.key(*totals)


def _score(graph: Graph, tree: Tree, objective: Objective) -> tuple:
    """``objective``'s exact key of ``tree`` (see :func:`_key`)."""
    return _key(objective, exact_totals(graph, tree))


def _best(graph: Graph, trees: list[Tree], objective: Objective = FLOPS) -> Tree:
    """The tree of ``trees`` with the best exact score (for FLOPs, ties go
    to the narrower tree, then to the first)."""
    return min(trees, key=lambda t: _score(graph, t, objective))


def _flat(tree: Tree) -> tuple[int, ...]:
    """``tree`` in pre-order, -1 for each internal node: equal for equal trees,
    and compared without recursion (Python compares nested tuples by
    recursing, which a deep tree takes past the recursion limit).

    >>> _flat((0, (1, 2)))
    (-1, 0, -1, 1, 2)
    """
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, int):
            out.append(node)
        else:
            out.append(-1)
            stack += [node[1], node[0]]
    return tuple(out)


def _fused(label: str, fuse: float, start: float) -> None:
    if time.perf_counter() - start > fuse:
        warnings.warn(f"{label}: the {fuse:g} s time fuse stopped the search early; this plan "
                      "depends on the machine's speed (pass max_time= to "
                      "contract.optimizer to allow more)", stacklevel=3)


POLISH_HOT = 0.3

# auto-hq's share of moves on the costliest nodes (anneal's ``focus``). A
# partition tree often has one contraction near the root that dominates the
# total, which uniform moves (300 per node) rarely reach: on four KaHyPar
# trees of the 1,000-tensor 3-regular graph, 0.0 left two stuck at 10^52-53,
# 0.05 reached 10^42.0-43.7 and 0.2 10^41.4-43.1; neutral on MERA, better on
# the 757-tensor circuit (10^11.3-11.5 against 10^11.3-13.0).
FOCUS = 0.1


def _annealed(net: Net, tree: Tree, moves: int, deadline: float, rng: random.Random,
              hot: float, objective: Objective, progress: Any, focus: float = 0.0,
              scale: float = 1.0) -> Tree:
    """Anneal by FLOPs; for another objective (or under a memory limit), then
    polish by it for half as many moves (see :mod:`.objective` for why:
    annealed under a limit from the start, a wide start tree often stays
    wide; 3-regular, 100 tensors, limit 2^16: width 2^17 against 2^16).
    ``scale``: see :func:`.anneal.scale_for`."""
    if objective == FLOPS:
        return anneal(net, tree, moves, deadline, rng, hot=hot, cold=0.02,
                      focus=focus, progress=progress, scale=scale)
    polish = moves // 2
    total = moves + polish
    before = progress and (lambda done, _: progress(done, total))
    after = progress and (lambda done, _: progress(moves + done, total))
    tree = anneal(net, tree, moves, deadline, rng, hot=hot, cold=0.02,
                  focus=focus, progress=before, scale=scale)
    # Its own generator, drawn from the search's, so the FLOPs phase of every
    # chain matches the minimize="flops" search's draw for draw.
    return anneal(net, tree, polish, deadline, random.Random(rng.getrandbits(32) ^ 0x5EED),
                  hot=POLISH_HOT, cold=0.02, objective=objective, progress=after, scale=scale)


# The last chain anneals the best tree again for 1/FINAL of a chain's moves:
# a full one (Python loop, 700 moves per tensor) gained 0.00-0.02 in log10
# FLOPs on eight bench networks, 0.06 on the 32x32 lattice and 0.3 on the
# 757-tensor circuit and the 1,000-tensor graph, where chains are 4x longer
# now. The narrowing pass (:func:`narrowed`) gets 1/NARROW.
FINAL = 2
NARROW = 4


def narrowed(net: Net, tree: Tree, legs: Legs, moves: int, deadline: float,
             rng: random.Random, objective: Objective, progress: Any) -> Tree:
    """``tree``, or the tree that a polish under a memory limit of half its
    largest intermediate finds, when that one scores better by ``objective``.

    Annealing by FLOPs alone drifts to wide trees whose cost is barely lower:
    on the 32x32 lattice the best chain ended at 10^13.38 with width 2^35,
    where this polish finds 10^13.37 at 2^33 (cotengra's HyperOptimizer:
    10^13.42 at 2^33). Judged by the objective's exact score, so
    ``minimize="flops"`` keeps a narrower tree only when it costs no more
    FLOPs; ``"size"`` keeps any narrower one.
    """
    width = tree_width(net, tree, legs)
    narrow = anneal(net, tree, moves, deadline, random.Random(rng.getrandbits(32)),
                    hot=POLISH_HOT, cold=0.02, objective=objective.limited(2.0 ** (width - 1)),
                    progress=progress)
    better = objective.key(*tree_totals(net, narrow, legs)) < \
        objective.key(*tree_totals(net, tree, legs))
    return narrow if better else tree


def _local(objective: Objective) -> Any:
    """The objective's node cost for the DP, None for FLOPs (its fast path)."""
    return None if objective == FLOPS else objective.node


def _trials(n: int) -> int:
    """Random greedy trials for ``auto`` on ``n`` tensors: fewer past 1,000
    (cotengrust's trial costs grow faster than the network). Fewer trials
    where annealing does the work was tried and dropped: on the 32x32
    lattice the annealed result follows the start (10^13.67 from 48 trials,
    10^14.20 from 46, in one trial run)."""
    return 48 if n <= 1000 else int(48 * (1000 / n) ** 3)


# ``auto``'s moves per move of its base schedule (:func:`_moves`), which was
# set for a Python move loop at 3-7 µs a move: the compiled loop
# (:mod:`.compiled`) takes 0.16-0.4 µs, and 10x the moves cost 0.01-0.1 s more
# up to 1,000 tensors while gaining 0.7-1.6 in log10 FLOPs on MERA, the
# circuits and the 200-tensor 3-regular graph, 10 on the 1,000-tensor one.
COMPILED_MOVES = 10


# ``auto``'s share of moves on the costliest nodes (anneal's ``focus``) and
# its starting temperature for trees past 2^900 FLOPs, where a few
# contractions near the root are the whole cost and uniform moves (85 per
# tensor at 10,000 tensors) rarely reach them. On the 10,000-tensor 3-regular
# graph from the greedy tree (10^517.39), 850,000 moves: focus 0 -> 10^517.29,
# 0.5 -> 10^512.28 (hot 0.3), 10^506.68 (hot 1), 0.9 -> 10^507.96 (hot 1).
HUGE_FOCUS = 0.5

# ``auto`` anneals while tensors times words per leg set stay below this: the
# annealer keeps three leg bitsets per node, and Net one Python int of as many
# bits as labels per tensor: about 1.1 n^2 + 0.2 n^2 bytes on a 3-regular
# graph (150 MB at 10,000 tensors, 1.9 GB of leaf bitsets alone at 100,000).
# Past it the greedy trees are the plan (see bench/PLANNER.md).
ANNEAL_WORDS = 5_000_000


def _moves(n: int, width: float, words: int = 1) -> int:
    """Annealing moves for ``auto`` from a start tree of ``width``: more for
    wide networks, where the greedy tree is far from the best and annealing
    pays; :data:`COMPILED_MOVES` times the base schedule, at most 2*10^8
    word operations in all (``words`` per leg set, :func:`.compiled.words`).
    """
    per_tensor = max(60.0, min(1000.0, 1.5 * width)) * COMPILED_MOVES
    return min(int(per_tensor * n), 1_000_000 * COMPILED_MOVES, 200_000_000 // words)


def annealed_greedy(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
                    memory_limit: int | None = None, *, seed: int = 0,
                    fuse: float = 60.0, minimize: Any = "flops",
                    progress: bool = False) -> Path:
    """``optimize="auto"``'s choice past ``dp``'s range.

    The cheapest of cotengrust's random greedy trials (its plain greedy past
    3,600 tensors) and opt_einsum's greedy (:func:`.greedy.greedy_tree`, its
    path in time linear in the network), annealed (see :func:`_trials` and
    :func:`_moves` for how many; not past :data:`ANNEAL_WORDS`). Trees are
    ranked by their exact costs (:func:`_score`), the annealed one against
    its start, so ``auto`` is never worse than either greedy, at any size.
    Deterministic for a given ``seed``. ``fuse`` seconds stop
    a run that is far slower than expected (with a warning). ``minimize`` is
    the objective (:mod:`.objective`): the best start and the annealing
    judge trees by it. ``progress`` draws a bar on stderr. ``memory_limit``
    (elements) caps the largest intermediate: a constraint of the objective
    (see :mod:`.objective`), honoured whenever annealing can reach it.

    >>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
    >>> annealed_greedy(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
    [(1, 2), (0, 1)]
    """
    n = len(inputs)
    trivial = _trivial(n)
    if trivial is not None:
        return trivial
    objective = parse_minimize(minimize).limited(memory_limit)
    start = time.perf_counter()
    graph = Graph(inputs, output, sizes)
    words = compiled.words(graph)
    net = Net(inputs, output, sizes) if n * words <= ANNEAL_WORDS else None
    candidates = random_greedy_trees(graph if net is None else net, _trials(n), seed)
    candidates.append(greedy_tree(graph))
    totals = [exact_totals(graph, t) for t in candidates]
    pick = min(range(len(candidates)), key=lambda c: _key(objective, totals[c]))
    tree, score = candidates[pick], _key(objective, totals[pick])
    if net is not None:
        flops, _, biggest = totals[pick]
        bar = Bar("annealed-greedy", 1) if progress else None
        scale = scale_for(log2_int(max(flops, 1)))
        # Past 2^900 FLOPs (scaled costs) the cost is a handful of contractions
        # near the root: see HUGE_FOCUS.
        hot, focus = (0.3, 0.0) if scale == 1.0 else (1.0, HUGE_FOCUS)
        annealed = _annealed(net, tree, _moves(n, log2_int(biggest), words), start + fuse,
                             random.Random(seed), hot, objective, bar and bar.chain(0),
                             focus, scale)
        # Ranked exactly: the annealer ranks by its own (scaled, capped)
        # sums, and auto may not lose to the start it annealed.
        if annealed is not tree and _score(graph, annealed, objective) <= score:
            tree = annealed
    _fused("optimize='auto'", fuse, start)
    return linear_path(tree, n)


def _hq_schedule(n: int, width: float,
                 words: int = 1) -> tuple[int, tuple[int, int], int, int]:
    """(random greedy trials, (random greedy chains, partition trees), moves
    per chain, reconfiguration k) for ``auto-hq`` on ``n`` tensors whose plain greedy tree has ``width``
    (log2 of its largest intermediate): counts, never seconds. ``words`` as
    for :func:`_moves`.

    A chain gets 3,000 moves per tensor (at most 10^6), sized for the
    compiled loop: against the Python loop's 700 (at most 200,000, below)
    that gained 0.0-0.8 in log10 FLOPs (PEPS 8x8 14.33 -> 14.25, the 757-tensor circuit 10.53 ->
    10.42, 3-regular 1,000 41.9 -> 41.2) and narrowed three rows by
    2^1-2^4, for 0.1-1.6 s; 10,000 per tensor gained another 0.0-0.07 at twice
    the time. Past that point the subtree reconfiguration and the KaHyPar
    trees, not the moves, are most of auto-hq's time.

    One chain per starting tree (random greedy, greedy, partitions); the
    best is annealed again for as many moves. The counts were set against
    the planner bench on a quiet machine (bench/PLANNER.md), for the Python
    loop: 700 moves per tensor (at most 200,000) kept every row's FLOPs and
    width while planning in under a tenth of cotengra's hyper-optimizer's
    time; 1,000 per tensor gained nothing measurable. Annealing is noisy (the same
    start ends 10^15.6-10^16.2 on the MERA row over four seeds): short
    chains from many starts beat a few long ones. On MERA random greedy
    starts (each chain its own seed) anneal best, on large random graphs
    partition trees (10^42 against 10^53 at 1,000 tensors). A random greedy trial
    costs about 0.1 µs per tensor and unit of width (3.6 ms on the 32x32
    lattice, 26 ms on the 1,000-tensor 3-regular graph), so trials shrink
    with ``n * width``; partition trees are what large random graphs need,
    and cost ~0.7 ms per tensor each.
    """
    trials = min(128, max(2, int(4e6 / (n * max(width, 1.0)))))
    moves = min(3000 * n, 1_000_000, 200_000_000 // words)
    if n <= 100:  # (random greedy chains, partition trees)
        # Chains are cheap here (~0.02 s each at 50 tensors), and annealing
        # is noisy: with 2 + 2 chains the 50-tensor 3-regular graph ended at
        # 41,872-42,512 FLOPs over six seeds, with 8 + 4 at 41,808 (its best
        # known, from 48 chains of 4x the moves) on five of six, for 0.2 s.
        return trials, (8, 4), moves, 8
    if n <= 400:
        return trials, (4, 3), moves, 8
    # Where a trial is dear (n * width past 5*10^5: fewer than 8 of them),
    # the network is a wide random graph, where partition trees win anyway
    # (3-regular 1,000: random greedy chain 10^56, partition chains 10^42):
    # its random greedy chain is dropped (3-regular 2,000: 10^82.6 in 12.5 s
    # -> 10^81.5 in 7.1 s).
    return trials, (1 if trials >= 8 else 0, 2), moves, 6


def optimize(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
             memory_limit: int | None = None, *, chains: int | None = None,
             moves: int | None = None, k: int | None = None, seconds: float | None = None,
             seed: int = 0, hot: float = 1.0, minimize: Any = "flops",
             progress: bool = False) -> Path:
    """``optimize="auto-hq"``: see the module docstring.

    Starting trees: the best of cotengrust's random greedy trials,
    opt_einsum's greedy and recursive bisections
    (:func:`.partition.partition_tree`: KaHyPar when it is installed); the
    first ``chains`` of them (all by default) are each annealed for ``moves``
    rotations per tensor (see :func:`_hq_schedule` for the defaults), the
    best again for as many, then reconfigured with ``k`` parts.
    ``seconds`` (default 600) is only a fuse. Deterministic for a given
    ``seed``. ``minimize`` is the objective (:mod:`.objective`) that the
    annealing, the reconfiguration and the choice among chains follow;
    ``memory_limit`` (elements) caps the largest intermediate (a
    constraint of the objective; the reconfiguration never breaks it, nor
    widens the tree); ``progress`` draws one bar per chain on stderr.

    >>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
    >>> optimize(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
    [(1, 2), (0, 1)]
    """
    n = len(inputs)
    if n < 2:
        return [(0,)] if n == 1 else []
    objective = parse_minimize(minimize).limited(memory_limit)
    local = _local(objective)
    net = Net(inputs, output, sizes)
    graph = Graph(inputs, output, sizes)
    if n <= (8 if k is None else k):
        return linear_path(optimal_tree(net.legs, net.out, net.size, local)[1], n)
    plain = random_greedy_trees(net, 0, seed)[0]  # one plain greedy tree: the width probe
    trials, parts, count, k_auto = _hq_schedule(n, tree_width(net, plain, Legs(net)),
                                                compiled.words(net))
    k = k_auto if k is None else k
    count = count if moves is None else moves * n
    fuse = 600.0 if seconds is None else seconds
    start = time.perf_counter()
    rng = random.Random(seed)
    kinds = ["random greedy"] * parts[0] + (["greedy"] if n <= 100 else []) + \
        ["partition"] * parts[1]
    kinds = kinds[:len(kinds) if chains is None else max(1, chains)]
    bar = Bar("auto-hq", len(kinds) + 2) if progress else None
    found: list[Tree] = []
    starts: set[tuple[int, ...]] = set()
    for c, kind in enumerate(kinds):
        if kind == "random greedy":
            # The first chain gets every trial, later ones a quarter (their
            # seeds matter more than their trial counts).
            few = trials if c == 0 else max(2, trials // 4)
            tree = _best(graph, random_greedy_trees(net, few, seed + c), objective)
        elif kind == "greedy":
            tree = greedy_tree(graph)
        else:
            tree = partition_tree(net, rng, rng.uniform(0.01, 0.3))
        key = _flat(tree)
        if key in starts:  # KaHyPar often bisects a lattice the same way twice
            continue
        starts.add(key)
        found.append(_annealed(net, tree, count, start + fuse, rng, hot, objective,
                               bar and bar.chain(c), FOCUS))
    # The guarantee of never losing to greedy (linear-time: any size).
    found.append(greedy_tree(graph))
    best = _best(graph, found, objective)
    best = _annealed(net, best, count // FINAL, start + fuse, rng, 0.3, objective,
                     bar and bar.chain(len(kinds)), FOCUS)
    best = _best(graph, [best] + found, objective)
    legs = Legs(net)
    if objective.limit is None:
        best = narrowed(net, best, legs, count // NARROW, start + fuse, rng, objective,
                         bar and bar.chain(len(kinds) + 1))
    # The reconfiguration may not widen the tree (nor break the limit).
    cap = 2.0 ** tree_width(net, best, legs)
    if objective.limit is not None:
        cap = max(min(cap, objective.limit), 1.0)
    best = reconfigure(net, best, k, start + fuse, local=local, cap=cap)
    _fused("optimize='auto-hq'", fuse, start)
    return linear_path(best, n)
