"""opt_einsum's random greedy search with generators of its own: behind the
``random-greedy``, ``random-greedy-128`` and ``sampled-greedy`` names. No
global random state is read or changed, and a plan is the same in every
process.
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

__all__ = ["RandomGreedy", "random_greedy"]


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
