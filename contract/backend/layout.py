"""Read how operands are sharded: JAX shardings -> a planner :class:`~contract.planner.Layout`.

An operand's sharding comes from its type (``jax.typeof(x).sharding``, which
carries explicit mesh axes even under a trace) or, for a concrete array, from
``x.sharding`` (which shows auto axes too). Auto axes are read only when
asked (``auto=True``): with auto axes and nothing else to decide, XLA's
propagation places the work, exactly as it does for ``jnp``.

>>> import numpy as np
>>> read([np.ones(3)]) is None
True
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
from jax.experimental.shard_alike import shard_alike
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from ..errors import ContractError
from ..planner import Layout

__all__ = ["held", "is_sharded", "mesh_shape", "read", "shard_like", "spec"]

Found = tuple[Layout, Any]  # the layout and the mesh to run on (Mesh or AbstractMesh)


def mesh_shape(mesh: Any) -> tuple[tuple[str, int], ...]:
    """``((axis, size), ...)`` of a Mesh or AbstractMesh, in mesh order."""
    return tuple((str(a), int(mesh.shape[a])) for a in mesh.axis_names)


def spec(axes: Sequence[tuple[str, ...]]) -> PartitionSpec:
    """A PartitionSpec from mesh axes per array axis (``()`` for whole).

    >>> spec([("x",), (), ("x", "y")])
    P('x', None, ('x', 'y'))
    """
    return PartitionSpec(*(None if not a else a[0] if len(a) == 1 else tuple(a) for a in axes))


def _axes(entry: Any) -> tuple[str, ...]:
    if entry is None or entry is PartitionSpec.UNCONSTRAINED:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)


def _sharding(x: Any, auto: bool) -> NamedSharding | None:
    """The NamedSharding ``x`` is known to have, if any."""
    if auto and isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
        s = x.sharding
        return s if isinstance(s, NamedSharding) else None
    if isinstance(x, jax.ShapeDtypeStruct):
        s = x.sharding
        return s if isinstance(s, NamedSharding) else None
    if not isinstance(x, (jax.Array, jax.core.Tracer)):
        return None
    s = jax.typeof(x).sharding
    return s if isinstance(s, NamedSharding) else None


def _split(s: NamedSharding | None, ndim: int, auto: bool) -> tuple[tuple[str, ...], ...]:
    """The mesh axes (of size > 1; explicit ones only unless ``auto``) of each axis."""
    if s is None or s.mesh.size == 1:
        return ((),) * ndim
    kinds = dict(zip(s.mesh.axis_names, s.mesh.axis_types))
    entries = (tuple(s.spec) + (None,) * ndim)[:ndim]
    return tuple(tuple(a for a in _axes(e) if (auto or kinds[a] == AxisType.Explicit)
                       and s.mesh.shape[a] > 1) for e in entries)


def held(x: Any) -> tuple[tuple[str, ...], ...]:
    """The explicit mesh axes of every axis of ``x``, as its type says.

    >>> held(jax.numpy.ones((2, 3)))
    ((), ())
    """
    return _split(_sharding(x, False), x.ndim, False)


def _abstract(mesh: Any) -> Any:
    return mesh.abstract_mesh if isinstance(mesh, Mesh) else mesh


def read(operands: Sequence[Any], mesh: Any = None, auto: bool = False) -> Found | None:
    """The operands' layout and the mesh to run on, or None when nothing is sharded.

    ``mesh`` (``mesh=``) is used even if no operand is sharded; operands
    sharded on another mesh are an error. Explicit mesh axes always count;
    auto ones only with ``auto`` (from concrete arrays: a trace hides them).
    """
    found: list[tuple[int, NamedSharding]] = []
    specs = []
    for n, x in enumerate(operands):
        s = _sharding(x, auto)
        axes = _split(s, len(getattr(x, "shape", ())), auto)
        if any(axes):
            found.append((n, s))  # type: ignore[arg-type]
        specs.append(axes)
    if mesh is None and not found:
        return None
    where = mesh
    for n, s in found:
        if where is None:
            where = s.mesh
        elif _abstract(s.mesh) != _abstract(where):
            what = "mesh=" if mesh is not None else f"operand {found[0][0]}'s mesh"
            raise ContractError(
                f"operand {n} is sharded over mesh {dict(s.mesh.shape)} but {what} is "
                f"{dict(where.shape)}: move it onto one mesh first (jax.device_put with a "
                "NamedSharding, or jax.sharding.reshard)")
        elif isinstance(s.mesh, Mesh) and not isinstance(where, Mesh):
            where = s.mesh  # a concrete mesh is as good and runs outside traces too
    return Layout(mesh_shape(where), tuple(specs)), where


def is_sharded(x: Any) -> bool:
    """Whether ``x`` is split over several devices (auto axes of a concrete array too).

    >>> is_sharded(jax.numpy.ones(3))
    False
    """
    return read([x], auto=True) is not None


def shard_like(like: Callable[[], jax.Array], out: jax.Array) -> jax.Array:
    """``out``, tied to the sharding of ``like()`` (same shape) for XLA's propagation.

    Over auto mesh axes a trace shows no sharding, so where contract's program
    differs from ``jnp``'s (a scan, triangular products) XLA could end up
    replicating a result ``jnp`` keeps sharded; ``shard_alike`` makes both
    arrays take one sharding. On one device there is nothing to tie, and
    ``like`` is not even built.

    >>> import jax.numpy as jnp
    >>> shard_like(lambda: jnp.ones(2), jnp.zeros(2)).tolist()
    [0.0, 0.0]
    """
    if jax.device_count() == 1:
        return out
    return shard_alike(like(), out)[1]
