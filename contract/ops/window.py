"""Windowed operations lowered to einsums over window views: ``sum_pool``, ``conv``.

Each spatial axis of length ``size`` becomes two axes ``(out, kernel)`` — a
*window view* — and the operation is one einsum over that view:

* ``sum_pool``: ``"...hpwq->...hw"`` (sum over the window axes ``p``, ``q``);
* ``conv``: ``"nchpwq,ocpq->nohw"`` (cross-correlation, like
  ``torch.nn.functional.conv2d`` and ``lax.conv_general_dilated``).

The view of an axis costs as little as the geometry allows. The axis is
zero-padded (or cropped) to ``(out + A - 1) * stride`` elements, where
``A = ceil(kernel / stride)``, and reshaped into rows of ``stride``:

* ``stride == kernel`` (non-overlapping blocks): ``A == 1`` and the view *is*
  the reshape — no copy at all;
* ``stride > kernel``: the reshape, then the first ``kernel`` columns;
* ``stride < kernel`` (overlap): ``A`` row-shifted slices of the reshape,
  stacked — ``ceil(kernel / stride)`` slices, not ``kernel``, and never a
  gather of an index tensor.

The einsum then runs through :func:`contract.einsum` (planner + JAX backend),
so dtype and precision follow its policy: bfloat16/float16 accumulate in
float32 and float32 contracts at full precision.

>>> import numpy as np, contract
>>> x = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
>>> contract.sum_pool(x, 2)[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
>>> contract.conv(x, np.ones((1, 1, 2, 2), np.float32), stride=2)[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..api import _dtype_name, _precision, einsum
from ..errors import ContractError
from ..plan import compute_dtype
from ._args import operand
from ._compiled import run
from .lowering import Lowering, register

__all__ = ["sum_pool", "conv"]

# Labels of the spatial output axes and of the window (tap) axes, innermost
# last: 1-D uses the last one, 2-D the last two, 3-D all three.
_OUT_LABELS = "dhw"
_TAP_LABELS = "rpq"
_MAX_DIMS = len(_OUT_LABELS)


@dataclass(frozen=True)
class Window:
    """The window geometry of one spatial axis.

    >>> w = Window(size=7, kernel=3, stride=2, padding=1)
    >>> w.out, w.blocks, w.length
    (4, 2, 10)
    """

    size: int
    kernel: int
    stride: int
    padding: int

    @property
    def out(self) -> int:
        """Output length: ``floor((size + 2 * padding - kernel) / stride) + 1``."""
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def blocks(self) -> int:
        """Rows of ``stride`` elements one window spans: ``ceil(kernel / stride)``."""
        return -(-self.kernel // self.stride)

    @property
    def length(self) -> int:
        """Axis length after padding/cropping, a whole number of stride rows."""
        return (self.out + self.blocks - 1) * self.stride

    def describe(self) -> str:
        """How the view of this axis is built (for :func:`contract.lower`)."""
        pad = f"zero-pad {self.padding}, " if self.padding else ""
        if self.blocks == 1:
            how = f"reshape into ({self.out}, {self.stride})"
            how += f", first {self.kernel} columns" if self.kernel < self.stride else " (no copy)"
        else:
            how = (f"reshape into rows of {self.stride}, stack {self.blocks} shifted slices"
                   f" -> ({self.out}, {self.blocks * self.stride})")
            if self.blocks * self.stride > self.kernel:
                how += f", first {self.kernel} columns"
        return f"{self.size} -> {self.out} windows of {self.kernel} stride {self.stride}: {pad}{how}"


def _ints(value: Any, nd: int, name: str, op: str, minimum: int) -> tuple[int, ...]:
    """An int or a per-dimension sequence of ``nd`` ints, each ``>= minimum``."""
    items = (value,) * nd if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        raise ContractError(f"{op}(): {name} must be an int or a tuple of {nd} ints, got {value!r}") from None
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
             op: str) -> tuple[Window, ...]:
    """Validate stride/padding against the spatial sizes; one Window per axis."""
    nd = len(spatial)
    strides = _ints(stride, nd, "stride", op, 1)
    pads = _ints(padding, nd, "padding", op, 0)
    wins = tuple(Window(n, k, s, p) for n, k, s, p in zip(spatial, kernel, strides, pads))
    for d, w in enumerate(wins):
        if w.kernel > w.size + 2 * w.padding:
            raise ContractError(
                f"{op}(): kernel {w.kernel} is larger than the padded input along spatial "
                f"dim {d} (size {w.size} + 2*{w.padding} padding = {w.size + 2 * w.padding})"
            )
    return wins


def _view(x: jax.Array, wins: Sequence[Window]) -> jax.Array:
    """Replace the trailing spatial axes of ``x`` by ``(out, kernel)`` pairs."""
    lead = x.ndim - len(wins)
    # One lax.pad pads with zeros where the geometry needs more and crops
    # (negative high padding) the elements no window reaches.
    config = [(0, 0, 0)] * lead + [
        (w.padding, w.length - w.size - w.padding, 0) for w in wins
    ]
    if any(lo or hi for lo, hi, _ in config):
        x = lax.pad(x, jnp.zeros((), x.dtype), config)
    for d, w in enumerate(wins):
        axis = lead + 2 * d  # earlier axes have become pairs already
        shape = x.shape
        x = x.reshape(shape[:axis] + (w.out + w.blocks - 1, w.stride) + shape[axis + 1:])
        if w.blocks > 1:
            rows = [lax.slice_in_dim(x, a, a + w.out, axis=axis) for a in range(w.blocks)]
            x = jnp.stack(rows, axis=axis + 1)
            x = x.reshape(x.shape[:axis + 1] + (w.blocks * w.stride,) + x.shape[axis + 3:])
        if x.shape[axis + 1] != w.kernel:
            x = lax.slice_in_dim(x, 0, w.kernel, axis=axis + 1)
    return x


def _pool_spec(nd: int) -> str:
    """``"...hpwq->...hw"`` for 2-D; the 1-D and 3-D analogues otherwise."""
    outs, taps = _OUT_LABELS[-nd:], _TAP_LABELS[-nd:]
    return "..." + "".join(o + t for o, t in zip(outs, taps)) + "->..." + outs


_CONV_SPEC = "nchpwq,ocpq->nohw"


def _shape_dtype(x: Any, op: str) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of an array, a ``jax.ShapeDtypeStruct`` or array-like."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return tuple(x.shape), x.dtype
    a = operand(x, op)
    return tuple(a.shape), a.dtype


# ---------------------------------------------------------------- sum_pool


def _pool_geometry(shape: tuple[int, ...], dtype: Any, kernel: Any, stride: Any,
                   padding: Any) -> tuple[tuple[Window, ...], str]:
    """Validated windows and the result dtype of ``sum_pool``."""
    op = "sum_pool"
    given = [v for v in (kernel, stride, padding) if v is not None and not isinstance(v, (int, np.integer))]
    nd = 2
    for v in given:
        try:
            nd = len(v)
            break
        except TypeError:
            pass
    if not 1 <= nd <= _MAX_DIMS:
        raise ContractError(f"{op}(): pools 1 to {_MAX_DIMS} trailing spatial dims, got kernel={kernel!r}")
    kernels = _ints(kernel, nd, "kernel", op, 1)
    if len(shape) < nd:
        raise ContractError(
            f"{op}(): x has shape {shape} (rank {len(shape)}) but the kernel {kernels} needs "
            f"at least {nd} trailing spatial dims (NCHW)"
        )
    wins = _windows(shape[len(shape) - nd:], kernels, kernels if stride is None else stride,
                    padding, op)
    dt = jnp.dtype(dtype)
    if dt.kind not in "biufc" and dt.name != "bfloat16":
        raise ContractError(f"{op}(): x has dtype {dt}, which is not numeric")
    # Sums of small integers and bools widen (as jnp.sum does) so a window of
    # int8 values cannot wrap; floats keep their dtype (accumulated in float32).
    result = compute_dtype(dt.name) if dt.kind in "biu" else dt.name
    return wins, result


def _pool_args(x: Any, kernel: Any, stride: Any = None,
               padding: Any = 0) -> tuple[list[jax.Array], dict[str, Any]]:
    x = operand(x, "sum_pool")
    wins, result = _pool_geometry(tuple(x.shape), x.dtype, kernel, stride, padding)
    return [x], {"wins": wins, "result": result}


def _pool(x: jax.Array, *, wins: tuple[Window, ...], result: str) -> jax.Array:
    return einsum(_pool_spec(len(wins)), _view(x, wins), preferred_element_type=result)


def sum_pool(x: Any, kernel: Any, stride: Any = None, padding: Any = 0) -> jax.Array:
    """Sum over windows of the trailing spatial dims (NCHW: ``H``, ``W``).

    ``kernel``, ``stride`` (default: ``kernel``) and ``padding`` (zeros, both
    sides) are an int for every spatial dim or a tuple, one per dim; a tuple
    of length 1 or 3 pools 1 or 3 trailing dims. Output size per dim is
    ``floor((size + 2 * padding - kernel) / stride) + 1``, as in PyTorch.
    Equals ``avg_pool2d(x, k, s, p, divisor_override=1)`` and
    ``lax.reduce_window(x, 0, lax.add, ...)``.

    dtypes: floats keep their dtype (bfloat16/float16 sum in float32);
    bool and 8/16-bit integers sum exactly into (u)int32, like ``jnp.sum``.

    >>> import numpy as np
    >>> sum_pool(np.ones((1, 1, 3, 3), np.int8), 2, stride=1).tolist()
    [[[[4, 4], [4, 4]]]]
    >>> sum_pool(np.arange(5.0, dtype=np.float32), (2,), padding=1).tolist()
    [0.0, 3.0, 7.0]
    """
    return run(_pool_args, _pool, x, kernel, stride, padding)


@register(sum_pool)
def _lower_sum_pool(x: Any, kernel: Any, stride: Any = None, padding: Any = 0) -> Lowering:
    shape, dtype = _shape_dtype(x, "sum_pool")
    wins, result = _pool_geometry(shape, dtype, kernel, stride, padding)
    view = shape[: len(shape) - len(wins)] + tuple(v for w in wins for v in (w.out, w.kernel))
    notes = [f"window view of x {shape}:"]
    notes += [f"    {name}: {w.describe()}" for name, w in zip(_OUT_LABELS[-len(wins):].upper(), wins)]
    notes.append(f"  result dtype {result}")
    return Lowering("sum_pool", ((_pool_spec(len(wins)), (view,)),), "\n".join(notes))


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
        prec = _precision(precision)
    except ContractError as e:
        raise ContractError(f"conv(): {e}") from None
    preferred = (None if preferred_element_type is None
                 else _dtype_name(preferred_element_type, "conv(): preferred_element_type"))
    return [x, w], {"wins": wins, "precision": prec, "preferred": preferred}


def _conv(x: jax.Array, w: jax.Array, *, wins: tuple[Window, ...], precision: Any,
          preferred: Any) -> jax.Array:
    return einsum(_CONV_SPEC, _view(x, wins), w, precision=precision,
                  preferred_element_type=preferred)


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
    view = xshape[:2] + tuple(v for win in wins for v in (win.out, win.kernel))
    notes = [f"window view of x {xshape}:"]
    notes += [f"    {name}: {win.describe()}" for name, win in zip("HW", wins)]
    return Lowering("conv", ((_CONV_SPEC, (view, wshape)),), "\n".join(notes))
