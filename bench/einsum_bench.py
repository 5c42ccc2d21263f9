"""contract.einsum against jax.jit(jnp.einsum), numpy, opt_einsum, torch and cotengra.

Run: ``python -m bench.einsum_bench [--quick]``. Each row is timed in the same
process with :func:`bench.common.race` (rotated rounds, autoranged samples,
idle thread pools between systems): contract is called eagerly (its cached
fast path, as users call it), jnp.einsum inside ``jax.jit``, numpy with a
precomputed opt_einsum path, opt_einsum's ``contract`` and cotengra's
``einsum`` on NumPy arrays, torch CPU's ``einsum``.

Three tables: float32 workloads; other dtypes (complex64, int8 with int32
accumulation, bfloat16); tiny calls, where per-call overhead is the cost and
the note gives the ratio to ``jax.jit`` (torch's eager dispatch, a few µs, is
below what any JAX call costs).
"""

from __future__ import annotations

import string
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import opt_einsum

import contract

from .common import Row, machine, parser, race, table, torch_or_none

try:
    import cotengra

    # cotengra's default ("auto") searches large networks with a process pool,
    # forking this multithreaded process; the same optimizer without the pool.
    CTG_OPTIMIZE = cotengra.AutoOptimizer(parallel=False)
except ImportError:  # an optional peer
    cotengra = None


def ring_network(n: int, chi: int, d: int) -> tuple[str, list[tuple[int, ...]]]:
    """<psi|psi> of a periodic MPS with n/2 sites: n operands in a ring-of-ladders.

    >>> ring_network(4, 8, 2)[0]
    'aeb,ced,bfa,dfc->'
    """
    sites = n // 2
    letters = iter(string.ascii_letters)
    ket = [next(letters) for _ in range(sites)]
    bra = [next(letters) for _ in range(sites)]
    phys = [next(letters) for _ in range(sites)]
    terms, shapes = [], []
    for i in range(sites):
        j = (i + 1) % sites
        terms += [ket[i] + phys[i] + ket[j], bra[i] + phys[i] + bra[j]]
        shapes += [(chi, d, chi), (chi, d, chi)]
    return ",".join(terms) + "->", shapes


Workload = tuple[str, str, list[tuple[int, ...]], str]  # name, spec, shapes, dtype


def workloads(quick: bool) -> list[Workload]:
    """(name, spec, shapes, dtype) for every float32 row."""
    s = 4 if quick else 1
    chain = [(1024 // s, 16), (16, 1024 // s), (1024 // s, 8), (8, 512 // s), (512 // s, 4)]
    rows: list[tuple[str, str, list[tuple[int, ...]]]] = [
        ("matmul 1024^3", "ij,jk->ik", [(1024 // s, 1024 // s)] * 2),
        ("batched matmul 64x128^3", "bij,bjk->bik", [(64 // s, 128, 128)] * 2),
        ("attention bhqd,bhkd->bhqk", "bhqd,bhkd->bhqk", [(8, 8 // s, 256, 64)] * 2),
        ("ik,ik->k 4096^2", "ik,ik->k", [(4096 // s, 4096 // s)] * 2),
        ("skewed 5-matrix chain", "ab,bc,cd,de,ef->af", chain),
        ("ijk,jkl,lmn->imn", "ijk,jkl,lmn->imn",
         [(64 // s, 32, 32), (32, 32, 64 // s), (64 // s, 32, 32)]),
        ("ring MPS norm, 24 operands", *ring_network(24, 32 // s, 2)),
        ("tiny 8x8 matmul (per-call overhead)", "ij,jk->ik", [(8, 8), (8, 8)]),
    ]
    return [(*r, "float32") for r in rows]


def dtype_workloads(quick: bool) -> list[Workload]:
    """Rows for complex64, int8 (int32 accumulation) and bfloat16."""
    n = 256 if quick else 512
    return [
        (f"complex64 matmul {n}^2", "ij,jk->ik", [(n, n)] * 2, "complex64"),
        ("complex64 batched matmul 32x128^3", "bij,bjk->bik", [(32 // (4 if quick else 1),
                                                                 128, 128)] * 2, "complex64"),
        ("complex64 ring MPS norm, 16 operands", *ring_network(16, 32 // (2 if quick else 1), 2),
         "complex64"),
        (f"int8 matmul {n}^2, int32 accumulation", "ij,jk->ik", [(n, n)] * 2, "int8"),
        ("int8 bij,bjk->bik 32x128^3, int32 accumulation", "bij,bjk->bik",
         [(32, 128, 128)] * 2, "int8"),
        (f"bfloat16 matmul {2 * n}^2", "ij,jk->ik", [(2 * n, 2 * n)] * 2, "bfloat16"),
        ("bfloat16 attention bhqd,bhkd->bhqk", "bhqd,bhkd->bhqk",
         [(8, 8 // (4 if quick else 1), 256, 64)] * 2, "bfloat16"),
    ]


def tiny_workloads() -> list[Workload]:
    """Calls so small that dispatch is the cost."""
    return [
        ("tiny dot i,i-> (16)", "i,i->", [(16,), (16,)], "float32"),
        ("tiny 8x8 matmul", "ij,jk->ik", [(8, 8), (8, 8)], "float32"),
        ("tiny 8x8 complex64 matmul", "ij,jk->ik", [(8, 8), (8, 8)], "complex64"),
        ("tiny 8x8 bfloat16 matmul", "ij,jk->ik", [(8, 8), (8, 8)], "bfloat16"),
        ("tiny chain ij,jk,kl->il 8x8", "ij,jk,kl->il", [(8, 8)] * 3, "float32"),
        ("tiny batched bij,bjk->bik (4,8,8)", "bij,bjk->bik", [(4, 8, 8)] * 2, "float32"),
    ]


def _host(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """NumPy data: int8 in its full range, bfloat16 as float32 values it can hold exactly."""
    if dtype == "int8":
        return rng.integers(-128, 128, shape, dtype=np.int8)
    x = rng.standard_normal(shape).astype(np.float32)
    if dtype == "complex64":
        return (x + 1j * rng.standard_normal(shape).astype(np.float32)).astype(np.complex64)
    if dtype == "bfloat16":
        return np.array(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32))  # writable, for torch
    return x


def _systems(spec: str, nps: list[np.ndarray], dtype: str,
             torch: Any) -> tuple[Callable[[], Any], dict[str, Callable[[], Any]]]:
    """(contract's call, each peer's call) computing the same result from the same inputs.

    int8 rows ask every system for int32 results: contract and jnp through
    ``preferred_element_type``, numpy through ``dtype=``, torch through
    ``_int_mm`` for a plain matmul, and the others on int32 copies (the cast is
    part of their cost). bfloat16 rows give numpy-based peers nothing to run
    (NumPy has no bfloat16 arithmetic), so only jnp and torch compete.
    """
    jdtype = jnp.bfloat16 if dtype == "bfloat16" else None
    jxs = [jnp.asarray(x, jdtype) for x in nps]
    kw = {"preferred_element_type": jnp.int32} if dtype == "int8" else {}
    jitted = jax.jit(lambda *xs: jnp.einsum(spec, *xs, **kw))
    ours = lambda: contract.einsum(spec, *jxs, **kw)
    peers: dict[str, Callable[[], Any]] = {"jax.jit(jnp.einsum)": lambda: jitted(*jxs)}
    # numpy's optimize=True caps intermediates at the largest input and falls
    # back to one huge n-ary loop on the ring network; give it opt_einsum's path.
    path = ["einsum_path", *opt_einsum.contract_path(spec, *nps)[0]]
    if dtype == "int8":
        peers["numpy.einsum"] = lambda: np.einsum(spec, *nps, optimize=path, dtype=np.int32)
        peers["opt_einsum"] = lambda: opt_einsum.contract(spec, *[x.astype(np.int32) for x in nps])
        if cotengra is not None:
            peers["cotengra"] = lambda: cotengra.einsum(spec, *[x.astype(np.int32) for x in nps],
                                                         optimize=CTG_OPTIMIZE)
    elif dtype != "bfloat16":
        peers["numpy.einsum"] = lambda: np.einsum(spec, *nps, optimize=path)
        peers["opt_einsum"] = lambda: opt_einsum.contract(spec, *nps)
        if cotengra is not None:
            peers["cotengra"] = lambda: cotengra.einsum(spec, *nps, optimize=CTG_OPTIMIZE)
    if torch is not None:
        tts = [torch.from_numpy(x) for x in nps]
        if dtype == "bfloat16":
            tts = [t.bfloat16() for t in tts]
        if dtype == "int8" and spec == "ij,jk->ik":
            peers["torch"] = lambda: torch._int_mm(*tts)
        elif dtype == "int8":
            peers["torch"] = lambda: torch.einsum(spec, *[t.int() for t in tts])
        else:
            peers["torch"] = lambda: torch.einsum(spec, *tts)
    return ours, peers


def _check(name: str, got: Any, nps: list[np.ndarray], spec: str, dtype: str) -> None:
    """contract agrees with a float64 (int64 for ints) opt_einsum before anything is timed."""
    wide = np.int64 if dtype == "int8" else np.complex128 if dtype == "complex64" else np.float64
    want = opt_einsum.contract(spec, *[x.astype(wide) for x in nps])
    got = np.asarray(jnp.asarray(got).astype(jnp.float32) if dtype == "bfloat16" else got)
    if dtype == "int8":
        ok = got.dtype == np.int32 and np.array_equal(got, want)
    else:
        tol = 2e-2 if dtype == "bfloat16" else 1e-3
        ok = np.allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    if not ok:
        raise AssertionError(f"{name}: contract disagrees with numpy")


def run_row(workload: Workload, rounds: int, torch: Any, tiny: bool = False) -> Row:
    name, spec, shapes, dtype = workload
    rng = np.random.default_rng(0)
    nps = [_host(s, dtype, rng) for s in shapes]
    ours, peers = _systems(spec, nps, dtype, torch)
    _check(name, ours(), nps, spec, dtype)
    times = race({"contract": ours, **peers}, rounds)
    t = times.pop("contract")
    row = Row(name, t, dict(times))
    if tiny:
        row.note = f"{t / times['jax.jit(jnp.einsum)']:.2f}x jax.jit"
    return row


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    torch = torch_or_none()
    rounds = min(args.repeat, 3) if args.quick else args.repeat
    print(f"machine: {machine()}\n")
    rows = [run_row(w, rounds, torch) for w in workloads(args.quick)]
    print(table(rows, f"einsum, float32 (best of {rounds} rotated rounds)"))
    print()
    rows = [run_row(w, rounds, torch) for w in dtype_workloads(args.quick)]
    print(table(rows, "einsum, other dtypes (int8 rows: int32 results from every system)"))
    print()
    rows = [run_row(w, rounds, torch, tiny=True) for w in tiny_workloads()]
    print(table(rows, "tiny calls (per-call overhead; note: contract / jax.jit)"))


if __name__ == "__main__":
    main()
