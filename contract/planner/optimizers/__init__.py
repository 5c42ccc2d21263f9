"""The path optimizers, by name: ``OPTIMIZERS`` and what ``optimize="auto"`` runs.

Every optimizer follows opt_einsum's ``PathOptimizer`` contract:
``fn(inputs, output, sizes, memory_limit) -> path`` with ``inputs`` a list of
frozensets of single-character labels, ``sizes`` a dict of label sizes and the
path opt_einsum's linear (SSA-free) format. ``auto``, ``auto-hq``,
``annealed-greedy`` (:mod:`.hq`) and ``sampled-greedy`` are ours; the rest
are opt_einsum's.

>>> sorted(OPTIMIZERS)[:3]
['annealed-greedy', 'auto', 'auto-hq']
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import opt_einsum

from ..costs import path_cost
from . import hq, sampled

__all__ = ["ALIASES", "OPTIMIZERS", "auto_strategy", "canonical", "valid_names"]

# Named optimizers; "auto", "auto-hq", "annealed-greedy" and "sampled-greedy" are ours (see
# _auto, _sampled_greedy and contract.planner.optimizers.hq), the rest are opt_einsum's.
# "measure" is the backend's (contract.backend.measure).
OPTIMIZERS: dict[str, Callable[..., Any]] = {
    "greedy": opt_einsum.paths.greedy,
    "optimal": opt_einsum.paths.optimal,
    "dp": opt_einsum.paths.dynamic_programming,
    "branch-all": opt_einsum.paths.get_path_fn("branch-all"),
    "branch-2": opt_einsum.paths.get_path_fn("branch-2"),
    "branch-1": opt_einsum.paths.get_path_fn("branch-1"),
    # opt_einsum's random greedy search, made pure (sampled.RandomGreedy):
    # opt_einsum's own reseeds the global `random` and depends on PYTHONHASHSEED.
    "random-greedy": sampled.random_greedy,
    "random-greedy-128": functools.partial(sampled.random_greedy, trials=128),
    "auto-hq": hq.optimize,  # ours: annealed random-greedy/bisection trees + reconfiguration
    "annealed-greedy": hq.annealed_greedy,  # ours: auto's choice past dp's range (annealed random greedy)
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
    improved by a short simulated annealing, see ``contract.planner.optimizers.hq``) otherwise.
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
    """``sampled-greedy``: plain greedy and 4 to 32 of opt_einsum's randomized
    greedy trials (2048 / operands; :class:`.sampled.RandomGreedy`), whichever
    path costs less: counted, not timed. Before annealing it was ``auto``'s
    choice past dp's range.

    Plain greedy can be far off on networks with many equal-cost choices:
    on a 24-operand periodic MPS norm (bond 32) it finds 8.9e8 FLOPs where
    randomized trials find 4.0e7 in ~40 ms. Plain greedy is one of the two
    candidates, so this is never worse than greedy. Trials shrink as
    networks grow so planning stays well under a second.

    >>> _sampled_greedy([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...                 {"a": 2, "b": 3, "c": 4, "d": 5}, None)
    [(0, 1), (0, 1)]
    """
    trials = max(4, min(32, 2048 // max(len(inputs), 1)))
    search = sampled.RandomGreedy(max_repeats=trials)
    # RandomGreedy ranks its trials with a jittered cost, so plain greedy is
    # not always among them: keep whichever path our own count finds cheaper.
    candidates = [opt_einsum.paths.greedy(inputs, output, sizes, memory_limit),
                  search(inputs, output, sizes, memory_limit)]
    return min(candidates, key=lambda path: path_cost(inputs, output, sizes, path))


def _auto(inputs: list, output: set, sizes: dict, memory_limit: int | None) -> Any:
    """``optimize="auto"``: see :func:`auto_strategy`; planning time never explodes."""
    return OPTIMIZERS[auto_strategy(inputs)](inputs, output, sizes, memory_limit)


OPTIMIZERS["auto"] = _auto
OPTIMIZERS["sampled-greedy"] = _sampled_greedy
# opt_einsum's other spellings, read by `contract.optimizer` and `optimize=` alike.
ALIASES = {"dynamic-programming": "dp", "eager": "greedy", "opportunistic": "greedy"}


def canonical(name: str) -> str:
    """The :data:`OPTIMIZERS` key (or ``"measure"``) that ``name`` stands for:
    any case, :data:`ALIASES` resolved; an unknown name comes back lowered.

    >>> canonical("Opportunistic"), canonical("dynamic-programming"), canonical("DP")
    ('greedy', 'dp', 'dp')
    """
    key = name.lower()
    return ALIASES.get(key, key)


def valid_names(*extra: str) -> str:
    """The names :func:`canonical` resolves, as error messages list them:
    :data:`OPTIMIZERS`' keys and ``extra`` ones, then the aliases.

    >>> valid_names("measure").split(" or the aliases ")[1]
    "'dynamic-programming', 'eager', 'opportunistic'"
    >>> "'measure'" in valid_names("measure"), "'measure'" in valid_names()
    (True, False)
    """
    return (", ".join(repr(k) for k in sorted([*OPTIMIZERS, *extra])) + " or the aliases "
            + ", ".join(repr(k) for k in sorted(ALIASES)))
