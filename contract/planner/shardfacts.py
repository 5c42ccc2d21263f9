"""What a sharded plan costs each device, read from its data alone.

These facts (blocks held, peak, collectives, idle mesh axes) need no plan
building, so the report can show them without importing the sharding search
(:mod:`.sharding`), which builds plans and so depends on :mod:`.model`.

>>> import contract
>>> from contract.planner.sharding import Layout, shard
>>> p = contract.plan("bij,bjk->bik", (8, 4, 4), (8, 4, 4))
>>> sp = shard(p, Layout((("x", 4),), ((("x",), (), ()), ((), (), ()))))
>>> device_bytes(sp), local_slices(sp), communication(sp), idle_axes(sp)
(256, 1, [], ())
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .costs import itemsize

if TYPE_CHECKING:
    from .model import Plan, SlicedPlan

__all__ = ["Axes", "communication", "device_bytes", "device_peak", "idle_axes", "input_bytes",
           "label_shards", "local_slices", "operand_specs", "output_spec", "reduced_axes",
           "repeated_labels", "shard_counts"]

Axes = tuple[str, ...]


def repeated_labels(base: "Plan") -> set[str]:
    return {l for t in base.inputs for l in t if t.count(l) > 1}


def shard_counts(shards: dict[str, Axes], sizes: dict[str, int]) -> dict[str, int]:
    return {l: math.prod(sizes[a] for a in axes) for l, axes in shards.items()}


def input_bytes(base: "Plan", counts: dict[str, int]) -> int:
    """Bytes of one device's blocks of the operands (their own dtypes)."""
    return sum(math.prod(s) // math.prod(counts.get(l, 1) for l in dict.fromkeys(t))
               * itemsize(d) for s, t, d in zip(base.shapes, base.inputs, base.dtypes))


def label_shards(sp: "Plan | SlicedPlan") -> dict[str, Axes]:
    return dict(sp.shards)


def operand_specs(sp: "SlicedPlan") -> tuple[tuple[Axes, ...], ...]:
    """The mesh axes of every squeezed operand axis, as the devices hold them."""
    shards, repeated = label_shards(sp), repeated_labels(sp.base)
    return tuple(tuple(() if l in repeated else shards.get(l, ()) for l in t)
                 for t in sp.base.inputs)


def output_spec(sp: "SlicedPlan") -> tuple[Axes, ...]:
    """The mesh axes of every output axis: free labels keep their sharding."""
    shards = label_shards(sp)
    return tuple(shards.get(l, ()) for l in sp.base.output)


def reduced_axes(sp: "SlicedPlan") -> Axes:
    """Mesh axes of summed sharded labels: one ``psum`` over them ends the run."""
    order = [a for a, _ in sp.mesh]
    out = {a for l, axes in sp.shards if l not in sp.base.output for a in axes}
    return tuple(a for a in order if a in out)


def local_slices(sp: "SlicedPlan") -> int:
    """How many slices one device runs in sequence (1: its block fits as it is)."""
    counts = shard_counts(label_shards(sp), dict(sp.mesh))
    return math.prod(c // counts.get(l, 1) for l, c in zip(sp.labels, sp.counts))


def device_bytes(sp: "SlicedPlan") -> int:
    """Bytes of the operands one device holds (its blocks, in their dtypes)."""
    return input_bytes(sp.base, shard_counts(label_shards(sp), dict(sp.mesh)))


def device_peak(sp: "SlicedPlan") -> int:
    """One device's peak: its operand blocks plus what its part of the plan
    holds beyond them (the plan's ``peak_bytes``: a budget-sliced part counts
    its slice and its block of the output accumulator)."""
    return device_bytes(sp) + sp.peak_bytes


def communication(sp: "SlicedPlan") -> list[tuple[str, str, int]]:
    """``(when, what, bytes per device)`` for every collective the plan runs:
    a reshard of each operand that arrives sharded otherwise (before the
    steps), then the psum of partial sums (after the last step)."""
    sizes = dict(sp.mesh)
    label_size = dict(sp.base.sizes)
    out = []
    for n, (labels, given, held, dtype) in enumerate(
            zip(sp.base.inputs, sp.given, operand_specs(sp), sp.base.dtypes)):
        moved = [(l, g, h) for l, g, h in zip(labels, given, held) if g and g != h]
        if not moved:
            continue  # whole -> sharded is a local cut
        block = math.prod(label_size[l] // math.prod(sizes[a] for a in h)
                          for l, h in zip(labels, held))
        what = ", ".join(f"{l} {'/'.join(g)} -> {'/'.join(h) or 'whole'}" for l, g, h in moved)
        out.append(("before step 0", f"reshard operand {n} ({what})", block * itemsize(dtype)))
    reduce = reduced_axes(sp)
    if reduce:
        counts = shard_counts(label_shards(sp), sizes)
        block = math.prod(label_size[l] // counts.get(l, 1) for l in sp.base.output)
        steps = len(sp.base.steps)
        out.append((f"after step {steps - 1}" if steps else "after the reductions",
                    f"psum of the output over {', '.join(reduce)}",
                    block * itemsize(sp.base.compute_dtype)))
    return out


def idle_axes(sp: "SlicedPlan") -> Axes:
    """Mesh axes no label is sharded over: the devices along them repeat the same work."""
    used = {a for _, axes in sp.shards for a in axes}
    return tuple(a for a, n in sp.mesh if a not in used and n > 1)
