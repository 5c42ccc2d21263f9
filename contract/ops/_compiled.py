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

from ..caching import LRU
from ..errors import ContractError
from ..validate import is_array, is_tracer

__all__ = ["run", "call", "letters"]

_LETTERS = string.ascii_letters
# (kernel, params) -> jitted program.
_PROGRAMS: "LRU[Callable[..., Any]]" = LRU("op programs", 4096)
# (args function, argument signature) -> (jitted program, where its arrays sit).
_FAST: "LRU[tuple[Callable[..., Any], tuple[Any, ...]]]" = LRU("op fast path", 4096)
_STATIC = frozenset({type(None), bool, int, float, str, type})


class _Dynamic(Exception):
    """An argument that cannot be part of a fast-path key."""


def _static(a: Any) -> Any:
    """A hashable stand-in for one argument; arrays by (shape, dtype, weak type, sharding).

    The type is part of the key so ``True`` and ``1`` (equal in Python) never
    share an entry: one may be an error where the other is not.
    """
    t = type(a)
    if t in _STATIC:
        return (t, a)
    if is_array(a):
        return (a.shape, a.dtype, a.weak_type, a.sharding)
    if t is tuple:
        return (t, tuple(map(_static, a)))
    raise _Dynamic  # lists, NumPy arrays, tracers, other scalars: checked each time


def _key(args_fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """The fast-path key of a call (keyword order included), or None.

    The x64 switch is part of it: ``params`` (result dtypes) depend on it,
    and it can change between calls (``jax.enable_x64``, ``jax.config.update``).
    """
    try:
        return (args_fn, bool(jax.config.jax_enable_x64), *map(_static, args), *kwargs,
                *map(_static, kwargs.values()))
    except _Dynamic:
        return None


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
    """``kernel(*arrays, **params)`` for ``arrays, params = args_fn(*args, **kwargs)``."""
    key = _key(args_fn, args, kwargs)
    if key is not None:
        hit = _FAST.get(key)
        if hit is not None:
            fn, where = hit
            return fn(*(args[w] if type(w) is int else kwargs[w] for w in where))
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
            _FAST.put(key, (fn, tuple(where)))
    return fn(*arrays)


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
