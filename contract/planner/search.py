"""Turn an ``optimize=`` option into a pairwise path over the prepared operands.

An option is anything ``jnp.einsum`` or ``numpy.einsum`` accepts:

* a name from :data:`~.optimizers.OPTIMIZERS` or an alias, in any case, as
  opt_einsum reads them (``"greedy"``, ``"Optimal"``, ``"eager"``,
  ``"dynamic-programming"``, ...); ``True`` and ``None`` mean ``"auto"``
  (jnp: ``None`` is opt_einsum's ``"auto"``; ``True`` is ``"optimal"`` in jnp
  and ``"greedy"`` in NumPy, and ``"auto"`` here, which never explodes);
* ``False``: left to right, as written;
* an explicit path: opt_einsum's linear format, or ``numpy.einsum_path``'s
  with its leading ``"einsum_path"``;
* NumPy's ``(name, memory_limit)`` pair: the named search, its
  intermediates capped at ``memory_limit`` elements;
* any opt_einsum ``PathOptimizer`` instance (cotengra's optimizers are
  ones), called as ``optimizer(inputs, output, size_dict)``.

Every n-ary entry is split into pairwise ones: one ``dot_general`` each.

>>> search("greedy", [("a", "b"), ("b", "c"), ("c", "d")], ("a", "d"), {"a": 2, "b": 3, "c": 4, "d": 5}, None)
([(1, 2), (0, 1)], 'greedy', 'greedy')
>>> search([(0, 1, 2)], [("a",), ("a",), ("a",)], (), {"a": 2}, None)
([(0, 1), (0, 1)], 'explicit', 'explicit')
>>> search(opt_einsum.RandomGreedy(max_repeats=4), [("a", "b"), ("b", "c")], ("a", "c"),
...        {"a": 2, "b": 3, "c": 4}, None)
([(0, 1)], 'opt_einsum.RandomGreedy', 'opt_einsum.RandomGreedy')
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import opt_einsum
from opt_einsum.paths import PathOptimizer

from ..errors import ContractError
from .optimizers import OPTIMIZERS, auto_strategy, canonical, valid_names
from .optimizers.partition import BISECTIONS

__all__ = ["describe", "freeze_option", "is_optimizer", "memory_pair", "ran", "search", "unknown"]


def pairwise(path: Sequence[Sequence[int]], n: int) -> list[tuple[int, int]]:
    """Split n-ary path entries into pairwise ones (left to right).

    >>> pairwise([(0, 1, 2)], 3)
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


def unknown(optimize: Any) -> ContractError:
    return ContractError(
        f"unknown optimize option {optimize!r}; valid options are {valid_names('measure')}"
        " (any case), True, False, None, an opt_einsum PathOptimizer (cotengra's too), "
        "NumPy's (name, memory_limit) pair, a saved Plan, or an explicit path such as "
        "[(0, 1), (0, 1)]"
    )


def is_optimizer(optimize: Any) -> bool:
    """Whether ``optimize`` is a path optimizer object (opt_einsum's ``PathOptimizer``
    contract: cotengra's ``HyperOptimizer`` and friends subclass it)."""
    return isinstance(optimize, PathOptimizer)


def describe(optimizer: Any) -> tuple[str, bool]:
    """(name, stable) of an optimizer object: contract's own describe their
    settings (``AutoHQOptimizer(minimize='size', seed=1)``), the same in every
    process, so their plans can be cached on disk; any other shows its
    library and class (``cotengra.HyperOptimizer``), which does not say how
    it was configured (nor can: its repr has its address, its settings and
    state live in attributes we cannot know), so its plans stay in memory.

    >>> describe(opt_einsum.RandomGreedy(max_repeats=4))
    ('opt_einsum.RandomGreedy', False)
    """
    own = getattr(optimizer, "description", None)
    if callable(own):
        name = own()
        if isinstance(name, str):
            return name, True
    cls = type(optimizer)
    root = cls.__module__.split(".")[0]
    return (cls.__name__ if root in ("__main__", "builtins") else f"{root}.{cls.__name__}"), False


def memory_pair(optimize: Any) -> bool:
    """NumPy's ``("greedy", memory_limit)`` form of ``optimize``.

    >>> memory_pair(("greedy", 1e6)), memory_pair([(0, 1)])
    (True, False)
    """
    return (isinstance(optimize, tuple) and len(optimize) == 2 and isinstance(optimize[0], str)
            and optimize[0] != "einsum_path" and isinstance(optimize[1], numbers.Real)
            and not isinstance(optimize[1], bool))


def ran(strategy: str) -> str:
    """What a plan's report says the optimizer ``strategy`` ran: auto-hq's
    starting trees depend on kahypar's presence, so it says which bisections.

    >>> ran("greedy")
    'greedy'
    """
    return f"auto-hq, {BISECTIONS}" if strategy == "auto-hq" else strategy


def search(optimize: Any, terms: list[tuple[str, ...]], output: tuple[str, ...],
            sizes: dict[str, int], limit: int | None) -> tuple[list[tuple[int, int]], str, str]:
    """The pairwise path, the option's name and the optimizer that ran."""
    n = len(terms)
    optimize = freeze_option(optimize)
    if memory_pair(optimize):
        optimize, cap = optimize
        limit = int(cap) if limit is None else min(limit, int(cap))
    if isinstance(optimize, str) and optimize not in OPTIMIZERS:
        raise unknown(optimize)  # checked even when there is nothing to order
    if n < 2:
        return [], "trivial", "trivial"
    if optimize is False:
        # No search: contract left to right, as written.
        return [(0, 1)] + [(0, n - 1 - k) for k in range(1, n - 1)], "none", "none"
    # opt_einsum's optimizers take labels as sets of single symbols.
    sym = {l: opt_einsum.get_symbol(k) for k, l in enumerate(sizes)}
    ins = [frozenset(sym[l] for l in t) for t in terms]
    out = frozenset(sym[l] for l in output)
    # A size-0 label makes every path cost nothing, which trips opt_einsum's
    # dp ("no contraction found"); plan as if it were 1: any path is right.
    size_dict = {sym[l]: max(s, 1) for l, s in sizes.items()}
    if is_optimizer(optimize):
        name, _ = describe(optimize)
        try:
            path = (optimize(ins, out, size_dict) if limit is None
                    else optimize(ins, out, size_dict, limit))
        except Exception as e:
            raise ContractError(f"optimize={name} failed: {type(e).__name__}: {e}") from e
        try:
            return explicit(path, n), name, name
        except ContractError as e:
            raise ContractError(f"optimize={name} returned an invalid path: {e}") from None
    if isinstance(optimize, str):
        name = optimize
        strategy = auto_strategy(ins) if name == "auto" else name
        path = OPTIMIZERS[strategy](ins, out, size_dict, limit)
        return pairwise(path, n), name, ran(strategy)
    if not hasattr(optimize, "__iter__"):
        raise unknown(optimize)
    return explicit(optimize, n), "explicit", "explicit"


def explicit(optimize: Any, n: int) -> list[tuple[int, int]]:
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
    return pairwise(checked, n)


def freeze_option(optimize: Any) -> Any:
    """The hashable, canonical form of an ``optimize=`` option (see the module docstring).

    >>> freeze_option(None), freeze_option("Greedy"), freeze_option([[0, 1]]), freeze_option(("optimal", 1e6))
    ('auto', 'greedy', ((0, 1),), ('optimal', 1000000))
    """
    if optimize is None or optimize is True:
        return "auto"
    if optimize is False:
        return False
    if isinstance(optimize, str):
        return canonical(optimize)
    if is_optimizer(optimize):
        return optimize
    if isinstance(optimize, bool) or not hasattr(optimize, "__iter__"):
        raise unknown(optimize)
    if isinstance(optimize, (list, tuple)) and memory_pair(tuple(optimize)):
        name, cap = optimize
        if cap != cap or cap < 1 or cap == float("inf"):
            raise ContractError(f"the memory limit of optimize={tuple(optimize)!r} must be a "
                                f"positive number of elements")
        return (freeze_option(name), int(cap))
    # Entries that are not sequences stay as they are: explicit() reports them.
    return tuple(tuple(e) if hasattr(e, "__iter__") and not isinstance(e, str) else e
                 for e in optimize)
