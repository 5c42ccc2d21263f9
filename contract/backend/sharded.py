"""Run a contraction over a ``jax.sharding.Mesh``: slices spread across devices.

The unit of work is a slice (see :mod:`contract.planner.slicing`). A plan that needs
no slicing for memory is sliced for the mesh instead, choosing the labels that
minimise the FLOPs each device runs (an output/batch label with no FLOP
overhead, when one divides evenly). Inside ``jax.shard_map`` every device
scans its share of the slices (slice ``k * devices + device``), and one
``lax.psum`` over all mesh axes adds the partial outputs — the only
collective. Inputs are replicated, the result is replicated.

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

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from ..errors import ContractError
from ..planner import Plan, SlicedPlan, slice_plan
from .sliced import cast_result, run_slices

__all__ = ["check_mesh", "sharded"]


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


def _device_index(mesh: Mesh) -> jax.Array:
    """This device's position in the mesh, row-major over its axes."""
    index = lax.axis_index(mesh.axis_names[0])
    for name in mesh.axis_names[1:]:
        index = index * mesh.shape[name] + lax.axis_index(name)
    return index


def sharded(plan: Plan | SlicedPlan, precision: Any, mesh: Mesh) -> Callable[..., jax.Array]:
    """The traceable function running ``plan`` across ``mesh`` (see the module docstring)."""
    devices = mesh.size
    sp = plan if isinstance(plan, SlicedPlan) else slice_plan(plan, {})
    rounds = -(-sp.n_slices // devices)
    names = tuple(mesh.axis_names)

    def local(*operands: Any) -> jax.Array:
        me = _device_index(mesh)

        def index(k: jax.Array) -> tuple[jax.Array, jax.Array]:
            n = k * devices + me
            # Devices past the last slice rerun slice 0 and drop it.
            return jnp.where(n < sp.n_slices, n, 0), n < sp.n_slices

        acc = run_slices(sp, precision, operands, rounds, index)
        return cast_result(lax.psum(acc, names), sp.base.result_dtype)

    n = len(sp.base.inputs)
    # check_vma=False: the scan's accumulator starts replicated (zeros) and
    # becomes device-dependent; psum makes the result replicated again.
    run = jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec(),) * n,
                        out_specs=PartitionSpec(), check_vma=False)
    return jax.named_call(run, name=sp.base.spec)
