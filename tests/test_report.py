"""Plan inspection: the report's numbers against independent counts, JSON and
dot round trips, saved plans re-executed, the picture, measured choice, hq."""

from __future__ import annotations

import math
import re

import jax
import numpy as np
import opt_einsum
import pytest
from hypothesis import given, settings, strategies as st

import contract
from tests._helpers import path_cost, ring_graph
from contract.planner.costs import costs, itemsize
from contract.planner.optimizers.hq import optimize as hq_optimize


def _flops(lhs: str, rhs: str, out: str, sizes: dict[str, int]) -> int:
    """Independent count: every label of the pair once, x2 when something is summed."""
    labels = set(lhs) | set(rhs)
    summed = labels - set(out)
    return math.prod(sizes[l] for l in labels) * (2 if summed else 1)


def _replay(spec: str, shapes: list[tuple[int, ...]], path) -> list[tuple[str, str, str]]:
    """Walk a linear path ourselves: (lhs, rhs, out) label strings per step."""
    ins, out = spec.split("->")
    terms = ins.split(",")
    steps = []
    for i, j in path:
        a, b = terms[i], terms[j]
        rest = terms[:i] + terms[i + 1 : j] + terms[j + 1 :]
        need = set(out).union(*rest)
        res = "".join(l for l in dict.fromkeys(a + b) if l in need)
        steps.append((a, b, res))
        terms = rest + [res]
    return steps


CASES = [
    ("ij,jk,kl->il", [(8, 16), (16, 32), (32, 4)]),
    ("bij,bjk,bkl->bil", [(3, 4, 5), (3, 5, 6), (3, 6, 2)]),
    ("ab,bc,cd,de,ef->af", [(2, 9), (9, 3), (3, 7), (7, 5), (5, 4)]),
    ("i,i,ij->j", [(6,), (6,), (6, 5)]),
    ("ij,kl->ijkl", [(2, 3), (4, 5)]),
]


@pytest.mark.parametrize("spec,shapes", CASES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
def test_step_costs_match_independent_counts(spec, shapes, dtype):
    p = contract.plan(spec, *shapes, dtype=dtype)
    sizes = {l: d for t, s in zip(spec.split("->")[0].split(","), shapes) for l, d in zip(t, s)}
    item = {"float32": 4, "bfloat16": 4, "int8": 4}[dtype]  # compute dtypes: f32, f32, i32
    replay = _replay(spec, shapes, p.path)
    rows = costs(p)
    assert len(rows) == len(replay)
    for row, (a, b, out) in zip(rows, replay):
        assert set(row.output) == set(out)
        assert row.flops == _flops(a, b, out, sizes)
        assert row.bytes_read == (math.prod(sizes[l] for l in a)
                                  + math.prod(sizes[l] for l in b)) * item
        assert row.bytes_written == math.prod(sizes[l] for l in out) * item
        assert row.intensity == pytest.approx(row.flops / (row.bytes_read + row.bytes_written))
    # The planned total agrees with opt_einsum replaying the same path.
    _, info = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=list(p.path))
    assert p.flops == sum(r.flops for r in rows)
    assert p.flops == int(info.opt_cost)  # the same convention: 2 per multiply-add
    assert p.largest_intermediate == max(math.prod(sizes[l] for l in o) for _, _, o in replay)


def test_report_text_shows_every_number():
    spec, shapes = CASES[0]
    p = contract.plan(spec, *shapes)
    text = p.report()
    assert text == str(p)
    assert "ij,jk,kl->il" in text and "(8, 16), (16, 32), (32, 4)" in text
    # 8x16x32x4 naive (4 labels, 3 operands), planned 2*16*32*4 + 2*8*16*4;
    # the comparison names its baseline.
    assert "naive 49.15 k  planned 5.12 k  (9.6x fewer than naive)" in text
    assert "speedup" not in text
    # The 64-element intermediate next to the 32-element output, in float32.
    assert "peak 384 B beyond the inputs" in text
    rows = [l for l in text.splitlines() if re.match(r"\s+\d+\s", l)]
    assert len(rows) == 2
    assert "jk,kl->jl" in rows[0] and "GEMM" in rows[0] and "80.0%" in rows[0]
    assert "ij,jl->il" in rows[1] and "20.0%" in rows[1]


def test_report_kinds_and_dtype_aware_bytes():
    p = contract.plan("ii,ij,bj,bj->bj", (4, 4), (4, 5), (3, 5), (3, 5), dtype="float16")
    text = str(p)
    assert "accumulates in float32" in text
    # ii is a diagonal; the rest is a GEMV, two Hadamards and the closing transpose.
    assert [c.kind for c in costs(p)] == ["diagonal", "GEMV", "Hadamard", "Hadamard", "transpose"]
    assert costs(p)[0].name == "prep 0" and costs(p)[0].flops == 0
    p64 = contract.plan("ij,jk->ki", (8, 16), (16, 32), dtype="complex64")
    # Only the product, written in the output's layout: the inputs are the caller's.
    assert p64.peak_bytes == 8 * 32 * itemsize("complex64")
    assert costs(p64)[0].bytes_written == 8 * 32 * 8


def test_report_summarises_large_networks():
    n = 500
    spec = ",".join(f"{chr(0x4E00 + k)}{chr(0x4E00 + k + 1)}" for k in range(n))
    spec += "->" + chr(0x4E00) + chr(0x4E00 + n)
    p = contract.plan(spec, *[(2, 2)] * n, optimize="greedy")
    text = str(p)
    lines = text.splitlines()
    assert len(lines) < 70
    assert f"{n - 1 - 40} cheaper rows not shown" in text
    assert "GEMM" in text and "more ..." in text  # elided path


def test_report_cuts_long_specs_and_shapes_the_json_keeps_them():
    n = 100
    spec = ",".join(f"{chr(0x4E00 + k)}{chr(0x4E00 + (k + 1) % n)}" for k in range(n)) + "->"
    p = contract.plan(spec, *[(2, 2)] * n, optimize="greedy")
    first, shapes = str(p).splitlines()[:2]
    assert first == "spec        " + spec[:60] + "…-> (100 operands)"
    assert shapes.startswith("shapes      (2, 2), (2, 2), ") and len(shapes) <= 100
    assert shapes.endswith(", …   float32 -> float32")
    assert p.spec == spec and contract.Plan.from_json(p.to_json()).spec == spec
    short = contract.plan("ij,jk->ik", (2, 3), (3, 4))
    assert str(short).splitlines()[0] == "spec        ij,jk->ik"


def test_a_64_bit_plan_is_planned_as_asked_and_says_what_jax_runs():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "truncated to float32" from JAX
        off = contract.plan("ij,jk->ik", (2, 3), (3, 4), dtype="float64")
        mixed = contract.plan("ij,jk->ik", (2, 3), (3, 4), dtype=["int64", "uint64"])
        preferred = contract.plan("ij,jk->ik", (2, 3), (3, 4), preferred_element_type="complex128")
        with jax.enable_x64(True):
            on = contract.plan("ij,jk->ik", (2, 3), (3, 4), dtype="float64")
            on_report = str(on)
        with jax.enable_x64(False):
            off_report, mixed_report, preferred_report = map(str, (off, mixed, preferred))
    assert off == on and off.dtypes == ("float64", "float64") and off.result_dtype == "float64"
    assert off.peak_bytes == 2 * 4 * 8
    # What JAX runs is this process's fact: said by the backend, only where x64 is off.
    assert "x64           off here: JAX runs float64 as float32" in off_report
    assert "x64" not in on_report
    # JAX's promotion with x64 on: int64 with uint64 is float64.
    assert mixed.result_dtype == "float64"
    assert "JAX runs int64 as int32, uint64 as uint32, float64 as float32" in mixed_report
    assert "complex128 as complex64" in preferred_report
    assert "x64" not in str(contract.plan("ij,jk->ik", (2, 3), (3, 4), dtype="int32"))


def test_every_step_kind_and_ellipsis_labels_are_documented():
    from pathlib import Path

    from contract.planner.picture import KIND_COLORS

    docs = (Path(__file__).parent.parent / "docs" / "inspection.md").read_text()
    assert [k for k in KIND_COLORS if f"`{k}`" not in docs] == []
    p = contract.plan("...ij,...jk->...ik", (7, 5, 2, 3), (5, 3, 4))
    step = "…0 …1 i j,…1 j k->…1 …0 i k"
    assert step in str(p) and f"`{step}`" in docs
    assert "batched dot" in str(contract.plan("bi,bi->b", (7, 5), (7, 5)))


@pytest.mark.parametrize("spec,shapes", CASES)
def test_json_round_trip_and_dot(spec, shapes):
    p = contract.plan(spec, *shapes, optimize="greedy")
    q = contract.Plan.from_json(p.to_json())
    assert q == p and q.steps == p.steps and q.path == p.path and type(q.path[0]) is tuple
    dot = p.to_dot()
    assert dot.startswith("digraph plan {") and dot.rstrip().endswith("}")
    edges = [l for l in dot.splitlines() if re.match(r"\s+\w+ -> \w+", l)]
    assert len(edges) == 2 * len(p.steps) + 1 + sum(1 for c in costs(p) if "prep" in c.name)


def test_from_json_rejects_garbage():
    with pytest.raises(contract.ContractError, match="invalid JSON"):
        contract.Plan.from_json("{not json")
    with pytest.raises(contract.ContractError, match="format"):
        contract.Plan.from_json('{"format": 99}')
    with pytest.raises(contract.ContractError, match="malformed"):
        contract.Plan.from_json('{"format": 1, "spec": "ij"}')


def test_saved_plan_runs_without_replanning():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(s).astype(np.float32) for s in [(5, 6), (6, 7), (7, 3)])
    saved = contract.Plan.from_json(contract.plan("ij,jk,kl->il", a, b, c,
                                                  optimize=[(0, 1), (0, 1)]).to_json())
    info = contract.plan_cache_info()["plans"]
    want = a @ b @ c
    for fn in (lambda *x: contract.einsum("ij,jk,kl->il", *x, optimize=saved),
               jax.jit(lambda *x: contract.einsum("ij,jk,kl->il", *x, optimize=saved))):
        np.testing.assert_allclose(fn(a, b, c), want, rtol=1e-5, atol=1e-5)
    assert contract.plan_cache_info()["plans"]["misses"] == info["misses"]  # nothing re-planned
    # Renamed labels reuse it too; the plan keeps its (left-to-right) order.
    assert contract.plan("ab,bc,cd->ad", a, b, c, optimize=saved).path == ((0, 1), (0, 1))
    np.testing.assert_allclose(contract.einsum("xy,yz,zw->xw", a, b, c, optimize=saved), want,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec,shapes,dtype,match", [
    ("ij,jk,kl->li", [(5, 6), (6, 7), (7, 3)], np.float32, "output"),
    ("ij,jk,kl->il", [(5, 6), (6, 8), (8, 3)], np.float32, "shape"),
    ("ij,jk,kl->il", [(5, 6), (6, 7), (7, 3)], np.int32, "dtypes"),
    ("ij,jk->ik", [(5, 6), (6, 7)], np.float32, "operand"),
    ("ii,ik,kl->il", [(6, 6), (6, 7), (7, 3)], np.float32, "repeated labels"),
])
def test_saved_plan_mismatch_is_a_clear_error(spec, shapes, dtype, match):
    saved = contract.plan("ij,jk,kl->il", (5, 6), (6, 7), (7, 3))
    ops = [np.ones(s, dtype) for s in shapes]
    with pytest.raises(contract.ContractError, match=match):
        contract.einsum(spec, *ops, optimize=saved)


def test_plot_writes_png_and_svg(tmp_path):
    p = contract.plan("bij,bjk,bkl,blm,mn->bin", (4, 8, 16), (4, 16, 32), (4, 32, 8),
                      (4, 8, 64), (64, 2))
    png, svg = tmp_path / "plan.png", tmp_path / "plan.svg"
    p.plot(png, dpi=60)
    p.plot(path=str(svg))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    assert b"<svg" in svg.read_bytes()[:500]
    big = contract.plan(",".join(f"z{chr(0x4E00 + k)}" for k in range(60)) + "->z",
                        *[(2, 3)] * 60, optimize="greedy")
    fig = big.plot()
    assert len(fig.axes) == 3


def test_measure_picks_a_candidate_and_is_cached():
    shapes = [(16, 64), (64, 64), (64, 64), (64, 2)]
    p = contract.plan("ab,bc,cd,de->ae", *shapes, optimize="measure")
    assert p.optimize.startswith("measure:")
    assert p.flops <= 8 * contract.plan("ab,bc,cd,de->ae", *shapes).flops
    hits = contract.plan_cache_info()["plans"]["hits"]
    assert contract.plan("ab,bc,cd,de->ae", *shapes, optimize="measure") == p
    assert contract.plan_cache_info()["plans"]["hits"] == hits + 1
    x = [np.random.default_rng(1).standard_normal(s).astype(np.float32) for s in shapes]
    np.testing.assert_allclose(contract.einsum("ab,bc,cd,de->ae", *x, optimize="measure"),
                               x[0] @ x[1] @ x[2] @ x[3], rtol=1e-4, atol=1e-4)


@settings(max_examples=6, deadline=None)
@given(st.integers(10, 14).map(lambda n: 2 * n), st.integers(0, 10_000))
def test_hq_is_valid_and_never_worse_than_greedy(n, seed):
    inputs, sizes = ring_graph(n, seed)
    path = hq_optimize(inputs, frozenset(), sizes, seconds=0.5)
    assert len(path) == n - 1
    greedy = opt_einsum.paths.greedy(inputs, frozenset(), sizes)
    none = frozenset()
    assert path_cost(inputs, none, sizes, path) <= path_cost(inputs, none, sizes, greedy) * 1.0001


def test_hq_is_optimal_on_small_networks():
    spec, shapes = CASES[2]
    hq = contract.plan(spec, *shapes, optimize="auto-hq")
    assert hq.flops == contract.plan(spec, *shapes, optimize="optimal").flops
    x = [np.random.default_rng(2).standard_normal(s).astype(np.float32) for s in shapes]
    np.testing.assert_allclose(contract.einsum(spec, *x, optimize="auto-hq"),
                               np.einsum(spec, *x), rtol=1e-4, atol=1e-4)


def test_measure_ranks_by_cost_analysis_when_running_is_too_costly(monkeypatch):
    from contract.backend import measure
    from contract.planner import candidates

    spec = "ab,acd,bef,cgh,dgi,ejk,fhl,ijm,klm->"
    shapes = [(3,) * len(t) for t in spec[:-2].split(",")]
    bound = contract.parse(spec).bind(shapes)
    plans = candidates(bound, ("float32",) * 9, "float32", None)
    assert len(plans) >= 2 and plans == sorted(plans, key=lambda p: p.flops)
    assert len({p.path for p in plans}) == len(plans)
    ran = []
    monkeypatch.setattr(measure, "_MEASURE_FLOPS", 0)
    monkeypatch.setattr(measure, "run_time", lambda p, precision=None: ran.append(p) or 0.0)
    estimates = {p.path: measure._estimate(p, None) for p in plans}
    assert all(e > 0 for e in estimates.values())
    chosen = measure.fastest(plans)
    assert ran == []
    assert estimates[chosen.path] == min(estimates.values())


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000))
def test_hq_paths_are_right_with_hyperedges_and_outputs(seed):
    # 11 operands over 8 labels: some labels sit in 3+ operands, some are kept.
    rng = np.random.default_rng(seed)
    letters = "abcdefgh"
    terms = ["".join(rng.choice(list(letters), size=rng.integers(1, 4), replace=False))
             for _ in range(11)]
    used = sorted(set("".join(terms)))
    out = "".join(l for l in used if rng.random() < 0.3)
    spec = ",".join(terms) + "->" + out
    size = {l: int(rng.integers(1, 4)) for l in letters}
    ops = [rng.standard_normal([size[l] for l in t]).astype(np.float32) for t in terms]
    p = contract.plan(spec, *ops, optimize="auto-hq")
    assert p.flops <= contract.plan(spec, *ops, optimize="greedy").flops * 1.5
    np.testing.assert_allclose(contract.einsum(spec, *ops, optimize="auto-hq"),
                               np.einsum(spec, *ops), rtol=2e-4, atol=2e-4)


def test_report_names_the_cpu_lowering_of_complex_steps(kernel: str):
    big = contract.plan("ij,jk->ik", (512, 512), (512, 512), dtype="complex64")
    thin = contract.plan("ij,jk->ik", (512, 512), (512, 2), dtype="complex64")
    name = "1 BLAS gemm (XLA FFI kernel)" if kernel == "native" else "1 real GEMM (2x2 real block)"
    assert f"CPU lowering  step 0: {name}" in big.report()
    assert "CPU lowering  step 0: native complex dot" in thin.report()
    assert "CPU lowering" not in contract.plan("ij,jk->ik", (512, 512), (512, 512)).report()
