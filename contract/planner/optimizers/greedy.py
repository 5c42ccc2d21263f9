"""opt_einsum's greedy search (``opt_einsum.paths.greedy``) as a tree, counted
in log space and in time close to linear in the network: the baseline that
``auto`` never loses to, at any size (10^5 tensors in seconds).

>>> from .graph import Graph
>>> g = Graph([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...           {"a": 8, "b": 16, "c": 32, "d": 4})
>>> sorted(map(str, [greedy_tree(g)]))[0].count("(") >= 1
True
"""

from __future__ import annotations

import heapq

import numpy as np

from .graph import Graph
from .paths import tree_of_ssa
from .tree import Tree

__all__ = ["greedy_tree"]

_MASK = (1 << 64) - 1
_NONE: frozenset = frozenset()


def _mix(x: int) -> int:
    """splitmix64 of ``x``: a label's word for the label-set hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


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
