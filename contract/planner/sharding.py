"""Sharded labels: which mesh axes each label is split over, and what each device runs.

A :class:`Layout` says how the operands arrive: the mesh's axes and sizes,
and for every operand axis the mesh axes it is split over (a
``PartitionSpec`` as plain data). :func:`shard` turns a plan and a layout
into a sharded :class:`~.model.SlicedPlan` by these rules, the same for every
entry point (einsum, the array operations, ``contract.jit``, ``mesh=``):

1. **One sharding per label.** Output labels are resolved first (they decide
   the result's sharding, as ``jnp`` does), then contracted ones; each takes
   the sharding it has in the first operand that shards it, unless one of
   those mesh axes is already taken by another label. A label repeated in
   one operand (a diagonal) stays whole, as in ``jnp.einsum``.
2. **Operands follow their labels.** An operand axis that arrives whole
   where its label is sharded is cut locally (no communication); one
   sharded differently is resharded first (the report counts those bytes).
3. **Each device contracts its blocks.** A sharded label of size ``d`` on
   mesh axes of ``D`` devices is ``D`` slices dealt out in blocks, so every
   device runs the plan on its own block (``local_plan``). Free labels keep
   their sharding; a sharded label that is summed leaves a partial sum,
   reduced once at the end with one ``psum`` over its mesh axes.
4. **``mesh=`` chooses the rest** (:func:`spread`): each unused mesh axis goes
   to the label that lowers the busiest device's FLOPs most, output labels
   before contracted ones (no ``psum``), fewer bytes held per device next.
5. A memory budget applies per device: the local plan is sliced to fit it.

Plans stay pure functions of their inputs: the layout is an input, like the
dtypes, and the same layout gives the same plan in every process.

>>> import contract
>>> p = contract.plan("bij,bjk->bik", (8, 4, 4), (8, 4, 4))
>>> sp = shard(p, Layout((("x", 4),), ((("x",), (), ()), ((), (), ()))))
>>> sp.shards, sp.n_slices, output_spec(sp), reduced_axes(sp)
((('b', ('x',)),), 4, (('x',), (), ()), ())
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..caching import memoized
from ..errors import ContractError
from .model import Plan, SlicedPlan
from .shardfacts import (Axes, shard_counts, input_bytes, repeated_labels, label_shards, communication,
                         device_bytes, device_peak, idle_axes, operand_specs, output_spec,
                         reduced_axes)
from .slicing import fit, slice_plan

__all__ = ["Layout", "communication", "device_bytes", "device_peak", "idle_axes", "local_plan",
           "operand_specs", "output_spec", "reduced_axes", "shard", "spread"]


@dataclass(frozen=True)
class Layout:
    """Where the operands live: ``mesh`` as ``((axis, size), ...)`` in mesh
    order, ``specs[n][d]`` the mesh axes operand ``n``'s axis ``d`` is split
    over (``()`` for whole), for every axis as passed (before squeezing)."""

    mesh: tuple[tuple[str, int], ...]
    specs: tuple[tuple[Axes, ...], ...]

    @classmethod
    def whole(cls, mesh: tuple[tuple[str, int], ...], plan: Plan | SlicedPlan) -> "Layout":
        """Every operand of ``plan`` unsharded on ``mesh``."""
        ranks = [len(t) + len(s) for t, s in zip(plan.inputs, plan.squeeze)]
        return cls(mesh, tuple(((),) * r for r in ranks))


def _mesh_shape(mesh: Any) -> tuple[tuple[str, int], ...]:
    """``((axis, size), ...)`` of an int (a 1-D mesh), such pairs, or an object
    with a ``shape`` mapping (a ``jax.sharding.Mesh``)."""
    if isinstance(mesh, int):
        return (("devices", mesh),)
    items = mesh.shape.items() if hasattr(mesh, "shape") else mesh
    return tuple((str(a), int(n)) for a, n in items)


def _given(base: Plan, layout: Layout) -> tuple[tuple[Axes, ...], ...]:
    """The layout per squeezed operand axis, mesh axes of size 1 dropped."""
    sizes = dict(layout.mesh)
    if len(layout.specs) != len(base.inputs):
        raise ContractError(f"layout has {len(layout.specs)} operand(s); spec "
                            f"'{base.spec}' takes {len(base.inputs)}")
    out = []
    for n, (spec, labels, drop) in enumerate(zip(layout.specs, base.inputs, base.squeeze)):
        if len(spec) != len(labels) + len(drop):
            raise ContractError(f"operand {n} of '{base.spec}' has {len(labels) + len(drop)} "
                                f"axes but its sharding names {len(spec)}")
        for axes in spec:
            for a in axes:
                if a not in sizes:
                    raise ContractError(f"operand {n} is sharded over mesh axis {a!r}, which "
                                        f"the mesh ({', '.join(sizes)}) does not have")
        kept = [axes for d, axes in enumerate(spec) if d not in drop]
        out.append(tuple(tuple(a for a in axes if sizes[a] > 1) for axes in kept))
    return tuple(out)


def _order(base: Plan) -> list[str]:
    """Output labels first, then the others in order of appearance."""
    return list(dict.fromkeys((*base.output, *(l for t in base.inputs for l in t))))


def _resolve(base: Plan, given: tuple[tuple[Axes, ...], ...],
             sizes: dict[str, int]) -> dict[str, Axes]:
    """Rule 1 of the module docstring: one sharding per label."""
    label_size = dict(base.sizes)
    repeated = repeated_labels(base)
    used: set[str] = set()
    out: dict[str, Axes] = {}
    for label in _order(base):
        if label in repeated:
            continue
        for labels, spec in zip(base.inputs, given):
            axes = next((a for l, a in zip(labels, spec) if l == label and a), ())
            if (axes and not used & set(axes)
                    and label_size[label] % math.prod(sizes[a] for a in axes) == 0):
                out[label] = axes
                used |= set(axes)
                break
    return out


def _score(base: Plan, shards: dict[str, Axes], sizes: dict[str, int]) -> tuple[int, bool, int]:
    """(FLOPs per device, whether a psum is needed, bytes of inputs per device)."""
    counts = shard_counts(shards, sizes)
    one = slice_plan(base, counts).slice
    return (one.flops, any(l not in base.output for l in shards), input_bytes(base, counts))


def _choose(base: Plan, shards: dict[str, Axes], sizes: dict[str, int]) -> dict[str, Axes]:
    """Rule 4: give every unused mesh axis to the label it helps most."""
    label_size = dict(base.sizes)
    repeated = repeated_labels(base)
    used = {a for axes in shards.values() for a in axes}
    for axis, n in sizes.items():
        if axis in used or n == 1:
            continue
        now = _score(base, shards, sizes)
        best, best_score = None, None
        for label in _order(base):
            have = math.prod(sizes[a] for a in shards.get(label, ()))
            if label in repeated or (label_size[label] // have) % n:
                continue
            cand = {**shards, label: (*shards.get(label, ()), axis)}
            score = _score(base, cand, sizes)
            if (score[0], score[2]) >= (now[0], now[2]):
                continue  # neither fewer FLOPs nor fewer bytes per device
            if best_score is None or score < best_score:
                best, best_score = cand, score
        if best is not None:
            shards, used = best, used | {axis}
    return shards


@memoized("sharded plans")
def shard(plan: Plan | SlicedPlan, layout: Layout, choose: bool = False,
          memory_limit: Any = None) -> Plan | SlicedPlan:
    """``plan`` sharded as ``layout`` says (module docstring); ``choose`` shards
    the mesh axes no operand uses as well (``mesh=``).

    Returns ``plan`` itself when nothing is sharded and there is no new
    budget. ``memory_limit`` (default: the budget ``plan`` was sliced for) is
    per device: each device's part is fitted to it, so an unsliced ``plan``
    may hold more than the budget as a whole (its output, say). A sharded
    plan is re-sharded from its base, so ``shard`` of its own result gives
    the same plan.
    """
    base = plan.base if isinstance(plan, SlicedPlan) else plan
    limit = memory_limit
    if limit is None and isinstance(plan, SlicedPlan):
        limit = plan.memory_limit
    sizes = dict(layout.mesh)
    given = _given(base, layout)
    shards = _resolve(base, given, sizes)
    if choose:
        shards = _choose(base, shards, sizes)
    if not shards and not any(any(spec) for spec in given):
        unsharded = base if isinstance(plan, SlicedPlan) and plan.mesh else plan
        if limit is None or (unsharded is plan and memory_limit is None):
            return unsharded
        return fit(base, limit)  # sharded before, or a new budget: fit the whole
    counts = shard_counts(shards, sizes)
    local = slice_plan(base, counts).slice
    fitted = local if limit is None else fit(local, limit)
    memory = dict(zip(fitted.labels, fitted.counts)) if isinstance(fitted, SlicedPlan) else {}
    one = fitted.slice if isinstance(fitted, SlicedPlan) else fitted
    total = {l: counts.get(l, 1) * memory.get(l, 1) for l, _ in base.sizes}
    labels = tuple(l for l, c in total.items() if c > 1)
    order = _order(base)
    return SlicedPlan(base, one, labels, tuple(total[l] for l in labels), fitted.peak_bytes,
                      limit, math.prod(sizes.values()), layout.mesh,
                      tuple(sorted(shards.items(), key=lambda kv: order.index(kv[0]))), given)


def spread(plan: Plan | SlicedPlan, mesh: Any, memory_limit: Any = None) -> Plan | SlicedPlan:
    """``plan`` sharded over ``mesh`` from unsharded operands, the labels chosen
    by rule 4: ``mesh`` is a device count (a 1-D mesh), ``((axis, size), ...)``
    or a ``jax.sharding.Mesh``; ``memory_limit`` is a budget per device (see
    :func:`shard`). A plan that cannot use the mesh comes back as is, fitted
    to a budget if one is given.

    >>> import contract
    >>> sp = spread(contract.plan("ij,jk->ik", (8, 6), (6, 4)), 2)
    >>> sp.labels, sp.n_slices, sp.overhead
    (('i',), 2, 1.0)
    """
    shape = _mesh_shape(mesh)
    if math.prod(n for _, n in shape) <= 1:
        base = plan.base if isinstance(plan, SlicedPlan) else plan
        return plan if memory_limit is None else fit(base, memory_limit)
    return shard(plan, Layout.whole(shape, plan), True, memory_limit)


@memoized("local plans")
def local_plan(sp: SlicedPlan) -> Plan | SlicedPlan:
    """What one device runs: the plan on its blocks, sliced further for a budget.

    Its operands are the device's blocks of the squeezed operands and its
    result (in the compute dtype) is the device's block of the output, a
    partial sum where :func:`reduced_axes` is not empty.
    """
    sizes = dict(sp.mesh)
    counts = shard_counts(label_shards(sp), sizes)
    memory = {l: c // counts.get(l, 1) for l, c in zip(sp.labels, sp.counts)
              if c // counts.get(l, 1) > 1}
    if not memory:
        return sp.slice
    local = slice_plan(sp.base, counts).slice
    labels = tuple(l for l, _ in sp.base.sizes if l in memory)
    return SlicedPlan(local, sp.slice, labels, tuple(memory[l] for l in labels), sp.peak_bytes,
                      sp.memory_limit)
