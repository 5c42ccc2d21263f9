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

from dataclasses import replace
from typing import Any, Callable

import jax

from ..errors import ContractError
from ..planner import Plan, SlicedPlan, shard
from .exponent import check, finish
from .jax import accumulation_dtype, execute as execute_plan
from .layout import Found, read
from .semiring_plan import execute as semiring_execute
from .sharded import sharded
from .sliced import cast_result, run_slices

__all__ = ["execute", "program", "sharded_plan"]


def sharded_plan(plan: Plan | SlicedPlan, operands: Any, mesh: Any = None,
                 layout: Found | None = None) -> tuple[Plan | SlicedPlan, Any]:
    """``plan`` as it runs on these operands, and the mesh it runs on (or None)."""
    found = layout if layout is not None else read(operands, mesh)
    if found is None:
        return plan, None
    p = shard(plan, found[0], mesh is not None)
    return p, (found[1] if isinstance(p, SlicedPlan) and p.mesh else None)


def _accumulating(sp: SlicedPlan) -> SlicedPlan:
    """``sp`` with its result in the dtype its base accumulates in.

    Slices and devices add their partial sums in the slice plan's result
    dtype, the base's compute dtype. Where the result is narrower than the
    float operands (an integer ``preferred_element_type`` on float operands,
    :func:`.jax.accumulation_dtype`) that would convert every partial sum;
    this plan adds them in the operands' type and the caller converts once.
    """
    acc = accumulation_dtype(sp.base).name
    return replace(sp, base=replace(sp.base, result_dtype=acc, compute_dtype=acc),
                   slice=replace(sp.slice, result_dtype=acc, compute_dtype=acc))


def _in_semiring(plan: Plan | SlicedPlan, precision: Any, operands: Any, mesh: Any,
                 layout: Found | None, strip_exponent: bool) -> jax.Array:
    """Run a plan of another semiring than sum-product (:mod:`.semiring_plan`):
    plain or sliced; not sharded, nor with its exponent stripped."""
    if strip_exponent:
        raise ContractError(f"strip_exponent is for sum-product contractions, not "
                            f"semiring={plan.semiring!r}")
    if mesh is not None or (layout if layout is not None else read(operands, None)) is not None:
        raise ContractError(f"semiring={plan.semiring!r} does not run sharded yet: gather the "
                            "operands on one device, or leave out mesh=")
    if isinstance(plan, SlicedPlan):
        return run_slices(plan, precision, operands)
    return semiring_execute(plan, precision, *operands)


def execute(plan: Plan | SlicedPlan, precision: Any, *operands: Any, mesh: Any = None,
            layout: Found | None = None,
            strip_exponent: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Run any plan on ``operands`` (traceable); with ``strip_exponent`` the
    result is ``(mantissa, exponent)`` (:mod:`.exponent`)."""
    if plan.semiring != "sum-product":
        return _in_semiring(plan, precision, operands, mesh, layout, strip_exponent)
    plan, where = sharded_plan(plan, operands, mesh, layout)
    if strip_exponent:
        check(plan, where is not None)
    if not isinstance(plan, SlicedPlan):
        if strip_exponent:
            return finish(*execute_plan(plan, precision, *operands, strip_exponent=True),
                          plan.result_dtype)
        return execute_plan(plan, precision, *operands)
    run = plan
    if accumulation_dtype(plan.base).name != plan.compute_dtype:
        run = _accumulating(plan)
    if strip_exponent:
        return finish(*run_slices(run, precision, operands, strip_exponent=True),
                      plan.result_dtype)
    if where is not None:
        out = sharded(run, precision, where)(*operands)
    else:
        out = run_slices(run, precision, operands)
    return cast_result(out, plan.result_dtype)


def program(plan: Plan | SlicedPlan, precision: Any = None, mesh: Any = None,
            layout: Found | None = None,
            strip_exponent: bool = False) -> Callable[..., Any]:
    """The traceable function for ``plan``, named after its spec for profiles.

    ``layout`` (from :func:`.layout.read` on the concrete operands) stands in
    for what a trace cannot show: auto mesh axes. With ``strip_exponent`` it
    returns ``(mantissa, exponent)``.
    """

    def run(*operands: Any) -> Any:
        return execute(plan, precision, *operands, mesh=mesh, layout=layout,
                       strip_exponent=strip_exponent)

    return jax.named_call(run, name=plan.spec)
