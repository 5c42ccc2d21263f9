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

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from ..planner import SlicedPlan
from .jax import execute

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


def run_slices(sp: SlicedPlan, precision: Any, operands: Sequence[Any], count: int | None = None,
               index: Callable[[jax.Array], tuple[jax.Array, Any]] | None = None) -> jax.Array:
    """Run ``sp``'s slices as one ``lax.scan`` and return the accumulated output.

    By default every slice ``0 .. n_slices-1`` runs and the result has the
    plan's result dtype. With ``count``/``index`` (used by the sharded runner),
    scan step ``k`` runs slice ``index(k)[0]`` and keeps its result only where
    ``index(k)[1]`` is true; the raw accumulator (compute dtype) is returned.

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

    def body(acc: jax.Array, k: jax.Array) -> tuple[jax.Array, None]:
        n, keep = (k, None) if index is None else index(k)
        at = starts(n)
        parts = []
        for x, labels in zip(arrays, base.inputs):
            for axis, label in enumerate(labels):
                if label in at:
                    x = lax.dynamic_slice_in_dim(x, at[label], chunk[label], axis)
            parts.append(x)
        part = execute(sp.slice, precision, *parts)
        if keep is not None:
            part = jnp.where(keep, part, jnp.zeros_like(part))
        where = [at.get(l, jnp.zeros((), n.dtype)) for l in base.output]
        acc = lax.dynamic_update_slice(acc, lax.dynamic_slice(acc, where, part.shape) + part, where)
        return acc, None

    acc = jnp.zeros(tuple(sizes[l] for l in base.output), sp.slice.result_dtype)
    acc, _ = lax.scan(body, acc, jnp.arange(sp.n_slices if count is None else count,
                                            dtype=jnp.int32))
    return acc if index is not None else cast_result(acc, base.result_dtype)
