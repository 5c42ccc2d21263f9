"""contract.einsum / plan / expression against numpy.einsum: eager, jit, vmap,
every optimize option, every dtype family and the dtype/precision policy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import contract
from contract.testing import (CASES, DTYPES, assert_matches, fully_connected, np_dtype,
                              operands, random_network, random_spec, symbol)

CHAIN = ("ab,bc,cd,de,ef->af", ((8, 2), (2, 9), (9, 3), (3, 7), (7, 4)))
HYPER = ("ea,fb,abcd,gc,hd->efgh", ((3, 2), (3, 2), (2, 2, 2, 2), (3, 2), (3, 2)))
RING6 = ("abc,bcd,cde,def,efg,fga->ag",
         ((2, 3, 2), (3, 2, 3), (2, 3, 2), (3, 2, 3), (2, 3, 2), (3, 2, 2)))
OPTIMIZE = ["auto", "greedy", "optimal", "dp", "branch-all", "branch-2", "branch-1",
            "random-greedy", "auto-hq", True, False]


@pytest.mark.parametrize("spec, shapes", CASES, ids=[f"{s}|{sh}" for s, sh in CASES])
def test_cases_eager(spec: str, shapes: tuple) -> None:
    ops = operands(shapes, "float32")
    assert_matches(contract.einsum(spec, *ops), spec, ops)


def test_cases_under_jit() -> None:
    # One traced function holding every case: the inline (traced) path, one compile.
    ops = [operands(shapes, "float32", seed=1) for _, shapes in CASES]
    run = jax.jit(lambda all_ops: [contract.einsum(s, *o) for (s, _), o in zip(CASES, all_ops)])
    for (spec, _), got, o in zip(CASES, run(ops), ops):
        assert_matches(got, spec, o)


# A spread of shapes for the dtype sweep: GEMM, batch, diagonal, trace,
# ellipsis broadcast, scalar, single operand, multi-operand, size 0.
DTYPE_CASES = [
    ("ij,jk->ik", ((3, 4), (4, 5))), ("i,i", ((6,), (6,))), ("ik,ik->k", ((5, 3), (5, 3))),
    ("bij,bjk->bik", ((2, 3, 4), (2, 4, 5))), ("ij,jk,kl->il", ((3, 4), (4, 5), (5, 2))),
    ("ii->", ((4, 4),)), ("iji->ij", ((3, 2, 3),)), ("ijk->j", ((2, 3, 4),)),
    (",i->i", ((), (4,))), ("...ij,...jk->...ik", ((1, 3, 4), (5, 4, 2))),
    ("ij,jk->ik", ((0, 3), (3, 4))), ("ij->ji", ((3, 4),)),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_family(dtype: str) -> None:
    all_ops = [operands(shapes, dtype, seed=k) for k, (_, shapes) in enumerate(DTYPE_CASES)]
    # Every case under one jit (one compile), and the first two eagerly.
    traced = jax.jit(lambda xs: [contract.einsum(s, *o) for (s, _), o in zip(DTYPE_CASES, xs)])
    for (spec, _), ops, got in zip(DTYPE_CASES, all_ops, traced(all_ops)):
        assert got.dtype == jnp.dtype(np_dtype(dtype)), (spec, got.dtype)
        assert_matches(got, spec, ops, dtype)
    for (spec, _), ops in zip(DTYPE_CASES[:2], all_ops):
        assert_matches(contract.einsum(spec, *ops), spec, ops, dtype)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(0, 10**6))
def test_random_specs(seed: int) -> None:
    spec, shapes = random_spec(seed)
    ops = operands(shapes, "float32", seed=seed)
    assert_matches(contract.einsum(spec, *ops), spec, ops)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(0, 10**6), st.sampled_from(["int8", "bfloat16", "complex64", "bool"]))
def test_random_specs_jit_and_dtypes(seed: int, dtype: str) -> None:
    spec, shapes = random_spec(seed, max_operands=4, max_rank=3)
    ops = operands(shapes, dtype, seed=seed)
    got = jax.jit(lambda *x: contract.einsum(spec, *x))(*ops)
    assert_matches(got, spec, ops, dtype)


@pytest.mark.parametrize("optimize", OPTIMIZE, ids=str)
def test_every_optimize_option_agrees(optimize: object) -> None:
    for spec, shapes in (CHAIN, HYPER, RING6, ("ij,jk,kl,lm->im", ((2, 3), (3, 4), (4, 5), (5, 2)))):
        ops = operands(shapes, "float32", seed=3)
        assert_matches(contract.einsum(spec, *ops, optimize=optimize), spec, ops)


def test_explicit_paths_and_numpy_path_format() -> None:
    spec, shapes = "ij,jk,kl->il", ((2, 3), (3, 4), (4, 5))
    ops = operands(shapes, "float32")
    numpy_path, _ = np.einsum_path(spec, *ops, optimize="optimal")
    assert numpy_path[0] == "einsum_path"
    for path in ([(0, 1), (0, 1)], [(1, 2), (0, 1)], [(0, 2), (0, 1)], [(0, 1, 2)], numpy_path):
        got = contract.einsum(spec, *ops, optimize=path)
        assert_matches(got, spec, ops)
        expected_steps = sum(len(e) - 1 for e in path if e != "einsum_path")
        assert len(contract.plan(spec, *shapes, optimize=path).steps) == expected_steps


def test_plan_path_replays_in_opt_einsum() -> None:
    import opt_einsum

    spec, shapes = HYPER
    p = contract.plan(spec, *shapes)
    _, info = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=[tuple(e) for e in p.path])
    assert info.opt_cost == p.flops
    assert p.flops <= p.naive_flops


def test_named_axes_and_sublists() -> None:
    x, w = operands([(2, 3, 4), (4, 5)], seed=2)
    got = contract.einsum("batch seq dim, dim out -> batch seq out", x, w)
    assert_matches(got, "bsd,do->bso", [x, w])
    got = contract.einsum(x, [0, 1, 2], w, [2, 3], [0, 1, 3])
    assert_matches(got, "abc,cd->abd", [x, w])
    implicit = contract.einsum(x, [0, 1, 2], w, [2, 3])
    assert_matches(implicit, "abc,cd", [x, w])
    ell = contract.einsum(x, [Ellipsis, 2], w, [2, 3], [Ellipsis, 3])
    assert_matches(ell, "...c,cd->...d", [x, w])


def test_more_than_52_labels() -> None:
    n = 60
    labels = [symbol(k) for k in range(n + 1)]
    shapes = [(2, 2)] * n
    spec = ",".join(a + b for a, b in zip(labels, labels[1:])) + "->" + labels[0] + labels[-1]
    ops = operands(shapes, seed=4)
    ops = [x / 2 for x in ops]  # keep the chain's product near 1
    assert_matches(contract.einsum(spec, *ops), spec, ops)
    sub = [v for k, x in enumerate(ops) for v in (x, [k, k + 1])] + [[0, n]]
    assert_matches(contract.einsum(*sub), spec, ops)


def test_ten_operand_network() -> None:
    spec, shapes = random_network(10, seed=5, degree=3, output=2)
    ops = [x / 2 for x in operands(shapes, seed=5)]
    assert_matches(contract.einsum(spec, *ops), spec, ops)


def test_python_scalars_are_weak() -> None:
    x = jnp.ones(3, jnp.bfloat16)
    assert contract.einsum(",i->i", 2.0, x).dtype == jnp.bfloat16
    assert contract.einsum(",i->i", 2, jnp.ones(3, jnp.int8)).dtype == jnp.int8
    np.testing.assert_allclose(contract.einsum(",i->i", 2.5, np.ones(3, np.float32)), [2.5] * 3)
    # nested lists take the slow path (converted first), Python scalars the jitted one
    assert float(contract.einsum("i,i", [1.0, 2.0], [3.0, 4.0])) == 11.0
    assert contract.einsum(",", 2, 3).dtype == jnp.int32


def test_mixed_dtypes_promote_like_jax() -> None:
    a = np.ones((2, 3), np.int8)
    b = np.ones((3, 2), np.float16)
    got = contract.einsum("ij,jk->ik", a, b)
    assert got.dtype == jnp.result_type(jnp.int8, jnp.float16)
    np.testing.assert_array_equal(np.asarray(got, np.float32), np.full((2, 2), 3.0))


def test_bfloat16_accumulates_in_float32() -> None:
    # 4096 products of (1 + 2**-7) * 1: a bfloat16 running sum stalls at 512
    # (its spacing there, 4, swallows each 1.0078), a float32 one is exact.
    n = 4096
    x = jnp.full((n,), 1 + 2**-7, jnp.bfloat16)
    y = jnp.ones((n,), jnp.bfloat16)
    exact = n * (1 + 2**-7)  # 4128: representable in bfloat16
    acc = ml_dtypes.bfloat16(0)
    for v in np.asarray(x):
        acc = ml_dtypes.bfloat16(acc + v)
    assert abs(float(acc) - exact) > 1000  # what accumulating in bfloat16 gives
    for spec, ops in (("i,i->", (x, y)), ("i->", (x,)), ("ij,jk->ik", (x[None], y[:, None]))):
        got = contract.einsum(spec, *ops)
        assert got.dtype == jnp.bfloat16
        assert float(got.ravel()[0]) == exact, spec
    jaxpr = str(jax.make_jaxpr(lambda a, b: contract.einsum("i,i->", a, b))(x, y))
    assert "preferred_element_type=float32" in jaxpr


def test_int8_does_not_overflow_before_the_final_cast() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (4, 64)).astype(np.int8)
    b = rng.integers(-128, 128, (64, 3)).astype(np.int8)
    exact = a.astype(np.int64) @ b.astype(np.int64)
    got = contract.einsum("ij,jk->ik", a, b)
    assert got.dtype == jnp.int8
    np.testing.assert_array_equal(np.asarray(got).astype(np.int64) % 256, exact % 256)
    wide = contract.einsum("ij,jk->ik", a, b, preferred_element_type=jnp.int32)
    np.testing.assert_array_equal(np.asarray(wide), exact)
    u = contract.einsum("i->", np.full(300, 200, np.uint8), preferred_element_type="int32")
    assert int(u) == 60000


def test_preferred_element_type() -> None:
    a, b = operands([(3, 4), (4, 2)], "bfloat16")
    got = contract.einsum("ij,jk->ik", a, b, preferred_element_type=jnp.float32)
    assert got.dtype == jnp.float32
    assert_matches(got, "ij,jk->ik", [a, b], "float32")
    c = contract.einsum("ij,jk->ik", np.ones((2, 2), np.int32), np.ones((2, 2), np.int32),
                        preferred_element_type="float32")
    assert c.dtype == jnp.float32


def test_precision_default_is_highest_and_overridable() -> None:
    a, b = operands([(64, 64), (64, 64)], seed=7)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    got = np.asarray(contract.einsum("ij,jk->ik", a, b))
    assert np.abs(got - exact).max() < 1e-4
    # DEFAULT may use bfloat16 passes on accelerators: only a loose bound holds
    low = np.asarray(contract.einsum("ij,jk->ik", a, b, precision="default"))
    assert np.abs(low - exact).max() < 0.1


def test_grad_and_vmap_compose() -> None:
    a, b = operands([(3, 4), (4, 5)], seed=8)
    batch = np.stack([a, 2 * a])
    got = jax.vmap(lambda x: contract.einsum("ij,jk->ik", x, b))(batch)
    np.testing.assert_allclose(got, np.einsum("bij,jk->bik", batch, b), rtol=1e-5, atol=1e-5)
    got = jax.vmap(lambda x, y: contract.einsum("ij,jk->ik", x, y), in_axes=(None, 0))(
        a, np.stack([b, b + 1]))
    np.testing.assert_allclose(got[1], a @ (b + 1), rtol=1e-5, atol=1e-5)


def test_expression_and_plan() -> None:
    spec, shapes = CHAIN
    expr = contract.expression(spec, *shapes)
    ops = operands(shapes, seed=9)
    assert_matches(expr(*ops), spec, ops)
    assert_matches(jax.jit(expr)(*ops), spec, ops)
    p = contract.plan(spec, *shapes)
    assert p is not None and len(p.steps) == 4
    assert p.flops <= p.naive_flops
    assert p.largest_intermediate == max(s.size for s in p.steps)
    text = str(p)
    assert spec in text and "GEMM" in text
    assert contract.plan(spec, *ops).path == p.path


def test_plan_cache_hits_for_relabelled_spec() -> None:
    shapes = ((7, 11), (11, 13), (13, 3))
    contract.plan("ij,jk,kl->il", *shapes)
    before = contract.plan_cache_info()["plans"]
    p = contract.plan("xy,yz,zw->xw", *shapes)
    after = contract.plan_cache_info()["plans"]
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]
    assert p.spec == "xy,yz,zw->xw"
    assert {l for s in p.steps for l in s.lhs + s.rhs} <= set("xyzw")
    contract.plan("ij,jk,kl->il", (7, 11), (11, 13), (13, 4))
    assert contract.plan_cache_info()["plans"]["misses"] == after["misses"] + 1


def test_auto_never_explodes_on_large_networks() -> None:
    # optimal for a handful of operands, dp for moderate sparse networks,
    # greedy for many operands or dense ones (dp takes seconds on them).
    assert contract.plan(*_net(random_network(4, seed=0))).strategy == "optimal"
    assert contract.plan(*_net(random_network(10, seed=0, degree=2))).strategy == "dp"
    assert contract.plan(*_net(fully_connected(6))).strategy == "dp"
    assert contract.plan(*_net(fully_connected(10))).strategy == "annealed-greedy"
    big = contract.plan(*_net(random_network(40, seed=1, degree=3)))
    assert big.optimize == "auto" and big.strategy == "annealed-greedy" and len(big.steps) == 39
    dense = contract.plan(*_net(fully_connected(12)))
    assert dense.strategy == "annealed-greedy"
    assert dense.planning_seconds < 30  # sanity bound only: never an exhaustive search


def _net(case: tuple) -> tuple:
    spec, shapes = case
    return (spec, *shapes)
