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
import inspect
import numbers
from typing import Any, Callable, Sequence

import jax
from jax.extend.core import jaxpr_as_fun

from ..backend.sharded import check_mesh
from ..errors import ContractError
from ..planner import make_plan, resolve_limit
from ..planner.search import freeze_option, is_optimizer, memory_pair
from ..spec import parse
from ..validate import check_precision
from .cluster import PlanOptions
from .explain import Explanation
from .program import Program, build, evaluate

__all__ = ["jit", "Jitted"]


def _check_optimize(optimize: Any) -> None:
    """Accept every ``optimize=`` value :func:`contract.einsum` accepts (the
    planner's own check decides) except those that order one contraction: an
    explicit path or a saved plan cannot fit every cluster."""
    pair = isinstance(optimize, (list, tuple)) and memory_pair(tuple(optimize))
    if not (optimize is None or isinstance(optimize, (str, bool)) or is_optimizer(optimize)
            or pair):
        raise ContractError(
            f"contract.jit takes an optimizer name, True/False/None, a (name, memory_limit) "
            f"pair or a PathOptimizer for optimize, got {optimize!r}: an explicit path cannot fit "
            f"every cluster, nor can a saved plan"
        )
    # The planner owns the list of names and the message for a bad one;
    # measuring needs real clusters (the name is checked by them).
    if freeze_option(optimize) != "measure":
        make_plan(parse("ab,bc->ac").bind([(2, 2), (2, 2)]), ("float32",) * 2, "float32", optimize)


def _sequence(value: Any, one: type, what: str, kind: str) -> tuple[Any, ...]:
    """``value`` as a tuple of ``one``s (``None`` is empty, a lone ``one`` a 1-tuple)."""
    if value is None:
        return ()
    items = ((value,) if isinstance(value, one)
             else tuple(value) if isinstance(value, (tuple, list)) else None)
    if items is None or not all(isinstance(n, one) and not isinstance(n, bool) for n in items):
        raise ContractError(f"{what} must be {kind}, got {value!r}")
    return items


def _argnums(value: int | Sequence[int] | None, what: str) -> tuple[int, ...]:
    nums = _sequence(value, numbers.Integral, what, "an int or a sequence of ints")
    return tuple(int(n) for n in nums)


def _argnames(value: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    return _sequence(value, str, what, "a str or a sequence of strs")


def _complete(fun: Callable[..., Any], nums: tuple[int, ...],
              names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Numbers and names of the same arguments, each filled in from the other
    through ``fun``'s signature when only one is given (as ``jax.jit`` does).

    >>> _complete(lambda a, b, *, c: 0, (1,), ())
    ((1,), ('b',))
    >>> _complete(lambda a, b, *, c: 0, (), ('b', 'c'))
    ((1,), ('b', 'c'))
    """
    if bool(nums) == bool(names):
        return nums, names
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):  # no signature (some builtins): numbers only
        return nums, names
    either = [(k, p.name) for k, p in enumerate(params)
              if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    if names:
        return tuple(k for k, n in either if n in names), names
    return nums, tuple(n for k, n in either if k in nums)


class Jitted:
    """The compiled function :func:`jit` returns; call it like ``f``.

    ``explain(*args)`` shows the clusters it plans for those arguments.
    """

    def __init__(self, fun: Callable[..., Any], options: PlanOptions,
                 static: tuple[tuple[int, ...], tuple[str, ...]],
                 donate: tuple[tuple[int, ...], tuple[str, ...]], precision: Any) -> None:
        self._fun = fun
        self._options = options
        self._static_nums, self._static_names = _complete(fun, *static)
        self._precision = precision
        functools.update_wrapper(self, fun, updated=())
        # Named after fun (and with its signature), so the staged program is
        # named as jax.jit(fun)'s and jax.jit reads the same argument names.
        def traced(*args: Any, **kwargs: Any) -> Any:
            return self._traced(*args, **kwargs)

        functools.update_wrapper(traced, fun)
        donate_nums, donate_names = _complete(fun, *donate)
        try:
            self._compiled = jax.jit(traced, static_argnums=self._static_nums,
                                     static_argnames=self._static_names,
                                     donate_argnums=donate_nums, donate_argnames=donate_names)
        except ValueError as e:  # an argument number or name fun does not have
            raise ContractError(f"contract.jit: {e}") from None

    def _program(self, args: tuple, kwargs: dict) -> tuple[Program, Any, Any, list[Any]]:
        """Trace ``fun`` once, on its non-static arguments; find and plan its clusters.

        Static arguments (by position or by name) are fixed in the traced
        closure, so the jaxpr's inputs are exactly the leaves of the others.
        """
        n = len(args)
        static = {s + n if s < 0 else s for s in self._static_nums} & set(range(n))
        fixed = {k: v for k, v in kwargs.items() if k in self._static_names}
        dynamic = ([a for k, a in enumerate(args) if k not in static],
                   {k: v for k, v in kwargs.items() if k not in fixed})

        def fun(dyn_args: list, dyn_kwargs: dict) -> Any:
            it = iter(dyn_args)
            full = [args[k] if k in static else next(it) for k in range(n)]
            return self._fun(*full, **{k: fixed[k] if k in fixed else dyn_kwargs[k]
                                       for k in kwargs})

        closed, shapes = jax.make_jaxpr(fun, return_shape=True)(*dynamic)
        prog = build(closed, self._options, self._precision)
        return prog, closed, shapes, jax.tree.leaves(dynamic)

    def _traced(self, *args: Any, **kwargs: Any) -> Any:
        # Runs once per signature, while jax.jit traces; fun itself is traced once.
        prog, closed, shapes, leaves = self._program(args, kwargs)
        if prog.rewritten:
            outs = evaluate(prog, leaves)
        else:
            outs = jaxpr_as_fun(closed)(*leaves)  # exactly jax.jit(f)'s program
        return jax.tree.unflatten(jax.tree.structure(shapes), outs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._compiled(*args, **kwargs)

    def explain(self, *args: Any, **kwargs: Any) -> Explanation:
        """The contraction clusters found for these arguments (print it for a report)."""
        prog = self._program(args, kwargs)[0]
        return Explanation(tuple(prog.clusters))

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """``jax.jit``'s lowering of the rewritten program (``.as_text()`` shows it)."""
        return self._compiled.lower(*args, **kwargs)

    def __repr__(self) -> str:
        return f"contract.jit({getattr(self._fun, '__name__', self._fun)!r})"


def jit(fun: Callable[..., Any] | None = None, *, optimize: Any = "auto",
        static_argnums: int | Sequence[int] | None = None,
        static_argnames: str | Sequence[str] | None = None,
        donate_argnums: int | Sequence[int] | None = None,
        donate_argnames: str | Sequence[str] | None = None,
        precision: Any = None, memory_limit: int | str | None = None, mesh: Any = None) -> Any:
    """Compile ``fun`` with every contraction chain in it planned as one einsum.

    ``optimize`` names the path optimizer for every cluster (as in
    :func:`contract.einsum`); ``static_argnums``/``static_argnames`` and
    ``donate_argnums``/``donate_argnames`` mean what they mean to ``jax.jit``
    (a static argument may be passed by position or by keyword);
    ``precision`` overrides the precision of rewritten clusters (default:
    what the written ``dot_general``s asked for); ``memory_limit`` (bytes or
    ``"max_input"``) slices each rewritten cluster to fit and ``mesh`` spreads
    its slices over a ``jax.sharding.Mesh``, as in :func:`contract.einsum`.
    Works as a decorator with or without options.

    >>> import jax.numpy as jnp
    >>> f = jit(lambda a, b: (a * b).sum(0), optimize="greedy")
    >>> f(jnp.ones((3, 2)), jnp.ones((3, 2))).tolist()
    [3.0, 3.0]
    >>> g = jit(lambda x, y, n: (x @ y @ x) * n, static_argnames="n")
    >>> g(jnp.ones((4, 2)), jnp.ones((2, 4)), n=2).shape
    (4, 2)
    >>> jit(3)
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: contract.jit needs a callable, got int
    """
    if fun is None:
        return functools.partial(jit, optimize=optimize, static_argnums=static_argnums,
                                 static_argnames=static_argnames, donate_argnums=donate_argnums,
                                 donate_argnames=donate_argnames, precision=precision,
                                 memory_limit=memory_limit, mesh=mesh)
    if not callable(fun):
        raise ContractError(f"contract.jit needs a callable, got {type(fun).__name__}")
    _check_optimize(optimize)
    if memory_limit is not None and memory_limit != "max_input":
        resolve_limit(memory_limit, None)  # reject a bad budget now, not at trace time
    options = PlanOptions(optimize, memory_limit, None if mesh is None else check_mesh(mesh))
    static = (_argnums(static_argnums, "static_argnums"),
              _argnames(static_argnames, "static_argnames"))
    donate = (_argnums(donate_argnums, "donate_argnums"),
              _argnames(donate_argnames, "donate_argnames"))
    return Jitted(fun, options, static, donate, check_precision(precision))
