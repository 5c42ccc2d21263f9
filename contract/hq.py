"""``optimize="auto-hq"``: a path optimizer for large networks.

Three stages, all plain Python on static shapes:

1. **Starting trees.** One per annealing run: plain greedy (the next pair by
   ``size(out) - alpha * (size(a) + size(b))``, optionally perturbed by Gumbel
   noise of temperature ``T``), or a recursive bisection (halves grown by
   breadth-first search, refined by Fiduccia-Mattheyses passes that minimise
   the log-weighted cut, groups of six ordered optimally).
2. **Simulated annealing** (``contract.anneal``) of each starting tree by
   local rotations, each move judged against the cost of the two nodes it
   changes. This is where the quality comes from: on random 3-regular graphs
   of 150-200 tensors it finds paths 1.4-11x cheaper than cotengra's
   hyper-optimizer (without KaHyPar) in a twenty-fifth of its time
   (``bench/PLANNER.md``).
3. **Subtree reconfiguration** of the cheapest tree: for every internal node,
   the ``k`` largest sub-contractions below it are re-ordered optimally by
   dynamic programming over subsets (``3^k`` splits), until nothing improves.
   It catches what single rotations cannot reach.

Small networks (up to ``k`` tensors) are solved optimally by the same DP.

>>> import opt_einsum
>>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
>>> optimize(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
[(1, 2), (0, 1)]
"""

from __future__ import annotations

import heapq
import math
import random
import time
from typing import Any, Callable, Sequence

from .anneal import anneal

__all__ = ["annealed_greedy", "optimize", "tree_flops"]

# A contraction tree: a leaf (operand index) or a pair of trees.
Tree = Any


class _Net:
    """Legs as bit positions, their log2 sizes, and how many tensors hold each."""

    def __init__(self, inputs: Sequence[frozenset], output: frozenset, sizes: dict) -> None:
        labels = sorted(set().union(*inputs) | set(output), key=str)
        self.index = {l: n for n, l in enumerate(labels)}
        self.log = [math.log2(max(sizes[l], 1)) for l in labels]
        self.legs = [self.bits(t) for t in inputs]
        self.out = self.bits(output)
        self.count = [0] * len(labels)
        for t in inputs:
            for l in t:
                self.count[self.index[l]] += 1
        self.hyper = sum(1 << n for n, c in enumerate(self.count) if c > 2)
        # Legs on one tensor only (and not in the output) are summed at its
        # first contraction.
        self.single = sum(1 << n for n, c in enumerate(self.count) if c == 1)
        # For each hyperedge (3+ holders), the leaves holding it.
        self.holders = {l: sum(1 << v for v, b in enumerate(self.legs) if b >> l & 1)
                        for l in _bit_list(self.hyper)}
        self.size = _size_function(self.log)

    def bits(self, labels: Any) -> int:
        b = 0
        for l in labels:
            b |= 1 << self.index[l]
        return b

    def join(self, a: int, b: int, leaves: int) -> int:
        """Legs of the merge of nodes with legs ``a`` and ``b``, ``leaves``
        being the leaves under both: those in the output or held elsewhere."""
        # An ordinary leg (two holders) closes when both holders are inside,
        # a single-holder leg at once; a hyperedge when all its holders are
        # among ``leaves``.
        closed = ((a & b) | ((a | b) & self.single)) & ~self.out & ~self.hyper
        for l in _bit_list((a | b) & self.hyper & ~self.out):
            if self.holders[l] & ~leaves == 0:
                closed |= 1 << l
        return (a | b) & ~closed


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


def _bit_list(bits: int) -> list[int]:
    out, n = [], 0
    while bits:
        if bits & 1:
            out.append(n)
        bits >>= 1
        n += 1
    return out


class _Legs:
    """Output legs of every node of a tree, computed bottom-up and memoised.

    Internal nodes are keyed by ``id``; the node itself is stored alongside
    so its id cannot be reused while the entry lives.
    """

    def __init__(self, net: _Net) -> None:
        self.net = net
        self.memo: dict[int, tuple[Tree, int, int]] = {}

    def __call__(self, node: Tree) -> int:
        if isinstance(node, int):
            return self.net.legs[node]
        hit = self.memo.get(id(node))
        if hit is not None:
            return hit[1]
        stack = [node]
        while stack:  # iterative post-order: trees can be deep
            top = stack[-1]
            todo = [c for c in top if not isinstance(c, int) and id(c) not in self.memo]
            if todo:
                stack += todo
                continue
            stack.pop()
            a, b = top
            leaves = (1 << a if isinstance(a, int) else self.memo[id(a)][2]) | \
                (1 << b if isinstance(b, int) else self.memo[id(b)][2])
            self.memo[id(top)] = (top, self.net.join(self(a), self(b), leaves), leaves)
        return self.memo[id(node)][1]


def tree_flops(net: _Net, tree: Tree, legs: "_Legs | None" = None) -> float:
    """Total pairwise-contraction cost (products of sizes) of a tree."""
    legs = legs or _Legs(net)
    total = 0.0
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, int):
            continue
        total += net.size(legs(node[0]) | legs(node[1]))
        stack += [node[0], node[1]]
    return total


def _optimal(tensors: list[int], out: int, size: Any) -> tuple[float, Tree]:
    """DP over subsets: the cheapest tree over ``tensors`` (leg bitsets) whose
    result keeps ``out``; leaves of the returned tree are positions."""
    k = len(tensors)
    full = (1 << k) - 1
    union = [0] * (1 << k)
    for s in range(1, 1 << k):
        low = s & -s
        union[s] = union[s ^ low] | tensors[low.bit_length() - 1]
    # A subset's result keeps legs that its complement or the output needs;
    # a single tensor is taken as it is (its own legs are summed when it is
    # first contracted, as ``tree_flops`` counts them).
    result = [union[s] & (union[full ^ s] | out) if s & (s - 1) else union[s]
              for s in range(1 << k)]
    best: list[float] = [0.0] * (1 << k)
    choice: list[int] = [0] * (1 << k)
    for s in range(1, 1 << k):
        if s & (s - 1) == 0:
            continue
        low = s & -s
        top = s ^ low
        cheapest, pick = math.inf, 0
        sub = top
        # Enumerate splits A | B = s with the lowest bit in A (each split once).
        while True:
            a = low | sub
            b = s ^ a
            if b:
                c = best[a] + best[b]
                if c < cheapest:
                    c += size(result[a] | result[b])
                    if c < cheapest:
                        cheapest, pick = c, a
            if sub == 0:
                break
            sub = (sub - 1) & top
        best[s], choice[s] = cheapest, pick

    def build(s: int) -> Tree:
        if s & (s - 1) == 0:
            return s.bit_length() - 1
        return (build(choice[s]), build(s ^ choice[s]))

    return best[full], build(full)


def _size_function(log: list[float]) -> Callable[[int], float]:
    """Size (product of leg sizes) of a leg bitset, given each leg's log2
    size: one mask per distinct size, so a lookup is a popcount and a power
    per distinct size (networks rarely have more than a few), whatever the
    number of legs.

    >>> _size_function([1.0, 0.0, 3.0, 1.0])(0b1101)
    32.0
    """
    masks: dict[float, int] = {}
    for n, x in enumerate(log):
        if x:  # size-1 legs cost nothing
            masks[2.0 ** x] = masks.get(2.0 ** x, 0) | 1 << n
    if len(masks) == 1:  # the common case: one bond dimension
        (base, mask), = masks.items()
        return lambda bits: base ** (bits & mask).bit_count()
    pairs = list(masks.items())

    def size(bits: int) -> float:
        total = 1.0
        for base, mask in pairs:
            total *= base ** (bits & mask).bit_count()
        return total

    return size


def _reconfigure(net: _Net, tree: Tree, k: int, deadline: float, floor: float = 1e-4) -> Tree:
    """Rewrite subtrees with optimal orders of their ``k`` costliest parts,
    skipping subtrees that cost less than ``floor`` of the whole."""
    size = net.size
    legs = _Legs(net)

    def cost(node: Tree) -> float:
        return 0.0 if isinstance(node, int) else size(legs(node[0]) | legs(node[1]))

    # Keyed by id, holding the node so the id stays unique while memoised.
    totals: dict[int, tuple[Tree, float]] = {}
    skip = 0.0

    def total(node: Tree) -> float:
        if isinstance(node, int):
            return 0.0
        hit = totals.get(id(node))
        if hit is None:  # children are always visited (and memoised) first
            hit = totals[id(node)] = (node, cost(node) + total(node[0]) + total(node[1]))
        return hit[1]

    def visit(node: Tree) -> Tree:
        if isinstance(node, int):
            return node
        a, b = visit(node[0]), visit(node[1])
        if a is not node[0] or b is not node[1]:
            node = (a, b)
        # Subtrees costing a sliver of the whole cannot change the total
        # much: skipping them saves most of the DP work.
        if time.perf_counter() > deadline or total(node) < skip:
            return node
        frontier = [node[0], node[1]]
        while len(frontier) < k:
            inner = [f for f in frontier if not isinstance(f, int)]
            if not inner:
                break
            big = max(inner, key=cost)
            frontier.remove(big)
            frontier += [big[0], big[1]]
        if len(frontier) >= 3:
            old = total(node) - sum(total(f) for f in frontier)
            new, sub = _optimal([legs(f) for f in frontier], legs(node), size)
            if new < old * (1 - 1e-9):
                node = _replace(sub, frontier)
        total(node)
        return node

    previous = math.inf
    while time.perf_counter() < deadline:
        skip = total(tree) * floor
        tree = visit(tree)
        now = total(tree)
        if now >= previous * (1 - 1e-9):
            break
        previous = now
    return tree


def _bisected(net: _Net, rng: random.Random, k: int, imbalance: float) -> Tree:
    """A tree by recursive bisection: split the tensors in two halves cutting
    few (log-weighted) legs, recurse, and order groups of ``k`` or fewer
    optimally. Partitioning sees the whole network, where greedy only sees
    the next pair; on large graphs it finds far better starting trees."""
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
        left, right = _bisect(group, holders, net, rng, imbalance)
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


def _replace(sub: Tree, frontier: list[Tree]) -> Tree:
    if isinstance(sub, int):
        return frontier[sub]
    return (_replace(sub[0], frontier), _replace(sub[1], frontier))


def _linear(tree: Tree, n: int) -> list[tuple[int, int]]:
    """A tree over leaves 0..n-1 as opt_einsum's linear path."""
    live = list(range(n))
    path: list[tuple[int, int]] = []
    next_id = n

    def walk(node: Tree) -> int:
        nonlocal next_id
        if isinstance(node, int):
            return node
        a, b = walk(node[0]), walk(node[1])
        i, j = sorted((live.index(a), live.index(b)))
        path.append((i, j))
        del live[j], live[i]
        live.append(next_id)
        next_id += 1
        return next_id - 1

    walk(tree)
    return path


def annealed_greedy(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
                    memory_limit: int | None = None, *, moves: int = 1000,
                    seconds: float | None = None) -> list[tuple[int, int]]:
    """``optimize="auto"``'s choice past ``dp``'s range: a plain greedy tree,
    annealed for ``moves`` rotations per tensor; the whole search takes at
    most ``seconds`` (default 0.05 s + 2 ms per tensor, at most 1 s). Never
    worse than the greedy tree it starts from, and far better on large
    graphs: on a random 3-regular graph of 500 tensors greedy's path costs
    2^128, this one's 2^103 after 1 s (``bench/PLANNER.md`` has 50-200
    tensors).
    Deterministic unless the time cap cuts the run short.
    ``memory_limit`` is accepted for the interface and not used.

    >>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
    >>> annealed_greedy(ins, frozenset("ad"), {"a": 8, "b": 16, "c": 32, "d": 4})
    [(1, 2), (0, 1)]
    """
    n = len(inputs)
    if n < 3:
        return [(0,)] if n == 1 else [(0, 1)] if n == 2 else []
    start = time.perf_counter()
    budget = min(1.0, 0.05 + 0.002 * n) if seconds is None else seconds
    net = _Net(inputs, output, sizes)
    rng = random.Random(0)
    tree = _greedy(net, 1.0, 0.0, rng)
    return _linear(anneal(net, tree, moves * n, start + budget, rng), n)


def optimize(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
             memory_limit: int | None = None, *, chains: int = 2, moves: int = 10_000,
             k: int = 8, seconds: float | None = None,
             seed: int = 0) -> list[tuple[int, int]]:
    """Path over ``inputs`` (opt_einsum's optimizer interface), see the module
    docstring: ``chains`` annealing runs of ``moves`` rotations per tensor
    each, then reconfiguration with ``k`` parts. ``seconds`` (default 0.1 s
    per tensor, at most 20 s) caps the whole search: each run gets an equal
    share of 90% of it, the polish the rest. Deterministic for a given
    ``seed`` unless the cap cuts a run short. ``memory_limit`` is accepted
    for the interface and not used."""
    n = len(inputs)
    if n < 2:
        return [(0,)] if n == 1 else []
    net = _Net(inputs, output, sizes)
    if n <= k:
        return _linear(_optimal(net.legs, net.out, net.size)[1], n)
    budget = min(20.0, 0.1 * n) if seconds is None else seconds
    start = time.perf_counter()
    rng = random.Random(seed)
    legs = _Legs(net)
    found = []
    for c in range(chains):
        # Start from different kinds of tree, so that the runs explore
        # different parts of the space: plain greedy, a bisection, then
        # greedy with random (alpha, T), alternating with bisections.
        if c % 2:
            tree = _bisected(net, rng, 6, rng.uniform(0.02, 0.25))
        elif c == 0:
            tree = _greedy(net, 1.0, 0.0, rng)
        else:
            tree = _greedy(net, rng.uniform(0.0, 1.5), rng.uniform(0.0, 1.0), rng)
        now = time.perf_counter()
        share = (start + 0.9 * budget - now) / (chains - c)
        found.append(anneal(net, tree, moves * n, now + share, rng))
    best = min(found, key=lambda t: tree_flops(net, t, legs))
    return _linear(_reconfigure(net, best, k, start + budget), n)
