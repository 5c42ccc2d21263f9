"""Library functions :func:`contract.jit` recognises in a jaxpr by their staged form.

``jax.nn.logsumexp(x, axis)`` is staged as fourteen equations (JAX 0.4.30 to
0.10): the maximum over ``axis`` (``reduce_max``, then ``max`` with
``-inf``, ``is_finite``/``select_n`` to zero non-finite maxima, and
``stop_gradient``), broadcast back, ``sub``, ``exp``, ``reduce_sum`` over
``axis``, ``abs``/``log`` (with an unused ``sign``), and the maximum added
back. :func:`find_logsumexps` finds exactly that chain, every intermediate
used only inside it, and replaces it by one :class:`LogSumExp` step, which
the cluster search can absorb as the log semiring's ⊕ (so
``logsumexp(a[:, :, None] + b[None], 1)`` becomes a planned log-semiring
contraction). A chain staged any other way (another JAX version, ``b=``,
``return_sign=``, ``keepdims=True``) is not matched and runs as written;
an unabsorbed :class:`LogSumExp` runs its original equations.

>>> import jax, jax.numpy as jnp
>>> from contract.fusion.program import _flatten
>>> prog = _flatten(jax.make_jaxpr(lambda x: jax.nn.logsumexp(x, 1))(jnp.ones((2, 3))))
>>> body = find_logsumexps(prog.body, prog.outputs)
>>> [type(s).__name__ for s in body], body[0].params
(['LogSumExp'], {'axes': (1,)})
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from jax.extend.core import Literal

__all__ = ["LogSumExp", "find_logsumexps"]


@dataclass
class LogSumExp:
    """``jax.nn.logsumexp`` of ``ins[0]`` over ``params["axes"]``, into ``outs[0]``;
    ``ops`` are the equations it stands for (run as written unless absorbed)."""

    ins: tuple[Any, ...]
    outs: tuple[Any, ...]
    params: dict[str, Any]
    ops: list[Any]
    name: str = "logsumexp"


def _is(op: Any, name: str) -> bool:
    return op is not None and not isinstance(op, LogSumExp) and op.eqn.primitive.name == name


def _literal(a: Any, value: float) -> bool:
    return isinstance(a, Literal) and float(a.val) == value


def _match(total: Any, made: dict[Any, Any], users: dict[Any, list[Any]]) -> list[Any] | None:
    """The chain's equations ending at ``total`` (its ``reduce_sum``), or None."""
    exp = made.get(total.ins[0])
    sub = exp and made.get(exp.ins[0])
    if not (_is(exp, "exp") and _is(sub, "sub")):
        return None
    x, back = sub.ins
    bcast = made.get(back)
    stop = bcast and made.get(bcast.ins[0])
    select = stop and made.get(stop.ins[0])
    if not (_is(bcast, "broadcast_in_dim") and _is(stop, "stop_gradient")
            and _is(select, "select_n")):
        return None
    finite, zeros, clipped = (made.get(a) for a in select.ins)
    if not (_is(finite, "is_finite") and _is(zeros, "broadcast_in_dim")
            and _literal(zeros.ins[0], 0.0) and _is(clipped, "max")):
        return None
    if finite.ins[0] != clipped.outs[0] or select.ins[2] != clipped.outs[0]:
        return None
    lo = [a for a in clipped.ins if _literal(a, -math.inf)]
    peak = made.get(next((a for a in clipped.ins if not isinstance(a, Literal)), None))
    if len(lo) != 1 or not _is(peak, "reduce_max") or peak.ins[0] != x:
        return None
    if tuple(peak.params["axes"]) != tuple(total.params["axes"]):
        return None
    after = [u for u in users.get(total.outs[0], []) if not _is(u, "sign")]
    absolute = after[0] if len(after) == 1 and _is(after[0], "abs") else None
    log = absolute and next(iter(users.get(absolute.outs[0], [])), None)
    add = log and next(iter(users.get(log.outs[0], [])), None)
    if not (_is(log, "log") and _is(add, "add") and set(add.ins) == {log.outs[0], stop.outs[0]}):
        return None
    signs = [u for u in users.get(total.outs[0], []) if _is(u, "sign")]
    return [peak, clipped, finite, zeros, select, stop, bcast, sub, exp, total, *signs,
            absolute, log, add]


def find_logsumexps(body: list[Any], outputs: Sequence[Any]) -> list[Any]:
    """``body`` with each staged ``jax.nn.logsumexp`` chain as one :class:`LogSumExp`
    (placed where the chain's last equation was; see the module docstring)."""
    made = {r: op for op in body for r in op.outs if r is not None}
    users: dict[Any, list[Any]] = {}
    for op in body:
        for a in op.ins:
            if not isinstance(a, Literal):
                users.setdefault(a, []).append(op)
    external = Counter(a for a in outputs if not isinstance(a, Literal))
    replaced: dict[int, Any] = {}
    for op in body:
        if not _is(op, "reduce_sum"):
            continue
        chain = _match(op, made, users)
        if chain is None:
            continue
        inside = {id(o) for o in chain}
        made_inside = {r for o in chain[:-1] for r in o.outs if r is not None}
        # Every value the chain makes, but its result, is used only inside it.
        if any(external[r] or any(id(u) not in inside for u in users.get(r, []))
               for r in made_inside):
            continue
        last = chain[-1]
        replaced.update({id(o): None for o in chain[:-1]})
        replaced[id(last)] = LogSumExp((chain[7].ins[0],), last.outs,
                                       {"axes": tuple(op.params["axes"])},
                                       [o for o in body if id(o) in inside])
    return [s for s in (replaced.get(id(op), op) for op in body) if s is not None]
