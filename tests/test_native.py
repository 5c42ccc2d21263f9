"""The BLAS GEMM kernel (contract/native.py, contract/backend/blas.py): it builds,
it computes what ``lax.dot_general`` computes on every layout, it differentiates
and batches, it is used only where it may be, and every way of not having it
falls back to XLA's dots with the same values."""

from __future__ import annotations

import re
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import contract
from contract import native
from contract.backend.blas import gemm_dot, usable
from contract.backend.policy import lowerings
from tests._helpers import rearm

DIMS = [  # lhs shape, rhs shape, dot_general dimension numbers
    ((4, 5), (5, 3), (((1,), (0,)), ((), ()))),
    ((5, 4), (5, 3), (((0,), (0,)), ((), ()))),  # lhs transposed: a BLAS flag
    ((4, 5), (3, 5), (((1,), (1,)), ((), ()))),  # rhs transposed
    ((2, 4, 5), (2, 5, 3), (((2,), (1,)), ((0,), (0,)))),
    ((4, 2, 5), (5, 3, 2), (((2,), (0,)), ((1,), (2,)))),  # batch not leading: copies
    ((2, 3, 4, 5), (4, 5, 6), (((2, 3), (0, 1)), ((), ()))),  # two contracted axes
    ((2, 3, 4, 5), (6, 5, 4), (((2, 3), (2, 1)), ((), ()))),
    ((3, 0, 4), (3, 4, 2), (((2,), (1,)), ((0,), (0,)))),  # empty rows
    ((3, 4, 0), (3, 0, 2), (((2,), (1,)), ((0,), (0,)))),  # empty sum: zeros
    ((7, 3), (7,), (((0,), (0,)), ((), ()))),
]


def _complex(shape: tuple, seed: int, dtype: Any = np.complex64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _calls(hlo: str) -> list[str]:
    return re.findall(r'custom_call_target="(contract_gemm_\w+)"', hlo)


def test_the_kernel_builds_here() -> None:
    """CI has a C++ compiler and SciPy: the kernel must load, not fall back silently."""
    assert native.status() == "available" and usable("complex64") and usable("float32")
    assert not usable("int32")
    assert usable("bfloat16") == usable("int8") == (native.blas() == "mkl")


@pytest.mark.parametrize("lhs, rhs, dims", DIMS)
@pytest.mark.parametrize("dtype", ["float32", "complex64", "bfloat16"])
def test_gemm_dot_matches_dot_general(lhs: tuple, rhs: tuple, dims: Any, dtype: str) -> None:
    """Every layout, against a float64/complex128 product of the same values
    (bfloat16 operands: a float32 result, as ``preferred_element_type`` gives)."""
    a, b = _complex(lhs, 1), _complex(rhs, 2)
    if dtype != "complex64":
        a, b = a.real.copy(), b.real.copy()
    if dtype == "bfloat16":
        a, b = (np.asarray(jnp.asarray(x, jnp.bfloat16)) for x in (a, b))
    want = np.asarray(lax.dot_general(a.astype(np.complex128), b.astype(np.complex128), dims))
    if dtype != "complex64":
        want = want.real
    result = np.float32 if dtype == "bfloat16" else np.dtype(dtype)
    scale = max(1.0, np.abs(want).max(initial=0.0))
    for fn in (lambda x, y: gemm_dot(x, y, dims), jax.jit(lambda x, y: gemm_dot(x, y, dims))):
        got = np.asarray(fn(jnp.asarray(a), jnp.asarray(b)))
        assert got.shape == want.shape and got.dtype == result
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale)
    if dtype == "complex64":
        return
    # The float32 GEMM on bfloat16 operands widened in the kernel, and the
    # float32 product rounded to bfloat16 there: one rounding (2^-8) more.
    variants = ([dict(widened=True), dict(widened=True, rounded=True)] if dtype == "bfloat16"
                else [dict(rounded=True)])
    for kw in variants:
        got = gemm_dot(jnp.asarray(a), jnp.asarray(b), dims, **kw)
        assert got.dtype == (jnp.bfloat16 if kw.get("rounded") else jnp.float32)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=2 ** -8,
                                   atol=1e-5 * scale)


def test_complex128_in_x64_mode_is_zgemm() -> None:
    with jax.enable_x64(True):
        a, b = _complex((3, 40, 30), 3, np.complex128), _complex((3, 30, 20), 4, np.complex128)
        dims = (((2,), (1,)), ((0,), (0,)))
        fn = jax.jit(lambda x, y: gemm_dot(x, y, dims))
        np.testing.assert_allclose(fn(a, b), np.matmul(a, b), rtol=1e-12)
        assert _calls(fn.lower(a, b).compile().as_text()) == ["contract_gemm_c128"]


def test_derivatives_forward_and_reverse_to_second_order() -> None:
    with jax.enable_x64(True):
        a, b = _complex((5, 6, 4), 5, np.complex128), _complex((6, 5, 3), 6, np.complex128)
        dims = (((0, 1), (1, 0)), ((), ()))
        check_grads(lambda x, y: gemm_dot(x, y, dims), (a, b), order=2, modes=("fwd", "rev"))


def test_vmap_batches_through_the_kernel() -> None:
    a, b = _complex((6, 2, 4, 5), 7), _complex((2, 5, 3), 8)
    dims = (((2,), (1,)), ((0,), (0,)))
    got = jax.jit(jax.vmap(lambda x: gemm_dot(x, b, dims)))(a)
    np.testing.assert_allclose(got, np.matmul(a, b[None]), rtol=1e-5, atol=1e-5)


def test_not_used_with_several_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """A custom call has no sharding rule: multi-device processes keep XLA's dots."""
    monkeypatch.setattr(jax, "device_count", lambda *_: 4)
    assert not usable("complex64")
    a, b = _complex((64, 48), 9), _complex((48, 40), 10)
    hlo = jax.jit(lambda x, y: contract.einsum("ij,jk->ik", x, y)).lower(a, b).compile().as_text()
    assert _calls(hlo) == []


def _fallback_is_right() -> None:
    a, b = _complex((3, 64, 48), 11), _complex((3, 48, 40), 12)
    got = contract.einsum("bij,bjk->bik", a, b)
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, atol=1e-4)
    hlo = jax.jit(lambda x, y: contract.einsum("bij,bjk->bik", x, y)).lower(a, b).compile()
    assert _calls(hlo.as_text()) == []


def _broken(monkeypatch: pytest.MonkeyPatch, how: str, tmp_path: Any) -> None:
    """Make the next load meet the kernels missing, damaged or built for an
    FFI version this jaxlib lacks (the three ways an install can go wrong)."""
    import importlib.machinery
    import importlib.util
    import sys

    monkeypatch.delitem(sys.modules, "contract._kernels", raising=False)
    if how == "missing":  # installed with CONTRACT_FFI=OFF: no module at all
        monkeypatch.setitem(sys.modules, "contract._kernels", None)
    elif how == "damaged":  # a truncated file, as a full disk leaves it
        path = tmp_path / ("_kernels" + importlib.machinery.EXTENSION_SUFFIXES[0])
        path.write_bytes(b"\x7fELF" + b"\0" * 60)

        class Finder:
            @staticmethod
            def find_spec(name: str, *_: Any) -> Any:
                if name != "contract._kernels":
                    return None
                return importlib.util.spec_from_file_location(name, path)

        monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    else:  # built against a newer FFI API than the running jaxlib has
        monkeypatch.setattr(native, "running_ffi_version", lambda: (0, 0))
    rearm()


@pytest.mark.parametrize("how, why", [
    ("missing", "installed without its FFI kernels"),
    ("damaged", "does not load"),
    ("version", r"built against XLA FFI API \d+\.\d+ .* does not support"),
])
def test_unusable_kernels_warn_once_and_results_stay_right(
        how: str, why: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    _broken(monkeypatch, how, tmp_path)
    try:
        with pytest.warns(contract.ContractWarning, match=why) as said:
            assert native.status().startswith("unavailable: ") and not usable("complex64")
            _fallback_is_right()
            facts = contract.doctor()
        assert len([w for w in said if issubclass(w.category, contract.ContractWarning)]) == 1
        assert "pip install" in str(said[0].message)  # the fix, named
        assert facts["kernels"]["status"] == native.status()
        assert "CPU kernels   unavailable" in str(contract.plan("ij,jk->ik", (4, 4), (4, 4)))
    finally:
        monkeypatch.undo()
        rearm()


def test_switched_off_on_purpose_is_not_warned(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    monkeypatch.setenv(native.ENV, "0")
    rearm()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", contract.ContractWarning)
            assert native.status() == "off (CONTRACT_NATIVE=0)"
            _fallback_is_right()
    finally:
        monkeypatch.undo()
        rearm()


def test_nothing_is_compiled_or_written_at_run_time(tmp_path: Any) -> None:
    """A cold process with an empty home and cache and no compiler on PATH
    loads the kernels the package build made, and writes nothing there."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PATH": str(tmp_path), "CXX": str(tmp_path / "no-compiler")}
    code = ("import numpy as np, contract\n"
            "a = (np.arange(6.0) + 1j).reshape(2, 3).astype(np.complex64)\n"
            "assert np.allclose(contract.einsum('ij,kj->ik', a, a), a @ a.T)\n"
            "print(contract.native.status())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["available"]
    assert [p.name for p in tmp_path.iterdir()] == []


def test_ci_has_mkl_and_openblas_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test extra installs the mkl wheel (x86 Linux): the kernel calls it;
    CONTRACT_BLAS=openblas declines it for SciPy's OpenBLAS, same values."""
    assert native.blas() == "mkl"
    a, b = _complex((3, 40, 30), 13), _complex((3, 30, 20), 14)
    dims = (((2,), (1,)), ((0,), (0,)))
    with_mkl = np.asarray(gemm_dot(a, b, dims))
    monkeypatch.setenv(native.BLAS_ENV, "openblas")
    rearm()
    try:
        assert native.status() == "available" and native.blas() == "openblas"
        np.testing.assert_allclose(gemm_dot(a, b, dims), with_mkl, rtol=1e-5, atol=1e-5)
    finally:
        monkeypatch.undo()
        rearm()


@pytest.mark.parametrize("spec, shapes, calls", [
    ("bij,bjk->bik", [(16, 64, 48), (16, 48, 40)], 1),           # batched: MKL
    ("bhqd,bhkd->bhqk", [(2, 4, 64, 32), (2, 4, 48, 32)], 1),    # attention-shaped
    ("ij,jk->ik", [(64, 48), (48, 40)], 0),                      # 2-D and small: XLA
    ("bij,bjk->bik", [(16, 8, 48), (16, 48, 40)], 0),            # a side under 32: XLA
])
def test_real_float_steps_take_mkl_where_it_wins(spec: str, shapes: list, calls: int,
                                                 kernel: str) -> None:
    rng = np.random.default_rng(15)
    ops = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    fn = jax.jit(lambda *xs: contract.einsum(spec, *xs))
    np.testing.assert_allclose(fn(*ops), np.einsum(spec, *ops), rtol=1e-4, atol=1e-4)
    assert len(_calls(fn.lower(*ops).compile().as_text())) == (calls if kernel == "native" else 0)
    report = str(contract.plan(spec, *ops))
    assert ("1 MKL gemm" in report) == (calls == 1 and kernel == "native")
    grad = jax.grad(lambda x: contract.einsum(spec, x, ops[1]).sum())(ops[0])
    want = jax.grad(lambda x: jnp.einsum(spec, x, ops[1], precision="highest").sum())(ops[0])
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-4)


@pytest.fixture(params=[True, False], ids=["amx", "no-amx"])
def amx(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """Run a test as on a CPU with AMX units and as on one without, whichever this is."""
    has = native.cpu_has
    monkeypatch.setattr(native, "cpu_has",
                        lambda f: request.param if f in ("amx_bf16", "amx_int8") else has(f))
    rearm()
    yield request.param
    monkeypatch.undo()
    rearm()


@pytest.mark.parametrize("spec, shapes, batched", [
    ("bhqd,bhkd->bhqk", [(2, 4, 64, 32), (2, 4, 48, 32)], True),   # batched: MKL
    ("bij,bjk->bik", [(16, 8, 48), (16, 48, 40)], False),          # a side under 32: XLA
    ("ij,jk->ik", [(256, 64), (64, 128)], False),                  # 2-D, small: XLA
    ("ij,jk->ik", [(256, 256), (256, 256)], False),                # 2-D, large: XLA
])
def test_bfloat16_steps_take_mkl_where_it_wins(spec: str, shapes: list, batched: bool,
                                               kernel: str, amx: bool) -> None:
    """bfloat16 operands, float32 accumulation, a bfloat16 result as jnp.einsum
    gives. Batched steps call MKL: its gemm_bf16bf16f32 with AMX, else its
    float32 GEMM on the operands read as float32 (faster there); large 2-D
    ones read as float32 without AMX too, kernel or not (XLA's float32 dot
    beats its bfloat16 one there). The report says which, and the
    values and gradients are those of the exact float64 product, rounded."""
    rng = np.random.default_rng(16)
    ops = [jnp.asarray(rng.standard_normal(s), jnp.bfloat16) for s in shapes]
    exact = np.einsum(spec, *[np.asarray(x, np.float64) for x in ops])
    fn = jax.jit(lambda *xs: contract.einsum(spec, *xs))
    got = fn(*ops)
    assert got.dtype == jnp.bfloat16
    # One rounding to bfloat16 (8 bits) of a float32 sum.
    np.testing.assert_allclose(np.asarray(got, np.float64), exact, rtol=2 ** -8, atol=1e-2)
    native_ = kernel == "native"
    # Without AMX the float32 kernel widens the operands and rounds the (last)
    # step's result to bfloat16 itself.
    want = ([f"contract_gemm_{'bf16' if amx else 'bf16w_bf16'}"] if batched and native_ else [])
    assert _calls(fn.lower(*ops).compile().as_text()) == want
    (step,) = lowerings(contract.plan(spec, *ops))
    wide = not amx and (batched and native_ or min(shapes[0] + shapes[1]) >= 256)
    assert ("1 MKL gemm" in step, "bfloat16 read as float32" in step) == (bool(want), wide)
    grad = jax.grad(lambda x: contract.einsum(spec, x, ops[1]).astype(jnp.float32).sum())(ops[0])
    ref = jax.grad(lambda x: jnp.einsum(spec, x, ops[1], preferred_element_type=jnp.float32)
                   .sum())(ops[0])
    assert grad.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(grad, np.float32), np.asarray(ref, np.float32),
                               rtol=2 ** -7, atol=1e-2)


@pytest.mark.parametrize("spec, shapes, calls", [
    ("ij,jk->ik", [(96, 80), (80, 72)], 1),                      # MKL, exact
    ("bij,bkj->bik", [(3, 64, 100), (3, 70, 100)], 1),           # batched, rhs transposed
    ("ij,jk->ik", [(96, 8), (8, 72)], 0),                        # a side under 64: XLA
])
def test_int8_steps_take_mkl_exactly(spec: str, shapes: list, calls: int, kernel: str,
                                     amx: bool) -> None:
    """int8 operands, int32 accumulation and result (as jnp.einsum with
    preferred_element_type=int32): MKL's gemm_s8u8s32 reads one operand as
    unsigned, so the kernel shifts it by 128 and passes the offset back; the
    result must equal NumPy's int64 product exactly, extremes included. On a
    CPU with AMX int8 tiles XLA's dot is faster, and every step stays with it."""
    rng = np.random.default_rng(17)
    ops = [rng.integers(-128, 128, s).astype(np.int8) for s in shapes]
    ops[0].flat[:5] = -128  # the shift's edge cases
    ops[1].flat[:5] = 127
    want = np.einsum(spec, *[x.astype(np.int64) for x in ops])
    fn = jax.jit(lambda *xs: contract.einsum(spec, *xs, preferred_element_type="int32"))
    got = fn(*ops)
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(got), want)
    expected = ["contract_gemm_s8"] * calls if kernel == "native" and not amx else []
    assert _calls(fn.lower(*ops).compile().as_text()) == expected
    report = str(contract.plan(spec, *ops, preferred_element_type="int32"))
    assert ("1 MKL gemm" in report) == bool(expected)
    if kernel != "native":
        return
    # Integers have no derivative: forward mode gives float0 tangents, as lax.dot_general's.
    a, b = (jnp.asarray(x) for x in ops)
    dims = (((a.ndim - 1,), (b.ndim - 1 if spec.startswith("bij,bkj") else 0,)),
            ((0,), (0,)) if a.ndim == 3 else ((), ()))
    out, tangent = jax.jvp(lambda x: gemm_dot(x, b, dims), (a,),
                           (np.zeros(a.shape, jax.dtypes.float0),))
    np.testing.assert_array_equal(np.asarray(out), want)
    assert tangent.dtype == jax.dtypes.float0 and tangent.shape == out.shape


@pytest.mark.parametrize("dtype, kw", [("float32", {}), ("float32", {"rounded": True}),
                                       ("bfloat16", {}), ("bfloat16", {"widened": True}),
                                       ("int8", {})])
@pytest.mark.parametrize("batch", [(), (3,)])
@pytest.mark.parametrize("trans_a", [False, True])
def test_rows_cut_into_tasks_give_the_whole_product(dtype: str, kw: dict, batch: tuple,
                                                    trans_a: bool) -> None:
    """With MKL the kernel cuts a matrix into blocks of rows for the thread
    pool (201 rows: two blocks of 101 and 100); a transposed operand's rows are
    its columns. Every block must land in its place, whatever the layout."""
    if not usable(dtype):
        pytest.fail(f"the kernel must take {dtype} here (CI installs MKL)")
    rng = np.random.default_rng(18)
    m, n, k = 201, 72, 80
    lhs = batch + ((k, m) if trans_a else (m, k))
    a = rng.integers(-128, 128, lhs).astype(np.float32)
    b = rng.integers(-128, 128, batch + (k, n)).astype(np.float32)
    r = len(batch)
    dims = (((r if trans_a else r + 1,), (r,)), ((0,), (0,)) if batch else ((), ()))
    want = np.matmul(np.swapaxes(a, -1, -2) if trans_a else a, b).astype(np.int64)
    got = gemm_dot(jnp.asarray(a, dtype), jnp.asarray(b, dtype), dims, **kw)
    if kw.get("rounded"):  # to bfloat16: 8 significant bits
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=2 ** -8)
        return
    # Integers up to 128 * 128 * 80 sum exactly in float32 and int32.
    np.testing.assert_array_equal(np.asarray(got).astype(np.int64), want)


def test_the_kernel_rounds_to_bfloat16_as_xla_converts() -> None:
    """A float32 product rounded to bfloat16 in the kernel (``rounded=True``)
    is bit for bit XLA's ``astype(bfloat16)`` of it: ties to even, the
    largest floats overflowing to infinity, NaN and infinity kept, signed
    zeros and subnormals. With one contracted element of 1.0, the product is
    each value exactly."""
    if not usable("float32"):
        pytest.fail("the kernel must load here")
    f = np.float32
    special = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 3.0e38, np.finfo(f).max,
                        np.inf, -np.inf, np.nan, -0.0, 0.0, 1e-40, -3e-39, 2 ** -126],
                       dtype=f)
    values = np.concatenate([special, np.random.default_rng(19).standard_normal(243, dtype=f)])
    a = jnp.asarray(values.reshape(256, 1))
    b = jnp.ones((1, 96), jnp.float32)
    dims = (((1,), (0,)), ((), ()))
    got = gemm_dot(a, b, dims, rounded=True)
    assert got.dtype == jnp.bfloat16 and got.shape == (256, 96)
    want = (a * b).astype(jnp.bfloat16)
    bits = lambda x: np.asarray(jax.lax.bitcast_convert_type(x, jnp.uint16))
    np.testing.assert_array_equal(bits(got)[~np.isnan(values)], bits(want)[~np.isnan(values)])
    assert np.isnan(np.asarray(got, np.float32)[np.isnan(values)]).all()
