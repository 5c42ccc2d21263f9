"""The ``auto`` and ``auto-hq`` planners on network classes built here without
quimb: random 3-regular graphs, 2-D lattices, circuit-like hypergraphs, an
MPS-MPO chain with mixed bond sizes. Paths are valid, the planners' own tree
costs equal an independent recount, ``auto`` never loses to greedy, plans are
the same in processes with different hash seeds, and the pure-Python
fallback (no cotengrust) still plans."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from collections import Counter

import opt_einsum
import pytest

import contract
from contract.planner.optimizers import OPTIMIZERS, hq, sampled, starts
from contract.planner.optimizers.paths import tree_of_linear
from contract.planner.optimizers.tree import Net, tree_flops

Network = tuple[list[frozenset], frozenset, dict]


def regular(n: int, seed: int = 0) -> Network:
    """A random simple 3-regular graph, bond 2 (configuration model)."""
    rng = random.Random(seed)
    while True:
        stubs = [v for v in range(n) for _ in range(3)]
        rng.shuffle(stubs)
        edges = {tuple(sorted(stubs[k : k + 2])) for k in range(0, len(stubs), 2)}
        if len(edges) == len(stubs) // 2 and all(u != v for u, v in edges):
            break
    legs: list[set] = [set() for _ in range(n)]
    for e, (u, v) in enumerate(sorted(edges)):
        legs[u].add(f"e{e}")
        legs[v].add(f"e{e}")
    return [frozenset(t) for t in legs], frozenset(), {f"e{e}": 2 for e in range(len(edges))}


def lattice(side: int, bond: int = 2) -> Network:
    legs: list[set] = [set() for _ in range(side * side)]
    for r in range(side):
        for c in range(side):
            if c + 1 < side:
                legs[r * side + c].add(f"h{r},{c}")
                legs[r * side + c + 1].add(f"h{r},{c}")
            if r + 1 < side:
                legs[r * side + c].add(f"v{r},{c}")
                legs[(r + 1) * side + c].add(f"v{r},{c}")
    sizes = {l: bond for t in legs for l in t}
    return [frozenset(t) for t in legs], frozenset(), sizes


def circuit(qubits: int, depth: int, seed: int = 0) -> Network:
    """A simplified CZ circuit's amplitude: every wire segment between
    two-qubit gates is one hyperedge held by every diagonal gate on it."""
    rng = random.Random(seed)
    wire = [f"w{q}.0" for q in range(qubits)]
    tensors: list[set] = [{w} for w in wire]  # the |0> states
    count = 0
    for layer in range(depth):
        order = list(range(qubits))
        rng.shuffle(order)
        for a, b in zip(order[::2], order[1::2]):
            if rng.random() < 0.5:  # a non-diagonal gate opens a new segment
                count += 1
                new = f"w{a}.{count}"
                tensors.append({wire[a], new})
                wire[a] = new
            tensors.append({wire[a], wire[b]})  # CZ: diagonal, shares both segments
    tensors += [{w} for w in wire]  # <0| at the end
    sizes = {l: 2 for t in tensors for l in t}
    return [frozenset(t) for t in tensors], frozenset(), sizes


def mps_mpo(sites: int, bond: int = 8) -> Network:
    """<psi|H|psi> on an open chain: MPS bond ``bond``, MPO bond 5, physical 2."""
    def chain(bond_label: str, i: int) -> set:
        return ({f"{bond_label}{i - 1}"} if i else set()) | \
            ({f"{bond_label}{i}"} if i < sites - 1 else set())

    tensors = []
    for i in range(sites):
        tensors += [{f"p{i}"} | chain("a", i), {f"q{i}"} | chain("c", i),
                    {f"p{i}", f"q{i}"} | chain("m", i)]
    sizes = {l: {"a": bond, "c": bond, "m": 5}.get(l[0], 2) for t in tensors for l in t}
    return [frozenset(t) for t in tensors], frozenset(), sizes


CASES = {"regular-60": lambda: regular(60), "lattice-8": lambda: lattice(8),
         "circuit-12x8": lambda: circuit(12, 8), "mps-mpo-12": lambda: mps_mpo(12)}


def recount(inputs: list[frozenset], output: frozenset, sizes: dict, path) -> tuple[int, int]:
    """(sum over steps of the size of all labels touched, largest intermediate),
    checking that ``path`` is a complete opt_einsum linear path."""
    live = list(inputs)
    count = Counter(l for t in inputs for l in t)
    total = biggest = 0
    for entry in path:
        assert len(set(entry)) == len(entry) and all(0 <= i < len(live) for i in entry)
        picked = [live[i] for i in entry]
        live = [t for i, t in enumerate(live) if i not in entry]
        union = frozenset().union(*picked)
        for t in picked:
            count.subtract(t)
        keep = frozenset(l for l in union if l in output or count[l] > 0)
        count.update(keep)
        total += math.prod(sizes[l] for l in union)
        biggest = max(biggest, math.prod(sizes[l] for l in keep))
        live.append(keep)
    assert len(live) == 1
    return total, biggest


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("optimizer", ["auto", "auto-hq"])
def test_paths_are_valid_and_tree_costs_match_a_recount(name, optimizer):
    net = CASES[name]()
    path = OPTIMIZERS[optimizer](*net, None)
    flops, _ = recount(*net, path)
    tree = tree_of_linear(path, len(net[0]))
    assert tree_flops(Net(*net), tree) == pytest.approx(flops, rel=1e-9)


@pytest.mark.parametrize("name", sorted(CASES))
def test_auto_is_never_worse_than_greedy_nor_auto_hq_than_auto(name):
    net = CASES[name]()
    greedy = recount(*net, opt_einsum.paths.greedy(*net))[0]
    auto = recount(*net, OPTIMIZERS["auto"](*net, None))[0]
    assert auto <= greedy
    assert recount(*net, hq.optimize(*net))[0] <= auto * 1.0001


def test_auto_beats_greedy_by_far_on_a_regular_graph():
    net = regular(120, seed=3)
    greedy = recount(*net, opt_einsum.paths.greedy(*net))[0]
    assert recount(*net, OPTIMIZERS["auto"](*net, None))[0] < greedy / 30


def test_plan_flops_equal_opt_einsum_count_of_the_same_path():
    # Through the public entry point: the plan's cost convention is
    # opt_einsum's, recounted by opt_einsum itself on the plan's own path.
    inputs, _, sizes = lattice(5, bond=3)
    symbols = {l: opt_einsum.get_symbol(k) for k, l in enumerate(sorted(sizes))}
    spec = ",".join("".join(symbols[l] for l in sorted(t)) for t in inputs) + "->"
    shapes = [tuple(sizes[l] for l in sorted(t)) for t in inputs]
    plan = contract.plan(spec, *shapes)
    _, info = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=list(plan.path))
    assert plan.flops == int(info.opt_cost)


_SCRIPT = """
import sys; sys.path.insert(0, {root!r})
from contract.planner.optimizers import OPTIMIZERS
for terms, sizes in {nets!r}:
    net = [frozenset(t) for t in terms], frozenset(), sizes
    print(OPTIMIZERS["auto"](*net, None))
    print(OPTIMIZERS["auto-hq"](*net, None))
"""


def test_plans_are_the_same_in_processes_with_different_hash_seeds():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Terms in a scrambled order: set iteration order must not leak into plans.
    nets = [([sorted(t, reverse=True) for t in CASES[name]()[0]], CASES[name]()[2])
            for name in ("circuit-12x8", "mps-mpo-12")]
    procs = [subprocess.Popen([sys.executable, "-c", _SCRIPT.format(root=root, nets=nets)],
                              env=dict(os.environ, PYTHONHASHSEED=hash_seed), cwd=root,
                              stdout=subprocess.PIPE, text=True)
             for hash_seed in ("1", "2")]  # both at once: most of each is `import contract`
    runs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert runs[0] == runs[1] and runs[0].count("\n") == 4


def test_without_cotengrust_the_python_greedy_takes_over(monkeypatch):
    net = circuit(10, 6, seed=1)
    monkeypatch.setattr(starts, "cotengrust", None)
    path = OPTIMIZERS["auto"](*net, None)
    greedy = recount(*net, opt_einsum.paths.greedy(*net))[0]
    assert recount(*net, path)[0] <= greedy


def test_deep_trees_of_large_networks_do_not_recurse():
    # A 1,500-tensor chain: greedy trees are as deep as the chain is long.
    n = 1500
    inputs = [frozenset({f"c{i}", f"c{i + 1}"}) for i in range(n)]
    sizes = {f"c{i}": 2 for i in range(n + 1)}
    path = OPTIMIZERS["auto"](inputs, frozenset({"c0", f"c{n}"}), sizes, None)
    assert recount(inputs, frozenset({"c0", f"c{n}"}), sizes, path)[0] <= 8 * n


def test_auto_hq_plans_deep_trees_without_touching_the_recursion_limit(monkeypatch):
    # A closed 3,000-tensor chain: the tree auto-hq's first chain starts from
    # (cotengrust's best of 128 random greedy trials, seed 0) is 2,999 levels
    # deep, past Python's recursion limit, and every step walks it (the
    # reconfiguration included). Planning may not change process-wide state:
    # threads planning at once would restore each other's limit.
    n = 3000
    inputs = [frozenset({f"c{i}", f"c{i + 1}"}) for i in range(n)]
    output = frozenset()
    sizes = {f"c{i}": 2 for i in range(n + 1)}
    limit = sys.getrecursionlimit()
    depth, stack = 0, [(starts.random_greedy_trees(Net(inputs, output, sizes), 128, 0)[0], 0)]
    while stack:
        node, level = stack.pop()
        depth = max(depth, level)
        if not isinstance(node, int):
            stack += [(node[0], level + 1), (node[1], level + 1)]
    assert depth > limit

    def refuse(_: int) -> None:
        raise AssertionError("planning changed the recursion limit")

    monkeypatch.setattr(sys, "setrecursionlimit", refuse)
    path = hq.optimize(inputs, output, sizes, chains=1, moves=1)
    assert recount(inputs, output, sizes, path)[0] <= 8 * n
    assert sys.getrecursionlimit() == limit


def test_without_kahypar_auto_hq_bisects_in_python(monkeypatch):
    from contract.planner.optimizers import partition

    net = regular(60, seed=3)
    monkeypatch.setattr(partition, "kahypar", None)
    path = OPTIMIZERS["auto-hq"](*net, None)  # (may differ from the path made with kahypar)
    assert recount(*net, path)[0] <= recount(*net, opt_einsum.paths.greedy(*net))[0]
    assert path == OPTIMIZERS["auto-hq"](*net, None)  # still a pure function


def test_memory_limit_caps_the_largest_intermediate_of_annealed_plans():
    # 100-tensor 3-regular graph: auto's unconstrained path has a 2^17-element
    # intermediate; under half
    # that limit the search itself keeps below it.
    net = regular(100)
    free = recount(*net, hq.annealed_greedy(*net))
    limit = free[1] // 2
    assert limit >= 2**16
    for fn in (hq.annealed_greedy, hq.optimize):
        capped = recount(*net, fn(*net, limit))
        assert capped[1] <= limit
        assert capped[0] <= 16 * free[0]  # not bought with an absurd path
    # The same through opt_einsum's PathOptimizer contract and NumPy's pair.
    opt = contract.optimizer("auto")
    assert recount(*net, opt(*net, memory_limit=limit))[1] <= limit
    symbol = {l: opt_einsum.get_symbol(k) for k, l in enumerate(sorted(net[2]))}
    spec = ",".join("".join(symbol[l] for l in sorted(t)) for t in net[0]) + "->"
    shapes = [(2,) * len(t) for t in net[0]]
    plan = contract.plan(spec, *shapes, optimize=("auto", limit))
    assert max(s.size for s in plan.steps) <= limit


RANDOM_GREEDY = ["random-greedy", "random-greedy-128", "sampled-greedy"]


def _spec(net: Network) -> tuple[str, list[tuple[int, ...]]]:
    symbol = {l: opt_einsum.get_symbol(k) for k, l in enumerate(sorted(net[2]))}
    spec = ",".join("".join(symbol[l] for l in sorted(t)) for t in net[0]) + "->"
    return spec, [tuple(net[2][l] for l in sorted(t)) for t in net[0]]


def test_random_greedy_planners_neither_change_nor_read_the_global_random_state():
    # opt_einsum's RandomGreedy reseeds the global `random` on every trial;
    # ours draws from generators of its own: the caller's state survives
    # planning, and the plan is the same whatever that state was.
    net = lattice(5)
    spec, shapes = _spec(net)
    made = {}
    for seed in (1, 2):
        for name in RANDOM_GREEDY:
            random.seed(seed)
            state = random.getstate()
            contract.clear_caches(disk=False)
            plans = [contract.plan(spec, *shapes, optimize=name).path,
                     tuple(contract.optimizer(name)(*net))]
            if name != "sampled-greedy":  # minimize= runs RandomGreedy itself
                plans.append(tuple(contract.optimizer(name, minimize="size")(*net)))
            assert random.getstate() == state, name
            made.setdefault(name, []).append(plans)
    for name, (first, second) in made.items():
        assert first == second, name
        recount(*net, first[1])  # a valid path
    assert random.getstate() == state


_RANDOM_SCRIPT = """
import sys; sys.path.insert(0, {root!r})
from contract.planner.optimizers import OPTIMIZERS
net = [frozenset(t) for t in {terms!r}], frozenset(), {sizes!r}
for name in {names!r}:
    print(OPTIMIZERS[name](*net, None))
"""


def test_random_greedy_plans_are_the_same_in_processes_with_different_hash_seeds():
    # opt_einsum's greedy meets candidates in set iteration order: jitter
    # drawn in that order made its random greedy paths differ per process.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    terms, _, sizes = circuit(10, 6)
    script = _RANDOM_SCRIPT.format(root=root, terms=[sorted(t) for t in terms], sizes=sizes,
                                   names=RANDOM_GREEDY)
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=root, text=True,
                              env=dict(os.environ, PYTHONHASHSEED=hash_seed),
                              stdout=subprocess.PIPE)
             for hash_seed in ("1", "2")]
    runs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert runs[0] == runs[1] and runs[0].count("\n") == 3


def test_random_greedy_is_opt_einsums_search_and_as_good():
    # The same search (greedy trial 0, then Boltzmann choices among jittered
    # candidates); only where the jitter comes from differs.
    net = regular(40, seed=2)
    state = random.getstate()
    try:
        theirs = opt_einsum.path_random.RandomGreedy(max_repeats=32)(*net)
    finally:
        random.setstate(state)
    ours = sampled.RandomGreedy(max_repeats=32)(*net)
    greedy = recount(*net, opt_einsum.paths.greedy(*net))[0]
    assert recount(*net, ours)[0] <= min(greedy, 4 * recount(*net, theirs)[0])


def test_optimizer_and_optimize_accept_the_same_names_and_list_the_same_ones():
    import re

    from contract.planner.optimizers import ALIASES

    spec, shapes = "ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)]
    for alias, target in ALIASES.items():
        for name in (alias, alias.upper()):
            assert contract.optimizer(name) == contract.optimizer(target)
            assert (contract.plan(spec, *shapes, optimize=name).path
                    == contract.plan(spec, *shapes, optimize=target).path)
    assert contract.optimizer("opportunistic") == contract.optimizer("greedy")
    listed = []
    for make in (lambda: contract.optimizer("fastest"),
                 lambda: contract.plan(spec, *shapes, optimize="fastest")):
        with pytest.raises(contract.ContractError, match="unknown optimiz") as err:
            make()
        listed.append(set(re.findall(r"'([a-z0-9-]+)'", str(err.value))) - {"fastest"})
    # optimize= also takes "measure", which times candidates on this machine:
    # no PathOptimizer can (planning is pure).
    assert listed[1] == listed[0] | {"measure"}
    assert {*OPTIMIZERS, *ALIASES} == listed[0]
