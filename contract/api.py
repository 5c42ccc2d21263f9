"""The einsum entry points: :func:`einsum`, :func:`plan`, :func:`expression`.

Eager calls are cheap: each spec and option set maps (one dictionary lookup)
to a ``jax.jit``'d function that plans while it traces, so jit's own cache
dispatches on shapes and dtypes and a repeated call costs a jitted call plus
about a microsecond. Under a JAX
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

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .backend import measure
from .backend.host import on_host
from .backend.layout import Found, read
from .backend.policy import HOST_MIN_STEPS
from .backend.program import program
from .backend.sharded import check_mesh, in_shardings
from .caching import LRU, memoized
from .errors import ContractError
from .planner import Plan, SlicedPlan, check_limit, make_plan, shard
from .semiring import check_call, name_of as semiring_name_of
from .spec import Spec, from_sublists, parse
from .validate import (as_operand, check_precision, check_strip, concrete_type, failed_in_jax,
                       is_array, is_concrete, is_tracer, numeric_dtype, refused_by_jax,
                       unsupported_keywords)

__all__ = ["einsum", "plan", "expression", "Expression"]

# (plan, precision, mesh) -> the jax.jit'd program that runs it.
_COMPILED: "LRU[Callable[..., jax.Array]]" = LRU("compiled plans")
# Eager calls made at least once (spec, options, operand shapes and dtypes):
# only a first call may run on the host (backend/host.py).
_STARTED: "LRU[bool]" = LRU("started eager calls")


def _split(args: Sequence[Any]) -> tuple[Spec, list[Any]]:
    if not args:
        raise ContractError("einsum needs a spec and operands")
    if isinstance(args[0], str):
        return parse(args[0]), list(args[1:])
    return from_sublists(args)


def _plan_for(spec: Spec, arrays: Sequence[Any], optimize: Any, preferred: Any,
              memory_limit: Any, mesh: Any = None, precision: Any = None,
              layout: Found | None = None, narrow: bool = True,
              semiring: str = "sum-product") -> Plan | SlicedPlan:
    """The plan for ``arrays``; ``narrow=False`` (``plan()``) keeps 64-bit dtypes
    that x64 mode would narrow: the plan is for the dtypes asked for.
    ``semiring`` is a name :func:`contract.semiring.resolve` knows."""
    bound = spec.bind([a.shape for a in arrays])
    dtypes = tuple((jax.dtypes.canonicalize_dtype(a.dtype) if narrow else jnp.dtype(a.dtype)).name
                   for a in arrays)
    if semiring != "sum-product":
        check_call(semiring, dtypes, preferred, mesh)
    if preferred is not None:
        result = numeric_dtype(preferred, "preferred_element_type", "einsum", narrow=narrow).name
        if jnp.dtype(result).kind != "c" and any(jnp.iscomplexobj(a) for a in arrays):
            raise ContractError(
                f"preferred_element_type={result} would drop the imaginary part of complex "
                "operands; use a complex dtype"
            )
    elif any(jax.dtypes.canonicalize_dtype(d) != d for d in dtypes):
        # 64-bit dtypes kept with x64 off (narrow=False): jnp.promote_types
        # keeps them, where result_type would narrow them and warn.
        result = functools.reduce(jnp.promote_types, dtypes).name
    else:
        # Arrays keep their weak type (a Python 2.0 does not promote bf16).
        kinds = [a if isinstance(a, (jax.Array, jax.core.Tracer)) else a.dtype for a in arrays]
        result = jax.dtypes.canonicalize_dtype(jnp.result_type(*kinds)).name
    # Sharded operands and meshes shard the plan (planner/sharding.py). Auto
    # mesh axes count only where there is something to decide (a budget, a
    # mesh); otherwise XLA places the work as it does for jnp.
    if mesh is not None:
        check_mesh(mesh)
    if layout is None:
        layout = read(arrays, mesh, auto=mesh is not None or memory_limit is not None)
    # memory_limit slices the plan (planner/slicing.py), per device once sharded:
    # the whole plan need not fit it. "measure" times candidates compiled ahead
    # of time, outside any trace (backend/measure.py).
    whole = memory_limit if layout is None else None
    p = make_plan(bound, dtypes, result, optimize, whole, measure.chooser(precision), semiring)
    if layout is None:
        return p
    return shard(p, layout[0], mesh is not None, check_limit(memory_limit))


def _hint(arrays: Sequence[Any], mesh: Any) -> Found | None:
    """The layout of concrete operands (auto axes included), which a trace hides."""
    return read(arrays, mesh, auto=True)


def _run(p: Plan | SlicedPlan, precision: Any, mesh: Any, arrays: list[Any],
         strip_exponent: bool = False) -> Any:
    """Run ``p`` on concrete or traced operands; with ``mesh=`` concrete ones are
    first put where the plan holds them (each device receives its blocks only)."""
    if any(map(is_tracer, arrays)):
        return program(p, precision, mesh, strip_exponent=strip_exponent)(*arrays)
    layout = None
    if mesh is not None or isinstance(p, SlicedPlan):
        if mesh is not None and isinstance(p, SlicedPlan) and p.mesh:
            arrays = [x if isinstance(x, jax.Array) and _on(x, mesh) else jax.device_put(x, s)
                      for x, s in zip(arrays, in_shardings(p, mesh))]
        layout = _hint(arrays, mesh)
    return _compiled(p, precision, mesh, layout, strip_exponent)(*arrays)


def _first_call(spec: str, ops: Sequence[Any], optimize: Any, precision: Any, preferred: Any,
                memory_limit: Any) -> Any:
    """The result of the first eager call of a large einsum where it runs on
    the host (:func:`contract.backend.host.on_host`); None where it compiles, as every later call does."""
    try:
        key = (spec, optimize, precision, preferred, memory_limit,
               tuple((np.shape(x), getattr(x, "dtype", type(x))) for x in ops))
        if _STARTED.get(key):
            return None
    except TypeError:  # an unhashable option: the slow path
        return None
    _STARTED.put(key, True)
    arrays = [as_operand(x, n) for n, x in enumerate(ops)]
    prec = check_precision(precision)
    return on_host(_plan_for(parse(spec), arrays, optimize, preferred, memory_limit, None, prec),
                    prec, ops)


def _on(x: jax.Array, mesh: Any) -> bool:
    s = x.sharding
    return isinstance(s, jax.sharding.NamedSharding) and s.mesh == mesh


def _compiled(plan: Plan | SlicedPlan, precision: Any, mesh: Any = None,
              layout: Found | None = None, strip_exponent: bool = False) -> Callable[..., Any]:
    return _COMPILED.get_or_make((plan, precision, mesh, layout, strip_exponent),
                                 lambda: jax.jit(program(plan, precision, mesh, layout,
                                                         strip_exponent)))


def einsum(*args: Any, out: None = None, optimize: Any = "auto", precision: Any = None,
           preferred_element_type: Any = None, memory_limit: int | str | None = None,
           mesh: Any = None, out_sharding: Any = None, strip_exponent: bool = False,
           semiring: Any = None, **unsupported: Any) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Evaluate an einsum with a planned contraction order.

    ``args`` is ``spec, *operands`` or NumPy's interleaved sublist form.
    Named labels and ``...`` dimensions of size 1 broadcast as in NumPy
    (contracted labels too), without materialising the broadcast.
    ``optimize``: ``"auto"`` (default; also ``True`` and ``None``),
    ``"greedy"``, ``"optimal"``, ``"dp"``, ``"branch-all"``/``"branch-2"``/``"branch-1"``,
    ``"random-greedy"``, ``"auto-hq"``, any opt_einsum name or alias in any case, an
    explicit linear path (NumPy's ``["einsum_path", ...]`` too), NumPy's
    ``(name, memory_limit)`` pair, an opt_einsum ``PathOptimizer`` such as a cotengra
    ``HyperOptimizer``, or ``False`` (left to right). ``precision`` takes every
    value ``jnp.einsum`` does (see :func:`contract.validate.check_precision`);
    ``out`` must be None (JAX arrays are immutable).
    ``memory_limit`` (bytes or ``"max_input"``) slices a plan whose peak
    (bytes held beyond the inputs: intermediates and output) is over it (per
    device when the operands are sharded); ``mesh`` (a
    ``jax.sharding.Mesh``) shards the operands across its devices along
    labels the planner chooses (docs/scaling.md). Sharded operands give a
    result sharded as ``jnp.einsum``'s would be; ``out_sharding`` (a
    ``NamedSharding``, or a ``PartitionSpec`` of the mesh in context) lays the
    result out as given, as ``jnp.einsum(..., out_sharding=)`` does.
    ``strip_exponent=True`` returns ``(mantissa, exponent)``, the result being
    ``mantissa * 10**exponent`` (as cotengra's): operands and intermediates
    are rescaled as they are made, so a network whose value leaves the float
    range does not overflow; the mantissa has a largest magnitude of 1, the
    exponent is a scalar of the result's real dtype (at least float32), and
    ``jax.grad`` through the mantissa holds the scales constant
    (docs/scaling.md, "Overflow"). Not with ``mesh=`` or integer results.
    ``semiring`` runs the same planned contraction with another ⊕ and ⊗
    (docs/semirings.md): ``None``/``"sum-product"``, ``"log"`` (operands are
    logs: ⊕ log-add-exp, ⊗ +), ``"max-plus"``, ``"min-plus"``,
    ``"max-product"`` (non-negative operands) or a
    :class:`contract.semiring.Semiring` of your own.

    >>> import numpy as np
    >>> einsum("ii", np.eye(3, dtype=np.float32)).item()
    3.0
    >>> einsum("batch chan, chan -> batch", np.ones((2, 3), np.float32), np.ones(3, np.float32)).tolist()
    [3.0, 3.0]
    """
    if unsupported:
        raise unsupported_keywords(unsupported)
    if out is not None:
        raise unsupported_keywords({"out": out})
    if strip_exponent is not False:
        strip_exponent = check_strip(strip_exponent, mesh, out_sharding)
    ring = "sum-product" if semiring is None else semiring_name_of(
        semiring, args[1:] if args and isinstance(args[0], str) else args)
    if ring != "sum-product" and strip_exponent:
        raise ContractError(f"strip_exponent is for sum-product contractions, not "
                            f"semiring={ring!r}")
    if out_sharding is not None:
        spec, raw = _split(args)
        arrays = [as_operand(x, n) for n, x in enumerate(raw)]
        rank = len(spec.bind([a.shape for a in arrays]).output)
        return _placed(lambda *ops: einsum(str(spec), *ops, optimize=optimize,
                                           precision=precision, memory_limit=memory_limit,
                                           preferred_element_type=preferred_element_type,
                                           mesh=mesh, semiring=ring),
                       arrays, rank, out_sharding)
    if mesh is None and args and type(args[0]) is str:
        ops = args[1:]
        # A budget on auto-sharded arrays needs their layout, which the trace hides.
        hint = None if memory_limit is None else _hint(ops, None)
        # Type lookups first (C calls only): every microsecond here is on each eager call.
        if all(map(concrete_type, map(type, ops))) or all(map(is_concrete, ops)):
            if len(ops) > HOST_MIN_STEPS and not strip_exponent and ring == "sum-product":
                first = _first_call(args[0], ops, optimize, precision, preferred_element_type,
                                    memory_limit)
                if first is not None:
                    return first
            try:
                fn = _eager(args[0], optimize, precision, preferred_element_type, memory_limit,
                            hint, strip_exponent, ring)
            except TypeError:  # unhashable option (e.g. a list path): the slow path
                pass
            else:
                try:
                    return fn(*ops)
                except ContractError as e:
                    # Raised while jax.jit traced the planner: drop JAX's frames and note.
                    raise ContractError(*e.args) from None
                except (ValueError, TypeError, jax.errors.JaxRuntimeError) as e:
                    if not refused_by_jax(e):
                        raise  # our own bug: its traceback as it is
                    raise failed_in_jax(args[0], precision, e) from e
    spec, raw = _split(args)
    # With a mesh, host arrays go straight to their devices' blocks (no copy on one device).
    arrays = [x if mesh is not None and _host(x) else as_operand(x, n) for n, x in enumerate(raw)]
    prec = check_precision(precision)
    p = _plan_for(spec, arrays, optimize, preferred_element_type, memory_limit, mesh, prec,
                  semiring=ring)
    try:
        return _run(p, prec, mesh, arrays, strip_exponent)
    except (ValueError, TypeError, jax.errors.JaxRuntimeError) as e:
        if isinstance(e, ContractError) or not refused_by_jax(e):
            raise  # ours, user error or bug: its traceback as it is
        raise failed_in_jax(str(spec), precision, e) from e


def _placed(compute: Callable[..., jax.Array], arrays: list[Any], rank: int,
            out_sharding: Any) -> jax.Array:
    """``compute(*arrays)`` (of rank ``rank``) laid out as ``out_sharding``.

    As in ``jnp.einsum``: over explicit mesh axes the contraction runs with
    them as auto axes and the result is resharded (``jax.sharding.auto_axes``);
    over auto axes the layout is a ``with_sharding_constraint``.
    """
    s = out_sharding
    if isinstance(s, jax.sharding.PartitionSpec):
        mesh = jax.sharding.get_abstract_mesh()
        if mesh.empty:
            raise ContractError(f"out_sharding={s} needs a mesh: call under jax.set_mesh(mesh) "
                                "or pass a jax.sharding.NamedSharding")
        s = jax.sharding.NamedSharding(mesh, s)
    if not isinstance(s, jax.sharding.NamedSharding):
        raise ContractError("out_sharding must be None, a jax.sharding.NamedSharding or a "
                            f"PartitionSpec, got {type(s).__name__}")
    if len(s.spec) > rank:
        raise ContractError(f"out_sharding {s.spec} names {len(s.spec)} axes but the result "
                            f"has rank {rank}")
    if s.mesh.explicit_axes:
        return jax.sharding.auto_axes(compute, axes=s.mesh.explicit_axes, out_sharding=s)(*arrays)
    return jax.lax.with_sharding_constraint(compute(*arrays), s)


def _host(x: Any) -> bool:
    return type(x) is np.ndarray and (x.dtype.kind in "biufc" or x.dtype.name == "bfloat16")


# Eager fast path: (spec text, options) -> one jax.jit'd function that plans
# while it traces. jit's own C++ cache then dispatches on shapes and dtypes,
# so a repeated call costs a jitted call plus this lookup.
@memoized("eager einsums")
def _eager(spec: str, optimize: Any, precision: Any, preferred: Any, memory_limit: Any,
           layout: Found | None, strip_exponent: bool = False,
           semiring: str = "sum-product") -> Callable[..., Any]:
    """The jitted eager entry for one spec and option set: it plans at trace time
    (once per operand signature) and runs the plan inline. ``layout`` is the
    operands' layout read before the trace (only needed for auto mesh axes).

    >>> _eager("i,i->", "auto", None, None, None, None)(np.ones(3), np.ones(3)).item()
    3.0
    """

    def einsum(*operands: Any) -> Any:
        parsed = parse(spec)
        arrays = [as_operand(x, n) for n, x in enumerate(operands)]
        prec = check_precision(precision)
        p = _plan_for(parsed, arrays, optimize, preferred, memory_limit, None, prec, layout,
                      semiring=semiring)
        return program(p, prec, None, layout, strip_exponent)(*arrays)

    return jax.jit(einsum)


def _spec_and_shapes(args: Sequence[Any], dtype: Any,
                     narrow: bool = True) -> tuple[Spec, list[Any]]:
    """Accept operands, shapes, or ``jax.ShapeDtypeStruct``s after the spec.

    ``dtype`` (for shapes) is one dtype, a sequence of one per operand, or
    None for float32; ``narrow`` as in :func:`~.validate.numeric_dtype`.
    """
    spec, raw = _split(args)
    if isinstance(dtype, (list, tuple)):
        if len(dtype) != len(raw):
            raise ContractError(f"dtype lists {len(dtype)} dtypes for {len(raw)} operand(s)")
        dtypes = list(dtype)
    else:
        # Checked once: a dtype JAX cannot honour warns once per call, as in jnp.
        dtypes = [numeric_dtype("float32" if dtype is None else dtype, "dtype", "plan",
                                narrow=narrow)] * len(raw)
    out = []
    for n, (x, dt) in enumerate(zip(raw, dtypes)):
        if isinstance(x, (tuple, list)) and all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in x
        ):
            if any(d < 0 for d in x):
                raise ContractError(f"shape {tuple(x)} of operand {n} has a negative size")
            out.append(jax.ShapeDtypeStruct(tuple(int(d) for d in x),
                                            numeric_dtype(dt, "dtype", "plan", narrow=narrow)))
        elif isinstance(x, jax.ShapeDtypeStruct):
            out.append(x)
        else:
            out.append(as_operand(x, n))
    return spec, out


def plan(*args: Any, optimize: Any = "auto", dtype: Any = None, preferred_element_type: Any = None,
         memory_limit: int | str | None = None, mesh: Any = None,
         precision: Any = None, semiring: Any = None) -> Plan | SlicedPlan:
    """Plan a contraction without running it; ``print()`` the result for a report.

    Returns a :class:`~contract.planner.SlicedPlan` when ``memory_limit``,
    ``mesh`` or sharded operands make it slice (a sharded plan names its
    mesh, sharded labels and collectives), else a :class:`~contract.planner.Plan`.

    Operands may be arrays, shapes (tuples of ints, with ``dtype=``, default
    float32) or ``jax.ShapeDtypeStruct``s (with a ``sharding``, as sharded arrays).

    >>> p = plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4))
    >>> p.path, p.flops
    (((1, 2), (0, 1)), 5120)
    """
    # A plan is data: it plans the dtypes asked for, whatever x64 mode would run.
    spec, ops = _spec_and_shapes(args, dtype, narrow=False)
    return _plan_for(spec, ops, optimize, preferred_element_type, memory_limit, mesh,
                     check_precision(precision), narrow=False,
                     semiring="sum-product" if semiring is None else semiring_name_of(semiring))


class Expression:
    """A planned, compiled contraction for fixed shapes and dtypes.

    With ``mesh=``, ``in_shardings`` lists where each operand should live
    (``jax.device_put`` them there once; calls then move no data). A call
    with ``strip_exponent=True`` returns ``(mantissa, exponent)`` as
    :func:`einsum` does.

    >>> import numpy as np
    >>> e = expression("ij,jk->ik", (2, 3), (3, 4))
    >>> x, y = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    >>> e(x, y).shape
    (2, 4)
    >>> m, exponent = e(1e30 * x, 1e30 * y, strip_exponent=True)
    >>> m[0, 0].item(), round(exponent.item(), 4)
    (1.0, 60.4771)
    """

    def __init__(self, plan: Plan | SlicedPlan, shapes: Sequence[tuple[int, ...]], dtypes: Sequence[Any],
                 precision: Any, mesh: Any = None) -> None:
        self.plan = plan
        self._shapes = tuple(tuple(s) for s in shapes)
        self._dtypes = tuple(dtypes)
        self._precision = precision
        self._mesh = mesh
        self._fn = _compiled(plan, precision, mesh)
        # Where each operand should live for mesh= (jax.device_put them there first
        # and no call moves data onto the devices), else None.
        self.in_shardings = (in_shardings(plan, mesh) if mesh is not None
                             and isinstance(plan, SlicedPlan) and plan.mesh else None)
        # The compiled program for operands already placed at in_shardings, made by
        # the first such call: later ones skip the layout reading (~45 us a call).
        self._placed_fn: Callable[..., jax.Array] | None = None
        self._started = False  # only a first call may run on the host

    def _placed(self, operands: tuple) -> bool:
        """Whether ``operands`` are concrete arrays of the built shapes and dtypes,
        each already at its ``in_shardings`` entry."""
        return self.in_shardings is not None and len(operands) == len(self.in_shardings) and all(
            is_array(x) and x.shape == shape and x.dtype == dt and x.sharding == s
            for x, shape, dt, s in zip(operands, self._shapes, self._dtypes, self.in_shardings))

    def __call__(self, *operands: Any,
                 strip_exponent: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
        if strip_exponent is not False:
            strip_exponent = check_strip(strip_exponent, self._mesh)
        if self._placed_fn is not None and self._placed(operands):
            return self._placed_fn(*operands)
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
        if self._mesh is None and not isinstance(self.plan, SlicedPlan):
            if any(map(is_tracer, arrays)):
                return program(self.plan, self._precision, strip_exponent=strip_exponent)(*arrays)
            fn = (_compiled(self.plan, self._precision, strip_exponent=True) if strip_exponent
                  else self._fn)
            first, self._started = not self._started, True
            if first and not strip_exponent:
                out = on_host(self.plan, self._precision, operands)
                if out is not None:
                    return out
            try:
                return fn(*arrays)
            except (ValueError, TypeError, jax.errors.JaxRuntimeError) as e:
                if isinstance(e, ContractError) or not refused_by_jax(e):
                    raise  # ours, user error or bug: its traceback as it is
                raise failed_in_jax(self.plan.spec, self._precision, e) from e
        if self._placed(operands):
            self._placed_fn = _compiled(self.plan, self._precision, self._mesh,
                                        _hint(arrays, self._mesh))
            return self._placed_fn(*arrays)
        return _run(self.plan, self._precision, self._mesh, arrays, strip_exponent)

    def __repr__(self) -> str:
        return f"Expression({self.plan.spec!r}, shapes={self._shapes})"


def expression(*args: Any, dtype: Any = None, optimize: Any = "auto", precision: Any = None,
               preferred_element_type: Any = None, memory_limit: int | str | None = None,
               mesh: Any = None, semiring: Any = None) -> Expression:
    """Build a reusable compiled contraction for the given shapes.

    ``dtype`` is one dtype for every operand or a sequence, one per operand;
    ``semiring`` as for :func:`einsum`.
    """
    spec, ops = _spec_and_shapes(args, dtype)
    prec = check_precision(precision)
    ring = "sum-product" if semiring is None else semiring_name_of(semiring)
    p = _plan_for(spec, ops, optimize, preferred_element_type, memory_limit, mesh, prec,
                  semiring=ring)
    return Expression(p, [o.shape for o in ops],
                      [jax.dtypes.canonicalize_dtype(o.dtype) for o in ops], prec, mesh)
