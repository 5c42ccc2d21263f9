"""Build one frozen :class:`~.model.Plan`: prepared operands, pairwise steps, costs.

Planning is plain Python on static shapes. Each operand is first *prepared*
(diagonals of repeated labels taken, labels that no other operand or the
output needs summed away), then a path optimizer orders the pairwise
contractions of the prepared operands. :func:`build` touches no cache: the
slice search costs its candidates with it; :mod:`.make` caches.

>>> from contract.spec import parse
>>> p = build(parse("ij,jk,kl->il").bind([(8, 16), (16, 32), (32, 4)]),
...           ("float32",) * 3, "float32", "auto")
>>> p.path, [s.kind for s in p.steps]
(((1, 2), (0, 1)), ['GEMM', 'GEMM'])
"""

from __future__ import annotations

import time
from typing import Sequence

from ..spec import Bound
from .costs import compute_dtype, held, itemsize, live_peak, prod, step_flops
from .model import Plan, Prep, Step
from .search import search

__all__ = ["build"]


def build(bound: Bound, dtypes: tuple[str, ...], result_dtype: str, optimize: object) -> Plan:
    """Plan ``bound`` with ``optimize``, uncached (labels as they are in ``bound``).

    >>> from contract.spec import parse
    >>> build(parse("ij,jk->ik").bind([(2, 3), (3, 4)]), ("float32",) * 2, "float32", "auto").flops
    48
    """
    start = time.perf_counter()
    sizes = dict(bound.sizes)
    cdtype = compute_dtype(result_dtype)
    item = itemsize(cdtype)
    preps = _prepare(bound)
    terms = [p.labels for p in preps]
    path, name, strategy = search(optimize, terms, bound.output, sizes, None)
    steps, final = _steps(terms, bound.output, sizes, path)
    peak = live_peak(held(bound.inputs, preps, sizes), [(s.operands, s.size) for s in steps],
                     prod(bound.output, sizes), final != bound.output)
    prep_flops = sum(prod(t, sizes) for t, p in zip(bound.inputs, preps) if p.summed)
    flops = prep_flops + sum(s.flops for s in steps)
    shapes = tuple(tuple(sizes[l] for l in t) for t in bound.inputs)
    return Plan(
        spec=str(bound.spec), shapes=shapes, dtypes=dtypes, result_dtype=result_dtype,
        compute_dtype=cdtype, inputs=bound.inputs, output=bound.output,
        sizes=tuple(sizes.items()), squeeze=bound.squeeze, preps=preps, steps=steps,
        path=tuple(tuple(p) for p in path), final=final, optimize=name,
        naive_flops=_naive_flops(bound), flops=flops,
        largest_intermediate=max((s.size for s in steps), default=prod(final, sizes)),
        peak_bytes=peak * item, planning_seconds=time.perf_counter() - start,
        strategy=strategy,
    )


def _prepare(bound: Bound) -> tuple[Prep, ...]:
    counts: dict[str, int] = {}
    for term in bound.inputs:
        for label in set(term):
            counts[label] = counts.get(label, 0) + 1
    keep = set(bound.output)
    preps = []
    for term in bound.inputs:
        labels = tuple(dict.fromkeys(term))  # first occurrences, in order
        diagonal = tuple(l for l in labels if term.count(l) > 1)
        summed = tuple(l for l in labels if counts[l] == 1 and l not in keep)
        preps.append(Prep(tuple(l for l in labels if l not in summed), diagonal, summed))
    return tuple(preps)


def _kind(lhs_free: bool, rhs_free: bool, contracted: bool, batch: bool) -> str:
    if not contracted:
        return "Hadamard" if batch else "outer"
    base = {(True, True): "GEMM", (False, False): "dot"}.get((lhs_free, rhs_free), "GEMV")
    return f"batched {base}" if batch else base


def _steps(
    terms: list[tuple[str, ...]], output: tuple[str, ...], sizes: dict[str, int],
    path: Sequence[tuple[int, ...]],
) -> tuple[tuple[Step, ...], tuple[str, ...]]:
    terms = list(terms)
    steps = []
    for k, entry in enumerate(path):
        i, j = sorted(entry)
        a, b = terms[i], terms[j]
        rest = terms[:i] + terms[i + 1 : j] + terms[j + 1 :]
        keep = set(output).union(*rest)
        last = k == len(path) - 1
        shared = [l for l in a if l in b]
        contracted = tuple(l for l in shared if l not in keep)
        batch = [l for l in shared if l in keep]
        lhs, rhs, swap = a, b, False
        if last:
            # Order batch labels and operands so the result is already in the
            # output layout when that is possible: no final transpose.
            batch.sort(key=lambda l: output.index(l))
            for flip, (x, y) in ((False, (a, b)), (True, (b, a))):
                layout = (*batch, *(l for l in x if l not in y), *(l for l in y if l not in x))
                if layout == output:
                    lhs, rhs, swap = x, y, flip
                    break
        free_l = tuple(l for l in lhs if l not in rhs)
        free_r = tuple(l for l in rhs if l not in lhs)
        out = (*batch, *free_l, *free_r)
        union = (*out, *contracted)
        flops = step_flops(union, sizes, bool(contracted))
        steps.append(Step(
            (i, j), swap, lhs, rhs, out, contracted, tuple(batch),
            _kind(bool(free_l), bool(free_r), bool(contracted), bool(batch)),
            flops, prod(out, sizes),
        ))
        terms = rest + [out]
    final = terms[0] if terms else ()
    return tuple(steps), final


def _naive_flops(bound: Bound) -> int:
    labels = set().union(*bound.inputs) if bound.inputs else set()
    inner = bool(labels - set(bound.output))
    return prod(tuple(labels), bound.sizes) * max(1, len(bound.inputs) - 1 + inner)


