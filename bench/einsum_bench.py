"""contract.einsum against jax.jit(jnp.einsum), numpy, opt_einsum and torch.

Run: ``python -m bench.einsum_bench [--quick]``. Each row is timed in the same
process: contract is called eagerly (its cached fast path, as users call it),
jnp.einsum inside ``jax.jit``, numpy with ``optimize=True``, opt_einsum's
``contract`` on NumPy arrays, torch CPU's ``einsum``.
"""

from __future__ import annotations

import string
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import opt_einsum

import contract

from .common import Row, best_time, machine, parser, table, torch_or_none


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


def workloads(quick: bool) -> list[tuple[str, str, list[tuple[int, ...]]]]:
    """(name, spec, shapes) for every row."""
    s = 4 if quick else 1
    chain = [(1024 // s, 16), (16, 1024 // s), (1024 // s, 8), (8, 512 // s), (512 // s, 4)]
    return [
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


def run_row(name: str, spec: str, shapes: list[tuple[int, ...]], repeat: int,
            torch: Any) -> Row:
    rng = np.random.default_rng(0)
    nps = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    jxs = [jnp.asarray(x) for x in nps]
    jitted = jax.jit(lambda *xs: jnp.einsum(spec, *xs))
    tiny = "tiny" in name
    # numpy's optimize=True caps intermediates at the largest input and falls
    # back to one huge n-ary loop on the ring network; give it opt_einsum's path.
    path = ["einsum_path", *opt_einsum.contract_path(spec, *nps)[0]]
    peers: dict[str, Callable[[], Any]] = {
        "jax.jit(jnp.einsum)": lambda: jitted(*jxs),
        "numpy.einsum": lambda: np.einsum(spec, *nps, optimize=path),
        "opt_einsum": lambda: opt_einsum.contract(spec, *nps),
    }
    if torch is not None:
        tts = [torch.from_numpy(x) for x in nps]
        peers["torch.einsum"] = lambda: torch.einsum(spec, *tts)
    # Check once that contract agrees with numpy before timing anything.
    got = np.asarray(contract.einsum(spec, *jxs))
    want = opt_einsum.contract(spec, *[x.astype(np.float64) for x in nps])
    if not np.allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max()):
        raise AssertionError(f"{name}: contract disagrees with numpy")
    floor = 0.05 if tiny else 0.0
    t = best_time(lambda: contract.einsum(spec, *jxs), repeat, min_seconds=floor)
    times = {k: best_time(f, repeat, min_seconds=floor) for k, f in peers.items()}
    return Row(name, t, times)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    torch = torch_or_none()
    rows = [run_row(n, s, sh, args.repeat, torch) for n, s, sh in workloads(args.quick)]
    print(table(rows, f"einsum ({machine()}, float32, best of {args.repeat})"))


if __name__ == "__main__":
    main()
