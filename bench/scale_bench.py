"""Slicing under memory budgets, and sharded arrays and meshes on 4 forced host devices.

Run: ``python -m bench.scale_bench [--quick]``.

Budget rows run each workload unsliced and with a ``memory_limit`` that keeps
the output and 1/8 or 1/64 of the rest of its unsliced peak (the peak counts
what the plan holds beyond its inputs, and every slicing holds the whole
output); the ratio is sliced time / unsliced time (the price of fitting the
budget). ``temp`` is XLA's own count of scratch memory for the
compiled program (``compiled.memory_analysis().temp_size_in_bytes``).

Sharded rows run in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (XLA fixes the number
of host devices at start-up): bytes each device holds (XLA's per-device
memory analysis) and time against ``jax.jit`` of the ``jnp`` code on the same
sharded inputs, whose values and output sharding are checked equal first.
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
from contract.backend.program import program
from contract.planner import itemsize
from contract.planner.report import human

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


def _budget(plan: Any, frac: int) -> int:
    """The output (one device's block of it, for a sharded plan) plus 1/frac of the
    rest of the peak."""
    one = getattr(plan, "slice", plan)  # a sharded plan's slice: what one device runs
    sizes = dict(one.sizes)
    out = int(np.prod([sizes[l] for l in one.output])) * itemsize(one.compute_dtype)
    return out + (plan.peak_bytes - out) // frac


def budget_table(quick: bool, repeat: int) -> str:
    """Markdown rows: unsliced, then the output plus 1/8 and 1/64 of the rest of the peak."""
    lines = ["### memory budgets (slicing)", "",
             "| workload | budget | slices | FLOP overhead | peak | XLA temp | time "
             "| ratio (sliced / unsliced) |", "|---|---|---|---|---|---|---|---|"]
    for name, spec, shapes in workloads(quick):
        ops = _operands(shapes)
        base = contract.plan(spec, *shapes)
        t0 = best_time(lambda: contract.einsum(spec, *ops), repeat)
        lines.append(f"| {name} | none ({human(base.peak_bytes, 'B')} peak) | 1 | 1.00x "
                     f"| {human(base.peak_bytes, 'B')} | {human(_temp(base, ops), 'B')} "
                     f"| {t0 * 1e3:.2f} ms | 1.00x |")
        for frac in (8, 64):
            limit = _budget(base, frac)
            sp = contract.plan(spec, *shapes, memory_limit=limit)
            t = best_time(lambda: contract.einsum(spec, *ops, memory_limit=limit), repeat)
            lines.append(
                f"| {name} | out + 1/{frac} ({human(limit, 'B')}) | {sp.n_slices} "
                f"({', '.join(f'{l}/{c}' for l, c in zip(sp.labels, sp.counts))}) "
                f"| {sp.overhead:.2f}x | {human(sp.peak_bytes, 'B')} "
                f"| {human(_temp(sp, ops), 'B')} "
                f"| {t * 1e3:.2f} ms | {t / t0:.2f}x |")
    return "\n".join(lines)


def _held(fn: Any, *args: Any) -> tuple[int, int]:
    """Bytes one device holds for a jitted call: (its inputs, its result plus scratch),
    from XLA's per-device memory analysis of the compiled SPMD program."""
    m = jax.jit(fn).lower(*args).compile().memory_analysis()
    return m.argument_size_in_bytes, m.output_size_in_bytes + m.temp_size_in_bytes


def _sharded_rows(quick: bool, repeat: int) -> list[dict[str, Any]]:
    """Inside a subprocess with 4 host devices: bytes per device and time, contract
    against ``jax.jit`` of the ``jnp`` code on the same sharded inputs."""
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P

    from .common import race

    mesh = jax.make_mesh((4,), ("x",))  # explicit axes, JAX 0.10's default
    rng = np.random.default_rng(0)
    b, n = (16, 64) if quick else (64, 128)
    img = (64, 3, 32, 32) if quick else (256, 3, 64, 64)
    rows, cols = (1024, 256) if quick else (4096, 1024)

    def put(x: np.ndarray, *spec: Any) -> jax.Array:
        return jax.device_put(x, NamedSharding(mesh, P(*spec)))

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    A, B = put(normal(b, n, n), "x"), put(normal(b, n, n), "x")
    X = put(normal(*img), "x")
    U, V = put(normal(rows, cols), "x"), put(normal(rows, cols), "x")
    whole = NamedSharding(mesh, P())
    bmm = "bij,bjk->bik"
    stats = lambda x: tuple(contract.batch_stats(x, axis=(0, 2, 3)))  # noqa: E731
    jstats = lambda x: (jnp.sum(x, (0, 2, 3)), jnp.mean(x, (0, 2, 3)), jnp.var(x, (0, 2, 3)))  # noqa: E731
    mulsum = lambda u, v: (u * v).sum(0)  # noqa: E731
    triple = "bij,bjk,bkl->bil"  # one intermediate as large as an input
    limit = _budget(contract.plan(triple, A, B, A), 8)  # per device: its output block + 1/8
    # mesh=: a batched chain times one small shared matrix; contract picks the labels.
    chain = "bij,bjk,kl->bil"
    host = [normal(b, n, n), normal(b, n, n), normal(n, n)]
    expr = contract.expression(chain, *(x.shape for x in host), mesh=mesh)
    placed = [jax.device_put(x, s) for x, s in zip(host, expr.in_shardings)]
    cases = [
        ("batch-sharded " + bmm, (A, B), lambda a, c: contract.einsum(bmm, a, c),
         lambda a, c: jnp.einsum(bmm, a, c), (A.nbytes + B.nbytes) // 4),
        ("summed sharded label bij,bjk->ik (jnp needs out_sharding=)", (A, B),
         lambda a, c: contract.einsum("bij,bjk->ik", a, c),
         lambda a, c: jnp.einsum("bij,bjk->ik", a, c, out_sharding=whole),
         (A.nbytes + B.nbytes) // 4),
        (f"batch_stats {img} axis (0,2,3), sharded on N", (X,), stats, jstats, X.nbytes // 4),
        (f"contract.jit((a*b).sum(0)) {rows}x{cols}, sharded on axis 0", (U, V),
         contract.jit(mulsum), mulsum, (U.nbytes + V.nbytes) // 4),
        (f"{triple} memory_limit={human(limit, 'B')} per device", (A, B, A),
         lambda a, c, d: contract.einsum(triple, a, c, d, memory_limit=limit),
         lambda a, c, d: jnp.einsum(triple, a, c, d), 3 * A.nbytes // 4),
        (f"mesh= {chain} (b={b}, n={n}; kl replicated)", tuple(placed), expr,
         lambda a, c, d: jnp.einsum(chain, a, c, d),
         (host[0].nbytes + host[1].nbytes) // 4 + host[2].nbytes),
    ]
    out = []
    for name, args, mine, peer, goal in cases:
        mine_jit = mine if isinstance(mine, contract.Expression) else jax.jit(mine)
        peer_jit = jax.jit(peer)
        got, want = mine_jit(*args), peer_jit(*args)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-3, atol=2e-3)
            assert g.sharding.is_equivalent_to(w.sharding, g.ndim), (name, g.sharding, w.sharding)
        inner = mine.__call__ if isinstance(mine, contract.Expression) else mine
        # One call in flight at a time: forced host devices share one thread pool, and
        # queued SPMD programs can starve a collective's rendezvous (XLA aborts).
        times = race({"contract": lambda: jax.block_until_ready(mine_jit(*args)),
                      "jnp": lambda: jax.block_until_ready(peer_jit(*args))}, rounds=repeat)
        out.append({"name": name, "held": _held(inner, *args), "peer_held": _held(peer, *args),
                    "goal": goal, "inputs": sum(x.nbytes for x in args),
                    "spec": str(jax.tree.leaves(got)[0].sharding.spec),
                    "contract": times["contract"], "jnp": times["jnp"]})
    return out


def sharded_table(quick: bool, repeat: int) -> str:
    """Markdown rows from a subprocess with 4 forced host devices."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "bench.scale_bench", "--worker", "--repeat", str(repeat)]
    proc = subprocess.run(cmd + (["--quick"] if quick else []), cwd=root, env=env,
                          capture_output=True, text=True, check=True)
    lines = ["### sharded arrays and meshes (4 forced host devices sharing 2 cores)", "",
             "Inputs sharded on an explicit 1-D mesh of 4; the peer is `jax.jit` of the "
             "`jnp` code on the same inputs (same values and output sharding, checked). "
             "Bytes per device are XLA's per-device memory analysis of the compiled program: "
             "the inputs a device holds (goal: a quarter of the inputs plus the replicated "
             "ones), and its part of the result plus scratch. "
             "The 4 devices share the machine's 2 cores, so times say what the "
             "program costs, not what 4 real devices would gain.", "",
             "| workload | result sharding | inputs per device (goal) | result + scratch "
             "per device (jnp) | contract | jax.jit(jnp) | ratio (contract / jnp) |",
             "|---|---|---|---|---|---|---|"]
    for r in json.loads(proc.stdout.strip().splitlines()[-1]):
        (inputs, rest), (_, peer_rest) = r["held"], r["peer_held"]
        lines.append(f"| {r['name']} | {r['spec']} | {human(inputs, 'B')} "
                     f"({human(r['goal'], 'B')}) | {human(rest, 'B')} ({human(peer_rest, 'B')}) "
                     f"| {r['contract'] * 1e3:.2f} ms | {r['jnp'] * 1e3:.2f} ms "
                     f"| {r['contract'] / r['jnp']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    repeat = min(args.repeat, 3) if args.quick else args.repeat
    if args.worker:
        print(json.dumps(_sharded_rows(args.quick, repeat)))
        return
    print(f"machine: {machine()}\n")
    print(budget_table(args.quick, repeat))
    print()
    print(sharded_table(args.quick, repeat))


if __name__ == "__main__":
    main()
