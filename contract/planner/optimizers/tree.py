"""The contraction-tree model shared by the planners: legs as bitsets.

A network is a :class:`Net` (each tensor's legs as a bitset over the sorted
labels, their log2 sizes, who holds each hyperedge); a contraction tree is a
leaf (operand index) or a pair of trees. This module counts a tree's cost
(:mod:`.paths` converts trees to and from opt_einsum's and cotengrust's path
formats, :mod:`.graph` counts the largest networks), orders small groups exactly (:func:`optimal_tree`, DP over subsets) and
rewrites subtrees with that DP (:func:`reconfigure`). Walks over a whole tree
are loops, not recursions (only the DP's small groups recurse): trees of
large networks can be as deep as they have leaves, and planning may not
raise the process's recursion limit.

>>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
...           {"a": 8, "b": 16, "c": 32, "d": 4})
>>> tree = (0, (1, 2))
>>> tree_flops(net, tree)
2560.0
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Container, Iterator, Sequence


__all__ = ["Legs", "Net", "Tree", "bit_list", "internal_nodes", "optimal_tree", "reconfigure", "replace_leaves",
           "tree_flops", "tree_totals", "tree_width"]

# A contraction tree: a leaf (operand index) or a pair of trees.
Tree = Any

# Sizes are floats capped here (2^1000): a contraction that large can never
# run, and the cap keeps sums over 10^4 nodes finite where 2.0**1100 would
# raise OverflowError.
_BIG = 2.0 ** 1000


class Net:
    """A network for the planners: each tensor's legs as a bitset, each leg's
    log2 size, how many tensors hold each leg, and :meth:`size` of a leg set."""

    def __init__(self, inputs: Sequence[frozenset], output: frozenset, sizes: dict) -> None:
        labels = sorted(set().union(*inputs) | set(output), key=str)
        self.index = {l: n for n, l in enumerate(labels)}
        self.log = [math.log2(max(sizes[l], 1)) for l in labels]
        self.legs = [self.bits(t) for t in inputs]
        self.out = self.bits(output)
        self.count = [0] * len(labels)
        for t in inputs:
            for l in t:
                self.count[self.index[l]] += 1
        self.hyper = sum(1 << n for n, c in enumerate(self.count) if c > 2)
        # Legs on one tensor only (and not in the output) are summed at its
        # first contraction.
        self.single = sum(1 << n for n, c in enumerate(self.count) if c == 1)
        # For each hyperedge (3+ holders), the leaves holding it.
        self.holders: dict[int, int] = {}
        for v, t in enumerate(inputs):
            for l in t:
                n = self.index[l]
                if self.count[n] > 2:
                    self.holders[n] = self.holders.get(n, 0) | 1 << v
        self.size = _size_function(self.log)
        # For the annealer to inline size() (a third of a move's time), the
        # terms _size_function computes it from: (base, mask, cap) when every
        # leg of size > 1 has one size (size = base ** min(popcount, cap));
        # (log1, mask1, log2, mask2, log3, mask3) for two or three sizes
        # (2 ** min(sum of log * popcount, 1000)). None otherwise.
        masks: dict[float, int] = {}
        for n, x in enumerate(self.log):
            if x:
                masks[x] = masks.get(x, 0) | 1 << n
        self.uniform: tuple[float, int, int] | None = None
        self.mixed: tuple[float, int, float, int, float, int] | None = None
        if len(masks) == 1:
            ((x, mask),) = masks.items()
            self.uniform = (2.0 ** x, mask, int(1000 / math.log2(2.0 ** x)))
        elif len(masks) <= 3:
            # Padded to three terms: no masks at all (every leg of size 1) is
            # the constant size 1.
            terms = [(math.log2(2.0 ** x), m) for x, m in masks.items()] + [(0.0, 0)] * 3
            (x1, m1), (x2, m2), (x3, m3) = terms[:3]
            self.mixed = (x1, m1, x2, m2, x3, m3)
        # Masks for join: legs that close like ordinary edges, and the
        # hyperedges that can close at all.
        self.plain = ~self.out & ~self.hyper
        self.open_hyper = self.hyper & ~self.out

    def bits(self, labels: Any) -> int:
        b = 0
        for l in labels:
            b |= 1 << self.index[l]
        return b

    def join(self, a: int, b: int, leaves: int) -> int:
        """Legs of the merge of nodes with legs ``a`` and ``b``, ``leaves``
        being the leaves under both: those in the output or held elsewhere."""
        # An ordinary leg (two holders) closes when both holders are inside,
        # a single-holder leg at once; a hyperedge when all its holders are
        # among ``leaves``.
        both = a | b
        closed = ((a & b) | (both & self.single)) & self.plain
        hyper = both & self.open_hyper
        if hyper:
            for l in bit_list(hyper):
                if self.holders[l] & ~leaves == 0:
                    closed |= 1 << l
        return both & ~closed


def internal_nodes(tree: Tree) -> list[Tree]:
    """Every internal node of ``tree``, parents before children, by a loop
    (trees can be as deep as they have leaves).

    >>> internal_nodes(((0, 1), 2))
    [((0, 1), 2), (0, 1)]
    """
    order: list[Tree] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, int):
            order.append(node)
            stack += [node[0], node[1]]
    return order


def bit_list(bits: int) -> list[int]:
    """Positions of the set bits, lowest first: one step per set bit (not per
    position), which matters on networks with thousands of labels.

    >>> bit_list(0b101001)
    [0, 3, 5]
    """
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def _children_first(node: Tree, done: Container[int]) -> Iterator[Tree]:
    """The internal nodes under ``node`` (itself included) whose ids are not in
    ``done``, each after its children and the left subtree first, by a loop
    (trees can be as deep as they have leaves). The caller puts each node's id
    in ``done`` before asking for the next: the walk relies on it."""
    stack = [node]
    while stack:
        top = stack[-1]
        todo = [c for c in reversed(top) if not isinstance(c, int) and id(c) not in done]
        if todo:
            stack += todo
            continue
        stack.pop()
        yield top


class Legs:
    """Output legs of every node of a tree, computed bottom-up and memoised.

    Internal nodes are keyed by ``id``; the node itself is stored alongside
    so its id cannot be reused while the entry lives.

    >>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 8, "b": 16, "c": 32, "d": 4})
    >>> bit_list(Legs(net)((1, 2)))   # c closes; b (held by 0) and d (output) stay
    [1, 3]
    """

    def __init__(self, net: Net) -> None:
        self.net = net
        self.memo: dict[int, tuple[Tree, int, int]] = {}

    def __call__(self, node: Tree) -> int:
        if isinstance(node, int):
            return self.net.legs[node]
        if id(node) not in self.memo:
            for top in _children_first(node, self.memo):
                a, b = top
                leaves = (1 << a if isinstance(a, int) else self.memo[id(a)][2]) | \
                    (1 << b if isinstance(b, int) else self.memo[id(b)][2])
                self.memo[id(top)] = (top, self.net.join(self(a), self(b), leaves), leaves)
        return self.memo[id(node)][1]


def tree_flops(net: Net, tree: Tree, legs: "Legs | None" = None) -> float:
    """Total pairwise-contraction cost (products of sizes) of a tree."""
    return tree_totals(net, tree, legs)[0]


def tree_totals(net: Net, tree: Tree, legs: "Legs | None" = None) -> tuple[float, float, float]:
    """(FLOPs, elements written, largest intermediate) of a tree, in the
    units of :mod:`.objective` (every internal node, the root included).

    >>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 8, "b": 16, "c": 32, "d": 4})
    >>> tree_totals(net, (0, (1, 2)))
    (2560.0, 96.0, 64.0)
    """
    legs = legs or Legs(net)
    flops = write = biggest = 0.0
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, int):
            continue
        flops += net.size(legs(node[0]) | legs(node[1]))
        out = net.size(legs(node))
        write += out
        biggest = max(biggest, out)
        stack += [node[0], node[1]]
    return flops, write, biggest


def tree_width(net: Net, tree: Tree, legs: Legs) -> float:
    """log2 of the largest intermediate of ``tree`` (0 for a leaf).

    >>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 8, "b": 16, "c": 32, "d": 4})
    >>> tree_width(net, (0, (1, 2)), Legs(net))   # (1, 2) keeps b and d: 16 * 4
    6.0
    """
    biggest, stack = 1.0, [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, int):
            biggest = max(biggest, net.size(legs(node)))
            stack += [node[0], node[1]]
    return math.log2(biggest)


def optimal_tree(tensors: list[int], out: int, size: Any,
             node: Callable[[float, float], float] | None = None) -> tuple[float, Tree]:
    """DP over subsets: the cheapest tree over ``tensors`` (leg bitsets) whose
    result keeps ``out``; leaves of the returned tree are positions. A node
    costs its contraction's size, or ``node(contraction, result)`` (an
    :meth:`.Objective.node`). Exponential in ``len(tensors)``: for small groups.

    >>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 8, "b": 16, "c": 32, "d": 4})
    >>> optimal_tree(net.legs, net.out, net.size)
    (2560.0, (0, (1, 2)))
    """
    k = len(tensors)
    full = (1 << k) - 1
    union = [0] * (1 << k)
    for s in range(1, 1 << k):
        low = s & -s
        union[s] = union[s ^ low] | tensors[low.bit_length() - 1]
    # A subset's result keeps legs that its complement or the output needs;
    # a single tensor is taken as it is (its own legs are summed when it is
    # first contracted, as ``tree_flops`` counts them).
    result = [union[s] & (union[full ^ s] | out) if s & (s - 1) else union[s]
              for s in range(1 << k)]
    best: list[float] = [0.0] * (1 << k)
    choice: list[int] = [0] * (1 << k)
    for s in range(1, 1 << k):
        if s & (s - 1) == 0:
            continue
        low = s & -s
        top = s ^ low
        cheapest, pick = math.inf, 0
        sub = top
        # Enumerate splits A | B = s with the lowest bit in A (each split once).
        while True:
            a = low | sub
            b = s ^ a
            if b:
                c = best[a] + best[b]
                if c < cheapest:
                    c += (size(result[a] | result[b]) if node is None
                          else node(size(result[a] | result[b]), size(result[s])))
                    if c < cheapest:
                        cheapest, pick = c, a
            if sub == 0:
                break
            sub = (sub - 1) & top
        best[s], choice[s] = cheapest, pick

    def build(s: int) -> Tree:  # recursion as deep as k: small
        if s & (s - 1) == 0:
            return s.bit_length() - 1
        return (build(choice[s]), build(s ^ choice[s]))

    return best[full], build(full)


def _size_function(log: list[float]) -> Callable[[int], float]:
    """Size (product of leg sizes) of a leg bitset, given each leg's log2
    size: one mask per distinct size, so a lookup is a popcount and a power
    per distinct size (networks rarely have more than a few), whatever the
    number of legs. Capped at ``_BIG``.

    >>> _size_function([1.0, 0.0, 3.0, 1.0])(0b1101)
    32.0
    >>> _size_function([1.0] * 1500)((1 << 1500) - 1) == _BIG
    True
    """
    masks: dict[float, int] = {}
    for n, x in enumerate(log):
        if x:  # size-1 legs cost nothing
            masks[2.0 ** x] = masks.get(2.0 ** x, 0) | 1 << n
    if not masks:
        return lambda bits: 1.0
    caps = {base: int(1000 / math.log2(base)) for base in masks}
    if len(masks) == 1:  # the common case: one bond dimension
        (base, mask), = masks.items()
        cap = caps[base]
        return lambda bits: base ** min((bits & mask).bit_count(), cap)
    if len(masks) <= 3:  # unrolled: this runs twice per annealing move
        (l1, m1), (l2, m2), (l3, m3) = [(math.log2(b), m) for b, m in masks.items()] + \
            [(0.0, 0)] * (3 - len(masks))
        return lambda bits: 2.0 ** min(l1 * (bits & m1).bit_count() + l2 * (bits & m2).bit_count()
                                       + l3 * (bits & m3).bit_count(), 1000.0)
    pairs = [(base, mask, caps[base]) for base, mask in masks.items()]

    def size(bits: int) -> float:
        total = 1.0
        for base, mask, cap in pairs:
            total *= base ** min((bits & mask).bit_count(), cap)
        return min(total, _BIG)

    return size


def reconfigure(net: Net, tree: Tree, k: int, deadline: float, floor: float = 1e-4,
                 local: Callable[[float, float], float] | None = None,
                 cap: float = math.inf) -> Tree:
    """Rewrite subtrees with optimal orders of their ``k`` costliest parts,
    skipping subtrees that cost less than ``floor`` of the whole. ``local``
    is the objective's cost of a node (:meth:`.Objective.node`; FLOPs when
    None). A rewrite whose intermediates exceed ``cap`` elements (and the
    largest of those it replaces) is refused: the DP by FLOPs alone often
    trades a wider intermediate for fewer FLOPs.

    >>> net = Net([frozenset("ab"), frozenset("bc"), frozenset("cd")], frozenset("ad"),
    ...           {"a": 8, "b": 16, "c": 32, "d": 4})
    >>> tree = reconfigure(net, ((0, 1), 2), 3, deadline=float("inf"))
    >>> tree, tree_flops(net, ((0, 1), 2)), tree_flops(net, tree)
    (((2, 1), 0), 5120.0, 2560.0)
    """
    size = net.size
    legs = Legs(net)

    def widest(node: Tree, stop: set[int]) -> float:
        """The largest result among the nodes from ``node`` down to ``stop``."""
        biggest, stack = 0.0, [node]
        while stack:
            v = stack.pop()
            if isinstance(v, int) or id(v) in stop:
                continue
            biggest = max(biggest, size(legs(v)))
            stack += [v[0], v[1]]
        return biggest

    def cost(node: Tree) -> float:
        if isinstance(node, int):
            return 0.0
        flops = size(legs(node[0]) | legs(node[1]))
        return flops if local is None else local(flops, size(legs(node)))

    # Keyed by id, holding the node so the id stays unique while memoised.
    totals: dict[int, tuple[Tree, float]] = {}
    skip = 0.0

    def total(node: Tree) -> float:
        if isinstance(node, int):
            return 0.0
        if id(node) not in totals:
            for v in _children_first(node, totals):  # its children are memoised first
                totals[id(v)] = (v, cost(v) + total(v[0]) + total(v[1]))
        return totals[id(node)][1]

    def rewrite(node: Tree) -> Tree:
        """``node`` (its subtrees rewritten), or a cheaper order of its frontier."""
        # Subtrees costing a sliver of the whole cannot change the total
        # much: skipping them saves most of the DP work.
        if time.perf_counter() > deadline or total(node) < skip:
            return node
        frontier = [node[0], node[1]]
        while len(frontier) < k:
            inner = [f for f in frontier if not isinstance(f, int)]
            if not inner:
                break
            big = max(inner, key=cost)
            frontier.remove(big)
            frontier += [big[0], big[1]]
        if len(frontier) >= 3:
            old = total(node) - sum(total(f) for f in frontier)
            new, sub = optimal_tree([legs(f) for f in frontier], legs(node), size, local)
            if new < old * (1 - 1e-9):
                rewritten = replace_leaves(sub, frontier)
                if cap == math.inf:
                    node = rewritten
                else:
                    stop = {id(f) for f in frontier}
                    if widest(rewritten, stop) <= max(cap, widest(node, stop)):
                        node = rewritten
        total(node)
        return node

    def visit(root: Tree) -> Tree:
        """``root`` with every subtree rewritten, children before parents."""
        if isinstance(root, int):
            return root
        # Keyed by the ids of the original nodes, which ``root`` keeps alive.
        done: dict[int, Tree] = {}
        for node in _children_first(root, done):
            a, b = (c if isinstance(c, int) else done[id(c)] for c in node)
            done[id(node)] = rewrite(node if a is node[0] and b is node[1] else (a, b))
        return done[id(root)]

    previous = math.inf
    while time.perf_counter() < deadline:
        skip = total(tree) * floor
        tree = visit(tree)
        now = total(tree)
        if now >= previous * (1 - 1e-9):
            break
        previous = now
    return tree


def replace_leaves(sub: Tree, parts: list[Tree]) -> Tree:
    """``sub`` with each leaf ``i`` replaced by ``parts[i]``: an
    :func:`optimal_tree` order of ``parts`` put back in the tree (``sub`` is
    as shallow as the DP's groups are small, so this recursion is too).

    >>> replace_leaves((0, (1, 2)), [7, (3, 4), 5])
    (7, ((3, 4), 5))
    """
    if isinstance(sub, int):
        return parts[sub]
    return (replace_leaves(sub[0], parts), replace_leaves(sub[1], parts))
