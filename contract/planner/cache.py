"""The opt-in disk cache of plans, and the two functions that reach every cache.

:func:`clear_caches` empties every in-memory LRU (:mod:`contract.caching`)
and the disk cache; :func:`cache_info` reports them all.

The disk cache is off by default. Turn it on with ``contract.set_cache_dir(path)``
or the ``CONTRACT_CACHE_DIR`` environment variable. Entries are keyed by a
SHA-256 of the canonical spec, shapes, dtypes and options *and* of
:data:`PLANNER_VERSION`, the JSON format and the versions of the libraries
whose output a plan stores (opt_einsum, cotengrust), so an upgrade never reads
an older plan. Writes go to a temporary file in the same directory and are
published with ``os.replace`` (atomic on POSIX and Windows), so concurrent
processes only ever see whole entries; an unreadable or corrupted entry is
treated as a miss and overwritten.

>>> import tempfile, contract
>>> with tempfile.TemporaryDirectory() as d:
...     set_cache_dir(d)
...     _ = contract.plan("ab,bc->ac", (3, 4), (4, 5), optimize="greedy")
...     n = len(list(Path(d).glob("*.json")))
...     set_cache_dir(None)
>>> n
1
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .. import caching
from ..errors import ContractError

__all__ = ["PLANNER_VERSION", "cache_dir", "cache_info", "clear_caches", "load",
           "set_cache_dir", "store"]

# Bumped whenever a change of the planner can change the plan it returns for
# the same input, so that disk entries written by an older planner are misses.
PLANNER_VERSION = 6
ENV = "CONTRACT_CACHE_DIR"
_UNSET = object()
_dir: Any = _UNSET  # set_cache_dir overrides the environment variable


def cache_info() -> dict[str, Any]:
    """Every in-memory cache's hits, misses, size and bound, and the disk cache.

    >>> info = cache_info(); info["plans"]["maxsize"] > 0, "disk" in info
    (True, True)
    """
    out: dict[str, Any] = caching.info()
    d = cache_dir()
    out["disk"] = {"dir": None if d is None else str(d),
                   "entries": len(list(d.glob("*.json"))) if d is not None and d.is_dir() else 0}
    return out


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Use ``path`` as the plan cache directory (created if needed); ``None``
    turns the disk cache off, whatever ``CONTRACT_CACHE_DIR`` says."""
    global _dir
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ContractError(f"set_cache_dir() takes a path or None, got {type(path).__name__}")
    if path is not None:
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ContractError(f"cannot use {str(path)!r} as the plan cache directory: {e}") from None
        path = Path(path)
    _dir = path


def cache_dir() -> Path | None:
    """The active cache directory, or None when the disk cache is off.

    >>> set_cache_dir(None); cache_dir() is None
    True
    """
    if _dir is not _UNSET:
        return _dir
    env = os.environ.get(ENV)
    return Path(env) if env else None


def clear_caches(disk: bool = True) -> int:
    """Empty every in-memory cache and, with ``disk``, delete every entry (and stray
    temporary file) of the disk cache; returns how many files were removed."""
    caching.clear()
    d = cache_dir()
    if not disk or d is None or not d.is_dir():
        return 0
    removed = 0
    for f in list(d.glob("*.json")) + list(d.glob("*.tmp")):
        try:
            f.unlink()
            removed += 1
        except FileNotFoundError:  # another process removed it first
            pass
    return removed


@functools.cache  # facts about the installed libraries: fixed for the process
def _versions() -> tuple[Any, ...]:
    """What a stored plan depends on besides its key: planner, format, libraries."""
    from importlib import metadata

    from .model import FORMAT

    libs = []
    for name in ("contract", "opt_einsum", "cotengrust", "kahypar"):
        try:
            libs.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            libs.append((name, None))
    # kahypar shapes auto-hq's starting trees (a Python bisection stands in
    # without it): a plan made without it must not be read back with it.
    from .optimizers.partition import BISECTIONS

    return (PLANNER_VERSION, FORMAT, tuple(libs), BISECTIONS)


def _entry(key: Any) -> tuple[Path, str] | None:
    d = cache_dir()
    if d is None:
        return None
    ident = repr((_versions(), key))
    return d / (hashlib.sha256(ident.encode()).hexdigest() + ".json"), ident


def load(key: Any) -> Any:
    """The cached plan for ``key``, or None (cache off, miss, or a bad entry)."""
    entry = _entry(key)
    if entry is None:
        return None
    path, ident = entry
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["key"] != ident:
            return None
        from .model import load as from_json

        return from_json(doc["plan"])
    except (OSError, ValueError, KeyError, TypeError):  # ContractError is a ValueError
        return None  # missing, truncated or foreign: a miss, store() replaces it


def store(key: Any, plan: Any) -> None:
    """Write ``plan`` under ``key`` atomically (no-op when the cache is off)."""
    entry = _entry(key)
    if entry is None:
        return
    path, ident = entry
    text = json.dumps({"key": ident, "plan": plan.to_json()})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        # A read-only or full disk must not break planning.
        warnings.warn(f"contract: could not write the plan cache entry {path}: {e}",
                      RuntimeWarning, stacklevel=2)
