"""A jaxpr as a flat program for :func:`contract.jit`: find clusters, rewrite, evaluate.

:func:`build` flattens a closed jaxpr (inlining nested ``jit`` calls, which
is how ``jnp.einsum`` and ``jax.jit``-wrapped helpers arrive), grows a
:class:`~contract.fusion.net.Net` equation by equation, and replaces each
cluster worth planning by one :class:`Fused` step. A value read by two
equations, or by a non-contraction one, ends its net (fusing through it
would compute it twice). ``scan``/``while``/``cond`` bodies are rewritten
recursively and re-staged with ``jax.make_jaxpr``; everything else is
bound as written. :func:`evaluate` runs the program on (traced) arrays.

>>> import jax, jax.numpy as jnp
>>> f = lambda x, y, z: (x @ y) @ z
>>> closed = jax.make_jaxpr(f)(jnp.ones((64, 8)), jnp.ones((8, 64)), jnp.ones((64, 2)))
>>> prog = build(closed, PlanOptions(), None)
>>> [c.spec for c in prog.clusters], [type(s).__name__ for s in prog.body]
(['ab,bc,cd->ad'], ['Fused'])
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import ClosedJaxpr, DropVar, Literal

from .cluster import Cluster, PlanOptions, make_cluster, run_cluster
from .net import ARITHMETIC, RULES, SCALAR, Labels, Net, accepts, eqn_flops, leaf
from .patterns import LogSumExp, find_logsumexps

__all__ = ["Ref", "Op", "Fused", "Program", "build", "evaluate"]

# Call primitives whose body is inlined (a staging boundary, not semantics).
_INLINE = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr"}
# Control flow whose bodies are rewritten recursively.
_BODIES = {"scan": ("jaxpr",), "while": ("cond_jaxpr", "body_jaxpr"), "cond": ("branches",)}


@dataclass(frozen=True)
class Ref:
    """One value of the flat program."""

    n: int
    aval: Any = field(compare=False)


@dataclass
class Op:
    """An equation bound as written (``params`` may carry rewritten bodies)."""

    eqn: Any
    ins: tuple[Any, ...]
    outs: tuple[Ref | None, ...]
    params: dict[str, Any]


@dataclass
class Fused:
    """A rewritten cluster computing ``out``."""

    cluster: Cluster
    out: Ref


@dataclass
class Program:
    """A flattened jaxpr with its clusters (those in bodies included)."""

    inputs: list[Ref]
    consts: dict[Ref, Any]
    body: list[Any]
    outputs: list[Any]
    clusters: list[Cluster] = field(default_factory=list)

    @property
    def rewritten(self) -> bool:
        """Whether any cluster (here or in a body) was rewritten."""
        return any(c.rewritten for c in self.clusters)


def _flatten(closed: ClosedJaxpr) -> Program:
    counter = itertools.count()
    body: list[Any] = []
    consts: dict[Ref, Any] = {}

    def bind_consts(jaxpr: Any, values: Sequence[Any], env: dict) -> None:
        for v, c in zip(jaxpr.constvars, values):
            env[v] = r = Ref(next(counter), v.aval)
            consts[r] = c

    def walk(jaxpr: Any, env: dict) -> list[Any]:
        def read(a: Any) -> Any:
            return a if isinstance(a, Literal) else env[a]

        for eqn in jaxpr.eqns:
            ins = tuple(map(read, eqn.invars))
            inner = eqn.params.get(_INLINE.get(eqn.primitive.name, ""))
            if isinstance(inner, ClosedJaxpr):
                sub: dict = {}
                bind_consts(inner.jaxpr, inner.consts, sub)
                sub.update(zip(inner.jaxpr.invars, ins))
                outs: Sequence[Any] = walk(inner.jaxpr, sub)
            else:
                outs = tuple(None if isinstance(v, DropVar) else Ref(next(counter), v.aval)
                             for v in eqn.outvars)
                body.append(Op(eqn, ins, outs, dict(eqn.params)))
            for v, o in zip(eqn.outvars, outs):
                if not isinstance(v, DropVar):
                    env[v] = o
        return [read(a) for a in jaxpr.outvars]

    env: dict = {}
    bind_consts(closed.jaxpr, closed.consts, env)
    inputs = [Ref(next(counter), v.aval) for v in closed.jaxpr.invars]
    env.update(zip(closed.jaxpr.invars, inputs))
    outputs = walk(closed.jaxpr, env)
    return Program(inputs, consts, body, outputs)


def _inexact(aval: Any) -> bool:
    return (hasattr(aval, "shape") and hasattr(aval, "dtype")
            and all(isinstance(d, int) for d in aval.shape)
            and jnp.issubdtype(aval.dtype, jnp.inexact))


def _cast_ok(old: Any, new: Any, operand: Net) -> bool:
    """Whether a cast can live inside a network (which computes in the wider dtype).

    Widening is exact. Narrowing a computed value only rounds earlier than
    the network will, but narrowing an input must stay: later arithmetic
    sees the rounded values.
    """
    if jnp.issubdtype(old, jnp.complexfloating) != jnp.issubdtype(new, jnp.complexfloating):
        return False
    a, b = jnp.finfo(old), jnp.finfo(new)
    exact = b.nmant >= a.nmant and b.maxexp >= a.maxexp and b.minexp <= a.minexp
    return exact or operand.arith > 0


def _absorb(op: Op, k: int, nets: dict[Ref, Net], uses: Counter,
            labels: Labels) -> tuple[Net, list[Ref]] | None:
    """The net of ``op``'s result and the operand nets it took over, or None."""
    name = _name(op)
    rule = RULES.get(name)
    if rule is None or len(op.outs) != 1 or op.outs[0] is None:
        return None
    out = op.outs[0].aval
    if not _inexact(out) or any(op.params.get(p) is not None for p in ("sharding", "out_sharding")):
        return None
    operands: list[Any] = []
    taken: list[Ref] = []
    for a in op.ins:
        if not _inexact(a.aval):
            return None
        if isinstance(a, Literal) and a.aval.shape == () and name in ("mul", "div"):
            operands.append((SCALAR, np.asarray(a.val).item()))
        elif isinstance(a, Ref) and a in nets and uses[a] == 1 and accepts(name, nets[a]):
            operands.append(nets[a])
            taken.append(a)
        else:
            operands.append(leaf(a, a.aval.shape, a.aval.dtype, labels))
    if name == "convert_element_type" and not _cast_ok(op.ins[0].aval.dtype, out.dtype,
                                                       operands[0]):
        return None
    net = rule(op.params, operands, labels)
    if net is None:
        return None
    cost = eqn_flops(name, op.params, [a.aval.shape for a in op.ins], out.shape)
    largest = max(net.largest, math.prod(out.shape)) if name in ARITHMETIC else net.largest
    return replace(net, dtype=np.dtype(out.dtype), steps=net.steps + (k,),
                   flops=net.flops + cost, largest=largest), taken


# A cluster without one of these is a view or an elementwise product/sum.
_REDUCING = {"dot_general", "reduce_sum", "reduce_max", "reduce_min", "logsumexp"}


def _name(step: Op | LogSumExp) -> str:
    return step.name if isinstance(step, LogSumExp) else step.eqn.primitive.name


def _find_clusters(prog: Program, options: PlanOptions, precision: Any, where: str) -> None:
    uses = Counter(a for op in prog.body for a in op.ins if isinstance(a, Ref))
    uses.update(a for a in prog.outputs if isinstance(a, Ref))
    labels = Labels()
    nets: dict[Ref, Net] = {}
    for k, op in enumerate(prog.body):
        got = _absorb(op, k, nets, uses, labels)
        if got is not None:
            net, taken = got
            for r in taken:
                del nets[r]
            nets[op.outs[0]] = net
    for ref, net in nets.items():
        steps = sorted(net.steps)
        prims = tuple(_name(prog.body[k]) for k in steps)
        if len(net.factors) < 2 or not _REDUCING & set(prims):
            continue  # a view, a reduction or a product: nothing to contract
        cluster = make_cluster(net, prims, where, labels, options, precision)
        prog.clusters.append(cluster)
        if cluster.rewritten:
            for k in steps[:-1]:
                prog.body[k] = None
            prog.body[steps[-1]] = Fused(cluster, ref)
    prog.body = [op for op in prog.body if op is not None]


def _restage(closed: ClosedJaxpr, where: str, prog: Program, options: PlanOptions,
             precision: Any) -> ClosedJaxpr:
    """``closed`` rewritten, or as given when nothing in it was rewritten."""
    sub = build(closed, options, precision, where)
    if not sub.rewritten:
        prog.clusters += sub.clusters
        return closed
    avals = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in closed.in_avals]
    new = jax.make_jaxpr(lambda *xs: evaluate(sub, xs))(*avals)
    if new.out_avals != closed.out_avals or new.consts or new.effects != closed.effects:
        # The body must keep its exact types; keep it as written otherwise.
        prog.clusters += [replace(c, rewritten=False, reason="kept: the rewritten body "
                                  "would change its types") if c.rewritten else c
                          for c in sub.clusters]
        return closed
    prog.clusters += sub.clusters
    return new


def _rewrite_bodies(prog: Program, options: PlanOptions, precision: Any, where: str) -> None:
    for op in prog.body:
        name = _name(op)
        for param in _BODIES.get(name, ()):
            value = op.params.get(param)
            # "scan body", "while cond", "while body", "cond branches 1", nested with " > ".
            base = f"{where}{name} {param.replace('_jaxpr', '').replace('jaxpr', 'body')}"
            if isinstance(value, ClosedJaxpr):
                op.params[param] = _restage(value, base + " > ", prog, options, precision)
            elif isinstance(value, tuple) and all(isinstance(b, ClosedJaxpr) for b in value):
                op.params[param] = tuple(_restage(b, f"{base} {n} > ", prog, options, precision)
                                         for n, b in enumerate(value))


def build(closed: ClosedJaxpr, options: PlanOptions, precision: Any, where: str = "") -> Program:
    """Flatten ``closed`` and rewrite its contraction clusters (bodies included)."""
    prog = _flatten(closed)
    prog.body = find_logsumexps(prog.body, prog.outputs)
    _rewrite_bodies(prog, options, precision, where)
    _find_clusters(prog, options, precision, where)
    return prog


def evaluate(prog: Program, args: Sequence[Any]) -> list[Any]:
    """Run ``prog`` on ``args`` (traceable: call it under ``jax.jit``)."""
    env: dict[Ref, Any] = dict(prog.consts)
    env.update(zip(prog.inputs, args))

    def read(a: Any) -> Any:
        return a.val if isinstance(a, Literal) else env[a]

    def run(steps: Sequence[Any]) -> None:
        for step in steps:
            if isinstance(step, Fused):
                env[step.out] = run_cluster(step.cluster, read)
                continue
            if isinstance(step, LogSumExp):  # not absorbed: its equations as written
                run(step.ops)
                continue
            prim = step.eqn.primitive
            with step.eqn.ctx.manager:
                ans = prim.bind(*map(read, step.ins), **prim.get_bind_params(step.params))
            for ref, value in zip(step.outs, ans if prim.multiple_results else (ans,)):
                if ref is not None:
                    env[ref] = value

    run(prog.body)
    return [read(a) for a in prog.outputs]
