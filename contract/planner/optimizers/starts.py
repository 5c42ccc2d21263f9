"""Randomised greedy starting trees for the annealer: cotengrust's Rust search,
or ours in Python (recursive bisection is :mod:`.partition`'s, opt_einsum's
plain greedy :mod:`.greedy`'s, the ``random-greedy`` names :mod:`.sampled`'s).

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

import numpy as np
import opt_einsum

from .graph import Graph
from .paths import tree_of_ssa
from .tree import Net, Tree, bit_list

try:
    import cotengrust
except ImportError:  # pragma: no cover - exercised by the fallback test
    cotengrust = None

__all__ = ["random_greedy_trees"]

# cotengra's RandomGreedyOptimizer ranges: score = size_ab / costmod -
# (size_a + size_b) * costmod, perturbed by Gumbel noise of temperature T
# (sampled log-uniformly).
_COSTMOD = (0.1, 4.0)
_TEMPERATURE = (0.001, 1.0)


def _symbol(i: int) -> str:
    """opt_einsum's symbol for label ``i``, moved past the surrogate code
    points from label 55,156 on: cotengrust takes Rust chars, which cannot be
    surrogates, and ``opt_einsum.get_symbol`` gives them for labels 55,156 to
    55,295 (a 100,000-tensor graph has 150,000 labels).

    >>> _symbol(0), _symbol(55155) == chr(0xD7FF), _symbol(55156) == chr(0xE000)
    ('a', True, True)
    """
    return opt_einsum.get_symbol(i) if i + 140 < 0xD800 else chr(i + 140 + 0x800)


def _rust_inputs(net: Net | Graph) -> tuple[list[tuple[str, ...]], tuple[str, ...],
                                            dict[str, int]]:
    """The network in cotengrust's terms: one character per leg (its label
    number through :func:`_symbol`), terms in a fixed order."""
    if isinstance(net, Graph):
        terms = [t.tolist() for t in net.terms]
        out = np.flatnonzero(net.out).tolist()
        dims = [net.bases[k] for k in net.klass.tolist()]
    else:
        terms, out = [bit_list(b) for b in net.legs], bit_list(net.out)
        dims = [round(2.0 ** x) for x in net.log]
    symbols = [_symbol(i) for i in range(len(dims))]
    inputs = [tuple(symbols[i] for i in t) for t in terms]
    return inputs, tuple(symbols[i] for i in out), dict(zip(symbols, dims))


def random_greedy_trees(net: Net | Graph, trials: int, seed: int) -> list[Tree]:
    """The best of ``trials`` randomised greedy trees (cotengrust's, ranked by
    its FLOP count; its plain greedy for ``trials < 1``), or, without
    cotengrust, ``trials`` Python greedy trees with the same kind of random
    (costmod, temperature) over a :class:`.tree.Net` (none for a
    :class:`.tree.Graph`: the Python greedy needs the bitsets)."""
    n = len(net.terms) if isinstance(net, Graph) else len(net.legs)
    if cotengrust is None and isinstance(net, Graph):
        return []
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
