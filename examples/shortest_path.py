"""All-pairs shortest paths by repeated min-plus squaring.

Run: ``python examples/shortest_path.py``. In the min-plus semiring (⊕ is
min, ⊗ is +) the matrix product ``D ⊗ D`` of a distance matrix ``D`` is
``min_k D[i, k] + D[k, j]``: the shortest paths that use at most twice as many
edges. Starting from the weighted adjacency matrix (0 on the diagonal, inf
where there is no edge), ``ceil(log2(n - 1))`` squarings give every shortest
path. Checked against SciPy's ``csgraph.shortest_path`` (Dijkstra), for float
weights and for integer weights (exact: min-plus on int32 stays int32).
"""

from __future__ import annotations

import math

import jax
import numpy as np
from scipy.sparse.csgraph import shortest_path

import contract


@jax.jit
def square(d: jax.Array) -> jax.Array:
    """Shortest paths of at most twice as many edges: ``min_k d[i,k] + d[k,j]``."""
    return contract.einsum("ik,kj->ij", d, d, semiring="min-plus")


def all_pairs(weights: np.ndarray, no_edge: float) -> jax.Array:
    """Shortest distances between all pairs of nodes; ``weights[i, j]`` is the
    edge i -> j, ``no_edge`` (inf, or a large integer) where there is none."""
    n = len(weights)
    d = np.where(np.eye(n, dtype=bool), 0, weights).astype(weights.dtype)
    for _ in range(max(1, math.ceil(math.log2(max(n - 1, 1))))):
        d = square(d)
    return d


def random_graph(n: int, p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges with probability ``p``: (has edge, integer weight 1..20)."""
    edge = rng.random((n, n)) < p
    np.fill_diagonal(edge, False)
    return edge, rng.integers(1, 21, (n, n))


def main() -> None:
    rng = np.random.default_rng(0)
    n = 200
    edge, w = random_graph(n, 0.02, rng)

    # Float weights, inf where there is no edge.
    weights = np.where(edge, w + rng.random((n, n)), np.inf).astype(np.float32)
    got = np.asarray(all_pairs(weights, np.inf))
    # SciPy's dense input: 0 means "no edge", so give it the edges explicitly.
    want = shortest_path(np.where(edge, weights, 0).astype(np.float64), method="D")
    reachable = np.isfinite(want)
    print(f"{n} nodes, {edge.sum()} edges: {reachable.mean():.0%} of pairs reachable, "
          f"longest shortest path {want[reachable].max():.3f} "
          f"(contract: {got[reachable].max():.3f})")
    np.testing.assert_array_equal(np.isfinite(got), reachable)
    np.testing.assert_allclose(got[reachable], want[reachable], rtol=1e-5)

    # Integer weights: exact, with a no-edge value larger than any path
    # (no inf in int32; sums of two such values still fit).
    no_edge = 2**28
    got_int = np.asarray(all_pairs(np.where(edge, w, no_edge).astype(np.int32), no_edge))
    want_int = shortest_path(np.where(edge, w, 0).astype(np.float64), method="D")
    assert got_int.dtype == np.int32
    np.testing.assert_array_equal(np.where(got_int >= no_edge, np.inf, got_int), want_int)
    print(f"int32 weights: all {n * n} distances equal SciPy's exactly")
    print(f"distances from node 0 to nodes 1-8: {got_int[0, 1:9].tolist()}")


if __name__ == "__main__":
    main()
