"""Record PyTorch's outputs for the seed operations into small golden files.

Usage (torch is needed here only, never by the tests)::

    pip install torch==2.13.0      # the CPU wheel
    python tools/make_torch_goldens.py

Writes two files under ``tests/data/``:

* ``torch_goldens.npz`` -- every case's inputs and torch's outputs, compressed
  (bfloat16 arrays as their uint16 bits: NumPy has no bfloat16);
* ``torch_goldens.json`` -- the index: per case the torch call as written, the
  contract call that should give the same answer (op, positional and keyword
  arguments, in PyTorch's spelling where contract accepts it), the array keys,
  and for a deliberate difference the tag of its row in docs/coming_from.md.

``tests/test_torch_parity.py`` replays each case through contract's public
API, eager and under ``jax.jit``, and compares with these outputs. The
operations are those of the seed articles (/work/shared/seeds): ``sum`` (dim,
keepdim, dtype=), ``mean``/``var``/``std`` (correction, unbiased), ``cumsum``
(dim, dtype=), sum pooling (``avg_pool`` with ``divisor_override=1``:
kernel_size, stride, padding, ceil_mode), ``conv2d``, multiply-then-sum
(``(a * b).sum(0)``, ``einsum``), ``matmul``; each over several dtypes and
with empty and size-1 cases. Inputs come from a fixed seed, so a re-run
writes the same files.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - a tool, not a test
    sys.exit("make_torch_goldens.py needs torch: pip install torch==2.13.0")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data"
TORCH_VERSION = "2.13.0"

_RNG = np.random.default_rng(20240612)
_ARRAYS: dict[str, np.ndarray] = {}
_DTYPES: dict[str, str] = {}
_CASES: list[dict[str, Any]] = []


# ---------------------------------------------------------------- arrays


def _tensor(shape: tuple[int, ...], dtype: str, *, low: int = -5, high: int = 6,
            values: Any = None) -> torch.Tensor:
    """A seeded input: small integers (exact in every dtype) or normal floats."""
    if values is not None:
        t = torch.tensor(values)
        return t.to(getattr(torch, dtype))
    if dtype == "bool":
        return torch.from_numpy(_RNG.random(shape) < 0.5)
    if dtype.startswith(("int", "uint")):
        lo = 0 if dtype.startswith("u") else low
        return torch.from_numpy(_RNG.integers(lo, high, size=shape)).to(getattr(torch, dtype))
    if dtype.startswith("complex"):
        x = _RNG.standard_normal(shape) + 1j * _RNG.standard_normal(shape)
        return torch.from_numpy(x).to(getattr(torch, dtype))
    return torch.from_numpy(_RNG.standard_normal(shape)).to(getattr(torch, dtype))



def _dim_args(x: Any, dim: Any, keepdim: bool) -> tuple[dict[str, Any], tuple[int, ...] | int]:
    """contract's keywords for a torch ``(dim, keepdim)`` pair, and the dim torch is given."""
    kw: dict[str, Any] = {"keepdim": keepdim}
    if dim is not None:
        kw["dim"] = list(dim) if isinstance(dim, tuple) else dim
    return kw, tuple(range(x.ndim)) if dim is None else dim

def _store(key: str, t: torch.Tensor) -> str:
    """Keep one tensor under ``key``; returns the key."""
    t = t.detach().contiguous()
    name = str(t.dtype).removeprefix("torch.")
    if t.dtype == torch.bfloat16:
        arr = t.view(torch.int16).numpy().view(np.uint16)
    else:
        arr = t.numpy()
    assert key not in _ARRAYS, key
    _ARRAYS[key] = arr
    _DTYPES[key] = name
    return key


def case(cid: str, op: str, torch_call: str, fn: Callable[..., Any],
         inputs: list[torch.Tensor], *, args: tuple = (), kwargs: dict | None = None,
         differs: str | None = None, dtype_differs: str | None = None) -> None:
    """Record ``fn(*inputs)`` (torch) as case ``cid``.

    ``op``, ``args`` and ``kwargs`` are the contract call
    ``contract.<op>(*inputs, *args, **kwargs)`` that should match (dtypes as
    strings); ``differs`` tags a documented difference instead, and
    ``dtype_differs`` one where torch's values hold but the result dtype is
    the one ``jnp.sum`` gives for the input (both name a row of
    docs/coming_from.md).
    """
    assert all(c["id"] != cid for c in _CASES), cid
    out = fn(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    entry = {
        "id": cid,
        "op": op,
        "torch": torch_call,
        "inputs": [_store(f"{cid}:in{i}", t) for i, t in enumerate(inputs)],
        "args": list(args),
        "kwargs": kwargs or {},
        "outputs": [_store(f"{cid}:out{i}", o) for i, o in enumerate(outs)],
    }
    if differs:
        entry["differs"] = differs
    if dtype_differs:
        entry["dtype_differs"] = dtype_differs
    _CASES.append(entry)


# ---------------------------------------------------------------- cases


def sum_cases() -> None:
    seed = _tensor((), "int64", values=[[1, 2], [3, 4]])
    case("sum/seed/all", "sum", "torch.sum(x)", torch.sum, [seed])
    case("sum/seed/dim0", "sum", "torch.sum(x, dim=0)", lambda x: torch.sum(x, dim=0), [seed],
         kwargs={"dim": 0})
    case("sum/seed/dim1", "sum", "torch.sum(x, dim=1)", lambda x: torch.sum(x, dim=1), [seed],
         kwargs={"dim": 1})
    # Seed 000: an image batch's per-channel, per-image and overall sums.
    batch = _tensor((6, 3, 5, 4), "float32")
    case("sum/batch/per-channel", "sum", "batch.sum(dim=[0, 2, 3])",
         lambda x: x.sum(dim=[0, 2, 3]), [batch], kwargs={"dim": [0, 2, 3]})
    case("sum/batch/per-image", "sum", "batch.sum(dim=[1, 2, 3])",
         lambda x: x.sum(dim=[1, 2, 3]), [batch], kwargs={"dim": [1, 2, 3]})
    case("sum/batch/total", "sum", "batch.sum()", lambda x: x.sum(), [batch])
    case("sum/layer/dim1", "sum", "torch.sum(x, dim=1)  # SumLayer (8, 32, 64)",
         lambda x: torch.sum(x, dim=1), [_tensor((8, 32, 64), "float32")], kwargs={"dim": 1})
    for dtype in ("bool", "int8", "uint8", "int16", "int32", "int64", "float16", "bfloat16",
                  "float32", "float64", "complex64"):
        x = _tensor((3, 4, 5), dtype)
        for dim, keepdim in ((None, False), (1, False), (-1, True), ((0, 2), False),
                             ((0, 2), True)):
            kw, tdim = _dim_args(x, dim, keepdim)
            case(f"sum/{dtype}/dim={dim}/keepdim={keepdim}", "sum",
                 f"torch.sum(x, dim={dim}, keepdim={keepdim})",
                 lambda x, d=tdim, k=keepdim: torch.sum(x, dim=d, keepdim=k), [x], kwargs=kw,
                 dtype_differs="uint-sum-dtype" if dtype == "uint8" else None)
    # dtype= casts first, then sums (seed: torch.sum(t, dtype=torch.int32)).
    f = _tensor((), "float32", values=[[1.5, 2.5, -3.75], [100.7, 100.2, 0.5]])
    for dt in ("int32", "int8", "float16", "float32", "float64"):
        case(f"sum/cast/{dt}/all", "sum", f"torch.sum(x, dtype=torch.{dt})",
             lambda x, dt=dt: torch.sum(x, dtype=getattr(torch, dt)), [f], kwargs={"dtype": dt})
        case(f"sum/cast/{dt}/dim1", "sum", f"torch.sum(x, 1, dtype=torch.{dt})",
             lambda x, dt=dt: torch.sum(x, 1, dtype=getattr(torch, dt)), [f],
             args=(1,), kwargs={"dtype": dt})
    case("sum/cast/int8-wraps", "sum", "torch.sum(x, dtype=torch.int8)",
         lambda x: torch.sum(x, dtype=torch.int8), [_tensor((), "float32", values=[100.7, 100.2])],
         kwargs={"dtype": "int8"})
    # Input dtype x dtype= grid (what torch users mix): cast first, then sum.
    for dtype in ("bool", "int8", "uint8", "int32", "float16", "bfloat16", "float32"):
        x = _tensor((2, 3, 4), dtype)
        for i, cast in enumerate((None, "int32", "float32", "float16")):
            dim, keepdim = (1, -1, 0, 2)[i], bool(i % 2)
            kw = {"dim": dim, "keepdim": keepdim, **({"dtype": cast} if cast else {})}
            case(f"sum/grid/{dtype}->{cast}", "sum",
                 f"torch.sum(x, dim={dim}, keepdim={keepdim}, dtype={cast})",
                 lambda x, d=dim, k=keepdim, c=cast: torch.sum(
                     x, dim=d, keepdim=k, dtype=None if c is None else getattr(torch, c)),
                 [x], kwargs=kw,
                 dtype_differs="uint-sum-dtype" if dtype == "uint8" and cast is None else None)
    for shape, dim, keepdim, cast in (((3, 4, 5), (0, 2), True, None),
                                      ((3, 4, 5), 1, False, "int32"),
                                      ((6,), 0, True, "float16"), ((2, 3), -1, False, "float32")):
        x = torch.from_numpy((_RNG.random(shape) * 10).astype(np.float32))
        kw = {"dim": list(dim) if isinstance(dim, tuple) else dim, "keepdim": keepdim,
              **({"dtype": cast} if cast else {})}
        case(f"sum/scaled/{shape}/dim={dim}/keepdim={keepdim}/dtype={cast}", "sum",
             f"torch.sum(x, dim={dim}, keepdim={keepdim}, dtype={cast})",
             lambda x, d=dim, k=keepdim, c=cast: torch.sum(
                 x, dim=d, keepdim=k, dtype=None if c is None else getattr(torch, c)),
             [x], kwargs=kw)
    # Positional orders: torch's (x, dim, keepdim) and NumPy's (x, axis, dtype).
    x = _tensor((3, 4), "float32")
    case("sum/positional/dim-keepdim", "sum", "torch.sum(x, 1, True)",
         lambda x: torch.sum(x, 1, True), [x], args=(1, True))
    case("sum/positional/axis-dtype", "sum", "torch.sum(x, 1, dtype=torch.float16)",
         lambda x: torch.sum(x, 1, dtype=torch.float16), [x], args=(1, "float16"))
    # Empty and size-1 axes.
    case("sum/empty/dim0", "sum", "torch.sum(x, dim=0)", lambda x: torch.sum(x, dim=0),
         [torch.zeros(0, 3)], kwargs={"dim": 0})
    case("sum/empty/all", "sum", "torch.sum(x)", torch.sum, [torch.zeros(2, 0, dtype=torch.int32)])
    case("sum/size1/dim0", "sum", "torch.sum(x, dim=0)", lambda x: torch.sum(x, dim=0),
         [_tensor((1, 3), "int32")], kwargs={"dim": 0})
    case("sum/size1/keepdim", "sum", "torch.sum(x, dim=1, keepdim=True)",
         lambda x: torch.sum(x, dim=1, keepdim=True), [_tensor((4, 1), "float32")],
         kwargs={"dim": 1, "keepdim": True})
    case("sum/0d", "sum", "torch.sum(x)", torch.sum, [torch.tensor(2.5)])
    # Documented differences (docs/coming_from.md).
    case("sum/dim=()", "sum", "torch.sum(x, dim=())", lambda x: torch.sum(x, dim=()),
         [_tensor((2, 3), "float32")], kwargs={"dim": []}, differs="dim-empty")
    case("sum/0d/dim0", "sum", "torch.sum(x, dim=0)", lambda x: torch.sum(x, dim=0),
         [torch.tensor(3.0)], kwargs={"dim": 0}, differs="0d-dim")
    case("sum/int32-overflow", "sum", "torch.sum(x)", torch.sum,
         [torch.tensor([2**30, 2**30], dtype=torch.int32)], differs="int-sum-dtype")
    case("sum/uint8-dtype", "sum", "torch.sum(x)", torch.sum,
         [_tensor((), "uint8", values=[200, 250, 255])], dtype_differs="uint-sum-dtype")


def moment_cases() -> None:
    x = _tensor((5, 6), "float32")
    case("mean/dim01", "mean", "torch.mean(x, dim=(0, 1))", lambda x: torch.mean(x, dim=(0, 1)),
         [x], kwargs={"dim": [0, 1]})
    for dtype in ("float16", "bfloat16", "float32", "float64", "complex64"):
        x = _tensor((4, 3, 5), dtype)
        for dim, keepdim in ((None, False), (0, True), ((0, 2), False), (-1, False)):
            kw, tdim = _dim_args(x, dim, keepdim)
            case(f"mean/{dtype}/dim={dim}/keepdim={keepdim}", "mean",
                 f"torch.mean(x, dim={dim}, keepdim={keepdim})",
                 lambda x, d=tdim, k=keepdim: torch.mean(x, dim=d, keepdim=k), [x], kwargs=kw)
            for op in ("var", "std"):
                for corr in (0, 1):
                    kc = {**kw, "correction": corr}
                    case(f"{op}/{dtype}/dim={dim}/keepdim={keepdim}/correction={corr}", op,
                         f"torch.{op}(x, dim={dim}, keepdim={keepdim}, correction={corr})",
                         lambda x, d=tdim, k=keepdim, c=corr, op=op:
                         getattr(torch, op)(x, dim=d, keepdim=k, correction=c), [x], kwargs=kc)
    x = _tensor((5, 6), "float32")
    case("var/dim1/correction=1", "var", "torch.var(x, dim=1, correction=1)",
         lambda x: torch.var(x, dim=1, correction=1), [x], kwargs={"dim": 1, "correction": 1})
    case("std/dim0/keepdim/correction=0", "std", "torch.std(x, dim=0, keepdim=True, correction=0)",
         lambda x: torch.std(x, dim=0, keepdim=True, correction=0), [x],
         kwargs={"dim": 0, "keepdim": True, "correction": 0})
    x = _tensor((4, 7), "float32")
    for op in ("var", "std"):
        for unbiased in (True, False):
            case(f"{op}/unbiased={unbiased}", op, f"torch.{op}(x, dim=1, unbiased={unbiased})",
                 lambda x, u=unbiased, op=op: getattr(torch, op)(x, dim=1, unbiased=u), [x],
                 kwargs={"dim": 1, "unbiased": unbiased})
        case(f"{op}/unbiased-keepdim", op, f"torch.{op}(x, 0, unbiased=True, keepdim=True)",
             lambda x, op=op: getattr(torch, op)(x, 0, unbiased=True, keepdim=True), [x],
             args=(0,), kwargs={"unbiased": True, "keepdim": True})
        case(f"{op}/correction=2.5", op, f"torch.{op}(x, dim=0, correction=2.5)",
             lambda x, op=op: getattr(torch, op)(x, dim=0, correction=2.5), [x],
             kwargs={"dim": 0, "correction": 2.5})
        case(f"{op}/size1/correction=1", op, f"torch.{op}(x, dim=0)  # one row: 0/0",
             lambda x, op=op: getattr(torch, op)(x, dim=0), [_tensor((1, 3), "float32")],
             kwargs={"dim": 0, "correction": 1})
        case(f"{op}/empty", op, f"torch.{op}(x, dim=0, correction=0)",
             lambda x, op=op: getattr(torch, op)(x, dim=0, correction=0), [torch.zeros(0, 3)],
             kwargs={"dim": 0, "correction": 0})
        # Documented differences.
        case(f"{op}/default-divisor", op, f"torch.{op}(x)", getattr(torch, op), [x],
             differs="var-default")
        case(f"{op}/correction>=n", op, f"torch.{op}(x, dim=0, correction=5)",
             lambda x, op=op: getattr(torch, op)(x, dim=0, correction=5), [x],
             kwargs={"dim": 0, "correction": 5}, differs="var-correction-ge-n")
    case("mean/int-with-dtype", "mean", "torch.mean(x, dtype=torch.float32)",
         lambda x: torch.mean(x, dtype=torch.float32), [_tensor((3, 4), "int32")],
         kwargs={"dtype": "float32"})
    case("mean/positional/axis-dtype", "mean", "torch.mean(x, 0, dtype=torch.float32)",
         lambda x: torch.mean(x, 0, dtype=torch.float32), [_tensor((3, 4), "int64")],
         args=(0, "float32"))
    case("mean/positional/dim-keepdim", "mean", "torch.mean(x, 1, True)",
         lambda x: torch.mean(x, 1, True), [_tensor((3, 4), "float32")], args=(1, True))
    case("mean/empty", "mean", "torch.mean(x, dim=0)", lambda x: torch.mean(x, dim=0),
         [torch.zeros(0, 2)], kwargs={"dim": 0})
    case("mean/dim=()", "mean", "torch.mean(x, dim=())", lambda x: torch.mean(x, dim=()),
         [_tensor((2, 3), "float32")], kwargs={"dim": []}, differs="dim-empty")
    # batch_stats: the per-channel sum, mean and variance of an image batch.
    batch = _tensor((6, 3, 5, 4), "float32")
    for corr in (0, 1):
        case(f"batch_stats/per-channel/correction={corr}", "batch_stats",
             f"(x.sum(dim=(0, 2, 3)), x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), correction={corr}))",
             lambda x, c=corr: (x.sum(dim=(0, 2, 3)), x.mean(dim=(0, 2, 3)),
                                x.var(dim=(0, 2, 3), correction=c)),
             [batch], kwargs={"dim": [0, 2, 3], "correction": corr})


def cumsum_cases() -> None:
    case("cumsum/seed/1d", "cumsum", "torch.cumsum(x, dim=0)", lambda x: torch.cumsum(x, dim=0),
         [_tensor((), "int64", values=[1, 2, 3, 4])], kwargs={"dim": 0})
    seed2 = _tensor((), "int64", values=[[5, 6, 7], [1, 2, 3]])
    for dim in (0, 1, -1):
        case(f"cumsum/seed/2d/dim={dim}", "cumsum", f"torch.cumsum(x, dim={dim})",
             lambda x, d=dim: torch.cumsum(x, dim=d), [seed2], kwargs={"dim": dim})
    case("cumsum/seed/cast-int32", "cumsum", "torch.cumsum(x, dim=0, dtype=torch.int32)",
         lambda x: torch.cumsum(x, dim=0, dtype=torch.int32),
         [_tensor((), "float32", values=[1.5, 2.5, 3.5])], kwargs={"dim": 0, "dtype": "int32"})
    case("cumsum/positional/dim", "cumsum", "torch.cumsum(x, 1)", lambda x: torch.cumsum(x, 1),
         [seed2], args=(1,))
    f = _tensor((), "float32", values=[[1.5, -2.5, 3.75, 0.0], [7.25, 0.5, -1.5, 2.0]])
    for dt in ("int32", "int8", "int16", "int64", "float16", "bfloat16", "float32", "float64"):
        case(f"cumsum/cast/{dt}", "cumsum", f"torch.cumsum(x, dim=1, dtype=torch.{dt})",
             lambda x, dt=dt: torch.cumsum(x, dim=1, dtype=getattr(torch, dt)), [f],
             kwargs={"dim": 1, "dtype": dt})
    case("cumsum/cast/uint8", "cumsum", "torch.cumsum(x.abs(), dim=1, dtype=torch.uint8)",
         lambda x: torch.cumsum(x, dim=1, dtype=torch.uint8), [f.abs()],
         kwargs={"dim": 1, "dtype": "uint8"})
    # torch has no dtype=torch.bool cumsum kernel: cast by hand, then the scan.
    case("cumsum/bool-input", "cumsum", "torch.cumsum(x.to(torch.bool), dim=1)",
         lambda x: torch.cumsum(x, dim=1), [f.to(torch.bool)], kwargs={"dim": 1})
    case("cumsum/cast/int8-wraps", "cumsum", "torch.cumsum(x, dim=0, dtype=torch.int8)",
         lambda x: torch.cumsum(x, dim=0, dtype=torch.int8),
         [_tensor((), "int32", values=[100, 100, 100])], kwargs={"dim": 0, "dtype": "int8"})
    for dtype in ("bool", "uint8", "int16", "int32", "int64", "float16", "bfloat16",
                  "float32", "float64", "complex64"):
        x = _tensor((3, 70), dtype)
        for dim in (0, 1):
            narrow = "cumsum-narrow-int" if dtype in ("uint8", "int16") else None
            case(f"cumsum/{dtype}/dim={dim}", "cumsum", f"torch.cumsum(x, dim={dim})",
                 lambda x, d=dim: torch.cumsum(x, dim=d), [x], kwargs={"dim": dim},
                 dtype_differs=narrow)
    # Lengths past one block row (the blocked triangular einsum's carries).
    case("cumsum/long/float32", "cumsum", "torch.cumsum(x, dim=0)",
         lambda x: torch.cumsum(x, dim=0), [_tensor((5000,), "float32")], kwargs={"dim": 0})
    case("cumsum/long/int32", "cumsum", "torch.cumsum(x, dim=1)",
         lambda x: torch.cumsum(x, dim=1), [_tensor((2, 4500), "int32", low=-1000, high=1000)],
         kwargs={"dim": 1})
    case("cumsum/empty/dim0", "cumsum", "torch.cumsum(x, dim=0)",
         lambda x: torch.cumsum(x, dim=0), [torch.zeros(0)], kwargs={"dim": 0})
    case("cumsum/empty/dim1", "cumsum", "torch.cumsum(x, dim=1)",
         lambda x: torch.cumsum(x, dim=1), [torch.zeros(2, 0, dtype=torch.int32)],
         kwargs={"dim": 1})
    case("cumsum/size1", "cumsum", "torch.cumsum(x, dim=0)", lambda x: torch.cumsum(x, dim=0),
         [_tensor((1, 3), "float32")], kwargs={"dim": 0})
    case("cumsum/0d", "cumsum", "torch.cumsum(x, dim=0)", lambda x: torch.cumsum(x, dim=0),
         [torch.tensor(5.0)], kwargs={"dim": 0}, differs="cumsum-0d")
    # torch requires dim; contract (NumPy, jnp) scans the flattened array.
    case("cumsum/no-dim", "cumsum", "torch.cumsum(x.flatten(), dim=0)",
         lambda x: torch.cumsum(x.flatten(), dim=0), [_tensor((3, 4), "int32")],
         differs="cumsum-no-axis")


def pool_cases() -> None:
    """Sum pooling is ``avg_pool`` with ``divisor_override=1`` (the window sum)."""
    def pool2d(k: Any, s: Any, p: Any, ceil: bool) -> Callable[..., Any]:
        return lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, divisor_override=1)

    shapes = [((2, 3, 12, 9), 3, 1, 1, False), ((1, 2, 10, 10), 2, None, 0, False),
              ((3, 4, 7, 13), (3, 5), (2, 3), (1, 2), False),
              ((1, 1, 5, 5), 2, None, 0, True), ((2, 2, 5, 5), 3, 2, 1, True),
              ((1, 2, 6, 7), (2, 3), (2, 2), (1, 1), True), ((1, 1, 7, 7), 3, 3, 0, True),
              # ceil_mode windows that would start in the right padding are dropped:
              ((1, 1, 4, 7), 2, 3, 1, True), ((2, 3, 10, 10), 3, 4, 1, True),
              ((1, 1, 4, 4), 1, None, 0, False), ((1, 1, 1, 1), 1, None, 0, False),
              ((0, 2, 4, 4), 2, None, 0, False)]
    for shape, k, s, p, ceil in shapes:
        kw: dict[str, Any] = {"kernel_size": list(k) if isinstance(k, tuple) else k,
                              "padding": list(p) if isinstance(p, tuple) else p}
        if s is not None:
            kw["stride"] = list(s) if isinstance(s, tuple) else s
        if ceil:
            kw["ceil_mode"] = True
        case(f"sum_pool/2d/{shape}/k={k}/s={s}/p={p}/ceil={ceil}", "sum_pool",
             f"F.avg_pool2d(x, {k}, {s}, {p}, ceil_mode={ceil}, divisor_override=1)",
             pool2d(k, s, p, ceil), [_tensor(shape, "float32")], kwargs=kw)
    # Seed 000: conv (stride 2) then a 2x2 sum pool.
    case("sum_pool/seed/kernel_size=2", "sum_pool",
         "F.avg_pool2d(x, kernel_size=2, divisor_override=1)  # 'F.sum_pool2d(x, kernel_size=2)'",
         lambda x: F.avg_pool2d(x, kernel_size=2, divisor_override=1),
         [_tensor((2, 16, 30, 30), "float32")], kwargs={"kernel_size": 2})
    case("sum_pool/positional", "sum_pool", "F.avg_pool2d(x, 3, 2, 1, divisor_override=1)",
         pool2d(3, 2, 1, False), [_tensor((1, 2, 8, 8), "float32")], args=(3, 2, 1))
    for dtype in ("float16", "bfloat16", "float64", "int64"):
        case(f"sum_pool/{dtype}", "sum_pool",
             "F.avg_pool2d(x, 3, 2, 1, divisor_override=1)", pool2d(3, 2, 1, False),
             [_tensor((2, 3, 9, 9), dtype)], kwargs={"kernel_size": 3, "stride": 2, "padding": 1})
    # 1-D: avg_pool1d has no divisor_override, so the 2-D op on an (N, C, 1, L) view.
    for L, k, s, p, ceil in ((11, 3, 2, 1, False), (11, 3, 2, 1, True), (9, 4, None, 0, True)):
        def one_d(x: torch.Tensor, k: int = k, s: Any = s, p: int = p, ceil: bool = ceil) -> Any:
            return F.avg_pool2d(x[:, :, None], (1, k), None if s is None else (1, s), (0, p),
                                ceil_mode=ceil, divisor_override=1)[:, :, 0]
        kw = {"kernel_size": [k], "padding": [p], "ceil_mode": ceil}
        if s is not None:
            kw["stride"] = [s]
        case(f"sum_pool/1d/L={L}/k={k}/s={s}/p={p}/ceil={ceil}", "sum_pool",
             f"F.avg_pool2d(x[:, :, None], (1, {k}), (1, {s}), (0, {p}), ceil_mode={ceil}, "
             "divisor_override=1)[:, :, 0]", one_d, [_tensor((2, 3, L), "float32")], kwargs=kw)
    for shape, k, s, p, ceil in (((1, 2, 5, 6, 7), 2, None, 0, False),
                                 ((1, 1, 5, 6, 7), (3, 2, 3), (2, 2, 2), (1, 0, 1), True)):
        kw = {"kernel_size": list(k) if isinstance(k, tuple) else [k] * 3,
              "padding": list(p) if isinstance(p, tuple) else [p] * 3, "ceil_mode": ceil}
        if s is not None:
            kw["stride"] = list(s)
        case(f"sum_pool/3d/{shape}/k={k}/s={s}/p={p}/ceil={ceil}", "sum_pool",
             f"F.avg_pool3d(x, {k}, {s}, {p}, ceil_mode={ceil}, divisor_override=1)",
             lambda x, k=k, s=s, p=p, c=ceil: F.avg_pool3d(x, k, s, p, ceil_mode=c,
                                                           divisor_override=1),
             [_tensor(shape, "float32")], kwargs=kw)


def conv_cases() -> None:
    for shape, wshape, stride, pad in [((2, 3, 12, 9), (4, 3, 3, 3), 1, 1),
                                       ((1, 2, 10, 10), (3, 2, 2, 2), 2, 0),
                                       ((3, 4, 7, 13), (2, 4, 3, 5), (2, 3), (1, 2)),
                                       ((2, 2, 9, 9), (3, 2, 2, 3), (3, 4), (1, 0)),
                                       ((1, 3, 5, 5), (2, 3, 1, 1), 1, 0),
                                       ((1, 2, 1, 1), (3, 2, 3, 3), 1, 1),
                                       ((0, 2, 4, 4), (3, 2, 2, 2), 1, 0)]:
        kw = {"stride": list(stride) if isinstance(stride, tuple) else stride,
              "padding": list(pad) if isinstance(pad, tuple) else pad}
        case(f"conv/{shape}x{wshape}/s={stride}/p={pad}", "conv",
             f"F.conv2d(x, w, stride={stride}, padding={pad})",
             lambda x, w, s=stride, p=pad: F.conv2d(x, w, stride=s, padding=p),
             [_tensor(shape, "float32"), _tensor(wshape, "float32")], kwargs=kw)
    # Seed 000: 16 filters of 3x2x2, stride 2, over RGB images (smaller batch).
    case("conv/seed/stride2", "conv", "F.conv2d(images, filters, stride=2)",
         lambda x, w: F.conv2d(x, w, stride=2),
         [_tensor((2, 3, 60, 60), "float32"), _tensor((16, 3, 2, 2), "float32")],
         kwargs={"stride": 2})
    for dtype in ("float16", "bfloat16", "float64"):
        case(f"conv/{dtype}", "conv", "F.conv2d(x, w, stride=1, padding=1)",
             lambda x, w: F.conv2d(x, w, stride=1, padding=1),
             [_tensor((2, 8, 6, 6), dtype), _tensor((4, 8, 3, 3), dtype)],
             kwargs={"stride": 1, "padding": 1})


def product_cases() -> None:
    """Seed 002: multiply two tensors and sum along the first dimension."""
    for dtype in ("float32", "float64", "int64", "float16", "bfloat16"):
        a, b = _tensor((3, 4), dtype), _tensor((3, 4), dtype)
        case(f"mul_sum/{dtype}/naive", "mul_sum", "torch.sum(a * b, dim=0)",
             lambda a, b: torch.sum(a * b, dim=0), [a, b], kwargs={"dim": 0})
        case(f"mul_sum/{dtype}/einsum", "einsum", "torch.einsum('ik,ik->k', a, b)",
             lambda a, b: torch.einsum("ik,ik->k", a, b), [a, b], args=("ik,ik->k",))
        case(f"mul_sum/{dtype}/jit", "jit_mul_sum", "(a * b).sum(0)  # under contract.jit",
             lambda a, b: (a * b).sum(0), [a, b])
    a, b = _tensor((64, 256), "float32"), _tensor((64, 256), "float32")
    case("mul_sum/vecdot", "vecdot", "torch.linalg.vecdot(a, b, dim=0)",
         lambda a, b: torch.linalg.vecdot(a, b, dim=0), [a, b], kwargs={"dim": 0})
    for spec, shapes in (("bij,bjk->bik", ((2, 3, 4), (2, 4, 5))), ("ii->i", ((4, 4),)),
                         ("ij,jk,kl->il", ((3, 4), (4, 5), (5, 2))), ("i,j->ij", ((3,), (4,)))):
        ops = [_tensor(s, "float32") for s in shapes]
        case(f"einsum/{spec}", "einsum", f"torch.einsum({spec!r}, ...)",
             lambda *xs, spec=spec: torch.einsum(spec, *xs), ops, args=(spec,))
    for sa, sb in [((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
                   ((4,), (4,))]:
        case(f"matmul/{sa}@{sb}", "matmul", "torch.matmul(a, b)", torch.matmul,
             [_tensor(sa, "float32"), _tensor(sb, "float32")])


def main() -> None:
    assert torch.__version__.startswith(TORCH_VERSION), (
        f"goldens are recorded with torch {TORCH_VERSION}, found {torch.__version__}")
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic float summation order
    # Recorded on purpose: the variance of too few elements (NaN or inf).
    warnings.filterwarnings("ignore", message=".*degrees of freedom is <= 0")
    for make in (sum_cases, moment_cases, cumsum_cases, pool_cases, conv_cases, product_cases):
        make()
    OUT.mkdir(parents=True, exist_ok=True)
    index = {
        "torch": torch.__version__,
        "made_by": "python tools/make_torch_goldens.py",
        "arrays": "torch_goldens.npz",
        "dtypes": _DTYPES,
        "cases": _CASES,
    }
    (OUT / "torch_goldens.json").write_text(json.dumps(index, indent=1) + "\n")
    np.savez_compressed(OUT / "torch_goldens.npz", **_ARRAYS)
    size = sum((OUT / n).stat().st_size for n in ("torch_goldens.json", "torch_goldens.npz"))
    print(f"{len(_CASES)} cases, {len(_ARRAYS)} arrays, {size / 1e6:.2f} MB in {OUT}/")


if __name__ == "__main__":
    main()
