"""Turn an ``optimize=`` option into a pairwise path over the prepared operands.

An option is a name from :data:`~.optimizers.OPTIMIZERS` (or an alias),
``False`` (left to right, as written), or an explicit path (opt_einsum's
linear format, or ``numpy.einsum_path``'s with its leading ``"einsum_path"``).
Every n-ary entry is split into pairwise ones: one ``dot_general`` each.

>>> search("greedy", [("a", "b"), ("b", "c"), ("c", "d")], ("a", "d"), {"a": 2, "b": 3, "c": 4, "d": 5}, None)
([(1, 2), (0, 1)], 'greedy', 'greedy')
>>> search([(0, 1, 2)], [("a",), ("a",), ("a",)], (), {"a": 2}, None)
([(0, 1), (0, 1)], 'explicit', 'explicit')
"""

from __future__ import annotations

from typing import Any, Sequence

import opt_einsum

from ..errors import ContractError
from .optimizers import ALIASES, OPTIMIZERS, auto_strategy

__all__ = ["freeze_option", "search", "unknown"]


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
        f"unknown optimize option {optimize!r}; valid options are "
        + ", ".join(repr(k) for k in sorted([*OPTIMIZERS, "measure"]))
        + ", False, a saved Plan, or an explicit path such as [(0, 1), (0, 1)]"
    )


def search(optimize: Any, terms: list[tuple[str, ...]], output: tuple[str, ...],
            sizes: dict[str, int], limit: int | None) -> tuple[list[tuple[int, int]], str, str]:
    """The pairwise path, the option's name and the optimizer that ran."""
    n = len(terms)
    if isinstance(optimize, str) and ALIASES.get(optimize, optimize) not in OPTIMIZERS:
        raise unknown(optimize)  # checked even when there is nothing to order
    if n < 2:
        return [], "trivial", "trivial"
    if optimize is False:
        # No search: contract left to right, as written.
        return [(0, 1)] + [(0, n - 1 - k) for k in range(1, n - 1)], "none", "none"
    if isinstance(optimize, str) or optimize is True:
        name = ALIASES.get(optimize, optimize)
        if not isinstance(name, str) or name not in OPTIMIZERS:
            raise unknown(optimize)
        # opt_einsum's optimizers take labels as sets of single symbols.
        sym = {l: opt_einsum.get_symbol(k) for k, l in enumerate(sizes)}
        ins = [frozenset(sym[l] for l in t) for t in terms]
        strategy = auto_strategy(ins) if name == "auto" else name
        # A size-0 label makes every path cost nothing, which trips opt_einsum's
        # dp ("no contraction found"); plan as if it were 1: any path is right.
        path = OPTIMIZERS[strategy](ins, frozenset(sym[l] for l in output),
                                    {sym[l]: max(s, 1) for l, s in sizes.items()}, limit)
        return pairwise(path, n), name, strategy
    if optimize is None or not hasattr(optimize, "__iter__"):
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
    if isinstance(optimize, (str, bool)) or optimize is None:
        return optimize
    if not hasattr(optimize, "__iter__"):
        raise unknown(optimize)
    # Entries that are not sequences stay as they are: _explicit reports them.
    return tuple(tuple(e) if hasattr(e, "__iter__") and not isinstance(e, str) else e
                 for e in optimize)
