"""Fit a plan into a byte budget by slicing labels (meshes: :mod:`.sharding`).

Slicing a label of size ``d`` into ``s`` slices splits the network into ``s``
copies where that label has size ``d / s``; each copy is contracted with the
same path and the results are summed (a contracted label) or written into
their place in the output (an output label). The intermediates shrink with
the sliced sizes, while each slice adds copies of the inputs it cuts and the
whole output stays (the scan's accumulator): the peak of :mod:`.costs`, the
same definition as the unsliced plan's, counts all of it, so a plan whose
peak is little more than its output cannot be sliced below it. The price is
FLOPs: steps that do not touch a sliced label repeat once per slice.

The search (:func:`fit`) costs every candidate on :class:`.slicetree.SliceCosts`,
which updates only the steps and arrays carrying the cut label (no plan is
built per candidate):

1. **Greedy cuts** on the base path: among the labels on arrays alive where
   the path holds more than the budget, cut the one that takes most off
   those excesses per unit of FLOP overhead (cotengra's ``SliceFinder``
   ranks likewise), until the peak fits. Where the base tree is wide
   everywhere and no cut sequence fits, a recursive bisection of the
   network (KaHyPar's) is the tree sliced instead (:func:`_bisected`).
2. **Trim**: undo every cut neither the budget nor the FLOPs need, then
   trade single cuts for others while the FLOPs fall.
3. **Two starts**: the base path, and a fresh search of ``base.optimize``
   on the sliced sizes, each sliced and trimmed; the cheaper goes on.
4. **Interleave** subtree reconfiguration (:func:`.optimizers.tree.reconfigure`,
   by one slice's FLOPs, never wider) with re-slicing while the FLOPs fall,
   as cotengra's ``slicing_reconf_opts`` does. A tree re-ordered until it
   fits unsliced comes back as that plain plan.

All of it is counted in cuts and rounds, never in seconds: a 60 s fuse only
stops a run far past its expected length, and warns. The result is built
once with :func:`slice_plan` and checked against the budget. This module
only searches; ``contract.backend.sliced`` runs the slices as one
``lax.scan``.

>>> import contract
>>> p = contract.plan("ab,bc,cd->ad", (64, 64), (64, 64), (64, 64), memory_limit=24_000)
>>> p.labels, p.n_slices, p.peak_bytes <= 24_000 < p.base.peak_bytes
(('a', 'c'), 64, True)
"""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import ContractError
from ..spec import Bound
from .build import build
from .costs import held, itemsize, live_peak, prod
from .model import Plan, SlicedPlan
from .optimizers import OPTIMIZERS
from .optimizers.partition import partition_tree
from .optimizers.paths import linear_path, tree_of_linear
from .optimizers.tree import Legs, Net, reconfigure, tree_flops, tree_width
from .report import brief
from .slicetree import SliceCosts, divisors

__all__ = ["check_limit", "divisors", "fit", "resolve_limit", "slice_plan"]

# The most slices a plan may have: the scan's slice number is an int32. A
# circuit of 1,200 tensors (2^49 elements unsliced) needs 2^22-2^26 slices
# to fit 2^27, each slice still a contraction of ~10^7 FLOPs, so the scan's
# per-slice overhead (microseconds) stays small.
MAX_SLICES = 1 << 30
# Weight of the slice count against FLOP overhead in the greedy score, so that
# among slicings without FLOP overhead the one with fewest slices wins.
_SLICE_WEIGHT = 0.01
# Subtree reconfiguration of the sliced tree: rounds of (re-order, re-slice),
# the parts each sub-problem orders exactly, and the fuse that stops a run
# far past its expected length (with a warning).
_ROUNDS, _PARTS, _FUSE = 4, 8, 60.0


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


def _greedy(model: SliceCosts, limit: int,
            banned: frozenset[str] = frozenset()) -> tuple[tuple[int, int], bool]:
    """Cut labels of ``model`` (not those ``banned``) until its peak fits
    ``limit`` (True) or no cut is left (False); returns the smallest (peak
    bytes, slice count) seen."""
    budget = limit // model.item - model.accumulator  # elements one slice may hold
    peak = model.peak_bytes()
    smallest = (peak, model.n_slices)
    while peak > limit:
        now = max(model.flops(), 1)
        best, best_key = None, None
        for cut in model.cuts(budget, MAX_SLICES):
            if cut.label in banned:
                continue
            # log(FLOP ratio) from the exact difference: 0 for a free cut.
            cost = (math.log1p((cut.flops - now) / now)
                    + _SLICE_WEIGHT * math.log(cut.n_slices / model.n_slices))
            key = (cut.gain / max(cost, 1e-12), -cut.n_slices)
            if best_key is None or key > best_key:
                best, best_key = cut, key
        if best is None:
            return smallest, False
        model.set_count(best.label, best.count)
        peak = model.peak_bytes()
        smallest = min(smallest, (peak, model.n_slices))
    return smallest, True


def _fewest(model: SliceCosts, limit: int) -> None:
    """Undo every cut of ``model`` that neither the budget nor the FLOPs need."""
    changed = True
    while changed:
        changed = False
        for label, count in model.counts.items():
            if count == 1:
                continue
            flops = model.flops()
            model.set_count(label, [d for d in divisors(model.sizes[label]) if d < count][-1])
            # FLOPs first: they cost nothing to read, the peak a sweep of the path.
            if model.flops() <= flops and model.peak_bytes() <= limit:
                changed = True
                break
            model.set_count(label, count)


def _exchange(model: SliceCosts, limit: int) -> None:
    """Trade one cut of ``model`` (which fits ``limit``) for others: undo it,
    cut other labels until the peak fits again, keep the trade if the total
    FLOPs fall. One greedy order can trap the search (its early cuts made
    for points a later cut brings down anyway); every trade strictly lowers
    the FLOPs, so this ends."""
    better = True
    while better:
        better = False
        for label in [l for l, c in model.counts.items() if c > 1]:
            counts, flops = dict(model.counts), model.flops()
            model.set_count(label, [d for d in divisors(model.sizes[label])
                                    if d < counts[label]][-1])
            if _greedy(model, limit, frozenset([label]))[1]:
                _fewest(model, limit)
                if model.flops() < flops:
                    better = True
                    break
            for l, c in counts.items():
                if model.counts[l] != c:
                    model.set_count(l, c)


def _trimmed(start: Plan, counts: dict[str, int], limit: int) -> SliceCosts | None:
    """``start``'s path cut ``counts`` ways, then more until it fits ``limit``
    (None if it cannot), its needless cuts undone and its cuts traded."""
    model = SliceCosts(start)
    for label, count in counts.items():
        model.set_count(label, count)
    if not _greedy(model, limit)[1]:
        return None
    _fewest(model, limit)
    _exchange(model, limit)
    return model


def _bisected(base: Plan, limit: int) -> tuple[SliceCosts, Plan] | None:
    """A start for a base tree the greedy cannot slice into ``limit``: the
    network's recursive bisection (:func:`.optimizers.partition.partition_tree`,
    KaHyPar when installed), sliced greedily, or None if that fails too.

    A greedy or annealed tree can be wide everywhere: the ``auto`` tree of a
    1,191-tensor circuit (2^43 elements) got down to 2^33 with 2^29 slices,
    and neither subtree reconfiguration nor re-planning on the sliced sizes
    narrowed it (2^37 -> 2^36). A bisection tree's large intermediates sit
    on a few long bonds, each cut halving them: the same circuit fits 2^27
    with 2^22 slices. The first of three imbalances (0.1, 0.03, 0.3) whose
    tree slices into the budget; a bisection costs about 1 ms per tensor,
    slicing it a few times that.
    """
    n = len(base.inputs)
    net = Net([frozenset(p.labels) for p in base.preps], frozenset(base.output), dict(base.sizes))
    for imbalance in (0.1, 0.03, 0.3):
        tree = partition_tree(net, random.Random(0), imbalance)
        plan = slice_plan(base, {}, linear_path(tree, n)).slice
        model = SliceCosts(plan)
        if _greedy(model, limit)[1]:
            return model, plan
    return None


def _interleaved(base: Plan, start: Plan, model: SliceCosts, limit: int,
                 deadline: float) -> tuple[SliceCosts, Plan]:
    """Interleave subtree reconfiguration with slicing, from ``model`` (a
    slicing of ``start``'s path): re-order the sliced tree by one slice's
    FLOPs (:func:`.optimizers.tree.reconfigure`, never wider than it is
    sliced), re-slice the new order (it may hold more: cut again; or less:
    undo cuts), while the total FLOPs fall. Returns the slicing and the plan
    (``base``'s network, unsliced) whose path it costs."""
    n = len(start.inputs)
    inputs = [frozenset(p.labels) for p in start.preps]
    tree = tree_of_linear(start.path, n)
    for _ in range(_ROUNDS if n > 2 else 0):
        net = Net(inputs, frozenset(start.output), {l: model.chunk(l) for l in model.sizes})
        legs = Legs(net)
        new = reconfigure(net, tree, _PARTS, deadline, cap=2.0 ** tree_width(net, tree, legs))
        if tree_flops(net, new) >= tree_flops(net, tree, legs) * (1 - 1e-9):
            break
        plan = slice_plan(base, {}, linear_path(new, n)).slice
        again = _trimmed(plan, {l: c for l, c in model.counts.items() if c > 1}, limit)
        if again is None or again.flops() >= model.flops():
            break
        model, start, tree = again, plan, new
    return model, start


def fit(base: Plan, memory_limit: Any) -> Plan | SlicedPlan:
    """``base`` itself if its peak fits ``memory_limit``, else the best slicing found.

    Both peaks are :mod:`.costs`' (bytes held beyond the inputs), so a sliced
    plan always holds less than ``base``. Raises :class:`ContractError` with
    the smallest budget that would work when no slicing fits. Where the
    search re-orders the tree until it fits unsliced, the result is that
    plain plan.

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
    began = time.perf_counter()
    first = SliceCosts(base)
    (smallest, slices), fits = _greedy(first, limit)
    stepped = None if fits else _bisected(base, limit)
    if stepped is not None:
        first, start = stepped
    else:
        start = base
    if not (fits or stepped):
        # Slicing adds copies of the inputs and keeps the whole output: for a
        # plan whose peak is little more than its output it cannot win.
        least = min(base.peak_bytes, smallest)
        raise ContractError(
            f"spec '{brief(base.spec)}' needs {base.peak_bytes} bytes unsliced; the best slicing "
            f"({slices} slices) needs {smallest} bytes, over memory_limit={limit}: the "
            f"smallest budget that works is {least} bytes"
            f"{' (unsliced)' if least == base.peak_bytes else ''}"
        )
    _fewest(first, limit)
    _exchange(first, limit)
    # Two starting trees: the base path, and a fresh search on its sliced
    # sizes (the better one on about half of the 3-regular graphs of 50-300
    # tensors measured; rarely on larger ones). The cheaper once sliced goes
    # on to the reconfiguration (the costliest part).
    starts: list[tuple[SliceCosts | None, Plan]] = [(first, start)]
    if base.optimize in OPTIMIZERS:
        counts = {l: c for l, c in first.counts.items() if c > 1}
        fresh = slice_plan(base, counts, base.optimize).slice
        again = slice_plan(base, {}, fresh.path).slice
        starts.append((_trimmed(again, counts, limit), again))
    model, plan = min(((m, p) for m, p in starts if m is not None), key=lambda s: s[0].flops())
    model, plan = _interleaved(base, plan, model, limit, began + _FUSE)
    if time.perf_counter() - began > _FUSE:
        warnings.warn(f"slicing '{brief(base.spec)}': the {_FUSE:g} s time fuse stopped the subtree "
                      "reconfiguration early; this plan depends on the machine's speed",
                      stacklevel=2)
    counts = {l: c for l, c in model.counts.items() if c > 1}
    if counts:
        fitted: Plan | SlicedPlan = slice_plan(base, counts, None if plan is base else plan.path)
    else:  # re-ordered until it fits unsliced: that plan, as make_plan builds one
        bound = Bound(base.spec, base.inputs, base.output, dict(base.sizes), base.squeeze)
        fitted = build(bound, base.dtypes, base.result_dtype, plan.path)
    if fitted.peak_bytes > limit:  # SliceCosts counts as slice_plan does: never
        raise ContractError(f"internal error: the slicing of '{brief(base.spec)}' found to fit "
                            f"memory_limit={limit} holds {fitted.peak_bytes} bytes")
    if isinstance(fitted, Plan):
        return replace(fitted, optimize=base.optimize, strategy=f"{base.strategy}+reconfigure",
                       planning_seconds=base.planning_seconds + fitted.planning_seconds)
    return replace(fitted, memory_limit=limit)
