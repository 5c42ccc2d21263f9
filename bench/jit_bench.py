"""contract.jit(f) against jax.jit(f) (and torch eager) on the same array code.

Run: ``python -m bench.jit_bench [--quick]``. Every workload is an ordinary
function written the way people write it (matrix chains left to right,
multiply-then-sum, transfer matrices); the peers run that same code. The
second table is the first call of a fresh wrapper: trace, plan and XLA
compile for contract.jit; trace and compile for jax.jit.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import contract

from .common import Row, best_time, block, machine, parser, table, torch_or_none


def chain(*ms: Any) -> Any:
    """A matrix chain written left to right."""
    out = ms[0]
    for m in ms[1:]:
        out = out @ m
    return out


def mul_sum(a: Any, b: Any) -> Any:
    return (a * b).sum(0)


def bcast_sum(x: Any, y: Any) -> Any:
    return (x[:, :, None] * y[None]).sum(1)


def batch_stats(x: Any) -> Any:
    mean = x.mean(0)
    var = ((x - mean) ** 2).mean(0)
    return mean, var


def mps_overlap(einsum: Callable[..., Any]) -> Callable[..., Any]:
    """<a|b> of two open MPS through transfer matrices (the textbook way).

    Each site's transfer tensor (bond^4 entries) is built, then absorbed into
    the environment; the planned network never builds it (bond^3 per site).
    """

    def run(a: list, b: list) -> Any:
        env = einsum("pj,pl->jl", a[0][0], b[0][0])
        for s, t in zip(a[1:], b[1:]):
            transfer = einsum("ipj,kpl->ikjl", s, t)
            env = einsum("ik,ikjl->jl", env, transfer)
        return env[:, 0].sum()

    return run


def workloads(quick: bool) -> list[tuple[str, Callable[..., Any], Callable[..., Any] | None,
                                         tuple, bool]]:
    """(name, jax function, torch function or None, numpy args, path-sensitive)."""
    r = np.random.default_rng(0)
    s = 4 if quick else 1

    def arr(*shape: int) -> np.ndarray:
        return r.standard_normal(shape).astype(np.float32)

    dims = [2048 // s, 32, 2048 // s, 32, 2048 // s, 32, 8]
    mats = tuple(arr(dims[k], dims[k + 1]) for k in range(6))
    n, bond, phys = 20, 64 // s, 2
    sites = lambda: [arr(1 if k == 0 else bond, phys, 1 if k == n - 1 else bond)
                     for k in range(n)]
    torch = torch_or_none()
    tein = torch.einsum if torch is not None else None
    return [
        ("6-matrix chain, left to right, skewed", chain, chain, mats, True),
        (f"(a * b).sum(0) {4096 // s}^2", mul_sum, mul_sum,
         (arr(4096 // s, 4096 // s), arr(4096 // s, 4096 // s)), False),
        # Quick mode keeps 256^3 here: at 128^3 XLA's own fusion is as fast as a GEMM.
        (f"sum(x[:, :, None] * y[None], 1) {512 // min(s, 2)}^3", bcast_sum, bcast_sum,
         (arr(512 // min(s, 2), 512 // min(s, 2)), arr(512 // min(s, 2), 512 // min(s, 2))),
         True),
        (f"MPS overlap, {n} sites x2, bond {bond}", mps_overlap(jnp.einsum),
         mps_overlap(tein) if tein else None, (sites(), sites()), True),
        (f"batch stats by hand {8192 // s}x{1024 // s}", batch_stats,
         lambda x: (x.mean(0), ((x - x.mean(0)) ** 2).mean(0)), (arr(8192 // s, 1024 // s),),
         False),
    ]


def _first_call(make: Callable[[], Callable[..., Any]], args: tuple) -> float:
    fn = make()
    start = time.perf_counter()
    block(fn(*args))
    return time.perf_counter() - start


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    torch = torch_or_none()
    rows, first = [], []
    for name, f, tf, np_args, sensitive in workloads(args.quick):
        xs = jax.tree.map(jnp.asarray, np_args)
        # Fresh functions, first: no trace, plan or compile cache can help.
        first.append(Row(name, _first_call(lambda: contract.jit(lambda *a: f(*a)), xs),
                         {"jax.jit": _first_call(lambda: jax.jit(lambda *a: f(*a)), xs)}))
        ours, theirs = contract.jit(f), jax.jit(f)
        peers: dict[str, float | None] = {
            "jax.jit": best_time(lambda: theirs(*xs), repeat=args.repeat, min_seconds=0.05)}
        if torch is not None and tf is not None:
            ts = jax.tree.map(torch.from_numpy, np_args)
            with torch.no_grad():
                peers["torch"] = best_time(lambda: tf(*ts), repeat=args.repeat,
                                           min_seconds=0.05)
        else:
            peers["torch"] = None
        t = best_time(lambda: ours(*xs), repeat=args.repeat, min_seconds=0.05)
        plans = ours.explain(*xs).rewritten
        note = ("path-sensitive, " if sensitive else "") + (
            ", ".join(f"'{c.spec}'" if len(c.spec) < 24 else f"{len(c.net.factors)} operands"
                      for c in plans) or "nothing rewritten")
        rows.append(Row(name, t, peers, note))
    print(f"machine: {machine()}{'  (quick)' if args.quick else ''}\n")
    print(table(rows, "contract.jit(f) vs jax.jit(f) and torch (steady state)"))
    print()
    print(table(first, "first call: trace + plan + compile (contract.jit) vs trace + compile"))


if __name__ == "__main__":
    main()
