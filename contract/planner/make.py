"""Plans as the entry points ask for them: cached, fitted to a budget, or measured.

:func:`make_plan` caches plans in the ``"plans"`` LRU (and the opt-in disk
cache) keyed on the canonical (first-appearance relabelled) spec, shapes,
dtypes and options, so ``"ij,jk->ik"`` and ``"ab,bc->ac"`` share one entry.
A ``memory_limit`` slices the plan (:mod:`.slicing`); ``optimize="measure"``
hands :func:`candidates` to a chooser that the backend supplies; a saved plan
is checked against the call (:func:`check_saved`) and reused.

>>> from contract.spec import parse
>>> p = make_plan(parse("ij,jk,kl->il").bind([(8, 16), (16, 32), (32, 4)]),
...               ("float32",) * 3, "float32")
>>> p.path, [s.kind for s in p.steps]
(((1, 2), (0, 1)), ['GEMM', 'GEMM'])
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

from .. import caching
from ..errors import ContractError
from ..spec import Bound
from . import cache
from .build import build
from .model import Plan, SlicedPlan
from .search import describe, freeze_option, is_optimizer
from .slicing import check_limit, fit

__all__ = ["Chooser", "candidates", "check_saved", "in_semiring", "make_plan"]

# Picks one of several candidate plans (backend.measure times them).
Chooser = Callable[[Sequence["Plan | SlicedPlan"]], "Plan | SlicedPlan"]

_PLANS: "caching.LRU[Plan | SlicedPlan]" = caching.LRU("plans")


def make_plan(bound: Bound, dtypes: Sequence[str], result_dtype: str, optimize: Any = "auto",
              memory_limit: Any = None, chooser: Chooser | None = None,
              semiring: str = "sum-product") -> Plan | SlicedPlan:
    """Plan a bound spec (cached; see the module docstring).

    A saved plan as ``optimize`` is reused as is once checked against the
    spec, shapes and dtypes (it runs again without re-planning). With
    ``memory_limit`` (bytes or ``"max_input"``) the best unbudgeted plan is
    sliced to fit it. ``optimize="measure"`` needs ``chooser``, which picks
    one of :func:`candidates` (the backend times them: the planner cannot).
    ``semiring`` names the semiring the steps run in (:mod:`contract.semiring`):
    the same order serves every semiring (its work is the sum-product's
    FLOPs in other operations), so it is set on the plan found, and keys
    the caches.
    """
    if isinstance(optimize, (Plan, SlicedPlan)):
        return check_saved(optimize, bound, tuple(dtypes), result_dtype, semiring)
    opt = freeze_option(optimize)
    memory_limit = check_limit(memory_limit)
    order, key = _canonical(bound)
    full_key = (key, tuple(dtypes), result_dtype, opt, memory_limit, semiring)
    # On disk an optimizer object is keyed by its description: contract's own
    # have a stable one (their settings); any other has no identity that
    # holds across processes, so its plans stay in memory (search.describe).
    disk_key = full_key
    disk = True
    if is_optimizer(opt):
        name, disk = describe(opt)
        disk_key = (key, tuple(dtypes), result_dtype, ("optimizer", name), memory_limit,
                    semiring)
    plan = _PLANS.get(full_key)
    if plan is None:
        plan = cache.load(disk_key) if disk else None
        if plan is None:
            sizes = {order[l]: s for l, s in bound.sizes.items() if l in order}
            canonical = Bound(bound.spec, key[0], key[1], sizes, bound.squeeze)
            if opt == "measure":
                plan = _measured(canonical, tuple(dtypes), result_dtype, memory_limit, chooser)
            else:
                plan = _fitted(build(canonical, tuple(dtypes), result_dtype, opt), memory_limit)
            if semiring != "sum-product":
                plan = in_semiring(plan, semiring)
            if disk:
                cache.store(disk_key, plan)
        _PLANS.put(full_key, plan)
    return plan.relabel({v: k for k, v in order.items()}, str(bound.spec))


def in_semiring(plan: Plan | SlicedPlan, semiring: str) -> Plan | SlicedPlan:
    """``plan`` with its steps in ``semiring`` (the same order: see :func:`make_plan`).

    >>> from contract.spec import parse
    >>> p = make_plan(parse("ij,jk->ik").bind([(2, 3), (3, 4)]), ("float32",) * 2, "float32")
    >>> in_semiring(p, "log").semiring, p.semiring
    ('log', 'sum-product')
    """
    if isinstance(plan, SlicedPlan):
        return replace(plan, base=replace(plan.base, semiring=semiring),
                       slice=replace(plan.slice, semiring=semiring))
    return replace(plan, semiring=semiring)


def _fitted(plan: Plan, memory_limit: Any) -> Plan | SlicedPlan:
    return plan if memory_limit is None else fit(plan, memory_limit)


# How many candidates "measure" compiles, and how far above the fewest FLOPs
# one may be and still be worth timing.
_TOP, _WITHIN = 3, 8.0


def candidates(bound: Bound, dtypes: tuple[str, ...], result_dtype: str,
               memory_limit: Any = None) -> list[Plan | SlicedPlan]:
    """Distinct plans from several optimizers, fewest FLOPs first (uncached).

    >>> from contract.spec import parse
    >>> [p.optimize for p in candidates(parse("ij,jk->ik").bind([(2, 3), (3, 4)]),
    ...                                 ("float32",) * 2, "float32")]
    ['auto']
    """
    names = ["auto", "greedy", "auto-hq"] + (["dp"] if len(bound.inputs) <= 12 else [])
    plans: dict[Any, Plan | SlicedPlan] = {}
    for name in names:
        p = _fitted(build(bound, dtypes, result_dtype, name), memory_limit)
        plans.setdefault((p.path, p.sliced), p)
    ranked = sorted(plans.values(), key=lambda p: p.flops)
    return [p for p in ranked if p.flops <= ranked[0].flops * _WITHIN][:_TOP]


def _measured(bound: Bound, dtypes: tuple[str, ...], result_dtype: str, memory_limit: Any,
              chooser: Chooser | None) -> Plan | SlicedPlan:
    if chooser is None:
        raise ContractError("optimize='measure' times compiled candidates: call it through "
                            "contract.plan/einsum (the planner alone cannot run them)")
    best = chooser(candidates(bound, dtypes, result_dtype, memory_limit))
    if isinstance(best, SlicedPlan):
        return replace(best, base=replace(best.base, optimize=f"measure:{best.base.optimize}"))
    return replace(best, optimize=f"measure:{best.optimize}")


def _canonical(bound: Bound) -> tuple[dict[str, str], Any]:
    """Relabel by first appearance so renamed but identical specs share a key."""
    order: dict[str, str] = {}
    for term in bound.inputs + (bound.output,):
        for label in term:
            order.setdefault(label, f"#{len(order)}")
    key = (
        tuple(tuple(order[l] for l in t) for t in bound.inputs),
        tuple(order[l] for l in bound.output),
        tuple(sorted((order[l], s) for l, s in bound.sizes.items() if l in order)),
        bound.squeeze,
    )
    return order, key


def check_saved(plan: Plan | SlicedPlan, bound: Bound, dtypes: Sequence[str], result_dtype: str,
                semiring: str = "sum-product") -> Plan | SlicedPlan:
    """Return ``plan`` if it was made for this spec, shapes and dtypes, else raise.

    Labels may be renamed consistently (a plan for ``ij,jk->ik`` runs
    ``ab,bc->ac``); the plan is relabelled to match.
    """
    inputs, output, squeeze = bound.inputs, bound.output, bound.squeeze
    shapes = [tuple(bound.sizes[l] for l in t) for t in inputs]
    if len(inputs) != len(plan.inputs):
        raise ContractError(
            f"saved plan '{plan.spec}' takes {len(plan.inputs)} operand(s), got {len(inputs)}"
        )
    names: dict[str, str] = {}
    for n, (mine, theirs) in enumerate(zip(plan.inputs + (plan.output,),
                                           tuple(inputs) + (tuple(output),))):
        what = "the output" if n == len(inputs) else f"operand {n}"
        if len(mine) != len(theirs) or any(names.setdefault(a, b) != b
                                           for a, b in zip(mine, theirs)):
            raise ContractError(
                f"saved plan '{plan.spec}' does not match the spec: {what} has labels "
                f"{''.join(theirs) or '(scalar)'}, the plan expects {''.join(mine) or '(scalar)'}"
            )
    if len(set(names.values())) != len(names):
        raise ContractError(f"saved plan '{plan.spec}' does not match the spec's repeated labels")
    for n, (mine, theirs) in enumerate(zip(plan.shapes, shapes)):
        if tuple(mine) != tuple(theirs):
            raise ContractError(
                f"saved plan '{plan.spec}' was made for operand {n} of shape {tuple(mine)}, "
                f"got {tuple(theirs)}"
            )
    if tuple(squeeze) != plan.squeeze:
        raise ContractError(f"saved plan '{plan.spec}' was made for other broadcast (size-1) axes")
    if tuple(dtypes) != plan.dtypes or result_dtype != plan.result_dtype:
        raise ContractError(
            f"saved plan '{plan.spec}' was made for dtypes {'/'.join(plan.dtypes)} -> "
            f"{plan.result_dtype}, got {'/'.join(dtypes)} -> {result_dtype}"
        )
    if plan.semiring != semiring:
        raise ContractError(f"saved plan '{plan.spec}' was made for semiring={plan.semiring!r}, "
                            f"got semiring={semiring!r}")
    if all(a == b for a, b in names.items()) and plan.spec == str(bound.spec):
        return plan
    return plan.relabel(names, str(bound.spec))
