"""One contraction cluster of :func:`contract.jit`: its spec, plan, decision and evaluation.

A finished :class:`~contract.fusion.net.Net` becomes a :class:`Cluster`. The
cluster is *rewritten* (its equations replaced by one planned einsum) only
when that can help: it has at least two operands, a summed label, and two
arithmetic equations, and the planned order saves at least
:data:`MIN_SAVING` of the written order's FLOPs — or, saving less or
nothing, the written code multiplied then summed (``(a * b).sum(0)``), which
XLA runs as a broadcast-reduce and never as a ``dot_general``, unless the
plan saves nothing and would store an elementwise product
(``(a * b * c).sum(0)``) that XLA fuses away. Everything else is kept as
written, so code with nothing to plan compiles to the program ``jax.jit``
would build. A small saving on ``dot_general``s is not worth a new program:
the planned einsum may order operands and axes differently from the written
``dot_general`` (``x @ w.T`` where the code had ``w @ x`` and a transpose),
and XLA's layout choices then cost more than the FLOPs saved.

Precision follows the written code: the highest ``precision`` among the
cluster's ``dot_general``s (``None`` counts as ``DEFAULT``); a cluster with no
``dot_general`` (only multiplies and sums, which XLA computes exactly) runs
at ``HIGHEST``. ``contract.jit(f, precision=...)`` overrides both.

>>> import numpy as np
>>> from contract.fusion.net import Labels, leaf, RULES
>>> L = Labels()
>>> x, y = leaf(0, (2, 3), np.float32, L), leaf(1, (3, 4), np.float32, L)
>>> n = RULES["dot_general"]({"dimension_numbers": (((1,), (0,)), ((), ()))}, [x, y], L)
>>> make_cluster(n, ("dot_general",), "", L, PlanOptions(), None).spec
'ab,bc->ac'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import opt_einsum
from jax import lax

from ..backend import measure
from ..backend.program import program
from ..errors import ContractError
from ..planner import Plan, fit, make_plan, spread
from ..spec import parse
from .net import Labels, Net

__all__ = ["Cluster", "MIN_SAVING", "PlanOptions", "make_cluster", "run_cluster"]

# The share of a cluster's written FLOPs a plan must save to replace it. Rewrites
# that saved 0.04-0.15% of an MLP's last matmul ran it 1.15-1.4x slower (XLA
# picked a worse layout for the reordered operands).
MIN_SAVING = 0.05


@dataclass(frozen=True)
class PlanOptions:
    """How every rewritten cluster is planned and run: the path optimizer,
    a memory budget (bytes or ``"max_input"``: the cluster is sliced to fit)
    and a ``jax.sharding.Mesh`` to spread its slices over."""

    optimize: Any = "auto"
    memory_limit: Any = None
    mesh: Any = None


@dataclass(frozen=True)
class Cluster:
    """A contraction cluster found in a jaxpr and what was done with it.

    ``primitives`` are the equations it covers, in program order; ``where``
    names the enclosing body (``""`` at top level, ``"scan body"``...);
    ``plan`` is None when the cluster was not worth planning.
    """

    net: Net
    primitives: tuple[str, ...]
    where: str
    spec: str
    shape: tuple[int, ...]
    kept: tuple[int, ...]
    plan: Plan | None
    precision: Any
    rewritten: bool
    reason: str
    mesh: Any = None

    def __repr__(self) -> str:
        state = "rewritten" if self.rewritten else "kept"
        return f"Cluster({self.spec!r}, {state}, where={self.where!r})"

    @property
    def planned_flops(self) -> int | None:
        """FLOPs of the planned order (the scale multiply included), if planned."""
        if self.plan is None:
            return None
        return self.plan.flops + (math.prod(self.shape) if self.net.scale != 1 else 0)


def _precision(net: Net, override: Any) -> Any:
    if override is not None:
        return override
    if not net.precisions:
        return lax.Precision.HIGHEST
    best = lax.Precision.DEFAULT
    for p in net.precisions:
        for q in p if isinstance(p, tuple) else (p,):
            if q is not None and q.value > best.value:
                best = q
    return best


def _spec(net: Net, kept: tuple[int, ...]) -> str:
    symbols: dict[int, str] = {}
    for labels in [f.labels for f in net.factors] + [kept]:
        for l in labels:
            symbols.setdefault(l, opt_einsum.get_symbol(len(symbols)))
    terms = ["".join(symbols[l] for l in f.labels) for f in net.factors]
    return ",".join(terms) + "->" + "".join(symbols[l] for l in kept)


def make_cluster(net: Net, primitives: tuple[str, ...], where: str, labels: Labels,
                 options: PlanOptions, precision: Any) -> Cluster:
    """Plan ``net`` and decide whether rewriting it pays (see the module docstring)."""
    carried = net.carried()
    kept = tuple(l for l in net.out if l is not None and l in carried)
    shape = tuple(1 if l is None else labels.size[l] for l in net.out)
    spec = _spec(net, kept)
    prec = _precision(net, precision)

    def done(plan: Plan | None, rewritten: bool, reason: str) -> Cluster:
        if rewritten and options.mesh is not None:
            # Shard it over the mesh, each device's part sliced to the budget.
            plan = spread(plan, options.mesh, options.memory_limit)
        elif rewritten and options.memory_limit is not None:
            plan = fit(plan, options.memory_limit)  # slice it
        return Cluster(net, primitives, where, spec, shape, kept, plan, prec, rewritten, reason,
                       options.mesh)

    if net.semiring in ("max-plus", "min-plus", "log"):
        return _in_semiring(net, spec, options, done)
    if not carried - set(kept):
        return done(None, False, "nothing is summed: products are left to XLA's fusion")
    if net.arith < 2:
        return done(None, False, "a single contraction: kept as written")
    dtypes = tuple(jax.dtypes.canonicalize_dtype(f.dtype).name for f in net.factors)
    bound = parse(spec).bind([f.shape for f in net.factors])
    result = jax.dtypes.canonicalize_dtype(net.dtype).name
    try:
        plan = make_plan(bound, dtypes, result, options.optimize, chooser=measure.chooser(prec))
    except ContractError as e:
        return done(None, False, f"not planned: {e}")
    planned = plan.flops + (math.prod(shape) if net.scale != 1 else 0)
    if planned < net.flops * (1 - MIN_SAVING):
        return done(plan, True, "the planned order needs fewer FLOPs")
    if planned <= net.flops and net.mulsum:
        if planned == net.flops and any(s.kind in ("Hadamard", "outer") for s in plan.steps):
            # XLA fuses the written multiplies into the sum; the plan would store them.
            return done(plan, False, "same FLOPs, and the plan would store a product "
                                     "XLA fuses into the sum")
        return done(plan, True, "a product summed by reduce_sum becomes a dot_general")
    if planned < net.flops:
        saved = 1 - planned / net.flops
        return done(plan, False, f"the planned order saves only {saved:.2%} of the FLOPs "
                                 f"(under {MIN_SAVING:.0%}): kept as written")
    return done(plan, False, "the written order is already as cheap")


def _in_semiring(net: Net, spec: str, options: PlanOptions,
                 done: Callable[[Plan | None, bool, str], Cluster]) -> Cluster:
    """A max-plus, min-plus or log cluster (``jnp.max(a[:, :, None] + b[None], 1)``,
    ``jax.nn.logsumexp(a[:, :, None] + b[None], 1)``): XLA runs the written
    form as a broadcast-reduce over every term (log: an exponential each);
    the planned contraction orders the operands and runs each step on the
    semiring's kernel or rescaled GEMM (:mod:`contract.backend.semiring`)."""
    if net.dtype.kind == "c":
        return done(None, False, f"complex values have no {net.semiring} order: kept as written")
    dtypes = tuple(jax.dtypes.canonicalize_dtype(f.dtype).name for f in net.factors)
    bound = parse(spec).bind([f.shape for f in net.factors])
    result = jax.dtypes.canonicalize_dtype(net.dtype).name
    try:
        plan = make_plan(bound, dtypes, result, options.optimize, semiring=net.semiring)
    except ContractError as e:
        return done(None, False, f"not planned: {e}")
    what = {"max-plus": "a max", "min-plus": "a min", "log": "a logsumexp"}[net.semiring]
    return done(plan, True, f"{what} of sums becomes one planned {net.semiring} contraction")


def run_cluster(cluster: Cluster, read: Callable[[Any], Any]) -> jax.Array:
    """Evaluate a rewritten cluster; ``read`` maps a factor source to its array."""
    arrays = []
    for f in cluster.net.factors:
        x = read(f.source)
        if tuple(x.shape) != f.shape:
            x = lax.reshape(x, f.shape)
        arrays.append(x)
    assert cluster.plan is not None
    # Named after the spec, so profiles show which cluster a kernel came from.
    result = program(cluster.plan, cluster.precision, cluster.mesh)(*arrays)
    if result.shape != cluster.shape:
        dims = tuple(k for k, l in enumerate(cluster.net.out) if l in cluster.kept)
        result = lax.broadcast_in_dim(result, cluster.shape, dims)
    if cluster.net.scale != 1:
        result = result * jnp.asarray(cluster.net.scale, result.dtype)
    return result
