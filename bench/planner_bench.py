"""Planner quality and speed on real tensor networks (issue 13's tables).

Networks are built with quimb: random quantum circuits (Sycamore-style
fSim circuits on a 2-D grid, amplitude networks simplified with
``full_simplify`` as cotengra's docs do), PEPS and MERA norm networks, an
MPS-MPO-MPS expectation value, random 3-regular graphs (``TN_rand_reg``) and
2-D lattices (``TN2D_rand``), plus a 10,000-tensor scaling row.

For every network and planner a cell reads ``F · 2^W · t``: F is log10 of the
path's FLOPs, W log2 of its largest intermediate, t its planning time. Both
F and W are recounted here from each returned path, in opt_einsum's
convention (a pairwise step costs the product of the sizes of all its labels,
twice that when it sums a label away; intermediates only, inputs excluded),
so no planner grades itself. The recount is checked against
``opt_einsum.contract_path`` on every network of up to 300 tensors.

Planners: contract's ``auto`` and ``auto-hq`` (its pure path functions,
called with ``(inputs, output, size_dict)``), cotengra's
``RandomGreedyOptimizer(max_repeats=128)`` (which runs cotengrust's Rust
random greedy), cotengra's ``HyperOptimizer`` with its default methods
(greedy and kahypar) and default 128 trials, capped at ``--hyper-seconds``
(60 s by default; it stops after the trial that passes the cap), and
opt_einsum's ``greedy``. cotengra's optimizers run with ``parallel=False``
and ``seed=0`` where they take one, so every planner uses one core and the
run is repeatable.

    python -m bench.planner_bench            # every row, about 30 minutes
    python -m bench.planner_bench --quick    # four small rows, about a minute
    python -m bench.planner_bench --scale    # auto at 10,000 and 100,000 tensors, ~2 minutes

``--scale`` plans random 3-regular graphs of 10,000 and 100,000 tensors
(``tests._helpers.ring_graph``, bond 2) with ``auto``, opt_einsum's greedy
and cotengrust's greedy, each in a fresh process (planning time, and growth
of the peak resident memory over the process after building the network),
and recounts every path here. opt_einsum's own greedy takes about 15 minutes
at 10,000 tensors (its work grows with the square of the network): the row
runs the planner's port of it (``greedy.greedy_tree``, the same tree, as
``tests/test_scale.py`` checks), after checking that on 1,000 tensors.
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import subprocess
import sys
import time
import warnings
from collections import Counter
from typing import Any, Callable, Sequence

import opt_einsum

from bench.common import machine, parser

Network = tuple[list[frozenset], frozenset, dict]
Path = Sequence[Sequence[int]]

__all__ = ["fsim_circuit", "recount", "recount_wide", "networks", "main", "scale_planners", "scale_table"]


# --- the independent recount -------------------------------------------------

def recount(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
            path: Path) -> tuple[int, int]:
    """(FLOPs, largest intermediate) of ``path``, in opt_einsum's convention.

    Raises ValueError for an invalid or incomplete path.

    >>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
    >>> recount(ins, frozenset("ad"), {"a": 2, "b": 3, "c": 4, "d": 5}, [(0, 1), (0, 1)])
    (128, 10)
    """
    live = list(range(len(inputs)))
    terms = dict(enumerate(inputs))
    count = Counter(l for t in inputs for l in t)
    flops = biggest = 0
    nxt = len(inputs)
    for entry in path:
        if len(set(entry)) != len(entry) or any(not 0 <= i < len(live) for i in entry):
            raise ValueError(f"bad path entry {entry} with {len(live)} terms left")
        picked = [terms.pop(live[i]) for i in entry]
        for i in sorted(entry, reverse=True):
            del live[i]
        union = frozenset().union(*picked)
        for t in picked:
            count.subtract(t)
        keep = frozenset(l for l in union if l in output or count[l] > 0)
        factor = max(1, len(entry) - 1) + (1 if union - keep else 0)
        flops += math.prod(sizes[l] for l in union) * factor
        biggest = max(biggest, math.prod(sizes[l] for l in keep))
        count.update(keep)
        terms[nxt] = keep
        live.append(nxt)
        nxt += 1
    if len(live) > 1:
        raise ValueError(f"path leaves {len(live)} terms uncontracted")
    return flops, biggest


def recount_wide(inputs: Sequence[frozenset], output: frozenset, sizes: dict,
                 path: Path) -> tuple[int, int]:
    """:func:`recount` for networks whose intermediates hold thousands of
    labels (a 100,000-tensor 3-regular graph's greedy path: 100,000 steps of
    up to 17,000 labels, tens of minutes in :func:`recount`). Each step visits
    only the smaller tensor's labels: the larger one's set is kept and grown
    in place, with its label count per distinct size, and a Fenwick tree maps
    the path's positions to tensors. Pairwise entries only.

    >>> ins = [frozenset("ab"), frozenset("bc"), frozenset("cd")]
    >>> recount_wide(ins, frozenset("ad"), {"a": 2, "b": 3, "c": 4, "d": 5}, [(0, 1), (0, 1)])
    (128, 10)
    """
    n = len(inputs)
    count = Counter(l for t in inputs for l in t)
    tensors: list[Any] = [(set(t), Counter(sizes[l] for l in t), True) for t in inputs]
    tensors += [None] * max(n - 1, 0)
    fen = [0] * (2 * n + 1)  # live ids; the k-th live one is the path's position k

    def add(i: int, d: int) -> None:
        i += 1
        while i <= 2 * n:
            fen[i] += d
            i += i & -i

    def find(k: int) -> int:  # the id of the live tensor at position k
        pos, step = 0, 1 << (2 * n).bit_length()
        while step:
            if pos + step <= 2 * n and fen[pos + step] <= k:
                pos += step
                k -= fen[pos]
            step >>= 1
        return pos

    def product(per_size: Counter) -> int:
        return math.prod(d ** c for d, c in per_size.items() if c)

    for i in range(n):
        add(i, 1)
    flops = biggest = 0
    nxt = n
    for entry in path:
        if len(entry) != 2 or entry[0] == entry[1]:
            raise ValueError(f"recount_wide takes pairwise paths, got {entry}")
        ids = [find(k) for k in entry]
        for i in ids:
            add(i, -1)
        (big, big_sizes, big_leaf), (small, small_sizes, _) = sorted(
            (tensors[i] for i in ids), key=lambda t: len(t[0]), reverse=True)
        for i in ids:
            tensors[i] = None
        union = big_sizes + small_sizes
        keep = Counter(union)
        summed = False
        if big_leaf:  # a leaf's labels no one else holds close at its contraction
            for l in [l for l in big if count[l] == 1 and l not in output and l not in small]:
                big.discard(l)
                keep[sizes[l]] -= 1
                count[l] = 0
                summed = True
        for l in small:
            if l in big:
                union[sizes[l]] -= 1
                keep[sizes[l]] -= 1
                count[l] -= 1
            else:
                big.add(l)
            if count[l] <= 1 and l not in output:  # no tensor outside holds it
                big.discard(l)
                keep[sizes[l]] -= 1
                count[l] = 0
                summed = True
        flops += product(union) * (2 if summed else 1)
        biggest = max(biggest, product(keep))
        tensors[nxt] = (big, keep, False)
        add(nxt, 1)
        nxt += 1
    if sum(t is not None for t in tensors) > 1:
        raise ValueError("path leaves terms uncontracted")
    return flops, biggest


def _check_recount(net: Network, path: Path, flops: int) -> None:
    """Our recount must equal opt_einsum's own count of the same path."""
    inputs, output, sizes = net
    symbol = {l: opt_einsum.get_symbol(k) for k, l in enumerate(sorted(sizes, key=str))}
    eq = ",".join("".join(symbol[l] for l in t) for t in inputs) + "->" + \
        "".join(symbol[l] for l in output)
    shapes = [tuple(sizes[l] for l in t) for t in inputs]
    _, info = opt_einsum.contract_path(eq, *shapes, shapes=True, optimize=[tuple(e) for e in path])
    if int(info.opt_cost) != flops and abs(int(info.opt_cost) - flops) > 1e-9 * flops:
        raise AssertionError(f"recount {flops} != opt_einsum's {info.opt_cost}")


# --- networks -----------------------------------------------------------------

def _extract(tn: Any, output: Sequence[str] = ()) -> Network:
    inputs, out, sizes = tn.get_inputs_output_size_dict(output_inds=tuple(output))
    return [frozenset(t) for t in inputs], frozenset(out), dict(sizes)


def fsim_circuit(rows: int, cols: int, depth: int, rng: random.Random) -> Any:
    """A quimb ``Circuit`` of a Sycamore-style random circuit on a rows x cols grid.

    Each layer: a random sqrt(X), sqrt(Y) or sqrt(W) on every qubit, then
    fSim(pi/2, pi/6) on one of four edge patterns (cycled ABCD), as in
    Google's supremacy circuits. quimb's own generators are 1-D (paths of
    width 2^14 at this depth: no test of a planner) or all-to-all (2^65).
    """
    import quimb.tensor as qtn

    q = lambda r, c: r * cols + c  # noqa: E731
    patterns = []
    for parity in (0, 1):
        patterns.append([(q(r, c), q(r, c + 1)) for r in range(rows) for c in range(cols - 1)
                         if (r + c) % 2 == parity])
        patterns.append([(q(r, c), q(r + 1, c)) for r in range(rows - 1) for c in range(cols)
                         if (r + c) % 2 == parity])
    circ = qtn.Circuit(rows * cols)
    for layer in range(depth):
        for i in range(rows * cols):
            circ.apply_gate(rng.choice(["X_1_2", "Y_1_2", "W_1_2"]), i)
        for a, b in patterns[layer % 4]:
            circ.apply_gate("FSIM", math.pi / 2, math.pi / 6, a, b)
    return circ


def grid_circuit(rows: int, cols: int, depth: int, seed: int = 0) -> Network:
    """<0...0|C|0...0> of :func:`fsim_circuit`, simplified with ``full_simplify``
    as cotengra's docs do."""
    circ = fsim_circuit(rows, cols, depth, random.Random(seed))
    tn = circ.amplitude_tn("0" * circ.N)
    tn.full_simplify_(output_inds=[])
    return _extract(tn)


def peps_norm(side: int, bond: int) -> Network:
    import quimb.tensor as qtn

    return _extract(qtn.PEPS.rand(side, side, bond_dim=bond, seed=0).make_norm())


def mera_norm(sites: int, bond: int) -> Network:
    import quimb.tensor as qtn

    mera = qtn.MERA.rand(sites, max_bond=bond)
    return _extract(mera.H & mera)


def mps_mpo(sites: int, bond: int) -> Network:
    """<psi|H|psi>: a random MPS of bond ``bond`` around the Heisenberg MPO."""
    import quimb.tensor as qtn

    ket = qtn.MPS_rand_state(sites, bond, seed=0).reindex_sites("b{}")
    bra = qtn.MPS_rand_state(sites, bond, seed=1).H
    mpo = qtn.MPO_ham_heis(sites, upper_ind_id="k{}", lower_ind_id="b{}")
    return _extract(bra & mpo & ket)


def regular(n: int, seed: int = 0) -> Network:
    import quimb.tensor as qtn

    return _extract(qtn.TN_rand_reg(n, 3, D=2, seed=seed))


def lattice(side: int) -> Network:
    import quimb.tensor as qtn

    return _extract(qtn.TN2D_rand(side, side, D=2, seed=0))


def networks(quick: bool) -> list[tuple[str, Callable[[], Network], set[str]]]:
    """(name, builder, planners skipped) for every row, in table order."""
    if quick:
        return [("random circuit 36 qubits, depth 12", lambda: grid_circuit(6, 6, 12), set()),
                ("PEPS 6x6, bond 4, norm", lambda: peps_norm(6, 4), set()),
                ("3-regular, 200 tensors", lambda: regular(200), set()),
                ("16x16 lattice, bond 2", lambda: lattice(16), set())]
    big = {"auto-hq", "cotengra HyperOptimizer", "cotengra RandomGreedy(128)"}
    return [
        ("random circuit 56 qubits, depth 14", lambda: grid_circuit(7, 8, 14), set()),
        ("random circuit 36 qubits, depth 12", lambda: grid_circuit(6, 6, 12), set()),
        ("PEPS 8x8, bond 4, norm", lambda: peps_norm(8, 4), set()),
        ("PEPS 6x6, bond 4, norm", lambda: peps_norm(6, 4), set()),
        ("MERA 64 sites, bond 8, norm", lambda: mera_norm(64, 8), set()),
        ("MPS-MPO-MPS 64 sites, bond 32", lambda: mps_mpo(64, 32), set()),
        ("3-regular, 50 tensors", lambda: regular(50), set()),
        ("3-regular, 200 tensors", lambda: regular(200), set()),
        ("3-regular, 1000 tensors", lambda: regular(1000), set()),
        ("3-regular, 2000 tensors", lambda: regular(2000), set()),
        ("8x8 lattice, bond 2", lambda: lattice(8), set()),
        ("16x16 lattice, bond 2", lambda: lattice(16), set()),
        ("32x32 lattice, bond 2", lambda: lattice(32), set()),
        ("3-regular, 10000 tensors", lambda: regular(10_000), big),
    ]


# --- planners -----------------------------------------------------------------

def _ours(name: str) -> Callable[[list, frozenset, dict], Path]:
    """contract's pure path function for ``optimize=name`` (wherever it lives)."""
    try:
        from contract.planner.optimizers import OPTIMIZERS
    except ImportError:
        from contract.plan import OPTIMIZERS  # the layout before the planner/ move
    fn = OPTIMIZERS[name]
    return lambda inputs, output, sizes: fn(inputs, output, sizes, None)


def planners(hyper_seconds: float) -> dict[str, Callable[[list, frozenset, dict], Path]]:
    import cotengra as ctg

    def tuples(inputs: list) -> list[tuple]:
        return [tuple(sorted(t, key=str)) for t in inputs]

    def random_greedy(inputs: list, output: frozenset, sizes: dict) -> Path:
        opt = ctg.RandomGreedyOptimizer(max_repeats=128, seed=0, parallel=False)
        return opt(tuples(inputs), tuple(output), sizes)

    def hyper(inputs: list, output: frozenset, sizes: dict) -> Path:
        opt = ctg.HyperOptimizer(max_time=hyper_seconds, parallel=False, progbar=False)
        return opt(tuples(inputs), tuple(output), sizes)

    def greedy(inputs: list, output: frozenset, sizes: dict) -> Path:
        return opt_einsum.paths.greedy(inputs, output, sizes)

    return {"auto": _ours("auto"), "auto-hq": _ours("auto-hq"),
            "cotengra RandomGreedy(128)": random_greedy,
            "cotengra HyperOptimizer": hyper, "opt_einsum greedy": greedy}


def _cell(r: tuple[float, float, float] | None) -> str:
    if r is None:
        return "-"
    f, w, t = r
    return f"{f:.2f} · 2^{w:.0f} · {t:.2f} s"


def _peak_rss_of_auto(quick: bool) -> str:
    """Plan the 10,000-tensor row with ``auto`` in a child process and report
    its planning time and the growth of its peak resident memory."""
    code = ("import resource, time; from bench.planner_bench import regular, _ours\n"
            "net = regular(10_000); base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "t = time.perf_counter(); _ours('auto')(*net)\n"
            "print(time.perf_counter() - t, "
            "(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if out.returncode:
        return f"failed: {out.stderr.strip().splitlines()[-1:]}"
    t, mib = out.stdout.split()[-2:]
    return f"{float(t):.2f} s, peak memory +{float(mib):.0f} MiB"


# --- auto at 10,000 and 100,000 tensors (--scale) -----------------------------

def scale_planners() -> dict[str, Callable[[list, frozenset, dict], Path]]:
    """The planners of the ``--scale`` table, as path functions."""
    import cotengrust
    from contract.planner.optimizers import OPTIMIZERS
    from contract.planner.optimizers.greedy import greedy_tree
    from contract.planner.optimizers.graph import Graph
    from contract.planner.optimizers.paths import linear_path

    def auto(inputs: list, output: frozenset, sizes: dict) -> Path:
        return OPTIMIZERS["auto"](inputs, output, sizes, None)

    def greedy(inputs: list, output: frozenset, sizes: dict) -> Path:
        return linear_path(greedy_tree(Graph(inputs, output, sizes)), len(inputs))

    def rust(inputs: list, output: frozenset, sizes: dict) -> Path:
        # One character per label, past the surrogates (Rust chars); labels
        # and terms in a fixed order.
        symbol = {l: chr(0xE000 + k) for k, l in enumerate(sorted(sizes, key=str))}
        return cotengrust.optimize_greedy(
            [tuple(symbol[l] for l in sorted(t, key=str)) for t in inputs],
            tuple(symbol[l] for l in output), {symbol[l]: d for l, d in sizes.items()})

    return {"auto": auto, "opt_einsum greedy": greedy, "cotengrust greedy": rust}


_SCALE_CHILD = """
import json, pickle, resource, sys, time
from bench.planner_bench import scale_planners
from tests._helpers import ring_graph
n, name, dump = int(sys.argv[1]), sys.argv[2], sys.argv[3]
fn = scale_planners()[name]
inputs, sizes = ring_graph(n, 0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
path = fn(inputs, frozenset(), sizes)
seconds = time.perf_counter() - start
mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
with open(dump, "wb") as f:
    pickle.dump([tuple(map(int, e)) for e in path], f)
print(json.dumps({"seconds": seconds, "mib": mib}))
"""


def scale_table() -> None:
    """The ``--scale`` table: see the module docstring."""
    import pickle
    import tempfile

    from tests._helpers import ring_graph

    inputs, sizes = ring_graph(1000, 0)
    same = scale_planners()["opt_einsum greedy"](inputs, frozenset(), sizes)
    theirs = opt_einsum.paths.greedy(inputs, frozenset(), sizes)
    if recount(inputs, frozenset(), sizes, same) != recount(inputs, frozenset(), sizes, theirs):
        raise AssertionError("the greedy port differs from opt_einsum's greedy on 1,000 tensors")
    if recount_wide(inputs, frozenset(), sizes, same) != recount(inputs, frozenset(), sizes, same):
        raise AssertionError("recount_wide differs from recount on 1,000 tensors")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"### auto on random 3-regular graphs ({machine()}; opt_einsum {opt_einsum.__version__})\n")
    print("Cells: log10 FLOPs · planning time · peak memory over the process after building "
          "the network, each planner in a fresh process; FLOPs recounted from each path.\n")
    names = list(scale_planners())
    print("| tensors | " + " | ".join(names) + " | auto vs the better greedy |")
    print("|---|" + "---|" * (len(names) + 1), flush=True)
    for n in (10_000, 100_000):
        inputs, sizes = ring_graph(n, 0)
        cells, flops = [], {}
        for name in names:
            with tempfile.NamedTemporaryFile(suffix=".pkl") as dump:
                out = subprocess.run([sys.executable, "-c", _SCALE_CHILD, str(n), name, dump.name],
                                     capture_output=True, text=True, cwd=root)
                if out.returncode:
                    cells.append(f"failed: {out.stderr.strip().splitlines()[-1:]}")
                    continue
                info = json.loads(out.stdout.strip().splitlines()[-1])
                with open(dump.name, "rb") as f:
                    path = pickle.load(f)
            flops[name] = math.log10(recount_wide(inputs, frozenset(), sizes, path)[0])
            cells.append(f"{flops[name]:.2f} · {info['seconds']:.2f} s · +{info['mib']:.0f} MiB")
        best = min(flops.get("opt_einsum greedy", math.inf), flops.get("cotengrust greedy", math.inf))
        verdict = f"Δ{flops['auto'] - best:+.2f}" if "auto" in flops else "-"
        print(f"| {n:,} | " + " | ".join(cells) + f" | {verdict} |", flush=True)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--hyper-seconds", type=float, default=60.0,
                   help="cap on cotengra HyperOptimizer's search (default 60 s)")
    p.add_argument("--only", default="", help="comma-separated substrings of row names to run")
    p.add_argument("--scale", action="store_true",
                   help="only auto against both greedies at 10,000 and 100,000 tensors")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    if args.scale:
        scale_table()
        return
    import cotengra as ctg
    import cotengrust  # noqa: F401  (RandomGreedyOptimizer's accel; fail early without it)
    import kahypar  # noqa: F401
    import quimb

    hyper_seconds = min(args.hyper_seconds, 10.0) if args.quick else args.hyper_seconds
    fns = planners(hyper_seconds)
    names = list(fns)
    print(f"### Planners on tensor networks ({machine()}; cotengra {ctg.__version__}, "
          f"quimb {quimb.__version__}, opt_einsum {opt_einsum.__version__}; "
          f"HyperOptimizer capped at {hyper_seconds:g} s)\n")
    print("Cells: log10 FLOPs · largest intermediate · planning time, recounted from each path.\n")
    head = ["network (tensors)"] + names + ["auto ≤ RG128 flops & time", "auto-hq vs Hyper"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head), flush=True)
    rows = networks(args.quick)
    if args.only:
        keys = args.only.split(",")
        rows = [r for r in rows if any(k in r[0] for k in keys)]
    for label, build, skip in rows:
        net = build()
        res: dict[str, tuple[float, float, float] | None] = {}
        for name in names:
            if name in skip:
                res[name] = None
                continue
            start = time.perf_counter()
            path = fns[name](*net)
            seconds = time.perf_counter() - start
            flops, big = recount(*net, path)
            if len(net[0]) <= 300:
                _check_recount(net, path, flops)
            res[name] = (math.log10(flops), math.log2(max(big, 1)), seconds)
        a, rg = res["auto"], res["cotengra RandomGreedy(128)"]
        hq, hy = res["auto-hq"], res["cotengra HyperOptimizer"]
        goal1 = "-" if rg is None else (
            f"{'yes' if a[0] <= rg[0] + 1e-9 and a[2] <= rg[2] else 'NO'} "
            f"(Δ{a[0] - rg[0]:+.2f}, ×{a[2] / rg[2]:.2f} time)")
        goal2 = "-" if hy is None or hq is None else (
            f"{'yes' if hq[0] <= hy[0] + 1e-9 and hq[1] <= hy[1] and hq[2] <= hy[2] / 10 else 'NO'}"
            f" (Δ{hq[0] - hy[0]:+.2f}, width {hq[1] - hy[1]:+.0f}, ×{hq[2] / hy[2]:.2f} time)")
        cells = [f"{label} ({len(net[0])})"] + [_cell(res[k]) for k in names] + [goal1, goal2]
        print("| " + " | ".join(cells) + " |", flush=True)
    if not args.quick and not args.only:
        print(f"\n10,000-tensor row, `auto` alone in a fresh process: {_peak_rss_of_auto(False)}.")


if __name__ == "__main__":
    main()
