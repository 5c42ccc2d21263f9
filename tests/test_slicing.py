"""The slice search (contract/planner/slicing.py, slicetree.py) on networks of
hundreds of tensors: sliced plans fit their budget, their FLOPs are an
independent recount, the incremental costs are slice_plan's exactly, the
search is never much worse than the rebuild-per-candidate greedy it replaced
(kept here as a reference), and plans are the same in every process.

Networks: 3-regular graphs and random circuit-like grids (rank-1 states,
rank-4 two-qubit gates), bond 2, built as ``bench/slicing_bench.py`` builds them.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import opt_einsum
import pytest

import contract
from contract.planner import Plan, SlicedPlan, fit, slice_plan
from contract.planner.costs import held, live_peak, prod
from contract.planner.optimizers import OPTIMIZERS
from contract.planner.slicetree import SliceCosts, divisors
from bench.slicing_bench import grid_circuit, regular_network
from tests._helpers import NETWORKS, operands


def _recount(plan: Plan | SlicedPlan) -> int:
    """FLOPs of all slices, replaying the path over label sets at one slice's
    sizes: each step the product of its labels' sizes, twice that when it
    sums a label away; each label on one operand only (not in the output)
    summed first, one add per element read."""
    one = plan.slice if isinstance(plan, SlicedPlan) else plan
    sizes = dict(one.sizes)
    output = set(one.output)
    seen = [l for t in one.inputs for l in set(t)]
    lone = {l for l in seen if seen.count(l) == 1} - output
    flops = sum(math.prod(sizes[l] for l in t) for t in one.inputs if lone & set(t))
    terms = [set(t) - lone for t in one.inputs]
    for i, j in one.path:
        union = terms[i] | terms[j]
        rest = [t for k, t in enumerate(terms) if k not in (i, j)]
        kept = {l for l in union if l in output or any(l in t for t in rest)}
        flops += math.prod(sizes[l] for l in union) * (2 if union - kept else 1)
        terms = rest + [kept]
    return flops * plan.n_slices


def _reference(base: Plan, limit: int) -> SlicedPlan | None:
    """The search before slicetree.py, rebuilding a plan per candidate: cut the
    label that shrinks one slice's working set (every operand counted as its
    copy) most per unit of FLOP overhead until the peak fits, undo cuts
    nothing needs, keep a fresh search on the sliced sizes if it fits and
    costs less."""

    def work(sp: SlicedPlan) -> int:
        one = sp.slice
        sizes = dict(one.sizes)
        return live_peak(held(one.inputs, one.preps, sizes, frozenset(sizes)),
                         [(s.operands, s.size) for s in one.steps], prod(one.output, sizes),
                         one.final != one.output)

    sizes = dict(base.sizes)
    cur = slice_plan(base, {})
    while cur.peak_bytes > limit:
        counts = dict(zip(cur.labels, cur.counts))
        best, best_key = None, None
        for label, size in sizes.items():
            bigger = [d for d in divisors(size) if d > counts.get(label, 1)]
            if not bigger:
                continue
            cand = slice_plan(base, {**counts, label: bigger[0]})
            gain = math.log(work(cur) / max(work(cand), 1))
            cost = math.log(cand.flops / cur.flops) + 0.01 * math.log(cand.n_slices / cur.n_slices)
            key = (gain / max(cost, 1e-12), -cand.n_slices)
            if gain > 0 and (best_key is None or key > best_key):
                best, best_key = cand, key
        if best is None:
            return None
        cur = best
    counts = dict(zip(cur.labels, cur.counts))
    for label in list(counts):
        fewer = {**counts, label: [d for d in divisors(sizes[label]) if d < counts[label]][-1]}
        cand = slice_plan(base, fewer)
        if cand.peak_bytes <= limit and cand.flops <= cur.flops:
            cur, counts = cand, fewer
    if base.optimize in OPTIMIZERS:
        fresh = slice_plan(base, counts, base.optimize)
        if fresh.peak_bytes <= limit and fresh.flops < cur.flops:
            cur = fresh
    return cur


def _networks() -> list[tuple[str, list[tuple[int, ...]]]]:
    """Small networks with every kind of operand: diagonals, labels summed
    first, a transposed output, an outer product, a 3-regular graph."""
    return NETWORKS + [
        ("iij,jk->ki", [(6, 6, 4), (4, 6)]), ("ij->ji", [(4, 6)]), ("iij->j", [(4, 4, 6)]),
        ("abc,cd,dab->", [(4, 6, 2), (2, 6), (6, 4, 6)]),
        ("ab,bc,ca,ad->d", [(6, 4), (4, 6), (6, 6), (6, 3)]),
        regular_network(30, 1), grid_circuit(2, 3, 4, 0),
    ]


@pytest.mark.parametrize("spec,shapes", _networks())
def test_incremental_costs_are_slice_plans(spec, shapes):
    # Random cuts, up and down: SliceCosts' peak, FLOPs and slice count equal
    # those of the plan slice_plan builds after every change.
    base = contract.plan(spec, *shapes)
    model = SliceCosts(base)
    rng = np.random.default_rng(len(spec))
    sizes = dict(base.sizes)
    for _ in range(12):
        label = list(sizes)[rng.integers(len(sizes))]
        model.set_count(label, int(rng.choice(divisors(sizes[label]))))
        sp = slice_plan(base, {l: c for l, c in model.counts.items() if c > 1})
        assert (model.peak_bytes(), model.flops(), model.n_slices) == \
            (sp.peak_bytes, sp.flops, sp.n_slices)


def _check(base: Plan, limit: int) -> Plan | SlicedPlan:
    fitted = fit(base, limit)
    assert fitted.peak_bytes <= limit < base.peak_bytes
    assert fitted.flops == _recount(fitted)
    if isinstance(fitted, SlicedPlan):
        assert fitted.memory_limit == limit and fitted.n_slices > 1
    else:  # re-ordered until it fits unsliced
        assert (fitted.result_dtype, fitted.squeeze, fitted.optimize) == \
            (base.result_dtype, base.squeeze, base.optimize)
    return fitted


@pytest.mark.parametrize("n,seed,shift", [(200, 0, 6), (200, 1, 10), (400, 2, 10)])
def test_regular_graphs_fit(n, seed, shift):
    spec, shapes = regular_network(n, seed)
    base = contract.plan(spec, *shapes)
    _check(base, base.peak_bytes >> shift)


def test_thousand_tensor_graph_fits():
    # The scale: a 3-regular graph of 1,000 tensors, a budget 2^10
    # under its unsliced peak (planning took more than ten minutes before).
    spec, shapes = regular_network(1000, 0)
    base = contract.plan(spec, *shapes)
    fitted = _check(base, base.peak_bytes >> 10)
    assert fitted.flops <= base.flops * 1.1


@pytest.mark.parametrize("rows,cols,depth,shift", [(5, 5, 24, 10), (6, 6, 14, 6)])
def test_circuits_fit(rows, cols, depth, shift):
    spec, shapes = grid_circuit(rows, cols, depth, 0)
    assert len(shapes) >= 200
    base = contract.plan(spec, *shapes)
    _check(base, base.peak_bytes >> shift)


def test_a_tree_the_greedy_cannot_slice_is_bisected():
    # opt_einsum's greedy tree of this circuit is wide everywhere: no
    # sequence of cuts on its own order reaches 2^-16 of its peak.
    spec, shapes = grid_circuit(6, 6, 12, 0)
    base = contract.plan(spec, *shapes, optimize="greedy")
    limit = base.peak_bytes >> 16
    model = SliceCosts(base)
    while model.peak_bytes() > limit and (cuts := model.cuts(limit // model.item, 1 << 30)):
        best = max(cuts, key=lambda c: c.gain)
        model.set_count(best.label, best.count)
    assert model.peak_bytes() > limit
    fitted = _check(base, limit)
    assert isinstance(fitted, SlicedPlan) and fitted.path != base.path


@pytest.mark.parametrize("n,seed,shift", [(50, 1, 2), (80, 0, 4), (80, 1, 4)])
def test_no_worse_than_the_rebuilding_search(n, seed, shift):
    spec, shapes = regular_network(n, seed)
    base = contract.plan(spec, *shapes)
    limit = base.peak_bytes >> shift
    before = _reference(base, limit)
    assert before is not None and before.peak_bytes <= limit
    assert _check(base, limit).flops <= 1.1 * before.flops


def test_sliced_contraction_matches_the_unsliced_one():
    spec, shapes = regular_network(24, 1, bond=3)
    ops = operands(shapes, seed=3)
    base = contract.plan(spec, *shapes)
    limit = base.peak_bytes // 2
    sp = contract.plan(spec, *shapes, memory_limit=limit)
    assert isinstance(sp, SlicedPlan) and sp.peak_bytes <= limit
    # numpy's own einsum caps intermediates at the largest input and falls
    # back to a 36-label loop here: opt_einsum's contraction is the reference.
    ref = opt_einsum.contract(spec, *[o.astype(np.float64) for o in ops])
    got = contract.einsum(spec, *ops, memory_limit=limit)
    np.testing.assert_allclose(got, ref, rtol=1e-4)


def test_same_plan_in_every_process():
    # No time, hash order or id decides: a process with another hash seed
    # slices the same way.
    spec, shapes = regular_network(200, 1)
    base = contract.plan(spec, *shapes)
    here = fit(base, base.peak_bytes >> 10)
    code = ("import sys, contract; from contract.planner import fit; "
            "from bench.slicing_bench import regular_network; "
            "spec, shapes = regular_network(200, 1); base = contract.plan(spec, *shapes); "
            "sys.stdout.write(fit(base, base.peak_bytes >> 10).to_json())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert Plan.from_json(out.stdout) == here
