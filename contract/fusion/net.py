"""The network algebra behind :func:`contract.jit`: jaxpr equations as einsum terms.

A :class:`Net` is what a traced value *is* in einsum terms: a product of
factors (arrays computed outside the cluster, each indexed by integer labels),
summed over every label missing from ``out``, times a constant ``scale``.
Each contraction-expressible primitive has a rule that builds its result's
net from its operands' nets without computing anything, so a chain such as
``jnp.sum(x[:, :, None] * y[None], 1)`` ends as one net ``'ij,jk->ik'``.

``out`` holds one entry per axis of the value: a label, or ``None`` for a
size-1 axis. A label in ``out`` that no factor carries is a *broadcast*
label: the value is constant along it (``broadcast_in_dim``), and summing it
multiplies ``scale`` by its size. Labels of different nets never collide (a
value used twice is a cluster boundary, so each net is built from fresh
leaves), which lets unification be a plain renaming.

>>> import numpy as np
>>> L = Labels()
>>> a = leaf(0, (3, 4), np.float32, L)
>>> b = leaf(1, (3, 4), np.float32, L)
>>> ab = RULES["mul"]({}, [a, b], L)
>>> s = RULES["reduce_sum"]({"axes": (0,)}, [ab], L)
>>> [f.labels for f in s.factors], s.out
([(0, 1), (0, 1)], (1,))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
from jax import lax

__all__ = ["Labels", "Factor", "Net", "accepts", "leaf", "RULES", "SCALAR"]

SCALAR = "scalar"  # a rule operand that is a Python constant, not a Net


class Labels:
    """Fresh integer labels and their sizes, shared by one cluster search."""

    def __init__(self) -> None:
        self.size: dict[int, int] = {}

    def new(self, size: int) -> int:
        label = len(self.size)
        self.size[label] = size
        return label


@dataclass(frozen=True)
class Factor:
    """An array from outside the cluster, viewed as ``shape``, one label per axis.

    ``source`` is a program value id (or a jaxpr literal). The view drops the
    source's size-1 axes and applies any axis splits/merges the cluster's
    reshapes asked for; it is always a plain row-major reshape.
    """

    source: Any
    shape: tuple[int, ...]
    labels: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class Net:
    """A value as ``scale * einsum(factors -> out)``, plus what it replaced.

    ``steps`` are the program positions of the equations absorbed, ``flops``
    and ``largest`` their cost and largest output (elements) as written,
    ``arith`` how many of them do arithmetic on two arrays or reduce,
    ``mulsum`` whether a product was summed by ``reduce_sum`` (a contraction
    XLA would run as a broadcast-multiply-reduce, never as a GEMM), and
    ``precisions`` the ``precision`` params of the ``dot_general``s.
    """

    factors: tuple[Factor, ...]
    out: tuple[int | None, ...]
    dtype: np.dtype
    scale: complex | float = 1.0
    steps: tuple[int, ...] = ()
    flops: int = 0
    largest: int = 0
    arith: int = 0
    mulsum: bool = False
    precisions: tuple[Any, ...] = ()
    # The algebra of the arithmetic absorbed: None (a view of one array),
    # "sum-product" (products and sums), "plus" (adds only), "max-plus" or
    # "min-plus" (adds reduced by reduce_max / reduce_min; see _add).
    semiring: str | None = None

    def carried(self) -> set[int]:
        """Labels some factor carries (the others in ``out`` are broadcast)."""
        return {l for f in self.factors for l in f.labels}


def leaf(source: Any, shape: Sequence[int], dtype: Any, labels: Labels) -> Net:
    """A net that is just ``source`` (size-1 axes are dropped from the view)."""
    out = tuple(labels.new(d) if d != 1 else None for d in shape)
    real = tuple(l for l in out if l is not None)
    view = tuple(labels.size[l] for l in real)
    return Net((Factor(source, view, real, np.dtype(dtype)),), out, np.dtype(dtype))


def _rename(net: Net, names: dict[int, int]) -> Net:
    if not names:
        return net
    factors = tuple(replace(f, labels=tuple(names.get(l, l) for l in f.labels))
                    for f in net.factors)
    out = tuple(names.get(l, l) if l is not None else None for l in net.out)
    return replace(net, factors=factors, out=out)


def _unify(a: Net, b: Net, pairs: Sequence[tuple[int, int]]) -> tuple[Net, list[int | None]]:
    """Rename ``b``'s labels so paired axes share ``a``'s; the merged labels."""
    names: dict[int, int] = {}
    merged: list[int | None] = []
    for ia, ib in pairs:
        la, lb = a.out[ia], b.out[ib]
        if la is not None and lb is not None:
            names[lb] = la
        merged.append(la if la is not None else lb)
    return _rename(b, names), merged


def _summed(net: Net, labels: Sequence[int | None], L: Labels) -> complex | float:
    """``net.scale`` after summing ``labels`` away (broadcast labels multiply)."""
    carried = net.carried()
    scale = net.scale
    for l in labels:
        if l is not None and l not in carried:
            scale = scale * L.size[l]
    return scale


def _combine(a: Net, b: Net, out: tuple[int | None, ...], scale: Any,
             precision: tuple[Any, ...] = (), semiring: str = "sum-product") -> Net:
    return replace(a, factors=a.factors + b.factors, out=out, scale=scale,
                   steps=a.steps + b.steps, flops=a.flops + b.flops,
                   largest=max(a.largest, b.largest), arith=a.arith + b.arith + 1,
                   mulsum=a.mulsum or b.mulsum,
                   precisions=a.precisions + b.precisions + precision, semiring=semiring)


def _mul(params: dict, ops: list, L: Labels) -> Net | None:
    x, y = ops
    if isinstance(x, tuple) and isinstance(y, tuple):
        return None
    if isinstance(y, tuple) or isinstance(x, tuple):
        net, (_, c) = (x, y) if isinstance(y, tuple) else (y, x)
        return replace(net, scale=net.scale * c, semiring="sum-product")
    if len(x.out) != len(y.out) and min(len(x.out), len(y.out)) != 0:
        return None
    if not y.out or not x.out:
        big, small = (x, y) if x.out else (y, x)
        return _combine(big, small, big.out, big.scale * small.scale)
    y, out = _unify(x, y, [(k, k) for k in range(len(x.out))])
    return _combine(x, y, tuple(out), x.scale * y.scale)


def _square(params: dict, ops: list, L: Labels) -> Net | None:
    (x,) = ops
    if params.get("y", 2) != 2 or x.arith:
        return None  # squaring a computed network would compute it twice
    f = x.factors[0]
    fresh = {l: L.new(L.size[l]) for l in f.labels}
    return _mul({}, [x, _rename(x, fresh)], L)


def _div(params: dict, ops: list, L: Labels) -> Net | None:
    x, y = ops
    if isinstance(x, tuple) or not isinstance(y, tuple) or y[1] == 0:
        return None
    return replace(x, scale=x.scale / y[1], semiring="sum-product")


def _neg(params: dict, ops: list, L: Labels) -> Net:
    return replace(ops[0], scale=-ops[0].scale, semiring="sum-product")


def _dot_general(params: dict, ops: list, L: Labels) -> Net | None:
    x, y = ops
    precision = params.get("precision")
    if not (precision is None or isinstance(precision, tuple)
            and all(p is None or isinstance(p, lax.Precision) for p in precision)):
        return None  # an explicit dot algorithm: keep the equation as written
    (xc, yc), (xb, yb) = params["dimension_numbers"]
    y, merged = _unify(x, y, list(zip(xc, yc)) + list(zip(xb, yb)))
    contracted, batch = merged[: len(xc)], merged[len(xc):]
    xfree = [x.out[k] for k in range(len(x.out)) if k not in xc and k not in xb]
    yfree = [y.out[k] for k in range(len(y.out)) if k not in yc and k not in yb]
    both = _combine(x, y, tuple(batch + xfree + yfree), x.scale * y.scale, (precision,))
    return replace(both, scale=_summed(both, contracted, L))


def _reduce_sum(params: dict, ops: list, L: Labels) -> Net:
    (x,) = ops
    axes = set(params["axes"])
    gone = [l for k, l in enumerate(x.out) if k in axes]
    out = tuple(l for k, l in enumerate(x.out) if k not in axes)
    # A product summed here is a contraction XLA would not run as a GEMM.
    return replace(x, out=out, scale=_summed(x, gone, L), arith=x.arith + 1,
                   mulsum=x.mulsum or x.arith > 0, semiring="sum-product")


def _transpose(params: dict, ops: list, L: Labels) -> Net:
    (x,) = ops
    return replace(x, out=tuple(x.out[p] for p in params["permutation"]))


def _broadcast_in_dim(params: dict, ops: list, L: Labels) -> Net:
    (x,) = ops
    shape, dims = params["shape"], params["broadcast_dimensions"]
    out: list[int | None] = [None if d == 1 else L.new(d) for d in shape]
    for k, d in enumerate(dims):
        if x.out[k] is not None:
            out[d] = x.out[k]
    return replace(x, out=tuple(out))


def _squeeze(params: dict, ops: list, L: Labels) -> Net:
    (x,) = ops
    dims = {d % len(x.out) for d in params["dimensions"]}
    return replace(x, out=tuple(l for k, l in enumerate(x.out) if k not in dims))


def _groups(sizes: list[int], new: list[int]) -> list[tuple[int, int]] | None:
    """Pair runs of old axes with runs of new axes of equal total size.

    >>> _groups([6, 4], [2, 3, 4])
    [(1, 2), (1, 1)]
    """
    groups, i, j = [], 0, 0
    while i < len(sizes) and j < len(new):
        a, b, pa, pb = 1, 1, sizes[i], new[j]
        while pa != pb:
            if pa < pb and i + a < len(sizes):
                pa, a = pa * sizes[i + a], a + 1
            elif pb < pa and j + b < len(new):
                pb, b = pb * new[j + b], b + 1
            else:
                return None
        groups.append((a, b))
        i, j = i + a, j + b
    return groups if (i, j) == (len(sizes), len(new)) else None


def _regroup(net: Net, old: tuple[int, ...], sizes: list[int],
             L: Labels) -> tuple[Net, list[int]] | None:
    """Replace the axis run ``old`` by fresh labels of ``sizes`` in every factor."""
    if len(old) == 1 and len(sizes) == 1:
        return net, list(old)
    new = [L.new(d) for d in sizes]
    factors = []
    for f in net.factors:
        hits = [k for k, l in enumerate(f.labels) if l in old]
        if not hits:
            factors.append(f)
            continue
        k = hits[0]
        if tuple(f.labels[k : k + len(old)]) != old:
            return None  # the axes are not adjacent in this factor: no view
        factors.append(replace(f, labels=f.labels[:k] + tuple(new) + f.labels[k + len(old):],
                               shape=f.shape[:k] + tuple(sizes) + f.shape[k + len(old):]))
    return replace(net, factors=tuple(factors)), new


def _reshape(params: dict, ops: list, L: Labels) -> Net | None:
    (x,) = ops
    if params.get("dimensions") is not None:
        return None
    real = [l for l in x.out if l is not None]
    new = [d for d in params["new_sizes"] if d != 1]
    groups = _groups([L.size[l] for l in real], new)
    if groups is None or 0 in new:
        return None
    labels: list[int] = []
    i = j = 0
    for a, b in groups:
        got = _regroup(x, tuple(real[i : i + a]), new[j : j + b], L)
        if got is None:
            return None
        x, fresh = got
        labels += fresh
        i, j = i + a, j + b
    it = iter(labels)
    return replace(x, out=tuple(None if d == 1 else next(it) for d in params["new_sizes"]))


def _convert(params: dict, ops: list, L: Labels) -> Net:
    return ops[0]  # the caller checked both dtypes are of one inexact kind


def _identity(params: dict, ops: list, L: Labels) -> Net:
    return ops[0]


def _add(params: dict, ops: list, L: Labels) -> Net | None:
    """``x + y``: ⊗ of the max-plus, min-plus and log semirings. Nets reduced
    by two different ⊕ do not mix; otherwise ``(max_k a) + b = max_k (a + b)``
    where ``b`` lacks ``k`` (labels never collide; likewise for min and
    log-sum-exp), so a reduced net may be added to."""
    x, y = ops
    if isinstance(x, tuple) or isinstance(y, tuple) or len(x.out) != len(y.out):
        return None
    kinds = {x.semiring, y.semiring} - {None, "plus"}
    if len(kinds) > 1:
        return None
    y, out = _unify(x, y, [(k, k) for k in range(len(x.out))])
    return _combine(x, y, tuple(out), 1.0, semiring=kinds.pop() if kinds else "plus")


def _reduce_semiring(params: dict, ops: list, L: Labels, semiring: str) -> Net | None:
    (x,) = ops
    axes = set(params["axes"])
    if semiring == "log" and any(l not in x.carried() for k, l in enumerate(x.out) if k in axes):
        return None  # log-sum-exp over a broadcast label adds log(size): not a view
    # A broadcast label reduced by max or min changes nothing (no scale).
    return replace(x, out=tuple(l for k, l in enumerate(x.out) if k not in axes),
                   arith=x.arith + 1, semiring=semiring)


def accepts(name: str, net: Net) -> bool:
    """Whether primitive ``name``'s rule may take ``net`` over (else the net's
    value enters as an array): each rule extends nets of its own algebra.

    >>> L = Labels()
    >>> plus = _add({}, [leaf(0, (2,), np.float32, L), leaf(1, (2,), np.float32, L)], L)
    >>> accepts("reduce_max", plus), accepts("mul", plus), accepts("transpose", plus)
    (True, False, True)
    """
    kinds = _ALGEBRA.get(name)
    return kinds is None or net.semiring in kinds


# The nets each arithmetic rule extends (views take any net).
_SUM = (None, "sum-product")
_ALGEBRA: dict[str, tuple[str | None, ...]] = {
    "mul": _SUM, "div": _SUM, "neg": _SUM, "square": _SUM, "integer_pow": _SUM,
    "dot_general": _SUM, "reduce_sum": _SUM,
    "add": (None, "plus", "max-plus", "min-plus", "log"),
    "reduce_max": (None, "plus", "max-plus"), "reduce_min": (None, "plus", "min-plus"),
    "logsumexp": (None, "plus", "log"),
}


Rule = Callable[[dict, list, Labels], "Net | None"]
# Rules see Nets, or (SCALAR, value) tuples for scalar literals.
RULES: dict[str, Rule] = {
    "mul": _mul, "div": _div, "neg": _neg, "square": _square, "integer_pow": _square,
    "dot_general": _dot_general, "reduce_sum": _reduce_sum, "transpose": _transpose,
    "broadcast_in_dim": _broadcast_in_dim, "squeeze": _squeeze, "reshape": _reshape,
    "convert_element_type": _convert, "copy": _identity, "add": _add,
    "reduce_max": lambda p, o, L: _reduce_semiring(p, o, L, "max-plus"),
    "reduce_min": lambda p, o, L: _reduce_semiring(p, o, L, "min-plus"),
    # jax.nn.logsumexp, recognised by contract.fusion.patterns: the log semiring's ⊕.
    "logsumexp": lambda p, o, L: _reduce_semiring(p, o, L, "log"),
}
# Primitives that compute (the others only relabel): their outputs are stored as written.
ARITHMETIC = {"mul", "div", "neg", "square", "integer_pow", "dot_general", "reduce_sum", "add",
              "reduce_max", "reduce_min", "logsumexp"}


def eqn_flops(name: str, params: dict, in_shapes: Sequence[tuple[int, ...]],
              out_shape: tuple[int, ...]) -> int:
    """FLOPs of one equation as written (a multiply-add counts 2).

    >>> eqn_flops("dot_general", {"dimension_numbers": (((1,), (0,)), ((), ()))},
    ...           [(2, 3), (3, 4)], (2, 4))
    48
    """
    if name == "dot_general":
        (xc, _), _ = params["dimension_numbers"]
        inner = math.prod(in_shapes[0][k] for k in xc)
        return math.prod(out_shape) * inner * (2 if xc else 1)
    if name in ("reduce_sum", "reduce_max", "reduce_min", "logsumexp"):
        return math.prod(in_shapes[0])
    if name in ARITHMETIC:
        return math.prod(out_shape)
    return 0
