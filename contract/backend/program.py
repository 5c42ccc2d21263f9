"""The traceable function for any plan: plain, sliced, or sharded over a mesh.

Which runner runs is decided when the operands are seen (at trace time): if
any is sharded over explicit mesh axes, or ``mesh=`` was given, or a
``layout`` read beforehand from concrete arrays says so, the plan is sharded
by the planner's rules (:mod:`contract.planner.sharding`) and run by
:mod:`.sharded`; otherwise it runs as it is, and XLA's propagation places
any auto-sharded operands as it would for ``jnp``.

>>> import numpy as np, contract
>>> p = contract.plan("ab,bc,cd->ad", *[(16, 16)] * 3, memory_limit=1_600)
>>> x = np.ones((16, 16), np.float32)
>>> p.n_slices, program(p)(x, x, x)[0, 0].item()
(32, 256.0)
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from ..planner import Plan, SlicedPlan, shard
from .jax import execute as execute_plan
from .layout import Found, read
from .sharded import sharded
from .sliced import run_slices

__all__ = ["execute", "program", "sharded_plan"]


def sharded_plan(plan: Plan | SlicedPlan, operands: Any, mesh: Any = None,
                 layout: Found | None = None) -> tuple[Plan | SlicedPlan, Any]:
    """``plan`` as it runs on these operands, and the mesh it runs on (or None)."""
    found = layout if layout is not None else read(operands, mesh)
    if found is None:
        return plan, None
    p = shard(plan, found[0], mesh is not None)
    return p, (found[1] if isinstance(p, SlicedPlan) and p.mesh else None)


def execute(plan: Plan | SlicedPlan, precision: Any, *operands: Any, mesh: Any = None,
            layout: Found | None = None) -> jax.Array:
    """Run any plan on ``operands`` (traceable)."""
    plan, where = sharded_plan(plan, operands, mesh, layout)
    if where is not None:
        return sharded(plan, precision, where)(*operands)  # type: ignore[arg-type]
    if isinstance(plan, SlicedPlan):
        return run_slices(plan, precision, operands)
    return execute_plan(plan, precision, *operands)


def program(plan: Plan | SlicedPlan, precision: Any = None, mesh: Any = None,
            layout: Found | None = None) -> Callable[..., jax.Array]:
    """The traceable function for ``plan``, named after its spec for profiles.

    ``layout`` (from :func:`.layout.read` on the concrete operands) stands in
    for what a trace cannot show: auto mesh axes.
    """

    def run(*operands: Any) -> jax.Array:
        return execute(plan, precision, *operands, mesh=mesh, layout=layout)

    return jax.named_call(run, name=plan.spec)
