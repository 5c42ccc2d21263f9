"""Fit a plan into a byte budget by slicing labels (meshes: :mod:`.sharding`).

Slicing a label of size ``d`` into ``s`` slices splits the network into ``s``
copies where that label has size ``d / s``; each copy is contracted with the
same path and the results are summed (a contracted label) or written into
their place in the output (an output label). The intermediates shrink with
the sliced sizes, while each slice adds copies of the inputs it cuts and the
whole output stays (the scan's accumulator): the peak of :mod:`.costs`, the
same definition as the unsliced plan's, counts all of it, so a plan whose
peak is little more than its output cannot be sliced below it. The price is
FLOPs: steps that do not touch a sliced label repeat once per slice. As in
cotengra's ``SliceFinder``, labels are chosen greedily by the reduction of
one slice's working set per unit of FLOP overhead, fewest slices first, and
every candidate is re-costed on the base plan's path with
:func:`~.build.build` (no search, and no cache: candidates never evict real
plans). This module only searches;
``contract.backend.sliced`` runs the slices as one ``lax.scan``.

>>> import contract
>>> p = contract.plan("ab,bc,cd->ad", (64, 64), (64, 64), (64, 64), memory_limit=24_000)
>>> p.labels, p.n_slices, p.peak_bytes <= 24_000 < p.base.peak_bytes
(('a', 'c'), 64, True)
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from ..errors import ContractError
from ..spec import Bound
from .build import build
from .costs import held, itemsize, live_peak, prod
from .model import Plan, SlicedPlan
from .optimizers import OPTIMIZERS

__all__ = ["check_limit", "divisors", "fit", "next_cuts", "resolve_limit", "slice_plan"]

# Above this many slices the scan's per-iteration overhead dominates any real
# contraction; the greedy search never goes past it.
MAX_SLICES = 1 << 20
# Weight of the slice count against FLOP overhead in the greedy score, so that
# among slicings without FLOP overhead the one with fewest slices wins.
_SLICE_WEIGHT = 0.01


def check_limit(memory_limit: Any) -> int | str | None:
    """``memory_limit`` as a hashable option: None, ``"max_input"`` or a positive int.

    >>> check_limit(2**20), check_limit("max_input")
    (1048576, 'max_input')
    >>> check_limit([100])
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: memory_limit must be a positive number of bytes or 'max_input', got [100]
    """
    if memory_limit is None or (isinstance(memory_limit, str) and memory_limit == "max_input"):
        return memory_limit
    integer = isinstance(memory_limit, (int, np.integer)) and not isinstance(
        memory_limit, (bool, np.bool_))
    if not integer or memory_limit <= 0:
        raise ContractError(
            f"memory_limit must be a positive number of bytes or 'max_input', got {memory_limit!r}"
        )
    return int(memory_limit)


def resolve_limit(memory_limit: Any, plan: Plan | None) -> int:
    """Check ``memory_limit`` and turn ``"max_input"`` into bytes for ``plan``.

    ``"max_input"`` bounds what the plan holds besides its output by the
    largest input, as opt_einsum's ``max_input`` bounds intermediates: the
    budget is the largest input's bytes (its own dtype) plus the output's
    (the compute dtype), since every plan's peak holds the output.

    >>> import contract
    >>> resolve_limit("max_input", contract.plan("ij,jk", (4, 8), (8, 2)))  # 128 + 32
    160
    """
    limit = check_limit(memory_limit)
    if limit == "max_input":
        if plan is None:
            return 0  # checked now; resolved once there is a plan
        largest = max((math.prod(s) * itemsize(d) for s, d in zip(plan.shapes, plan.dtypes)),
                      default=0)
        return largest + _output_bytes(plan)
    if limit is None:
        raise ContractError("memory_limit must be a positive number of bytes or 'max_input', "
                            "got None")
    return int(limit)


def _output_bytes(plan: Plan) -> int:
    return prod(plan.output, dict(plan.sizes)) * itemsize(plan.compute_dtype)


def divisors(n: int) -> list[int]:
    """The slice counts a label of size ``n`` allows (equal slices, no padding).

    >>> divisors(12)
    [1, 2, 3, 4, 6, 12]
    """
    return [d for d in range(1, n + 1) if n % d == 0]


def slice_plan(base: Plan, counts: dict[str, int], optimize: Any = None) -> SlicedPlan:
    """Cost ``base`` sliced ``counts[label]`` ways per label (each a divisor of its size).

    ``optimize=None`` keeps the base path (re-costing only); an optimizer name
    re-plans the sliced network. The peak (:mod:`.costs`) is one slice's:
    its copies of the inputs it cuts and the arrays it makes, next to the
    full output accumulator the scan carries.

    >>> import contract
    >>> sp = slice_plan(contract.plan("ij,jk->ik", (8, 6), (6, 4)), {"j": 3})
    >>> sp.n_slices, dict(sp.slice.sizes)["j"], sp.overhead
    (3, 2, 1.0)
    >>> sp.peak_bytes == 4 * (8 * 2 + 2 * 4 + 8 * 4 + 8 * 4)  # copies, part, accumulator
    True
    """
    sizes = dict(base.sizes)
    chunk = {l: sizes[l] // c for l, c in counts.items()}
    # The slice network takes already squeezed operands.
    bound = Bound(base.spec, base.inputs, base.output, {**sizes, **chunk},
                   tuple(() for _ in base.inputs))
    cdtype = base.compute_dtype
    one = build(bound, base.dtypes, cdtype, base.path if optimize is None else optimize)
    labels = tuple(l for l in sizes if counts.get(l, 1) > 1)
    peak = (_slice_peak(one, frozenset(labels)) + prod(base.output, sizes)) * itemsize(cdtype)
    return SlicedPlan(base, one, labels, tuple(counts[l] for l in labels), peak, None)


def _slice_peak(one: Plan, cut: frozenset[str]) -> int:
    """Elements one slice holds, counting a copy of every operand with a label in ``cut``."""
    sizes = dict(one.sizes)
    return live_peak(held(one.inputs, one.preps, sizes, cut),
                     [(s.operands, s.size) for s in one.steps], prod(one.output, sizes),
                     one.final != one.output)


def _work(sp: SlicedPlan) -> int:
    """One slice's working set with every operand counted: it shrinks with every cut
    (the peak need not: the first cut of an operand adds its copy), so the
    greedy search ranks cuts by it."""
    return _slice_peak(sp.slice, frozenset(dict(sp.slice.sizes)))


def _volume(sp: SlicedPlan) -> int:
    """Elements in one slice's inputs and intermediates."""
    one = sp.slice
    return sum(math.prod(s) for s in one.shapes) + sum(step.size for step in one.steps)


def next_cuts(sp: SlicedPlan) -> Iterator[SlicedPlan]:
    """Every slicing one step further than ``sp``: one label cut into its next divisor.

    >>> import contract
    >>> sp = slice_plan(contract.plan("ij,jk->ik", (4, 6), (6, 2)), {"j": 2})
    >>> [(c.labels, c.counts) for c in next_cuts(sp)]
    [(('i', 'j'), (2, 2)), (('j',), (3,)), (('j', 'k'), (2, 2))]
    """
    counts = dict(zip(sp.labels, sp.counts))
    for label, size in sp.base.sizes:
        have = counts.get(label, 1)
        bigger = [d for d in divisors(size) if d > have]
        if bigger and sp.n_slices // have * bigger[0] <= MAX_SLICES:
            yield slice_plan(sp.base, {**counts, label: bigger[0]})


def _greedy(base: Plan, limit: int) -> tuple[SlicedPlan, SlicedPlan | None]:
    """Slice until one slice fits ``limit``: the smallest-peak slicing seen, and
    the fitting one (None when cutting stops first). The cuts do not depend on
    ``limit``, only where they stop does, so with the smallest peak seen as the
    budget the search stops at a slicing that fits it."""
    cur = slice_plan(base, {})
    smallest = cur
    while cur.peak_bytes > limit:
        best, best_key = None, None
        for cand in next_cuts(cur):
            gain = math.log(_work(cur) / max(_work(cand), 1))
            if not gain:
                # The peak sits in another step too: a cut that shrinks the
                # arrays elsewhere still progresses (ranked after real gains).
                gain = 1e-6 * math.log(_volume(cur) / max(_volume(cand), 1))
            if gain <= 0:
                continue
            cost = (math.log(max(cand.flops, 1) / max(cur.flops, 1))
                    + _SLICE_WEIGHT * math.log(cand.n_slices / cur.n_slices))
            key = (gain / max(cost, 1e-12), -cand.n_slices)
            if best_key is None or key > best_key:
                best, best_key = cand, key
        if best is None:
            return smallest, None
        cur = best
        if cur.peak_bytes < smallest.peak_bytes:
            smallest = cur
    return smallest, cur


def fit(base: Plan, memory_limit: Any) -> Plan | SlicedPlan:
    """``base`` itself if its peak fits ``memory_limit``, else the best slicing found.

    Both peaks are :mod:`.costs`' (bytes held beyond the inputs), so a sliced
    plan always holds less than ``base``. Raises :class:`ContractError` with
    the smallest budget that would work when no slicing fits.

    >>> import contract
    >>> p = contract.plan("ab,bc,cd->ad", (64, 64), (64, 64), (64, 64))
    >>> fit(p, 10**6) is p, p.peak_bytes, fit(p, 24_000).peak_bytes
    (True, 32768, 22784)
    >>> fit(contract.plan("ij,jk->ik", (8, 6), (6, 4)), 8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: spec 'ij,jk->ik' needs 128 bytes unsliced; ... works is 128 bytes (unsliced)
    """
    limit = resolve_limit(memory_limit, base)
    if base.peak_bytes <= limit:
        return base
    smallest, sliced = _greedy(base, limit)
    if sliced is None:
        # Slicing adds copies of the inputs and keeps the whole output: for a
        # plan whose peak is little more than its output it cannot win.
        least = min(base.peak_bytes, smallest.peak_bytes)
        raise ContractError(
            f"spec '{base.spec}' needs {base.peak_bytes} bytes unsliced; the best slicing "
            f"({smallest.n_slices} slices) needs "
            f"{smallest.peak_bytes} bytes, over memory_limit={limit}: the smallest budget that "
            f"works is {least} bytes{' (unsliced)' if least == base.peak_bytes else ''}"
        )
    # Fewest slices: undo any slicing step the budget and FLOPs do not need.
    changed = True
    while changed:
        changed = False
        counts = dict(zip(sliced.labels, sliced.counts))
        for label, count in counts.items():
            fewer = [d for d in divisors(dict(base.sizes)[label]) if d < count][-1]
            cand = slice_plan(base, {**counts, label: fewer})
            if cand.peak_bytes <= limit and cand.flops <= sliced.flops:
                sliced, changed = cand, True
                break
    # The path was fixed while slicing; a fresh search on the sliced sizes can
    # do better (it is kept only if it still fits and costs fewer FLOPs).
    if base.optimize in OPTIMIZERS:
        counts = dict(zip(sliced.labels, sliced.counts))
        replanned = slice_plan(base, counts, base.optimize)
        if replanned.peak_bytes <= limit and replanned.flops < sliced.flops:
            sliced = replanned
    return SlicedPlan(sliced.base, sliced.slice, sliced.labels, sliced.counts,
                      sliced.peak_bytes, limit)
