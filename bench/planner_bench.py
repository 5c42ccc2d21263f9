"""Planner quality and speed on random 3-regular graphs (bond dimension 2).

For each graph: path cost (sum over steps of the product of the sizes of the
labels involved) and planning time of contract's ``auto``, ``auto-hq`` and
``greedy``, opt_einsum's ``random-greedy-128`` and, when installed,
cotengra's default ``HyperOptimizer``. The ratio columns are cost / the best
cost found by any planner on that graph (1.00 = best); the last two columns
and the closing line set auto-hq against cotengra (below 1: auto-hq is
cheaper or faster).

    python -m bench.planner_bench            # n = 50, 100, 150, 200; 3 seeds
    python -m bench.planner_bench --quick    # n = 50; 1 seed; cotengra 16 trials
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable

import opt_einsum
from opt_einsum import path_random

from bench.common import machine, parser
from contract.hq import optimize as hq
from contract.plan import OPTIMIZERS, path_cost


def regular_graph(n: int, degree: int, seed: int) -> list[frozenset]:
    """A random simple ``degree``-regular graph as einsum terms (one label per
    edge), by the configuration model with restarts."""
    rng = random.Random(seed)
    while True:
        stubs = [v for v in range(n) for _ in range(degree)]
        rng.shuffle(stubs)
        edges = {tuple(sorted(stubs[k : k + 2])) for k in range(0, len(stubs), 2)}
        if len(edges) == len(stubs) // 2 and all(u != v for u, v in edges):
            break
    legs: list[set] = [set() for _ in range(n)]
    for e, (u, v) in enumerate(sorted(edges)):
        legs[u].add(opt_einsum.get_symbol(e))
        legs[v].add(opt_einsum.get_symbol(e))
    return [frozenset(t) for t in legs]


def _cotengra(repeats: int) -> Callable | None:
    try:
        import cotengra as ctg
    except ImportError:
        return None

    def run(inputs: list[frozenset], output: frozenset, sizes: dict) -> Any:
        # parallel=False keeps the hyper-optimizer's trials in this process;
        # its inner random-greedy steps still use cotengra's own process pool
        # over every core (its default), so its times here use both cores
        # where auto-hq uses one.
        opt = ctg.HyperOptimizer(max_repeats=repeats, parallel=False, progbar=False)
        return opt([tuple(sorted(t)) for t in inputs], tuple(output), sizes)

    return run


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="", help="comma-separated graph sizes (default 50,100,150,200)")
    p.add_argument("--seeds", default="", help="comma-separated seeds (default 0,1,2)")
    args = p.parse_args()
    import warnings

    warnings.filterwarnings("ignore", message=".*kahypar.*")
    ns, seeds = ((50,), (0,)) if args.quick else ((50, 100, 150, 200), (0, 1, 2))
    if args.sizes:
        ns = tuple(int(v) for v in args.sizes.split(","))
    if args.seeds:
        seeds = tuple(int(v) for v in args.seeds.split(","))
    planners: dict[str, Callable | None] = {
        "auto": OPTIMIZERS["auto"],
        "greedy": opt_einsum.paths.greedy,
        "random-greedy-128": path_random.random_greedy_128,
        "auto-hq": hq,
        "cotengra": _cotengra(16 if args.quick else 128),
    }
    names = [k for k, v in planners.items() if v is not None]
    print(f"### Planner comparison: random 3-regular graphs, bond dimension 2 ({machine()})\n")
    if planners["cotengra"] is None:
        print("cotengra is not installed: its column is missing.\n")
    vs = "cotengra" in names  # the yardstick: auto-hq against cotengra
    head = ["graph"] + [f"{k} cost ratio" for k in names] + [f"{k} time" for k in names]
    head += ["auto-hq / cotengra cost", "auto-hq / cotengra time"] if vs else []
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    against: list[tuple[float, float]] = []
    for n in ns:
        for seed in seeds:
            inputs = regular_graph(n, 3, seed)
            sizes = {l: 2 for t in inputs for l in t}
            costs, times = {}, {}
            for name in names:
                start = time.perf_counter()
                path = planners[name](inputs, frozenset(), sizes, None) if name != "cotengra" \
                    else planners[name](inputs, frozenset(), sizes)
                times[name] = time.perf_counter() - start
                costs[name] = path_cost(inputs, frozenset(), sizes, path)
            best = min(costs.values())
            cells = [f"n={n} seed={seed} (best 2^{math.log2(best):.1f})"]
            cells += [f"{costs[k] / best:.2f}" for k in names]
            cells += [f"{times[k]:.2f} s" for k in names]
            if vs:
                against.append((costs["auto-hq"] / costs["cotengra"],
                                times["auto-hq"] / times["cotengra"]))
                cells += [f"{against[-1][0]:.2f}", f"{against[-1][1]:.3f}"]
            print("| " + " | ".join(cells) + " |", flush=True)
    if against:
        geo = [math.exp(sum(math.log(a[i]) for a in against) / len(against)) for i in (0, 1)]
        print(f"\nauto-hq / cotengra over {len(against)} graphs: cost {geo[0]:.2f} (geometric "
              f"mean; worst {max(a[0] for a in against):.2f}), time {geo[1]:.3f} (worst "
              f"{max(a[1] for a in against):.3f}).")


if __name__ == "__main__":
    main()
