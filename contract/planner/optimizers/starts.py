"""Starting trees for the annealer by greedy search: cotengrust's Rust search,
or ours in Python (recursive bisection is :mod:`.partition`'s); opt_einsum's
greedy in time linear in the network (:func:`greedy_tree`, the baseline
``auto`` never loses to); and opt_einsum's random greedy search
(:class:`RandomGreedy`) behind the ``random-greedy`` and ``sampled-greedy``
names.

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

import numpy as np
import opt_einsum
from opt_einsum import path_random

from .tree import Graph, Net, Tree, bit_list, tree_of_ssa

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


# Greedy scores are compared as (class, value): class 0 holds every cost of
# magnitude below 2^1000, valued exactly as a float; beyond, class +1 or -1 and
# the signed log2 of the magnitude (a float overflows at 2^1024, and the
# greedy contractions of a 10,000-tensor graph reach 2^2400).
_BIG_LOG = 1000.0


def _scores(s12: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class, value) of opt_einsum's greedy score ``size12 - size1 - size2``
    given log2 sizes, elementwise: ordered as the exact scores are, up to
    scores closer than a float resolves.

    >>> [a.tolist() for a in _scores(np.array([3.0, 3000.0]), np.array([1.0, 2999.0]),
    ...                               np.array([1.0, 2.0]))]
    [[0, 1], [4.0, 2999.0]]
    """
    top = np.maximum(np.maximum(s12, s1), s2)
    with np.errstate(all="ignore"):
        rel = np.exp2(s12 - top) - np.exp2(s1 - top) - np.exp2(s2 - top)
        mag = top + np.log2(np.abs(rel))  # log2 |score|; -inf for 0
        plain = np.exp2(s12) - np.exp2(s1) - np.exp2(s2)
        sign = np.sign(rel)
        cls = np.where(mag >= _BIG_LOG, sign, 0.0).astype(np.int64)
        # Below 2^50 a score is an integer and the float its rounding back
        # (log sizes are rounded to 2^-32: an error far below 1/2), then the
        # nearest float up to 2^1000, then the signed log2.
        small = np.where(top < 50.0, np.rint(plain), plain)
        value = np.where(cls != 0, sign * mag,
                         np.where(top < _BIG_LOG, small, sign * np.exp2(mag)))
    return cls, value


# A tensor with this many neighbours or more keeps them in buckets (see
# _LazyGreedy): below it, scoring every neighbour is cheaper than the upkeep.
_BUCKETED = 24


def greedy_tree(graph: Graph) -> Tree:
    """opt_einsum's greedy (``opt_einsum.paths.greedy``) as a tree: the same
    algorithm, counted in log space and in time linear in the network.

    opt_einsum's greedy keeps, for each new intermediate, only its best
    candidate partner (score ``size12 - size1 - size2``, ties to the oldest
    pair) and finishes what is left by size. It scores frozensets with
    exact integers, and every new intermediate scores all its neighbours: on
    a random 3-regular graph one intermediate grows and absorbs its
    neighbours one by one, so the work grows with the square of the network
    (76 s at 4,000 tensors, about 15 minutes at 10,000). :class:`_LazyGreedy`
    scores the same candidates through buckets of equal-scoring neighbours
    and touches only the smaller child of each contraction (0.6 s at 10,000
    tensors, 7.5 s at 100,000), exactly below 2^53 and by log2 beyond 2^1000
    (:func:`_scores`). It gives opt_einsum's tree on every network checked
    (3-regular graphs of 60 to 6,000 tensors, lattices, CZ circuits with
    hyperedges, MPS-MPO chains, 720 random networks with output labels,
    hyperedges, labels on one tensor and size-1 labels;
    ``tests/test_scale.py`` keeps a sample). Two scores past 2^53 that
    differ by less than a float resolves would tie here, where opt_einsum's
    integers tell them apart.

    >>> g = Graph([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 8, "b": 16, "c": 32, "d": 4})
    >>> greedy_tree(g)
    (0, (1, 2))
    """
    n = len(graph.terms)
    if n == 1:
        return 0
    return tree_of_ssa(_LazyGreedy(graph).run(), n)


class _LazyGreedy:
    """The state of :func:`greedy_tree`'s search.

    Tensors live in slots (the inputs' positions); a contraction keeps the
    slot of the child with more legs, so a growing intermediate keeps its
    slot and only the smaller child's labels and neighbours are touched.
    Each slot knows its neighbours through labels with two holders
    (``adj``: neighbour -> [log2 of the shared size to remove, number of
    shared non-output labels], one list shared by both directions); labels
    with three or more holders (``holders``) are looked at per candidate.

    A candidate's score depends on the new tensor's size and, per neighbour
    ``j``, only on ``(u, s)``: ``s`` is ``j``'s log2 size and ``u`` the log2
    factor by which contracting ``j`` changes the new tensor's size. A slot
    with many neighbours keeps them in buckets by ``(u, s)`` (a heap of ids
    in each, stale entries skipped), so its best candidate is found by
    scoring each bucket once.

    As opt_einsum, a tensor whose labels equal another's is multiplied into
    it at once (a Hadamard product; found by a hash of the label set, kept
    up to date by each contraction); labels that no other tensor holds then
    stay on it (``lone``) until its next contraction.
    """

    def __init__(self, graph: Graph) -> None:
        n = self.n = len(graph.terms)
        everywhere = graph.total == n
        out = graph.out | everywhere
        self.log = graph.log.tolist()
        self.out = out.tolist()
        # opt_einsum counts a label held by every input as an output label:
        # every pair shares it, so it is a constant of every score.
        self.ev = float(graph.log[everywhere].sum())
        total = graph.total.tolist()
        self.kind = [0 if t == 2 else 1 if t >= 3 else 2 for t in total]  # pair, hyper, one
        for l in np.flatnonzero(everywhere).tolist():
            self.kind[l] = 3
        # A label's random 64-bit word: a tensor's hash is their sum.
        self.word = [_mix(l) for l in range(len(self.log))]
        self.legs: list = []
        self.spec: list = []  # the hyperedges among a tensor's legs
        self.lone: list = []  # its legs no other tensor holds (not the output's)
        self.s: list[float] = []
        self.hash: list[int] = []
        self.holders: dict[int, set[int]] = {}
        self.adj: list = [dict() for _ in range(n)]
        first: dict[int, int] = {}
        for v, term in enumerate(graph.terms):
            labels = [l for l in term.tolist() if self.kind[l] != 3]
            self.legs.append(set(labels))
            self.spec.append({l for l in labels if self.kind[l] == 1})
            self.lone.append({l for l in labels if self.kind[l] == 2 and not self.out[l]})
            self.s.append(sum(self.log[l] for l in labels) + self.ev)
            self.hash.append(sum(self.word[l] for l in labels) & _MASK)
            for l in labels:
                if self.kind[l] == 0:
                    u = first.pop(l, None)
                    if u is None:
                        first[l] = v
                    else:
                        self._share(u, v, l)
                elif self.kind[l] == 1:
                    self.holders.setdefault(l, set()).add(v)
        self.ssa = list(range(n))
        self.slot = list(range(n)) + [-1] * (n - 1)  # ssa id -> slot, -1 once contracted
        self.bucketed: set[int] = set()
        self.buckets: dict[int, dict[tuple[float, float], list]] = {}
        self.where: dict[int, dict[int, tuple]] = {}
        self.by_hash: dict[int, list[int]] = {}
        self.path: list[tuple[int, int]] = []
        self.k = n
        # Equal inputs are multiplied first, in order (opt_einsum's first step).
        for v in range(n):
            same = self._twin(v)
            self._place(v)
            if same is not None:
                self.path.append((self.ssa[same], v))
                self._hadamard(same, v)

    def _share(self, u: int, v: int, l: int) -> None:
        """Record that ``u`` and ``v`` share the two-holder label ``l``."""
        entry = self.adj[u].get(v)
        if entry is None:
            entry = self.adj[u][v] = self.adj[v][u] = [0.0, 0]
        # An output label stays (its size leaves the product once), any
        # other closes (twice); only a non-output label makes neighbours.
        entry[0] += self.log[l] if self.out[l] else 2.0 * self.log[l]
        entry[1] += not self.out[l]

    def _factor(self, l: int) -> float:
        """What a hyperedge shared by a candidate pair takes off its log size:
        once if it stays (the output's, or held by a third tensor), twice if
        it closes."""
        return self.log[l] if self.out[l] or len(self.holders[l]) >= 3 else 2.0 * self.log[l]

    def _d(self, v: int) -> float:
        """log2 size of the labels slot ``v`` drops at its next contraction."""
        return sum(self.log[l] for l in self.lone[v]) if self.lone[v] else 0.0

    def _twin(self, v: int) -> int | None:
        """A live slot whose labels equal slot ``v``'s, if any."""
        for u in self.by_hash.get(self.hash[v], ()):
            if u != v and self.legs[u] == self.legs[v]:
                return u
        return None

    def _place(self, v: int) -> None:
        self.by_hash.setdefault(self.hash[v], []).append(v)

    def _unplace(self, v: int) -> None:
        same = self.by_hash[self.hash[v]]
        same.remove(v)
        if not same:
            del self.by_hash[self.hash[v]]

    def run(self) -> list[tuple[int, int]]:
        heap = self._first_candidates()
        while heap:
            *_, later_hash, earlier_hash, kept = heapq.heappop(heap)
            # As opt_einsum, a candidate names its tensors by their labels:
            # it still stands if a tensor was replaced by one with the same.
            a, b = self._holding(earlier_hash), self._holding(later_hash)
            if a is None or b is None:
                continue  # a candidate of a tensor already contracted
            self.path.append((self.ssa[a], self.ssa[b]))
            v = self._contract(a, b, kept)
            same = self._twin(v)
            self._place(v)
            if same is not None:
                self.path.append((self.ssa[same], self.ssa[v]))
                v = self._hadamard(same, v)
            best = self._best(v)
            if best is not None:
                heapq.heappush(heap, best)
        return self._finish()

    def _hadamard(self, a: int, b: int) -> int:
        return self._contract(a, b, None)

    def _holding(self, h: int) -> int | None:
        """The live slot whose labels hash to ``h``, if any."""
        same = self.by_hash.get(h)
        return same[0] if same else None

    def _entry(self, cls: int, value: float, a: int, b: int) -> tuple:
        """A candidate for the heap: its score, then opt_einsum's tie-break
        (the later id, the earlier id), then both tensors' label hashes and
        the hyperedges it keeps: opt_einsum contracts what it scored then,
        even if a third holder has merged since."""
        if self.ssa[a] > self.ssa[b]:
            a, b = b, a
        kept = _NONE
        if self.spec[a] and self.spec[b]:
            kept = frozenset(l for l in self.spec[a] & self.spec[b]
                             if self.out[l] or len(self.holders[l]) >= 3)
        return (cls, value, self.ssa[b], self.ssa[a], self.hash[b], self.hash[a], kept)

    def _first_candidates(self) -> list:
        """opt_einsum's first candidates: per non-output label, each holder's
        best partner among the later ones (for two holders, the pair)."""
        ssa = self.ssa
        pairs: dict[tuple[int, int], list] = {}
        for u, nbrs in enumerate(self.adj):
            if nbrs is not None:
                for v, entry in nbrs.items():
                    if ssa[u] < ssa[v]:
                        pairs[u, v] = [entry[0], entry[1], entry[1]]
        groups = []
        for l, hs in self.holders.items():
            ordered = sorted(hs, key=ssa.__getitem__)
            for x, u in enumerate(ordered):
                for v in ordered[x + 1:]:
                    entry = pairs.setdefault((u, v), [0.0, 0, 0])
                    entry[0] += self._factor(l)
                    entry[1] += not self.out[l]
            if not self.out[l] and len(ordered) > 1:
                groups.append(ordered)
        keys = [key for key, e in pairs.items() if e[1]]
        if not keys:
            return []
        us = np.array([u for u, _ in keys])
        vs = np.array([v for _, v in keys])
        s = np.array(self.s)
        d = np.array([self._d(v) if self.legs[v] is not None else 0.0 for v in range(self.n)])
        r = np.array([pairs[key][0] for key in keys])
        cls, val = _scores(s[us] - d[us] + s[vs] - d[vs] - r - self.ev, s[us], s[vs])
        score = {key: (c, x) for key, c, x in zip(keys, cls.tolist(), val.tolist())}
        # Two-holder labels: their pair; hyperedges: each holder's best later one.
        heap = [self._entry(*score[u, v], u, v) for u, v in keys if pairs[u, v][2]]
        for ordered in groups:
            for x, u in enumerate(ordered[:-1]):
                c, value, _, v = min((*score[u, v], ssa[v], v) for v in ordered[x + 1:])
                heap.append(self._entry(c, value, u, v))
        heapq.heapify(heap)
        return heap

    def _contract(self, a: int, b: int, kept: frozenset | None) -> int:
        """Contract the tensors in slots ``a`` and ``b`` into the next id;
        returns its slot (the one of the child with more legs). Shared
        hyperedges stay if in ``kept``; a Hadamard product (``kept`` None)
        keeps every label. A kept label no one else holds is lone."""
        hadamard = kept is None
        k = self.k
        self.k += 1
        v, w = (a, b) if len(self.legs[a]) >= len(self.legs[b]) else (b, a)
        log, out, kind, word = self.log, self.out, self.kind, self.word
        lv, lw, sv, lone = self.legs[v], self.legs[w], self.spec[v], self.lone[v]
        self._unplace(v)
        self._unplace(w)
        change, h = 0.0, self.hash[v]
        if not hadamard:  # labels only v holds close now
            for l in lone:
                lv.discard(l)
                change -= log[l]
                h -= word[l]
                if kind[l] == 1:
                    self.holders[l].discard(v)
                    sv.discard(l)
            lone.clear()
        for l in lw:
            if l in self.lone[w]:
                if kind[l] == 1:
                    self.holders[l].discard(w)
                continue  # closes with w
            if l in lv:  # shared: stays if the output or a third tensor holds it
                if kind[l] == 1:
                    hs = self.holders[l]
                    hs.discard(w)
                    if hadamard or l in kept:
                        if len(hs) == 1 and not out[l]:
                            lone.add(l)
                        continue
                    hs.discard(v)
                    sv.discard(l)
                elif out[l]:
                    continue
                elif hadamard:
                    lone.add(l)
                    continue
                lv.discard(l)
                change -= log[l]
                h -= word[l]
            else:
                lv.add(l)
                change += log[l]
                h += word[l]
                if kind[l] == 1:
                    hs = self.holders[l]
                    hs.discard(w)
                    hs.add(v)
                    sv.add(l)
        self.s[v] += change
        self.hash[v] = h & _MASK
        self.legs[w] = self.spec[w] = self.lone[w] = None
        self.slot[self.ssa[v]] = self.slot[self.ssa[w]] = -1
        self.ssa[v], self.slot[k] = k, v
        # Neighbours of w become neighbours of v (one shared entry per pair).
        av, aw = self.adj[v], self.adj[w]
        av.pop(w, None)
        aw.pop(v, None)
        self.adj[w] = None
        for j, entry in aw.items():
            nbrs = self.adj[j]
            del nbrs[w]
            mine = av.get(j)
            if mine is None:
                av[j] = nbrs[v] = entry
            else:
                mine[0] += entry[0]
                mine[1] += entry[1]
        if w in self.bucketed:  # two large tensors met: w's buckets go
            self.bucketed.discard(w)
            del self.buckets[w], self.where[w]
        if v in self.bucketed:
            self.where[v].pop(w, None)
            for j in aw:
                self._file(v, j)
        elif len(av) >= _BUCKETED:
            self.bucketed.add(v)
            self.buckets[v], self.where[v] = {}, {}
            for j in av:
                self._file(v, j)
        for j in self.bucketed:  # v changed: refile it where it is a neighbour
            if j in av:
                self.where[j].pop(w, None)
                self._file(j, v)
        if hadamard:
            self._place(v)
        return v

    def _file(self, v: int, j: int) -> None:
        """(Re)file neighbour ``j`` in the buckets of slot ``v``."""
        entry = self.adj[v].get(j)
        if entry is None or not entry[1]:
            self.where[v].pop(j, None)
            return
        key = (self.s[j] - self._d(j) - entry[0], self.s[j])
        if self.where[v].get(j) == (key, self.ssa[j]):
            return
        self.where[v][j] = (key, self.ssa[j])
        heapq.heappush(self.buckets[v].setdefault(key, []), (self.ssa[j], j))

    def _best(self, v: int) -> tuple | None:
        """The best candidate of the new tensor in slot ``v`` (its id is the
        largest: ties go to the oldest partner)."""
        # Partners through hyperedges: scored one by one.
        extra: dict[int, list] = {}
        for l in self.spec[v]:
            f, joins = self._factor(l), not self.out[l]
            for j in self.holders[l]:
                if j != v:
                    e = extra.setdefault(j, [0.0, 0])
                    e[0] += f
                    e[1] += joins
        adj = self.adj[v]
        singles = list(extra) if v in self.bucketed else list(adj.keys() | extra.keys())
        us, ss, ids = [], [], []
        for j in singles:
            e, x = adj.get(j, (0.0, 0)), extra.get(j, (0.0, 0))
            if e[1] + x[1]:
                us.append(self.s[j] - self._d(j) - e[0] - x[0])
                ss.append(self.s[j])
                ids.append(self.ssa[j])
        keys = list(self.buckets[v]) if v in self.bucketed else []
        us += [u for u, _ in keys]
        ss += [s for _, s in keys]
        if not us:
            return None
        cls_a, val_a = _scores(self.s[v] - self._d(v) - self.ev + np.array(us),
                               np.full(len(us), self.s[v]), np.array(ss))
        cls, val = cls_a.tolist(), val_a.tolist()
        best = min(((cls[x], val[x], ident) for x, ident in enumerate(ids)), default=None)
        m = len(ids)
        for x in sorted(range(len(keys)), key=lambda x: (cls[m + x], val[m + x])):
            if best is not None and (cls[m + x], val[m + x]) > best[:2]:
                break
            ident = self._oldest(v, keys[x], extra)
            if ident is not None:
                cand = (cls[m + x], val[m + x], ident)
                if best is None or cand < best:
                    best = cand
        return None if best is None else self._entry(best[0], best[1], v, self.slot[best[2]])

    def _oldest(self, v: int, key: tuple, skip: dict) -> int | None:
        """The oldest live member of one of ``v``'s buckets that is not in
        ``skip`` (scored on its own); stale entries are dropped."""
        heap = self.buckets[v][key]
        where = self.where[v]
        held = []
        found = None
        while heap:
            ident, j = heap[0]
            if self.ssa[j] != ident or where.get(j, (None,))[0] != key:
                heapq.heappop(heap)
                continue
            if j in skip:
                held.append(heapq.heappop(heap))
                continue
            found = ident
            break
        for item in held:
            heapq.heappush(heap, item)
        if not heap:
            del self.buckets[v][key]
        return found

    def _finish(self) -> list[tuple[int, int]]:
        """Join what is left (disconnected pieces, or tensors whose candidates
        went stale) by the size of their output labels, then by age."""
        path, k = self.path, self.k
        outs = {self.ssa[v]: {l for l in legs if self.out[l]}
                for v, legs in enumerate(self.legs) if legs is not None}
        if len(outs) < 2:
            return path
        rest = [(sum(self.log[l] for l in o), i) for i, o in outs.items()]
        heapq.heapify(rest)
        _, x = heapq.heappop(rest)
        while rest:
            _, y = heapq.heappop(rest)
            path.append((min(x, y), max(x, y)))
            outs[k] = outs.pop(x) | outs.pop(y)
            _, x = heapq.heappushpop(rest, (sum(self.log[l] for l in outs[k]), k))
            k += 1
        return path


_MASK = (1 << 64) - 1
_NONE: frozenset = frozenset()


def _mix(x: int) -> int:
    """splitmix64 of ``x``: a label's word for the label-set hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


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
