"""One pairwise step, or one reduction, of an einsum in a semiring (:mod:`contract.semiring`).

:func:`semiring_dot` keeps ``lax.dot_general``'s contract (the same ``dims``,
the output as batch, lhs free, rhs free dimensions); every operand is first
arranged as ``(batch, m, k)`` and ``(batch, k, n)``. How each semiring runs:

* **log** at GEMM speed: ``exp(a - max_k a)`` and ``exp(b - max_k b)`` (per
  free index) go through one ``lax.dot_general`` (``Precision.HIGHEST`` by
  default), then ``log`` and the maxima come back. Where the big terms of a
  row and of a column sit on different ``k``, every product underflows
  (row ``[0, -200]`` against column ``[-200, 0]``). Such entries are found
  and recomputed exactly (:func:`_log_product` says how and why that is
  exact) by a direct log-sum-exp, only for them: on CPU one call to a native
  kernel (``csrc/kernels/logrepair.cc``), elsewhere in chunks, only under a
  ``lax.cond`` that sees one. The gradient is a ``custom_vjp``: softmax
  weights by GEMMs for the ordinary entries, the direct form for repaired
  ones, 0 where every term is ``-inf``.
* **max-plus / min-plus**: on CPU a native kernel (``csrc/kernels/tropical.cc``:
  a register-blocked add-max micro-kernel for AVX-512, AVX2 or SSE2, picked at
  run time); elsewhere, or without the kernels, XLA's fused form, a reduce
  over a broadcast add that XLA fuses into one loop (no ``m×k×n``
  temporary). On CPU NaN is put back into either (:func:`_with_nan`).
  Their reductions (and max-product's) are :func:`extreme`. The gradient
  is ``jnp.max``'s (ties split evenly): on CPU two passes of native kernels
  (``csrc/kernels/tropical_grad.cc``), elsewhere indicator reductions that
  fuse the same way.
* **max-product** and user semirings: ``add(mul(a, b), k)`` on broadcast
  views, which XLA fuses likewise; gradients as JAX derives them.

Measured on this shared 2-core AMD EPYC (AVX-512), 1024³ float32, jitted, best
of 2-5 runs: max-plus kernel 44 ms (74 ms under load), XLA's fused form 93 ms
(139-174 under load), the tropical_gemm package 80 ms, torch-semiring-einsum's
log_viterbi 4.6 s; the log step 15 ms against 1954 ms for
``jax.nn.logsumexp(a[:, :, None] + b[None], 1)`` (torch-semiring-einsum's
log_einsum 6.9 s); the max-plus gradient 0.23 s with the kernels, 10.9 s as
XLA's reductions (a select in them keeps XLA's CPU loops scalar).

>>> from contract.semiring import SEMIRINGS
>>> a = jnp.array([[0.0, -200.0]]); b = jnp.array([[-200.0], [0.0]])
>>> dims = (((1,), (0,)), ((), ()))
>>> round(float(semiring_dot(a, b, dims, SEMIRINGS["log"])[0, 0]), 4)
-199.3069
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ..semiring import Semiring, check_dtype
from .extreme import extreme
from .ffi import FLOAT_SUFFIXES, SUFFIXES, kernels_usable
from .policy import EXTREME_SEMIRINGS

__all__ = ["semiring_dot", "semiring_reduce", "tropical_xla", "zero_of"]

Dims = tuple[tuple[tuple[int, ...], tuple[int, ...]], tuple[tuple[int, ...], tuple[int, ...]]]
_BMK = (((2,), (1,)), ((0,), (0,)))  # (b, m, k) x (b, k, n) -> (b, m, n)
_CHUNK_ELEMENTS = 1 << 21  # (entries x k) per chunk of the direct log-sum-exp


def zero_of(semiring: Semiring, dtype: Any) -> Any:
    """⊕'s identity in ``dtype`` (integers: their range's end for ±inf).

    >>> from contract.semiring import SEMIRINGS
    >>> zero_of(SEMIRINGS["max-plus"], "int8"), zero_of(SEMIRINGS["log"], "float32")
    (-128, -inf)
    """
    z = semiring.zero
    if jnp.issubdtype(dtype, jnp.integer) and math.isinf(z):
        info = jnp.iinfo(dtype)
        return info.min if z < 0 else info.max
    return z


def _compute_dtype(a: Any, b: Any) -> Any:
    """Half floats compute in float32, narrow integers in int32 (exact sums)."""
    dt = jnp.promote_types(a.dtype, b.dtype)
    if jnp.issubdtype(dt, jnp.inexact) and dt.itemsize < 4:
        return jnp.dtype(jnp.float32)
    if jnp.issubdtype(dt, jnp.integer) and dt.itemsize < 4:
        return jnp.dtype(jnp.int32)
    return dt


def _arrange(x: jax.Array, groups: list[list[int]]) -> jax.Array:
    """``x`` transposed to the groups' order, each group flattened to one axis."""
    perm = [d for g in groups for d in g]
    if perm != list(range(x.ndim)):
        x = jnp.transpose(x, perm)
    return x.reshape([math.prod(x.shape[perm.index(d)] for d in g) for g in groups])


def semiring_dot(a: Any, b: Any, dims: Dims, semiring: Semiring,
                 precision: Any = None) -> jax.Array:
    """``lax.dot_general(a, b, dims)`` with ⊕ and ⊗ of ``semiring``: the same
    ``dims`` and output layout (batch, lhs free, rhs free). bfloat16/float16
    compute and return float32, narrow integers int32; a contracted size of 0
    gives the semiring's zero.

    >>> from contract.semiring import SEMIRINGS
    >>> x = jnp.array([[1.0, 5.0], [2.0, 0.0]])
    >>> semiring_dot(x, x, (((1,), (0,)), ((), ())), SEMIRINGS["max-plus"]).tolist()
    [[7.0, 6.0], [3.0, 7.0]]
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if semiring.name == "sum-product":
        return lax.dot_general(a, b, dims, precision=precision)
    for x in (a, b):
        check_dtype(semiring, x.dtype)
    dt = _compute_dtype(a, b)
    a, b = a.astype(dt), b.astype(dt)
    (lc, rc), (lb, rb) = dims
    lc, rc, lb, rb = map(list, (lc, rc, lb, rb))
    free_a = [d for d in range(a.ndim) if d not in lc + lb]
    free_b = [d for d in range(b.ndim) if d not in rc + rb]
    shape = ([a.shape[d] for d in lb] + [a.shape[d] for d in free_a]
             + [b.shape[d] for d in free_b])
    a3 = _arrange(a, [lb, free_a, lc])
    b3 = _arrange(b, [rb, rc, free_b])
    if 0 in a3.shape or 0 in b3.shape:
        return jnp.full(shape, zero_of(semiring, dt), dt)
    if semiring.name == "log":
        out = _log_product(a3, b3, precision, _repair_kernels(a3.dtype))
    elif semiring.name in ("max-plus", "min-plus"):
        out = _tropical_product(a3, b3, semiring.name == "max-plus")
    else:
        out = semiring.add(semiring.mul(a3[:, :, :, None], b3[:, None, :, :]), (2,))
    return out.reshape(shape)


def semiring_reduce(x: Any, axes: tuple[int, ...], semiring: Semiring) -> jax.Array:
    """⊕ of ``x`` over ``axes`` (a label summed away before the pairwise steps);
    reducing axes of size 0 gives the zero, no axes gives ``x``. The log
    semiring's is stable, ``-inf`` where all terms are, with gradient 0 there.

    >>> from contract.semiring import SEMIRINGS
    >>> x = jnp.array([[0.0, 0.0], [-jnp.inf, -jnp.inf]])
    >>> semiring_reduce(x, (1,), SEMIRINGS["log"]).tolist()
    [0.6931471824645996, -inf]
    """
    x = jnp.asarray(x)
    axes = tuple(sorted(a % x.ndim for a in axes)) if x.ndim else ()
    if not axes:
        return x
    if any(x.shape[a] == 0 for a in axes):
        shape = [n for d, n in enumerate(x.shape) if d not in axes]
        return jnp.full(shape, zero_of(semiring, x.dtype), x.dtype)
    if semiring.name == "log":
        return _logsumexp(x, axes)
    if semiring.name in EXTREME_SEMIRINGS:
        return extreme(x, axes, EXTREME_SEMIRINGS[semiring.name])
    return semiring.add(x, axes)


def _shifted(x: jax.Array, axes: tuple[int, ...]) -> tuple:
    """exp(x - top), its sum over ``axes`` and top, the (finite) maximum."""
    top = jnp.max(x, axis=axes, keepdims=True)
    top = jnp.where(jnp.isfinite(top), top, 0)
    e = jnp.exp(x - top)
    return e, jnp.sum(e, axis=axes, keepdims=True), top


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _logsumexp(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """log Σ exp over ``axes``: ``jax.nn.logsumexp``'s own program (the same
    XLA reduce, -inf where every term is); only the gradient differs."""
    return jax.nn.logsumexp(x, axis=axes)


@_logsumexp.defjvp
def _logsumexp_jvp(axes: tuple[int, ...], primals: tuple, tangents: tuple) -> tuple:
    (x,), (dx,) = primals, tangents
    e, total, top = _shifted(x, axes)
    # Softmax weights from the shifted terms (exp(x - out) would carry out's
    # rounding); 0, not 0/0, where every term is -inf.
    w = jnp.where(total > 0, e / jnp.where(total > 0, total, 1), 0)
    return (jnp.log(total) + top).squeeze(axes), jnp.sum(w * dx, axis=axes)


# --- the log semiring ---------------------------------------------------------------------


def _scaled(a: jax.Array, b: jax.Array) -> tuple:
    """exp of each operand less its maximum per free index (finite maxima only)."""
    top_a = jnp.max(a, axis=2, keepdims=True)
    top_b = jnp.max(b, axis=1, keepdims=True)
    sa = jnp.where(jnp.isfinite(top_a), top_a, 0)
    sb = jnp.where(jnp.isfinite(top_b), top_b, 0)
    return jnp.exp(a - sa), jnp.exp(b - sb), sa, sb, top_a, top_b


def _flagged(flag: jax.Array, body: Any, init: Any, k: int) -> Any:
    """``body(ids, carry)`` over the flat indices where ``flag`` is set, a
    chunk of ids at a time (``flag.size`` pads the last chunk), as many
    chunks as there are flagged entries: the work is proportional to them."""
    flat = flag.reshape(-1)
    total = flat.size
    chunk = max(1, min(total, _CHUNK_ELEMENTS // k))
    slots = -(-total // chunk) * chunk
    pos = jnp.cumsum(flat, dtype=jnp.int32) - 1
    ids = jnp.full((slots,), total, jnp.int32).at[jnp.where(flat, pos, slots)].set(
        jnp.arange(total, dtype=jnp.int32), mode="drop")
    count = jnp.sum(flat, dtype=jnp.int32)
    return lax.fori_loop(0, (count + chunk - 1) // chunk,
                         lambda c, carry: body(lax.dynamic_slice(ids, (c * chunk,), (chunk,)), carry),
                         init)


def _gather(a: jax.Array, b: jax.Array, ids: jax.Array) -> tuple:
    """For flat output ids (out of range: padding): the (batch, i, j) and the
    row of ``a`` and column of ``b`` that each one contracts, as (ids, k)."""
    _, m, _ = a.shape
    n = b.shape[2]
    bi, i, j = ids // (m * n), ids // n % m, ids % n
    safe = jnp.minimum(ids, a.shape[0] * m * n - 1)
    sb, si, sj = safe // (m * n), safe // n % m, safe % n
    return (bi, i, j), a[sb, si], jnp.swapaxes(b, 1, 2)[sb, sj]


def _log_forward(a: jax.Array, b: jax.Array, precision: Any, native: bool) -> tuple:
    ea, eb, sa, sb, top_a, top_b = _scaled(a, b)
    s = lax.dot_general(ea, eb, _BMK, precision=precision)
    # Every term -inf: the answer, with nothing to repair (unless a NaN is there).
    dead = (((top_a == -jnp.inf) | (top_b == -jnp.inf))
            & ~jnp.isnan(top_a) & ~jnp.isnan(top_b))
    # Each product ea*eb is <= 1 and is lost to underflow only below the
    # smallest normal; k of them lose less than k * tiny. An entry with
    # s >= k * tiny * 2**20 is therefore right to 2**-20 relative (the log to
    # 1e-6 absolute); the others (and NaN, inf) are recomputed directly.
    k = a.shape[2]
    floor = k * float(jnp.finfo(s.dtype).tiny) * 2.0**20
    flag = ~((s >= floor) & jnp.isfinite(s)) & ~dead
    out = jnp.where(dead, -jnp.inf, jnp.log(s) + sa + sb)

    def repair(out: jax.Array) -> jax.Array:
        def body(ids: jax.Array, flat: jax.Array) -> jax.Array:
            _, rows, cols = _gather(a, b, ids)
            return flat.at[ids].set(_logsumexp(rows + cols, (1,)), mode="drop")
        return _flagged(flag, body, out.reshape(-1), k).reshape(out.shape)

    def portable(out: jax.Array) -> jax.Array:
        return lax.cond(jnp.any(flag), repair, lambda out: out, out)

    if native:
        kernel = jax.ffi.ffi_call(f"contract_logrepair_{SUFFIXES[out.dtype.name]}",
                                  jax.ShapeDtypeStruct(out.shape, out.dtype),
                                  input_output_aliases={2: 0}, vmap_method="broadcast_all")
        out = lax.platform_dependent(out, cpu=lambda out: kernel(a, b, out, flag),
                                     default=portable)
    else:
        out = portable(out)
    return out, s, flag


def _repair_kernels(dtype: Any) -> bool:
    """Whether the CPU repair kernels (``csrc/kernels/logrepair.cc``) may run:
    one call per step instead of a ``lax.cond`` around a loop, which XLA
    takes about 100 ms to compile per step (a 64-step HMM einsum compiled in
    8.3 s forward, 33 s with its gradient; 2.2 s and 6.5 s without them)."""
    return kernels_usable(dtype, "contract_logrepair", "contract_logrepairgrad",
                          dtypes=FLOAT_SUFFIXES)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _log_gemm(a: jax.Array, b: jax.Array, precision: Any, native: bool) -> jax.Array:
    return _log_forward(a, b, precision, native)[0]


def _log_gemm_fwd(a: jax.Array, b: jax.Array, precision: Any, native: bool) -> tuple:
    out, s, flag = _log_forward(a, b, precision, native)
    return out, (a, b, out, s, flag)


def _log_gemm_bwd(precision: Any, native: bool, res: tuple, g: jax.Array) -> tuple:
    a, b, out, s, flag = res
    ea, eb, *_ = _scaled(a, b)
    # d out[i,j] / d a[i,k] = ea[i,k] eb[k,j] / s[i,j] where s is right. g/s
    # can be huge (s is as small as k * tiny * 2**20), so it is scaled per row
    # (for a) or column (for b) to at most 1 before the GEMM and the scale is
    # applied after it: only terms below `tiny` of the scaled sum are lost.
    good = ~flag & (out > -jnp.inf)
    h = jnp.where(good, g / jnp.where(good, s, 1), 0)

    def scale(axis: int) -> jax.Array:
        top = jnp.max(jnp.abs(h), axis=axis, keepdims=True)
        return jnp.where((top > 0) & jnp.isfinite(top), top, 1)

    rows, cols = scale(2), scale(1)
    ga = ea * lax.dot_general(h / rows, eb, (((2,), (2,)), ((0,), (0,))), precision=precision)
    gb = eb * lax.dot_general(ea, h / cols, (((1,), (1,)), ((0,), (0,))), precision=precision)
    ga, gb = ga * rows, gb * cols

    def repaired(grads: tuple) -> tuple:
        def body(ids: jax.Array, grads: tuple) -> tuple:
            ga, gbt = grads
            (bi, i, j), r, c = _gather(a, b, ids)
            safe = jnp.minimum(ids, out.size - 1)
            o = out.reshape(-1)[safe][:, None]
            w = jnp.where(o == -jnp.inf, 0, jnp.exp(r + c - o)) * g.reshape(-1)[safe][:, None]
            return ga.at[bi, i].add(w, mode="drop"), gbt.at[bi, j].add(w, mode="drop")
        ga, gb = grads
        ga, gbt = _flagged(flag, body, (ga, jnp.swapaxes(gb, 1, 2)), a.shape[2])
        return ga, jnp.swapaxes(gbt, 1, 2)

    def portable(ga: jax.Array, gb: jax.Array) -> tuple:
        return lax.cond(jnp.any(flag), repaired, lambda grads: grads, (ga, gb))

    if not native:
        return portable(ga, gb)
    kernel = jax.ffi.ffi_call(f"contract_logrepairgrad_{SUFFIXES[a.dtype.name]}",
                              (jax.ShapeDtypeStruct(ga.shape, ga.dtype),
                               jax.ShapeDtypeStruct(gb.shape, gb.dtype)),
                              input_output_aliases={5: 0, 6: 1}, vmap_method="broadcast_all")
    return lax.platform_dependent(ga, gb, cpu=lambda ga, gb: tuple(kernel(a, b, out, g, flag, ga, gb)),
                                  default=portable)


_log_gemm.defvjp(_log_gemm_fwd, _log_gemm_bwd)


@partial(jax.jit, static_argnums=(2, 3))  # eager calls: compiled once, not op by op
def _log_product(a: jax.Array, b: jax.Array, precision: Any, native: bool) -> jax.Array:
    """The log-semiring product of (B, m, k) and (B, k, n) float arrays;
    ``native``: repair on CPU with the kernel (part of the cache key).

    Why the repair is exact: entries whose scaled sum stays above
    ``k * tiny * 2**20`` lose under 2**-20 of it to underflow (each lost
    product is below ``tiny``); the rest are recomputed as a max-shifted
    log-sum-exp of their own k terms, which loses nothing to underflow.
    """
    if precision is None and a.dtype == jnp.float32:
        precision = lax.Precision.HIGHEST
    return _log_gemm(a, b, precision, native)


# --- max-plus and min-plus ----------------------------------------------------------------


def tropical_xla(a: jax.Array, b: jax.Array, maximum: bool) -> jax.Array:
    """``max_k a[:, :, k] + b[:, k, :]`` (``min`` unless ``maximum``) of
    (B, m, k) and (B, k, n) arrays as XLA's fused reduce of a broadcast add:
    the portable form, and the reference for the CPU kernel.

    >>> tropical_xla(jnp.ones((1, 2, 3)), jnp.zeros((1, 3, 4)), True).shape
    (1, 2, 4)
    """
    terms = a[:, :, :, None] + b[:, None, :, :]
    return jnp.max(terms, axis=2) if maximum else jnp.min(terms, axis=2)


def _tropical_kernel(a: jax.Array, b: jax.Array, maximum: bool) -> jax.Array:
    """The CPU kernel, NaN put back (:func:`_with_nan`)."""
    name = f"contract_{'max' if maximum else 'min'}plus_{SUFFIXES[a.dtype.name]}"
    out_type = jax.ShapeDtypeStruct((a.shape[0], a.shape[1], b.shape[2]), a.dtype)
    return _with_nan(a, b, jax.ffi.ffi_call(name, out_type, vmap_method="broadcast_all")(a, b))


def _with_nan(a: jax.Array, b: jax.Array, out: jax.Array) -> jax.Array:
    """``out`` with NaN where ``jnp.max``'s rule puts one: a vector max (the
    kernel's, or XLA's CPU reduce) drops NaN, and inf + (-inf) terms make
    NaN too. Costs reductions of the operands, not of the m x k x n terms."""
    if not jnp.issubdtype(a.dtype, jnp.floating):
        return out
    nan = jnp.isnan(a).any(2)[:, :, None] | jnp.isnan(b).any(1)[:, None, :]

    def clash() -> jax.Array:
        f = lambda x: x.astype(jnp.float32)  # noqa: E731 - counts of matches, exact
        hits = (lax.dot_general(f(jnp.isposinf(a)), f(jnp.isneginf(b)), _BMK)
                + lax.dot_general(f(jnp.isneginf(a)), f(jnp.isposinf(b)), _BMK))
        return hits > 0

    inf = ((jnp.isposinf(a).any() & jnp.isneginf(b).any())
           | (jnp.isneginf(a).any() & jnp.isposinf(b).any()))
    nan = nan | lax.cond(inf, clash, lambda: jnp.zeros(out.shape, bool))
    return jnp.where(nan, jnp.nan, out)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _tropical_product(a: jax.Array, b: jax.Array, maximum: bool) -> jax.Array:
    portable = partial(tropical_xla, maximum=maximum)
    if kernels_usable(a.dtype, "contract_maxplus", "contract_minplus"):
        cpu = partial(_tropical_kernel, maximum=maximum)
    else:  # XLA's CPU reduce drops NaN (jax 0.10.2): put it back there too
        cpu = lambda a, b: _with_nan(a, b, portable(a, b))  # noqa: E731
    return lax.platform_dependent(a, b, cpu=cpu, default=portable)


def _tropical_fwd(a: jax.Array, b: jax.Array, maximum: bool) -> tuple:
    out = _tropical_product(a, b, maximum)
    return out, (a, b, out)


def _shares(a: jax.Array, b: jax.Array, out: jax.Array, share: jax.Array) -> jax.Array:
    """sum_j share[i, j] where a[i, k] + b[k, j] == out[i, j]: reduced over the
    minor axis (XLA's CPU loops over a major one ran 3x slower, measured)."""
    hit = a[:, :, :, None] + b[:, None, :, :] == out[:, :, None, :]
    return jnp.sum(jnp.where(hit, share[:, :, None, :], 0), axis=3)


def _tropical_grads(a: jax.Array, b: jax.Array, out: jax.Array, g: jax.Array,
                    native: bool) -> tuple:
    """jnp.max's rule: the cotangent split evenly among the terms equal to
    the result. XLA's reductions each fuse with their broadcast (no m*k*n
    array) but do not vectorize on CPU (1024³: 10.9 s); there the kernels of
    ``csrc/kernels/tropical_grad.cc`` count and share instead."""
    t = partial(jnp.swapaxes, axis1=1, axis2=2)
    if native:
        name = SUFFIXES[a.dtype.name]
        count = jax.ffi.ffi_call(f"contract_tropcount_{name}", jax.ShapeDtypeStruct(out.shape, g.dtype),
                                 vmap_method="broadcast_all")

        def shares(a: jax.Array, b: jax.Array, out: jax.Array, share: jax.Array) -> jax.Array:
            return jax.ffi.ffi_call(f"contract_tropshare_{name}", jax.ShapeDtypeStruct(a.shape, a.dtype),
                                    vmap_method="broadcast_all")(a, b, out, share)

        share = g / count(a, b, out)
    else:
        shares = _shares
        share = g / jnp.sum(a[:, :, :, None] + b[:, None, :, :] == out[:, :, None, :], axis=2,
                            dtype=g.dtype)
    return shares(a, b, out, share), t(shares(t(b), t(a), t(out), t(share)))


def _tropical_bwd(maximum: bool, res: tuple, g: jax.Array) -> tuple:
    a, b, out = res
    portable = partial(_tropical_grads, native=False)
    if kernels_usable(a.dtype, "contract_tropcount", "contract_tropshare",
                      dtypes=FLOAT_SUFFIXES):
        return lax.platform_dependent(a, b, out, g, cpu=partial(_tropical_grads, native=True),
                                      default=portable)
    return portable(a, b, out, g)


_tropical_product.defvjp(_tropical_fwd, _tropical_bwd)

