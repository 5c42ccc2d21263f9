"""``optimize="measure"``: compile a few candidate plans and keep the fastest.

Candidates come from different optimizers (``auto``, ``greedy``,
``auto-hq``, and ``dp`` for up to 12 operands); those more than
``_WITHIN`` times the fewest FLOPs are dropped and at most ``_TOP`` go on.
Each survivor is compiled with XLA and timed on this machine (best of a few
runs on arrays of ones). When the cheapest candidate needs more than
``_MEASURE_FLOPS`` FLOPs, running it is too expensive, so candidates are
ranked by XLA's own ``cost_analysis()`` instead (a roofline estimate from the
FLOPs and bytes XLA reports). The choice is a plan like any other: cached in
memory and, when enabled, on disk, so the measurement happens once.

>>> import contract
>>> p = contract.plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4), optimize="measure")
>>> p.optimize.startswith("measure:")
True
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Sequence

from .plan import Plan, make_plan
from .spec import Bound

__all__ = ["choose", "run_time", "candidates"]

_TOP = 3
_WITHIN = 8.0
_MEASURE_FLOPS = 2e10
# Nominal machine balance for the cost_analysis roofline (FLOP/s, bytes/s).
_PEAK_FLOPS, _PEAK_BYTES = 1e12, 1e11


def candidates(bound: Bound, dtypes: Sequence[str], result_dtype: str,
               memory_limit: int | None) -> list[Plan]:
    """Distinct plans from several optimizers, fewest FLOPs first."""
    names = ["auto", "greedy", "auto-hq"] + (["dp"] if len(bound.inputs) <= 12 else [])
    plans: dict[Any, Plan] = {}
    for name in names:
        p = make_plan(bound, dtypes, result_dtype, name, memory_limit)
        plans.setdefault(p.path, p)
    ranked = sorted(plans.values(), key=lambda p: p.flops)
    return [p for p in ranked if p.flops <= ranked[0].flops * _WITHIN][:_TOP]


def _operands(plan: Plan) -> list[Any]:
    """Arrays of ones with the plan's original (unsqueezed) shapes and dtypes."""
    import jax.numpy as jnp

    out = []
    for shape, drop, dtype in zip(plan.shapes, plan.squeeze, plan.dtypes):
        full = list(shape)
        for axis in sorted(drop):
            full.insert(axis, 1)
        out.append(jnp.ones(full, dtype))
    return out


def _compiled(plan: Plan) -> Callable[..., Any]:
    import jax

    from .backend.jax import program

    return jax.jit(program(plan))


def run_time(plan: Plan, repeat: int = 5) -> float:
    """Best wall time in seconds of the compiled ``plan`` (after one warm-up run)."""
    import jax

    fn, args = _compiled(plan), _operands(plan)
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def _estimate(plan: Plan) -> float:
    """Roofline seconds from XLA's cost analysis of the compiled plan."""
    import jax

    args = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in _operands(plan)]
    cost = _compiled(plan).lower(*args).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax returns one dict per device
        cost = cost[0] if cost else {}
    return max(float(cost.get("flops", plan.flops)) / _PEAK_FLOPS,
               float(cost.get("bytes accessed", 0.0)) / _PEAK_BYTES)


def choose(bound: Bound, dtypes: Sequence[str], result_dtype: str,
           memory_limit: int | None) -> Plan:
    """The fastest candidate plan, named ``measure:<optimizer>``."""
    start = time.perf_counter()
    plans = candidates(bound, dtypes, result_dtype, memory_limit)
    if len(plans) == 1:
        best = plans[0]
    else:
        score = run_time if plans[0].flops <= _MEASURE_FLOPS else _estimate
        best = min(plans, key=score)
    return replace(best, optimize=f"measure:{best.optimize}",
                   planning_seconds=time.perf_counter() - start)
