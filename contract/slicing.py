"""Fit a contraction into a byte budget by slicing labels, and run the slices.

Slicing a label of size ``d`` into ``s`` slices splits the network into ``s``
copies where that label has size ``d / s``; each copy is contracted with the
same path and the results are summed (a contracted label) or written into
their place in the output (an output label). Peak memory drops with the sliced
sizes; the price is FLOPs: steps that do not touch a sliced label repeat once
per slice. As in cotengra's ``SliceFinder``, labels are chosen greedily by peak
reduction per unit of FLOP overhead, fewest slices first, and every candidate
is re-costed on the base plan's path (cheap: no search).

All slices run as one ``lax.scan`` whose carry is the output accumulator:
inputs are cut with ``lax.dynamic_slice_in_dim`` (no copies of the full
inputs), each slice runs the pairwise ``dot_general`` steps of the slice plan,
and its result is added into the accumulator at its offset.

>>> import contract
>>> p = contract.plan("ab,bc,cd->ad", (64, 64), (64, 64), (64, 64), memory_limit=40_000)
>>> p.labels, p.n_slices, p.peak_bytes <= 40_000
(('a', 'c'), 4, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .backend.jax import execute
from .errors import ContractError
from .plan import OPTIMIZERS, Plan, make_plan
from .spec import Bound

__all__ = ["SlicedPlan", "cast_result", "divisors", "fit", "next_cuts", "resolve_limit",
           "run_slices", "slice_plan"]

# Above this many slices the scan's per-iteration overhead dominates any real
# contraction; the greedy search never goes past it.
MAX_SLICES = 1 << 20
# Weight of the slice count against FLOP overhead in the greedy score, so that
# among slicings without FLOP overhead the one with fewest slices wins.
_SLICE_WEIGHT = 0.01


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


@dataclass(frozen=True)
class SlicedPlan:
    """A plan run as ``n_slices`` slices, each fitting the memory budget.

    ``base`` is the unsliced plan; ``slice`` is the plan of one slice (sliced
    labels have the chunk size, it accumulates in the compute dtype).
    ``labels``/``counts`` name the sliced labels and how many slices each is cut
    into. ``peak_bytes`` is one slice's peak: its slices of the inputs, its
    intermediates and its part of the output. The full inputs and the result
    are not counted: they exist before and after the call whatever the plan.
    ``devices`` > 1 means the slices are shared by a mesh's devices.
    Other attributes (``spec``, ``shapes``, ``path``…) are the base plan's.
    """

    base: Plan
    slice: Plan
    labels: tuple[str, ...]
    counts: tuple[int, ...]
    peak_bytes: int
    memory_limit: int | None
    devices: int = 1

    @property
    def n_slices(self) -> int:
        """Total number of slices (the product of ``counts``)."""
        return math.prod(self.counts)

    @property
    def flops(self) -> int:
        """FLOPs of all slices together."""
        return self.n_slices * self.slice.flops

    @property
    def overhead(self) -> float:
        """Sliced FLOPs over unsliced FLOPs (1.0 = no extra work)."""
        return self.flops / max(self.base.flops, 1)

    def __getattr__(self, name: str) -> Any:
        # Everything not about slicing is the base plan's (spec, shapes, path…).
        if name.startswith("__") or name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __str__(self) -> str:
        from .report import human

        chunks = ", ".join(
            f"{l} {dict(self.base.sizes)[l]} -> {c} x {dict(self.slice.sizes)[l]}"
            for l, c in zip(self.labels, self.counts)
        )
        budget = ("" if self.memory_limit is None
                  else f" (memory_limit {human(self.memory_limit, 'B')})")
        where = "one lax.scan" if self.devices == 1 else (
            f"one lax.scan per device on {self.devices} devices "
            f"({-(-self.n_slices // self.devices)} each), summed with psum")
        return "\n".join([
            str(self.base),
            "slicing",
            f"  sliced      {chunks}",
            f"  slices      {self.n_slices}, run as {where}",
            f"  FLOPs       {human(self.flops)} in all, overhead {self.overhead:.2f}x",
            f"  memory      peak per slice {human(self.peak_bytes, 'B')}{budget},"
            f" unsliced {human(self.base.peak_bytes, 'B')}",
        ])


def resolve_limit(memory_limit: Any, plan: Plan) -> int:
    """Check ``memory_limit`` and turn ``"max_input"`` into bytes.

    >>> import contract
    >>> resolve_limit("max_input", contract.plan("ij,jk", (4, 8), (8, 2)))
    128
    """
    if memory_limit == "max_input":
        return max((math.prod(s) * _itemsize(d) for s, d in zip(plan.shapes, plan.dtypes)),
                   default=0)
    integer = isinstance(memory_limit, (int, np.integer)) and not isinstance(
        memory_limit, (bool, np.bool_))
    if not integer or memory_limit <= 0:
        raise ContractError(
            f"memory_limit must be a positive number of bytes or 'max_input', got {memory_limit!r}"
        )
    return int(memory_limit)


def divisors(n: int) -> list[int]:
    """The slice counts a label of size ``n`` allows (equal slices, no padding).

    >>> divisors(12)
    [1, 2, 3, 4, 6, 12]
    """
    return [d for d in range(1, n + 1) if n % d == 0]


def slice_plan(base: Plan, counts: dict[str, int], optimize: Any = None) -> SlicedPlan:
    """Cost ``base`` sliced ``counts[label]`` ways per label (each a divisor of its size).

    ``optimize=None`` keeps the base path (re-costing only); an optimizer name
    re-plans the sliced network.

    >>> import contract
    >>> sp = slice_plan(contract.plan("ij,jk->ik", (8, 6), (6, 4)), {"j": 3})
    >>> sp.n_slices, dict(sp.slice.sizes)["j"], sp.overhead
    (3, 2, 1.0)
    """
    sizes = dict(base.sizes)
    chunk = {l: sizes[l] // c for l, c in counts.items()}
    # The slice network takes already squeezed operands.
    bound = Bound(base.spec, base.inputs, base.output, {**sizes, **chunk},
                   tuple(() for _ in base.inputs))
    cdtype = base.compute_dtype
    one = make_plan(bound, base.dtypes, cdtype, base.path if optimize is None else optimize)
    labels = tuple(l for l in sizes if counts.get(l, 1) > 1)
    return SlicedPlan(base, one, labels, tuple(counts[l] for l in labels), one.peak_bytes, None)


def _volume(sp: SlicedPlan) -> int:
    """Elements in one slice's inputs and intermediates."""
    one = sp.slice
    return sum(math.prod(s) for s in one.shapes) + sum(step.size for step in one.steps)


def next_cuts(sp: SlicedPlan) -> Iterator[SlicedPlan]:
    """Every slicing one step further than ``sp``: one label cut into its next divisor.

    >>> import contract
    >>> sp = slice_plan(contract.plan("ij,jk->ik", (4, 6), (6, 2)), {"j": 2})
    >>> [(c.labels, c.counts) for c in next_cuts(sp)]
    [(('i', 'j'), (2, 2)), (('j',), (3,)), (('j', 'k'), (2, 2))]
    """
    counts = dict(zip(sp.labels, sp.counts))
    for label, size in sp.base.sizes:
        have = counts.get(label, 1)
        bigger = [d for d in divisors(size) if d > have]
        if bigger and sp.n_slices // have * bigger[0] <= MAX_SLICES:
            yield slice_plan(sp.base, {**counts, label: bigger[0]})


def _greedy(base: Plan, limit: int) -> tuple[SlicedPlan, bool]:
    """Slice until one slice fits ``limit``; returns the last slicing and whether it fits."""
    cur = slice_plan(base, {})
    while cur.peak_bytes > limit:
        best, best_key = None, None
        for cand in next_cuts(cur):
            gain = math.log(cur.peak_bytes / cand.peak_bytes)
            if not gain:
                # The peak sits in another step too: a cut that shrinks the
                # arrays elsewhere still progresses (ranked after real gains).
                gain = 1e-6 * math.log(_volume(cur) / max(_volume(cand), 1))
            if gain <= 0:
                continue
            cost = (math.log(max(cand.flops, 1) / max(cur.flops, 1))
                    + _SLICE_WEIGHT * math.log(cand.n_slices / cur.n_slices))
            key = (gain / max(cost, 1e-12), -cand.n_slices)
            if best_key is None or key > best_key:
                best, best_key = cand, key
        if best is None:
            return cur, False
        cur = best
    return cur, True


def fit(base: Plan, memory_limit: Any) -> Plan | SlicedPlan:
    """``base`` itself if its peak fits ``memory_limit``, else the best slicing found.

    Raises :class:`ContractError` with the smallest budget that would work
    when no slicing fits.

    >>> import contract
    >>> p = contract.plan("ij,jk->ik", (8, 6), (6, 4))
    >>> fit(p, 10**6) is p
    True
    >>> fit(p, 8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: spec 'ij,jk->ik' needs 416 bytes unsliced; ... works is 12 bytes
    """
    limit = resolve_limit(memory_limit, base)
    if base.peak_bytes <= limit:
        return base
    sliced, ok = _greedy(base, limit)
    if not ok:
        raise ContractError(
            f"spec '{base.spec}' needs {base.peak_bytes} bytes unsliced; sliced as far as it "
            f"goes ({', '.join(sliced.labels)}: {sliced.n_slices} slices) one slice still needs "
            f"{sliced.peak_bytes} bytes, over memory_limit={limit}: the smallest budget that "
            f"works is {sliced.peak_bytes} bytes"
        )
    # Fewest slices: undo any slicing step the budget and FLOPs do not need.
    changed = True
    while changed:
        changed = False
        counts = dict(zip(sliced.labels, sliced.counts))
        for label, count in counts.items():
            fewer = [d for d in divisors(dict(base.sizes)[label]) if d < count][-1]
            cand = slice_plan(base, {**counts, label: fewer})
            if cand.peak_bytes <= limit and cand.flops <= sliced.flops:
                sliced, changed = cand, True
                break
    # The path was fixed while slicing; a fresh search on the sliced sizes can
    # do better (it is kept only if it still fits and costs fewer FLOPs).
    if base.optimize in OPTIMIZERS:
        counts = dict(zip(sliced.labels, sliced.counts))
        replanned = slice_plan(base, counts, base.optimize)
        if replanned.peak_bytes <= limit and replanned.flops < sliced.flops:
            sliced = replanned
    return SlicedPlan(sliced.base, sliced.slice, sliced.labels, sliced.counts,
                      sliced.peak_bytes, limit)


def cast_result(x: jax.Array, dtype: str) -> jax.Array:
    """Cast an accumulator to the result dtype, as the backend does (bool: nonzero).

    >>> cast_result(jnp.array([0, 2]), "bool").tolist()
    [False, True]
    """
    out = jnp.dtype(dtype)
    if x.dtype == out:
        return x
    return x != 0 if out == jnp.bool_ else x.astype(out)


def run_slices(sp: SlicedPlan, precision: Any, operands: Sequence[Any], count: int | None = None,
               index: Callable[[jax.Array], tuple[jax.Array, Any]] | None = None) -> jax.Array:
    """Run ``sp``'s slices as one ``lax.scan`` and return the accumulated output.

    By default every slice ``0 .. n_slices-1`` runs and the result has the
    plan's result dtype. With ``count``/``index`` (used by the sharded runner),
    scan step ``k`` runs slice ``index(k)[0]`` and keeps its result only where
    ``index(k)[1]`` is true; the raw accumulator (compute dtype) is returned.

    >>> import numpy as np, contract
    >>> a, b = np.ones((8, 6), np.float32), np.ones((6, 4), np.float32)
    >>> sp = slice_plan(contract.plan("ij,jk->ik", a, b), {"j": 3, "i": 2})
    >>> run_slices(sp, None, [a, b]).tolist()[0]
    [6.0, 6.0, 6.0, 6.0]
    """
    base = sp.base
    sizes = dict(base.sizes)
    chunk = dict(sp.slice.sizes)
    arrays = []
    for x, drop in zip(operands, base.squeeze):
        x = jnp.asarray(x)
        arrays.append(lax.squeeze(x, drop) if drop else x)
    # Mixed-radix digits of the slice number, one per sliced label.
    radix = {}
    stride = 1
    for label, c in reversed(list(zip(sp.labels, sp.counts))):
        radix[label] = (stride, c)
        stride *= c

    def starts(n: jax.Array) -> dict[str, jax.Array]:
        return {l: (n // s) % c * chunk[l] for l, (s, c) in radix.items()}

    def body(acc: jax.Array, k: jax.Array) -> tuple[jax.Array, None]:
        n, keep = (k, None) if index is None else index(k)
        at = starts(n)
        parts = []
        for x, labels in zip(arrays, base.inputs):
            for axis, label in enumerate(labels):
                if label in at:
                    x = lax.dynamic_slice_in_dim(x, at[label], chunk[label], axis)
            parts.append(x)
        part = execute(sp.slice, precision, *parts)
        if keep is not None:
            part = jnp.where(keep, part, jnp.zeros_like(part))
        where = [at.get(l, jnp.zeros((), n.dtype)) for l in base.output]
        acc = lax.dynamic_update_slice(acc, lax.dynamic_slice(acc, where, part.shape) + part, where)
        return acc, None

    acc = jnp.zeros(tuple(sizes[l] for l in base.output), sp.slice.result_dtype)
    acc, _ = lax.scan(body, acc, jnp.arange(sp.n_slices if count is None else count,
                                            dtype=jnp.int32))
    return acc if index is not None else cast_result(acc, base.result_dtype)
