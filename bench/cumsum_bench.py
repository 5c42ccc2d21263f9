"""cumsum benchmark: contract's default cumsum against its peers.

Rows: cumsum of 1e7 elements and of (1024, 4096) along axis 1 and axis 0,
float32 and int32, timed in rotated rounds (:func:`bench.common.race`); peers
``jax.jit(jnp.cumsum)``, ``numpy.cumsum`` and ``torch.cumsum`` (CPU). On CPU
contract's default is the native scan kernel (``contract/scan.cc``) where it
loads. A second table sweeps the block length L of the portable lowering
(``block=L``: the triangular einsums every platform has, and the data behind
the per-backend default in ``contract/ops/scan.py``) and a third reports
float32 accuracy against a float64 NumPy scan.

    python -m bench.cumsum_bench [--quick] [--repeat N]
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import contract
from contract.backend import scan as native_scan
from contract.ops.scan import block_length

from .common import Row, best_time, machine, parser, race, table, torch_or_none

SWEEP = (8, 16, 32, 64, 128, 256)


def _workloads(quick: bool) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, shape, axis) of every speed row."""
    if quick:
        return [("1e6", (10**6,), 0), ("(256, 4096) axis 1", (256, 4096), 1),
                ("(256, 4096) axis 0", (256, 4096), 0)]
    return [("1e7", (10**7,), 0), ("(1024, 4096) axis 1", (1024, 4096), 1),
            ("(1024, 4096) axis 0", (1024, 4096), 0)]


def _data(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "int32":
        return rng.integers(-100, 100, shape, dtype=np.int32)
    return rng.standard_normal(shape, dtype=np.float32)


def _systems(host: np.ndarray, axis: int, torch: Any) -> dict[str, Callable[[], Any]]:
    """contract's cumsum and each peer's, on the same data."""
    dev = jnp.asarray(host)
    jnp_cumsum = jax.jit(lambda v: jnp.cumsum(v, axis=axis))
    fns: dict[str, Callable[[], Any]] = {
        "contract": _ours(host, axis),
        "jax.jit(jnp.cumsum)": lambda: jnp_cumsum(dev),
        "numpy.cumsum": lambda: np.cumsum(host, axis=axis),
    }
    if torch is not None:
        t = torch.from_numpy(host.copy())
        fns["torch.cumsum"] = lambda: torch.cumsum(t, dim=axis)
    return fns


def _ours(host: np.ndarray, axis: int, block: int | None = None) -> Callable[[], Any]:
    dev = jnp.asarray(host)
    return lambda: contract.cumsum(dev, axis=axis, block=block)


def speed_rows(quick: bool, repeat: int) -> list[Row]:
    """One row per (workload, dtype): contract with the default L vs the peers."""
    torch = torch_or_none()
    rows = []
    for dtype in ("float32", "int32"):
        for name, shape, axis in _workloads(quick):
            times: dict[str, float | None] = dict(race(_systems(_data(shape, dtype), axis, torch),
                                                       repeat))
            times.setdefault("torch.cumsum", None)
            native = jax.default_backend() == "cpu" and native_scan.usable(dtype)
            rows.append(Row(f"cumsum {name} {dtype}", times.pop("contract"), times,
                            note="native kernel" if native else f"L={block_length()}"))
    return rows


def sweep_table(quick: bool, repeat: int) -> str:
    """contract's time for each block length L on every workload."""
    loads = [(f"{name} {dtype}", _data(shape, dtype), axis)
             for dtype in ("float32", "int32") for name, shape, axis in _workloads(quick)]
    head = "| L | " + " | ".join(name for name, _, _ in loads) + " |"
    lines = [f"### portable lowering (block=L): block length sweep (default L on "
             f"{jax.default_backend()}: {block_length()})", "", head, "|" + "---|" * (len(loads) + 1)]
    for block in SWEEP:
        cells = [f"{best_time(_ours(host, axis, block), repeat) * 1e3:.2f} ms"
                 for _, host, axis in loads]
        lines.append(f"| {block} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_table(quick: bool) -> str:
    """Max abs / relative error of float32 scans against a float64 NumPy scan."""
    n = 10**6 if quick else 10**7
    rng = np.random.default_rng(1)
    lines = [f"### float32 cumsum error on {n:.0e} elements (vs float64 numpy.cumsum)", "",
             "| data | method | max abs error | max rel error |", "|---|---|---|---|"]
    for label, host in (("N(0, 1)", rng.standard_normal(n, dtype=np.float32)),
                        ("U(0, 1)", rng.random(n, dtype=np.float32))):
        exact = np.cumsum(host.astype(np.float64))
        scale = np.maximum(np.abs(exact), 1.0)
        for method, fn in (("contract.cumsum", contract.cumsum),
                           ("jnp.cumsum", jax.jit(jnp.cumsum)),
                           ("numpy.cumsum (float32)", np.cumsum)):
            err = np.abs(np.asarray(fn(host), np.float64) - exact)
            lines.append(f"| {label} | {method} | {err.max():.3g} | {(err / scale).max():.3g} |")
    return "\n".join(lines)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    repeat = 3 if args.quick else args.repeat
    print(f"machine: {machine()}\n")
    print(table(speed_rows(args.quick, repeat), "cumsum"))
    print()
    print(sweep_table(args.quick, repeat))
    print()
    print(accuracy_table(args.quick))


if __name__ == "__main__":
    main()
