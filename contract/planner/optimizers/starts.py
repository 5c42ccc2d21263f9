"""Starting trees for the annealer by greedy search: cotengrust's Rust search,
or ours in Python (recursive bisection is :mod:`.partition`'s); and
opt_einsum's random greedy search (:class:`RandomGreedy`) behind the
``random-greedy`` and ``sampled-greedy`` names.

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

import functools
import hashlib
import heapq
import math
import random
import statistics
from typing import Any

import opt_einsum
from opt_einsum import path_random

from .tree import Net, Tree, bit_list, tree_of_linear, tree_of_ssa

try:
    import cotengrust
except ImportError:  # pragma: no cover - exercised by the fallback test
    cotengrust = None

__all__ = ["RandomGreedy", "greedy_tree", "random_greedy", "random_greedy_trees"]

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


class RandomGreedy(path_random.RandomOptimizer):
    """opt_einsum's ``RandomGreedy`` search with its default settings (trial
    ``r``: greedy on costs jittered by a factor ``N(1, 0.01)``, choosing
    among the 8 cheapest candidates with Boltzmann weights; trial 0 always
    takes the cheapest), made a pure function of the network:

    * each trial draws from a ``random.Random(r)`` of its own. opt_einsum's
      reseeds and draws from the global ``random`` module, which changes the
      caller's random state and mixes the draws of threads planning at once;
    * a candidate's jitter is a hash of ``r`` and the labels of the pair, not
      the next draw: opt_einsum's greedy meets candidates in set iteration
      order, which ``PYTHONHASHSEED`` changes, so sequential draws gave
      different paths in different processes (opt_einsum's own do).

    Built through opt_einsum's extension point: a ``RandomOptimizer`` whose
    ``setup`` returns the trial function.

    >>> inputs = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
    >>> state = random.getstate()
    >>> RandomGreedy(max_repeats=8)(inputs, frozenset("ad"), {"a": 2, "b": 3, "c": 4, "d": 5})
    [(0, 1), (0, 1)]
    >>> random.getstate() == state
    True
    """

    def setup(self, inputs: Any, output: Any, size_dict: dict) -> tuple[Any, tuple]:
        return _trial, (inputs, output, size_dict)


def random_greedy(inputs: Any, output: Any, sizes: dict, memory_limit: int | None = None, *,
                  trials: int = 32) -> list[tuple[int, ...]]:
    """``random-greedy`` (and, with ``trials=128``, ``random-greedy-128``):
    the best of ``trials`` :class:`RandomGreedy` trials, as opt_einsum's
    ``random_greedy``; ``memory_limit`` is ignored, as there.

    >>> random_greedy([frozenset("ab"), frozenset("bc")], frozenset("ac"), {"a": 2, "b": 3, "c": 4})
    [(0, 1)]
    """
    return RandomGreedy(max_repeats=trials)(inputs, output, sizes, memory_limit)


_JITTER = statistics.NormalDist(1.0, 0.01)


def _trial(r: int, inputs: Any, output: Any, sizes: dict) -> tuple[Any, int, int]:
    """One trial of :class:`RandomGreedy`: opt_einsum's
    ``_trial_greedy_ssa_path_and_cost`` with the jitter a hash of the pair
    and the choices drawn from ``random.Random(r)``."""
    rng = random.Random(r)
    salt = r.to_bytes(8, "little", signed=True)
    names: dict[Any, str] = {}  # a tensor's labels, in an order no hash seed changes

    def name(key: frozenset) -> str:
        if key not in names:
            names[key] = " ".join(sorted(map(repr, key)))
        return names[key]

    def jittered(size12: int, size1: int, size2: int, k12: Any, k1: Any, k2: Any) -> float:
        pair = "|".join(sorted((name(k1), name(k2)))).encode()
        bits = int.from_bytes(hashlib.blake2b(pair, digest_size=6, salt=salt).digest(), "little")
        # "memory-removed-jitter"; 48 bits + 0.5 is exact: the quantile stays inside (0, 1).
        return _JITTER.inv_cdf((bits + 0.5) / 2**48) * (size12 - size1 - size2)

    choose = None if r == 0 else functools.partial(_thermal_chooser, rng=rng)
    ssa_path = opt_einsum.paths.ssa_greedy_optimize(inputs, output, sizes, choose, jittered)
    cost, size = path_random.ssa_path_compute_cost(ssa_path, inputs, output, sizes)
    return ssa_path, cost, size


def _thermal_chooser(queue: list, remaining: Any, rng: random.Random, nbranch: int = 8) -> Any:
    """opt_einsum's ``thermal_chooser`` (temperature 1, relative to the
    cheapest candidate's cost) drawing from ``rng``: one of the ``nbranch``
    cheapest live candidates, weighted by ``exp(-(c - c_min) / max(1, |c_min|))``;
    the others go back on the heap."""
    choices = []
    while queue and len(choices) < nbranch:
        candidate = heapq.heappop(queue)
        if candidate[1] in remaining and candidate[2] in remaining:  # else obsolete
            choices.append(candidate)
    if len(choices) <= 1:
        return choices[0] if choices else None
    costs = [c[0][0] for c in choices]
    temperature = max(1, abs(costs[0]))
    (chosen,) = rng.choices(range(len(choices)),
                            weights=[math.exp(-(c - costs[0]) / temperature) for c in costs])
    picked = choices.pop(chosen)
    for other in choices:
        heapq.heappush(queue, other)
    return picked
