"""What the public API calls for budgets and meshes: plan fitting and the program to run.

:func:`fit` turns a plan into a sliced one when it exceeds ``memory_limit``
and spreads it over a mesh's devices; :func:`program` returns the traceable
function for any of these plans (plain, sliced, or sharded).

>>> import numpy as np, contract
>>> p = fit(contract.plan("ij,jk->ik", (8, 6), (6, 4)), 200)
>>> program(p)(np.ones((8, 6), np.float32), np.ones((6, 4), np.float32)).shape
(8, 4)
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from . import slicing
from .backend.jax import execute as _execute_plan
from .plan import Plan
from .shard import check_mesh, sharded, spread
from .slicing import SlicedPlan

__all__ = ["fit", "program", "execute", "SlicedPlan"]


def fit(plan: Plan, memory_limit: Any = None, mesh: Any = None) -> Plan | SlicedPlan:
    """Slice ``plan`` to fit ``memory_limit`` (bytes or ``"max_input"``); spread it on ``mesh``."""
    if memory_limit is not None:
        plan = slicing.fit(plan, memory_limit)
    if mesh is not None:
        plan = spread(plan, check_mesh(mesh).size)
    return plan


def execute(plan: Plan | SlicedPlan, precision: Any, *operands: Any, mesh: Any = None) -> jax.Array:
    """Run any plan on ``operands`` (traceable)."""
    if mesh is not None:
        return sharded(plan, precision, mesh)(*operands)
    if isinstance(plan, SlicedPlan):
        return slicing.run_slices(plan, precision, operands)
    return _execute_plan(plan, precision, *operands)


def program(plan: Plan | SlicedPlan, precision: Any = None,
            mesh: Any = None) -> Callable[..., jax.Array]:
    """The traceable function for ``plan``, named after its spec for profiles."""

    def run(*operands: Any) -> jax.Array:
        return execute(plan, precision, *operands, mesh=mesh)

    return jax.named_call(run, name=plan.spec)
