"""Turn a bound spec into a frozen :class:`Plan`: pairwise steps and their costs.

Planning is plain Python on static shapes. Each operand is first *prepared*
(diagonals of repeated labels taken, labels that no other operand or the
output needs summed away), then a path optimizer orders the pairwise
contractions of the prepared operands. Plans are cached in a bounded LRU keyed
on the canonical (first-appearance relabelled) spec, shapes, dtypes and
options, so ``"ij,jk->ik"`` and ``"ab,bc->ac"`` share one entry.

>>> from contract.spec import parse
>>> p = make_plan(parse("ij,jk,kl->il").bind([(8, 16), (16, 32), (32, 4)]),
...               ("float32",) * 3, "float32")
>>> p.path, [s.kind for s in p.steps]
(((1, 2), (0, 1)), ['GEMM', 'GEMM'])
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np
import opt_einsum
from opt_einsum import path_random

from . import hq
from .errors import ContractError
from .spec import Bound

__all__ = ["Prep", "Step", "Plan", "make_plan", "OPTIMIZERS", "auto_strategy", "compute_dtype",
           "path_cost", "plan_cache_info"]

# Named optimizers; "auto" and "auto-hq" are ours (see _auto and contract.hq),
# the rest are opt_einsum's. "measure" is handled in _build (contract.measure).
OPTIMIZERS: dict[str, Callable[..., Any]] = {
    "greedy": opt_einsum.paths.greedy,
    "optimal": opt_einsum.paths.optimal,
    "dp": opt_einsum.paths.dynamic_programming,
    "branch-all": opt_einsum.paths.get_path_fn("branch-all"),
    "branch-2": opt_einsum.paths.get_path_fn("branch-2"),
    "branch-1": opt_einsum.paths.get_path_fn("branch-1"),
    "random-greedy": path_random.random_greedy,
    "random-greedy-128": path_random.random_greedy_128,
    "auto-hq": hq.optimize,  # ours: annealed greedy/bisection trees + reconfiguration
    "annealed-greedy": hq.annealed_greedy,  # ours: auto's choice past dp's range
}


# dp's work grows with the number of connected sub-networks it must split and
# with how many ways each splits (about 2**average degree). Measured: a fully
# connected 8-operand network (255 x 2**7) plans in ~0.14 s, 9 operands
# (511 x 2**8) in ~0.6 s; sparse 12-operand networks with ~3000 sub-networks
# and degree ~5 in ~0.1 s. Past this budget auto switches to greedy.
_DP_MAX_WORK = 40_000


def _connected_subsets(inputs: Sequence[frozenset], cap: int) -> int:
    """Count connected sub-networks (operands linked by shared labels), up to ``cap + 1``.

    Enumerates each connected vertex set once, from its smallest member
    (Wernicke's ESU), and stops as soon as the count passes ``cap``.

    >>> _connected_subsets([frozenset("ab"), frozenset("bc"), frozenset("cd")], 100)
    6
    """
    n = len(inputs)
    nbr = [{b for b in range(n) if b != a and inputs[a] & inputs[b]} for a in range(n)]
    count = 0

    def extend(border: set, ext: set, v: int) -> bool:
        nonlocal count
        count += 1
        if count > cap:
            return False
        ext = set(ext)
        while ext:
            w = ext.pop()
            grown = ext | {u for u in nbr[w] if u > v and u not in border}
            if not extend(border | nbr[w], grown, v):
                return False
        return True

    for v in range(n):
        if not extend(nbr[v] | {v}, {u for u in nbr[v] if u > v}, v):
            break
    return count


def auto_strategy(inputs: Sequence[frozenset]) -> str:
    """The optimizer ``optimize="auto"`` runs for these (prepared) operand labels.

    Exhaustive ``optimal`` search for up to 4 operands; ``dp`` up to 12
    operands while its estimated work (connected sub-networks times
    2**average degree) stays small; ``annealed-greedy`` (a greedy tree
    improved by a short simulated annealing, see ``contract.hq``) otherwise.
    opt_einsum's ``optimal`` takes seconds at 10 operands and ``dp`` tens of
    seconds on a dense 12-operand network; annealing is linear in its moves.

    >>> auto_strategy([frozenset("ab"), frozenset("bc")])
    'optimal'
    >>> auto_strategy([frozenset(c + d) for c, d in zip("abcdefg", "bcdefgh")])
    'dp'
    """
    n = len(inputs)
    if n <= 4:
        return "optimal"
    if n <= 12:
        degree = sum(bool(inputs[i] & inputs[j]) for i in range(n) for j in range(n) if i != j) / n
        splits = 2.0**degree
        if _connected_subsets(inputs, int(_DP_MAX_WORK / splits)) * splits <= _DP_MAX_WORK:
            return "dp"
    return "annealed-greedy"


def _sampled_greedy(inputs: list, output: set, sizes: dict, memory_limit: int | None) -> Any:
    """Greedy plus randomized greedy trials within a small time budget.

    Plain greedy can be far off on networks with many equal-cost choices:
    on a 24-operand periodic MPS norm (bond 32) it finds 8.9e8 FLOPs where
    randomized trials find 4.0e7 in ~40 ms. opt_einsum's first trial is
    the plain greedy path, so this is never worse than greedy. Trials shrink
    as networks grow so planning stays well under a second.

    >>> _sampled_greedy([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...                 {"a": 2, "b": 3, "c": 4, "d": 5}, None)
    [(0, 1), (0, 1)]
    """
    trials = max(4, min(32, 2048 // max(len(inputs), 1)))
    search = path_random.RandomGreedy(max_repeats=trials)
    # RandomGreedy ranks its trials with a jittered cost, so plain greedy is
    # not always among them: keep whichever path our own count finds cheaper.
    candidates = [opt_einsum.paths.greedy(inputs, output, sizes, memory_limit),
                  search(inputs, output, sizes, memory_limit)]
    return min(candidates, key=lambda path: path_cost(inputs, output, sizes, path))


def path_cost(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
               path: Sequence[Sequence[int]]) -> int:
    """Total size of every pairwise step's label union (FLOPs up to a factor 2).

    >>> path_cost([frozenset("ab"), frozenset("bc")], frozenset("ac"), {"a": 2, "b": 3, "c": 4}, [(0, 1)])
    24
    """
    terms = list(inputs)
    cost = 0
    for entry in path:
        picked = [terms[i] for i in entry]
        terms = [t for i, t in enumerate(terms) if i not in entry]
        union = frozenset().union(*picked)
        cost += math.prod(sizes[l] for l in union)
        terms.append(union & (output.union(*terms)))
    return cost


def _auto(inputs: list, output: set, sizes: dict, memory_limit: int | None) -> Any:
    """``optimize="auto"``: see :func:`auto_strategy`; planning time never explodes."""
    return OPTIMIZERS[auto_strategy(inputs)](inputs, output, sizes, memory_limit)


OPTIMIZERS["auto"] = _auto
OPTIMIZERS["sampled-greedy"] = _sampled_greedy
_ALIASES = {True: "auto", "dynamic-programming": "dp", "eager": "greedy"}


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


@dataclass(frozen=True)
class Plan:
    """A contraction plan: a pure function of (spec, shapes, dtypes, options).

    ``path`` is opt_einsum's linear path over the *prepared* operands, so
    ``opt_einsum.contract_path(spec, *shapes, optimize=plan.path)`` replays it.
    ``shapes`` are the operands' shapes once broadcast size-1 axes are
    squeezed. ``flops`` counts multiply-adds as 2; ``peak_bytes`` is the largest total
    of live arrays (inputs included) at any step, in the compute dtype.
    ``optimize`` names the option asked for; ``strategy`` the optimizer that
    actually ran (``"auto"`` picks one: see :func:`auto_strategy`).
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

    @property
    def speedup(self) -> float:
        """Naive FLOPs over planned FLOPs."""
        return self.naive_flops / max(self.flops, 1)

    def __str__(self) -> str:
        from .report import render

        return render(self)

    # Inspection: thin delegates to contract.report / serialize / picture.
    def report(self) -> str:
        """The text report (same as ``str(plan)``)."""
        return str(self)

    def to_json(self, indent: int | None = None) -> str:
        """Every field as JSON; ``Plan.from_json`` restores an equal plan."""
        from .serialize import to_json

        return to_json(self, indent)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        """Rebuild a plan saved by :meth:`to_json`."""
        from .serialize import from_json

        return from_json(text)

    def to_dot(self) -> str:
        """The contraction tree as Graphviz ``dot`` text."""
        from .serialize import to_dot

        return to_dot(self)

    def plot(self, path: Any = None, **kw: Any) -> Any:
        """Draw the tree and per-step costs (matplotlib); save to ``path`` if given."""
        from .picture import plot

        return plot(self, path, **kw)


def compute_dtype(result: str) -> str:
    """The dtype a contraction accumulates in for a given result dtype.

    >>> compute_dtype("bfloat16"), compute_dtype("int8"), compute_dtype("bool")
    ('float32', 'int32', 'int32')
    """
    dt = np.dtype(result) if result != "bfloat16" else None
    if dt is None or result == "float16":
        return "float32"
    if dt.kind == "b":
        return "int32"
    if dt.kind in "iu" and dt.itemsize < 4:
        return "int32" if dt.kind == "i" else "uint32"
    return result


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


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


def _prod(labels: Sequence[str], sizes: dict[str, int]) -> int:
    return math.prod(sizes[l] for l in labels)


def _kind(lhs_free: bool, rhs_free: bool, contracted: bool, batch: bool) -> str:
    if not contracted:
        return "Hadamard" if batch else "outer"
    base = {(True, True): "GEMM", (False, False): "dot"}.get((lhs_free, rhs_free), "GEMV")
    return f"batched {base}" if batch else base


def _pairwise(path: Sequence[Sequence[int]], n: int) -> list[tuple[int, int]]:
    """Split n-ary path entries into pairwise ones (left to right).

    >>> _pairwise([(0, 1, 2)], 3)
    [(0, 1), (0, 1)]
    """
    out: list[tuple[int, int]] = []
    for entry in path:
        entry = tuple(sorted(entry))
        if len(entry) == 1:
            continue  # single-operand entries: preparation already reduced it
        out.append((entry[0], entry[1]))
        n -= 1
        # Each further operand meets the previous result, appended last; it
        # shifted down by the operands removed before it.
        for k, nxt in enumerate(entry[2:]):
            out.append((nxt - 2 - k, n - 1))
            n -= 1
    return out


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
        flops = _prod(union, sizes) * (2 if contracted else 1)
        steps.append(Step(
            (i, j), swap, lhs, rhs, out, contracted, tuple(batch),
            _kind(bool(free_l), bool(free_r), bool(contracted), bool(batch)),
            flops, _prod(out, sizes),
        ))
        terms = rest + [out]
    final = terms[0] if terms else ()
    return tuple(steps), final


def _naive_flops(bound: Bound) -> int:
    labels = set().union(*bound.inputs) if bound.inputs else set()
    inner = bool(labels - set(bound.output))
    return _prod(tuple(labels), bound.sizes) * max(1, len(bound.inputs) - 1 + inner)


def _unknown(optimize: Any) -> ContractError:
    return ContractError(
        f"unknown optimize option {optimize!r}; valid options are "
        + ", ".join(repr(k) for k in sorted([*OPTIMIZERS, "measure"]))
        + ", False, a saved Plan, or an explicit path such as [(0, 1), (0, 1)]"
    )


def _search(optimize: Any, terms: list[tuple[str, ...]], output: tuple[str, ...],
            sizes: dict[str, int], limit: int | None) -> tuple[list[tuple[int, int]], str, str]:
    """The pairwise path, the option's name and the optimizer that ran."""
    n = len(terms)
    if isinstance(optimize, str) and _ALIASES.get(optimize, optimize) not in OPTIMIZERS:
        raise _unknown(optimize)  # checked even when there is nothing to order
    if n < 2:
        return [], "trivial", "trivial"
    if optimize is False:
        # No search: contract left to right, as written.
        return [(0, 1)] + [(0, n - 1 - k) for k in range(1, n - 1)], "none", "none"
    if isinstance(optimize, str) or optimize is True:
        name = _ALIASES.get(optimize, optimize)
        if not isinstance(name, str) or name not in OPTIMIZERS:
            raise _unknown(optimize)
        # opt_einsum's optimizers take labels as sets of single symbols.
        sym = {l: opt_einsum.get_symbol(k) for k, l in enumerate(sizes)}
        ins = [frozenset(sym[l] for l in t) for t in terms]
        strategy = auto_strategy(ins) if name == "auto" else name
        # A size-0 label makes every path cost nothing, which trips opt_einsum's
        # dp ("no contraction found"); plan as if it were 1: any path is right.
        path = OPTIMIZERS[strategy](ins, frozenset(sym[l] for l in output),
                                    {sym[l]: max(s, 1) for l, s in sizes.items()}, limit)
        return _pairwise(path, n), name, strategy
    if optimize is None or not hasattr(optimize, "__iter__"):
        raise _unknown(optimize)
    return _explicit(optimize, n), "explicit", "explicit"


def _explicit(optimize: Any, n: int) -> list[tuple[int, int]]:
    entries = list(optimize)
    if entries and entries[0] == "einsum_path":  # numpy.einsum_path's format
        entries = entries[1:]
    remaining = n
    checked = []
    for entry in entries:
        try:
            entry = tuple(int(x) for x in entry)
        except (TypeError, ValueError):
            raise ContractError(f"explicit path entries must be tuples of ints, got {entry!r}") from None
        if not entry or len(set(entry)) != len(entry) or not all(0 <= x < remaining for x in entry):
            raise ContractError(
                f"explicit path entry {entry} is invalid: it must name distinct operand "
                f"positions below {remaining} (operands left at that point)"
            )
        checked.append(entry)
        remaining -= len(entry) - 1
    if remaining != 1:
        raise ContractError(
            f"explicit path {entries} leaves {remaining} operands uncontracted; "
            f"it must reduce {n} operands to one"
        )
    return _pairwise(checked, n)


_CACHE: "OrderedDict[Any, Plan]" = OrderedDict()
_CACHE_SIZE = 1024
_STATS = {"hits": 0, "misses": 0}


def plan_cache_info() -> dict[str, int]:
    """Hits, misses and size of the in-memory plan cache.

    >>> sorted(plan_cache_info())
    ['hits', 'maxsize', 'misses', 'size']
    """
    return {**_STATS, "size": len(_CACHE), "maxsize": _CACHE_SIZE}


def _canonical(bound: Bound) -> tuple[dict[str, str], Any]:
    """Relabel by first appearance so renamed but identical specs share a key."""
    order: dict[str, str] = {}
    for term in bound.inputs + (bound.output,):
        for label in term:
            order.setdefault(label, f"#{len(order)}")
    key = (
        tuple(tuple(order[l] for l in t) for t in bound.inputs),
        tuple(order[l] for l in bound.output),
        tuple(sorted((order[l], s) for l, s in bound.sizes.items() if l in order)),
        bound.squeeze,
    )
    return order, key


def _rename(plan: Plan, names: dict[str, str], spec: str) -> Plan:
    def r(labels: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(names[l] for l in labels)

    steps = tuple(replace(s, lhs=r(s.lhs), rhs=r(s.rhs), output=r(s.output),
                          contracted=r(s.contracted), batch=r(s.batch)) for s in plan.steps)
    preps = tuple(Prep(r(p.labels), r(p.diagonal), r(p.summed)) for p in plan.preps)
    return replace(
        plan, spec=spec, inputs=tuple(map(r, plan.inputs)),
        output=r(plan.output), sizes=tuple((names[l], s) for l, s in plan.sizes),
        preps=preps, steps=steps, final=r(plan.final),
    )


def _freeze_option(optimize: Any) -> Any:
    if isinstance(optimize, (str, bool)) or optimize is None:
        return optimize
    if not hasattr(optimize, "__iter__"):
        raise _unknown(optimize)
    # Entries that are not sequences stay as they are: _explicit reports them.
    return tuple(tuple(e) if hasattr(e, "__iter__") and not isinstance(e, str) else e
                 for e in optimize)


def make_plan(bound: Bound, dtypes: Sequence[str], result_dtype: str, optimize: Any = "auto",
              memory_limit: int | None = None) -> Plan:
    """Plan a bound spec (cached; see the module docstring).

    A :class:`Plan` as ``optimize`` is reused as is once checked against the
    spec, shapes and dtypes (a saved plan runs again without re-planning).
    With ``memory_limit`` the best unbudgeted plan is sliced to fit it.
    """
    if memory_limit is not None:
        from .slicing import fit  # slicing re-plans through make_plan: imported late

        return fit(make_plan(bound, dtypes, result_dtype, optimize), memory_limit)
    if isinstance(optimize, Plan):
        from .serialize import check_saved

        return check_saved(optimize, bound, tuple(dtypes), result_dtype)
    opt = _freeze_option(optimize)
    order, key = _canonical(bound)
    full_key = (key, tuple(dtypes), result_dtype, opt, memory_limit)
    plan = _CACHE.get(full_key)
    if plan is None:
        _STATS["misses"] += 1
        from . import diskcache  # opt-in persistent cache (contract.set_cache_dir)

        plan = diskcache.load(full_key)
        if plan is None:
            sizes = {order[l]: s for l, s in bound.sizes.items() if l in order}
            plan = _build(Bound(bound.spec, key[0], key[1], sizes, bound.squeeze),
                          tuple(dtypes), result_dtype, opt, memory_limit)
            diskcache.store(full_key, plan)
        _CACHE[full_key] = plan
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(full_key)
        _STATS["hits"] += 1
    return _rename(plan, {v: k for k, v in order.items()}, str(bound.spec))


def _build(bound: Bound, dtypes: tuple[str, ...], result_dtype: str, optimize: Any,
           memory_limit: int | None) -> Plan:
    if optimize == "measure":
        from .measure import choose  # compiles and times candidate plans

        return choose(bound, dtypes, result_dtype, memory_limit)
    start = time.perf_counter()
    sizes = dict(bound.sizes)
    cdtype = compute_dtype(result_dtype)
    item = _itemsize(cdtype)
    preps = _prepare(bound)
    terms = [p.labels for p in preps]
    limit = None if memory_limit is None else max(1, memory_limit // item)
    path, name, strategy = _search(optimize, terms, bound.output, sizes, limit)
    steps, final = _steps(terms, bound.output, sizes, path)
    # Peak live memory: prepared operands plus each step's output while its
    # inputs are still alive.
    live = [_prod(t, sizes) for t in terms]
    peak = sum(live)
    for step in steps:
        i, j = step.operands
        peak = max(peak, sum(live) + step.size)
        live = live[:i] + live[i + 1 : j] + live[j + 1 :] + [step.size]
    prep_flops = sum(
        _prod(t, sizes) for t, p in zip(bound.inputs, preps) if p.summed
    )
    flops = prep_flops + sum(s.flops for s in steps)
    shapes = tuple(tuple(sizes[l] for l in t) for t in bound.inputs)
    return Plan(
        spec=str(bound.spec), shapes=shapes, dtypes=dtypes, result_dtype=result_dtype,
        compute_dtype=cdtype, inputs=bound.inputs, output=bound.output,
        sizes=tuple(sizes.items()), squeeze=bound.squeeze, preps=preps, steps=steps,
        path=tuple(tuple(p) for p in path), final=final, optimize=name,
        naive_flops=_naive_flops(bound), flops=flops,
        largest_intermediate=max((s.size for s in steps), default=_prod(final, sizes)),
        peak_bytes=peak * item, planning_seconds=time.perf_counter() - start,
        strategy=strategy,
    )
