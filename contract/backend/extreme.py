"""Max and min reductions (``jnp.max``/``jnp.min`` over axes), NaN propagating.

``contract.amax``/``amin`` and the ⊕ of a label that a max-plus, min-plus or
max-product einsum drops before its pairwise steps. On CPU each run of
adjacent reduced axes of over ``policy.FOLDED`` elements is one call to
contract's kernel (``csrc/kernels/extreme.cc``): a row loop where the run is
trailing, a column loop otherwise.

Measured on this shared 2-core AMD EPYC, 2048² float32, jitted, best of 7
rotated rounds in three runs (bench/RESULTS.md): over dim 1, 0.95-0.99x
torch (both read L3 as fast as two cores can) and 0.79-0.90x XLA's reduce;
over dim 0, 0.41-0.52x torch and 0.92-0.97x XLA's; over all, 0.90-0.94x
torch and 0.64-0.79x XLA's.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from .ffi import SUFFIXES, kernels_usable
from .policy import FOLDED

__all__ = ["extreme"]


def extreme(x: jax.Array, axes: tuple[int, ...], maximum: bool) -> jax.Array:
    """``jnp.max(x, axes)`` (``jnp.min`` unless ``maximum``) with its gradient,
    NaN always propagating (NumPy's and torch's rule, and JAX's documented
    one) where the kernel runs. Each run of adjacent axes is one pass, the
    last run first: a run of over ``policy.FOLDED`` elements on CPU as the
    native kernel (``csrc/kernels/extreme.cc``), or where it cannot run as
    XLA's reduce with a NaN check; a shorter run (a pooling window) as XLA's
    reduce, which fuses with the view it reads. XLA's CPU reduce (jax
    0.10.2) drops NaN from arrays of as few as 64 x 64 elements when it
    reads them from memory, not from a fused view; off the CPU, XLA's reduce
    as it is.

    >>> extreme(jnp.array([[1, 5], [7, 2]]), (1,), True).tolist()
    [5, 7]
    >>> extreme(jnp.full((64, 64), 1.0).at[5, 9].set(jnp.nan), (1,), True)[5].item()
    nan
    """
    axes = tuple(sorted({a % x.ndim for a in axes}))
    kernel = kernels_usable(x.dtype, "contract_max", "contract_min")
    return _extreme(x, axes, maximum, kernel)


def _xla_extreme(x: jax.Array, axes: tuple[int, ...], maximum: bool) -> jax.Array:
    return jnp.max(x, axis=axes) if maximum else jnp.min(x, axis=axes)


def _runs(axes: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted axes as (first, count) runs of adjacent ones, the last run first.

    >>> _runs((0, 2, 3))
    [(2, 2), (0, 1)]
    """
    runs: list[list[int]] = []
    for a in axes:
        if runs and runs[-1][0] + runs[-1][1] == a:
            runs[-1][1] += 1
        else:
            runs.append([a, 1])
    return [(first, count) for first, count in reversed(runs)]


def _run_pass(x: jax.Array, first: int, count: int, maximum: bool, kernel: bool) -> jax.Array:
    """One run's pass on CPU, ``x`` seen as (outer, r, inner)."""
    shape = x.shape
    outer, r = math.prod(shape[:first]), math.prod(shape[first:first + count])
    inner = math.prod(shape[first + count:])
    if r <= FOLDED:
        # XLA's reduce on x itself: it fuses with the producer (max_pool's
        # stacked taps are never materialised: 0.3 ms against 2.6 ms for a
        # fold of their slices, measured).
        return _xla_extreme(x, tuple(range(first, first + count)), maximum)
    rows = x.reshape(outer, r, inner)
    if kernel:
        name = f"contract_{'max' if maximum else 'min'}_{SUFFIXES[x.dtype.name]}"
        out_type = jax.ShapeDtypeStruct((outer, inner), x.dtype)
        out = jax.ffi.ffi_call(name, out_type, vmap_method="broadcast_all")(rows)
    else:
        out = _xla_extreme(rows, (1,), maximum)
        if jnp.issubdtype(x.dtype, jnp.floating):  # a second pass: 4x slower, measured
            out = jnp.where(jnp.isnan(rows).any(axis=1), jnp.nan, out)
    return out.reshape(shape[:first] + shape[first + count:])


@partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _extreme(x: jax.Array, axes: tuple[int, ...], maximum: bool, kernel: bool) -> jax.Array:
    def cpu(x: jax.Array) -> jax.Array:
        if all(math.prod(x.shape[f:f + c]) <= FOLDED for f, c in _runs(axes)):
            return _xla_extreme(x, axes, maximum)  # one fused reduce, as JAX's
        for first, count in _runs(axes):
            x = _run_pass(x, first, count, maximum, kernel)
        return x

    return lax.platform_dependent(x, cpu=cpu,
                                  default=partial(_xla_extreme, axes=axes, maximum=maximum))


@_extreme.defjvp
def _extreme_jvp(axes: tuple[int, ...], maximum: bool, kernel: bool, primals: tuple,
                 tangents: tuple) -> tuple:
    # jnp.max's own rule over all the axes at once (the tangent shared evenly
    # among the tied maxima), whatever passes the primal took.
    (x,), (dx,) = primals, tangents
    reduce = partial(_xla_extreme, axes=axes, maximum=maximum)
    return _extreme(x, axes, maximum, kernel), jax.jvp(reduce, (x,), (dx,))[1]
