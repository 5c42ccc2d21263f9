"""One plan's path under a slicing: FLOPs and peak, updated one label at a time.

Slicing label ``l`` into ``c`` slices divides every array and every step that
carries ``l`` by ``c`` (``c`` times over where a term repeats the label) and
runs the whole path ``c`` times, so with ``n`` slices in all

    total FLOPs = n * sum over steps of (step FLOPs / product of its cuts)

and a cut changes only the steps and arrays that carry its label.
:class:`SliceCosts` keeps, per label, the arrays and steps that carry it
(a cut, or a candidate's total FLOPs, touches only those), and recounts the
peak of :mod:`.costs` by one sweep over the path. Its numbers are those of
:func:`~.slicing.slice_plan` (tested equal) without building a plan per
candidate: on networks of a thousand tensors a build costs a tenth of a
second, and a search weighs hundreds of labels at every cut.

Ranking is :meth:`SliceCosts.cuts`: only labels on arrays alive at a point
of the path that is over the budget can bring the peak down, and a cut's
gain is how much it brings those points down.

>>> import contract
>>> from contract.planner import slice_plan
>>> base = contract.plan("ab,bc,cd->ad", (64, 64), (64, 64), (64, 64))
>>> model = SliceCosts(base)
>>> model.set_count("a", 8)
>>> sp = slice_plan(base, {"a": 8})
>>> (model.peak_bytes(), model.flops(), model.n_slices) == (sp.peak_bytes, sp.flops, 8)
True
"""

from __future__ import annotations

import numpy as np

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from .costs import itemsize, prod
from .model import Plan

__all__ = ["Cut", "SliceCosts", "divisors"]

# An array 2^10 times smaller than the budget changes a point over the budget
# by less than a part in a thousand: the ranking leaves it out.
_NEGLIGIBLE = 10


def divisors(n: int) -> list[int]:
    """The slice counts a label of size ``n`` allows (equal slices, no padding).

    >>> divisors(12)
    [1, 2, 3, 4, 6, 12]
    """
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class Cut:
    """One candidate cut: ``label`` into ``count`` slices; ``gain`` is how much
    it lowers the points over the budget (sum of log excesses), ``flops`` the
    total FLOPs and ``n_slices`` the slice count once it is made."""

    label: str
    count: int
    gain: float
    flops: int
    n_slices: int


# Sums of held elements stay exact in int64 below this.
_EXACT = 1 << 62


def _multiset(labels: tuple[str, ...]) -> dict[str, int]:
    """Each label and how many times ``labels`` holds it, in first-seen order."""
    counts: dict[str, int] = {}
    for l in labels:
        counts[l] = counts.get(l, 0) + 1
    return counts


class SliceCosts:
    """``plan``'s path sliced ``counts[label]`` ways per label (all 1 at first).

    ``flops()`` and ``peak_bytes()`` are exactly those of
    ``slice_plan(plan, counts)``: total FLOPs of all slices, and one slice's
    peak (the cut inputs' copies, the arrays it makes) beside the whole
    output accumulator, in bytes.

    The path is a list of *points*: the start (every operand held), one per
    step (the step's result beside everything still waiting, its own inputs
    included), the closing transpose if any, and the output floor (a peak is
    never less than one slice's output). Each array is alive over an interval
    of points.
    """

    def __init__(self, plan: Plan) -> None:
        sizes = dict(plan.sizes)
        self.sizes = sizes
        self.counts = {l: 1 for l in sizes}
        self.n_slices = 1
        self.item = itemsize(plan.compute_dtype)
        self.accumulator = prod(plan.output, sizes)
        steps = plan.steps
        transpose = plan.final != plan.output
        self.points = 1 + len(steps) + transpose + 1  # start, steps, transpose, floor
        # Arrays: the operands, each step's result, the transposed output, the floor.
        labels: list[dict[str, int]] = []
        born: list[int] = []
        dies: list[int] = []
        for term in plan.inputs:
            labels.append(_multiset(term))
            born.append(0)
        # An operand no label of which is cut is held only if it was prepared
        # (a diagonal taken or labels summed away): ``costs.held``.
        self.kept = [prod(p.labels, sizes) if p.diagonal or p.summed else 0 for p in plan.preps]
        n = len(plan.inputs)
        self.n_inputs = n
        dies += [0] * n
        live = list(range(n))
        for k, s in enumerate(steps, start=1):
            i, j = s.operands
            dies[live[i]] = dies[live[j]] = k
            del live[j], live[i]  # i < j; in place: no new list per step
            live.append(len(labels))
            labels.append(_multiset(s.output))
            born.append(k)
            dies.append(k)
        if live:  # the result (or the only operand) waits for the transpose
            dies[live[0]] = len(steps) + transpose
        if transpose:
            labels.append(_multiset(plan.output))
            born.append(len(steps) + 1)
            dies.append(len(steps) + 1)
        labels.append(_multiset(plan.output))
        born.append(self.points - 1)
        dies.append(self.points - 1)
        self.labels, self.born, self.dies = labels, born, dies
        self._born = np.array(born, np.intp)
        self._ends = np.array(dies, np.intp) + 1
        # Sizes with every label of an operand cut (its copy), as held once one is.
        self.size = [prod(t, sizes) if t else 0 for t in plan.inputs] + \
            [prod(t, sizes) for t in labels[n:]]
        self.cut_on = [0] * n  # how many of an operand's labels are cut
        # The held sizes as int64 arrays where every sum of them is exact
        # (cuts only shrink sizes), else None (Python integers).
        exact = max(self.size, default=0) * len(self.size) < _EXACT
        self._copies = np.array(self.size, np.int64) if exact else None
        self._held = np.array([s if a >= n else self.kept[a] for a, s in enumerate(self.size)],
                              np.int64) if exact else None
        # The FLOP terms: each summed operand's reduction, each step.
        terms = [(_multiset(t), prod(t, sizes)) for t, p in zip(plan.inputs, plan.preps)
                 if p.summed]
        terms += [(_multiset(s.lhs + tuple(l for l in s.rhs if l not in s.lhs)), s.flops)
                  for s in steps]
        self.step_labels = [t for t, _ in terms]
        self.step_flops = [f for _, f in terms]
        self.one_flops = sum(self.step_flops)  # one slice's
        # Per label: the arrays and the FLOP terms carrying it.
        self.arrays_of: dict[str, list[int]] = {l: [] for l in sizes}
        for a, ls in enumerate(labels):
            for l in ls:
                self.arrays_of[l].append(a)
        self.steps_of: dict[str, list[int]] = {l: [] for l in sizes}
        for v, ls in enumerate(self.step_labels):
            for l in ls:
                self.steps_of[l].append(v)

    def chunk(self, label: str) -> int:
        """The size of ``label`` in one slice."""
        return self.sizes[label] // self.counts[label]

    def flops(self) -> int:
        """FLOPs of every slice together."""
        return self.n_slices * self.one_flops

    def next_count(self, label: str) -> int | None:
        """The next slice count of ``label`` (its next divisor), None at its size.

        >>> import contract
        >>> m = SliceCosts(contract.plan("ab,bc->ac", (6, 6), (6, 1)))
        >>> m.next_count("a"), m.next_count("c")
        (2, None)
        """
        have = self.counts[label]
        return next((d for d in divisors(self.sizes[label]) if d > have), None)

    def set_count(self, label: str, count: int) -> None:
        """Slice ``label`` into ``count`` slices (a divisor of its size), more or fewer."""
        old, new = self.chunk(label), self.sizes[label] // count
        for a in self.arrays_of[label]:
            mult = self.labels[a][label]
            self.size[a] = self.size[a] // old**mult * new**mult
            if a < self.n_inputs:
                self.cut_on[a] += (count > 1) - (self.counts[label] > 1)
            if self._held is not None:
                self._copies[a] = self.size[a]
                cut = a >= self.n_inputs or self.cut_on[a]
                self._held[a] = self.size[a] if cut else self.kept[a]
        for v in self.steps_of[label]:
            mult = self.step_labels[v][label]
            before = self.step_flops[v]
            self.step_flops[v] = before // old**mult * new**mult
            self.one_flops += self.step_flops[v] - before
        self.n_slices = self.n_slices // self.counts[label] * count
        self.counts[label] = count

    def loads(self, copies: bool = False) -> list[int]:
        """Elements held at each point of the path. An operand none of whose
        labels is cut holds only what its preparation made
        (:func:`~.costs.held`); with ``copies``, every operand counts as its
        copy, as if cut (what the ranking weighs: it shrinks with every cut)."""
        n = self.n_inputs
        if self._held is not None:
            # In int64 (exact: every sum stays under 2^62), the held sizes kept
            # up to date by set_count: ~10x the Python sweep on 1,000-tensor
            # circuits, where slicing sweeps the path thousands of times.
            sizes = self._copies if copies else self._held
            diff = np.zeros(self.points + 1, np.int64)
            np.add.at(diff, self._born, sizes)
            np.add.at(diff, self._ends, -sizes)
            return np.cumsum(diff[:-1]).tolist()
        held = self.size if copies else \
            [s if a >= n or self.cut_on[a] else self.kept[a] for a, s in enumerate(self.size)]
        diff = [0] * (self.points + 1)
        for s, born, dies in zip(held, self.born, self.dies):
            diff[born] += s
            diff[dies + 1] -= s
        out, total = [], 0
        for d in diff[:-1]:
            total += d
            out.append(total)
        return out

    def peak_bytes(self) -> int:
        """One slice's peak and the output accumulator, in bytes (:mod:`.costs`)."""
        return (max(self.loads()) + self.accumulator) * self.item

    def cuts(self, budget: int, max_slices: int) -> list[Cut]:
        """Every label that lowers a point held over ``budget`` elements, cut
        once more (at most ``max_slices`` slices in all), in label order.

        A cut's gain is the sum over those points of
        ``log(held / max(held after, budget))``, held counting every operand
        as its copy: how much it takes off each point's excess over the
        budget. (Counted as held, the first cut of an operand adds its copy,
        so the cuts that shrink a big operand would look like losses; the
        search checks the real peak after each cut.)

        >>> import contract
        >>> m = SliceCosts(contract.plan("ab,bc,cd->ad", (64, 64), (64, 64), (64, 64)))
        >>> [(c.label, c.count, round(c.gain, 3), c.flops) for c in m.cuts(4000, 1 << 20)]
        [('a', 2, 0.717, 1048576), ('b', 2, 0.288, 1572864), ('c', 2, 0.875, 1048576), ('d', 2, 0.563, 1572864)]
        """
        hot = [k for k, x in enumerate(self.loads()) if x > budget]
        copies = self.loads(copies=True)
        held = [copies[k] for k in hot]
        # Arrays far under the budget change no hot point much: ranked without
        # them unless nothing else is left.
        return (self._ranked(hot, held, budget, max_slices, max(budget, 0) >> _NEGLIGIBLE)
                or self._ranked(hot, held, budget, max_slices, -1))

    def _ranked(self, hot: list[int], held: list[int], budget: int, max_slices: int,
                small: int) -> list[Cut]:
        """:meth:`cuts`, weighing only arrays of more than ``small`` elements."""
        nxt: dict[str, tuple[int, int, int] | None] = {}  # count, chunk now, chunk after
        # Per label, the runs of hot points (positions in ``hot``) that each
        # array carrying it spans, and the elements a cut takes off them.
        runs: dict[str, list[tuple[int, int, int]]] = {}
        for a, s in enumerate(self.size):
            if s <= small:
                continue
            lo, hi = bisect_left(hot, self.born[a]), bisect_right(hot, self.dies[a])
            if lo == hi:
                continue
            for l, mult in self.labels[a].items():
                if l not in nxt:
                    c = self.next_count(l)
                    fits = c is not None and self.n_slices // self.counts[l] * c <= max_slices
                    nxt[l] = (c, self.chunk(l), self.sizes[l] // c) if fits else None
                cut = nxt[l]
                if cut is not None:
                    _, old, new = cut
                    less = s - s // old**mult * new**mult
                    runs.setdefault(l, []).append((lo, hi, less))
        out = []
        floor = max(budget, 1)
        for l in self.sizes:
            if l not in runs:
                continue
            first = min(lo for lo, _, _ in runs[l])
            diff = [0] * (max(hi for _, hi, _ in runs[l]) - first + 1)
            for lo, hi, less in runs[l]:
                diff[lo - first] += less
                diff[hi - first] -= less
            gain, less = 0.0, 0
            for h, d in enumerate(diff, start=first):
                less += d
                if less:
                    # From the exact difference: an excess of a few elements
                    # over 2^140 still counts.
                    after = max(held[h] - less, floor)
                    gain += math.log1p((held[h] - after) / after)
            if gain <= 0:
                continue
            c, old, new = nxt[l]  # type: ignore[misc]
            one = self.one_flops
            for v in self.steps_of[l]:
                f, mult = self.step_flops[v], self.step_labels[v][l]
                one -= f - f // old**mult * new**mult
            n = self.n_slices // self.counts[l] * c
            out.append(Cut(l, c, gain, n * one, n))
        return out
