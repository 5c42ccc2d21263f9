"""Starting trees for the annealer: greedy (cotengrust's Rust search, or ours
in Python), and recursive bisection.

cotengrust (a core dependency) runs a randomised greedy trial in microseconds
per tensor; the Python greedy here is its fallback, used only when cotengrust
cannot be imported (plans then differ from those made with it). Measured on
quimb networks (``bench/PLANNER.md``): 32 cotengrust trials take 8 ms on a
72-tensor PEPS norm and 55 ms on a 369-tensor circuit, where one Python greedy
tree takes 10 ms and 90 ms.

>>> from .tree import _Net, tree_flops
>>> net = _Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...            {"a": 8, "b": 16, "c": 32, "d": 4})
>>> [tree_flops(net, t) for t in random_greedy_trees(net, trials=4, seed=0)]
[2560.0]
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Any, Callable

import opt_einsum

from .tree import Tree, _bit_list, _Net, _optimal, _replace, tree_of_linear, tree_of_ssa

try:
    import cotengrust
except ImportError:  # pragma: no cover - exercised by the fallback test
    cotengrust = None

__all__ = ["greedy_tree", "random_greedy_trees"]

# cotengra's RandomGreedyOptimizer ranges: score = size_ab / costmod -
# (size_a + size_b) * costmod, perturbed by Gumbel noise of temperature T
# (sampled log-uniformly).
_COSTMOD = (0.1, 4.0)
_TEMPERATURE = (0.001, 1.0)


def _rust_inputs(net: _Net) -> tuple[list[tuple[str, ...]], tuple[str, ...], dict[str, int]]:
    """The network in cotengrust's terms: one character per leg (its bit
    position through opt_einsum's symbols), terms in a fixed order."""
    symbols = [opt_einsum.get_symbol(i) for i in range(len(net.log))]
    inputs = [tuple(symbols[i] for i in _bit_list(b)) for b in net.legs]
    output = tuple(symbols[i] for i in _bit_list(net.out))
    sizes = {s: round(2.0 ** x) for s, x in zip(symbols, net.log)}
    return inputs, output, sizes


def greedy_tree(net: _Net) -> Tree:
    """opt_einsum's plain greedy as a tree: the baseline ``auto`` never loses to."""
    inputs = [frozenset(_bit_list(b)) for b in net.legs]
    sizes = {i: round(2.0 ** x) for i, x in enumerate(net.log)}
    path = opt_einsum.paths.greedy(inputs, frozenset(_bit_list(net.out)), sizes)
    return tree_of_linear(path, len(net.legs))


def random_greedy_trees(net: _Net, trials: int, seed: int) -> list[Tree]:
    """The best of ``trials`` randomised greedy trees (cotengrust's, ranked by
    its FLOP count), or, without cotengrust, ``trials`` Python greedy trees
    with the same kind of random (costmod, temperature)."""
    n = len(net.legs)
    if cotengrust is not None and trials < 1:  # a single plain greedy tree
        inputs, output, sizes = _rust_inputs(net)
        return [tree_of_ssa(cotengrust.optimize_greedy(inputs, output, sizes, use_ssa=True), n)]
    if cotengrust is not None:
        inputs, output, sizes = _rust_inputs(net)
        path, _ = cotengrust.optimize_random_greedy_track_flops(
            inputs, output, sizes, ntrials=trials, costmod=_COSTMOD, temperature=_TEMPERATURE,
            seed=seed, use_ssa=True)
        return [tree_of_ssa(path, n)]
    rng = random.Random(seed)
    trees = [_greedy(net, 1.0, 0.0, rng)]
    for _ in range(trials - 1):  # none when trials < 1
        cm = rng.uniform(*_COSTMOD)
        temp = math.exp(rng.uniform(*map(math.log, _TEMPERATURE)))
        trees.append(_greedy(net, cm**2, temp, rng))
    return trees


def _greedy(net: _Net, alpha: float, temp: float, rng: random.Random) -> Tree:
    """One randomised greedy tree over ``net``'s leaves."""
    legs: dict[int, int] = dict(enumerate(net.legs))
    tree: dict[int, Tree] = {n: n for n in legs}
    holders: dict[int, set[int]] = {}
    for n, b in legs.items():
        for l in _bit_list(b):
            holders.setdefault(l, set()).add(n)
    size = {n: net.size(b) for n, b in legs.items()}
    next_id = len(legs)

    def result(a: int, b: int) -> int:
        both = legs[a] | legs[b]
        keep = net.out
        for l in _bit_list(legs[a] & legs[b]):
            if len(holders[l]) > 2:
                keep |= 1 << l
        # Legs only one of a, b holds stay when anyone else holds them.
        for l in _bit_list(both ^ (legs[a] & legs[b])):
            if len(holders[l]) > 1:
                keep |= 1 << l
        return both & keep

    def score(a: int, b: int) -> tuple[float, int]:
        out = result(a, b)
        s = net.size(out) - alpha * (size[a] + size[b])
        s = math.copysign(math.log2(1 + abs(s)), s)
        if temp:
            s -= temp * -math.log(-math.log(rng.random() or 1e-12))
        return s, out

    heap: list[tuple[float, int, int, int]] = []

    def push(a: int, b: int) -> None:
        s, out = score(a, b)
        heapq.heappush(heap, (s, min(a, b), max(a, b), out))

    seen = set()
    for hs in holders.values():
        for a in hs:
            for b in hs:
                if a < b and (a, b) not in seen:
                    seen.add((a, b))
                    push(a, b)
    while heap:
        _, a, b, out = heapq.heappop(heap)
        if a not in legs or b not in legs:
            continue
        c = next_id
        next_id += 1
        for n in (a, b):
            for l in _bit_list(legs[n]):
                holders[l].discard(n)
        for l in _bit_list(out):
            holders.setdefault(l, set()).add(c)
        legs[c], tree[c], size[c] = out, (tree.pop(a), tree.pop(b)), net.size(out)
        del legs[a], legs[b], size[a], size[b]
        for n in {m for l in _bit_list(out) for m in holders[l]} - {c}:
            push(n, c)
    # Disconnected pieces: outer products, smallest first.
    rest = sorted(legs, key=lambda n: size[n])
    root = tree[rest[0]]
    for n in rest[1:]:
        root = (root, tree[n])
    return root


Split = Callable[[list[int], dict[int, list[int]], _Net, random.Random, float],
                 tuple[list[int], list[int]]]


def _bisected(net: _Net, rng: random.Random, k: int, imbalance: float,
              split: "Split | None" = None) -> Tree:
    """A tree by recursive bisection: split the tensors in two halves cutting
    few (log-weighted) legs, recurse, and order groups of ``k`` or fewer
    optimally. Partitioning sees the whole network, where greedy only sees
    the next pair; on large graphs it finds far better starting trees.
    ``split(group, holders, net, rng, imbalance)`` makes each cut (default
    :func:`_bisect`; :mod:`.partition` passes KaHyPar's)."""
    split = _bisect if split is None else split
    size = net.size
    holders: dict[int, list[int]] = {}
    for v, b in enumerate(net.legs):
        for l in _bit_list(b & ~net.out):
            holders.setdefault(l, []).append(v)

    def build(group: list[int]) -> Tree:
        if len(group) <= k:
            inside = set(group)
            out = 0
            for v in group:  # legs needed outside the group, or in the output
                for l in _bit_list(net.legs[v]):
                    if net.out >> l & 1 or any(u not in inside for u in holders.get(l, ())):
                        out |= 1 << l
            sub = _optimal([net.legs[v] for v in group], out, size)[1]
            return _replace(sub, group)
        left, right = split(group, holders, net, rng, imbalance)
        return (build(left), build(right))

    return build(list(range(len(net.legs))))


def _bisect(group: list[int], holders: dict[int, list[int]], net: _Net, rng: random.Random,
            imbalance: float) -> tuple[list[int], list[int]]:
    """Two halves of ``group``: grown by breadth-first search from a random
    tensor, then improved by Fiduccia-Mattheyses passes (move the tensor that
    most reduces the cut, lock it, keep the best prefix of moves)."""
    inside = set(group)
    legs = {v: [l for l in _bit_list(net.legs[v] & ~net.out)] for v in group}
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

