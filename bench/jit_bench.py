"""contract.jit(f) against jax.jit(f) (and torch eager) on the same array code.

Run: ``python -m bench.jit_bench [--quick]``. Every workload is an ordinary
function written the way people write it (matrix chains left to right,
multiply-then-sum, transfer matrices); the peers run that same code. The
second table is the first call of a fresh wrapper: trace, plan and XLA
compile for contract.jit; trace and compile for jax.jit.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import contract

from .common import Row, block, machine, parser, race, table, torch_or_none


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


def attention_step(p: dict, x: Any) -> Any:
    """A training step of flax-style multi-head attention (the einsums of
    ``nnx.MultiHeadAttention``): the loss and its gradients."""

    def loss(p: dict) -> Any:
        q, k, v = (jnp.einsum("blf,fhd->blhd", x, p[n]) for n in "qkv")
        w = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1]), axis=-1)
        o = jnp.einsum("bhqk,bkhd->bqhd", w, v)
        return jnp.mean(jnp.einsum("blhd,hdf->blf", o, p["o"]) ** 2)

    return jax.value_and_grad(loss)(p)


def mlp_forward(layers: list, x: Any, gain: Any = None) -> Any:
    """An equinox-style MLP forward: ``vmap(vmap(model))`` of Linear layers
    (``weight @ x + bias`` on one example); ``gain`` scales the last layer's
    output (LayerScale; that layer then has no bias)."""

    def one(x: Any) -> Any:
        for w, b in layers[:-1]:
            x = jax.nn.relu(w @ x + b)
        w, b = layers[-1]
        return w @ x + b if gain is None else gain * (w @ x)

    return jax.vmap(jax.vmap(one))(x)


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
    batch, length, feat, heads = 8, 128 // s, 256, 8
    attn = ({n: arr(feat, heads, feat // heads) / 16 for n in "qkv"}
            | {"o": arr(heads, feat // heads, feat) / 16}, arr(batch, length, feat))
    widths = (256, 1024 // s, 1024 // s, 256 // s)
    layers = [(arr(o, i) / math.sqrt(i), arr(o)) for i, o in zip(widths, widths[1:])]
    tokens = (16, 32) if quick else (64, 64)  # LayerScale: more tokens than hidden units
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
        (f"attention train step (value_and_grad) {batch}x{length}x{feat}, {heads} heads",
         attention_step, None, attn, False),
        (f"MLP forward vmap(vmap(Linear)) {'-'.join(map(str, widths))}, 16x32 tokens",
         mlp_forward, None, (layers, arr(16, 32, 256)), False),
        (f"MLP forward + LayerScale gain, {tokens[0]}x{tokens[1]} tokens",
         lambda layers, gain, x: mlp_forward(layers, x, gain), None,
         (layers, arr(widths[-1]), arr(*tokens, 256)), False),
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
        # The copies to the device finish before any clock starts: the first
        # system to run would otherwise wait for them (about 90 ms for the
        # two 4096^2 operands, measured, whichever system went first).
        xs = block(jax.tree.map(jnp.asarray, np_args))
        # Fresh functions, first: no trace, plan or compile cache can help
        # (once each: a second fresh wrapper would find the first's caches).
        first.append(Row(name, _first_call(lambda: contract.jit(lambda *a: f(*a)), xs),
                         {"jax.jit": _first_call(lambda: jax.jit(lambda *a: f(*a)), xs)}))
        ours, theirs = contract.jit(f), jax.jit(f)
        fns: dict[str, Callable[[], Any]] = {"contract": lambda: ours(*xs),
                                             "jax.jit": lambda: theirs(*xs)}
        if torch is not None and tf is not None:
            ts = jax.tree.map(torch.from_numpy, np_args)

            def eager(tf: Callable[..., Any] = tf, ts: Any = ts) -> Any:
                with torch.no_grad():
                    return tf(*ts)

            fns["torch"] = eager
        times: dict[str, float | None] = dict(race(fns, args.repeat))
        t = times.pop("contract")
        peers = {"jax.jit": times["jax.jit"], "torch": times.get("torch")}
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
