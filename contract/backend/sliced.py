"""Run a :class:`~contract.planner.SlicedPlan`: all slices as one ``lax.scan``.

The scan's carry is the output accumulator: inputs are cut with
``lax.dynamic_slice_in_dim`` (no copies of the full inputs), each slice runs
the pairwise ``dot_general`` steps of the slice plan, and its result is added
into the accumulator at its offset.

>>> import numpy as np, contract
>>> from contract.planner import slice_plan
>>> a, b = np.ones((8, 6), np.float32), np.ones((6, 4), np.float32)
>>> sp = slice_plan(contract.plan("ij,jk->ik", a, b), {"j": 3, "i": 2})
>>> run_slices(sp, None, [a, b]).tolist()[0]
[6.0, 6.0, 6.0, 6.0]
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from ..planner import SlicedPlan, slice_plan
from ..semiring import resolve
from .exponent import align
from .jax import execute
from .layout import shard_like
from .semiring import zero_of
from .semiring_plan import combine, execute as semiring_execute

__all__ = ["cast_result", "run_slices"]


def cast_result(x: jax.Array, dtype: str) -> jax.Array:
    """Cast an accumulator to the result dtype, as the backend does (bool: nonzero).

    >>> cast_result(jnp.array([0, 2]), "bool").tolist()
    [False, True]
    """
    out = jnp.dtype(dtype)
    if x.dtype == out:
        return x
    return x != 0 if out == jnp.bool_ else x.astype(out)


def _replicated(arrays: Sequence[jax.Array]) -> NamedSharding | None:
    """Replicated on the operands' explicit mesh, if they have one: under ``vmap``
    over an explicitly sharded axis the accumulator must be on that mesh too."""
    for x in arrays:
        mesh = jax.typeof(x).sharding.mesh
        if AxisType.Explicit in tuple(getattr(mesh, "axis_types", ())):
            return NamedSharding(mesh, PartitionSpec())
    return None


def run_slices(sp: SlicedPlan, precision: Any, operands: Sequence[Any],
               varying: tuple[str, ...] = (), cast: bool = True,
               strip_exponent: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Run ``sp``'s slices as one ``lax.scan`` and return the accumulated output.

    The result has the plan's result dtype, or with ``cast=False`` the
    accumulator's (the compute dtype: the sharded runner adds partial sums
    across devices before casting). Inside ``jax.shard_map`` the blocks vary
    over the mesh axes ``varying``, so the accumulator is declared to as well.

    With ``strip_exponent`` each slice runs rescaled (:func:`.jax.execute`)
    and the carry is ``(acc, k)``, the sum so far being ``acc * 2**k``: the
    accumulator and each slice are brought to the larger exponent before
    they are added (:func:`.exponent.align`). The return is ``(acc, k)``
    with ``acc`` uncast.
    """
    base = sp.base
    sizes = dict(base.sizes)
    chunk = dict(sp.slice.sizes)
    arrays = []
    for x, drop in zip(operands, base.squeeze):
        x = jnp.asarray(x)
        arrays.append(lax.squeeze(x, drop) if drop else x)
    # Mixed-radix digits of the slice number, one per sliced label.
    radix = {}
    stride = 1
    for label, c in reversed(list(zip(sp.labels, sp.counts))):
        radix[label] = (stride, c)
        stride *= c

    def starts(n: jax.Array) -> dict[str, jax.Array]:
        return {l: (n // s) % c * chunk[l] for l, (s, c) in radix.items()}

    def body(carry: Any, _: None) -> tuple[Any, None]:
        n = carry[-1]
        at = starts(n)
        parts = []
        for x, labels in zip(arrays, base.inputs):
            for axis, label in enumerate(labels):
                if label in at:
                    x = lax.dynamic_slice_in_dim(x, at[label], chunk[label], axis)
            parts.append(x)
        if strip_exponent:
            acc, k, _ = carry
            part, k_part = execute(sp.slice, precision, *parts, strip_exponent=True)
            acc, part, k = align(acc, k, part, k_part)
        elif ring is None:
            acc = carry[0]
            part = execute(sp.slice, precision, *parts)
        else:
            acc = carry[0]
            part = semiring_execute(sp.slice, precision, *parts)
        where = [at.get(l, jnp.zeros((), n.dtype)) for l in base.output]
        old = lax.dynamic_slice(acc, where, part.shape)
        acc = lax.dynamic_update_slice(acc, old + part if ring is None else combine(old, part, ring),
                                       where)
        return ((acc, k, n + 1) if strip_exponent else (acc, n + 1)), None

    # Slices of another semiring are combined with its ⊕, from its zero.
    ring = None if sp.semiring == "sum-product" else resolve(sp.semiring)
    empty = 0 if ring is None else zero_of(ring, sp.slice.result_dtype)
    acc = jnp.full(tuple(sizes[l] for l in base.output), empty, sp.slice.result_dtype,
                   out_sharding=_replicated(arrays))
    if varying:
        acc = lax.pcast(acc, varying, to="varying")
    # The slice number rides in the carry: no array of 2^20-2^30 slice numbers.
    first = jnp.zeros((), jnp.int32)
    if strip_exponent:
        (acc, k, _), _ = lax.scan(body, (acc, first, first), length=sp.n_slices)
    else:
        (acc, _), _ = lax.scan(body, (acc, first), length=sp.n_slices)
    if not varying and _replicated(arrays) is None:
        # Over auto mesh axes (invisible here) XLA's propagation cannot see
        # through the scan's dynamic slices and would replicate the result.
        acc = shard_like(lambda: _probe(sp, precision, arrays), acc)
    if strip_exponent:
        return acc, k
    return cast_result(acc, base.result_dtype) if cast else acc


def _probe(sp: SlicedPlan, precision: Any, arrays: Sequence[jax.Array]) -> jax.Array:
    """The unsliced plan's products with every label the output lacks cut to
    one element: an output-shaped array that XLA shards as it would shard the
    plan's result (the same ``dot_general``s on the same operand axes). Only
    its sharding is used, so XLA drops its computation."""
    base = sp.base
    gone = {l: n for l, n in base.sizes if l not in base.output and n > 1}
    parts = [lax.slice(x, (0,) * x.ndim, tuple(1 if l in gone else n
                                                for l, n in zip(labels, x.shape)))
             for x, labels in zip(arrays, base.inputs)]
    out = execute(slice_plan(base, gone).slice, precision, *parts)
    return out.astype(sp.slice.result_dtype)
