"""``contract.jit``: compile a whole function, planning every contraction chain in it.

``contract.jit(f)`` traces ``f`` to a jaxpr, finds the clusters of
contraction-expressible equations (``dot_general``, ``mul``, ``reduce_sum``,
transposes, broadcasts, size-1 and split/merge reshapes, scalar multiplies,
casts between float dtypes), turns each into one einsum planned jointly by
the path optimizer, and runs the rest of the program as written, all under
one ``jax.jit`` (cached per input shapes and dtypes, as ``jax.jit`` does). A
function with nothing to plan compiles to exactly what ``jax.jit(f)`` does.

>>> import jax.numpy as jnp, contract
>>> @contract.jit
... def chain(x, y, z):
...     return x @ y @ z                    # written left to right
>>> x, y, z = jnp.ones((64, 8)), jnp.ones((8, 64)), jnp.ones((64, 2))
>>> chain(x, y, z).shape
(64, 2)
>>> [c.spec for c in chain.explain(x, y, z).rewritten]
['ab,bc,cd->ad']
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax

from ..backend.sharded import check_mesh
from ..errors import ContractError
from ..planner import make_plan, resolve_limit
from ..spec import parse
from ..validate import check_precision
from .cluster import PlanOptions
from .explain import Explanation
from .program import Program, build, evaluate

__all__ = ["jit", "Jitted"]


def _check_optimize(optimize: Any) -> None:
    if not isinstance(optimize, (str, bool)):
        raise ContractError(
            f"contract.jit takes an optimizer name (or True/False) for optimize, got "
            f"{optimize!r}; an explicit path cannot fit every cluster"
        )
    # The planner owns the list of names and the message for a bad one.
    make_plan(parse("ab,bc->ac").bind([(2, 2), (2, 2)]), ("float32",) * 2, "float32", optimize)


def _argnums(value: int | Sequence[int], what: str) -> tuple[int, ...]:
    nums = (value,) if isinstance(value, int) else tuple(value)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in nums):
        raise ContractError(f"{what} must be an int or a sequence of ints, got {value!r}")
    return nums


class Jitted:
    """The compiled function :func:`jit` returns; call it like ``f``.

    ``explain(*args)`` shows the clusters it plans for those arguments.
    """

    def __init__(self, fun: Callable[..., Any], options: PlanOptions,
                 static_argnums: tuple[int, ...], donate_argnums: tuple[int, ...],
                 precision: Any) -> None:
        self._fun = fun
        self._options = options
        self._static = static_argnums
        self._precision = precision
        functools.update_wrapper(self, fun, updated=())
        # Named after fun, so the staged program is named as jax.jit(fun)'s.
        def traced(*args: Any, **kwargs: Any) -> Any:
            return self._traced(*args, **kwargs)

        functools.update_wrapper(traced, fun)
        self._compiled = jax.jit(traced, static_argnums=static_argnums,
                                 donate_argnums=donate_argnums)

    def _program(self, args: tuple, kwargs: dict) -> tuple[Program, Any]:
        closed, shapes = jax.make_jaxpr(self._fun, static_argnums=self._static,
                                        return_shape=True)(*args, **kwargs)
        return build(closed, self._options, self._precision), shapes

    def _traced(self, *args: Any, **kwargs: Any) -> Any:
        # Runs once per signature, while jax.jit traces.
        prog, shapes = self._program(args, kwargs)
        if not prog.rewritten:
            return self._fun(*args, **kwargs)  # exactly jax.jit(f)'s program
        n = len(args)
        static = {s % n for s in self._static} if n else set()
        dynamic = [a for k, a in enumerate(args) if k not in static]
        outs = evaluate(prog, jax.tree.leaves((dynamic, kwargs)))
        return jax.tree.unflatten(jax.tree.structure(shapes), outs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._compiled(*args, **kwargs)

    def explain(self, *args: Any, **kwargs: Any) -> Explanation:
        """The contraction clusters found for these arguments (print it for a report)."""
        prog, _ = self._program(args, kwargs)
        return Explanation(tuple(prog.clusters))

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """``jax.jit``'s lowering of the rewritten program (``.as_text()`` shows it)."""
        return self._compiled.lower(*args, **kwargs)

    def __repr__(self) -> str:
        return f"contract.jit({getattr(self._fun, '__name__', self._fun)!r})"


def jit(fun: Callable[..., Any] | None = None, *, optimize: Any = "auto",
        static_argnums: int | Sequence[int] = (), donate_argnums: int | Sequence[int] = (),
        precision: Any = None, memory_limit: int | str | None = None, mesh: Any = None) -> Any:
    """Compile ``fun`` with every contraction chain in it planned as one einsum.

    ``optimize`` names the path optimizer for every cluster (as in
    :func:`contract.einsum`); ``static_argnums``/``donate_argnums`` are passed
    to ``jax.jit``; ``precision`` overrides the precision of rewritten
    clusters (default: what the written ``dot_general``s asked for);
    ``memory_limit`` (bytes or ``"max_input"``) slices each rewritten cluster
    to fit and ``mesh`` spreads its slices over a ``jax.sharding.Mesh``, as in
    :func:`contract.einsum`. Works as a decorator with or without options.

    >>> import jax.numpy as jnp
    >>> f = jit(lambda a, b: (a * b).sum(0), optimize="greedy")
    >>> f(jnp.ones((3, 2)), jnp.ones((3, 2))).tolist()
    [3.0, 3.0]
    >>> jit(3)
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: contract.jit needs a callable, got int
    """
    if fun is None:
        return functools.partial(jit, optimize=optimize, static_argnums=static_argnums,
                                 donate_argnums=donate_argnums, precision=precision,
                                 memory_limit=memory_limit, mesh=mesh)
    if not callable(fun):
        raise ContractError(f"contract.jit needs a callable, got {type(fun).__name__}")
    _check_optimize(optimize)
    if memory_limit is not None and memory_limit != "max_input":
        resolve_limit(memory_limit, None)  # reject a bad budget now, not at trace time
    options = PlanOptions(optimize, memory_limit, None if mesh is None else check_mesh(mesh))
    return Jitted(fun, options, _argnums(static_argnums, "static_argnums"),
                  _argnums(donate_argnums, "donate_argnums"), check_precision(precision))
