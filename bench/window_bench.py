"""Window benchmark: contract.conv and contract.sum_pool against their peers.

Rows: a conv + sum pool of (32, 3, 60, 60) images with 16 2x2 filters,
stride 2, then a 2x2 sum pool (the issue's row), each op alone, a stride-1
3x3 conv (padding 1) of (32, 16, 32, 32) with 32 filters, and a 3x3 stride-1
sum pool of that input. Peers: ``jax.jit`` of ``lax.conv_general_dilated`` /
``lax.reduce_window``, torch CPU (``conv2d``, ``avg_pool2d`` with
``divisor_override=1``) and numpy (``as_strided`` windows + ``einsum``).
Single ops are timed as eager calls (each runs one cached compiled program);
the composed row wraps both ops in ``jax.jit`` as the lax peer does.

    python -m bench.window_bench [--quick] [--repeat N]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.lib.stride_tricks import as_strided

import contract

from .common import Row, machine, parser, race, table, torch_or_none


@dataclass(frozen=True)
class Case:
    """One workload: what runs (conv, pool or both) on which shapes."""

    name: str
    x: tuple[int, ...]
    w: tuple[int, ...] | None  # None: a pool alone
    stride: int
    padding: int
    pool: int | None = None  # pool kernel (= stride): alone or after the conv
    pool_stride: int | None = None
    pool_padding: int = 0


def cases(quick: bool) -> list[Case]:
    n = 8 if quick else 32
    return [
        Case("conv + sum pool", (n, 3, 60, 60), (16, 3, 2, 2), 2, 0, pool=2),
        Case("conv 2x2 stride 2", (n, 3, 60, 60), (16, 3, 2, 2), 2, 0),
        Case("sum pool 2x2", (n, 16, 30, 30), None, 0, 0, pool=2),
        Case("conv 3x3 stride 1 pad 1", (n, 16, 32, 32), (32, 16, 3, 3), 1, 1),
        Case("sum pool 3x3 stride 1 pad 1", (n, 16, 32, 32), None, 0, 0, pool=3,
             pool_stride=1, pool_padding=1),
    ]


def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """(N, C, H', W', k, k) strided windows of an NCHW array, no copy."""
    n, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    sn, sc, sh, sw = x.strides
    return as_strided(x, (n, c, ho, wo, k, k), (sn, sc, sh * s, sw * s, sh, sw), writeable=False)


def _numpy(case: Case) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    def run(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        if w is not None:
            p = case.padding
            xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)]) if p else x
            x = np.einsum("nchwpq,ocpq->nohw", _windows(xp, w.shape[2], case.stride), w,
                          optimize=True)
        if case.pool:
            p = case.pool_padding
            xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)]) if p else x
            x = _windows(xp, case.pool, case.pool_stride or case.pool).sum(axis=(4, 5))
        return x

    return run


def _lax(case: Case) -> Callable[..., jax.Array]:
    def run(x: jax.Array, w: jax.Array | None) -> jax.Array:
        if w is not None:
            p = case.padding
            x = lax.conv_general_dilated(x, w, (case.stride,) * 2, [(p, p)] * 2)
        if case.pool:
            k, s, p = case.pool, case.pool_stride or case.pool, case.pool_padding
            x = lax.reduce_window(x, 0.0, lax.add, (1, 1, k, k), (1, 1, s, s),
                                  [(0, 0), (0, 0), (p, p), (p, p)])
        return x

    return jax.jit(run)


def _contract(case: Case, composed: bool) -> Callable[..., jax.Array]:
    def run(x: jax.Array, w: jax.Array | None) -> jax.Array:
        if w is not None:
            x = contract.conv(x, w, case.stride, case.padding)
        if case.pool:
            x = contract.sum_pool(x, case.pool, case.pool_stride, case.pool_padding)
        return x

    return jax.jit(run) if composed else run


def _torch(case: Case, torch: Any) -> Callable[..., Any]:
    F = torch.nn.functional

    def run(x: Any, w: Any) -> Any:
        with torch.no_grad():
            if w is not None:
                x = F.conv2d(x, w, stride=case.stride, padding=case.padding)
            if case.pool:
                x = F.avg_pool2d(x, case.pool, case.pool_stride or case.pool, case.pool_padding,
                                 divisor_override=1)
        return x

    return run


def _check(got: Any, want: np.ndarray, what: str) -> None:
    if not np.allclose(np.asarray(got), want, rtol=1e-3, atol=1e-3):
        raise SystemExit(f"window_bench: {what} disagrees with numpy")


def rows(quick: bool, repeat: int) -> list[Row]:
    """One row per case; every implementation is checked against numpy first."""
    torch = torch_or_none()
    rng = np.random.default_rng(0)
    out = []
    for case in cases(quick):
        x = rng.standard_normal(case.x, dtype=np.float32)
        w = None if case.w is None else rng.standard_normal(case.w, dtype=np.float32)
        xj, wj = jnp.asarray(x), None if w is None else jnp.asarray(w)
        want = _numpy(case)(x, w)
        composed = w is not None and case.pool is not None
        ours, peer_lax = _contract(case, composed), _lax(case)
        _check(ours(xj, wj), want, f"contract on {case.name}")
        _check(peer_lax(xj, wj), want, f"lax on {case.name}")
        fns: dict[str, Callable[[], Any]] = {
            "contract": lambda: ours(xj, wj),
            "jax.jit(lax)": lambda: peer_lax(xj, wj),
            "numpy": lambda: _numpy(case)(x, w),
        }
        if torch is not None:
            tx, tw = torch.from_numpy(x), None if w is None else torch.from_numpy(w)
            fn = _torch(case, torch)
            _check(fn(tx, tw).numpy(), want, f"torch on {case.name}")
            fns["torch"] = lambda: fn(tx, tw)
        times: dict[str, float | None] = dict(race(fns, repeat))
        t = times.pop("contract")
        peers = {k: times.get(k) for k in ("jax.jit(lax)", "torch", "numpy")}
        shape = f"{case.x}" + (f" * {case.w}" if case.w else "")
        note = shape + (", jax.jit of both ops" if composed else "")
        out.append(Row(case.name, t, peers, note=note))
    return out


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    repeat = 3 if args.quick else args.repeat
    print(f"machine: {machine()}\n")
    print(table(rows(args.quick, repeat), "conv and sum_pool (float32)"))


if __name__ == "__main__":
    main()
