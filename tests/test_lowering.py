"""Narrow and unsigned dtypes in contract.backend.jax: what each step's dot takes.

int8 and bfloat16 operands reach the dot as they are, which accumulates them
in int32/float32 (preferred_element_type); unsigned steps run as the signed dot
of the same bits. Values against NumPy (wrap-around included), eager and under
jax.jit, and the compiled HLO's dot operand types.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract

SPECS = [("ij,jk->ik", [(24, 16), (16, 8)]), ("bij,bjk->bik", [(2, 6, 5), (2, 5, 3)]),
         ("ij,jk,kl->il", [(6, 5), (5, 4), (4, 3)]), ("ii,ij->j", [(5, 5), (5, 3)])]


def _dot_operands(fn, *args) -> list[str]:
    """The lhs element type of every dot_general in the lowered program (StableHLO)."""
    text = jax.jit(fn).lower(*args).as_text()
    shapes = re.findall(r"stablehlo\.dot_general.*: \(tensor<([^>]*)>, ", text)
    return [s.split("x")[-1] for s in shapes]


@pytest.mark.parametrize("spec, shapes", SPECS, ids=[s for s, _ in SPECS])
@pytest.mark.parametrize("dtype", ["int8", "uint8", "uint16", "uint32", "int16"])
def test_integers_wrap_like_numpy(spec: str, shapes: list, dtype: str) -> None:
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    ops = [rng.integers(info.min, info.max, s, endpoint=True).astype(dtype) for s in shapes]
    # numpy in int64, wrapped to the accumulation width (32 bits) then the result dtype
    acc = np.uint32 if info.min == 0 else np.int32
    want = np.einsum(spec, *[x.astype(np.int64) for x in ops]).astype(acc).astype(dtype)
    for run in (lambda *x: contract.einsum(spec, *x), jax.jit(lambda *x: contract.einsum(spec, *x))):
        got = np.asarray(run(*ops))
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)


def test_int8_with_int32_results_reaches_the_dot_as_int8() -> None:
    # Under 64 a side, so XLA's dot and not the MKL kernel (tests/test_native.py).
    a = np.random.default_rng(1).integers(-128, 128, (48, 48)).astype(np.int8)
    fn = lambda x, y: contract.einsum("ij,jk->ik", x, y, preferred_element_type=jnp.int32)
    got = np.asarray(fn(a, a))
    np.testing.assert_array_equal(got, a.astype(np.int64) @ a.astype(np.int64))
    assert _dot_operands(fn, a, a) == ["i8"]


def test_bfloat16_reaches_the_dot_as_bfloat16_and_accumulates_in_float32() -> None:
    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.standard_normal((64, 256)), jnp.bfloat16)
    b = jnp.asarray(rng.standard_normal((256, 32)), jnp.bfloat16)
    fn = lambda x, y: contract.einsum("ij,jk->ik", x, y)
    got = fn(a, b)
    assert got.dtype == jnp.bfloat16
    exact = np.asarray(a, np.float64) @ np.asarray(b, np.float64)
    # one bfloat16 rounding of a float32 sum of exact products
    np.testing.assert_allclose(np.asarray(got, np.float64), exact, rtol=2**-8,
                               atol=2**-8 * np.abs(exact).max() / 16)
    assert _dot_operands(fn, a, b) == ["bf16"]


def test_unsigned_steps_run_as_signed_dots() -> None:
    a = np.random.default_rng(3).integers(0, 2**32, (32, 32), dtype=np.uint64).astype(np.uint32)
    fn = lambda x, y: contract.einsum("ij,jk->ik", x, y)
    np.testing.assert_array_equal(np.asarray(fn(a, a)),
                                  (a.astype(object) @ a.astype(object) % 2**32).astype(np.uint32))
    assert _dot_operands(fn, a, a) == ["i32"]


def test_mixed_narrow_operands_are_cast_first() -> None:
    a = np.arange(12, dtype=np.int8).reshape(3, 4)
    b = np.arange(8, dtype=np.float32).reshape(4, 2)
    got = contract.einsum("ij,jk->ik", a, b)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, a.astype(np.float32) @ b)
