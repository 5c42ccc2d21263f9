"""Slicing under memory budgets, and sharding over 1, 2, 4 forced host devices.

Run: ``python -m bench.scale_bench [--quick]``.

Budget rows run each workload unsliced and with ``memory_limit`` at 1/8 and
1/64 of its unsliced peak; the ratio is sliced time / unsliced time (the price
of fitting the budget). ``temp`` is XLA's own count of scratch memory for the
compiled program (``compiled.memory_analysis().temp_size_in_bytes``).

Mesh rows need a fresh process per device count (XLA fixes the number of
host devices at start-up), so each runs in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``; the ratio is
``mesh=`` time / single-device time measured in that same process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

import jax
import numpy as np

import contract
from contract.report import human
from contract.scale import program

from .common import best_time, machine, parser


def workloads(quick: bool) -> list[tuple[str, str, list[tuple[int, ...]]]]:
    """(name, spec, shapes): a matrix chain and a 4-tensor ring."""
    n = 256 if quick else 1024
    b = 16 if quick else 32
    return [
        (f"chain ab,bc,cd->ad n={n}", "ab,bc,cd->ad", [(n, n)] * 3),
        (f"ring abc,cde,efg,gha->bdfh bond {b}", "abc,cde,efg,gha->bdfh", [(b, b, b)] * 4),
    ]


def _operands(shapes: list[tuple[int, ...]]) -> list[jax.Array]:
    rng = np.random.default_rng(0)
    return [jax.numpy.asarray(rng.standard_normal(s).astype(np.float32)) for s in shapes]


def _temp(plan: Any, ops: list[jax.Array]) -> int:
    compiled = jax.jit(program(plan)).lower(*ops).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def budget_table(quick: bool, repeat: int) -> str:
    """Markdown rows: unsliced, then 1/8 and 1/64 of the unsliced peak."""
    lines = ["### memory budgets (slicing)", "",
             "| workload | budget | slices | FLOP overhead | peak/slice | XLA temp | time "
             "| ratio (sliced / unsliced) |", "|---|---|---|---|---|---|---|---|"]
    for name, spec, shapes in workloads(quick):
        ops = _operands(shapes)
        base = contract.plan(spec, *shapes)
        t0 = best_time(lambda: contract.einsum(spec, *ops), repeat)
        lines.append(f"| {name} | none ({human(base.peak_bytes, 'B')} peak) | 1 | 1.00x "
                     f"| {human(base.peak_bytes, 'B')} | {human(_temp(base, ops), 'B')} "
                     f"| {t0 * 1e3:.2f} ms | 1.00x |")
        for frac in (8, 64):
            limit = base.peak_bytes // frac
            sp = contract.plan(spec, *shapes, memory_limit=limit)
            t = best_time(lambda: contract.einsum(spec, *ops, memory_limit=limit), repeat)
            lines.append(
                f"| {name} | 1/{frac} ({human(limit, 'B')}) | {sp.n_slices} "
                f"({', '.join(f'{l}/{c}' for l, c in zip(sp.labels, sp.counts))}) "
                f"| {sp.overhead:.2f}x | {human(sp.peak_bytes, 'B')} "
                f"| {human(_temp(sp, ops), 'B')} "
                f"| {t * 1e3:.2f} ms | {t / t0:.2f}x |")
    return "\n".join(lines)


def _worker(quick: bool, repeat: int) -> None:
    """Inside a subprocess with N host devices: mesh time and single-device time."""
    from jax.sharding import Mesh

    mesh = Mesh(np.array(jax.devices()), ("d",))
    out = []
    for name, spec, shapes in workloads(quick):
        ops = _operands(shapes)
        single = best_time(lambda: contract.einsum(spec, *ops), repeat)
        sharded = best_time(lambda: contract.einsum(spec, *ops, mesh=mesh), repeat)
        p = contract.plan(spec, *shapes, mesh=mesh)
        out.append({"name": name, "single": single, "mesh": sharded,
                    "slices": getattr(p, "n_slices", 1)})
    print(json.dumps(out))


def mesh_table(quick: bool, repeat: int) -> str:
    """Markdown rows for 1, 2 and 4 forced host devices, one subprocess each."""
    lines = ["### meshes (forced host devices, one subprocess each)", "",
             "| workload | devices | slices | single device | mesh= | ratio (mesh / single) |",
             "|---|---|---|---|---|---|"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for n in (1, 2, 4):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}",
               "JAX_PLATFORMS": "cpu"}
        cmd = [sys.executable, "-m", "bench.scale_bench", "--worker", "--repeat", str(repeat)]
        proc = subprocess.run(cmd + (["--quick"] if quick else []), cwd=root, env=env,
                              capture_output=True, text=True, check=True)
        for row in json.loads(proc.stdout.strip().splitlines()[-1]):
            lines.append(f"| {row['name']} | {n} | {row['slices']} | {row['single'] * 1e3:.2f} ms "
                         f"| {row['mesh'] * 1e3:.2f} ms | {row['mesh'] / row['single']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    repeat = min(args.repeat, 3) if args.quick else args.repeat
    if args.worker:
        _worker(args.quick, repeat)
        return
    print(f"machine: {machine()}\n")
    print(budget_table(args.quick, repeat))
    print()
    print(mesh_table(args.quick, repeat))


if __name__ == "__main__":
    main()
