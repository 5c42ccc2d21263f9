"""contract.compare: one row per optimizer, numbers equal to each plan's own."""

from __future__ import annotations

import pytest

import contract

SHAPES = [(8, 64), (64, 64), (64, 64), (64, 2)]


def test_rows_match_the_plans():
    t = contract.compare("ab,bc,cd,de->ae", *SHAPES, optimizers=["greedy", "dp", False])
    assert [r.optimizer for r in t.rows] == ["greedy", "dp", "explicit"]
    for row, opt in zip(t.rows, ["greedy", "dp", False]):
        p = contract.plan("ab,bc,cd,de->ae", *SHAPES, optimize=opt)
        assert (row.flops, row.peak_bytes, row.largest_intermediate) == (
            p.flops, p.peak_bytes, p.largest_intermediate)
        assert row.planning_seconds > 0 and row.run_seconds is None
    # Left to right costs 2*(8*64*64)*2 + 2*8*64*2 more than right to left.
    assert t.rows[2].flops > t.rows[1].flops
    assert t.best.optimizer in ("greedy", "dp")
    text = str(t)
    assert text.count("\n| ") == 4 and "run time" not in text and "1.00x" in text


def test_measured_and_failures():
    t = contract.compare("ab,bc,cd,de->ae", *SHAPES, optimizers=["auto", "bogus"], measure=True,
                         dtype="bfloat16")
    auto, bogus = t.rows
    assert auto.run_seconds > 0 and "run time" in str(t)
    assert bogus.error and "unknown optimize option" in bogus.error and bogus.flops is None
    assert t.best is auto


def test_default_optimizers_skip_exhaustive_search_on_big_networks():
    n = 20
    spec = ",".join(f"{chr(0x4E00 + k)}{chr(0x4E00 + k + 1)}" for k in range(n))
    t = contract.compare(spec + "->", *[(2, 2)] * n)
    names = [r.optimizer for r in t.rows]
    assert "dp" not in names and "auto-hq" in names and "auto" in names


def test_bad_spec_is_a_contract_error():
    with pytest.raises(contract.ContractError):
        contract.compare("ij,jk->ik", (2, 3), (4, 5))
