"""Windowed operations lowered to einsums over window views: ``sum_pool``, ``conv``.

A *window view* turns each spatial axis of length ``size`` into a window
axis (``kernel`` taps) and an output axis (``out`` positions) built from
slices and reshapes only — never a gather of an index tensor. The operation
is then an einsum over the view, run by :func:`contract.einsum` (planner +
JAX backend), so dtype and precision follow its policy.

* ``sum_pool``: the *tap view* — one strided slice per tap, stacked on
  leading axes — and ``"pq...hw->...hw"``. XLA fuses the stack into the
  sum: nothing of the view's size is materialised.
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
>>> contract.sum_pool(x, 2)[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
>>> contract.conv(x, np.ones((1, 1, 2, 2), np.float32), stride=2)[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..api import einsum
from ..backend.conv import conv_kernel, usable
from ..validate import check_precision, numeric_dtype, widened_integer
from ..errors import ContractError
from ..planner import compute_dtype
from ._args import operand, resolve_alias
from ._compiled import run
from .lowering import Lowering, register

__all__ = ["sum_pool", "conv"]

# Labels of the spatial output axes and of the window (tap) axes, innermost
# last: 1-D uses the last one, 2-D the last two, 3-D all three.
_OUT_LABELS = "dhw"
_TAP_LABELS = "rpq"
_MAX_DIMS = len(_OUT_LABELS)
_MAX_TAPS = 64


@dataclass(frozen=True)
class Window:
    """The window geometry of one spatial axis.

    >>> w = Window(size=7, kernel=3, stride=2, padding=1)
    >>> w.out, w.used, w.overlaps
    (4, 9, True)
    >>> Window(size=5, kernel=2, stride=2, padding=0, ceil=True).out  # the last window is cut
    3
    """

    size: int
    kernel: int
    stride: int
    padding: int
    ceil: bool = False  # PyTorch's ceil_mode (pooling only)

    @property
    def out(self) -> int:
        """Output length: ``floor((size + 2 * padding - kernel) / stride) + 1``.

        With ``ceil`` the division rounds up, but (as in PyTorch) a last
        window must start inside the input or its left padding; the windows
        that reach past the padded input see zeros there.
        """
        span = self.size + 2 * self.padding - self.kernel
        if not self.ceil:
            return span // self.stride + 1
        n = -(-span // self.stride) + 1
        return n - 1 if (n - 1) * self.stride >= self.size + self.padding else n

    @property
    def used(self) -> int:
        """Padded input elements the windows reach: ``stride * (out - 1) + kernel``."""
        return self.stride * (self.out - 1) + self.kernel

    @property
    def overlaps(self) -> bool:
        """Whether neighbouring windows share elements (``kernel > stride``)."""
        return self.kernel > self.stride

    def pad_config(self, length: int) -> tuple[int, int, int]:
        """``lax.pad`` config: zeros in front, then pad or crop (negative) to ``length``."""
        return (self.padding, length - self.size - self.padding, 0)

    def tap(self, x: jax.Array, offset: int, axis: int) -> jax.Array:
        """The strided slice of a padded axis that tap ``offset`` sees."""
        return lax.slice_in_dim(x, offset, offset + self.used - self.kernel + 1, self.stride, axis)

    def describe(self) -> str:
        """One line for :func:`contract.lower`."""
        pad = f", zero-padded by {self.padding}" if self.padding else ""
        ceil = ", ceil_mode" if self.ceil else ""
        return (f"{self.size} -> {self.out} windows of {self.kernel}, stride {self.stride}"
                f"{pad}{ceil}")


def _ints(value: Any, nd: int, name: str, op: str, minimum: int) -> tuple[int, ...]:
    """An int or a per-dimension sequence of ``nd`` ints, each ``>= minimum``."""
    items = (value,) * nd if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        raise ContractError(
            f"{op}(): {name} must be an int or a tuple of {nd} ints, got {value!r}") from None
    if len(items) != nd:
        raise ContractError(
            f"{op}(): {name}={value!r} has {len(items)} entries but there are {nd} spatial dims"
        )
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ContractError(f"{op}(): {name} entries must be ints, got {v!r}")
        if v < minimum:
            bound = "positive" if minimum == 1 else "non-negative"
            raise ContractError(f"{op}(): {name} must be {bound}, got {value!r}")
    return tuple(int(v) for v in items)


def _windows(spatial: Sequence[int], kernel: Sequence[int], stride: Any, padding: Any,
             op: str, ceil: bool = False) -> tuple[Window, ...]:
    """Validate stride/padding against the spatial sizes; one Window per axis."""
    nd = len(spatial)
    strides = _ints(stride, nd, "stride", op, 1)
    pads = _ints(padding, nd, "padding", op, 0)
    wins = tuple(Window(n, k, s, p, ceil) for n, k, s, p in zip(spatial, kernel, strides, pads))
    for d, w in enumerate(wins):
        if w.kernel > w.size + 2 * w.padding:
            raise ContractError(
                f"{op}(): kernel {w.kernel} is larger than the padded input along spatial "
                f"dim {d} (size {w.size} + 2*{w.padding} padding = {w.size + 2 * w.padding})"
            )
    return wins


def _pad(x: jax.Array, wins: Sequence[Window], blocks: bool = False) -> jax.Array:
    """Zero-pad (or crop) the trailing spatial axes to what the windows use,
    or to whole ``(out, stride)`` blocks."""
    config = [(0, 0, 0)] * (x.ndim - len(wins)) + [
        d.pad_config(d.out * d.stride if blocks else d.used) for d in wins]
    if any(lo or hi for lo, hi, _ in config):
        x = lax.pad(x, jnp.zeros((), x.dtype), config)
    return x


def _tap_view(x: jax.Array, wins: Sequence[Window], at: int = 0) -> jax.Array:
    """One strided slice per tap, stacked at axis ``at``:
    ``x.shape[:at] + kernels + x.shape[at:lead] + outs`` (lead: non-spatial axes)."""
    x = _pad(x, wins)
    lead = x.ndim - len(wins)
    taps = [x]
    for d, w in enumerate(wins):
        taps = [w.tap(t, k, lead + d) for t in taps for k in range(w.kernel)]
    view = jnp.stack(taps, axis=at)
    kernels = tuple(w.kernel for w in wins)
    return view.reshape(view.shape[:at] + kernels + view.shape[at + 1:])


def _block_view(x: jax.Array, wins: Sequence[Window]) -> jax.Array:
    """``(*lead, out1, k1, ..., outd, kd)`` for ``kernel <= stride``: a reshape
    into ``(out, stride)`` blocks (no copy), then the first ``kernel`` columns."""
    x = _pad(x, wins, blocks=True)
    lead = x.ndim - len(wins)
    for d, w in enumerate(wins):
        axis = lead + 2 * d  # earlier axes have become pairs already
        x = x.reshape(x.shape[:axis] + (w.out, w.stride) + x.shape[axis + 1:])
        if w.kernel < w.stride:
            x = lax.slice_in_dim(x, 0, w.kernel, axis=axis + 1)
    return x


def _pool_spec(wins: Sequence[Window]) -> str:
    """``"pq...hw->...hw"`` over the tap view (2-D; 1-D and 3-D alike), or
    ``"...hpwq->...hw"`` over the block view when it is used (see _pool)."""
    nd = len(wins)
    outs, taps = _OUT_LABELS[-nd:], _TAP_LABELS[-nd:]
    if _use_blocks(wins):
        return "..." + "".join(o + t for o, t in zip(outs, taps)) + "->..." + outs
    return f"{taps}...{outs}->...{outs}"


def _use_blocks(wins: Sequence[Window]) -> bool:
    """Pool over the block view only for big non-overlapping windows: the tap
    view is ~8x faster on CPU (XLA fuses its slices into elementwise adds,
    while a reduce over small minor axes is slow) but costs one slice per tap
    in the program, so beyond _MAX_TAPS taps compile time would grow."""
    return not any(d.overlaps for d in wins) and np.prod([d.kernel for d in wins]) > _MAX_TAPS


# conv without overlap (one einsum over the block or tap view), and with
# overlap (row view, then the W taps).
_BLOCK_SPEC = "nchpwq,ocpq->nohw"
_TAPS_SPEC = "nocpq,ncpqhw->nohw"
_ROWS_SPEC = "ocpq,cpnhv->oqnhv"
_SHIFT_SPEC = "oqnhw->nohw"


def _shape_dtype(x: Any, op: str) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of an array, a ``jax.ShapeDtypeStruct`` or array-like."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return tuple(x.shape), x.dtype
    a = operand(x, op)
    return tuple(a.shape), a.dtype


# ---------------------------------------------------------------- sum_pool


def _pool_geometry(shape: tuple[int, ...], dtype: Any, kernel: Any, stride: Any,
                   padding: Any, kernel_size: Any = None,
                   ceil_mode: Any = False) -> tuple[tuple[Window, ...], str]:
    """Validated windows and the result dtype of ``sum_pool``."""
    op = "sum_pool"
    kernel = resolve_alias("kernel", kernel, "kernel_size", kernel_size, op)
    if kernel is None:
        raise ContractError(f"{op}(): kernel must be an int or a tuple of ints (kernel_size= in "
                            f"PyTorch's spelling), got None")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise ContractError(f"{op}(): ceil_mode must be True or False, got {ceil_mode!r}")
    # The number of spatial dims comes from the first per-dim tuple given.
    nd = 2
    for v in (kernel, stride, padding):
        if isinstance(v, (tuple, list)):
            nd = len(v)
            break
    if not 1 <= nd <= _MAX_DIMS:
        raise ContractError(
            f"{op}(): pools 1 to {_MAX_DIMS} trailing spatial dims, but kernel/stride/padding "
            f"give {nd} (kernel={kernel!r}, stride={stride!r}, padding={padding!r})")
    kernels = _ints(kernel, nd, "kernel", op, 1)
    if len(shape) < nd:
        raise ContractError(
            f"{op}(): x has shape {shape} (rank {len(shape)}) but the kernel {kernels} needs "
            f"at least {nd} trailing spatial dims (NCHW)"
        )
    wins = _windows(shape[len(shape) - nd:], kernels, kernels if stride is None else stride,
                    padding, op, bool(ceil_mode))
    dt = jnp.dtype(dtype)
    if dt.kind not in "biufc" and dt.name != "bfloat16":
        raise ContractError(f"{op}(): x has dtype {dt}, which is not numeric")
    # Sums of small integers and bools widen (as jnp.sum does) so a window of
    # int8 values cannot wrap; floats keep their dtype (accumulated in float32).
    result = widened_integer(dt.name) if dt.kind in "biu" else dt.name
    return wins, result


def _pool_args(x: Any, kernel: Any = None, stride: Any = None, padding: Any = 0, *,
               kernel_size: Any = None,
               ceil_mode: Any = False) -> tuple[list[jax.Array], dict[str, Any]]:
    x = operand(x, "sum_pool")
    wins, result = _pool_geometry(tuple(x.shape), x.dtype, kernel, stride, padding, kernel_size,
                                  ceil_mode)
    return [x], {"wins": wins, "result": result}


def _pool(x: jax.Array, *, wins: tuple[Window, ...], result: str) -> jax.Array:
    view = _block_view(x, wins) if _use_blocks(wins) else _tap_view(x, wins)
    return einsum(_pool_spec(wins), view, preferred_element_type=result)


def sum_pool(x: Any, kernel: Any = None, stride: Any = None, padding: Any = 0, *,
             kernel_size: Any = None, ceil_mode: bool = False) -> jax.Array:
    """Sum over windows of the trailing spatial dims (NCHW: ``H``, ``W``).

    ``kernel`` (PyTorch's ``kernel_size=``), ``stride`` (default: ``kernel``)
    and ``padding`` (zeros, both sides) are an int for every spatial dim or a
    tuple, one per dim; a tuple of length 1 or 3 pools 1 or 3 trailing dims.
    Output size per dim is ``floor((size + 2 * padding - kernel) / stride) +
    1``, as in PyTorch; ``ceil_mode=True`` rounds up as PyTorch does (a last
    window that starts in the right padding is dropped; the others sum the
    zeros past the end). Equals ``avg_pool2d(x, k, s, p, ceil_mode,
    divisor_override=1)`` and ``lax.reduce_window(x, 0, lax.add, ...)``;
    unlike PyTorch, ``padding`` may exceed half the kernel.

    dtypes: floats keep their dtype (bfloat16/float16 sum in float32);
    bool and integers narrower than the default integer sum exactly into it
    (x64 off: (u)int32, on: (u)int64), like ``jnp.sum``.

    >>> import numpy as np
    >>> sum_pool(np.ones((1, 1, 3, 3), np.int8), 2, stride=1).tolist()
    [[[[4, 4], [4, 4]]]]
    >>> sum_pool(np.arange(5.0, dtype=np.float32), (2,), padding=1).tolist()
    [0.0, 3.0, 7.0]
    >>> sum_pool(np.arange(5.0, dtype=np.float32), kernel_size=(2,), ceil_mode=True).tolist()
    [1.0, 5.0, 4.0]
    """
    return run(_pool_args, _pool, x, kernel, stride, padding, kernel_size=kernel_size,
               ceil_mode=ceil_mode)


@register(sum_pool)
def _lower_sum_pool(x: Any, kernel: Any = None, stride: Any = None, padding: Any = 0, *,
                    kernel_size: Any = None, ceil_mode: bool = False) -> Lowering:
    shape, dtype = _shape_dtype(x, "sum_pool")
    wins, result = _pool_geometry(shape, dtype, kernel, stride, padding, kernel_size, ceil_mode)
    kernels = tuple(w.kernel for w in wins)
    lead = shape[: len(shape) - len(wins)]
    if _use_blocks(wins):
        view = lead + tuple(v for w in wins for v in (w.out, w.kernel))
        notes = [f"block view of x {shape}: each spatial axis reshaped into (out, stride) blocks, "
                 f"no copy"]
    else:
        view = kernels + lead + tuple(w.out for w in wins)
        notes = [f"tap view of x {shape}: {np.prod(kernels)} strided slices stacked on leading "
                 f"axes {kernels} (fused into the sum, not materialised)"]
    names = _OUT_LABELS[-len(wins):].upper()
    notes += [f"    {name}: {w.describe()}" for name, w in zip(names, wins)]
    notes.append(f"  result dtype {result}")
    return Lowering("sum_pool", ((_pool_spec(wins), (view,)),), "\n".join(notes))


# ---------------------------------------------------------------- conv


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
    return _windows(xshape[2:], wshape[2:], stride, padding, op)


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
    return einsum(_BLOCK_SPEC, _block_view(x, wins), w, precision=precision,
                  preferred_element_type=result)


def _conv_taps(x: jax.Array, w: jax.Array, wins: tuple[Window, ...], precision: Any,
               result: str) -> jax.Array:
    """No overlap, small filters: a batched GEMM per image straight into NCHW.

    The tap view ``(n, c, p, q, h, w)`` is contracted with ``w`` broadcast
    over the batch, so no transpose of the input or the output is needed
    (about 1.4x faster than the block view on the 2x2 stride 2 row)."""
    wb = jnp.broadcast_to(w, x.shape[:1] + w.shape)
    return einsum(_TAPS_SPEC, wb, _tap_view(x, wins, at=2), precision=precision,
                  preferred_element_type=result)


def _phases(win: Window) -> list[tuple[int, int, int]]:
    """``(t, taps, columns)`` for each W phase ``t < min(stride, kernel)``.

    Tap ``q = a * stride + t`` only ever reads columns ``stride * r + t``, so
    each phase contracts its own strided column slice with its own taps and
    no column is computed that no window reads.

    >>> _phases(Window(size=9, kernel=3, stride=2, padding=0))
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
    xc = _pad(lax.transpose(x, (1, 0, 2, 3)), wins)
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
    path = _conv_path(x.shape, w.shape, wins)
    xla = lambda a, b: path(a, b, wins, precision, result)
    if not _on_kernel(x.dtype, w.dtype, result, precision):
        return xla(x, w)
    # On CPU the native kernel: patches gathered per block of output rows, in
    # cache, then one GEMM into NCHW (1.8-2.6x faster than the XLA lowerings
    # above, docs/lowering.md); elsewhere, and for tangents, XLA.
    stride, padding = tuple(d.stride for d in wins), tuple(d.padding for d in wins)
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

    dtypes follow :func:`contract.einsum`: the result has JAX's promoted dtype
    of ``x`` and ``w`` (bfloat16/float16 accumulate in float32, narrow ints in
    int32, float32 at full precision unless ``precision=`` says otherwise);
    ``preferred_element_type`` picks another result dtype.

    >>> import numpy as np
    >>> x = np.arange(9.0, dtype=np.float32).reshape(1, 1, 3, 3)
    >>> conv(x, np.ones((2, 1, 2, 2), np.float32))[0].tolist()
    [[[8.0, 12.0], [20.0, 24.0]], [[8.0, 12.0], [20.0, 24.0]]]
    """
    return run(_conv_args, _conv, x, w, stride, padding, precision=precision,
               preferred_element_type=preferred_element_type)


@register(conv)
def _lower_conv(x: Any, w: Any, stride: Any = 1, padding: Any = 0, *, precision: Any = None,
                preferred_element_type: Any = None) -> Lowering:
    xshape, xdt = _shape_dtype(x, "conv")
    wshape, wdt = _shape_dtype(w, "conv")
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
