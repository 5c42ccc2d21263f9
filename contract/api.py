"""The einsum entry points: :func:`einsum`, :func:`plan`, :func:`expression`.

Eager calls are cheap: after the first call with a given spec and operand
signature, a dictionary lookup finds the compiled program directly, so a
repeated call costs a jitted call plus a few microseconds. Under a JAX
transformation (``jax.jit``, ``grad``, ``vmap``) the plan is executed inline
so the surrounding trace sees plain ``dot_general``s.

>>> import numpy as np, contract
>>> a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
>>> contract.einsum("ij,jk->ik", a, b).shape
(2, 4)
>>> contract.einsum(a, [0, 1], b, [1, 2], [0, 2]).shape
(2, 4)
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .scale import fit, program
from .errors import ContractError
from .plan import Plan, make_plan
from .spec import Spec, from_sublists, parse

__all__ = ["einsum", "plan", "expression", "Expression", "as_operand"]

_PRECISIONS = {
    "default": lax.Precision.DEFAULT, "high": lax.Precision.HIGH,
    "highest": lax.Precision.HIGHEST, "fastest": lax.Precision.DEFAULT,
}
# Fast path: (spec text, operand signatures, options) -> compiled program.
_FAST: dict[Any, Callable[..., jax.Array]] = {}
_FAST_SIZE = 4096
_COMPILED: dict[Any, Callable[..., jax.Array]] = {}


def _signature(x: Any) -> Any:
    """A cheap hashable (shape, dtype, weak) key, or None for the slow path."""
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
        return (x.shape, x.dtype, x.weak_type)
    if type(x) is np.ndarray:
        return (x.shape, x.dtype, False)
    return None


def as_operand(x: Any, n: int) -> jax.Array:
    """Convert one operand to a JAX array or raise a clear :class:`ContractError`.

    >>> as_operand([1, 2], 0).dtype
    dtype('int32')
    >>> as_operand("ab", 1)
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: operand 1 is a str, not an array or number
    """
    if isinstance(x, (jax.Array, jax.core.Tracer)):
        return x
    if isinstance(x, (bool, int, float, complex)):
        return jnp.asarray(x)  # weakly typed, as in jnp: 2.0 * bf16 stays bf16
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError as e:
            raise ContractError(f"operand {n} is not a rectangular array: {e}") from None
        if arr.dtype.kind not in "biufc" and arr.dtype.name != "bfloat16":
            raise ContractError(
                f"operand {n} has dtype {arr.dtype}, which is not numeric"
            )
        return jnp.asarray(arr)
    raise ContractError(f"operand {n} is a {type(x).__name__}, not an array or number")


def _precision(precision: Any) -> Any:
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, str) and precision.lower() in _PRECISIONS:
        return _PRECISIONS[precision.lower()]
    if isinstance(precision, tuple) and len(precision) == 2:
        return tuple(_precision(p) for p in precision)
    raise ContractError(
        f"unknown precision {precision!r}; use None, a jax.lax.Precision, or one of "
        + ", ".join(repr(k) for k in _PRECISIONS)
    )


def _dtype_name(dtype: Any, what: str) -> str:
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise ContractError(f"{what} {dtype!r} is not a dtype") from None
    if dt.kind not in "biufc" and dt.name != "bfloat16":
        raise ContractError(f"{what} {dt} is not a numeric dtype")
    return jax.dtypes.canonicalize_dtype(dt).name


def _split(args: Sequence[Any]) -> tuple[Spec, list[Any]]:
    if not args:
        raise ContractError("einsum needs a spec and operands")
    if isinstance(args[0], str):
        return parse(args[0]), list(args[1:])
    return from_sublists(args)


def _plan_for(spec: Spec, arrays: Sequence[jax.Array], optimize: Any,
              preferred: Any, memory_limit: Any, mesh: Any = None) -> Plan:
    bound = spec.bind([a.shape for a in arrays])
    dtypes = tuple(jax.dtypes.canonicalize_dtype(a.dtype).name for a in arrays)
    if preferred is not None:
        result = _dtype_name(preferred, "preferred_element_type")
    else:
        # Arrays keep their weak type (a Python 2.0 does not promote bf16).
        kinds = [a if isinstance(a, (jax.Array, jax.core.Tracer)) else a.dtype for a in arrays]
        result = jax.dtypes.canonicalize_dtype(jnp.result_type(*kinds)).name
    # memory_limit slices the plan (contract/slicing.py); mesh spreads it (contract/shard.py).
    return fit(make_plan(bound, dtypes, result, optimize, memory_limit), mesh=mesh)


def _compiled(plan: Plan, precision: Any, mesh: Any = None) -> Callable[..., jax.Array]:
    key = (plan, precision, mesh)
    fn = _COMPILED.get(key)
    if fn is None:
        if len(_COMPILED) > _FAST_SIZE:
            _COMPILED.clear()
        fn = _COMPILED[key] = jax.jit(program(plan, precision, mesh))
    return fn


def einsum(*args: Any, optimize: Any = "auto", precision: Any = None,
           preferred_element_type: Any = None, memory_limit: int | str | None = None,
           mesh: Any = None) -> jax.Array:
    """Evaluate an einsum with a planned contraction order.

    ``args`` is ``spec, *operands`` or NumPy's interleaved sublist form.
    ``optimize``: ``"auto"`` (default), ``"greedy"``, ``"optimal"``, ``"dp"``,
    ``"branch-all"``/``"branch-2"``/``"branch-1"``, ``"random-greedy"``,
    ``"auto-hq"``, an explicit linear path, or ``False`` (left to right).
    ``memory_limit`` (bytes or ``"max_input"``) slices a plan whose peak is
    over it; ``mesh`` (a ``jax.sharding.Mesh``) shares the slices among its
    devices (docs/scaling.md).

    >>> import numpy as np
    >>> einsum("ii", np.eye(3, dtype=np.float32)).item()
    3.0
    >>> einsum("batch chan, chan -> batch", np.ones((2, 3), np.float32), np.ones(3, np.float32)).tolist()
    [3.0, 3.0]
    """
    key = None
    if args and type(args[0]) is str:
        sigs = tuple(map(_signature, args[1:]))
        if None not in sigs:
            try:
                key = (args[0], sigs, optimize, precision, preferred_element_type, memory_limit,
                       mesh)
                fn = _FAST.get(key)
            except TypeError:  # unhashable option (e.g. a list path)
                key = fn = None
            if fn is not None:
                return fn(*args[1:])
    spec, raw = _split(args)
    arrays = [as_operand(x, n) for n, x in enumerate(raw)]
    prec = _precision(precision)
    p = _plan_for(spec, arrays, optimize, preferred_element_type, memory_limit, mesh)
    if any(isinstance(a, jax.core.Tracer) for a in arrays):
        return program(p, prec, mesh)(*arrays)
    fn = _compiled(p, prec, mesh)
    if key is not None:
        if len(_FAST) > _FAST_SIZE:
            _FAST.clear()
        _FAST[key] = fn
    return fn(*arrays)


def _spec_and_shapes(args: Sequence[Any], dtype: Any) -> tuple[Spec, list[Any]]:
    """Accept operands, shapes, or ``jax.ShapeDtypeStruct``s after the spec.

    ``dtype`` (for shapes) is one dtype, a sequence of one per operand, or
    None for float32.
    """
    spec, raw = _split(args)
    if isinstance(dtype, (list, tuple)):
        if len(dtype) != len(raw):
            raise ContractError(f"dtype lists {len(dtype)} dtypes for {len(raw)} operand(s)")
        dtypes = list(dtype)
    else:
        dtypes = ["float32" if dtype is None else dtype] * len(raw)
    out = []
    for n, (x, dt) in enumerate(zip(raw, dtypes)):
        if isinstance(x, (tuple, list)) and all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in x
        ):
            if any(d < 0 for d in x):
                raise ContractError(f"shape {tuple(x)} of operand {n} has a negative size")
            out.append(jax.ShapeDtypeStruct(tuple(int(d) for d in x),
                                            jnp.dtype(_dtype_name(dt, "dtype"))))
        elif isinstance(x, jax.ShapeDtypeStruct):
            out.append(x)
        else:
            out.append(as_operand(x, n))
    return spec, out


def plan(*args: Any, optimize: Any = "auto", dtype: Any = None, preferred_element_type: Any = None,
         memory_limit: int | str | None = None, mesh: Any = None) -> Plan:
    """Plan a contraction without running it; ``print()`` the result for a report.

    Operands may be arrays, shapes (tuples of ints, with ``dtype=``, default
    float32) or ``jax.ShapeDtypeStruct``s.

    >>> p = plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4))
    >>> p.path, p.flops
    (((1, 2), (0, 1)), 5120)
    """
    spec, ops = _spec_and_shapes(args, dtype)
    return _plan_for(spec, ops, optimize, preferred_element_type, memory_limit, mesh)


class Expression:
    """A planned, compiled contraction for fixed shapes and dtypes.

    >>> import numpy as np
    >>> e = expression("ij,jk->ik", (2, 3), (3, 4))
    >>> e(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).shape
    (2, 4)
    """

    def __init__(self, plan: Plan, shapes: Sequence[tuple[int, ...]], dtypes: Sequence[Any],
                 precision: Any, mesh: Any = None) -> None:
        self.plan = plan
        self._shapes = tuple(tuple(s) for s in shapes)
        self._dtypes = tuple(dtypes)
        self._precision = precision
        self._mesh = mesh
        self._fn = _compiled(plan, precision, mesh)

    def __call__(self, *operands: Any) -> jax.Array:
        if len(operands) != len(self._shapes):
            raise ContractError(
                f"expression '{self.plan.spec}' takes {len(self._shapes)} operand(s), "
                f"got {len(operands)}"
            )
        arrays = [as_operand(x, n) for n, x in enumerate(operands)]
        for n, (a, shape, dt) in enumerate(zip(arrays, self._shapes, self._dtypes)):
            if tuple(a.shape) != shape:
                raise ContractError(
                    f"operand {n} has shape {tuple(a.shape)} but expression '{self.plan.spec}' "
                    f"was built for {shape}"
                )
            if jax.dtypes.canonicalize_dtype(a.dtype) != dt:
                raise ContractError(
                    f"operand {n} has dtype {a.dtype} but expression '{self.plan.spec}' "
                    f"was built for {dt}; build another expression for it"
                )
        if any(isinstance(a, jax.core.Tracer) for a in arrays):
            return program(self.plan, self._precision, self._mesh)(*arrays)
        return self._fn(*arrays)

    def __repr__(self) -> str:
        return f"Expression({self.plan.spec!r}, shapes={self._shapes})"


def expression(*args: Any, dtype: Any = None, optimize: Any = "auto", precision: Any = None,
               preferred_element_type: Any = None, memory_limit: int | str | None = None,
               mesh: Any = None) -> Expression:
    """Build a reusable compiled contraction for the given shapes.

    ``dtype`` is one dtype for every operand or a sequence, one per operand.
    """
    spec, ops = _spec_and_shapes(args, dtype)
    p = _plan_for(spec, ops, optimize, preferred_element_type, memory_limit, mesh)
    return Expression(p, [o.shape for o in ops],
                      [jax.dtypes.canonicalize_dtype(o.dtype) for o in ops], _precision(precision),
                      mesh)
