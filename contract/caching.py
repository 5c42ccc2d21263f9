"""Module-level state, one kind of it: named, bounded, thread-safe LRU caches.

Plans, compiled programs and fast-path entries live in :class:`LRU` caches,
memoized pure functions (:func:`memoized`, the eager einsum entries among
them) in ``functools.lru_cache``, facts learned on a hot path (the concrete
array types) in a :class:`LearnedSet`; all are registered here by name, so one call
empties them (:func:`clear`, behind ``contract.clear_caches()``), one reports
them (:func:`info`, behind ``contract.plan_cache_info()``) and one bounds them
(``contract.set_cache_size()``). This module imports nothing of contract's
but its error type, so every layer may use it.

>>> c = LRU("doctest", 2)
>>> c.put("a", 1); c.put("b", 2); c.get("a"); c.put("c", 3)
1
>>> c.get("b") is None, c.info()["size"]
(True, 2)
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, TypeVar

from .errors import ContractError

__all__ = ["LRU", "LearnedSet", "clear", "info", "memoized", "set_cache_size"]

DEFAULT_SIZE = 1024
V = TypeVar("V")
_REGISTRY: "dict[str, LRU[Any]]" = {}


class LRU(Generic[V]):
    """A bounded, thread-safe least-recently-used map with hit/miss counts.

    Every instance registers under ``name`` so :func:`clear` and
    :func:`info` reach it. Lookups and inserts take one lock: a
    ``get`` that races an eviction sees a miss, never a half-made entry.
    """

    def __init__(self, name: str, maxsize: int = DEFAULT_SIZE) -> None:
        self.name = name
        self.maxsize = maxsize
        self._data: "OrderedDict[Hashable, V]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        _REGISTRY[name] = self

    def get(self, key: Hashable) -> V | None:
        """The value for ``key`` (now the most recent), or None."""
        # Lock-free: a hit is on every eager call's path, where the lock alone
        # cost ~0.3 us (6% of a jitted call's dispatch). Each OrderedDict
        # operation is atomic under the GIL, and values are never half-made
        # (``put`` stores finished values); a hit that races its own eviction
        # only skips the recency update. The counters are statistics.
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        try:
            self._data.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return value

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` under ``key``, evicting the least recent past ``maxsize``."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """``get(key)``, or ``make()`` stored under ``key``: made outside the lock, so a
        slow ``make`` (planning, compiling) never blocks other keys."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = maxsize
            while len(self._data) > maxsize:
                self._data.popitem(last=False)

    def info(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._data),
                    "maxsize": self.maxsize}


def memoized(name: str, maxsize: int = DEFAULT_SIZE) -> Callable[[Callable[..., V]], Callable[..., V]]:
    """Decorator: cache a pure function of hashable positional arguments,
    registered under ``name`` like an :class:`LRU`.

    The cache is :func:`functools.lru_cache`: behind the decorator's one
    wrapper frame, a hit is a single C call, recency and counts included
    (an :class:`LRU` lookup is a Python method of its own, ~0.5 µs on the
    eager einsum path). Unhashable arguments raise ``TypeError``.

    >>> @memoized("doctest square")
    ... def square(x): return x * x
    >>> square(3), square(3), _REGISTRY["doctest square"].info()["hits"]
    (9, 9, 1)
    """

    def wrap(fn: Callable[..., V]) -> Callable[..., V]:
        memo = _Memo(name, fn, maxsize)

        @functools.wraps(fn)
        def cached(*args: Any) -> V:
            return memo.call(*args)

        return cached

    return wrap


class _Memo:
    """A function's ``functools.lru_cache``, with :class:`LRU`'s clear/info/resize."""

    def __init__(self, name: str, fn: Callable[..., Any], maxsize: int) -> None:
        self._fn = fn
        self.resize(maxsize)
        _REGISTRY[name] = self  # type: ignore[assignment]

    def resize(self, maxsize: int) -> None:
        # lru_cache has a fixed bound: a resize starts an empty cache (every
        # memoized function is pure, so entries are only ever recomputed).
        self.maxsize = maxsize
        self.call = functools.lru_cache(maxsize)(self._fn)

    def clear(self) -> None:
        self.call.cache_clear()

    def info(self) -> dict[str, int]:
        i = self.call.cache_info()
        return {"hits": i.hits, "misses": i.misses, "size": i.currsize, "maxsize": self.maxsize}


class LearnedSet:
    """A registered set of facts learned as they are seen, for a hot path where
    one C call must answer: :attr:`contains` is the set's own ``__contains__``
    (~0.05 µs, where an :class:`LRU` lookup costs ~0.4 µs). ``seeds`` are known
    from the start and never forgotten; :meth:`clear` forgets the rest in place,
    so a ``contains`` taken earlier stays valid. Past ``maxsize`` learned facts
    it learns no more (a fact not learned only takes the slow path again).
    ``info()`` counts misses (what was offered to :meth:`add`), not hits: a
    counter would double a hit's cost.

    >>> seen = LearnedSet("doctest types", {int})
    >>> seen.add(float); seen.contains(float), seen.info()["size"]
    (True, 1)
    >>> seen.clear(); seen.contains(float), seen.contains(int)
    (False, True)
    """

    def __init__(self, name: str, seeds: Any = (), maxsize: int = DEFAULT_SIZE) -> None:
        self.seeds = frozenset(seeds)
        self.maxsize = maxsize
        self.misses = 0
        self._set = set(self.seeds)
        self._lock = threading.Lock()
        self.contains: Callable[[Hashable], bool] = self._set.__contains__
        _REGISTRY[name] = self  # type: ignore[assignment]

    def add(self, fact: Hashable) -> None:
        """Learn ``fact``, unless ``maxsize`` facts are learned already."""
        with self._lock:
            self.misses += 1
            if len(self._set) - len(self.seeds) < self.maxsize:
                self._set.add(fact)

    def clear(self) -> None:
        with self._lock:
            self._set.difference_update(self._set - self.seeds)
            self.misses = 0

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = maxsize
        if len(self._set) - len(self.seeds) > maxsize:
            self.clear()

    def info(self) -> dict[str, int]:
        with self._lock:
            return {"hits": 0, "misses": self.misses, "size": len(self._set) - len(self.seeds),
                    "maxsize": self.maxsize}


def info() -> dict[str, dict[str, int]]:
    """Hits, misses, size and bound of every registered cache, by name."""
    return {name: c.info() for name, c in sorted(_REGISTRY.items())}


def clear() -> None:
    """Empty every registered cache."""
    for c in list(_REGISTRY.values()):
        c.clear()


def set_cache_size(maxsize: int) -> None:
    """Bound every in-memory cache to ``maxsize`` entries (default 1024).

    >>> set_cache_size(0)
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: set_cache_size() takes a positive int, got 0
    """
    if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
        raise ContractError(f"set_cache_size() takes a positive int, got {maxsize!r}")
    for c in list(_REGISTRY.values()):
        c.resize(maxsize)
