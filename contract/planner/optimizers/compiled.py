"""The annealer's move loop: ``csrc/anneal/anneal.cc``, the extension ``contract._anneal``.

A move is a few bitset operations: in C++ it takes about 0.16-0.4 µs, where
a Python loop spent 3-7 µs on interpreter overhead (docs/inspection.md has
the figures), so ``auto-hq`` spends its planning time on moves. The
extension is built with the package and needs no XLA or BLAS, so it is
always there: a plan never depends on whether a compiler was present. It is
called with a declared signature (nanobind checks every argument) and
releases the GIL while it anneals, so threads plan in parallel.

>>> from contract.planner.optimizers.tree import Net
>>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...           {"a": 8, "b": 16, "c": 32, "d": 4})
>>> shape = ([-1, -1, -1, 0, 3], [-1, -1, -1, 1, 2])   # ((0, 1), 2)
>>> anneal(net, shape, 2000, 1, 1.0, 0.05, 0.0, FLOPS, 10.0, None)
True
>>> shape   # ((1, 2), 0) now: 16*32*4 + 8*16*4 FLOPs instead of 8*16*32 + 8*32*4
([-1, -1, -1, 2, 3], [-1, -1, -1, 1, 0])
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ... import _anneal
from .objective import FLOPS, Objective

__all__ = ["anneal", "words"]

_KINDS = {"flops": 0, "write": 1, "combo": 2, "size": 3}


def words(net: Any) -> int:
    """64-bit words per leg set of ``net``: a move costs about this many word
    operations (3.6 µs a move at 10,000 tensors, 235 words)."""
    return max(1, -(-len(net.log) // 64))


def _packed(sets: list[int], words: int) -> np.ndarray:
    """Bitsets as 64-bit words (least significant first), ``words`` per set."""
    raw = b"".join(bits.to_bytes(8 * words, "little") for bits in sets)
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64, copy=False)


def anneal(net: Any, shape: tuple[list[int], list[int]], moves: int, seed: int, hot: float,
           cold: float, focus: float, objective: Objective, seconds: float,
           progress: Callable[[int, int], None] | None, scale: float = 1.0) -> bool:
    """Anneal the tree ``shape`` (left and right child of every node, root
    ``2n - 2``; rewritten in place to the best tree seen) as
    :func:`.anneal.anneal` describes. True if that is not the start tree.
    ``net`` carries ``legs``, ``out`` and ``log`` (each leg's log2 size).

    ``scale`` divides every log2 size (and the memory limit's): the loop
    caps a size at 2^1000, so a network whose contractions pass that is
    annealed on sizes taken to the power ``1 / scale`` (see
    :func:`.anneal.scale_for`); temperatures are in those units."""
    n = len(net.legs)
    per_set = words(net)
    classes: dict[float, int] = {}
    for bit, x in enumerate(net.log):
        if x:  # size-1 legs cost nothing
            classes[x / scale] = classes.get(x / scale, 0) | 1 << bit
    left = np.asarray(shape[0], dtype=np.int32)
    right = np.asarray(shape[1], dtype=np.int32)
    limit = -1.0 if objective.limit is None else objective.limit ** (1.0 / scale)
    changed = _anneal.anneal(
        n, per_set, _packed(list(net.legs), per_set), _packed([net.out], per_set),
        np.fromiter(classes, dtype=np.float64, count=len(classes)),
        _packed(list(classes.values()), per_set), left, right, moves, seed % 2**64, hot, cold,
        focus, _KINDS[objective.kind], objective.factor, limit,
        seconds if math.isfinite(seconds) else 1e300, progress)
    shape[0][:], shape[1][:] = left.tolist(), right.tolist()
    return changed
