"""The planner: spec + shapes + dtypes -> a frozen plan. Pure Python, no JAX.

Stages, one module each: :mod:`.model` (the plan data), :mod:`.costs` (the
cost convention), :mod:`.optimizers` and :mod:`.search` (the path),
:mod:`.build` (one plan), :mod:`.make` (plans cached, fitted or measured), :mod:`.slicing` (memory budgets),
:mod:`.sharding` (sharded labels and meshes), :mod:`.cache` (every cache), :mod:`.report` and :mod:`.picture`
(how a plan is shown).

>>> from contract.spec import parse
>>> make_plan(parse("ij,jk->ik").bind([(2, 3), (3, 4)]), ("float32",) * 2, "float32").flops
48
"""

from .build import build
from .cache import cache_info, clear_caches, set_cache_dir
from .costs import compute_dtype, itemsize, path_cost
from .model import Plan, PlanView, Prep, SlicedPlan, Step, load
from .optimizers import OPTIMIZERS, auto_strategy
from .make import candidates, check_saved, in_semiring, make_plan
from .slicing import check_limit, fit, resolve_limit, slice_plan
from .sharding import Layout, shard, spread

__all__ = [
    "OPTIMIZERS", "Layout", "Plan", "PlanView", "Prep", "SlicedPlan", "Step", "auto_strategy", "build",
    "candidates",
    "cache_info", "check_limit", "check_saved", "clear_caches", "compute_dtype", "fit", "itemsize", "load",
    "in_semiring", "make_plan", "path_cost", "resolve_limit", "set_cache_dir", "shard", "slice_plan",
    "spread",
]
