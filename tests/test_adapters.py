"""contract.optimizer: our planners as opt_einsum PathOptimizers that opt_einsum,
cotengra and numpy accept and execute correctly, with the cost our plans
report; cotengra's objectives (minimize=); progress bars and time budgets."""

from __future__ import annotations

import math
import random
import warnings

import cotengra
import numpy as np
import opt_einsum
import pytest
from opt_einsum.paths import PathOptimizer

import contract
from contract.planner.optimizers import OPTIMIZERS
from contract.planner.optimizers.adapter import AutoHQOptimizer, ContractOptimizer
from contract.planner.optimizers.anneal import anneal
from contract.planner.optimizers.objective import Objective, parse_minimize
from contract.planner.optimizers.paths import linear_path
from contract.planner.optimizers.tree import Legs, Net, tree_totals
from tests._helpers import ring_graph

OURS = ["auto", "auto-hq", "annealed-greedy"]
OBJECTIVES = ["flops", "size", "write", "combo"]


def _lattice(side: int, bond: int) -> tuple[str, list[tuple[int, ...]]]:
    """A closed ``side x side`` lattice as an einsum spec, labels named by
    opt_einsum's symbols in order of first appearance (as contract.plan names
    them, so both search the same network), every label on two tensors."""
    names: dict[tuple, str] = {}

    def edge(a: tuple, b: tuple) -> str:
        return names.setdefault((min(a, b), max(a, b)), opt_einsum.get_symbol(len(names)))

    terms = []
    for i in range(side):
        for j in range(side):
            nbrs = [(i + di, j + dj) for di, dj in ((-1, 0), (0, -1), (0, 1), (1, 0))
                    if 0 <= i + di < side and 0 <= j + dj < side]
            terms.append("".join(edge((i, j), n) for n in nbrs))
    return ",".join(terms) + "->", [(bond,) * len(t) for t in terms]


def _network(seed: int) -> tuple[str, list[np.ndarray]]:
    """14 tensors with open legs, hyperedges and varied sizes (past dp's range,
    so 'auto' anneals): values small enough to compare to numpy.einsum."""
    rng = np.random.default_rng(seed)
    letters = [opt_einsum.get_symbol(i) for i in range(12)]
    terms = ["".join(rng.choice(letters, size=int(rng.integers(1, 4)), replace=False))
             for _ in range(14)]
    used = sorted(set("".join(terms)))
    output = "".join(l for l in used if rng.random() < 0.2)
    sizes = {l: int(rng.integers(1, 4)) for l in letters}
    spec = ",".join(terms) + "->" + output
    return spec, [rng.standard_normal([sizes[l] for l in t]) for t in terms]


def _recount(inputs, output, sizes, path) -> tuple[float, float, float]:
    """(FLOPs, write, largest intermediate) of a linear path, counted from
    scratch (cotengra's units: a step costs the product of its labels)."""
    live, flops, write, biggest = list(inputs), 0.0, 0.0, 0.0
    for entry in path:
        picked = [live[i] for i in entry]
        live = [t for i, t in enumerate(live) if i not in entry]
        union = frozenset().union(*picked)
        keep = frozenset(l for l in union if l in output or any(l in t for t in live))
        flops += math.prod(sizes[l] for l in union)
        out = math.prod(sizes[l] for l in keep)
        write, biggest = write + out, max(biggest, out)
        live.append(keep)
    assert len(live) == 1
    return flops, write, biggest


@pytest.mark.parametrize("minimize", OBJECTIVES)
@pytest.mark.parametrize("name", OURS)
def test_opt_einsum_cotengra_and_numpy_execute_our_paths(name, minimize):
    opt = contract.optimizer(name, minimize=minimize)
    assert isinstance(opt, PathOptimizer)
    spec, arrays = _network(seed=len(name))
    expected = np.einsum(spec, *arrays)
    np.testing.assert_allclose(opt_einsum.contract(spec, *arrays, optimize=opt), expected,
                               rtol=1e-10, atol=1e-12)
    lhs, out = spec.split("->")
    got = cotengra.array_contract(arrays, [tuple(t) for t in lhs.split(",")], tuple(out),
                                  optimize=opt)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    path = opt.einsum_path(spec, *arrays)
    assert path[0] == "einsum_path" and len(path) == 14
    np.testing.assert_allclose(np.einsum(spec, *arrays, optimize=path), expected,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", OURS)
def test_paths_and_costs_equal_those_our_plan_reports(name):
    spec, shapes = _lattice(5, bond=3)
    opt = contract.optimizer(name, seed=2)
    path, info = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=opt)
    plan = contract.plan(spec, *shapes, optimize=opt)
    assert plan.path == tuple(path)
    assert plan.flops == int(info.opt_cost)
    assert max(s.size for s in plan.steps) == info.largest_intermediate


def test_cotengra_reports_the_cost_we_count():
    spec, shapes = _lattice(4, bond=2)
    lhs = spec.split("->")[0].split(",")
    inputs = [frozenset(t) for t in lhs]
    sizes = {l: 2 for t in lhs for l in t}
    for minimize in OBJECTIVES:
        path = contract.optimizer("auto-hq", minimize=minimize)(inputs, frozenset(), sizes)
        tree = cotengra.ContractionTree.from_path([tuple(t) for t in lhs], (), sizes, path=path)
        flops, write, biggest = _recount(inputs, frozenset(), sizes, path)
        assert (tree.total_flops(), tree.total_write(), tree.max_size()) == (flops, write, biggest)


def test_defaults_reproduce_the_named_optimizers():
    inputs, sizes = ring_graph(40, seed=1)
    for name in OURS:
        assert contract.optimizer(name)(inputs, frozenset(), sizes) == \
            [tuple(e) for e in OPTIMIZERS[name](inputs, frozenset(), sizes, None)]
    # opt_einsum's own names come through too.
    assert contract.optimizer("greedy")(inputs, (), sizes) == \
        opt_einsum.paths.greedy(inputs, frozenset(), sizes)


def test_each_objective_wins_on_what_it_minimises():
    inputs, sizes = ring_graph(80, seed=3)
    counts = {m: _recount(inputs, frozenset(), sizes,
                          contract.optimizer("auto-hq", minimize=m, seed=3)(inputs, (), sizes))
              for m in OBJECTIVES}
    flops, write, size = counts["flops"]
    # auto-hq's FLOPs search narrows its tree too (hq.narrowed): here it
    # reaches 2^13 as "size" does ("write" finds 2^12).
    assert counts["size"][2] <= size
    assert counts["write"][1] < write
    combo = {m: f + 64 * w for m, (f, w, _) in counts.items()}
    assert combo["combo"] < combo["flops"]
    assert counts["flops"][0] == min(f for f, _, _ in counts.values())
    # The others trade FLOPs for their objective; they do not give them up.
    assert all(f < flops * 2**6 for f, _, _ in counts.values())


def test_annealing_by_an_objective_never_raises_it():
    inputs, sizes = ring_graph(60, seed=4)
    net = Net(inputs, frozenset(), sizes)
    rng = random.Random(0)
    nodes: list = list(range(60))
    while len(nodes) > 1:
        nodes.append((nodes.pop(rng.randrange(len(nodes))), nodes.pop(rng.randrange(len(nodes)))))
    start = nodes[0]
    for minimize in OBJECTIVES:
        objective = parse_minimize(minimize)
        tree = anneal(net, start, 100 * 60, math.inf, random.Random(1), objective=objective)
        # The totals kept while annealing equal a count from scratch ...
        assert tree_totals(net, tree) == pytest.approx(
            _recount(inputs, frozenset(), sizes, linear_path(tree, 60)))
        # ... and the objective's own (local) total never rises.
        assert _local_total(net, objective, tree) <= _local_total(net, objective, start)


def _local_total(net, objective, tree) -> float:
    legs, total, stack = Legs(net), 0.0, [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, int):
            total += objective.node(net.size(legs(node[0]) | legs(node[1])), net.size(legs(node)))
            stack += [node[0], node[1]]
    return total


def test_minimize_threads_through_contract_plan():
    spec, shapes = _lattice(4, bond=2)
    by_flops = contract.plan(spec, *shapes, optimize=contract.optimizer("auto-hq"))
    by_size = contract.plan(spec, *shapes, optimize=contract.optimizer("auto-hq", minimize="size"))
    assert max(s.size for s in by_size.steps) <= max(s.size for s in by_flops.steps)
    assert by_size.path != by_flops.path or by_size.flops == by_flops.flops
    x = [np.random.default_rng(0).standard_normal(s) for s in shapes]
    np.testing.assert_allclose(
        float(contract.einsum(spec, *[a.astype(np.float32) for a in x],
                              optimize=contract.optimizer("auto-hq", minimize="write"))),
        np.einsum(spec, *x), rtol=1e-4)


def test_optimizers_compare_by_settings_so_plans_are_cached():
    assert contract.optimizer("auto-hq") == AutoHQOptimizer()
    assert hash(contract.optimizer("Auto-HQ", progress=True)) == hash(AutoHQOptimizer())
    assert contract.optimizer("auto-hq", seed=1) != contract.optimizer("auto-hq")
    assert contract.optimizer("auto-hq", minimize="combo") == \
        contract.optimizer("auto-hq", minimize="combo-64")
    assert contract.optimizer("auto", minimize="size") != contract.optimizer("auto-hq", minimize="size")
    assert repr(contract.optimizer("auto", minimize="combo-128", seed=3, max_time=5)) == \
        "AutoOptimizer(minimize='combo-128', seed=3, max_time=5)"
    spec, shapes = _lattice(3, bond=2)
    first = contract.plan(spec, *shapes, optimize=contract.optimizer("auto-hq"))
    again = contract.plan(spec, *shapes, optimize=contract.optimizer("auto-hq", progress=True))
    assert again == first and again.planning_seconds == first.planning_seconds  # not re-planned


def test_progress_draws_one_bar_per_chain_and_changes_nothing(capsys):
    inputs, sizes = ring_graph(60, seed=2)
    quiet = contract.optimizer("auto-hq", minimize="size")(inputs, (), sizes)
    capsys.readouterr()
    loud = contract.optimizer("auto-hq", minimize="size", progress=True)(inputs, (), sizes)
    err = capsys.readouterr().err
    assert loud == quiet
    chains = int(err.split("auto-hq chain 1/")[1].split(" ")[0])
    assert chains > 1 and err.count("\n") == chains
    for c in range(1, chains + 1):
        assert f"auto-hq chain {c}/{chains} [{'#' * 24}] 100%" in err
    contract.optimizer("auto", progress=True)(inputs, (), sizes)
    assert "annealed-greedy chain 1/1" in capsys.readouterr().err


def test_max_time_is_a_fuse_that_warns_and_still_gives_a_valid_path():
    inputs, sizes = ring_graph(300, seed=0)
    for name in ("auto-hq", "annealed-greedy"):
        with pytest.warns(UserWarning, match="time fuse stopped the search early.*max_time="):
            path = contract.optimizer(name, max_time=1e-3)(inputs, (), sizes)
        _recount(inputs, frozenset(), sizes, path)  # valid: reduces to one tensor
    # A generous budget does not fire and does not change the path.
    small, small_sizes = ring_graph(40, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert contract.optimizer("auto-hq", max_time=300)(small, (), small_sizes) == \
            contract.optimizer("auto-hq")(small, (), small_sizes)


def test_bad_settings_say_what_is_valid():
    with pytest.raises(contract.ContractError, match="unknown optimizer 'fastest'.*'auto-hq'"):
        contract.optimizer("fastest")
    with pytest.raises(contract.ContractError, match="unknown minimize='time'.*'write'"):
        contract.optimizer("auto-hq", minimize="time")
    with pytest.raises(contract.ContractError, match="'greedy' .*does not take minimize"):
        contract.optimizer("greedy", minimize="size")
    with pytest.raises(contract.ContractError, match="max_time must be a positive"):
        contract.optimizer("auto", max_time=0)
    with pytest.raises(contract.ContractError, match="seed must be an int"):
        contract.optimizer("auto", seed=1.5)
    assert isinstance(contract.optimizer("dp", minimize="write"), ContractOptimizer)
    assert parse_minimize("COMBO-2.5") == Objective("combo", 2.5)


def test_plans_name_their_optimizer_and_ours_are_cached_on_disk(tmp_path):
    spec, shapes = _lattice(3, bond=3)
    contract.set_cache_dir(tmp_path)
    try:
        ours = contract.optimizer("auto-hq", minimize="size", seed=2, progress=True)
        p = contract.plan(spec, *shapes, optimize=ours)
        assert p.optimize == "AutoHQOptimizer(minimize='size', seed=2)"  # progress: not a setting
        assert len(list(tmp_path.glob("*.json"))) == 1
        contract.clear_caches(disk=False)
        again = contract.plan(spec, *shapes, optimize=contract.optimizer(
            "auto-hq", minimize="size", seed=2))
        assert again == p and again.planning_seconds == p.planning_seconds  # read from disk
        # cotengra's optimizers have no stable description: memory only.
        theirs = contract.plan(spec, *shapes, optimize=cotengra.RandomGreedyOptimizer(
            max_repeats=4, seed=0, parallel=False))
        assert theirs.optimize == "cotengra.RandomGreedyOptimizer"
        assert len(list(tmp_path.glob("*.json"))) == 1
    finally:
        contract.set_cache_dir(None)
