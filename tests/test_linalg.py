"""dot, vecdot, matmul, tensordot, outer, trace and diagonal against NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import contract
from contract import ContractError

SETTINGS = settings(max_examples=30, deadline=None)
DTYPES = ["int8", "int32", "float16", "bfloat16", "float32", "complex64"]
RTOL = {"float16": 4e-3, "bfloat16": 3e-2, "float32": 1e-5, "complex64": 1e-5}


def sample(shape: tuple[int, ...], dtype: str = "float32", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype.startswith("int"):
        return rng.integers(-3, 4, size=shape).astype(dtype)
    x = rng.standard_normal(shape)
    if dtype == "complex64":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(jnp.dtype(dtype))


def close(got: jax.Array, want: np.ndarray, dtype: str = "float32") -> None:
    assert got.shape == np.shape(want)
    rtol = RTOL.get(dtype, 0)
    np.testing.assert_allclose(np.asarray(got).astype(np.complex128),
                               np.asarray(want).astype(np.complex128), rtol=rtol, atol=rtol * 10)


def wide(x: np.ndarray) -> np.ndarray:
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def prims(fn, *args) -> list:
    return jax.make_jaxpr(fn)(*args).eqns


# ---------------------------------------------------------------- matmul


@st.composite
def matmul_shapes(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=3))
    ba = [d if draw(st.booleans()) else 1 for d in batch][draw(st.integers(0, len(batch))):]
    bb = [d if draw(st.booleans()) else 1 for d in batch][draw(st.integers(0, len(batch))):]
    # A 1-D operand (promoted to a row/column) has no batch axes.
    a = (*ba, m, k) if draw(st.booleans()) else (k,)
    b = (*bb, k, n) if draw(st.booleans()) else (k,)
    return a, b


@SETTINGS
@given(matmul_shapes(), st.sampled_from(DTYPES))
def test_matmul_matches_numpy(shapes: tuple, dtype: str) -> None:
    a, b = sample(shapes[0], dtype, 1), sample(shapes[1], dtype, 2)
    got = contract.matmul(a, b)
    assert got.dtype == jnp.dtype(dtype)
    close(got, np.matmul(wide(a), wide(b)), dtype)


def test_matmul_broadcast_does_not_copy_size_one_batches() -> None:
    a, b = sample((1, 3, 4)), sample((5, 4, 2))
    low = contract.lower(contract.matmul, a, b)
    assert low.stages[0] == ("bc,acd->abd", ((3, 4), (5, 4, 2)))
    eqns = prims(contract.matmul, a, b)
    assert not any(e.primitive.name == "broadcast_in_dim" for e in eqns)
    close(contract.matmul(a, b), a @ b)


# torch.matmul's broadcasting and 1-D promotion: golden cases in test_torch_parity.py.


# ---------------------------------------------------------------- dot, vecdot, tensordot, outer


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                                   ((2, 5, 3), (4, 3, 6)), ((), (2, 3)), ((2, 3), ()),
                                   ((0, 3), (3, 2))])
@pytest.mark.parametrize("dtype", ["int32", "float32", "complex64"])
def test_dot_matches_numpy(sa: tuple, sb: tuple, dtype: str) -> None:
    a, b = sample(sa, dtype, 1), sample(sb, dtype, 2)
    got = contract.dot(a, b)
    assert got.dtype == jnp.dtype(dtype)
    close(got, np.dot(a, b), dtype)


@SETTINGS
@given(st.data(), st.sampled_from(["float32", "complex64", "int32"]))
def test_vecdot_matches_numpy(data: st.DataObject, dtype: str) -> None:
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    nd = len(shape)
    # Negative, as the array API advises: NumPy counts a positive axis in each
    # operand separately, which only agrees when the ranks do.
    axis = data.draw(st.integers(-nd, -1))
    # x2 may drop leading axes and set non-contracted axes to 1 (broadcasting).
    keep = data.draw(st.integers(0, axis % nd))
    sb = [d if (a == axis % nd or data.draw(st.booleans())) else 1 for a, d in enumerate(shape)]
    a, b = sample(tuple(shape), dtype, 1), sample(tuple(sb[keep:]), dtype, 2)
    close(contract.vecdot(a, b, axis=axis), np.vecdot(a, b, axis=axis), dtype)
    close(contract.vecdot(b, a, dim=axis), np.vecdot(b, a, axis=axis), dtype)


@pytest.mark.parametrize("sa,sb,axes", [
    ((3, 4, 5), (4, 5, 2), 2), ((3, 4), (4, 2), 1), ((2, 3), (4,), 0),
    ((3, 4, 5), (4, 3, 2), ([0, 1], [1, 0])), ((3, 4), (2, 3), (0, -1)), ((2, 2), (2, 2), ([], [])),
])
def test_tensordot_matches_numpy(sa: tuple, sb: tuple, axes: object) -> None:
    a, b = sample(sa, seed=1), sample(sb, seed=2)
    close(contract.tensordot(a, b, axes), np.tensordot(a, b, axes))
    close(contract.tensordot(a, b, dims=axes), np.tensordot(a, b, axes))


def test_outer_flattens_like_numpy() -> None:
    a, b = sample((2, 3)), sample((4,))
    close(contract.outer(a, b), np.outer(a, b))
    assert contract.outer([1, 2], [1, 10, 100]).tolist() == [[1, 10, 100], [2, 20, 200]]


def test_multiply_then_sum_is_one_dot_general_without_product() -> None:
    a, b = jnp.ones((16, 8)), jnp.ones((16, 8))
    for fn in (lambda a, b: contract.einsum("ik,ik->k", a, b),
               lambda a, b: contract.vecdot(a, b, axis=0),
               lambda a, b: contract.dot(a[:, 0], b[:, 0]),
               lambda a, b: contract.tensordot(a, b, ([0], [0]))):
        eqns = prims(fn, a, b)
        assert [e.primitive.name for e in eqns].count("dot_general") == 1
        assert not any(e.primitive.name == "mul" for e in eqns)
    np.testing.assert_allclose(contract.vecdot(a, b, axis=0), jnp.sum(a * b, axis=0))


def test_seed_multiply_then_sum_three_ways_agree() -> None:
    t1, t2 = sample((3, 4), seed=7), sample((3, 4), seed=8)
    naive = contract.sum(t1 * t2, dim=0)
    via_einsum = contract.einsum("ik,ik->k", t1, t2)
    fused = contract.vecdot(t1, t2, dim=0)
    np.testing.assert_allclose(naive, (t1 * t2).sum(0), rtol=1e-5)
    np.testing.assert_allclose(via_einsum, naive, rtol=1e-5)
    np.testing.assert_allclose(fused, naive, rtol=1e-5)


# ---------------------------------------------------------------- trace, diagonal


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (3, 0, 2)])
@pytest.mark.parametrize("offset", [-5, -1, 0, 2])
@pytest.mark.parametrize("axes", [(0, 1), (1, 0), (0, -1), (-1, -2)])
def test_trace_and_diagonal_match_numpy(shape: tuple, offset: int, axes: tuple) -> None:
    x = sample(shape, "int32")
    close(contract.diagonal(x, offset, *axes), np.diagonal(x, offset, *axes))
    got = contract.trace(x, offset, *axes)
    assert got.dtype == jnp.int32
    close(got, np.trace(x, offset, *axes))


def test_trace_dtypes_follow_sum() -> None:
    x = np.full((300, 300), 100, np.int8)
    assert contract.trace(x).item() == 30000
    assert contract.trace(np.eye(3, dtype=bool)).item() == 3
    assert contract.trace([[1.5, 0.0], [0.0, 2.5]], dtype="int32").item() == 3


def test_diagonal_is_a_strided_slice_not_a_mask() -> None:
    x = jnp.ones((4, 5, 6))
    for fn in (lambda x: contract.diagonal(x, 1, 0, 2), lambda x: contract.trace(x, -1, 2, 1)):
        names = {e.primitive.name for e in prims(fn, x)}
        assert "slice" in names
        assert not names & {"iota", "eq", "select_n", "mul", "dot_general"}


def test_lowerings() -> None:
    x = np.ones((3, 4, 5), np.float32)
    low = contract.lower(contract.diagonal, x, 1, 0, 2)
    assert low.stages[0] == ("aba->ba", ((3, 4, 3),)) and "[1:4]" in low.notes
    assert contract.lower(contract.trace, x, axis1=1, axis2=2).stages[0][0] == "abb->a"
    assert contract.lower(contract.vecdot, x, x, axis=1).stages[0][0] == "abc,abc->ac"
    assert contract.lower(contract.dot, x, np.ones((5, 2))).stages[0][0] == "abc,ce->abe"
    assert contract.lower(contract.tensordot, x, np.ones((4, 5)), 2).stages[0][0] == "abc,bc->a"
    assert contract.lower(contract.outer, x, [1, 2]).stages[0][1] == ((60,), (2,))


# ---------------------------------------------------------------- transformations


def test_grad_vmap_jit() -> None:
    a = jnp.asarray(sample((3, 4), seed=1))
    b = jnp.asarray(sample((4, 2), seed=2))
    g = jax.grad(lambda a: contract.matmul(a, b).sum())(a)
    np.testing.assert_allclose(g, jax.grad(lambda a: (a @ b).sum())(a), rtol=1e-5)
    gt = jax.grad(lambda x: contract.trace(x, 1))(a)
    np.testing.assert_allclose(gt, jax.grad(lambda x: jnp.trace(x, 1))(a))
    v = jax.vmap(contract.dot)(a, a)
    np.testing.assert_allclose(v, jnp.sum(a * a, axis=1), rtol=1e-5)
    j = jax.jit(lambda x: contract.diagonal(x, -1))(a)
    np.testing.assert_array_equal(j, jnp.diagonal(a, -1))


# ---------------------------------------------------------------- errors

A23, A32 = np.ones((2, 3)), np.ones((3, 2))


@pytest.mark.parametrize("call,match", [
    (lambda: contract.matmul(np.ones((2, 3)), np.ones((4, 2))), "size 3 in x1 but 4 in x2"),
    (lambda: contract.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2))), "broadcast axis"),
    (lambda: contract.matmul(2.0, np.ones(2)), "at least one axis"),
    (lambda: contract.dot(np.ones(3), np.ones(4)), "size 3 in x1 but 4 in x2"),
    (lambda: contract.vecdot(np.ones((2, 3)), np.ones((2, 4))), "contracted axis"),
    (lambda: contract.vecdot(np.ones(3), np.ones(3), axis=1), "out of range"),
    (lambda: contract.vecdot(np.ones(3), np.ones(3), axis=0, dim=0), "both axis="),
    (lambda: contract.tensordot(A23, A32, 3), "between 0 and"),
    (lambda: contract.tensordot(A23, A32, ([0], [0])), "size 2 in x1 but 3"),
    (lambda: contract.tensordot(A23, A32, ([0, 0], [1, 1])), "more than once"),
    (lambda: contract.tensordot(A23, A32, "ab"), "axis entries must be ints"),
    (lambda: contract.tensordot(A23, A32, axes=1, dims=1), "both axes="),
    (lambda: contract.diagonal(np.ones(3)), "rank >= 2"),
    (lambda: contract.diagonal(np.ones((2, 2)), 0, 1, -1), "must differ"),
    (lambda: contract.trace(np.ones((2, 2)), offset=0.5), "offset must be an int"),
    (lambda: contract.trace(np.ones((2, 2)), dtype="nope"), "not a dtype"),
    (lambda: contract.outer(np.ones(2), "x"), "not an array"),
    (lambda: contract.dot(np.ones(2), np.ones(2), out=np.ones(())), "immutable"),
])
def test_errors(call, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        call()
