"""How a plan is shown: the text report and the Graphviz tree, sliced plans included.

:func:`render` turns the per-step :func:`~.costs.costs` rows (operand
reductions, pairwise steps, a final transpose, with FLOPs, bytes moved and
arithmetic intensity) into the report that ``str(plan)`` and
``plan.report()`` show; a :class:`~.model.SlicedPlan` adds a ``slicing``
section naming every sliced label, and a sharded one a ``sharding`` section
(mesh, sharded labels, bytes per device, each collective and its bytes). Past ``_MAX_ROWS`` rows the table keeps
the costliest rows and adds a per-kind summary, so a 500-operand plan stays
readable, and :func:`brief` cuts a long spec (the whole one is in ``plan.spec``
and the JSON). :func:`to_dot` draws the contraction tree.

>>> import contract
>>> print(contract.plan("ij,jk->ik", (8, 16), (16, 4)))  # doctest: +ELLIPSIS
spec        ij,jk->ik
shapes      (8, 16), (16, 4)   float32 -> float32
...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .costs import Cost, costs, itemsize
from .shardfacts import communication, device_bytes, device_peak, idle_axes, local_slices

if TYPE_CHECKING:
    from .model import Plan, SlicedPlan

__all__ = ["brief", "human", "ratio", "render", "set_machine_lines", "to_dot", "versus"]

# How this machine runs a plan is not the planner's to know (it reads no
# host): the backend registers the function that adds those lines
# (contract/backend/policy.py's machine_lines) when contract is imported; a
# planner used alone reports the plan only.
_machine_lines: list[Callable[["Plan"], list[str]]] = [lambda plan: []]


def set_machine_lines(describe: Callable[["Plan"], list[str]]) -> None:
    """Have every report end its step table with ``describe(plan)``'s lines
    (the backend's account of how this machine runs each step)."""
    _machine_lines[0] = describe


# Past this many rows the table shows the costliest ones and a summary by kind.
_MAX_ROWS = 40
# A spec or a list of shapes longer than _WHOLE characters is cut after about _CUT.
_WHOLE, _CUT = 80, 60


def human(n: float, unit: str = "") -> str:
    """Short engineering notation: ``human(1.5e9, "B")`` → ``'1.50 GB'``.

    Past peta the prefixes run out: scientific notation instead.

    >>> human(1.5e9, "B"), human(512), human(3.04e16), human(3.04e19)
    ('1.50 GB', '512', '30.40 P', '3.04e+19')
    """
    if abs(n) >= 1e18:
        return f"{n:.2e}{' ' + unit if unit else ''}"
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {prefix}{unit}"
    return f"{n:.0f}{' ' + unit if unit else ''}"


def ratio(x: float) -> str:
    """A speedup factor: ``ratio(6.4)`` → ``'6.4x'``, huge ones in scientific notation.

    >>> ratio(6.4), ratio(4.2e37)
    ('6.4x', '4.2e+37x')
    """
    return f"{x:.1f}x" if x < 1e4 else f"{x:.2g}x"


def versus(flops: float, baseline: float, name: str) -> str:
    """``flops`` against a ``baseline`` count called ``name``, in words.

    >>> versus(100, 960, "naive"), versus(999, 1000, "as written"), versus(130, 100, "as written")
    ('9.6x fewer than naive', '0.1% fewer than as written', '1.3x more than as written')
    >>> versus(48, 48, "naive"), versus(1, 4.2e37, "naive")
    ('as many as naive', '4.2e+37x fewer than naive')
    """
    if flops == baseline:
        return f"as many as {name}"
    word = "more" if flops > baseline else "fewer"
    small, big = sorted((flops, baseline))
    if big < 1.1 * small:  # "1.0x fewer" would hide the difference
        return f"{100 * abs(baseline - flops) / baseline:.2g}% {word} than {name}"
    return f"{ratio(big / max(small, 1))} {word} than {name}"


def _cut(parts: list[str], sep: str) -> str:
    """``parts`` joined by ``sep``; past ``_WHOLE`` characters only the whole
    parts within ``_CUT`` (or the first part's start), then ``…``."""
    text = sep.join(parts)
    if len(text) <= _WHOLE:
        return text
    n, width = 0, len(parts[0])
    while width <= _CUT:
        n += 1
        width += len(sep) + len(parts[n])
    return sep.join(parts[:n]) + sep + "…" if n else text[:_CUT] + "…"


def brief(spec: str) -> str:
    """``spec`` as a report line shows it: whole up to 80 characters, else its
    first terms, ``…``, the output and the number of operands.

    >>> brief("ij,jk->ik")
    'ij,jk->ik'
    >>> letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    >>> brief(",".join(a + b for a, b in zip(letters, letters[1:])) + "->aZ")
    'ab,bc,cd,de,ef,fg,gh,hi,ij,jk,kl,lm,mn,no,op,pq,qr,rs,st,tu,…->aZ (51 operands)'
    """
    if len(spec) <= _WHOLE:
        return spec
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    return (f"{_cut(terms, ',')}{arrow}{_cut([output], '')}"
            f" ({len(terms)} operand{'s' if len(terms) != 1 else ''})")


def _labels(labels: tuple[str, ...], named: bool) -> str:
    return (" ".join(labels) if named else "".join(labels)) or "(scalar)"


def _table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                      for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]


def render(plan: "Plan | SlicedPlan") -> str:
    """The text report shown by ``str(plan)`` and ``plan.report()``.

    >>> import contract
    >>> print(render(contract.plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4))))
    spec        ij,jk,kl->il
    shapes      (8, 16), (16, 32), (32, 4)   float32 -> float32
    optimizer   auto (ran optimal)   path [(1, 2), (0, 1)]
    FLOPs       naive 49.15 k  planned 5.12 k  (9.6x fewer than naive)
    memory      largest intermediate 64 elements (256 B), peak 384 B beyond the inputs
    step  contraction  kind  FLOPs   read     written  FLOP/B  share
       0  jk,kl->jl    GEMM  4.10 k  2.56 kB  256 B      1.45  80.0%
       1  ij,jl->il    GEMM  1.02 k  768 B    128 B      1.14  20.0%
    """
    if plan.sliced or plan.mesh:
        return "\n".join([render(plan.base), *_slicing(plan), *_sharding(plan)])  # type: ignore
    named = any(len(l) > 1 for t in plan.inputs for l in t)
    item = itemsize(plan.compute_dtype)
    shapes = _cut([str(s) for s in plan.shapes], ", ")
    lines = [
        f"spec        {brief(plan.spec)}",
        f"shapes      {shapes}   {'/'.join(sorted(set(plan.dtypes)))} -> {plan.result_dtype}"
        + (f" (accumulates in {plan.compute_dtype})" if plan.compute_dtype != plan.result_dtype else ""),
        *([f"semiring    {plan.semiring}"] if plan.semiring != "sum-product" else []),
        f"optimizer   {plan.optimize}"
        + (f" (ran {plan.strategy})" if plan.strategy != plan.optimize else "")
        + f"   path {_path(plan)}",
        f"FLOPs       naive {human(plan.naive_flops)}  planned {human(plan.flops)}"
        f"  ({versus(plan.flops, plan.naive_flops, 'naive')})",
        f"memory      largest intermediate {human(plan.largest_intermediate)} elements"
        f" ({human(plan.largest_intermediate * item, 'B')}), peak {human(plan.peak_bytes, 'B')}"
        " beyond the inputs",
    ]
    rows = costs(plan)
    if not rows:
        lines.append("no work: the result is an operand as given")
        return "\n".join(lines)
    total = max(sum(c.flops for c in rows), 1)
    shown = rows
    if len(rows) > _MAX_ROWS:
        keep = set(sorted(range(len(rows)), key=lambda i: -rows[i].flops)[:_MAX_ROWS])
        shown = [c for i, c in enumerate(rows) if i in keep]
    table = [("step", "contraction", "kind", "FLOPs", "read", "written", "FLOP/B", "share")]
    for c in shown:
        expr = ",".join(_labels(t, named) for t in c.inputs) + "->" + _labels(c.output, named)
        table.append((c.name, expr, c.kind, human(c.flops), human(c.bytes_read, "B"),
                      human(c.bytes_written, "B"), f"{c.intensity:.2f}",
                      f"{100 * c.flops / total:.1f}%"))
    lines += _table(table, right={0, 6, 7})
    lines += _machine_lines[0](plan)
    if len(shown) < len(rows):
        lines.append(f"... {len(rows) - len(shown)} cheaper rows not shown; all {len(rows)} by kind:")
        lines += _summary(rows, total)
    return "\n".join(lines)


def _slicing(sp: "SlicedPlan") -> list[str]:
    """The report's slicing section: every sliced label, its chunks, FLOPs and memory."""
    chunks = ", ".join(
        f"{l} {dict(sp.base.sizes)[l]} -> {c} x {dict(sp.slice.sizes)[l]}"
        for l, c in zip(sp.labels, sp.counts)
    )
    budget = ("" if sp.memory_limit is None
              else f" (memory_limit {human(sp.memory_limit, 'B')})")
    if not sp.labels:
        return []
    where = "one lax.scan"
    if sp.mesh:
        each = local_slices(sp)
        where = (f"{each} per device on {sp.devices} devices"
                 + (" (one lax.scan each)" if each > 1 else ""))
    return [
        "slicing",
        f"  sliced      {chunks}",
        f"  slices      {sp.n_slices}, run as {where}",
        f"  FLOPs       {human(sp.flops)} in all, overhead {sp.overhead:.2f}x",
        f"  memory      peak {human(sp.peak_bytes, 'B')}{budget}: one slice and the"
        f" output accumulator, unsliced {human(sp.base.peak_bytes, 'B')}",
    ]


def _sharding(sp: "SlicedPlan") -> list[str]:
    """The report's sharding section: mesh, sharded labels, bytes per device and collectives."""
    if not sp.mesh:
        return []
    labels = ", ".join(f"{l} over {'/'.join(axes)}"
                       + ("" if l in sp.output else " (summed: partial sums)")
                       for l, axes in sp.shards) or "none (every operand whole)"
    idle = idle_axes(sp)
    lines = [
        "sharding",
        f"  mesh        {', '.join(f'{a} {n}' for a, n in sp.mesh)} ({sp.devices} devices)"
        + (f"; {', '.join(idle)} unused: the work repeats along it" if idle else ""),
        f"  labels      {labels}",
        f"  per device  operands {human(device_bytes(sp), 'B')},"
        f" peak {human(device_peak(sp), 'B')}",
    ]
    comm = communication(sp)
    if not comm:
        return lines + ["  collectives none"]
    rows = [(when, what, human(b, "B")) for when, what, b in comm]
    return lines + ["  collectives"] + ["    " + r for r in _table(rows, right={2})]


def _path(plan: "Plan") -> str:
    """The linear path, elided in the middle when long."""
    path = [tuple(p) for p in plan.path]
    if len(path) <= 12:
        return str(path)
    head = ", ".join(map(str, path[:6]))
    tail = ", ".join(map(str, path[-3:]))
    return f"[{head}, ... {len(path) - 9} more ..., {tail}]"


def _summary(rows: list[Cost], total: int) -> list[str]:
    by_kind: dict[str, list[Cost]] = {}
    for c in rows:
        by_kind.setdefault(c.kind, []).append(c)
    table = [("kind", "count", "FLOPs", "share", "largest output")]
    for kind, group in sorted(by_kind.items(), key=lambda kv: -sum(c.flops for c in kv[1])):
        flops = sum(c.flops for c in group)
        table.append((kind, str(len(group)), human(flops), f"{100 * flops / total:.1f}%",
                      human(max(c.size for c in group))))
    return ["  " + line for line in _table(table, right={1, 3})]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(plan: "Plan | SlicedPlan") -> str:
    """Graphviz ``dot`` text of the contraction tree: operands are boxes, each
    step an ellipse labelled with its kind and FLOPs, edges carry the labels."""
    named = any(len(l) > 1 for t in plan.inputs for l in t)
    join = " ".join if named else "".join
    title = brief(plan.spec)
    if plan.sliced:
        sizes = dict(plan.sizes)
        title += "\\nsliced " + ", ".join(
            f"{l} {sizes[l]} -> {c} x {sizes[l] // c}"
            for l, c in zip(plan.labels, plan.counts))  # type: ignore[union-attr]
    lines = ["digraph plan {", "  rankdir=BT;", f"  label={_quote(title)};",
             "  node [fontname=Helvetica];"]
    live = []
    for n, (labels, shape) in enumerate(zip(plan.inputs, plan.shapes)):
        lines.append(f"  in{n} [shape=box, label={_quote(f'{n}: {join(labels)} {shape}')}];")
        live.append(f"in{n}")
    one = plan.slice if plan.sliced else plan  # type: ignore[union-attr]
    for c in costs(one):
        if c.name.startswith("prep"):
            n = int(c.name.split()[1])
            lines.append(f"  p{n} [label={_quote(f'{c.kind} -> {join(c.output)}')}];")
            lines.append(f"  in{n} -> p{n};")
            live[n] = f"p{n}"
    for k, step in enumerate(one.steps):
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
