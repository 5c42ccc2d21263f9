"""Run a sharded plan (:mod:`contract.planner.sharding`) with ``jax.shard_map``.

Each operand is placed as the plan holds it (a whole axis whose label is
sharded is cut locally; an axis sharded otherwise is resharded), then every
device runs the plan's local part on its own blocks — one ``dot_general``
per step, or one ``lax.scan`` over its slices under a memory budget — and a
summed sharded label ends in one ``lax.psum`` over its mesh axes. The result
is sharded as its free labels are, as ``jnp`` would shard it.

Nothing here is home-made distribution: the mesh, the per-device program
(``shard_map``) and the collective (``psum``) are JAX's, so the same code runs
on several hosts after ``jax.distributed.initialize()`` (docs/scaling.md).

>>> import contract
>>> from contract.planner import spread
>>> sp = spread(contract.plan("ij,jk->ik", (8, 6), (6, 4)), 2)
>>> sp.labels, sp.n_slices, sp.overhead
(('i',), 2, 1.0)
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import AxisType, Mesh, NamedSharding

from ..errors import ContractError
from ..planner import SlicedPlan
from ..planner.sharding import local_plan, operand_specs, output_spec, reduced_axes
from .jax import execute
from .layout import Found, held, read, shard_like, spec
from .sliced import cast_result, run_slices

__all__ = ["check_mesh", "in_shardings", "scan_blocks", "sharded"]


def check_mesh(mesh: Any) -> Mesh:
    """Check that ``mesh`` is a ``jax.sharding.Mesh``.

    >>> check_mesh("gpu")
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: mesh must be a jax.sharding.Mesh, got str
    """
    if not isinstance(mesh, Mesh):
        raise ContractError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    return mesh


def in_shardings(sp: SlicedPlan, mesh: Any) -> list[NamedSharding]:
    """Where each operand (as passed: squeezed axes included) should live on ``mesh``."""
    out = []
    for axes, drop in zip(operand_specs(sp), sp.base.squeeze):
        axes = list(axes)
        for d in sorted(drop):
            axes.insert(d, ())
        out.append(NamedSharding(mesh, spec(axes)))
    return out


def sharded(sp: SlicedPlan, precision: Any, mesh: Any) -> Callable[..., jax.Array]:
    """The traceable function running the sharded plan ``sp`` on ``mesh``."""
    base = sp.base
    local = local_plan(sp)
    wanted = operand_specs(sp)
    reduce = reduced_axes(sp)
    varying = tuple(a for a, _ in sp.mesh if any(a in axes for _, axes in sp.shards))
    explicit = AxisType.Explicit in tuple(mesh.axis_types)

    def body(*blocks: jax.Array) -> jax.Array:
        if isinstance(local, SlicedPlan):
            acc = run_slices(local, precision, blocks, varying, cast=False)
        else:
            acc = execute(local, precision, *blocks)
        if reduce:
            acc = lax.psum(acc, reduce)
        return cast_result(acc, base.result_dtype)

    run = jax.shard_map(body, mesh=mesh, in_specs=tuple(spec(w) for w in wanted),
                        out_specs=spec(output_spec(sp)))

    def call(*operands: Any) -> jax.Array:
        arrays = []
        for x, drop, want in zip(operands, base.squeeze, wanted):
            x = jnp.asarray(x)
            if drop:
                x = lax.squeeze(x, drop)
            if explicit and held(x) != want:
                # Explicit axes are not moved implicitly: reshard (a local cut
                # where the operand was whole, a collective where it was not).
                x = jax.sharding.reshard(x, NamedSharding(mesh, spec(want)))
            arrays.append(x)
        return run(*arrays)

    return call


def scan_blocks(x: jax.Array, axis: int, reverse: bool, scan: Callable[[jax.Array], jax.Array],
                layout: Found | None = None) -> jax.Array:
    """``scan(x)`` — an inclusive scan along ``axis`` — on a sharded ``x`` too.

    ``scan`` may reshape freely: on a sharded ``x`` it runs on each device's
    block inside ``jax.shard_map``, so the result keeps ``x``'s sharding, as
    ``jnp.cumsum``'s does. Where ``axis`` itself is sharded (``jnp.cumsum``
    refuses), the blocks' totals are exchanged once (one ``all_gather`` of one
    slice per device) and each device adds the totals of the blocks before it
    (after it, for ``reverse``). ``layout`` (:func:`.layout.read` of the
    concrete array) stands in for auto axes, which a trace hides; where
    neither shows a sharding, the result is tied to ``x``'s (``shard_alike``),
    so that under ``jax.jit`` XLA's propagation shards it as it does
    ``jnp.cumsum``'s instead of replicating it after the triangular products.
    """
    found = layout if layout is not None else read([x])
    if found is None or not any(found[0].specs[0]):
        return shard_like(lambda: x, scan(x))
    axes_all = found[0].specs[0]
    axes, mesh = axes_all[axis], found[1]
    count = math.prod(mesh.shape[a] for a in axes)

    def body(block: jax.Array) -> jax.Array:
        local = scan(block)
        if not axes:
            return local
        total = lax.index_in_dim(local, 0 if reverse else -1, axis)
        totals = lax.all_gather(total, axes, axis=axis, tiled=True)
        me = lax.axis_index(axes)
        shape = [1] * local.ndim
        shape[axis] = count
        others = jnp.arange(count).reshape(shape)
        before = others > me if reverse else others < me
        carry = jnp.sum(jnp.where(before, totals, jnp.zeros_like(totals)), axis, keepdims=True,
                        dtype=local.dtype)
        return local + carry

    where = spec(axes_all)
    if AxisType.Explicit in tuple(mesh.axis_types) and held(x) != axes_all:
        x = jax.sharding.reshard(x, NamedSharding(mesh, where))
    return jax.shard_map(body, mesh=mesh, in_specs=where, out_specs=where)(x)
