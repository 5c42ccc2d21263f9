"""Starting trees for the annealer by greedy search: cotengrust's Rust search,
or ours in Python (recursive bisection is :mod:`.partition`'s).

cotengrust (a core dependency) runs a randomised greedy trial in microseconds
per tensor; the Python greedy here is its fallback, used only when cotengrust
cannot be imported (plans then differ from those made with it). Measured on
quimb networks (``bench/PLANNER.md``): 32 cotengrust trials take 8 ms on a
72-tensor PEPS norm and 55 ms on a 369-tensor circuit, where one Python greedy
tree takes 10 ms and 90 ms.

>>> from .tree import Net, tree_flops
>>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...           {"a": 8, "b": 16, "c": 32, "d": 4})
>>> [tree_flops(net, t) for t in random_greedy_trees(net, trials=4, seed=0)]
[2560.0]
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Any

import opt_einsum

from .tree import Net, Tree, bit_list, tree_of_linear, tree_of_ssa

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


def _rust_inputs(net: Net) -> tuple[list[tuple[str, ...]], tuple[str, ...], dict[str, int]]:
    """The network in cotengrust's terms: one character per leg (its bit
    position through opt_einsum's symbols), terms in a fixed order."""
    symbols = [opt_einsum.get_symbol(i) for i in range(len(net.log))]
    inputs = [tuple(symbols[i] for i in bit_list(b)) for b in net.legs]
    output = tuple(symbols[i] for i in bit_list(net.out))
    sizes = {s: round(2.0 ** x) for s, x in zip(symbols, net.log)}
    return inputs, output, sizes


def greedy_tree(net: Net) -> Tree:
    """opt_einsum's plain greedy as a tree: the baseline ``auto`` never loses to."""
    inputs = [frozenset(bit_list(b)) for b in net.legs]
    sizes = {i: round(2.0 ** x) for i, x in enumerate(net.log)}
    path = opt_einsum.paths.greedy(inputs, frozenset(bit_list(net.out)), sizes)
    return tree_of_linear(path, len(net.legs))


def random_greedy_trees(net: Net, trials: int, seed: int) -> list[Tree]:
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


def _greedy(net: Net, alpha: float, temp: float, rng: random.Random) -> Tree:
    """One randomised greedy tree over ``net``'s leaves."""
    legs: dict[int, int] = dict(enumerate(net.legs))
    tree: dict[int, Tree] = {n: n for n in legs}
    holders: dict[int, set[int]] = {}
    for n, b in legs.items():
        for l in bit_list(b):
            holders.setdefault(l, set()).add(n)
    size = {n: net.size(b) for n, b in legs.items()}
    next_id = len(legs)

    def result(a: int, b: int) -> int:
        both = legs[a] | legs[b]
        keep = net.out
        for l in bit_list(legs[a] & legs[b]):
            if len(holders[l]) > 2:
                keep |= 1 << l
        # Legs only one of a, b holds stay when anyone else holds them.
        for l in bit_list(both ^ (legs[a] & legs[b])):
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
            for l in bit_list(legs[n]):
                holders[l].discard(n)
        for l in bit_list(out):
            holders.setdefault(l, set()).add(c)
        legs[c], tree[c], size[c] = out, (tree.pop(a), tree.pop(b)), net.size(out)
        del legs[a], legs[b], size[a], size[b]
        for n in {m for l in bit_list(out) for m in holders[l]} - {c}:
            push(n, c)
    # Disconnected pieces: outer products, smallest first.
    rest = sorted(legs, key=lambda n: size[n])
    root = tree[rest[0]]
    for n in rest[1:]:
        root = (root, tree[n])
    return root
