"""The planner's data: :class:`Prep`, :class:`Step`, :class:`Plan`, :class:`SlicedPlan`.

All four are frozen dataclasses, a pure function of (spec, shapes, dtypes,
options). :class:`Plan` and :class:`SlicedPlan` share one explicit interface,
:class:`PlanView` — the attributes a caller, the report, the JSON format and
the backend read — so a sliced plan never passes for its unsliced base.

>>> from contract.planner import make_plan, slice_plan
>>> from contract.spec import parse
>>> p = make_plan(parse("ij,jk->ik").bind([(8, 6), (6, 4)]), ("float32",) * 2, "float32")
>>> sp = slice_plan(p, {"j": 3})
>>> Plan.from_json(sp.to_json()) == sp, sp.sliced, p.sliced
(True, ('j',), ())
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

from ..errors import ContractError

__all__ = ["FORMAT", "Plan", "PlanView", "Prep", "SlicedPlan", "Step", "load"]

# The JSON layout's version; bumped whenever it changes. Format 1 (plain plans
# only, before SlicedPlan could be saved) is still read.
FORMAT = 2


@dataclass(frozen=True)
class Prep:
    """What happens to one operand before the pairwise steps.

    ``diagonal`` lists labels repeated in the operand (taken as diagonals);
    ``summed`` lists labels no other operand or the output needs (reduced
    first); ``labels`` is the operand's layout afterwards.
    """

    labels: tuple[str, ...]
    diagonal: tuple[str, ...]
    summed: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    """One pairwise contraction (one ``lax.dot_general``).

    ``operands`` are positions in the current operand list (opt_einsum's
    linear path entry); the result is appended to the end of that list.
    ``lhs``/``rhs`` are the operands' labels, ``swap`` says the second
    listed operand is passed first, and ``output`` is the result's layout:
    batch labels, then the left's free labels, then the right's.
    """

    operands: tuple[int, int]
    swap: bool
    lhs: tuple[str, ...]
    rhs: tuple[str, ...]
    output: tuple[str, ...]
    contracted: tuple[str, ...]
    batch: tuple[str, ...]
    kind: str
    flops: int
    size: int


class PlanView:
    """What every plan offers, sliced or not; the inspection methods live here.

    Subclasses provide the attributes (``spec``, ``shapes``, ``dtypes``,
    ``result_dtype``, ``compute_dtype``, ``inputs``, ``output``, ``sizes``,
    ``squeeze``, ``preps``, ``path``, ``steps``, ``final``, ``optimize``, ``strategy``,
    ``naive_flops``, ``flops``, ``largest_intermediate``, ``peak_bytes``,
    ``planning_seconds``), plus ``sliced`` (the labels cut into slices,
    empty for a plain plan) and ``n_slices``.
    """

    spec: str
    flops: int
    naive_flops: int

    @property
    def speedup(self) -> float:
        """Naive FLOPs over planned FLOPs."""
        return self.naive_flops / max(self.flops, 1)

    def __str__(self) -> str:
        from .report import render

        return render(self)  # type: ignore[arg-type]

    def report(self) -> str:
        """The text report (same as ``str(plan)``)."""
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-ready data (see :meth:`to_json`)."""
        raise NotImplementedError

    def to_json(self, indent: int | None = None) -> str:
        """Every field as JSON; ``Plan.from_json`` restores an equal plan (sliced or not)."""
        return json.dumps({"format": FORMAT, **self.to_dict()}, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Plan | SlicedPlan":
        """Rebuild a plan saved by :meth:`to_json`: a Plan or a SlicedPlan, as saved."""
        return load(text)

    def to_dot(self) -> str:
        """The contraction tree as Graphviz ``dot`` text (sliced labels marked)."""
        from .report import to_dot

        return to_dot(self)  # type: ignore[arg-type]

    def plot(self, path: Any = None, **kw: Any) -> Any:
        """Draw the tree and per-step costs (matplotlib); save to ``path`` if given."""
        from .picture import plot

        return plot(self, path, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Plan(PlanView):
    """A contraction plan: a pure function of (spec, shapes, dtypes, options).

    ``path`` is opt_einsum's linear path over the *prepared* operands, so
    ``opt_einsum.contract_path(spec, *shapes, optimize=plan.path)`` replays it.
    ``shapes`` are the operands' shapes once broadcast size-1 axes are
    squeezed. ``flops`` counts multiply-adds as 2; ``peak_bytes`` is the
    most the contraction holds at once beyond the caller's inputs (its
    intermediates and the output), in the compute dtype
    (:mod:`contract.planner.costs`). ``optimize`` names the
    option asked for; ``strategy`` the optimizer that actually ran.
    """

    spec: str
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    result_dtype: str
    compute_dtype: str
    inputs: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]
    sizes: tuple[tuple[str, int], ...]
    squeeze: tuple[tuple[int, ...], ...]
    preps: tuple[Prep, ...]
    steps: tuple[Step, ...]
    path: tuple[tuple[int, ...], ...]
    final: tuple[str, ...]
    optimize: str
    naive_flops: int
    flops: int
    largest_intermediate: int
    peak_bytes: int
    planning_seconds: float = field(default=0.0, compare=False)
    strategy: str = ""
    # The semiring its steps run in (contract.semiring): a name, so plans stay
    # data; the same path serves every semiring.
    semiring: str = "sum-product"

    # Not fields: what a plain plan answers for the slicing and sharding parts of PlanView.
    sliced = ()
    n_slices = 1
    mesh = ()
    shards = ()

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "plan"}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("preps", "steps"):
                value = [{g.name: getattr(x, g.name) for g in fields(x)} for x in value]
            doc[f.name] = value
        return doc

    def walk(self, arrays: list[Any], pair: Callable[[Any, Any, Step], Any]) -> Any:
        """Run the pairwise steps over ``arrays`` (one per prepared operand):
        ``pair(a, b, step)`` makes each step's result from its operands in
        ``dot_general`` order (``swap`` applied); returns the last array, laid
        out as ``final``. Every executor (JAX, a semiring, the host) walks so.

        >>> from contract.planner import make_plan
        >>> from contract.spec import parse
        >>> p = make_plan(parse("ab,bc,cd->ad").bind([(2, 8), (8, 8), (8, 64)]), ("float32",) * 3,
        ...               "float32")
        >>> p.walk(["x", "y", "z"], lambda a, b, step: f"({a}{b})")
        '((xy)z)'
        """
        arrays = list(arrays)
        for step in self.steps:
            i, j = step.operands
            a, b = (arrays[j], arrays[i]) if step.swap else (arrays[i], arrays[j])
            out = pair(a, b, step)
            arrays = arrays[:i] + arrays[i + 1 : j] + arrays[j + 1 :] + [out]
        (result,) = arrays
        return result

    def relabel(self, names: dict[str, str], spec: str) -> "Plan":
        """The same plan with labels renamed by ``names`` and spec text ``spec``."""

        def r(labels: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(names[l] for l in labels)

        steps = tuple(replace(s, lhs=r(s.lhs), rhs=r(s.rhs), output=r(s.output),
                              contracted=r(s.contracted), batch=r(s.batch)) for s in self.steps)
        preps = tuple(Prep(r(p.labels), r(p.diagonal), r(p.summed)) for p in self.preps)
        return replace(self, spec=spec, inputs=tuple(map(r, self.inputs)), output=r(self.output),
                       sizes=tuple((names[l], s) for l, s in self.sizes), preps=preps,
                       steps=steps, final=r(self.final))


@dataclass(frozen=True)
class SlicedPlan(PlanView):
    """A plan run as ``n_slices`` slices, each fitting the memory budget.

    ``base`` is the unsliced plan; ``slice`` the plan of one slice (sliced
    labels have the chunk size; it accumulates in the compute dtype).
    ``labels``/``counts`` name the sliced labels and how many slices each is
    cut into. ``peak_bytes`` has the unsliced plan's meaning (bytes held beyond the
    caller's inputs): one slice's copies of the inputs it cuts, its
    intermediates, and the full-size output accumulator.
    ``devices`` > 1 means the slices are shared by a mesh's devices. A
    sharded plan (:mod:`.sharding`) also names the ``mesh`` (axis names and
    sizes), the ``shards`` (each sharded label and the mesh axes it is split
    over: its slices are dealt out in blocks along them) and the layout the
    operands were ``given`` in (mesh axes per operand axis, squeezed axes
    dropped).
    The spec, shapes, dtypes and path are the base plan's; ``steps`` and
    ``largest_intermediate`` are one slice's; ``flops`` counts all slices.
    """

    base: Plan
    slice: Plan
    labels: tuple[str, ...]
    counts: tuple[int, ...]
    peak_bytes: int
    memory_limit: int | None
    devices: int = 1
    mesh: tuple[tuple[str, int], ...] = ()
    shards: tuple[tuple[str, tuple[str, ...]], ...] = ()
    given: tuple[tuple[tuple[str, ...], ...], ...] = ()

    # The shared interface, stated explicitly (no attribute forwarding).
    spec = property(lambda self: self.base.spec)
    shapes = property(lambda self: self.base.shapes)
    dtypes = property(lambda self: self.base.dtypes)
    result_dtype = property(lambda self: self.base.result_dtype)
    compute_dtype = property(lambda self: self.base.compute_dtype)
    inputs = property(lambda self: self.base.inputs)
    output = property(lambda self: self.base.output)
    sizes = property(lambda self: self.base.sizes)
    squeeze = property(lambda self: self.base.squeeze)
    path = property(lambda self: self.slice.path)
    preps = property(lambda self: self.slice.preps)
    steps = property(lambda self: self.slice.steps)
    final = property(lambda self: self.slice.final)
    optimize = property(lambda self: self.base.optimize)
    strategy = property(lambda self: self.base.strategy)
    naive_flops = property(lambda self: self.base.naive_flops)
    largest_intermediate = property(lambda self: self.slice.largest_intermediate)
    planning_seconds = property(lambda self: self.base.planning_seconds)
    semiring = property(lambda self: self.base.semiring)
    sliced = property(lambda self: self.labels)

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

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "sliced", "base": self.base.to_dict(), "slice": self.slice.to_dict(),
                "labels": self.labels, "counts": self.counts, "peak_bytes": self.peak_bytes,
                "memory_limit": self.memory_limit, "devices": self.devices, "mesh": self.mesh,
                "shards": self.shards, "given": self.given}

    def relabel(self, names: dict[str, str], spec: str) -> "SlicedPlan":
        """The same sliced plan with labels renamed by ``names``."""
        return replace(self, base=self.base.relabel(names, spec),
                       slice=self.slice.relabel(names, spec),
                       labels=tuple(names[l] for l in self.labels),
                       shards=tuple((names[l], axes) for l, axes in self.shards))


def _tuples(x: Any) -> Any:
    """JSON lists back to the nested tuples a plan holds."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def _plan(doc: dict[str, Any]) -> Plan:
    values = {f.name: _tuples(doc[f.name]) for f in fields(Plan) if f.name in doc}
    values["preps"] = tuple(Prep(**{k: _tuples(v) for k, v in p.items()}) for p in doc["preps"])
    values["steps"] = tuple(Step(**{k: _tuples(v) for k, v in s.items()}) for s in doc["steps"])
    return Plan(**values)


def _from_dict(doc: dict[str, Any]) -> Plan | SlicedPlan:
    if doc.get("kind", "plan") == "plan":
        return _plan(doc)
    if doc["kind"] != "sliced":
        raise KeyError(f"kind {doc['kind']!r}")
    return SlicedPlan(_plan(doc["base"]), _plan(doc["slice"]), _tuples(doc["labels"]),
                      _tuples(doc["counts"]), doc["peak_bytes"], doc["memory_limit"],
                      doc.get("devices", 1), _tuples(doc.get("mesh", [])),
                      _tuples(doc.get("shards", [])), _tuples(doc.get("given", [])))


def load(text: str) -> Plan | SlicedPlan:
    """Rebuild a plan saved by ``to_json``; raises ContractError on a bad document.

    >>> load("[]")
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: not a saved plan of format 2: format is 'list'
    """
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as e:
        raise ContractError(f"not a saved plan: invalid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") not in (1, FORMAT):
        raise ContractError(
            f"not a saved plan of format {FORMAT}: format is "
            f"{doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r}"
        )
    try:
        return _from_dict(doc)
    except (KeyError, TypeError, AttributeError) as e:
        raise ContractError(f"saved plan is incomplete or malformed: {e!r}") from None
