"""Run an operation's kernel as one compiled program, and spell its einsum labels.

An operation checks its arguments in plain Python, then hands its *kernel*
(a traceable function of the arrays plus static keyword parameters) to
:func:`call`. Eager calls reuse one ``jax.jit`` program per (kernel,
parameters), so every stage of an operation — ``var``'s mean, centring and
sum of squares, a ``keepdims`` reshape — compiles into a single XLA program
that fuses; under a JAX trace the kernel runs inline, so ``jax.jit``,
``grad`` and ``vmap`` see plain ``dot_general``/``reduce`` primitives.

>>> import jax.numpy as jnp
>>> call(lambda x, *, k: x * k, jnp.arange(3), k=2).tolist()
[0, 2, 4]
>>> letters(3, "sum")
'abc'
"""

from __future__ import annotations

import functools
import string
from typing import Any, Callable

import jax

from ..errors import ContractError

__all__ = ["call", "letters"]

_LETTERS = string.ascii_letters
_PROGRAMS: dict[Any, Callable[..., Any]] = {}
_MAX_PROGRAMS = 4096


def call(kernel: Callable[..., Any], *arrays: Any, **params: Any) -> Any:
    """``kernel(*arrays, **params)``: compiled once per ``params`` when eager.

    ``params`` must be hashable (ints, strings, tuples); they are static.
    """
    if any(isinstance(a, jax.core.Tracer) for a in arrays):
        return kernel(*arrays, **params)
    key = (kernel, tuple(sorted(params.items())))
    fn = _PROGRAMS.get(key)
    if fn is None:
        if len(_PROGRAMS) >= _MAX_PROGRAMS:
            _PROGRAMS.clear()
        fn = _PROGRAMS[key] = jax.jit(functools.partial(kernel, **params))
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
