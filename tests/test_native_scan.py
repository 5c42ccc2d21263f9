"""The native scan kernel (contract/scan.cc, contract/backend/scan.py) against
NumPy's cumsum: every walk it has (lanes side by side, lanes in lock step,
chunked lanes), both directions, every dtype, derivatives, vmap, concurrent
calls, and where it must not be used."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest
from jax.test_util import check_grads

import contract
from contract.backend.scan import cumsum, usable

CALL = 'custom_call_target="contract_cumsum_'
# (shape, axis) -> which path of scan.cc it takes (inner = elements after the axis).
SHAPES = [
    ((7,), 0),               # tiny: one thread, one lane
    ((1_000_003,), 0),       # one long lane: chunks, lock-step groups, a shorter last chunk
    ((300, 4099), 1),        # minor axis: groups of 8 rows, tiles of 16 and a tail
    ((13, 5), 1),            # fewer lanes than a group
    ((5, 20_000, 3), 1),     # inner 3: strided lanes, chunked
    ((40_000, 16), 0),       # inner 16: lanes walked as vectors, chunked
    ((3, 600, 1100), 1),     # inner 1100: three column blocks per row
    ((1024, 64), 0),         # wide, one chunk
    ((2, 1, 3), 1),          # a length-1 axis
]


def _reference(x: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
    wide = x.astype(np.float64 if x.dtype.kind == "f" else x.dtype)
    if reverse:
        return np.flip(np.cumsum(np.flip(wide, axis), axis=axis, dtype=wide.dtype), axis)
    return np.cumsum(wide, axis=axis, dtype=wide.dtype)


def _data(shape: tuple, dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def test_usable_here() -> None:
    """CI has a compiler: the kernel must load, not fall back silently."""
    assert usable("float32") and usable("int32") and usable("uint32")
    assert not usable("complex64") and not usable("bfloat16") and not usable("int8")


@pytest.mark.parametrize("shape, axis", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "int32", "uint32"])
def test_matches_numpy(shape: tuple, axis: int, dtype: str) -> None:
    x = _data(shape, dtype, seed=len(shape))
    for reverse in (False, True):
        got = np.asarray(jax.jit(lambda v: cumsum(v, axis, reverse))(x))
        want = _reference(x, axis, reverse)
        assert got.dtype == x.dtype and got.shape == x.shape
        if dtype == "float32":
            # float64 accumulation: each output is the exact sum rounded once.
            np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, want)


def test_64_bit_types_in_x64_mode() -> None:
    with jax.enable_x64(True):
        for dtype in ("float64", "int64", "uint64"):
            x = _data((50, 9000), dtype, seed=3)
            for axis in (0, 1):
                got = np.asarray(cumsum(x, axis, True))
                np.testing.assert_array_equal(got, _reference(x, axis, True)) \
                    if dtype != "float64" else np.testing.assert_allclose(
                        got, _reference(x, axis, True), rtol=1e-12)


def test_integers_wrap_as_numpy_does() -> None:
    x = np.full(70_000, 2**30 + 7, np.int32)
    np.testing.assert_array_equal(cumsum(x, 0, False), np.cumsum(x, dtype=np.int32))
    u = np.full((9000, 20), 2**31 + 3, np.uint32)
    np.testing.assert_array_equal(cumsum(u, 0, True), _reference(u, 0, True))


def test_float32_error_is_one_rounding() -> None:
    """1e6 float32 values: every prefix within half an ulp of the exact sum."""
    x = np.random.default_rng(5).random(10**6, dtype=np.float32)
    exact = np.cumsum(x.astype(np.float64))
    got = np.asarray(cumsum(x, 0, False), np.float64)
    assert np.all(np.abs(got - exact) <= np.spacing(np.abs(exact).astype(np.float32)) * 0.5 + 1e-9)


def test_empty_arrays() -> None:
    for shape, axis in (((0,), 0), ((3, 0), 1), ((0, 4), 1)):
        x = np.zeros(shape, np.float32)
        assert cumsum(x, axis, False).shape == shape


def test_derivatives_forward_and_reverse() -> None:
    with jax.enable_x64(True):
        x = _data((4, 37), "float64", seed=6)
        for axis in (0, 1):
            for reverse in (False, True):
                check_grads(lambda v: cumsum(v, axis, reverse), (x,), order=2,
                            modes=("fwd", "rev"))


def test_vmap_keeps_the_axis() -> None:
    x = _data((5, 6, 300), "float32", seed=7)
    for axis in (0, 1):
        got = jax.jit(jax.vmap(lambda v: cumsum(v, axis, False)))(x)
        np.testing.assert_allclose(got, _reference(x, axis + 1, False), rtol=1e-5, atol=1e-5)


def test_concurrent_calls_in_one_program() -> None:
    """Independent scans may run at once on XLA's threads; neither may wait
    for work the other's threads hold (the kernel never waits for an item
    that has not started)."""
    a, b = _data((512, 4096), "float32", 1), _data((4096, 512), "int32", 2)
    fn = jax.jit(lambda u, v: (cumsum(u, 1, False), cumsum(v, 0, True), cumsum(u, 0, False)))
    for _ in range(20):
        got = fn(a, b)
    np.testing.assert_allclose(got[0], _reference(a, 1, False), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(got[1], _reference(b, 0, True))
    np.testing.assert_allclose(got[2], _reference(a, 0, False), rtol=1e-5, atol=1e-3)


def test_not_used_with_several_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """A custom call has no sharding rule: multi-device processes keep XLA's lowering."""
    monkeypatch.setattr(jax, "device_count", lambda *_: 4)
    assert not usable("float32")
    x = _data((64, 300), "float32", 8)
    fn = jax.jit(lambda v: contract.cumsum(v, axis=1))
    np.testing.assert_allclose(fn(x), np.cumsum(x, 1), rtol=1e-5, atol=1e-4)
    assert CALL not in fn.lower(x).compile().as_text()


def test_contract_cumsum_takes_it_by_default(kernel: str) -> None:
    x: Any = _data((64, 3000), "int32", 9)
    hlo = jax.jit(lambda v: contract.cumsum(v, axis=1)).lower(x).compile().as_text()
    assert (f"{CALL}s" in hlo) == (kernel == "native")  # s32, or s64 with x64
    explicit = jax.jit(lambda v: contract.cumsum(v, axis=1, block=32)).lower(x).compile()
    assert CALL not in explicit.as_text()  # block= asks for the triangles
