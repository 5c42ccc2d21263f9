"""Contraction trees to and from opt_einsum's path formats (linear and SSA).

>>> tree_of_linear(linear_path(((0, 2), (1, 3)), 4), 4)
((0, 2), (1, 3))
"""

from __future__ import annotations

from typing import Sequence

from .tree import Tree, internal_nodes

__all__ = ["linear_path", "tree_of_linear", "tree_of_ssa"]


def linear_path(tree: Tree, n: int) -> list[tuple[int, ...]]:
    """A tree over leaves 0..n-1 as opt_einsum's linear path.

    >>> linear_path(((0, 2), (1, 3)), 4)
    [(0, 2), (0, 1), (0, 1)]
    """
    if isinstance(tree, int):
        return [(0,)] if n == 1 else []
    order = internal_nodes(tree)[::-1]  # children before parents
    # Each node gets an SSA id; a linear position is the id's rank among the
    # ids still alive, which a Fenwick tree over ids answers in log time.
    ids: dict[int, int] = {}
    alive = _Fenwick(2 * n)
    for v in range(n):
        alive.add(v, 1)
    path: list[tuple[int, int]] = []
    for k, node in enumerate(order):
        a, b = (c if isinstance(c, int) else ids[id(c)] for c in node)
        i, j = sorted((alive.prefix(a), alive.prefix(b)))
        path.append((i, j))
        alive.add(a, -1)
        alive.add(b, -1)
        ids[id(node)] = n + k
        alive.add(n + k, 1)
    return path


class _Fenwick:
    """Prefix sums over positions ``0..size-1`` with point updates."""

    def __init__(self, size: int) -> None:
        self.tree = [0] * (size + 1)

    def add(self, i: int, delta: int) -> None:
        i += 1
        while i < len(self.tree):
            self.tree[i] += delta
            i += i & -i

    def prefix(self, i: int) -> int:
        """Sum over positions ``0..i-1``."""
        total = 0
        while i > 0:
            total += self.tree[i]
            i -= i & -i
        return total


def tree_of_linear(path: Sequence[Sequence[int]], n: int) -> Tree:
    """The tree of an opt_einsum linear path (entries of one operand keep it,
    n-ary entries are folded left to right).

    >>> tree_of_linear([(0, 2), (0, 1)], 3)
    (1, (0, 2))
    """
    live: list[Tree] = list(range(n))
    for entry in path:
        picked = [live[i] for i in entry]
        for i in sorted(entry, reverse=True):
            del live[i]
        node = picked[0]
        for other in picked[1:]:
            node = (node, other)
        live.append(node)
    return _fold(live)


def tree_of_ssa(path: Sequence[Sequence[int]], n: int) -> Tree:
    """The tree of a path in SSA form (every result appended as a new id).

    >>> tree_of_ssa([(0, 2), (1,), (3, 4)], 3)
    ((0, 2), 1)
    """
    nodes: list[Tree] = list(range(n))
    used: set[int] = set()
    for entry in path:
        used.update(entry)
        node = nodes[entry[0]]
        for other in entry[1:]:
            node = (node, nodes[other])
        nodes.append(node)
    return _fold([t for i, t in enumerate(nodes) if i not in used])


def _fold(roots: list[Tree]) -> Tree:
    """Join what a path left apart (outer products), in order."""
    tree = roots[0]
    for other in roots[1:]:
        tree = (tree, other)
    return tree
