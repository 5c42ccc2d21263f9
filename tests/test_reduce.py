"""sum, mean, var, std and batch_stats against NumPy and jax.numpy.

PyTorch parity (dim/keepdim/dtype=/correction/unbiased, positional orders)
is checked against torch's recorded outputs in test_torch_parity.py.
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import contract
from contract import ContractError

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "float16",
          "bfloat16", "float32", "float64", "complex64"]
# CI runs this file with x64 off and on; without x64 JAX turns 64-bit inputs
# into their 32-bit kinds. Expected dtypes are jnp's in the mode at hand.
X64 = bool(jax.config.jax_enable_x64)
CANONICAL = {} if X64 else {"int64": "int32", "float64": "float32"}
FLOATS = ["float16", "bfloat16", "float32", "complex64"]
# Tolerances relative to the result's own precision (it is rounded once).
RTOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-5, "complex64": 2e-5,
        "float64": 1e-10}
SETTINGS = settings(max_examples=30, deadline=None)


def sample(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Small values (exact in every dtype) of the given numpy/ml_dtypes dtype."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith(("int", "uint")):
        low = 0 if dtype.startswith("u") else -5
        return rng.integers(low, 6, size=shape).astype(dtype)
    x = rng.standard_normal(shape).astype(np.float32)
    if dtype == "complex64":
        return (x + 1j * rng.standard_normal(shape)).astype(np.complex64)
    return x.astype(jnp.dtype(dtype))


def wide(x: np.ndarray) -> np.ndarray:
    """The array in float64/complex128/int64 for an exact reference."""
    if x.dtype.kind == "c":
        return x.astype(np.complex128)
    if x.dtype.kind in "biu":
        return x.astype(np.int64)
    return x.astype(np.float64)


@st.composite
def shapes_axes(draw: st.DrawFn) -> tuple[tuple[int, ...], object]:
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
    nd = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"] if nd else ["none"]))
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-nd, nd - 1))
    axes = draw(st.lists(st.integers(0, nd - 1), unique=True, max_size=nd))
    return shape, tuple(a - nd if draw(st.booleans()) else a for a in axes)


def expected_axes(axis: object, nd: int) -> tuple[int, ...] | None:
    return None if axis is None else tuple(np.atleast_1d(axis).tolist())


# ---------------------------------------------------------------- seed examples


def test_seed_examples() -> None:
    x = [[1, 2], [3, 4]]
    assert contract.sum(x).item() == 10
    assert contract.sum(x, axis=0).tolist() == [4, 6]
    assert contract.sum(x, axis=1).tolist() == [3, 7]
    assert contract.sum(np.array(x), dim=0).tolist() == [4, 6]
    assert contract.sum(jnp.array(x), dim=1, keepdim=True).tolist() == [[3], [7]]
    batch = np.random.default_rng(1).random((4, 3, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(contract.sum(batch, dim=[0, 2, 3]), batch.sum((0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(contract.sum(batch, dim=(1, 2, 3)), batch.sum((1, 2, 3)), rtol=1e-5)


def test_inputs_of_every_kind() -> None:
    assert contract.sum(3).item() == 3 and contract.sum(2.5).dtype == jnp.sum(2.5).dtype
    assert contract.sum([True, True, False]).item() == 2
    assert contract.mean(np.arange(4)).item() == 1.5
    assert contract.var(jnp.arange(4.0)).item() == 1.25


# ---------------------------------------------------------------- sum


def _jnp_dtype(fn, dtype: str) -> str:  # noqa: ANN001
    """The result dtype of ``fn`` (a jnp function) on an array of ``dtype``, x64 as set."""
    x = jax.ShapeDtypeStruct((2,), jnp.dtype(CANONICAL.get(dtype, dtype)))
    return jax.eval_shape(fn, x).dtype.name


def sum_dtype(dtype: str) -> str:
    """jnp.sum's result dtype (x64 off: int8 gives int32; on: int64)."""
    return _jnp_dtype(jnp.sum, dtype)


@SETTINGS
@given(shapes_axes(), st.sampled_from(DTYPES), st.booleans())
def test_sum_matches_numpy(sa: tuple, dtype: str, keepdims: bool) -> None:
    shape, axis = sa
    x = sample(shape, dtype)
    got = contract.sum(x, axis=axis, keepdims=keepdims)
    want = np.sum(wide(x), axis=expected_axes(axis, len(shape)), keepdims=keepdims)
    assert got.dtype == jnp.dtype(sum_dtype(dtype))
    assert got.shape == want.shape
    rtol = RTOL.get(CANONICAL.get(dtype, dtype), 0)
    np.testing.assert_allclose(np.asarray(got, dtype=want.dtype), want, rtol=rtol,
                               atol=rtol * 4)


def test_result_dtypes_follow_the_x64_switch_between_calls() -> None:
    # The eager fast path caches a compiled program per argument signature; the
    # x64 switch changes the result dtype, so it must be part of that key.
    x = jnp.ones(3, jnp.int32)
    before = bool(jax.config.jax_enable_x64)
    try:
        for on in (before, not before, before):
            with jax.enable_x64(on):
                assert contract.sum(x).dtype == jnp.sum(x).dtype, on
                # cumsum widens as jnp.sum does (jnp.cumsum keeps int32: coming_from.md).
                got = contract.cumsum(x)
                assert got.dtype == jnp.sum(x).dtype, on
                np.testing.assert_array_equal(got, jnp.cumsum(x))
        jax.config.update("jax_enable_x64", not before)
        assert contract.sum(x).dtype == jnp.sum(x).dtype
    finally:
        jax.config.update("jax_enable_x64", before)
    assert contract.sum(x).dtype == jnp.sum(x).dtype


def test_fast_path_key_tells_apart_what_changes_the_result() -> None:
    # A repeated eager call skips the argument checks on a key hit, so each
    # thing that changes params or validity must be in the key: the type of
    # a static argument (True vs 1), which argument a value is in, None vs a
    # value, and the array's shape and dtype.
    x = jnp.asarray(sample((2, 3, 4), "float32"))
    for _ in range(2):  # the second round runs on fast-path hits
        assert contract.sum(x, 1, True).shape == (2, 1, 4)
        with pytest.raises(ContractError, match="keepdims must be True or False"):
            contract.sum(x, 1, 1)
        assert contract.sum(x, 1).shape == (2, 4)
        assert contract.sum(x, dim=1).shape == (2, 4)
        assert contract.sum(x, axis=(0, 2)).shape == (3,)
        assert contract.sum(x, None).shape == ()
        with pytest.raises(ContractError, match="out of range"):
            contract.sum(x[0], 2)
        with pytest.raises(ContractError, match="both axis= and its alias dim="):
            contract.sum(x, 1, dim=1)
        assert contract.var(x, 1, correction=1).shape == (2, 4)
        with pytest.raises(ContractError, match="non-negative"):
            contract.var(x, 1, correction=-1)
        assert contract.sum(x.astype(jnp.int8), 1).dtype == jnp.dtype(sum_dtype("int8"))
    np.testing.assert_allclose(contract.sum(x, 1, True), np.sum(x, 1, keepdims=True), rtol=1e-6)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the ones-vector form is CPU-only")
@pytest.mark.parametrize("op,axis", [("var", (0, 2, 3)), ("std", (1, 2, 3)), ("var", 0),
                                     ("batch_stats", (0, 2, 3))])
def test_two_pass_programs_take_the_mean_with_a_reduce(op: str, axis: object) -> None:
    # A GEMV first pass made var 60-150 us slower per channel of (512, 3, 64,
    # 64) (see _Layout.reduction), so the eager program of var, std and
    # batch_stats is the one jnp.var compiles: reduces, no dot.
    from contract.ops import _compiled, moments
    x = sample((64, 3, 16, 16), "float32")  # large enough for the ones-vector sum
    assert "," in contract.lower(contract.sum, x, axis=axis).stages[0][0]  # sum: ones vectors
    low = contract.lower(getattr(contract, op), x, axis=axis)
    assert "," not in low.stages[0][0] and "ones vectors" not in str(low)
    if op == "batch_stats":
        (arr,), p = moments._stats_args(x, axis)
        kernel = moments._stats_kernel
    else:
        (arr,), p = moments._var_args(op, x, axis)
        kernel = moments._var_kernel
    ours = opcodes(_compiled._program(kernel, p), arr)
    assert "reduce" in ours and "dot" not in ours
    if op != "batch_stats":
        assert ours == opcodes(lambda v: getattr(jnp, op)(v, axis=axis), arr)
        got = getattr(contract, op)(x, axis=axis)
        np.testing.assert_allclose(got, getattr(np, op)(wide(x), axis=axis), rtol=1e-5)
    else:
        s = contract.batch_stats(x, axis=axis)
        np.testing.assert_allclose(s.var, np.var(wide(x), axis=axis), rtol=1e-5)
        np.testing.assert_allclose(s.mean, np.mean(wide(x), axis=axis), rtol=1e-5)


def test_sum_dtype_casts_first() -> None:
    # PyTorch: torch.sum(torch.tensor([1.5, 2.5]), dtype=torch.int32) == 3 (cast, then sum).
    assert contract.sum([1.5, 2.5], dtype=jnp.int32).item() == 3
    assert contract.sum([1.5, 2.5], dtype="int32").dtype == jnp.int32
    # The result is the requested dtype even when it wraps, as in NumPy/PyTorch.
    assert contract.sum(np.array([100, 100], np.int8), dtype="int8").item() == -56


def test_sum_widens_small_integers_and_accumulates_halves_in_float32() -> None:
    assert contract.sum(np.full(10, 100, np.int8)).item() == 1000
    assert contract.sum(np.full(300, 255, np.uint8)).item() == 76500
    ones = jnp.ones(10000, jnp.bfloat16)  # a bfloat16 accumulator would stop at 256
    got = contract.sum(ones)
    assert got.dtype == jnp.bfloat16 and got.item() == float(jnp.bfloat16(10000))
    assert contract.sum(jnp.ones(5000, jnp.float16)).item() == 5000


def test_sum_empty_and_size_one_axes() -> None:
    assert contract.sum(np.zeros((0, 3), np.float32), axis=0).tolist() == [0, 0, 0]
    assert contract.sum(np.zeros((2, 0)), axis=None).item() == 0
    assert contract.sum(np.ones((1, 3), np.int32), axis=0).tolist() == [1, 1, 1]
    assert contract.sum(np.ones((2, 3)), axis=()).shape == (2, 3)


# The torch comparisons of sum (dim, keepdim, dtype= over bool/int8/uint8/int32/
# float16/bfloat16/float32 inputs) are golden cases in test_torch_parity.py.


@SETTINGS
@given(st.sampled_from(["bool", "int8", "uint8", "int32", "float16", "bfloat16", "float32"]),
       st.sampled_from([None, "int32", "float32", "float16"]), st.data())
def test_sum_dtype_and_dim_match_jnp(dtype: str, cast: str | None, data: st.DataObject) -> None:
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    x = sample(shape, dtype)
    want = jnp.sum(jnp.asarray(x).astype(cast) if cast else jnp.asarray(x), axis=dim,
                   keepdims=keepdim, dtype=cast)
    got = contract.sum(x, dim=dim, keepdim=keepdim, dtype=cast)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=2e-2)


# ---------------------------------------------------------------- mean, var, std


def float_result(dtype: str, op: str) -> str:
    """jnp.mean/var/std's result dtype (complex64 variances are float32)."""
    return _jnp_dtype(getattr(jnp, op), dtype)


@SETTINGS
@given(shapes_axes(), st.sampled_from(DTYPES), st.sampled_from(["mean", "var", "std"]),
       st.sampled_from([0, 1]), st.booleans())
def test_moments_match_numpy(sa: tuple, dtype: str, op: str, ddof: int, keepdims: bool) -> None:
    shape, axis = sa
    x = sample(shape, dtype)
    kw = {} if op == "mean" else {"ddof": ddof}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns on empty axes
        want = getattr(np, op)(wide(x), axis=expected_axes(axis, len(shape)), keepdims=keepdims,
                               **kw)
    got = getattr(contract, op)(x, axis=axis, keepdims=keepdims, **kw)
    assert got.dtype == jnp.dtype(float_result(dtype, op))
    assert got.shape == np.shape(want)
    rtol = RTOL.get(CANONICAL.get(dtype, dtype), 2e-5)
    np.testing.assert_allclose(np.asarray(got, np.asarray(want).dtype), want, rtol=rtol,
                               atol=rtol * 4, equal_nan=True)


def test_var_is_centred_two_pass() -> None:
    # E[x^2] - E[x]^2 in float32 loses every digit here; the centred form does not.
    x = (1e4 + np.random.default_rng(0).standard_normal(4096)).astype(np.float32)
    want = np.var(x.astype(np.float64))
    np.testing.assert_allclose(contract.var(x), want, rtol=1e-3)
    naive = np.mean(x * x) - np.mean(x) ** 2
    assert abs(naive - want) > 10 * abs(float(contract.var(x)) - want)


def test_var_correction_aliases_match_numpy() -> None:
    # torch's var/std/mean with correction=, keepdim=, dim=(0, 1): golden cases
    # in test_torch_parity.py.
    x = np.random.default_rng(2).random((5, 6), dtype=np.float32)
    np.testing.assert_allclose(contract.var(x, dim=1, correction=1), np.var(x, 1, ddof=1),
                               rtol=1e-5)
    np.testing.assert_allclose(contract.std(x, dim=0, keepdim=True, unbiased=False),
                               np.std(x, 0, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(contract.mean(x, dim=(0, 1)), np.mean(x, (0, 1)), rtol=1e-5)


@pytest.mark.parametrize("n,correction", [(2, 2), (2, 3), (1, 1), (3, 2.5)])
def test_var_with_no_degrees_of_freedom_is_nan_like_jnp(n: int, correction: float) -> None:
    # N - correction <= 0 is NaN in jnp (NumPy and torch: inf where ss > 0).
    x = np.arange(1.0, n + 1, dtype=np.float32)
    for op in ("var", "std"):
        got = getattr(contract, op)(x, correction=correction)
        want = getattr(jnp, op)(x, ddof=correction)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    s = contract.batch_stats(x.reshape(1, n), axis=1, correction=correction)
    np.testing.assert_array_equal(s.var, jnp.var(x.reshape(1, n), axis=1, ddof=correction))


def test_mean_of_empty_axis_is_nan() -> None:
    assert np.isnan(contract.mean(np.zeros((0, 2), np.float32), axis=0)).all()


# ---------------------------------------------------------------- batch_stats


@pytest.mark.parametrize("axis", [(0, 2, 3), (1, 2, 3), None])
def test_batch_stats_image_batch(axis: object) -> None:
    batch = np.random.default_rng(4).random((6, 3, 5, 4), dtype=np.float32)
    s = contract.batch_stats(batch, axis=axis)
    np.testing.assert_allclose(s.sum, batch.sum(axis), rtol=1e-5)
    np.testing.assert_allclose(s.mean, batch.mean(axis), rtol=1e-5)
    np.testing.assert_allclose(s.var, batch.var(axis), rtol=1e-4)
    k = contract.batch_stats(batch, dim=axis, keepdim=True, correction=1)
    np.testing.assert_allclose(k.var, batch.var(axis, keepdims=True, ddof=1), rtol=1e-4)


def test_batch_stats_dtypes() -> None:
    x = np.arange(12, dtype=np.int8).reshape(3, 4)
    s = contract.batch_stats(x, axis=0)
    assert s.sum.dtype == jnp.sum(x, 0).dtype and s.mean.dtype == jnp.mean(x, 0).dtype
    assert s.sum.tolist() == x.sum(0).tolist()
    np.testing.assert_allclose(s.var, x.var(0), rtol=1e-6)


def test_batch_stats_is_one_program_of_einsums() -> None:
    jaxpr = jax.make_jaxpr(lambda x: contract.batch_stats(x, axis=(0, 2, 3)))(
        jnp.ones((4, 3, 2, 2)))
    prims = [e.primitive.name for e in jaxpr.eqns]
    assert "dot_general" in prims and "reduce_sum" in prims
    assert "mul" not in prims and "reduce_max" not in prims


# ---------------------------------------------------------------- jaxpr and lowering


def test_var_squares_are_never_materialised() -> None:
    x = jnp.ones((8, 16))
    jaxpr = jax.make_jaxpr(lambda x: contract.var(x, axis=0))(x)
    prims = {e.primitive.name: e for e in jaxpr.eqns}
    assert "dot_general" in prims
    assert not any(e.primitive.name in ("mul", "integer_pow", "square")
                   and e.outvars[0].aval.shape == x.shape for e in jaxpr.eqns)


def opcodes(fn, x) -> list[str]:
    """The sorted HLO opcodes XLA compiles ``fn`` to (fusion bodies included)."""
    return sorted(re.findall(r"= \S+ (\w+)\(", jax.jit(fn).lower(x).compile().as_text()))


@pytest.mark.parametrize("op,axis", [("sum", (0, 2, 3)), ("sum", None), ("mean", (1, 2, 3)),
                                     ("var", (0, 2, 3))])
def test_compiles_to_the_same_program_as_jnp(op: str, axis: object) -> None:
    # The einsum lowering costs nothing over jnp: XLA gets the same program.
    # (Below ~1k elements XLA CPU lowers var's dot_general through a small
    # transposed copy instead; the bench sizes compile identically.)
    x = jax.ShapeDtypeStruct((8, 3, 16, 16), jnp.float32)
    ours, ref = getattr(contract, op), getattr(jnp, op)
    assert opcodes(lambda v: ours(v, axis=axis), x) == opcodes(lambda v: ref(v, axis=axis), x)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the ones-vector form is CPU-only")
@pytest.mark.parametrize("axis,spec", [((0, 2, 3), "abc,a,c->b"), ((1, 2, 3), "ab,b->a"),
                                       (0, "ab,a->b"), (None, "abcd->")])
def test_large_float32_partial_sums_use_ones_vectors_on_cpu(axis: object, spec: str) -> None:
    # XLA's CPU reduce is slower than a GEMV with ones for partial sums of
    # large float32 arrays (see _GEMV_MIN_SIZE); results and grads must not change.
    x = sample((64, 3, 16, 16), "float32")
    assert contract.lower(contract.sum, x, axis=axis).stages[0][0] == spec
    for op in ("sum", "mean", "var"):
        got = getattr(contract, op)(x, axis=axis, keepdims=True)
        np.testing.assert_allclose(got, getattr(np, op)(wide(x), axis=axis, keepdims=True),
                                   rtol=1e-4, atol=1e-4)
        g = jax.grad(lambda v: getattr(contract, op)(v, axis=axis).sum())(x)
        want = jax.grad(lambda v: getattr(jnp, op)(v, axis=axis).sum())(x)
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-7)
    s = contract.batch_stats(x, axis=axis)
    np.testing.assert_allclose(s.sum, np.sum(wide(x), axis=axis), rtol=1e-5, atol=1e-4)
    # Integers and halves keep the single-operand reduce (exact / fused cast).
    assert contract.lower(contract.sum, x.astype(np.int32), axis=0).stages[0][0] == "abcd->bcd"


def test_lower_shows_the_einsum() -> None:
    x = np.ones((2, 3, 4, 5), np.float32)
    low = contract.lower(contract.sum, x, axis=1)
    assert low.stages == (("abcd->acd", ((2, 3, 4, 5),)),)
    assert contract.lower(contract.sum, x, axis=(0, 2, 3)).stages[0][0] == "abcd->b"
    assert "keepdims" in str(contract.lower(contract.sum, x, axis=0, keepdims=True))
    v = contract.lower(contract.var, x, axis=(0, 2, 3))
    assert [s for s, _ in v.stages] == ["abcd->b", "abcd,abcd->b"]
    assert contract.lower(contract.mean, x).stages[0][0] == "abcd->"
    assert f"result {sum_dtype('int8')}" in str(contract.lower(contract.sum, np.ones(3, np.int8)))


# ---------------------------------------------------------------- transformations


@pytest.mark.parametrize("op,ref", [(contract.sum, jnp.sum), (contract.mean, jnp.mean),
                                    (contract.var, jnp.var), (contract.std, jnp.std)])
def test_grad_jit_vmap_match_jnp(op, ref) -> None:
    x = jnp.asarray(np.random.default_rng(5).standard_normal((3, 4, 5)), jnp.float32)
    for axis in (None, 1, (0, 2)):
        g = jax.grad(lambda v: op(v, axis=axis).sum())(x)
        np.testing.assert_allclose(g, jax.grad(lambda v: ref(v, axis=axis).sum())(x),
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(jax.jit(lambda v: op(v, axis=axis))(x), ref(x, axis=axis),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda v: op(v, axis=0))(x), ref(x, axis=1),
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("call,match", [
    (lambda: contract.sum(np.ones((2, 3)), axis=2), "out of range"),
    (lambda: contract.sum(np.ones((2, 3)), axis=(0, -2)), "more than once"),
    (lambda: contract.sum(np.ones((2, 3)), axis=1.5), "axis"),
    (lambda: contract.sum(np.ones(2), axis=0, dim=0), "both axis= and its alias dim="),
    (lambda: contract.sum(np.ones(2), keepdims=True, keepdim=True), "keepdim"),
    (lambda: contract.sum(np.ones(2), keepdims="yes"), "True or False"),
    (lambda: contract.sum(np.ones(2), out=np.ones(())), "immutable"),
    (lambda: contract.sum(np.ones(2), dtype="not-a-dtype"), "not a dtype"),
    (lambda: contract.sum(np.ones(2), dtype=object), "not numeric"),
    (lambda: contract.sum("abc"), "not an array"),
    (lambda: contract.mean(np.ones(2), dtype="int32"), "not a floating"),
    (lambda: contract.var(np.ones(2), correction=1, ddof=1), "both correction="),
    (lambda: contract.std(np.ones(2), ddof=-1), "non-negative"),
    (lambda: contract.batch_stats(np.ones((2, 2)), axis=3), "out of range"),
    (lambda: contract.lower(contract.mean, np.ones(2), dim=1), "out of range"),
])
def test_errors(call, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        call()


def test_traced_sum_of_a_product_stays_a_fusible_reduce():
    # Under jax.jit the input of sum may be an expression XLA fuses into a
    # reduce; the ones-vector dot_general form would store the product first.
    a = np.ones((256, 256), np.float32)
    jaxpr = jax.make_jaxpr(lambda a, b: contract.sum(a * b, 0))(a, a)
    prims = [e.primitive.name for e in jaxpr.jaxpr.eqns]
    assert "reduce_sum" in prims and "dot_general" not in prims
    np.testing.assert_allclose(jax.jit(lambda a, b: contract.sum(a * b, 0))(a, a),
                               np.full(256, 256.0))


@pytest.mark.parametrize("op", [contract.sum, contract.mean, contract.var, contract.batch_stats])
def test_a_0d_array_has_no_axis_to_reduce(op):
    with pytest.raises(ContractError, match=r"axis 0 is out of range for an array of rank 0 .*axis=None"):
        op(np.ones(()), 0)
    assert float(contract.sum(np.float32(2.5))) == 2.5  # axis=None is fine


def test_clear_caches_empties_the_eager_op_caches() -> None:
    # The fast path's programs, keys and array types are registered caches:
    # contract.clear_caches() empties them, and the next call fills them again.
    ops = ("op array types", "op programs", "op fast path")
    x = jnp.ones((2, 3))
    assert contract.sum(x, 0).tolist() == [2.0, 2.0, 2.0]
    assert all(contract.plan_cache_info()[name]["size"] > 0 for name in ops)
    contract.clear_caches(disk=False)
    assert all(contract.plan_cache_info()[name]["size"] == 0 for name in ops)
    assert contract.mean(x, 1).tolist() == [1.0, 1.0]
    info = contract.plan_cache_info()
    assert info["op array types"]["size"] == 1 and info["op fast path"]["size"] == 1
