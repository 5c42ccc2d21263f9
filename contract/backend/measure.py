"""``optimize="measure"``: compile a few candidate plans ahead of time and keep the fastest.

Candidates come from different optimizers (``auto``, ``greedy``,
``auto-hq``, and ``dp`` for up to 12 operands; see
:func:`contract.planner.candidates`). Each is compiled ahead of time
(``jax.jit(...).lower(ShapeDtypeStruct...).compile()``) and timed on real
arrays that are themselves made by a compiled program. Compiled executables
run outside any trace, so the timing is the same whether the call that asked
for the plan is eager, under ``jax.jit``, or under ``contract.jit``: no
tracer is ever "timed". When the cheapest candidate needs more than
``_MEASURE_FLOPS`` FLOPs, running it is too expensive, so candidates are
ranked by XLA's own ``cost_analysis()`` instead (a roofline estimate). The
choice is a plan like any other, cached in memory and, when enabled, on disk.

>>> import contract
>>> p = contract.plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4), optimize="measure")
>>> p.optimize.startswith("measure:")
True
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from ..planner import Plan, SlicedPlan
from .program import program

__all__ = ["chooser", "fastest", "run_time"]

_MEASURE_FLOPS = 2e10
# Nominal machine balance for the cost_analysis roofline (FLOP/s, bytes/s).
_PEAK_FLOPS, _PEAK_BYTES = 1e12, 1e11


def _structs(plan: Plan | SlicedPlan) -> list[jax.ShapeDtypeStruct]:
    """The plan's operands as shapes and dtypes (broadcast size-1 axes restored)."""
    out = []
    for shape, drop, dtype in zip(plan.shapes, plan.squeeze, plan.dtypes):
        full = list(shape)
        for axis in sorted(drop):
            full.insert(axis, 1)
        out.append(jax.ShapeDtypeStruct(tuple(full), jnp.dtype(dtype)))
    return out


def _ones(structs: Sequence[jax.ShapeDtypeStruct]) -> list[jax.Array]:
    """Concrete arrays of ones, made by a compiled program (so never traced)."""
    make = jax.jit(lambda: [jnp.ones(s.shape, s.dtype) for s in structs])
    return list(make.lower().compile()())


def _compiled(plan: Plan | SlicedPlan, precision: Any) -> Any:
    return jax.jit(program(plan, precision)).lower(*_structs(plan)).compile()


def run_time(plan: Plan | SlicedPlan, precision: Any = None, repeat: int = 5) -> float:
    """Best wall time in seconds of the compiled ``plan`` (after one warm-up run).

    >>> import contract
    >>> run_time(contract.plan("ij,jk->ik", (4, 4), (4, 4))) > 0
    True
    """
    fn, args = _compiled(plan, precision), _ones(_structs(plan))
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def _estimate(plan: Plan | SlicedPlan, precision: Any) -> float:
    """Roofline seconds from XLA's cost analysis of the compiled plan."""
    cost = _compiled(plan, precision).cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax returns one dict per device
        cost = cost[0] if cost else {}
    return max(float(cost.get("flops", plan.flops)) / _PEAK_FLOPS,
               float(cost.get("bytes accessed", 0.0)) / _PEAK_BYTES)


def chooser(precision: Any = None) -> Callable[[Sequence[Plan | SlicedPlan]], Plan | SlicedPlan]:
    """The ``chooser`` that ``make_plan(optimize="measure")`` needs: :func:`fastest`."""
    return lambda plans: fastest(plans, precision)


def fastest(plans: Sequence[Plan | SlicedPlan], precision: Any = None) -> Plan | SlicedPlan:
    """The candidate that runs fastest here (the only one, if there is one)."""
    if len(plans) == 1:
        return plans[0]
    score: Callable[[Plan | SlicedPlan], float] = (
        (lambda p: run_time(p, precision)) if min(p.flops for p in plans) <= _MEASURE_FLOPS
        else (lambda p: _estimate(p, precision)))
    return min(plans, key=score)
