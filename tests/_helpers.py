"""Helpers shared by the test modules (no test module imports another)."""

from __future__ import annotations

import math

import numpy as np
import opt_einsum

__all__ = ["NETWORKS", "OUTPUT_ONLY", "budget", "operands", "mixed_dtype_pairs", "path_cost", "rearm", "ring_graph"]


def mixed_dtype_pairs() -> list[tuple[str, str]]:
    """Pairs of dtypes ``lax.dot_general`` takes together (with x64 on, the
    64-bit ones too): what a drop-in must hand over uncast."""
    import jax  # noqa: PLC0415 - the mode is read when the test module is

    pairs = [("int8", "float32"), ("bfloat16", "float32"), ("int32", "float32"),
             ("float16", "float32"), ("bool", "float32"), ("uint8", "float32"),
             ("int8", "int16"), ("int8", "bfloat16"), ("bool", "int8"), ("float16", "bfloat16")]
    if jax.config.jax_enable_x64:
        pairs += [("float16", "float64"), ("int32", "float64"), ("float32", "float64"),
                  ("int64", "float32"), ("uint32", "float64")]
    return pairs


def rearm() -> None:
    """After switching the kernels (CONTRACT_NATIVE, CONTRACT_BLAS, a patched
    loader): forget the loaded kernels and every compiled lowering."""
    import contract  # noqa: PLC0415 - keeps this module importable without JAX set up

    contract.native.reload()
    contract.clear_caches(disk=False)


def path_cost(inputs, output, sizes, path) -> float:
    """Independent count over a linear path: each pairwise step costs the
    product of the sizes of every label of its two operands."""
    terms = list(inputs)
    total = 0.0
    for i, j in path:
        a, b = terms[i], terms[j]
        rest = terms[:i] + terms[i + 1 : j] + terms[j + 1 :]
        both = a | b
        total += math.prod(sizes[l] for l in both)
        terms = rest + [frozenset(l for l in both if l in output or any(l in r for r in rest))]
    return total


def ring_graph(n: int, seed: int) -> tuple[list[frozenset], dict[str, int]]:
    """A 3-regular graph: a ring plus a random perfect matching of chords."""
    rng = np.random.default_rng(seed)
    edges = [(k, (k + 1) % n) for k in range(n)]
    perm = rng.permutation(n)
    edges += [(int(perm[k]), int(perm[k + 1])) for k in range(0, n, 2)]
    legs: list[set] = [set() for _ in range(n)]
    for e, (u, v) in enumerate(edges):
        legs[u].add(opt_einsum.get_symbol(e))
        legs[v].add(opt_einsum.get_symbol(e))
    return [frozenset(t) for t in legs], {opt_einsum.get_symbol(e): 2 for e in range(len(edges))}


NETWORKS = [
    ("ab,bc,cd->ad", [(32, 32), (32, 32), (32, 32)]),
    ("abc,cde,efg,gha->bdfh", [(4, 8, 4), (4, 8, 4), (4, 8, 4), (4, 8, 4)]),
    ("bij,bjk->bik", [(16, 8, 8), (16, 8, 8)]),
    ("iij,jk->ki", [(16, 16, 8), (8, 12)]),
    ("...ij,...jk->...ik", [(4, 1, 8, 8), (1, 6, 8, 8)]),
    ("ijk,kl->lji", [(8, 8, 8), (8, 8)]),
    ("ijk,ikl->jl", [(8, 8, 8), (8, 8, 8)]),
    ("ab,cd->abcd", [(8, 8), (8, 8)]),
]


# NETWORKS whose plan holds nothing but its output (one step, no transpose):
# slicing only adds input copies to that, so no budget below it can be met.
OUTPUT_ONLY = {"bij,bjk->bik", "ijk,ikl->jl", "ab,cd->abcd"}


def budget(plan, ratio: int) -> int:
    """A memory_limit that keeps ``plan``'s output and 1/ratio of the rest of its
    peak (the output is held whatever the slicing: the scan's accumulator)."""
    sizes = dict(plan.sizes)
    out = math.prod(sizes[l] for l in plan.output) * np.dtype(plan.compute_dtype).itemsize
    return out + (plan.peak_bytes - out) // ratio


def operands(shapes, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return [rng.random(s) < 0.5 for s in shapes]
    if np.dtype(dtype).kind in "iu":
        return [rng.integers(-3, 4, s).astype(dtype) for s in shapes]
    if np.dtype(dtype).kind == "c":
        return [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(dtype)
                for s in shapes]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]
