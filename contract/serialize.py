"""A :class:`~contract.plan.Plan` as JSON (exact round trip) or Graphviz text,
and the check that lets a saved plan run again without re-planning.

>>> import contract
>>> p = contract.plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4))
>>> from_json(to_json(p)) == p
True
>>> print(to_dot(p).splitlines()[0])
digraph plan {
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any, Sequence

from .errors import ContractError
from .plan import Plan, Prep, Step, _rename
from .report import costs, human
from .spec import Bound

__all__ = ["to_json", "from_json", "to_dot", "check_saved", "FORMAT"]

# Bumped whenever the JSON layout changes; from_json refuses other formats.
FORMAT = 1


def _tuples(x: Any) -> Any:
    """JSON lists back to the nested tuples a Plan holds."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def to_json(plan: Plan, indent: int | None = None) -> str:
    """The plan as a JSON document (every field, so :func:`from_json` restores it)."""
    doc: dict[str, Any] = {"format": FORMAT}
    for f in fields(plan):
        value = getattr(plan, f.name)
        if f.name == "preps":
            value = [{g.name: getattr(p, g.name) for g in fields(Prep)} for p in value]
        elif f.name == "steps":
            value = [{g.name: getattr(s, g.name) for g in fields(Step)} for s in value]
        doc[f.name] = value
    return json.dumps(doc, indent=indent)


def from_json(text: str) -> Plan:
    """Rebuild a plan saved by :func:`to_json`; raises ContractError on a bad document."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as e:
        raise ContractError(f"not a saved plan: invalid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ContractError(
            f"not a saved plan of format {FORMAT}: format is "
            f"{doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r}"
        )
    try:
        values = {f.name: _tuples(doc[f.name]) for f in fields(Plan)}
        values["preps"] = tuple(Prep(**{k: _tuples(v) for k, v in p.items()})
                                for p in doc["preps"])
        values["steps"] = tuple(Step(**{k: _tuples(v) for k, v in s.items()})
                                for s in doc["steps"])
        return Plan(**values)
    except (KeyError, TypeError, AttributeError) as e:
        raise ContractError(f"saved plan is incomplete or malformed: {e!r}") from None


def check_saved(plan: Plan, bound: Bound, dtypes: Sequence[str], result_dtype: str) -> Plan:
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
    if all(a == b for a, b in names.items()) and plan.spec == str(bound.spec):
        return plan
    return _rename(plan, names, str(bound.spec))


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(plan: Plan) -> str:
    """Graphviz ``dot`` text of the contraction tree: operands are boxes, each
    step an ellipse labelled with its kind and FLOPs, edges carry the labels."""
    named = any(len(l) > 1 for t in plan.inputs for l in t)
    join = " ".join if named else "".join
    lines = ["digraph plan {", "  rankdir=BT;", f"  label={_quote(plan.spec)};",
             "  node [fontname=Helvetica];"]
    live = []
    for n, (labels, shape) in enumerate(zip(plan.inputs, plan.shapes)):
        lines.append(f"  in{n} [shape=box, label={_quote(f'{n}: {join(labels)} {shape}')}];")
        live.append(f"in{n}")
    for c in costs(plan):
        if c.name.startswith("prep"):
            n = int(c.name.split()[1])
            lines.append(f"  p{n} [label={_quote(f'{c.kind} -> {join(c.output)}')}];")
            lines.append(f"  in{n} -> p{n};")
            live[n] = f"p{n}"
    for k, step in enumerate(plan.steps):
        i, j = step.operands
        node = f"s{k}"
        label = f"{k}: {step.kind}\\n{human(step.flops)} FLOPs"
        lines.append(f"  {node} [label={_quote(label)}];")
        for src, labels in ((live[i], step.lhs if not step.swap else step.rhs),
                            (live[j], step.rhs if not step.swap else step.lhs)):
            lines.append(f"  {src} -> {node} [label={_quote(join(labels) or '()')}];")
        live = live[:i] + live[i + 1 : j] + live[j + 1 :] + [node]
    lines.append(f"  out [shape=box, style=bold, label={_quote(f'out: {join(plan.output)}')}];")
    if live:
        lines.append(f"  {live[0]} -> out;")
    lines.append("}")
    return "\n".join(lines)
