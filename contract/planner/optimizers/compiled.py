"""The annealer's move loop compiled: ``contract/anneal.cc`` through ctypes.

The Python loop of :mod:`.anneal` spends 3-7 µs a move on interpreter
overhead around a few bitset operations; the same loop in C++ takes about
0.16-0.4 µs (docs/inspection.md has the figures), so ``auto-hq`` spends its
planning time on moves instead of bytecode. The library is the one
:mod:`contract.native` builds (no JAX is imported here); without it
:func:`anneal` returns None and the Python loop runs. The two loops make the
same kind of moves under the same rules, but draw different random numbers:
a plan is a pure function of its inputs and of whether the library is built.

>>> from contract.planner.optimizers.tree import _Net
>>> net = _Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...            {"a": 8, "b": 16, "c": 32, "d": 4})
>>> shape = ([-1, -1, -1, 0, 3], [-1, -1, -1, 1, 2])   # ((0, 1), 2)
>>> anneal(net, shape, 2000, 1, 1.0, 0.05, 0.0, FLOPS, 10.0, None) in (None, True)
True
"""

from __future__ import annotations

import ctypes
import math
from typing import Any, Callable

from ... import native
from ...caching import memoized
from .objective import FLOPS, Objective

__all__ = ["anneal", "available", "words"]

_KINDS = {"flops": 0, "write": 1, "combo": 2, "size": 3}
_PROGRESS = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64)
_I32, _I64, _U64, _F64 = ctypes.c_int32, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double


@memoized("compiled annealer", 1)
def _function() -> Any:
    """``contract_anneal`` with its signature, or None without the library."""
    lib = native.library()
    if lib is None:
        return None
    fn = lib.contract_anneal
    fn.restype = ctypes.c_int
    fn.argtypes = [_I32, _I32, ctypes.c_char_p, ctypes.c_char_p, _I32, ctypes.POINTER(_F64),
                   ctypes.c_char_p, ctypes.POINTER(_I32), ctypes.POINTER(_I32), _I64, _U64,
                   _F64, _F64, _F64, _I32, _F64, _F64, _F64, _PROGRESS]
    return fn


def available() -> bool:
    """Whether the compiled loop runs (the native library is built)."""
    return _function() is not None


def words(net: Any) -> int:
    """64-bit words per leg set of ``net``: a compiled move costs about this
    many word operations (3.6 µs a move at 10,000 tensors, 235 words)."""
    return max(1, -(-len(net.log) // 64))


def _packed(sets: list[int], words: int) -> bytes:
    """Bitsets as little-endian 64-bit words, ``words`` per set."""
    return b"".join(bits.to_bytes(8 * words, "little") for bits in sets)


def anneal(net: Any, shape: tuple[list[int], list[int]], moves: int, seed: int, hot: float,
           cold: float, focus: float, objective: Objective, seconds: float,
           progress: Callable[[int, int], None] | None) -> bool | None:
    """Anneal the tree ``shape`` (left and right child of every node, root
    ``2n - 2``; rewritten in place to the best tree seen) as
    :func:`.anneal.anneal` does. True if that is not the start tree, False
    if it is, None without the compiled loop (``shape`` untouched). ``net``
    must carry ``log`` (each leg's log2 size), as ``tree._Net`` does."""
    fn = _function()
    log = getattr(net, "log", None)
    if fn is None or log is None:
        return None
    n = len(net.legs)
    per_set = words(net)
    classes: dict[float, int] = {}
    for bit, x in enumerate(log):
        if x:  # size-1 legs cost nothing
            classes[x] = classes.get(x, 0) | 1 << bit
    nodes = 2 * n - 1
    left, right = (_I32 * nodes)(*shape[0]), (_I32 * nodes)(*shape[1])
    limit = -1.0 if objective.limit is None else objective.limit
    report = _PROGRESS(progress) if progress is not None else _PROGRESS()
    done = fn(n, per_set, _packed(list(net.legs), per_set), _packed([net.out], per_set),
              len(classes), (_F64 * len(classes))(*classes), _packed(list(classes.values()), per_set),
              left, right, moves, seed, hot, cold, focus, _KINDS[objective.kind],
              objective.factor, limit, seconds if math.isfinite(seconds) else 1e300, report)
    if done < 0:
        raise ValueError("contract_anneal rejected its arguments")
    shape[0][:], shape[1][:] = list(left), list(right)
    return bool(done)
