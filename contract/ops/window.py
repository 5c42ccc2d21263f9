"""Window views, and ``sum_pool`` and ``max_pool`` lowered to an einsum over one.

A *window view* turns each spatial axis of length ``size`` into a window
axis (``kernel`` taps) and an output axis (``out`` positions) built from
slices and reshapes only — never a gather of an index tensor. The operation
is then an einsum over the view, run by :func:`contract.einsum` (planner +
JAX backend), so dtype and precision follow its policy. ``conv``
(:mod:`.convolution`) uses the same geometry and views.

* ``sum_pool``: the *tap view* — one strided slice per tap, stacked on
  leading axes — and ``"pq...hw->...hw"``. XLA fuses the stack into the
  sum: nothing of the view's size is materialised.
* ``max_pool``: the same views, padded with ``-inf``, and the same einsum in
  the max-plus semiring (its ⊕ is ``max``).

>>> import numpy as np, contract
>>> x = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
>>> contract.sum_pool(x, 2)[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..api import einsum
from ..backend.semiring import zero_of
from ..errors import ContractError
from ..semiring import resolve
from ..validate import widened_integer
from ._args import operand, resolve_alias
from ._compiled import run
from .lowering import Lowering, register

__all__ = ["PADDING_NAMES", "Window", "block_view", "max_pool", "named_padding", "padded",
           "shape_dtype", "sum_pool", "tap_view", "windows"]

# Labels of the spatial output axes and of the window (tap) axes, innermost
# last: 1-D uses the last one, 2-D the last two, 3-D all three.
_OUT_LABELS = "dhw"
_TAP_LABELS = "rpq"
_MAX_DIMS = len(_OUT_LABELS)
_MAX_TAPS = 64
# Padding by name: PyTorch's spelling, then JAX's (lax.padtype_to_pads).
PADDING_NAMES = ("same", "valid", "SAME", "VALID")
_NAMES = ", ".join(map(repr, PADDING_NAMES))


@dataclass(frozen=True)
class Window:
    """The window geometry of one spatial axis, ``low`` zeros before it and
    ``high`` after (they differ for an even kernel padded by name).

    >>> w = Window(size=7, kernel=3, stride=2, low=1, high=1)
    >>> w.out, w.used, w.overlaps
    (4, 9, True)
    >>> Window(size=5, kernel=2, stride=2, low=0, high=0, ceil=True).out  # the last window is cut
    3
    >>> Window(size=4, kernel=2, stride=1, low=0, high=1).out  # padding="same"
    4
    """

    size: int
    kernel: int
    stride: int
    low: int
    high: int
    ceil: bool = False  # PyTorch's ceil_mode (pooling only)

    @property
    def out(self) -> int:
        """Output length: ``floor((size + low + high - kernel) / stride) + 1``.

        With ``ceil`` the division rounds up, but (as in PyTorch) a last
        window must start inside the input or its left padding; the windows
        that reach past the padded input see zeros there.
        """
        span = self.size + self.low + self.high - self.kernel
        if not self.ceil:
            return span // self.stride + 1
        n = -(-span // self.stride) + 1
        return n - 1 if (n - 1) * self.stride >= self.size + self.low else n

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
        return (self.low, length - self.size - self.low, 0)

    def tap(self, x: jax.Array, offset: int, axis: int) -> jax.Array:
        """The strided slice of a padded axis that tap ``offset`` sees."""
        return lax.slice_in_dim(x, offset, offset + self.used - self.kernel + 1, self.stride, axis)

    def describe(self, fill: str = "zero") -> str:
        """One line for :func:`contract.lower` (``fill``: what the padding holds)."""
        if self.low == self.high:
            pad = f", {fill}-padded by {self.low}" if self.low else ""
        else:
            pad = f", {fill}-padded by {self.low} before and {self.high} after"
        ceil = ", ceil_mode" if self.ceil else ""
        return (f"{self.size} -> {self.out} windows of {self.kernel}, stride {self.stride}"
                f"{pad}{ceil}")


def _ints(value: Any, nd: int, name: str, op: str, minimum: int,
          hint: str = "") -> tuple[int, ...]:
    """An int or a per-dimension sequence of ``nd`` ints, each ``>= minimum``
    (``hint``: what else the argument may be, for the type errors)."""
    items = (value,) * nd if isinstance(value, (int, np.integer)) else value
    try:
        items = None if isinstance(items, (str, bytes)) else tuple(items)  # not characters
    except TypeError:
        items = None
    if items is None:
        raise ContractError(
            f"{op}(): {name} must be an int or a tuple of {nd} ints{hint}, got {value!r}")
    if len(items) != nd:
        raise ContractError(
            f"{op}(): {name}={value!r} has {len(items)} entries but there are {nd} spatial dims"
        )
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ContractError(f"{op}(): {name} entries must be ints{hint}, got {v!r}")
        if v < minimum:
            bound = "positive" if minimum == 1 else "non-negative"
            raise ContractError(f"{op}(): {name} must be {bound}, got {value!r}")
    return tuple(int(v) for v in items)


def named_padding(name: str, spatial: Sequence[int], kernel: Sequence[int],
                  strides: Sequence[int], op: str) -> tuple[tuple[int, int], ...]:
    """``(low, high)`` zeros per spatial dim for a padding name (:data:`PADDING_NAMES`).

    ``"valid"``/``"VALID"``: none. ``"SAME"`` is ``lax.padtype_to_pads``'
    rule for any stride: ``out = ceil(size / stride)`` windows, ``total =
    max((out - 1) * stride + kernel - size, 0)`` zeros, ``total // 2``
    before and the rest after. ``"same"`` is PyTorch's, stride 1 only (it
    raises otherwise): there both rules pad ``kernel - 1`` zeros, the odd
    one after, so the output keeps the input's size.

    >>> named_padding("SAME", (7, 8), (4, 3), (1, 2), "conv")  # even kernel: one more after
    ((1, 2), (0, 1))
    >>> named_padding("same", (7,), (4,), (1,), "conv")  # PyTorch: the same zeros, stride 1
    ((1, 2),)
    >>> named_padding("VALID", (7,), (4,), (2,), "conv")
    ((0, 0),)
    """
    if name not in PADDING_NAMES:
        raise ContractError(
            f"{op}(): padding={name!r} is not a padding name; use {_NAMES} ('same' and 'valid' "
            f"as in PyTorch, 'SAME' and 'VALID' as in JAX), an int or a tuple of ints")
    if name.lower() == "valid":
        return tuple((0, 0) for _ in spatial)
    if name == "same" and any(s != 1 for s in strides):
        raise ContractError(
            f"{op}(): padding='same' needs stride 1 in every spatial dim, as in PyTorch, but "
            f"the stride is {tuple(strides)}; padding='SAME' is JAX's rule for any stride")
    pads = []
    for size, k, s in zip(spatial, kernel, strides):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def windows(spatial: Sequence[int], kernel: Sequence[int], stride: Any, padding: Any,
            op: str, ceil: bool = False) -> tuple[Window, ...]:
    """One :class:`Window` per spatial axis, ``stride`` and ``padding`` (ints,
    one per axis or one for all, or a padding name) checked against the sizes.

    >>> [(w.low, w.high, w.out) for w in windows((8, 8), (2, 2), 1, "same", "conv")]
    [(0, 1, 8), (0, 1, 8)]
    """
    nd = len(spatial)
    strides = _ints(stride, nd, "stride", op, 1)
    if isinstance(padding, str):
        pads = named_padding(padding, spatial, kernel, strides, op)
    else:
        pads = tuple((p, p) for p in _ints(padding, nd, "padding", op, 0,
                                           f" (or one padding name for every dim: {_NAMES})"))
    wins = tuple(Window(n, k, s, lo, hi, ceil)
                 for n, k, s, (lo, hi) in zip(spatial, kernel, strides, pads))
    for d, w in enumerate(wins):
        if w.kernel > w.size + w.low + w.high:
            both = f"2*{w.low}" if w.low == w.high else f"{w.low} + {w.high}"
            raise ContractError(
                f"{op}(): kernel {w.kernel} is larger than the padded input along spatial "
                f"dim {d} (size {w.size} + {both} padding = {w.size + w.low + w.high})"
            )
    return wins


def padded(x: jax.Array, wins: Sequence[Window], blocks: bool = False, fill: Any = 0) -> jax.Array:
    """``x`` padded with ``fill`` (or cropped) on its trailing spatial axes to
    what the windows use, or to whole ``(out, stride)`` blocks; no copy when it fits.

    >>> padded(jnp.ones((1, 3)), windows((3,), (2,), 1, "SAME", "sum_pool")).tolist()
    [[1.0, 1.0, 1.0, 0.0]]
    """
    config = [(0, 0, 0)] * (x.ndim - len(wins)) + [
        d.pad_config(d.out * d.stride if blocks else d.used) for d in wins]
    if any(lo or hi for lo, hi, _ in config):
        x = lax.pad(x, jnp.asarray(fill, x.dtype), config)
    return x


def tap_view(x: jax.Array, wins: Sequence[Window], at: int = 0, fill: Any = 0) -> jax.Array:
    """One strided slice per tap, stacked at axis ``at``:
    ``x.shape[:at] + kernels + x.shape[at:lead] + outs`` (lead: non-spatial axes).

    >>> tap_view(jnp.arange(4.0), windows((4,), (2,), 2, 0, "sum_pool")).tolist()
    [[0.0, 2.0], [1.0, 3.0]]
    """
    x = padded(x, wins, fill=fill)
    lead = x.ndim - len(wins)
    taps = [x]
    for d, w in enumerate(wins):
        taps = [w.tap(t, k, lead + d) for t in taps for k in range(w.kernel)]
    view = jnp.stack(taps, axis=at)
    kernels = tuple(w.kernel for w in wins)
    return view.reshape(view.shape[:at] + kernels + view.shape[at + 1:])


def block_view(x: jax.Array, wins: Sequence[Window], fill: Any = 0) -> jax.Array:
    """``(*lead, out1, k1, ..., outd, kd)`` for ``kernel <= stride``: a reshape
    into ``(out, stride)`` blocks (no copy), then the first ``kernel`` columns.

    >>> block_view(jnp.arange(6.0), windows((6,), (2,), 3, 0, "sum_pool")).tolist()
    [[0.0, 1.0], [3.0, 4.0]]
    """
    x = padded(x, wins, blocks=True, fill=fill)
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


def shape_dtype(x: Any, op: str) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of an array, a ``jax.ShapeDtypeStruct`` or array-like
    (what :func:`contract.lower` is given in place of an operand).

    >>> shape_dtype(jax.ShapeDtypeStruct((2, 3), jnp.int8), "sum_pool")
    ((2, 3), dtype('int8'))
    """
    if isinstance(x, jax.ShapeDtypeStruct):
        return tuple(x.shape), x.dtype
    a = operand(x, op)
    return tuple(a.shape), a.dtype


# ---------------------------------------------------------------- sum_pool, max_pool

# The semiring of each pooling: its ⊕ reduces a window, its zero pads.
_RINGS = {"sum_pool": "sum-product", "max_pool": "max-plus"}
_ADD = {"sum-product": "sum", "max-plus": "max"}


def _pool_geometry(op: str, shape: tuple[int, ...], dtype: Any, kernel: Any, stride: Any,
                   padding: Any, kernel_size: Any = None,
                   ceil_mode: Any = False) -> tuple[tuple[Window, ...], str]:
    """Validated windows and the result dtype of ``op`` (a key of ``_RINGS``)."""
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
    wins = windows(shape[len(shape) - nd:], kernels, kernels if stride is None else stride,
                   padding, op, bool(ceil_mode))
    dt = jnp.dtype(dtype)
    if dt.kind not in "biufc" and dt.name != "bfloat16":
        raise ContractError(f"{op}(): x has dtype {dt}, which is not numeric")
    if _RINGS[op] == "max-plus":
        if dt.kind in "bc":  # as torch's max_pool2d, which has no bool or complex kernel
            raise ContractError(f"{op}(): x has dtype {dt}; max pooling takes real numbers "
                                f"(cast bool to an integer dtype; for complex take x.real)")
        return wins, dt.name  # a maximum is exact in any dtype
    # Sums of small integers and bools widen (as jnp.sum does) so a window of
    # int8 values cannot wrap; floats keep their dtype (accumulated in float32).
    result = widened_integer(dt.name) if dt.kind in "biu" else dt.name
    return wins, result


def _pool_args(op: str, x: Any, kernel: Any = None, stride: Any = None, padding: Any = 0, *,
               kernel_size: Any = None,
               ceil_mode: Any = False) -> tuple[list[jax.Array], dict[str, Any]]:
    x = operand(x, op)
    wins, result = _pool_geometry(op, tuple(x.shape), x.dtype, kernel, stride, padding,
                                  kernel_size, ceil_mode)
    return [x], {"wins": wins, "result": result, "ring": _RINGS[op]}


def _pool(x: jax.Array, *, wins: tuple[Window, ...], result: str, ring: str) -> jax.Array:
    fill = zero_of(resolve(ring), x.dtype)  # 0 for sums; -inf (an integer's minimum) for max
    blocks = _use_blocks(wins)
    view = block_view(x, wins, fill) if blocks else tap_view(x, wins, fill=fill)
    spec = _pool_spec(wins)
    if ring == "sum-product":
        return einsum(spec, view, preferred_element_type=result)
    if not jnp.issubdtype(view.dtype, jnp.inexact):
        return einsum(spec, view, semiring=ring)  # integers: exact, and no gradient
    nd = len(wins)  # the window axes: leading in the tap view, each after its out axis in blocks
    axes = tuple(1 - 2 * (nd - d) + view.ndim for d in range(nd)) if blocks else tuple(range(nd))
    return _window_max(view, spec, axes)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _window_max(view: jax.Array, spec: str, axes: tuple[int, ...]) -> jax.Array:
    """The max-plus einsum ``spec`` of ``view``, which ⊕-reduces its window
    ``axes``, with the gradient of JAX's max pooling (``lax.reduce_window``):
    all of it to the first maximum of each window in row-major order, the
    one XLA's ``select_and_scatter_add`` picks, where ``jnp.max`` would
    split it among ties.

    >>> jax.grad(lambda v: _window_max(v, "rw->w", (0,)).sum())(jnp.ones((2, 1))).tolist()
    [[1.0], [0.0]]
    """
    return einsum(spec, view, semiring="max-plus")


@_window_max.defjvp
def _window_max_jvp(spec: str, axes: tuple[int, ...], primals: tuple, tangents: tuple) -> tuple:
    (view,), (dview,) = primals, tangents
    top = einsum(spec, view, semiring="max-plus")
    k, last = len(axes), tuple(range(-len(axes), 0))
    hit = jnp.moveaxis(view == jnp.expand_dims(top, axes), axes, last)
    flat = hit.reshape(hit.shape[:-k] + (-1,))
    first = jnp.argmax(flat, axis=-1)  # the first True: the first maximum
    pick = lax.broadcasted_iota(first.dtype, flat.shape, flat.ndim - 1) == first[..., None]
    pick = jnp.moveaxis(pick.reshape(hit.shape), last, axes)
    return top, jnp.sum(jnp.where(pick, dview, 0), axis=axes)


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

    ``padding`` may also be a name (:func:`contract.ops.window.named_padding`):
    ``"valid"``/``"VALID"`` (none), ``"SAME"`` (``lax.reduce_window``'s rule:
    ``ceil(size / stride)`` windows, an odd zero after), or ``"same"`` (the
    same zeros, stride 1 only, as PyTorch's convolutions; pass ``stride=1``,
    the default stride is the kernel).

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
    >>> sum_pool(np.arange(5.0, dtype=np.float32), (2,), padding="SAME").tolist()
    [1.0, 5.0, 4.0]
    """
    return run(_SUM_POOL_ARGS, _pool, x, kernel, stride, padding, kernel_size=kernel_size,
               ceil_mode=ceil_mode)


def max_pool(x: Any, kernel: Any = None, stride: Any = None, padding: Any = 0, *,
             kernel_size: Any = None, ceil_mode: bool = False) -> jax.Array:
    """The maximum over windows of the trailing spatial dims (NCHW: ``H``, ``W``),
    as ``torch.nn.functional.max_pool1d/2d/3d`` and ``lax.reduce_window(x,
    -inf, lax.max, ...)``: :func:`sum_pool`'s arguments and windows, the
    padding ``-inf`` (an integer dtype's minimum), the einsum in the max-plus
    semiring.

    Unlike PyTorch, ``padding`` may exceed half the kernel (a window of
    padding alone gives ``-inf``) and may be a name, as for :func:`sum_pool`.
    The result has ``x``'s dtype (integers exact; bool and complex are
    refused). The gradient is JAX's max pooling's: each window's all to its
    first maximum (row-major), not split among ties as :func:`amax` does.

    >>> import numpy as np
    >>> max_pool(np.arange(16, dtype=np.int8).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5, 7], [13, 15]]]]
    >>> max_pool(np.array([-1.0, -2.0, -3.0], np.float32), (2,), 1, padding=1).tolist()  # pads lose
    [-1.0, -1.0, -2.0, -3.0]
    """
    return run(_MAX_POOL_ARGS, _pool, x, kernel, stride, padding, kernel_size=kernel_size,
               ceil_mode=ceil_mode)


_SUM_POOL_ARGS = partial(_pool_args, "sum_pool")
_MAX_POOL_ARGS = partial(_pool_args, "max_pool")


def _lower_pool(op: str, x: Any, kernel: Any = None, stride: Any = None, padding: Any = 0, *,
                kernel_size: Any = None, ceil_mode: bool = False) -> Lowering:
    shape, dtype = shape_dtype(x, op)
    wins, result = _pool_geometry(op, shape, dtype, kernel, stride, padding, kernel_size,
                                  ceil_mode)
    ring = _RINGS[op]
    kernels = tuple(w.kernel for w in wins)
    lead = shape[: len(shape) - len(wins)]
    if _use_blocks(wins):
        view = lead + tuple(v for w in wins for v in (w.out, w.kernel))
        notes = [f"block view of x {shape}: each spatial axis reshaped into (out, stride) blocks, "
                 f"no copy"]
    else:
        view = kernels + lead + tuple(w.out for w in wins)
        notes = [f"tap view of x {shape}: {np.prod(kernels)} strided slices stacked on leading "
                 f"axes {kernels} (fused into the {_ADD[ring]}, not materialised)"]
    names = _OUT_LABELS[-len(wins):].upper()
    fill = "zero" if ring == "sum-product" else "-inf"
    notes += [f"    {name}: {w.describe(fill)}" for name, w in zip(names, wins)]
    if ring != "sum-product":
        notes.append(f"  in the {ring} semiring ({_ADD[ring]} over the window labels)")
    notes.append(f"  result dtype {result}")
    return Lowering(op, ((_pool_spec(wins), (view,)),), "\n".join(notes))


register(sum_pool)(partial(_lower_pool, "sum_pool"))
register(max_pool)(partial(_lower_pool, "max_pool"))
