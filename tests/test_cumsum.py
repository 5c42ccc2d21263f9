"""contract.cumsum against NumPy and jax.numpy: the native CPU scan kernel and
the portable lowering (blocked triangular einsums, integer row additions),
each value test run both ways through the ``kernel`` fixture.

PyTorch parity (dim=, dtype= casting first, widening, empty and 0-d inputs)
is checked against torch's recorded outputs in test_torch_parity.py.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import contract
from contract import ContractError
from contract.ops import scan
from contract.ops.scan import block_length

DTYPES = ["bool", "int8", "int16", "int32", "uint8", "uint16", "uint32",
          "float16", "bfloat16", "float32", "complex64"]
# Result dtypes: bool and integers widen as jnp.sum widens them (x64 off: to
# 32 bits, on: to 64; CI runs this file in both modes), floats keep theirs.
RESULT = {d: jax.eval_shape(jnp.sum, jax.ShapeDtypeStruct((1,), jnp.dtype(d))).dtype.name
          if jnp.dtype(d).kind in "biu" else d for d in DTYPES}


def _random(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape).astype(dtype)
    if dtype == "complex64":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return np.asarray(jnp.asarray(rng.standard_normal(shape), dtype))


def _reference(x: np.ndarray, axis: int | None, reverse: bool) -> np.ndarray:
    """NumPy's cumsum in 64 bits (flip-cumsum-flip for reverse)."""
    wide = x.astype(np.complex128 if x.dtype.kind == "c" else
                    np.float64 if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else np.int64)
    if axis is None:
        wide, axis = wide.reshape(-1), 0
    if reverse:
        return np.flip(np.cumsum(np.flip(wide, axis), axis=axis), axis)
    return np.cumsum(wide, axis=axis)


def _check(got: jax.Array, x: np.ndarray, axis: int | None, reverse: bool) -> None:
    dtype = jnp.dtype(x.dtype).name
    assert str(got.dtype) == RESULT[dtype]
    want = _reference(x, axis, reverse)
    assert got.shape == want.shape
    got64 = np.asarray(got.astype(jnp.complex64 if dtype == "complex64" else jnp.float32)
                       if dtype in ("float16", "bfloat16") else got)
    if want.dtype.kind == "i":
        np.testing.assert_array_equal(got64, want)
        return
    # Float error bound: the result's own rounding plus float32 accumulation,
    # relative to the running sum of magnitudes.
    eps = {"float16": 2e-3, "bfloat16": 1.6e-2}.get(dtype, 1e-5)
    scale = _reference(np.abs(x).astype(np.float64), axis, reverse) + 1.0
    assert np.all(np.abs(got64 - want) <= eps * scale)


# --- the seed examples, literally -------------------------------------------------

def test_seed_examples() -> None:
    assert contract.cumsum([1, 2, 3, 4]).tolist() == [1, 3, 6, 10]
    x = [[5, 6, 7], [1, 2, 3]]
    assert contract.cumsum(x, axis=1).tolist() == [[5, 11, 18], [1, 3, 6]]
    assert contract.cumsum(x, axis=0).tolist() == [[5, 6, 7], [6, 8, 10]]
    assert contract.cumsum(x, dim=1).tolist() == [[5, 11, 18], [1, 3, 6]]
    got = contract.cumsum([1.5, 2.5, 3.5], 0, dtype=jnp.int32)
    assert got.tolist() == [1, 3, 6] and got.dtype == jnp.int32


def test_axis_none_flattens_like_numpy() -> None:
    x = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(contract.cumsum(x), np.cumsum(x))
    assert contract.cumsum(np.float32(5)).shape == (1,)  # 0-d becomes 1-d, as in NumPy
    assert contract.cumsum(np.float32(5), axis=0).tolist() == [5.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes(dtype: str, kernel: str) -> None:
    x = _random((3, 70), dtype)
    _check(contract.cumsum(x, axis=1, block=4), x, 1, False)
    _check(contract.cumsum(x, axis=0), x, 0, False)


@pytest.mark.parametrize("dtype", ["bool", "int8", "int16", "int32", "uint8", "float16",
                                   "bfloat16", "float32"])
def test_dtype_casts_first_and_is_the_result_dtype(dtype: str) -> None:
    # NumPy, jnp and torch: dtype= casts the input, scans, and is the result
    # dtype (int8 wraps; bool is a running "any"). torch: test_torch_parity.py.
    x = np.array([[1.5, -2.5, 3.75, 0.0], [7.25, 0.5, -1.5, 2.0], [100.0, 100.0, 0.0, 9.0]],
                 np.float32)
    if dtype == "uint8":
        x = np.abs(x)  # a negative float cast to uint8 is undefined in C
    got = contract.cumsum(x, axis=1, dtype=dtype)
    want = jnp.cumsum(jnp.asarray(x), axis=1, dtype=dtype)
    assert got.dtype == want.dtype == jnp.dtype(dtype)
    cast = np.asarray(jnp.asarray(x).astype(dtype))
    if dtype in ("float16", "bfloat16"):  # one rounding of the float32 scan
        exact = np.cumsum(cast.astype(np.float64), axis=1)
        np.testing.assert_allclose(np.asarray(got, np.float64), exact, rtol=1e-2)
    else:
        np.testing.assert_array_equal(np.asarray(got), np.cumsum(cast, axis=1, dtype=dtype))


def test_narrow_integers_do_not_overflow(kernel: str) -> None:
    x = np.full(1000, 127, np.int8)
    got = contract.cumsum(x)
    assert got.dtype == RESULT["int8"] and int(got[-1]) == 127_000
    assert int(contract.cumsum(np.full(60000, 65535, np.uint16))[-1]) == 60000 * 65535  # > 2**31


def test_int32_is_exact_over_long_axes(kernel: str) -> None:
    x = np.random.default_rng(3).integers(-(2**20), 2**20, 300_000).astype(np.int32)
    np.testing.assert_array_equal(contract.cumsum(x), np.cumsum(x.astype(np.int64)))


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1023, 1025, 32 * 128, 32 * 128 + 1, 40_000])
def test_lengths_around_the_block_structure(n: int, kernel: str) -> None:
    """Lengths below, at and past L, L*B (one row) and many rows (recursion);
    for the native kernel, past its tile (16) and chunk (4096) lengths."""
    x = _random((2, n), "int32", seed=n)
    for reverse in (False, True):
        _check(contract.cumsum(x, axis=1, reverse=reverse), x, 1, reverse)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 9), min_size=1, max_size=3).map(tuple),
       data=st.data(), dtype=st.sampled_from(DTYPES), reverse=st.booleans(),
       block=st.sampled_from([2, 3, 4, None]))
def test_against_numpy(shape: tuple[int, ...], data: st.DataObject, dtype: str, reverse: bool,
                       block: int | None) -> None:
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    x = _random(shape, dtype, seed=len(shape))
    _check(contract.cumsum(x, axis=axis, reverse=reverse, block=block), x, axis, reverse)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 400), block=st.integers(2, 5), reverse=st.booleans())
def test_deep_recursion_over_rows(n: int, block: int, reverse: bool) -> None:
    """Rows of at most 4 blocks: many levels of row carries, odd paddings."""
    x = _random((2, n), "int16", seed=n)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scan, "_ROW", 4)
        kernel = functools.partial(scan._kernel, axis=1, cast=None, reverse=reverse, block=block)
        _check(jax.jit(kernel)(x), x, 1, reverse)


def test_reverse_is_flip_cumsum_flip(kernel: str) -> None:
    x = _random((4, 150, 3), "float32")
    for axis in range(3):
        want = jnp.flip(contract.cumsum(jnp.flip(x, axis), axis=axis), axis)
        np.testing.assert_allclose(contract.cumsum(x, axis=axis, reverse=True), want,
                                   rtol=1e-5, atol=1e-4)


def test_float32_accuracy_no_worse_than_sequential_scan(kernel: str) -> None:
    """Max abs error against float64 on 1e6 elements (no timing)."""
    rng = np.random.default_rng(7)
    for x in (rng.random(10**6, dtype=np.float32), rng.standard_normal(10**6, dtype=np.float32)):
        exact = np.cumsum(x.astype(np.float64))
        ours = np.abs(np.asarray(contract.cumsum(x), np.float64) - exact).max()
        xla = np.abs(np.asarray(jax.jit(jnp.cumsum)(x), np.float64) - exact).max()
        sequential = np.abs(np.cumsum(x).astype(np.float64) - exact).max()
        assert ours <= 4 * xla
        assert ours <= sequential


def test_jit_grad_vmap(kernel: str) -> None:
    x = _random((3, 100), "float32")
    f = jax.jit(lambda v: contract.cumsum(v, axis=1))
    np.testing.assert_allclose(f(x), np.cumsum(x, axis=1), rtol=1e-5, atol=1e-5)
    w = _random((3, 100), "float32", seed=1)
    for reverse in (False, True):
        ours = jax.grad(lambda v: jnp.sum(w * contract.cumsum(v, axis=1, reverse=reverse)))(x)
        ref = jax.grad(lambda v: jnp.sum(w * jnp.flip(jnp.cumsum(jnp.flip(v, 1), 1), 1)
                                         if reverse else w * jnp.cumsum(v, axis=1)))(x)
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)
    batched = jax.vmap(lambda v: contract.cumsum(v, reverse=True))(x)
    np.testing.assert_allclose(batched, np.flip(np.cumsum(np.flip(x, 1), 1), 1), rtol=1e-5,
                               atol=1e-4)


def test_lower_shows_the_einsum_stages_and_block(kernel: str) -> None:
    x = np.ones((1024, 4096), np.float32)
    default = str(contract.lower(contract.cumsum, x, axis=1))
    assert ("native scan kernel" in default) == (kernel == "native")
    low = contract.lower(contract.cumsum, x, axis=1, block=block_length())  # asks for L
    specs = [spec for spec, _ in low.stages]
    assert specs == ["pbl->pb", "pb,bc->pc", "bl,lm->bm"]
    assert low.stages[2][1] == ((1024 * 4096 // block_length(), block_length()),
                                (block_length(), block_length()))
    assert f"L={block_length()}" in str(low)
    deep = contract.lower(contract.cumsum, np.ones(10**6, np.float32), dim=0, block=32)
    assert "prb->pr" in [spec for spec, _ in deep.stages]  # rows carried recursively


@pytest.mark.parametrize("shape, axis", [((10**6,), 0), ((256, 1000), 1), ((64, 3, 500), 0),
                                         ((7, 9000, 3), 1)])
@pytest.mark.parametrize("dtype", ["float32", "int32", "uint32"])
def test_native_kernel_is_one_custom_call(shape: tuple, axis: int, dtype: str,
                                          kernel: str) -> None:
    """On CPU the default lowering is one call of the native kernel, nothing else
    of the array's size: no dot, no reduce-window, no loop."""
    x = _random(shape, dtype, seed=9)
    for reverse in (False, True):
        fn = jax.jit(lambda v: contract.cumsum(v, axis=axis, reverse=reverse))
        _check(fn(x), x, axis, reverse)
        hlo = fn.lower(x).compile().as_text()
        calls = hlo.count('custom_call_target="contract_cumsum_')  # not the test's own name
        assert calls == (kernel == "native"), hlo
        if kernel == "native":
            assert not any(op in hlo for op in (" dot(", "reduce-window(", " while("))


def test_native_int32_wraps_like_numpy(kernel: str) -> None:
    x = np.full(5000, 2**30, np.int32)
    want = np.cumsum(x, dtype=np.int32)  # wraps past 2**31
    np.testing.assert_array_equal(contract.cumsum(x, dtype="int32"), want)


@pytest.mark.parametrize("dtype", ["int32", "uint32", "int8", "bool"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kernel", ["portable"], indirect=True)
def test_integers_along_a_leading_axis_scan_rows(dtype: str, reverse: bool, kernel: str) -> None:
    x = _random((1, 300, 8, 128), dtype, seed=4)
    got = contract.cumsum(x, axis=1, reverse=reverse)
    _check(got, x, 1, reverse)
    jaxpr = jax.make_jaxpr(lambda v: contract.cumsum(v, axis=1, reverse=reverse))(x)
    names = {e.primitive.name for e in jaxpr.jaxpr.eqns}
    assert "scan" in names and "dot_general" not in names, names
    assert "row addition" in str(contract.lower(contract.cumsum, x, axis=1, reverse=reverse))
    # Narrow rows, or an axis with something before it: the blocked einsums.
    for shape, axis in (((300, 8), 0), ((2, 300, 1024), 1)):
        y = _random(shape, dtype, seed=5)
        _check(contract.cumsum(y, axis=axis, reverse=reverse), y, axis, reverse)
        names = {e.primitive.name for e in jax.make_jaxpr(
            lambda v: contract.cumsum(v, axis=axis, reverse=reverse))(y).jaxpr.eqns}
        assert "scan" not in names


@pytest.mark.parametrize("kwargs, match", [
    ({"axis": 2}, "out of range"),
    ({"axis": -3}, "out of range"),
    ({"axis": (0, 1)}, "single int"),
    ({"axis": 1.0}, "single int"),
    ({"axis": 0, "dim": 0}, "both axis= and its alias dim="),
    ({"dtype": "word"}, "not a dtype"),
    ({"dtype": object}, "not"),
    ({"out": np.zeros((2, 3))}, "immutable"),
    ({"reverse": "yes"}, "reverse"),
    ({"block": 1}, "block"),
    ({"block": 2.0}, "block"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        contract.cumsum(np.ones((2, 3)), **kwargs)


def test_bad_operands() -> None:
    with pytest.raises(ContractError, match="not an array"):
        contract.cumsum("abc")
    with pytest.raises(ContractError, match="not numeric"):
        contract.cumsum(np.array(["a", "b"]))
    with pytest.raises(ContractError, match="out of range"):
        contract.cumsum(np.float32(1), axis=1)
