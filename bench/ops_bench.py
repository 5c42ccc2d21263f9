"""Array operations against their peers: ``python -m bench.ops_bench [--quick]``.

Each operation family appends its rows to :data:`ROWS` with the :func:`row`
decorator, under a section title; one table is printed per section, measured
in one run. A row function takes the :class:`Ctx` (sizes, repeats, the
machine's measured memory bandwidth) and returns a :class:`bench.common.Row`.

Peers are ``jax.jit`` of the ``jnp`` equivalent, NumPy and PyTorch (CPU).
Reduction rows also show the bandwidth contract achieves (bytes read / time)
and its share of the machine's read bandwidth, measured at the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import contract

from .common import Row, best_time, machine, parser, race, table, torch_or_none

__all__ = ["Ctx", "ROWS", "row", "main"]


@dataclass(frozen=True)
class Ctx:
    """What every row function gets."""

    quick: bool
    repeat: int
    bandwidth: float  # bytes/s the machine reads, see measure_bandwidth()
    torch: Any  # the torch module, or None

    def race(self, fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
        """Best time of each function, in rotated rounds (:func:`bench.common.race`)."""
        return race(fns, self.repeat)

    def gbs(self, nbytes: int, seconds: float) -> str:
        """'achieved GB/s, % of the machine's bandwidth' for a memory-bound row."""
        rate = nbytes / seconds
        return f"{rate / 1e9:.1f} GB/s, {100 * rate / self.bandwidth:.0f}% of bw"


# (section title, row function), in print order; other modules append here.
ROWS: list[tuple[str, Callable[[Ctx], Row]]] = []


def row(section: str) -> Callable[[Callable[[Ctx], Row]], Callable[[Ctx], Row]]:
    """Decorator: register a row function under ``section``."""

    def deco(fn: Callable[[Ctx], Row]) -> Callable[[Ctx], Row]:
        ROWS.append((section, fn))
        return fn

    return deco


def measure_bandwidth(quick: bool, torch: Any) -> float:
    """Read bandwidth in bytes/s: the best full sum of a 256 MiB float32 array
    (64 MiB with --quick) by NumPy (one thread) or torch (all cores)."""
    n = (64 if quick else 256) * 2**20 // 4
    x = np.ones(n, np.float32)
    best = best_time(lambda: x.sum(), repeat=3 if quick else 5)
    if torch is not None:
        t = torch.from_numpy(x)
        best = min(best, best_time(lambda: t.sum(), repeat=3 if quick else 5))
    return x.nbytes / best


def _data(shape: tuple[int, ...], torch: Any, seed: int = 0) -> tuple[jax.Array, np.ndarray, Any]:
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return jnp.asarray(x), x, (torch.from_numpy(x) if torch is not None else None)


def _measure(ctx: Ctx, ours: Callable[..., Any], jnp_fn: Callable[..., Any],
             np_fn: Callable[..., Any], torch_fn: Callable[..., Any] | None, jx: tuple,
             nx: tuple, tx: tuple, eager: bool = False) -> tuple[float, dict[str, float | None]]:
    """(contract's time, each peer's time) for one workload; ``eager``: the
    workload is eager code, so the jnp peer runs un-jitted too (same column)."""
    jitted = jnp_fn if eager else jax.jit(jnp_fn)
    fns = {"contract": lambda: ours(*jx), "jax.jit(jnp)": lambda: jitted(*jx),
           "numpy": lambda: np_fn(*nx)}
    if torch_fn is not None and ctx.torch is not None:
        fns["torch"] = lambda: torch_fn(*tx)
    times: dict[str, float | None] = dict(ctx.race(fns))
    times.setdefault("torch", None)
    return times.pop("contract"), times


# ---------------------------------------------------------------- reductions

REDUCTIONS = "Reductions (float32)"


def _square(ctx: Ctx) -> int:
    return 1024 if ctx.quick else 4096


def _images(ctx: Ctx) -> tuple[int, ...]:
    return (64, 3, 64, 64) if ctx.quick else (512, 3, 64, 64)


def _reduction_row(ctx: Ctx, name: str, shape: tuple[int, ...], axis: Any,
                   op: str = "sum") -> Row:
    jx, nx, tx = _data(shape, ctx.torch)
    ours = getattr(contract, op)
    jnp_op, np_op = getattr(jnp, op), getattr(np, op)
    torch_fn = None
    if ctx.torch is not None:
        dim = tuple(range(len(shape))) if axis is None else axis
        torch_fn = {"sum": lambda v: ctx.torch.sum(v, dim=dim),
                    "mean": lambda v: ctx.torch.mean(v, dim=dim),
                    "var": lambda v: ctx.torch.var(v, dim=dim, correction=0)}[op]
    t, peers = _measure(ctx, lambda v: ours(v, axis=axis), lambda v: jnp_op(v, axis=axis),
                        lambda v: np_op(v, axis=axis), torch_fn, (jx,), (nx,), (tx,))
    return Row(name, t, peers, ctx.gbs(nx.nbytes, t))


@row(REDUCTIONS)
def sum_all(ctx: Ctx) -> Row:
    n = _square(ctx)
    return _reduction_row(ctx, f"sum all {n}x{n}", (n, n), None)


@row(REDUCTIONS)
def sum_axis0(ctx: Ctx) -> Row:
    n = _square(ctx)
    return _reduction_row(ctx, f"sum axis 0 {n}x{n}", (n, n), 0)


@row(REDUCTIONS)
def sum_per_channel(ctx: Ctx) -> Row:
    s = _images(ctx)
    return _reduction_row(ctx, f"sum per channel {s} axis (0,2,3)", s, (0, 2, 3))


@row(REDUCTIONS)
def sum_per_image(ctx: Ctx) -> Row:
    s = _images(ctx)
    return _reduction_row(ctx, f"sum per image {s} axis (1,2,3)", s, (1, 2, 3))


@row(REDUCTIONS)
def mean_per_channel(ctx: Ctx) -> Row:
    s = _images(ctx)
    return _reduction_row(ctx, f"mean per channel {s}", s, (0, 2, 3), "mean")


@row(REDUCTIONS)
def var_per_channel(ctx: Ctx) -> Row:
    s = _images(ctx)
    r = _reduction_row(ctx, f"var per channel {s} (two-pass)", s, (0, 2, 3), "var")
    r.note = ctx.gbs(2 * 4 * int(np.prod(s)), r.contract) + " (2 reads)"
    return r


@row(REDUCTIONS)
def vecdot_ik(ctx: Ctx) -> Row:
    n = _square(ctx)
    (ja, na, ta), (jb, nb, tb) = _data((n, n), ctx.torch, 1), _data((n, n), ctx.torch, 2)
    torch_fn = (lambda a, b: ctx.torch.einsum("ik,ik->k", a, b)) if ctx.torch else None
    t, peers = _measure(ctx, lambda a, b: contract.einsum("ik,ik->k", a, b),
                        lambda a, b: jnp.einsum("ik,ik->k", a, b),
                        lambda a, b: np.einsum("ik,ik->k", a, b), torch_fn, (ja, jb), (na, nb),
                        (ta, tb))
    return Row(f"einsum 'ik,ik->k' {n}x{n}", t, peers, ctx.gbs(2 * na.nbytes, t))


@row(REDUCTIONS)
def tiny_sum(ctx: Ctx) -> Row:
    jx, nx, tx = _data((8, 32, 64), ctx.torch)
    torch_fn = (lambda v: ctx.torch.sum(v, dim=1)) if ctx.torch else None
    t, peers = _measure(ctx, lambda v: contract.sum(v, dim=1), lambda v: jnp.sum(v, axis=1),
                        lambda v: v.sum(1), torch_fn, (jx,), (nx,), (tx,))
    return Row("tiny sum (8,32,64) dim=1", t, peers, "per-call overhead")


# ---------------------------------------------------------------- multiply-then-sum

MULSUM = "Multiply-then-sum along axis 0: three ways to write it, in contract"


def _mulsum_row(ctx: Ctx, name: str, fn: Callable[[jax.Array, jax.Array], jax.Array],
                eager: bool = False) -> Row:
    n = _square(ctx)
    (ja, na, ta), (jb, nb, tb) = _data((n, n), ctx.torch, 1), _data((n, n), ctx.torch, 2)
    torch_fn = (lambda a, b: (a * b).sum(0)) if ctx.torch else None
    t, peers = _measure(ctx, fn, lambda a, b: jnp.sum(a * b, axis=0), lambda a, b: (a * b).sum(0),
                        torch_fn, (ja, jb), (na, nb), (ta, tb), eager)
    return Row(f"{name} {n}x{n}", t, peers, ctx.gbs(2 * na.nbytes, t))


def _naive(a: jax.Array, b: jax.Array) -> jax.Array:
    return contract.sum(a * b, axis=0)


_naive_jax_jit = jax.jit(_naive)
_naive_contract_jit = contract.jit(_naive)


@row(MULSUM)
def mulsum_naive(ctx: Ctx) -> Row:
    # Eager code against eager code: `a * b` is materialised before any
    # library sees it (in jnp, numpy and torch alike); the jitted forms of the
    # same function are the next two rows.
    return _mulsum_row(ctx, "naive contract.sum(a * b, 0), eager (jnp peer eager too)", _naive,
                       eager=True)


@row(MULSUM)
def mulsum_naive_jax_jit(ctx: Ctx) -> Row:
    return _mulsum_row(ctx, "naive under jax.jit (XLA fuses mul+reduce)", _naive_jax_jit)


@row(MULSUM)
def mulsum_naive_contract_jit(ctx: Ctx) -> Row:
    return _mulsum_row(ctx, "naive under contract.jit (rewritten to 'ab,ab->b')",
                       _naive_contract_jit)


@row(MULSUM)
def mulsum_einsum(ctx: Ctx) -> Row:
    return _mulsum_row(ctx, "contract.einsum('ik,ik->k')",
                       lambda a, b: contract.einsum("ik,ik->k", a, b))


@row(MULSUM)
def mulsum_vecdot(ctx: Ctx) -> Row:
    return _mulsum_row(ctx, "contract.vecdot(a, b, axis=0)",
                       lambda a, b: contract.vecdot(a, b, axis=0))


# Other operation families (cumsum, windows) have their own bench modules;
# rows added here go above this line, one section per family.

# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    torch = torch_or_none()
    repeat = min(args.repeat, 3) if args.quick else args.repeat
    bw = measure_bandwidth(args.quick, torch)
    ctx = Ctx(args.quick, repeat, bw, torch)
    quick = " (--quick: small arrays that fit in cache, so % of bw may pass 100)"
    print(f"machine: {machine()}; read bandwidth {bw / 1e9:.1f} GB/s"
          f"{quick if args.quick else ''}\n")
    sections: dict[str, list[Row]] = {}
    for section, fn in ROWS:
        sections.setdefault(section, []).append(fn(ctx))
    for section, rows in sections.items():
        print(table(rows, section))
        print()


if __name__ == "__main__":
    main()
