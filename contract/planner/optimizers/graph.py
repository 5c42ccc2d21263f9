"""Networks as label arrays (:class:`Graph`), for the largest networks, and
exact integer costs of a tree over them (:func:`exact_totals`).

:class:`.tree.Net` keeps a bitset per tensor, which stops scaling at about
10^4 tensors; a :class:`Graph` grows with the number of legs. Costs past
2^1000 (where :mod:`.tree`'s float totals are capped) are compared here as
exact integers.

>>> g = Graph([frozenset("ab"), frozenset("bc")], frozenset("ac"), {"a": 2, "b": 3, "c": 4})
>>> exact_totals(g, (0, 1))[0]
24
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .tree import Tree, internal_nodes

__all__ = ["Graph", "exact_totals", "log2_int"]


# Graph's log2 sizes are rounded to multiples of 2^-32: a float64 adds up to
# 2^21 of them exactly, so a set of legs has one log size whatever order its
# legs are added in, and the greedy's ties (decided by ids) stay ties.
_QUANTUM = 2.0 ** 32


class Graph:
    """A network as one array of label numbers per tensor: no bitsets, so
    memory grows with the number of legs, not with tensors times labels.

    :class:`Net` keeps one Python int of as many bits as there are labels per
    tensor and per intermediate: 1.9 GB of leaf bitsets alone at 100,000
    tensors (150,000 labels). The greedy start (:func:`.starts.greedy_tree`)
    and the exact count of a tree (:func:`exact_totals`) work on this instead.

    ``terms`` (each tensor's label numbers, sorted; labels numbered as
    :class:`Net` numbers its bits), ``out`` (bool per label), ``total`` (how
    many tensors hold each label), ``log`` (log2 sizes, rounded as
    ``_QUANTUM`` says), ``klass`` and ``bases`` (each label's size as an index
    into the distinct sizes: an exact size is one integer power per distinct
    size).

    >>> g = Graph([frozenset("ab"), frozenset("bc")], frozenset("a"), {"a": 2, "b": 3, "c": 2})
    >>> [t.tolist() for t in g.terms], g.out.tolist(), g.total.tolist(), g.bases
    ([[0, 1], [1, 2]], [True, False, False], [1, 2, 1], [2, 3])
    """

    def __init__(self, inputs: Sequence[frozenset], output: frozenset, sizes: dict) -> None:
        labels = sorted(set().union(*inputs) | set(output), key=str)  # Net's order
        index = {l: k for k, l in enumerate(labels)}
        self.terms = [np.array(sorted(index[l] for l in t), dtype=np.int64) for t in inputs]
        self.out = np.zeros(len(labels), dtype=bool)
        self.out[[index[l] for l in output]] = True
        counts = np.bincount(np.concatenate(self.terms) if self.terms else np.zeros(0, np.int64),
                             minlength=len(labels))
        self.total = counts.astype(np.int64)
        dims = [max(int(sizes[l]), 1) for l in labels]
        self.log = np.array([round(math.log2(d) * _QUANTUM) / _QUANTUM for d in dims])
        self.bases = sorted(set(dims))
        where = {d: k for k, d in enumerate(self.bases)}
        self.klass = np.array([where[d] for d in dims], dtype=np.int64)


def exact_totals(graph: Graph, tree: Tree) -> tuple[int, int, int]:
    """(FLOPs, elements written, largest intermediate) of ``tree`` as exact
    integers, in :func:`tree_totals`' units, counted over ``graph``'s label
    arrays: never capped nor rounded, so two trees compare exactly however
    large (the float totals of :func:`tree_totals` stop at 2^1000 per node,
    and 10^308 overflows a float).

    Each node keeps its open labels (with how many of their holders are
    inside it) in the dict of its child with more labels, and visits only
    the other child's: a growing intermediate is never copied, so a tree as
    wide as a greedy one of a 100,000-tensor graph (2^16,700) counts in a
    second or two. Sizes are products over each distinct leg size, one
    integer power per size.

    >>> g = Graph([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 8, "b": 16, "c": 32, "d": 4})
    >>> exact_totals(g, (0, (1, 2)))
    (2560, 96, 64)
    """
    if isinstance(tree, int):
        return 0, 0, 0
    out, total = graph.out.tolist(), graph.total.tolist()
    klass, bases = graph.klass.tolist(), graph.bases
    classes = len(bases)

    def size(counts: list[int]) -> int:
        result = 1
        for base, count in zip(bases, counts):
            if count and base > 1:
                result *= 1 << count if base == 2 else base ** count
        return result

    def leaf(v: int) -> tuple[dict[int, int], list[int]]:
        counts = [0] * classes
        for l in graph.terms[v].tolist():
            counts[klass[l]] += 1
        return dict.fromkeys(graph.terms[v].tolist(), 1), counts

    order = internal_nodes(tree)
    done: dict[int, tuple[dict[int, int], list[int], bool]] = {}
    flops = write = biggest = 0
    for node in reversed(order):
        (big, cb, leaf_b), (small, cs, _) = sorted(
            ((*leaf(c), True) if isinstance(c, int) else done.pop(id(c)) for c in node),
            key=lambda part: len(part[0]), reverse=True)
        union = [x + y for x, y in zip(cb, cs)]
        kept = union[:]
        if leaf_b:  # a leaf's labels no one else holds close at its contraction
            for l, c in big.items():
                if c == total[l] and not out[l] and l not in small:
                    kept[klass[l]] -= 1
            big = {l: c for l, c in big.items()
                   if c < total[l] or out[l] or l in small}
        for l, c in small.items():
            inside = big.get(l)
            if inside is not None:  # shared: counted once in the contraction
                union[klass[l]] -= 1
                kept[klass[l]] -= 1
                c += inside
            if c < total[l] or out[l]:
                big[l] = c
            else:  # every holder is inside: the label closes here
                big.pop(l, None)
                kept[klass[l]] -= 1
        flops += size(union)
        result = size(kept)
        write += result
        biggest = max(biggest, result)
        done[id(node)] = (big, kept, False)
    return flops, write, biggest


def log2_int(x: int) -> float:
    """log2 of a positive integer of any size (floats stop at 2^1024).

    >>> log2_int(8), round(log2_int(3 ** 1000), 6)
    (3.0, 1584.962501)
    """
    shift = max(x.bit_length() - 64, 0)
    return math.log2(x >> shift) + shift
