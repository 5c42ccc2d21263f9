"""The traceable function for any plan: plain, sliced, or spread over a mesh.

>>> import numpy as np, contract
>>> p = contract.plan("ij,jk->ik", (8, 6), (6, 4), memory_limit=200)
>>> program(p)(np.ones((8, 6), np.float32), np.ones((6, 4), np.float32)).shape
(8, 4)
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from ..planner import Plan, SlicedPlan
from .jax import execute as execute_plan
from .sharded import sharded
from .sliced import run_slices

__all__ = ["execute", "program"]


def execute(plan: Plan | SlicedPlan, precision: Any, *operands: Any, mesh: Any = None) -> jax.Array:
    """Run any plan on ``operands`` (traceable)."""
    if mesh is not None:
        return sharded(plan, precision, mesh)(*operands)
    if isinstance(plan, SlicedPlan):
        return run_slices(plan, precision, operands)
    return execute_plan(plan, precision, *operands)


def program(plan: Plan | SlicedPlan, precision: Any = None,
            mesh: Any = None) -> Callable[..., jax.Array]:
    """The traceable function for ``plan``, named after its spec for profiles."""

    def run(*operands: Any) -> jax.Array:
        return execute(plan, precision, *operands, mesh=mesh)

    return jax.named_call(run, name=plan.spec)
