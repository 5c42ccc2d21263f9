"""Run an operation as one compiled program, and spell its einsum labels.

An operation is two functions: an *args function* that checks the user's
arguments in plain Python and returns ``(arrays, params)``, and a *kernel*
(traceable: ``kernel(*arrays, **params)``, ``params`` static and hashable).
:func:`run` joins them:

* eager calls reuse one ``jax.jit`` program per (kernel, params), so every
  stage of an operation — ``var``'s mean, centring and sum of squares, a
  ``keepdims`` reshape — compiles into a single XLA program that fuses;
* a repeated eager call with the same argument signature (JAX arrays and
  plain ints/strings/tuples) skips the argument checks: one dictionary
  lookup, then the compiled program;
* under a JAX trace the kernel runs inline, so ``jax.jit``, ``grad`` and
  ``vmap`` see plain ``dot_general``/``reduce`` primitives.

>>> import jax.numpy as jnp
>>> double = lambda x: ([jnp.asarray(x)], {"k": 2})
>>> run(double, lambda x, *, k: x * k, [0, 1, 2]).tolist()
[0, 2, 4]
>>> letters(3, "sum")
'abc'
"""

from __future__ import annotations

import string
from typing import Any, Callable

import jax

from ..caching import LRU, LearnedSet
from ..errors import ContractError
from ..validate import is_array, is_tracer

__all__ = ["run", "call", "letters", "positional"]

_LETTERS = string.ascii_letters
# (kernel, params) -> jitted program.
_PROGRAMS: "LRU[Callable[..., Any]]" = LRU("op programs", 4096)
# (args function, argument signature) -> (jitted program, where its arrays sit).
_FAST: "LRU[tuple[Callable[..., Any], tuple[Any, ...]]]" = LRU("op fast path", 4096)
_STATIC = frozenset({type(None), bool, int, float, str, type})
# Concrete jax.Array types seen so far (ArrayImpl): one lookup in the key
# instead of a call to is_array. Filled by _static, never holds a tracer type.
# A registered LearnedSet (contract.clear_caches empties it) whose lookup
# is the set's own C __contains__, as validate.py's concrete types.
_ARRAYS = LearnedSet("op array types", maxsize=64)


class _Dynamic(Exception):
    """An argument that cannot be part of a fast-path key."""


def _static(a: Any) -> Any:
    """A hashable stand-in for one argument; arrays by (shape, dtype, weak type, sharding).

    The type is part of the key so ``True`` and ``1`` (equal in Python) never
    share an entry: one may be an error where the other is not. ``None``
    stands for itself (no other argument maps to a bare ``None``).
    """
    t = type(a)
    if a is None:
        return None
    if t in _STATIC:
        return (t, a)
    if is_array(a):
        _ARRAYS.add(t)
        return (a.shape, a.dtype, a.weak_type, a.sharding)
    if t is tuple:
        return (t, tuple(map(_static, a)))
    raise _Dynamic  # lists, NumPy arrays, tracers, other scalars: checked each time


class _ConfigX64:
    """The x64 switch read through ``jax.config`` (a jax without ``jax.enable_x64``)."""

    @property
    def value(self) -> bool:
        return bool(jax.config.jax_enable_x64)


# The x64 switch: jax.enable_x64 is the config State that
# jax.config.jax_enable_x64 reads (thread-local contexts included); reading
# its .value directly is one attribute instead of three calls.
_X64: Any = getattr(jax, "enable_x64", None)
if not isinstance(getattr(_X64, "value", None), bool):
    _X64 = _ConfigX64()


def _key(args_fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """The fast-path key of a call (keyword order included), or None.

    The x64 switch is part of it: ``params`` (result dtypes) depend on it,
    and it can change between calls (``jax.enable_x64``, ``jax.config.update``).
    The common cases of :func:`_static` (None, plain scalars, arrays of a
    type seen before) are inlined: a key is built on every eager call, and
    each Python call there costs about 0.1 µs, several times that between
    two compiled calls.

    >>> import jax.numpy as jnp
    >>> key = _key(len, (jnp.ones((2, 3)), 1, None), {"dim": True})
    >>> key[2][:3], key[3:]  # (shape, dtype, weak type, sharding), then the rest
    (((2, 3), dtype('float32'), False), ((<class 'int'>, 1), None, 'dim', (<class 'bool'>, True)))
    >>> _key(len, ([1, 2],), {}) is None  # a list is converted, so checked every call
    True
    """
    key = [args_fn, _X64.value]
    arrays = _ARRAYS.contains
    try:
        for a in args:
            t = type(a)
            if a is None:
                key.append(None)
            elif t in _STATIC:
                key.append((t, a))
            elif arrays(t):
                key.append((a.shape, a.dtype, a.weak_type, a.sharding))
            else:
                key.append(_static(a))
        if kwargs:
            key += kwargs
            key += map(_static, kwargs.values())
    except _Dynamic:
        return None
    return tuple(key)


def _program(kernel: Callable[..., Any], params: dict[str, Any]) -> Callable[..., Any]:
    def make() -> Callable[..., Any]:
        # A closure, not functools.partial: jax.jit of a partial misses its
        # C++ dispatch fast path (~100 µs a call instead of ~20 µs).
        def program(*arrays: Any) -> Any:
            return kernel(*arrays, **params)

        program.__name__ = kernel.__name__.strip("_")
        return jax.jit(program)

    return _PROGRAMS.get_or_make((kernel, tuple(sorted(params.items()))), make)


def call(kernel: Callable[..., Any], *arrays: Any, **params: Any) -> Any:
    """``kernel(*arrays, **params)``: inline under a trace, else compiled once per ``params``.

    >>> import jax.numpy as jnp
    >>> call(lambda x, *, k: x * k, jnp.arange(3), k=2).tolist()
    [0, 2, 4]
    """
    if any(map(is_tracer, arrays)):
        return kernel(*arrays, **params)
    return _program(kernel, params)(*arrays)


def run(args_fn: Callable[..., tuple[list[Any], dict[str, Any]]], kernel: Callable[..., Any],
        *args: Any, **kwargs: Any) -> Any:
    """``kernel(*arrays, **params)`` for ``arrays, params = args_fn(*args, **kwargs)``.

    Operations pass their arguments positionally where they can: a keyword
    costs a dictionary here and two entries in the key.
    """
    key = _key(args_fn, args, kwargs)
    if key is not None:
        hit = _FAST.get(key)
        if hit is not None:
            fn, where = hit
            if type(where) is int:  # the common case: one array, passed positionally
                return fn(args[where])
            return fn(*[args[w] if type(w) is int else kwargs[w] for w in where])
    arrays, params = args_fn(*args, **kwargs)
    if any(map(is_tracer, arrays)):
        return kernel(*arrays, **params)
    fn = _program(kernel, params)
    if key is not None:
        # Remember where the kernel's arrays sit among the arguments; cache
        # only when each one is an argument itself (no conversion happened).
        named = [*enumerate(args), *kwargs.items()]
        where = [next((w for w, v in named if v is a), None) for a in arrays]
        if None not in where:
            _FAST.put(key, (fn, where[0] if len(where) == 1 and type(where[0]) is int
                            else tuple(where)))
    return fn(*arrays)


def positional(args_fn: Callable[..., Any], *names: str) -> Callable[..., Any]:
    """``args_fn`` with its trailing keyword-only ``names`` taken positionally.

    An operation passes :func:`run` every argument positionally: its fast
    path then builds no keyword dictionary and a shorter key. Only a miss
    calls this (the keywords are rebuilt then).

    >>> f = positional(lambda x, *, dim=None: ([x], {"dim": dim}), "dim")
    >>> f(1, 2)
    ([1], {'dim': 2})
    """
    n = len(names)

    def args_by_position(*args: Any) -> Any:
        return args_fn(*args[:-n], **dict(zip(names, args[-n:])))

    return args_by_position


def letters(n: int, op: str) -> str:
    """``n`` distinct single-letter einsum labels (at most 52).

    >>> letters(53, "sum")
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: sum(): rank 53 needs more than the 52 einsum labels a-zA-Z
    """
    if n > len(_LETTERS):
        raise ContractError(f"{op}(): rank {n} needs more than the 52 einsum labels a-zA-Z")
    return _LETTERS[:n]
