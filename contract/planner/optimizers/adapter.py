"""Our planners for every library: opt_einsum ``PathOptimizer`` objects.

``contract.optimizer(name, minimize=..., seed=..., max_time=..., progress=...)``
returns an instance of one ``PathOptimizer`` subclass per planner
(:class:`AutoHQOptimizer`, :class:`AutoOptimizer`,
:class:`AnnealedGreedyOptimizer`; :class:`NamedOptimizer` for opt_einsum's
own names). Whatever takes an opt_einsum optimizer takes these:

* ``opt_einsum.contract(eq, *arrays, optimize=opt)`` and ``contract_path``;
* ``cotengra.array_contract(arrays, inputs, output, optimize=opt)`` (and
  quimb's ``TensorNetwork.contract(optimize=opt)``, which goes through
  cotengra);
* ``numpy.einsum(eq, *arrays, optimize=opt.einsum_path(eq, *arrays))``:
  numpy takes explicit paths only, in ``["einsum_path", ...]`` form;
* ``contract.plan`` / ``contract.einsum`` (``optimize=opt``).

The objects are stateless and compare equal when their settings are equal
(``progress`` aside: it only reports), so plan caches share their entries.

>>> import numpy as np, opt_einsum
>>> opt = optimizer("auto-hq", minimize="size", seed=1)
>>> opt
AutoHQOptimizer(minimize='size', seed=1)
>>> opt([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...     {"a": 8, "b": 16, "c": 32, "d": 4})
[(1, 2), (0, 1)]
>>> a, b, c = np.ones((8, 16)), np.ones((16, 32)), np.ones((32, 4))
>>> float(opt_einsum.contract("ab,bc,cd->ad", a, b, c, optimize=opt).sum())
16384.0
>>> opt.einsum_path("ab,bc,cd->ad", a, b, c)
['einsum_path', (1, 2), (0, 1)]
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import opt_einsum
from opt_einsum.paths import PathOptimizer

from ...errors import ContractError
from . import OPTIMIZERS, auto_strategy, canonical, hq, sampled, valid_names
from .objective import FLOPS, Objective, parse_minimize

__all__ = ["AnnealedGreedyOptimizer", "AutoHQOptimizer", "AutoOptimizer", "ContractOptimizer",
           "NamedOptimizer", "optimizer"]

Path = list[tuple[int, ...]]


class ContractOptimizer(PathOptimizer):
    """Base class: one of our planners behind opt_einsum's ``PathOptimizer``
    contract, ``opt(inputs, output, size_dict, memory_limit=None) -> path``
    (opt_einsum's linear path). ``inputs`` may be any iterables of hashable
    labels (opt_einsum passes sets of characters, cotengra tuples).

    ``minimize``: ``"flops"``, ``"size"``, ``"write"``, ``"combo"`` or
    ``"combo-<factor>"`` (see :mod:`.objective`). ``seed``: the search's
    seed (the path is a pure function of the network and the settings).
    ``max_time``: seconds after which the search stops early and warns (a
    fuse: when it does not fire, the path does not depend on it).
    ``progress``: a one-line progress bar per annealing chain on stderr.
    """

    planner: ClassVar[str] = ""

    def __init__(self, *, minimize: Any = "flops", seed: int = 0, max_time: float | None = None,
                 progress: bool = False) -> None:
        self.objective: Objective = parse_minimize(minimize)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ContractError(f"seed must be an int, got {seed!r}")
        if max_time is not None and not max_time > 0:
            raise ContractError(f"max_time must be a positive number of seconds, got {max_time!r}")
        self.seed, self.max_time, self.progress = seed, max_time, bool(progress)

    def __call__(self, inputs: Sequence[Any], output: Any, size_dict: dict,
                 memory_limit: int | None = None) -> Path:
        ins = [frozenset(t) for t in inputs]
        if len(ins) < 2:
            return [(0,)] if ins else []
        path = self._search(ins, frozenset(output), dict(size_dict), memory_limit)
        return [tuple(int(i) for i in entry) for entry in path]

    def _search(self, inputs: list[frozenset], output: frozenset, sizes: dict,
                memory_limit: int | None) -> Path:
        raise NotImplementedError

    def einsum_path(self, spec: str, *operands: Any) -> list:
        """This optimizer's path for ``spec`` in ``numpy.einsum``'s
        ``optimize=`` format; ``operands`` are arrays or shapes.

        >>> optimizer("auto").einsum_path("ij,jk->ik", (2, 3), (3, 4))
        ['einsum_path', (0, 1)]
        """
        shapes = all(isinstance(o, (tuple, list)) for o in operands)
        path, _ = opt_einsum.contract_path(spec, *operands, optimize=self, shapes=shapes)
        return ["einsum_path", *path]

    def _settings(self) -> tuple:
        return (type(self), self.planner, self.objective, self.seed, self.max_time)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContractOptimizer) and self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash(self._settings())

    def description(self) -> str:
        """What ``plan.optimize`` shows and the disk cache keys on: the
        class and every setting the path depends on (``progress`` only
        reports, so it is left out), the same in every process.

        >>> optimizer("auto-hq", minimize="size", progress=True).description()
        "AutoHQOptimizer(minimize='size')"
        """
        return self._describe(progress=False)

    def __repr__(self) -> str:
        return self._describe(progress=self.progress)

    def _describe(self, progress: bool) -> str:
        parts = [] if type(self) is not NamedOptimizer else [repr(self.planner)]
        if self.objective != FLOPS:
            parts.append(f"minimize={str(self.objective)!r}")
        if self.seed:
            parts.append(f"seed={self.seed}")
        if self.max_time is not None:
            parts.append(f"max_time={self.max_time:g}")
        if progress:
            parts.append("progress=True")
        return f"{type(self).__name__}({', '.join(parts)})"


class AutoHQOptimizer(ContractOptimizer):
    """``auto-hq`` (:func:`.hq.optimize`): annealed random-greedy, greedy and
    bisection trees, then subtree reconfiguration; ``max_time`` defaults to
    its 600 s fuse."""

    planner = "auto-hq"

    def _search(self, inputs, output, sizes, memory_limit):
        return hq.optimize(inputs, output, sizes, memory_limit, seconds=self.max_time,
                           seed=self.seed, minimize=self.objective, progress=self.progress)


class AnnealedGreedyOptimizer(ContractOptimizer):
    """``annealed-greedy`` (:func:`.hq.annealed_greedy`), ``auto``'s choice
    past dp's range; ``max_time`` defaults to its 60 s fuse."""

    planner = "annealed-greedy"

    def _search(self, inputs, output, sizes, memory_limit):
        return hq.annealed_greedy(inputs, output, sizes, memory_limit, seed=self.seed,
                                  fuse=60.0 if self.max_time is None else self.max_time,
                                  minimize=self.objective, progress=self.progress)


class AutoOptimizer(ContractOptimizer):
    """``auto`` (:func:`.auto_strategy`): ``optimal`` or ``dp`` on small
    networks (opt_einsum's dp with this objective when it is not FLOPs),
    :class:`AnnealedGreedyOptimizer` beyond. With the defaults it returns
    exactly ``optimize="auto"``'s path."""

    planner = "auto"

    def _search(self, inputs, output, sizes, memory_limit):
        strategy = auto_strategy(inputs)
        if strategy == "annealed-greedy":
            return AnnealedGreedyOptimizer(minimize=self.objective, seed=self.seed,
                                           max_time=self.max_time,
                                           progress=self.progress)._search(
                inputs, output, sizes, memory_limit)
        if self.objective == FLOPS:
            return OPTIMIZERS[strategy](inputs, output, sizes, memory_limit)
        return opt_einsum.paths.DynamicProgramming(minimize=_dp_minimize(self.objective))(
            inputs, output, sizes, memory_limit)


def _dp_minimize(objective: Objective) -> str:
    """opt_einsum's dp spelling of an objective (its combo factor is an integer)."""
    if objective.kind == "combo" and objective.factor != int(objective.factor):
        raise ContractError(f"opt_einsum's dp takes integer combo factors, got {objective}")
    return f"combo-{int(objective.factor)}" if objective.kind == "combo" else objective.kind


class NamedOptimizer(ContractOptimizer):
    """One of opt_einsum's optimizers from :data:`.OPTIMIZERS` by name.
    ``minimize`` works with ``dp`` (every objective) and the random greedy
    ones (``flops`` and ``size``); ``max_time`` with the random greedy ones;
    ``seed`` with none (opt_einsum's searches seed themselves)."""

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(**options)
        self.planner = name
        random = name.startswith("random-greedy")
        kinds = (("flops", "size", "write", "combo") if name == "dp"
                 else ("flops", "size") if random else ("flops",))
        unsupported = [k for k, bad in (("minimize", self.objective.kind not in kinds),
                                         ("seed", self.seed != 0),
                                         ("max_time", self.max_time is not None and not random))
                       if bad]
        if unsupported:
            raise ContractError(f"optimizer {name!r} (opt_einsum's) does not take "
                                f"{', '.join(unsupported)}; contract's own planners 'auto', "
                                "'auto-hq' and 'annealed-greedy' take them all")

    def _search(self, inputs, output, sizes, memory_limit):
        name = self.planner
        if name == "dp" and self.objective != FLOPS:
            fn: Any = opt_einsum.paths.DynamicProgramming(minimize=_dp_minimize(self.objective))
        elif name.startswith("random-greedy") and (self.objective != FLOPS or self.max_time):
            fn = sampled.RandomGreedy(max_repeats=128 if name.endswith("128") else 32,
                                     max_time=self.max_time, minimize=self.objective.kind)
        else:
            fn = OPTIMIZERS[name]
        return fn(inputs, output, sizes, memory_limit)


_OURS: dict[str, type[ContractOptimizer]] = {
    "auto": AutoOptimizer, "auto-hq": AutoHQOptimizer, "annealed-greedy": AnnealedGreedyOptimizer}


def optimizer(name: str = "auto-hq", *, minimize: str = "flops", seed: int = 0,
              max_time: float | None = None, progress: bool = False) -> ContractOptimizer:
    """One of contract's path optimizers as an opt_einsum ``PathOptimizer``,
    for any library that takes one (opt_einsum, cotengra, quimb; numpy
    through :meth:`~ContractOptimizer.einsum_path`) and for ``contract.plan``
    and ``contract.einsum`` themselves.

    ``name``: ``"auto-hq"`` (the default), ``"auto"``, ``"annealed-greedy"``
    or any other name of ``contract.OPTIMIZERS`` (opt_einsum's, with fewer
    options). ``minimize``: ``"flops"``, ``"size"`` (largest intermediate),
    ``"write"`` (elements written) or ``"combo"`` / ``"combo-<factor>"``
    (``flops + factor * write``, cotengra's definition, factor 64).
    ``seed``: the search's seed. ``max_time``: a time budget in seconds that
    stops the search early with a warning (a fuse: plans stay a pure function
    of their inputs when it does not fire). ``progress``: a progress bar on
    stderr for each annealing chain.

    >>> import numpy as np, opt_einsum, contract
    >>> opt = contract.optimizer("auto-hq", minimize="write")
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> path, info = opt_einsum.contract_path("ij,jk,kl->il", x, x.T, x, optimize=opt)
    >>> path
    [(0, 1), (0, 1)]
    >>> contract.plan("ij,jk,kl->il", x, x.T, x, optimize=opt).path
    ((0, 1), (0, 1))
    """
    if not isinstance(name, str):
        raise ContractError(f"optimizer name must be a string, got {name!r}")
    key = canonical(name)
    options = dict(minimize=minimize, seed=seed, max_time=max_time, progress=progress)
    if key in _OURS:
        return _OURS[key](**options)
    if key in OPTIMIZERS:
        return NamedOptimizer(key, **options)
    raise ContractError(f"unknown optimizer {name!r}; valid names are {valid_names()} "
                        "(any case)")
