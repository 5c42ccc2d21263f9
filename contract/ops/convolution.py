"""``conv``: a 2-D convolution, on CPU the native conv kernel, elsewhere an
einsum over a window view (:mod:`.window`).

On CPU a float32/float64 conv runs as :func:`contract.backend.conv.conv_kernel`
(patches gathered per block of output rows, in cache, then one BLAS GEMM
into NCHW); the einsum lowerings below run on other platforms and give its
tangents:

* ``conv`` without overlap (``kernel <= stride``, e.g. 2x2 stride 2): the
  tap view stacked after the channel axis, ``(n, c, p, q, h, w)``, and a
  GEMM per image straight into NCHW, ``"nocpq,ncpqhw->nohw"`` with ``w``
  broadcast over the batch; when that broadcast would outgrow ``x``, the
  *block view* — a reshape of each axis into ``(out, stride)`` blocks, no
  copy — and ``"nchpwq,ocpq->nohw"``.
* ``conv`` with overlap (e.g. 3x3 stride 1): a *row view* of the H taps
  (``kH`` contiguous row copies) contracted first,
  ``"ocpq,cpnhv->oqnhv"``, then the W taps summed from a tap view of that
  result, ``"oqnhw->nohw"``. A full im2col patches matrix would shift the
  minor axis of a 9x copy, which XLA's CPU emitter did 3-4x slower than the
  GEMM itself in our measurements.

>>> import numpy as np, contract
>>> x = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
>>> contract.conv(x, np.ones((1, 1, 2, 2), np.float32), stride=2)[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..api import einsum
from ..backend.conv import conv_kernel, usable
from ..backend.jax import accumulates_in
from ..errors import ContractError
from ..planner import compute_dtype
from ..validate import check_precision, numeric_dtype
from ._args import operand
from ._compiled import run
from .lowering import Lowering, register
from .window import Window, block_view, padded, shape_dtype, tap_view, windows

__all__ = ["conv"]

# conv without overlap (one einsum over the block or tap view), and with
# overlap (row view, then the W taps).
_BLOCK_SPEC = "nchpwq,ocpq->nohw"
_TAPS_SPEC = "nocpq,ncpqhw->nohw"
_ROWS_SPEC = "ocpq,cpnhv->oqnhv"
_SHIFT_SPEC = "oqnhw->nohw"


def _conv_geometry(xshape: tuple[int, ...], wshape: tuple[int, ...], stride: Any,
                   padding: Any) -> tuple[Window, ...]:
    """Validated windows of a 2-D convolution (x NCHW, w OIHW)."""
    op = "conv"
    if len(xshape) != 4:
        raise ContractError(f"{op}(): x must be 4-D (N, C, H, W), got shape {xshape}")
    if len(wshape) != 4:
        raise ContractError(f"{op}(): w must be 4-D (O, C, kH, kW), got shape {wshape}")
    if xshape[1] != wshape[1]:
        raise ContractError(
            f"{op}(): x has {xshape[1]} channels (x.shape[1], x is NCHW) but w expects "
            f"{wshape[1]} (w.shape[1], w is OIHW); shapes {xshape} and {wshape}"
        )
    if min(wshape[2:]) < 1:
        raise ContractError(f"{op}(): kernel must be positive, got w.shape[2:] = {wshape[2:]}")
    return windows(xshape[2:], wshape[2:], stride, padding, op)


def _check_dtypes(*dtypes: Any) -> None:
    for name, dt in zip("xw", dtypes):
        if jnp.dtype(dt).kind == "b":
            raise ContractError(f"conv(): {name} has dtype bool; cast it to a number first")


def _conv_args(x: Any, w: Any, stride: Any = 1, padding: Any = 0, *, precision: Any = None,
               preferred_element_type: Any = None) -> tuple[list[jax.Array], dict[str, Any]]:
    x, w = operand(x, "conv"), operand(w, "conv")
    wins = _conv_geometry(tuple(x.shape), tuple(w.shape), stride, padding)
    _check_dtypes(x.dtype, w.dtype)
    # Normalised here so the compiled-program cache key is hashable.
    try:
        prec = check_precision(precision)
    except ContractError as e:
        raise ContractError(f"conv(): {e}") from None
    preferred = _preferred(preferred_element_type)
    return [x, w], {"wins": wins, "precision": prec, "preferred": preferred}


def _preferred(dtype: Any) -> str | None:
    return None if dtype is None else numeric_dtype(dtype, "conv(): preferred_element_type").name


def _result_dtype(xdt: Any, wdt: Any, preferred: str | None) -> str:
    return preferred or jax.dtypes.canonicalize_dtype(jnp.result_type(xdt, wdt)).name


def _conv_blocks(x: jax.Array, w: jax.Array, wins: tuple[Window, ...], precision: Any,
                 result: str) -> jax.Array:
    """No overlap (kernel <= stride): one einsum over the reshaped blocks."""
    return einsum(_BLOCK_SPEC, block_view(x, wins), w, precision=precision,
                  preferred_element_type=result)


def _conv_taps(x: jax.Array, w: jax.Array, wins: tuple[Window, ...], precision: Any,
               result: str) -> jax.Array:
    """No overlap, small filters: a batched GEMM per image straight into NCHW.

    The tap view ``(n, c, p, q, h, w)`` is contracted with ``w`` broadcast
    over the batch, so no transpose of the input or the output is needed
    (about 1.4x faster than the block view on the 2x2 stride 2 row)."""
    wb = jnp.broadcast_to(w, x.shape[:1] + w.shape)
    return einsum(_TAPS_SPEC, wb, tap_view(x, wins, at=2), precision=precision,
                  preferred_element_type=result)


def _phases(win: Window) -> list[tuple[int, int, int]]:
    """``(t, taps, columns)`` for each W phase ``t < min(stride, kernel)``.

    Tap ``q = a * stride + t`` only ever reads columns ``stride * r + t``, so
    each phase contracts its own strided column slice with its own taps and
    no column is computed that no window reads.

    >>> _phases(Window(size=9, kernel=3, stride=2, low=0, high=0))
    [(0, 2, 5), (1, 1, 4)]
    """
    out = []
    for t in range(min(win.stride, win.kernel)):
        taps = len(range(t, win.kernel, win.stride))
        out.append((t, taps, win.out + taps - 1))
    return out


def _conv_rows(x: jax.Array, w: jax.Array, wins: tuple[Window, ...], precision: Any,
               result: str) -> jax.Array:
    """Overlapping windows: a row view (H taps) contracted first, the W taps after.

    Stage 1, per W phase ``t`` (one phase when the W stride is 1), contracts
    channels and H taps against that phase's columns:
    ``y_t[o, a, n, h, r] = sum_{c,p} w[o, c, p, a*s + t] * x[c, n, s_h*h + p, s*r + t]``.
    Stage 2 sums the tap view of the ``y_t`` (slices shifted by ``a``):
    ``out[n, o, h, w] = sum_{t,a} y_t[o, a, n, h, w + a]``.
    Only whole rows are sliced before the contraction (XLA's CPU emitter is
    slow at shifting the minor axis of a big stacked copy: an im2col patches
    matrix took 3-4x the GEMM's own time in our measurements).
    """
    wh, ww = wins
    acc = compute_dtype(result)
    # Channels lead so the contraction axes (c, p) of the row view are major.
    xc = padded(lax.transpose(x, (1, 0, 2, 3)), wins)
    rows = jnp.stack([wh.tap(xc, p, axis=2) for p in range(wh.kernel)], axis=1)
    taps = []
    for t, count, columns in _phases(ww):
        cols = lax.slice_in_dim(rows, t, t + ww.stride * (columns - 1) + 1, ww.stride, axis=4)
        y = einsum(_ROWS_SPEC, w[..., t::ww.stride], cols, precision=precision,
                   preferred_element_type=acc)
        taps += [lax.slice_in_dim(y[:, a], a, a + ww.out, axis=3) for a in range(count)]
    return einsum(_SHIFT_SPEC, jnp.stack(taps, axis=1), preferred_element_type=result)


def _conv_path(xshape: Sequence[int], wshape: Sequence[int],
               wins: Sequence[Window]) -> Callable[..., jax.Array]:
    """Which lowering runs: rows with overlap; without, taps when ``w``
    broadcast over the batch is no bigger than ``x``, else blocks."""
    if any(d.overlaps for d in wins):
        return _conv_rows
    return _conv_taps if xshape[0] * np.prod(wshape) <= np.prod(xshape) else _conv_blocks


def _conv(x: jax.Array, w: jax.Array, *, wins: tuple[Window, ...], precision: Any,
          preferred: str | None) -> jax.Array:
    result = _result_dtype(x.dtype, w.dtype, preferred)
    acc = accumulates_in((x.dtype, w.dtype), compute_dtype(result))
    if acc.name != compute_dtype(result):
        # An integer (or narrower float) result of float operands: the taps
        # are summed in the operands' type and the sum converted once, as
        # einsum and lax.dot_general do; never each tap, nor the operands.
        return _conv(x, w, wins=wins, precision=precision, preferred=acc.name).astype(result)
    path = _conv_path(x.shape, w.shape, wins)
    xla = lambda a, b: path(a, b, wins, precision, result)
    if not _on_kernel(x.dtype, w.dtype, result, precision):
        return xla(x, w)
    # On CPU the native kernel: patches gathered per block of output rows, in
    # cache, then one GEMM into NCHW (1.8-2.6x faster than the XLA lowerings
    # above, docs/lowering.md); elsewhere, and for tangents, XLA.
    stride, padding = tuple(d.stride for d in wins), tuple((d.low, d.high) for d in wins)
    cpu = lambda a, b: conv_kernel(a, b, stride, padding, xla)
    return lax.platform_dependent(x, w, cpu=cpu, default=xla)


def _on_kernel(xdt: Any, wdt: Any, result: str, precision: Any) -> bool:
    """Whether a conv may take the native kernel on CPU: one float32/float64
    dtype throughout, at the full precision BLAS computes (any ``lax.Precision``
    is that on CPU; a dot algorithm is left to XLA)."""
    precs = precision if isinstance(precision, tuple) else (precision,)
    return (jnp.dtype(xdt).name == jnp.dtype(wdt).name == result
            and all(p is None or isinstance(p, lax.Precision) for p in precs)
            and usable(result))


def conv(x: Any, w: Any, stride: Any = 1, padding: Any = 0, *, precision: Any = None,
         preferred_element_type: Any = None) -> jax.Array:
    """2-D cross-correlation of ``x`` (N, C, H, W) with filters ``w`` (O, C, kH, kW).

    Same result as ``torch.nn.functional.conv2d(x, w, stride=, padding=)`` and
    ``lax.conv_general_dilated(x, w, stride, [(p, p)] * 2)``; ``stride`` and
    ``padding`` (zeros) are an int or an (H, W) pair. Output (N, O, H', W')
    with ``H' = floor((H + 2 * padding - kH) / stride) + 1``.

    ``padding`` may also be a name, as in PyTorch and JAX
    (:func:`contract.ops.window.named_padding`): ``"valid"``/``"VALID"``
    (none); ``"SAME"``, ``lax.conv_general_dilated``'s rule for any stride
    (``H' = ceil(H / stride)``, an odd total of zeros puts the extra one
    after); ``"same"``, PyTorch's, stride 1 only (``H' = H``, the same zeros).

    dtypes follow :func:`contract.einsum`: the result has JAX's promoted dtype
    of ``x`` and ``w`` (bfloat16/float16 accumulate in float32, narrow ints in
    int32, float32 at full precision unless ``precision=`` says otherwise);
    ``preferred_element_type`` picks another result dtype.

    >>> import numpy as np
    >>> x = np.arange(9.0, dtype=np.float32).reshape(1, 1, 3, 3)
    >>> conv(x, np.ones((2, 1, 2, 2), np.float32))[0].tolist()
    [[[8.0, 12.0], [20.0, 24.0]], [[8.0, 12.0], [20.0, 24.0]]]
    >>> conv(x, np.ones((1, 1, 2, 2), np.float32), padding="same")[0, 0].tolist()
    [[8.0, 12.0, 7.0], [20.0, 24.0, 13.0], [13.0, 15.0, 8.0]]
    """
    return run(_conv_args, _conv, x, w, stride, padding, precision=precision,
               preferred_element_type=preferred_element_type)


@register(conv)
def _lower_conv(x: Any, w: Any, stride: Any = 1, padding: Any = 0, *, precision: Any = None,
                preferred_element_type: Any = None) -> Lowering:
    xshape, xdt = shape_dtype(x, "conv")
    wshape, wdt = shape_dtype(w, "conv")
    wins = _conv_geometry(xshape, wshape, stride, padding)
    _check_dtypes(xdt, wdt)
    (n, c, _, _), (o, _, kh, kw) = xshape, wshape
    wh, ww = wins
    notes = [f"window view of x {xshape}:"]
    notes += [f"    {name}: {d.describe()}" for name, d in zip("HW", wins)]
    path = _conv_path(xshape, wshape, wins)
    if path is _conv_taps:
        view = (n, c, kh, kw, wh.out, ww.out)
        notes.append(f"    tap view {view}: {kh * kw} strided slices stacked after the channel "
                     f"axis; w broadcast over the batch to {(n, *wshape)}")
        stages: tuple = ((_TAPS_SPEC, ((n, *wshape), view)),)
    elif path is _conv_blocks:
        view = (n, c) + tuple(v for d in wins for v in (d.out, d.kernel))
        notes.append(f"    block view {view}: H and W reshaped into (out, stride) blocks, no copy")
        stages = ((_BLOCK_SPEC, (view, wshape)),)
    else:
        rows = (c, kh, n, wh.out, ww.used)
        phases = _phases(ww)
        notes.append(f"    x transposed to (C, N, H, W); H: {kh} row slices of stride {wh.stride} "
                     f"stacked -> rows {rows}")
        if len(phases) > 1:
            notes.append(f"    W stride {ww.stride}: stage 1 runs once per column phase, each on "
                         f"its strided columns and its taps (no unused column computed)")
        notes.append(f"    W taps applied after stage 1: the last stage sums {kw} slices of the "
                     f"results shifted by the tap -> {(o, kw, n, wh.out, ww.out)}")
        stages = tuple((_ROWS_SPEC, ((o, c, kh, count), (c, kh, n, wh.out, columns)))
                       for _, count, columns in phases)
        stages += ((_SHIFT_SPEC, ((o, kw, n, wh.out, ww.out),)),)
    result = _result_dtype(xdt, wdt, _preferred(preferred_element_type))
    notes.append(f"  result dtype {result}")
    if _on_kernel(xdt, wdt, result, check_precision(precision)):
        notes.append(f"  on CPU: the native conv kernel instead (patches of {kh * kw * c} taps "
                     "gathered per block of output rows, in cache, then one GEMM into NCHW); "
                     "the einsums above elsewhere, and for gradients")
    return Lowering("conv", stages, "\n".join(notes))
