"""The cost convention, written once: itemsizes, FLOPs, bytes and peak memory.

Every count in a plan, its report, the slice search and the benchmarks comes
from here:

* **FLOPs**: a pairwise step costs the product of the sizes of every label it
  touches, times 2 when it contracts a label (a multiply and an add, as
  opt_einsum counts) and times 1 when it only multiplies (outer/Hadamard).
  A single-operand reduction costs one add per element read.
* **bytes** are counted in the plan's *compute* dtype (what the arrays hold
  while the plan runs): bfloat16/float16 accumulate in float32, narrow
  integers in (u)int32, bool in int32.
* **peak** is the most the contraction itself holds at once *beyond the
  caller's inputs*: the arrays it makes (a prepared operand whose diagonal is
  taken or labels summed away, each step's result while its inputs are alive,
  a final transpose next to the result it reads) and never less than the
  output. The inputs exist before and after the call whatever the plan, so
  no plan can save them; casts to the compute dtype are not counted. A sliced
  plan holds one slice's copies of the inputs it cuts (``dynamic_slice``
  materialises them) and its arrays, next to the full output accumulator
  (:func:`~contract.planner.slicing.slice_plan`). Budgets
  (``memory_limit``) are compared with this number, on both sides.

>>> compute_dtype("bfloat16"), itemsize("complex64")
('float32', 8)
>>> path_cost([frozenset("ab"), frozenset("bc")], frozenset("ac"), {"a": 2, "b": 3, "c": 4}, [(0, 1)])
24
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from .model import Plan, Prep

__all__ = ["KEPT", "Cost", "compute_dtype", "costs", "held", "itemsize", "live_peak", "path_cost",
           "prod", "step_flops"]

# numpy's itemsize by dtype name, without importing numpy for ml_dtypes' names.
_ITEMSIZE = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2,
             "bfloat16": 2, "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8,
             "float64": 8, "complex64": 8, "complex128": 16}


def itemsize(dtype: str) -> int:
    """Bytes per element of a dtype name (bfloat16 and the float8 types included).

    >>> itemsize("bfloat16"), itemsize("float8_e4m3fn"), itemsize("int64")
    (2, 1, 8)
    """
    if dtype in _ITEMSIZE:
        return _ITEMSIZE[dtype]
    if dtype.startswith(("float8", "float4", "int4", "uint4", "int2", "uint2")):
        return 1
    import numpy as np

    return np.dtype(dtype).itemsize


# Operand dtypes a contraction step takes as they are, accumulating in their
# compute dtype (the backend's reason: contract/backend/jax.py).
KEPT = frozenset({"bfloat16", "int8"})


def compute_dtype(result: str) -> str:
    """The dtype a contraction accumulates in for a given result dtype.

    >>> compute_dtype("bfloat16"), compute_dtype("int8"), compute_dtype("bool")
    ('float32', 'int32', 'int32')
    >>> compute_dtype("uint16"), compute_dtype("float64")
    ('uint32', 'float64')
    """
    if result in ("bfloat16", "float16") or result.startswith("float8"):
        return "float32"
    if result == "bool":
        return "int32"
    if result in ("int8", "int16"):
        return "int32"
    if result in ("uint8", "uint16"):
        return "uint32"
    return result


def prod(labels: Iterable[str], sizes: dict[str, int]) -> int:
    """Number of elements of an array with these labels.

    >>> prod("ab", {"a": 2, "b": 3})
    6
    """
    return math.prod(sizes[l] for l in labels)


def step_flops(labels: Iterable[str], sizes: dict[str, int], contracts: bool) -> int:
    """FLOPs of one pairwise step touching ``labels`` (see the module docstring).

    >>> step_flops("ijk", {"i": 2, "j": 3, "k": 4}, True), step_flops("ij", {"i": 2, "j": 3}, False)
    (48, 6)
    """
    return prod(labels, sizes) * (2 if contracts else 1)


def path_cost(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
              path: Sequence[Sequence[int]]) -> int:
    """Sum over a path's steps of the size of each step's label union.

    This is FLOPs up to the factor 2 of :func:`step_flops`, the quantity
    path optimizers compare. Entries may name any number of operands.

    >>> path_cost([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 2, "b": 3, "c": 4, "d": 5}, [(1, 2), (0, 1)])
    90
    """
    terms = list(inputs)
    cost = 0
    for entry in path:
        picked = [terms[i] for i in entry]
        terms = [t for i, t in enumerate(terms) if i not in entry]
        union = frozenset().union(*picked)
        cost += prod(union, sizes)
        terms.append(union & (output.union(*terms)))
    return cost


def held(inputs: Sequence[Sequence[str]], preps: Sequence["Prep"], sizes: dict[str, int],
         cut: frozenset[str] = frozenset()) -> list[int]:
    """Elements of each prepared operand that the contraction itself holds.

    A caller's operand used as it is costs nothing (0); one with a diagonal
    taken or labels summed away is a new array of its prepared size; one
    with a label in ``cut`` (a slice of it, copied out by ``dynamic_slice``)
    holds its slice, at the sizes in ``sizes``.

    >>> from contract.planner import Prep
    >>> preps = [Prep(("i",), ("i",), ()), Prep(("j", "k"), (), ())]
    >>> held([("i", "i"), ("j", "k")], preps, {"i": 3, "j": 2, "k": 4})
    [3, 0]
    >>> held([("i", "i"), ("j", "k")], preps, {"i": 3, "j": 2, "k": 4}, frozenset("k"))
    [3, 8]
    """
    return [prod(t, sizes) if cut.intersection(t) else
            prod(p.labels, sizes) if p.diagonal or p.summed else 0
            for t, p in zip(inputs, preps)]


def live_peak(operands: Sequence[int], steps: Sequence[tuple[tuple[int, int], int]],
              output: int, transpose: bool = False) -> int:
    """Peak elements held (the module's *peak*): ``operands`` from :func:`held`,
    then each ``((i, j), out_size)`` step, then an optional final ``transpose``
    to the ``output``-element result; never less than ``output``.

    A step's result is alive together with everything still waiting,
    including its own two inputs (they are freed after it); the transpose's
    result together with the last step's.

    >>> live_peak([0, 0], [((0, 1), 8)], 8), live_peak([6, 0], [((0, 1), 8)], 8, True)
    (8, 16)
    """
    live = list(operands)
    peak = max(sum(live), output)
    for (i, j), size in steps:
        peak = max(peak, sum(live) + size)
        live = live[:i] + live[i + 1 : j] + live[j + 1 :] + [size]
    if transpose:
        peak = max(peak, sum(live) + output)
    return peak


@dataclass(frozen=True)
class Cost:
    """What one operation of a plan costs.

    ``name`` is ``"prep 2"`` (operand 2's diagonal/reduction), a step number,
    or ``"final"`` (the closing transpose); ``inputs`` holds the label tuples
    read, ``output`` the labels written. Bytes are in the compute dtype.
    """

    name: str
    inputs: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]
    kind: str
    flops: int
    bytes_read: int
    bytes_written: int
    size: int

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved (0 for pure data movement)."""
        return self.flops / max(self.bytes_read + self.bytes_written, 1)


def costs(plan: "Plan") -> list[Cost]:
    """One :class:`Cost` per operation of a (one-slice) plan, in execution order.

    >>> from contract.planner import make_plan
    >>> from contract.spec import parse
    >>> p = make_plan(parse("ij,jk->ik").bind([(2, 3), (3, 4)]), ("float32",) * 2, "float32")
    >>> [(c.name, c.kind, c.flops) for c in costs(p)]
    [('0', 'GEMM', 48)]
    """
    sizes = dict(plan.sizes)
    item = itemsize(plan.compute_dtype)
    rows = []
    for n, (term, prep) in enumerate(zip(plan.inputs, plan.preps)):
        if prep.summed or prep.diagonal:
            kind = "reduction" if prep.summed else "diagonal"
            # A reduction adds every element it reads once; a diagonal only copies.
            flops = prod(dict.fromkeys(term), sizes) if prep.summed else 0
            rows.append(Cost(f"prep {n}", (term,), prep.labels, kind, flops,
                             prod(term, sizes) * item, prod(prep.labels, sizes) * item,
                             prod(prep.labels, sizes)))
    for k, s in enumerate(plan.steps):
        rows.append(Cost(str(k), (s.lhs, s.rhs), s.output, s.kind, s.flops,
                         (prod(s.lhs, sizes) + prod(s.rhs, sizes)) * item, s.size * item, s.size))
    if plan.final != plan.output:
        n = prod(plan.output, sizes)
        rows.append(Cost("final", (plan.final,), plan.output, "transpose", 0, n * item, n * item, n))
    return rows
