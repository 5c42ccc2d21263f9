"""Slicing under a memory budget on networks of 200-1,000 tensors.

Run: ``python -m bench.slicing_bench [--quick] [--old-rev REV] [--old-cap SECONDS]``.

Each row plans the network with ``optimize="auto"``, then fits it to a budget
``2^shift`` times under its unsliced peak (``contract.planner.fit``, what
``memory_limit=`` runs). Cells give the fitting time (the base plan's own time
apart), the total FLOPs over the unsliced plan's and the slice count:

* **contract**: the slice search of ``contract/planner/slicing.py``;
* **before**: the search at git revision ``--old-rev`` (the one that rebuilt a
  plan per candidate), run in a child process stopped after ``--old-cap``
  seconds (then ``> cap``);
* **cotengra SliceFinder**: cotengra's greedy slicer on the same base tree,
  asked for the largest intermediate contract's slicing reached (its own
  target; it does not count the peak's other arrays), 16 repeats. Its FLOPs
  are recounted here in contract's convention, from its sliced labels on the
  base path.

Networks (generators shared with ``tests/test_slicing.py``): 3-regular graphs
(``tests._helpers.ring_graph``) and random circuit-like grids
(:func:`grid_circuit`), all bonds 2, scalar output.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import textwrap
import time
from typing import Callable

import numpy as np
import opt_einsum

__all__ = ["grid_circuit", "main", "regular_network"]

Network = tuple[str, list[tuple[int, ...]]]


def regular_network(n: int, seed: int, bond: int = 2) -> Network:
    """The 3-regular graph ``tests._helpers.ring_graph(n, seed)`` as a spec and shapes."""
    from tests._helpers import ring_graph

    inputs, _ = ring_graph(n, seed)
    terms = ["".join(sorted(t)) for t in inputs]
    return ",".join(terms) + "->", [(bond,) * len(t) for t in terms]


def grid_circuit(rows: int, cols: int, depth: int, seed: int) -> Network:
    """``<0|C|0>`` for a random circuit on a ``rows x cols`` grid of qubits: each
    layer applies a two-qubit gate (a rank-4 tensor) to each neighbour pair of
    one of four patterns with probability 3/4; rank-1 states close every wire
    at both ends.

    >>> spec, shapes = grid_circuit(2, 2, 4, 0)
    >>> len(shapes), spec.count(",") + 1 == len(shapes), shapes[0], max(map(len, shapes))
    (12, True, (2,), 4)
    """
    rng = np.random.default_rng(seed)
    wire = list(range(rows * cols))
    fresh = len(wire)
    terms = [(w,) for w in wire]
    pairs = [(r * cols + c, r * cols + c + 1, c % 2) for r in range(rows) for c in range(cols - 1)]
    pairs += [(r * cols + c, (r + 1) * cols + c, 2 + r % 2)
              for r in range(rows - 1) for c in range(cols)]
    for layer in range(depth):
        for a, b, pattern in pairs:
            if pattern == layer % 4 and rng.random() < 0.75:
                terms.append((wire[a], wire[b], fresh, fresh + 1))
                wire[a], wire[b] = fresh, fresh + 1
                fresh += 2
    terms += [(w,) for w in wire]
    sym = opt_einsum.get_symbol
    return ",".join("".join(sym(l) for l in t) for t in terms) + "->", [(2,) * len(t) for t in terms]


def rows(quick: bool) -> list[tuple[str, Callable[[], Network], int]]:
    """(name, network, shift): the budget is the unsliced peak / 2^shift."""
    out = [
        ("3-regular, 200 tensors", lambda: regular_network(200, 1), 10),
        ("circuit 5x5, depth 24", lambda: grid_circuit(5, 5, 24, 0), 10),
        ("circuit 6x6, depth 14", lambda: grid_circuit(6, 6, 14, 0), 6),
        ("3-regular, 500 tensors", lambda: regular_network(500, 0), 10),
        ("3-regular, 1000 tensors", lambda: regular_network(1000, 0), 10),
    ]
    return out[:2] if quick else out


def _before(rev: str, spec: str, shapes: list, shift: int, cap: float) -> str:
    """The old search at ``rev``, in a child process (it cannot be stopped
    in-process): its time, overhead and slices, or ``> cap``."""
    code = textwrap.dedent(f"""
        import importlib.util, subprocess, sys, time, tempfile, contract
        text = subprocess.run(["git", "show", "{rev}:contract/planner/slicing.py"],
                              capture_output=True, text=True, check=True).stdout
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(text)
        found = importlib.util.spec_from_file_location("contract.planner.old_slicing", f.name)
        old = importlib.util.module_from_spec(found); found.loader.exec_module(old)
        base = contract.plan({spec!r}, *{shapes!r})
        start = time.perf_counter()
        sp = old.fit(base, base.peak_bytes >> {shift})
        print(time.perf_counter() - start, sp.flops / base.flops, sp.n_slices)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=cap, check=True).stdout.split()
    except subprocess.TimeoutExpired:
        return f"> {cap:g} s (stopped)"
    seconds, overhead, slices = float(out[0]), float(out[1]), int(out[2])
    return f"{seconds:.2f} s · {overhead:.3g}x · {slices}"


def _slice_finder(base, width: int) -> str:
    """cotengra's SliceFinder on ``base``'s tree, down to ``width`` elements."""
    import cotengra

    from contract.planner import slice_plan

    sizes = dict(base.sizes)
    inputs = [tuple(p.labels) for p in base.preps]
    tree = cotengra.ContractionTree.from_path(inputs, tuple(base.output), sizes, path=base.path)
    # cotengra walks the tree recursively: a 1,000-tensor greedy tree is as
    # deep as the default recursion limit.
    depth = sys.getrecursionlimit()
    sys.setrecursionlimit(max(depth, 50 * len(inputs)))
    try:
        start = time.perf_counter()
        finder = cotengra.SliceFinder(tree, target_size=width, seed=0)
        cut, _ = finder.search(max_repeats=16)
        seconds = time.perf_counter() - start
    finally:
        sys.setrecursionlimit(depth)
    sp = slice_plan(base, {l: sizes[l] for l in cut})
    return f"{seconds:.2f} s · {sp.flops / base.flops:.3g}x · {sp.n_slices}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first two rows only")
    ap.add_argument("--old-rev", help="git revision of the search to compare with")
    ap.add_argument("--old-cap", type=float, default=60.0, help="seconds before it is stopped")
    args = ap.parse_args()

    import contract
    from contract.planner import SlicedPlan, fit

    print("| network (tensors) | budget | base plan | contract | "
          + ("before | " if args.old_rev else "") + "cotengra SliceFinder |")
    print("|---|---|---|---|" + ("---|" if args.old_rev else "") + "---|")
    for name, network, shift in rows(args.quick):
        spec, shapes = network()
        start = time.perf_counter()
        base = contract.plan(spec, *shapes)
        planned = time.perf_counter() - start
        start = time.perf_counter()
        fitted = fit(base, base.peak_bytes >> shift)
        seconds = time.perf_counter() - start
        sliced = fitted.n_slices if isinstance(fitted, SlicedPlan) else "1 (re-ordered)"
        cells = [f"{name} ({len(shapes)})",
                 f"peak / 2^{shift} = 2^{math.log2(base.peak_bytes >> shift):.1f} B",
                 f"{planned:.2f} s, 10^{math.log10(base.flops):.2f} FLOPs",
                 f"{seconds:.2f} s · {fitted.flops / base.flops:.3g}x · {sliced}"]
        if args.old_rev:
            cells.append(_before(args.old_rev, spec, shapes, shift, args.old_cap))
        cells.append(_slice_finder(base, fitted.largest_intermediate))
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
