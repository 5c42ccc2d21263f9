"""sum_pool and conv: einsums over window views, checked against NumPy loops and
lax.conv_general_dilated / lax.reduce_window; PyTorch's conv2d and avg_pool
(divisor_override=1, ceil_mode) outputs are golden cases in test_torch_parity.py."""

from __future__ import annotations

import itertools
from typing import Any
from unittest import mock

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import contract
from contract import ContractError, native
from contract.ops import convolution

SETTINGS = settings(max_examples=25, deadline=None)


# ---------------------------------------------------------------- references


def _pairs(v: Any, nd: int) -> tuple[int, ...]:
    return (v,) * nd if isinstance(v, int) else tuple(v)


def np_sum_pool(x: np.ndarray, kernel: Any, stride: Any = None, padding: Any = 0,
                ceil: bool = False) -> np.ndarray:
    """Definition: a float64/int64 sum of shifted strided slices of the padded input.

    ``ceil``: PyTorch's ceil_mode output size (round up, but drop a last
    window that would start in the right padding); zeros past the end."""
    nd = len(kernel) if isinstance(kernel, tuple) else 2
    k, p = _pairs(kernel, nd), _pairs(padding, nd)
    s = k if stride is None else _pairs(stride, nd)
    lead = x.ndim - nd
    acc = {"f": np.float64, "c": np.complex128}.get(x.dtype.kind, np.int64)
    out = []
    for d in range(nd):
        size = x.shape[lead + d] + 2 * p[d] - k[d]
        n = (size + s[d] - 1) // s[d] + 1 if ceil else size // s[d] + 1
        if ceil and (n - 1) * s[d] >= x.shape[lead + d] + p[d]:
            n -= 1
        out.append(n)
    extra = [max(0, (n - 1) * sd + kd - (x.shape[lead + d] + 2 * pd))
             for d, (n, sd, kd, pd) in enumerate(zip(out, s, k, p))]
    xp = np.pad(x.astype(acc), [(0, 0)] * lead + [(q, q + e) for q, e in zip(p, extra)])
    total = np.zeros(x.shape[:lead] + tuple(out), acc)
    for off in itertools.product(*(range(kd) for kd in k)):
        index = tuple(slice(o, o + s[d] * (out[d] - 1) + 1, s[d]) for d, o in enumerate(off))
        total += xp[(Ellipsis,) + index]
    return total


def np_conv(x: np.ndarray, w: np.ndarray, stride: Any = 1, padding: Any = 0) -> np.ndarray:
    """Definition: per kernel offset, a channel contraction of a shifted slice."""
    s, p = _pairs(stride, 2), _pairs(padding, 2)
    acc = np.float64 if np.result_type(x, w).kind in "fc" else np.int64
    xp = np.pad(x.astype(acc), [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    kh, kw = w.shape[2:]
    ho, wo = (xp.shape[2] - kh) // s[0] + 1, (xp.shape[3] - kw) // s[1] + 1
    out = np.zeros((x.shape[0], w.shape[0], ho, wo), acc)
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, :, a : a + s[0] * (ho - 1) + 1 : s[0], b : b + s[1] * (wo - 1) + 1 : s[1]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, a, b].astype(acc))
    return out


def lax_conv(x: Any, w: Any, stride: Any = 1, padding: Any = 0) -> jax.Array:
    s, p = _pairs(stride, 2), _pairs(padding, 2)
    return lax.conv_general_dilated(x, w, s, [(q, q) for q in p], precision=lax.Precision.HIGHEST)


def lax_sum_pool(x: Any, kernel: tuple[int, ...], stride: Any, padding: Any) -> jax.Array:
    nd, lead = len(kernel), x.ndim - len(kernel)
    s, p = _pairs(stride, nd), _pairs(padding, nd)
    return lax.reduce_window(x, jnp.zeros((), x.dtype), lax.add, (1,) * lead + kernel,
                             (1,) * lead + s, [(0, 0)] * lead + [(q, q) for q in p])


def primitives(fn: Any, *args: Any) -> set[str]:
    """Every primitive in the jaxpr of fn, nested calls included."""
    names: set[str] = set()

    def walk(jaxpr: Any) -> None:
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for v in eqn.params.values():
                for sub in v if isinstance(v, (tuple, list)) else (v,):
                    if isinstance(sub, jex.ClosedJaxpr):
                        walk(sub.jaxpr)
                    elif isinstance(sub, jex.Jaxpr):
                        walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return names


# ---------------------------------------------------------------- strategies


@st.composite
def conv_cases(draw: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, int], tuple[int, int]]:
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    size = [draw(st.integers(1, 9)) for _ in range(2)]
    pad = tuple(draw(st.integers(0, 2)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(2))
    kernel = [draw(st.integers(1, min(4, size[d] + 2 * pad[d]))) for d in range(2)]
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, *size)).astype(np.float32)
    w = rng.standard_normal((o, c, *kernel)).astype(np.float32)
    return x, w, stride, pad


@st.composite
def pool_cases(draw: Any) -> tuple[np.ndarray, tuple[int, ...], Any, Any]:
    nd = draw(st.integers(1, 3))
    lead = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    size = [draw(st.integers(1, 8)) for _ in range(nd)]
    kernel = tuple(draw(st.integers(1, min(4, size[d] + 2 * pad[d]))) for d in range(nd))
    stride = draw(st.none() | st.tuples(*(st.integers(1, 4) for _ in range(nd))))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((*lead, *size)).astype(np.float32)
    return x, kernel, stride, pad


# ---------------------------------------------------------------- conv values


def xla_only(fn: Any) -> Any:
    """``fn`` traced with the native conv kernel off: the XLA lowerings, on CPU too."""
    def traced(*args: Any) -> Any:
        with mock.patch.object(convolution, "usable", lambda dtype: False):
            return jax.jit(fn).lower(*args).compile()(*args)
    return traced


@SETTINGS
@given(conv_cases())
def test_conv_matches_numpy_and_lax(case: Any) -> None:
    x, w, stride, pad = case
    got = contract.conv(x, w, stride, pad)  # on CPU: the native kernel
    np.testing.assert_allclose(got, np_conv(x, w, stride, pad), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, lax_conv(x, w, stride, pad), rtol=1e-5, atol=1e-5)
    assert got.dtype == jnp.float32
    xla = xla_only(lambda a, b: contract.conv(a, b, stride, pad))(x, w)
    np.testing.assert_allclose(xla, np_conv(x, w, stride, pad), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- the native conv kernel


# Whether float32 convs run as the native kernel here: where contract.native
# built and loaded it (not with CONTRACT_NATIVE=0) and on one CPU device. The
# tests below check the numbers of whichever path runs, never skip.
ON_KERNEL = native.available() and convolution.usable("float32")


def test_conv_on_cpu_is_the_kernel_alone() -> None:
    x, w = jnp.ones((2, 3, 8, 8), jnp.float32), jnp.ones((4, 3, 3, 3), jnp.float32)
    hlo = jax.jit(lambda a, b: contract.conv(a, b, 1, 1)).lower(x, w).as_text()
    notes = contract.lower(contract.conv, x, w, stride=1, padding=1).notes
    assert ON_KERNEL == convolution.usable("float32")  # the kernel only where native loaded
    if ON_KERNEL:
        assert "contract_conv_f32" in hlo
        assert "dot_general" not in hlo and "concatenate" not in hlo  # no XLA lowering beside it
        assert "native conv kernel" in notes
    else:  # the XLA lowering alone
        assert "contract_conv_f32" not in hlo and "dot_general" in hlo
        assert "native conv kernel" not in notes


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("xshape,wshape,stride,pad", [
    ((1, 16, 37, 29), (8, 16, 3, 3), 1, 1),        # one image: its rows cut into tasks
    ((3, 5, 33, 31), (7, 5, 4, 3), (2, 3), (1, 2)),  # strides, uneven padding, odd sizes
    ((2, 64, 4, 600), (3, 64, 3, 3), 1, 1),        # a row's patches past 1 MiB: a row a task
    ((4, 2, 3, 3), (2, 2, 5, 5), 1, 2),            # kernel larger than the image
    ((2, 6, 5, 7), (4, 6, 1, 1), 1, 0),            # pointwise: the GEMM reads x itself
])
def test_kernel_cases_against_numpy(dtype: str, xshape: Any, wshape: Any, stride: Any,
                                    pad: Any) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal(wshape).astype(dtype)
    with jax.enable_x64(dtype == "float64"):
        got = contract.conv(x, w, stride, pad)
        assert got.dtype == dtype
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, np_conv(x.astype(np.float64), w.astype(np.float64), stride,
                                            pad), rtol=tol, atol=tol)


def test_kernel_vmap_over_x_only_and_empty_batches() -> None:
    rng = np.random.default_rng(4)
    xb = rng.standard_normal((3, 2, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 2)).astype(np.float32)
    got = jax.vmap(lambda a: contract.conv(a, w, 1, 1))(xb)
    for i in range(3):
        np.testing.assert_allclose(got[i], np_conv(xb[i], w, 1, 1), rtol=1e-5, atol=1e-5)
    empty = contract.conv(np.ones((0, 4, 6, 5), np.float32), w, 1, 1)
    assert empty.shape == (0, 3, 6, 6)


def test_kernel_left_to_xla_for_other_dtypes_and_algorithms() -> None:
    f32 = jnp.float32
    assert convolution._on_kernel(f32, f32, "float32", None) == convolution.usable("float32")
    assert convolution._on_kernel(f32, f32, "float32", lax.Precision.DEFAULT) == convolution.usable("float32")
    assert not convolution._on_kernel(jnp.bfloat16, jnp.bfloat16, "bfloat16", None)
    assert not convolution._on_kernel(jnp.int8, jnp.int8, "int32", None)
    assert not convolution._on_kernel(f32, jnp.float16, "float32", None)
    assert not convolution._on_kernel(f32, f32, "float32", lax.DotAlgorithmPreset.BF16_BF16_F32)


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 0), (2, 1), ((1, 3), (2, 0)), (3, 1)])
def test_conv_eager_equals_jit(stride: Any, pad: Any) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 11, 10)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 2)).astype(np.float32)
    eager = contract.conv(x, w, stride, pad)
    jitted = jax.jit(lambda a, b: contract.conv(a, b, stride, pad))(x, w)
    np.testing.assert_allclose(eager, jitted, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(eager, np_conv(x, w, stride, pad), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_conv_half_precision_accumulates_in_float32(dtype: Any) -> None:
    rng = np.random.default_rng(1)
    # 288 terms per output: a half-precision accumulator would drift well
    # beyond one rounding of the exact float32 result.
    x = jnp.asarray(rng.standard_normal((2, 32, 8, 8)), dtype)
    w = jnp.asarray(rng.standard_normal((4, 32, 3, 3)), dtype)
    got = contract.conv(x, w, 1, 1)
    assert got.dtype == dtype
    exact = np_conv(np.asarray(x, np.float32), np.asarray(w, np.float32), 1, 1)
    expected = np.asarray(jnp.asarray(exact, jnp.float32).astype(dtype), np.float32)
    np.testing.assert_allclose(np.asarray(got, np.float32), expected, rtol=1e-2, atol=1e-2)


def test_conv_integers_and_preferred_element_type() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(-100, 100, (2, 3, 6, 6)).astype(np.int8)
    w = rng.integers(-100, 100, (2, 3, 3, 3)).astype(np.int8)
    got = contract.conv(x, w, 1, 1, preferred_element_type="int32")
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(got, np_conv(x, w, 1, 1))
    x32, w32 = x.astype(np.int32), w.astype(np.int32)
    np.testing.assert_array_equal(contract.conv(x32, w32, 2), np_conv(x32, w32, 2))


@pytest.mark.parametrize("xshape,wshape,stride,pad", [
    ((4, 3, 12, 12), (5, 3, 2, 2), 2, 0),   # tap view, w broadcast over the batch
    ((4, 3, 4, 5), (6, 3, 2, 2), 2, 1),     # block view (w broadcast would outgrow x)
    ((2, 2, 9, 9), (3, 2, 2, 3), (3, 4), (1, 0)),  # kernel < stride: gaps between windows
])
def test_conv_paths_without_overlap(xshape: Any, wshape: Any, stride: Any, pad: Any) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal(xshape).astype(np.float32)
    w = rng.standard_normal(wshape).astype(np.float32)
    np.testing.assert_allclose(contract.conv(x, w, stride, pad), np_conv(x, w, stride, pad),
                               rtol=1e-5, atol=1e-5)
    g = jax.grad(lambda b: jnp.sum(contract.conv(x, b, stride, pad) ** 2))(w)
    ref = jax.grad(lambda b: jnp.sum(lax_conv(x, b, stride, pad) ** 2))(w)
    np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-4)


def test_conv_seed_example_and_lists() -> None:
    x = [[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]]]
    assert contract.conv(x, [[[[1.0, 0.0], [0.0, 1.0]]]]).tolist() == [[[[4.0, 6.0], [10.0, 12.0]]]]


# torch's F.conv2d on these and more shapes/dtypes: golden cases in test_torch_parity.py.


# ---------------------------------------------------------------- sum_pool values


@SETTINGS
@given(pool_cases())
def test_sum_pool_matches_numpy_and_reduce_window(case: Any) -> None:
    x, kernel, stride, pad = case
    got = contract.sum_pool(x, kernel, stride, pad)
    np.testing.assert_allclose(got, np_sum_pool(x, kernel, stride, pad), rtol=1e-5, atol=1e-5)
    ref = lax_sum_pool(jnp.asarray(x), kernel, kernel if stride is None else stride, pad)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,result", [
    (np.int8, jnp.int32), (np.uint8, jnp.uint32), (np.int16, jnp.int32),
    (np.int32, jnp.int32), (np.bool_, jnp.int32),
])
def test_sum_pool_integers_are_exact(dtype: Any, result: Any) -> None:
    rng = np.random.default_rng(4)
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    lo, hi = (0, 2) if info is None else (max(info.min, -1000), min(info.max, 1000))
    x = rng.integers(lo, hi, (2, 3, 9, 9), endpoint=True).astype(dtype)
    for kernel, stride, pad in [(3, 1, 1), (2, None, 0), ((3, 2), (2, 3), (1, 0))]:
        got = contract.sum_pool(x, kernel, stride, pad)
        assert got.dtype == result
        np.testing.assert_array_equal(got, np_sum_pool(x, kernel, stride, pad))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_sum_pool_half_precision_accumulates_in_float32(dtype: Any) -> None:
    # 1 + 63 * 2**-9: each small term vanishes when added to 1 in bfloat16 or
    # float16 one at a time; a float32 sum keeps them all.
    x = np.full((1, 1, 8, 8), 2.0**-9, np.float32)
    x[0, 0, 0, 0] = 1.0
    got = contract.sum_pool(jnp.asarray(x, dtype), 8)
    assert got.dtype == dtype
    assert float(got[0, 0, 0, 0]) == float(jnp.asarray(1 + 63 * 2.0**-9, dtype))
    assert float(got[0, 0, 0, 0]) > 1.0


def test_sum_pool_complex_and_python_lists() -> None:
    x = (np.arange(16) + 1j * np.arange(16)).reshape(4, 4).astype(np.complex64)
    np.testing.assert_allclose(contract.sum_pool(x, 2), np_sum_pool(x, 2))
    assert contract.sum_pool([[1, 2], [3, 4]], 2).tolist() == [[10]]


# torch's avg_pool2d/3d(divisor_override=1), ceil_mode included: test_torch_parity.py.


@SETTINGS
@given(pool_cases(), st.booleans())
def test_sum_pool_ceil_mode_and_kernel_size_match_numpy(case: Any, ceil: bool) -> None:
    x, kernel, stride, pad = case
    got = contract.sum_pool(x, kernel_size=kernel, stride=stride, padding=pad, ceil_mode=ceil)
    np.testing.assert_allclose(got, np_sum_pool(x, kernel, stride, pad, ceil), rtol=1e-5,
                               atol=1e-5)
    jitted = jax.jit(lambda a: contract.sum_pool(a, kernel, stride, pad, ceil_mode=ceil))(x)
    np.testing.assert_allclose(jitted, got, rtol=1e-6, atol=1e-6)


def test_sum_pool_ceil_mode_examples() -> None:
    # 5 = 2 + 2 + 1: a third window over the last column (and the zeros past it).
    x = np.arange(25.0, dtype=np.float32).reshape(1, 1, 5, 5)
    got = contract.sum_pool(x, kernel_size=2, ceil_mode=True)
    assert got.shape == (1, 1, 3, 3) and got[0, 0, 2, 2] == 24.0
    assert contract.sum_pool(x, 2).shape == (1, 1, 2, 2)
    # A window that would start in the right padding is dropped (PyTorch's rule):
    # size 4, kernel 2, stride 3, padding 1 -> ceil(4 / 3) + 1 = 3, but the third
    # would start at padded index 6, past the input: 2 windows, [1, 2].
    one_d = contract.sum_pool(np.ones((4,), np.float32), (2,), (3,), (1,), ceil_mode=True)
    assert one_d.tolist() == [1.0, 2.0]
    assert "ceil_mode" in str(contract.lower(contract.sum_pool, x, kernel_size=2, ceil_mode=True))


def test_sum_pool_big_windows_use_the_block_view() -> None:
    # More than 64 taps without overlap: a reshape into blocks, not 81 slices.
    x = np.random.default_rng(10).standard_normal((2, 3, 20, 19)).astype(np.float32)
    assert contract.lower(contract.sum_pool, x, 9).stages[0][0] == "...hpwq->...hw"
    np.testing.assert_allclose(contract.sum_pool(x, 9), np_sum_pool(x, 9), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(contract.sum_pool(x, (3, 4, 7), (3, 5, 8), (0, 1, 2)),
                               np_sum_pool(x, (3, 4, 7), (3, 5, 8), (0, 1, 2)), rtol=1e-5, atol=1e-4)
    # Overlapping big windows keep the tap view.
    assert contract.lower(contract.sum_pool, x, 9, 7).stages[0][0] == "pq...hw->...hw"


def test_sum_pool_under_jit_equals_eager() -> None:
    x = np.random.default_rng(6).standard_normal((2, 3, 10, 7)).astype(np.float32)
    for k, s, p in [(2, None, 0), (3, 2, 1), ((2, 3), (1, 4), (0, 1))]:
        jitted = jax.jit(lambda a: contract.sum_pool(a, k, s, p))(x)
        np.testing.assert_allclose(jitted, contract.sum_pool(x, k, s, p), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- padding by name


def torch_same_pads(kernel: int) -> tuple[int, int]:
    """PyTorch's padding="same" (stride 1 only; ATen's convolution_same through
    _pooling_same_mode_padding_lr): kernel - 1 zeros, the odd one after."""
    total = kernel - 1
    return total // 2, total - total // 2


# (H, W) odd and even; kernels odd, even and mixed (an even one pads unevenly).
NAMED = [((7, 8), (3, 3)), ((7, 8), (2, 2)), ((6, 9), (4, 3)), ((5, 5), (2, 5))]


@pytest.mark.parametrize("size,kernel", NAMED)
@pytest.mark.parametrize("name,stride", [("SAME", 1), ("SAME", 2), ("SAME", (1, 3)), ("VALID", 1),
                                         ("VALID", 2), ("same", 1), ("valid", 1), ("valid", 2)])
def test_conv_padding_names_match_lax(size: Any, kernel: Any, name: str, stride: Any) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, *size)).astype(np.float32)
    w = rng.standard_normal((4, 3, *kernel)).astype(np.float32)
    want = lax.conv_general_dilated(x, w, _pairs(stride, 2), name.upper(),
                                    precision=lax.Precision.HIGHEST)
    f = lambda a, b: contract.conv(a, b, stride, name)
    for got in (f(x, w), jax.jit(f)(x, w), xla_only(f)(x, w)):  # eager, jit, XLA lowering
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,kernel", NAMED)
def test_conv_same_is_torchs_same(size: Any, kernel: Any) -> None:
    # PyTorch's rule, padded explicitly: the output keeps the input's size,
    # and it is JAX's SAME at stride 1.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, *size)).astype(np.float32)
    w = rng.standard_normal((4, 3, *kernel)).astype(np.float32)
    pads = [torch_same_pads(k) for k in kernel]
    assert lax.padtype_to_pads(size, kernel, (1, 1), "SAME") == pads
    want = np_conv(np.pad(x, [(0, 0), (0, 0), *pads]), w)
    got = contract.conv(x, w, padding="same")
    assert got.shape == (2, 4, *size)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(lambda a, b: contract.conv(a, b, 1, "same"))(x, w), want,
                               rtol=1e-5, atol=1e-5)


def test_uneven_padding_on_the_native_kernel_path() -> None:
    # The kernel is given the zeros in front only and reads past the end as
    # zeros up to the output size it is given: the high side is implied.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 2, 4)).astype(np.float32)
    for stride, name in [(1, "same"), (2, "SAME"), ((3, 2), "SAME")]:
        f = jax.jit(lambda a, b: contract.conv(a, b, stride, name))
        assert ("contract_conv_f32" in f.lower(x, w).as_text()) == ON_KERNEL
        ref = lambda a, b: lax.conv_general_dilated(a, b, _pairs(stride, 2), "SAME",
                                                    precision=lax.Precision.HIGHEST)
        np.testing.assert_allclose(f(x, w), ref(x, w), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(contract.conv(x, w, stride, name), ref(x, w), rtol=1e-5,
                                   atol=1e-5)
        loss = lambda g: (lambda a, b: (g(a, b) ** 2).sum())
        got = jax.grad(loss(lambda a, b: contract.conv(a, b, stride, name)), (0, 1))(x, w)
        for g, r in zip(got, jax.grad(loss(ref), (0, 1))(x, w)):
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)
    low = str(contract.lower(contract.conv, x, w, padding="same"))
    assert "H: 7 -> 7 windows of 2, stride 1, zero-padded by 0 before and 1 after" in low
    assert "W: 8 -> 8 windows of 4, stride 1, zero-padded by 1 before and 2 after" in low


def test_conv_padding_names_without_overlap_take_the_block_and_tap_views() -> None:
    rng = np.random.default_rng(10)
    for xshape, wshape, spec in [((2, 3, 7, 9), (4, 3, 2, 2), "nocpq,ncpqhw->nohw"),
                                 ((1, 2, 7, 9), (64, 2, 2, 2), "nchpwq,ocpq->nohw")]:
        x = rng.standard_normal(xshape).astype(np.float32)
        w = rng.standard_normal(wshape).astype(np.float32)
        assert contract.lower(contract.conv, x, w, 2, "SAME").stages[0][0] == spec
        want = lax.conv_general_dilated(x, w, (2, 2), "SAME", precision=lax.Precision.HIGHEST)
        got = xla_only(lambda a, b: contract.conv(a, b, 2, "SAME"))(x, w)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,kernel", NAMED + [((9,), (2,)), ((5, 6, 4), (2, 3, 2)),
                                                 ((20, 19), (9, 9))])  # the last: block view
@pytest.mark.parametrize("name,stride", [("SAME", 1), ("SAME", 2), ("SAME", None), ("VALID", 2),
                                         ("same", 1), ("valid", None)])
def test_sum_pool_padding_names_match_reduce_window(size: Any, kernel: Any, name: str,
                                                    stride: Any) -> None:
    x = np.random.default_rng(11).standard_normal((2, *size)).astype(np.float32)
    strides = kernel if stride is None else _pairs(stride, len(kernel))
    want = lax.reduce_window(x, np.float32(0), lax.add, (1, *kernel), (1, *strides), name.upper())
    f = lambda a: contract.sum_pool(a, kernel, stride, name)
    for got in (f(x), jax.jit(f)(x)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("call,match", [
    (lambda x, w: contract.conv(x, w, 1, "full"),
     r"conv\(\): padding='full' is not a padding name; use 'same', 'valid', 'SAME', 'VALID'"),
    (lambda x, w: contract.conv(x, w, 1, "Same "), r"padding='Same ' is not a padding name"),
    (lambda x, w: contract.conv(x, w, 1, "Same"), r"padding='Same' is not a padding name"),
    (lambda x, w: contract.conv(x, w, 2, "same"),
     r"padding='same' needs stride 1 in every spatial dim, as in PyTorch, but the stride is "
     r"\(2, 2\); padding='SAME' is JAX's rule"),
    (lambda x, w: contract.conv(x, w, (1, 2), "same"), r"needs stride 1 .* is \(1, 2\)"),
    (lambda x, w: contract.conv(x, w, 1, 1.5),
     r"padding must be an int or a tuple of 2 ints \(or one padding name for every dim: "
     r"'same', 'valid', 'SAME', 'VALID'\), got 1.5"),
    (lambda x, w: contract.conv(x, w, 1, None), r"padding must be an int .*'VALID'\), got None"),
    (lambda x, w: contract.conv(x, w, 1, b"same"), r"padding must be an int .*'VALID'\), got b"),
    (lambda x, w: contract.conv(x, w, 1, ("same", "same")),
     r"padding entries must be ints \(or one padding name for every dim: .*\), got 'same'"),
    (lambda x, w: contract.conv(x, w, "2"), r"stride must be an int or a tuple of 2 ints, got '2'"),
    (lambda x, w: contract.sum_pool(x, 2, padding="full"),
     r"sum_pool\(\): padding='full' is not a padding name; use 'same', 'valid', 'SAME', 'VALID'"),
    (lambda x, w: contract.sum_pool(x, 2, padding="same"),  # the stride defaults to the kernel
     r"sum_pool\(\): padding='same' needs stride 1 .* the stride is \(2, 2\)"),
    (lambda x, w: contract.sum_pool(x, 2, 1, 0.5), r"padding must be an int .*'VALID'\), got 0.5"),
    (lambda x, w: contract.lower(contract.conv, x, w, 1, "valid "), r"is not a padding name"),
    (lambda x, w: contract.conv(x[:, :, :2], w, 1, "VALID"),
     r"kernel 3 is larger than the padded input along spatial dim 0 \(size 2 \+ 2\*0 padding"),
])
def test_bad_padding_names_raise_contract_error(call: Any, match: str) -> None:
    x, w = jnp.ones((2, 3, 8, 8), jnp.float32), jnp.ones((4, 3, 3, 3), jnp.float32)
    with pytest.raises(ContractError, match=match):
        call(x, w)


# ---------------------------------------------------------------- transformations


@pytest.mark.parametrize("kernel,stride,pad", [((3, 2), 1, 1), ((3, 2), 2, 0),
                                                ((3, 2), (2, 1), (0, 2)), ((3, 3), 2, 1)])
def test_conv_grad_matches_lax(kernel: Any, stride: Any, pad: Any) -> None:
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.standard_normal((2, 3, 9, 8)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 3, *kernel)), jnp.float32)
    g = jnp.asarray(rng.standard_normal(lax_conv(x, w, stride, pad).shape), jnp.float32)

    def loss(f: Any) -> Any:
        return jax.grad(lambda a, b: jnp.sum(f(a, b, stride, pad) * g), argnums=(0, 1))

    got, ref = loss(contract.conv)(x, w), loss(lax_conv)(x, w)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # Forward mode too (the kernel's tangent is XLA's convolution of the tangents).
    dx, dw = jnp.ones_like(x), -w
    got = jax.jvp(lambda a, b: contract.conv(a, b, stride, pad), (x, w), (dx, dw))
    ref = jax.jvp(lambda a, b: lax_conv(a, b, stride, pad), (x, w), (dx, dw))
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel,stride,pad", [((2, 2), None, 0), ((3, 3), (1, 1), (1, 1)),
                                                ((3, 2), (2, 3), (1, 0))])
def test_sum_pool_grad_matches_reduce_window(kernel: Any, stride: Any, pad: Any) -> None:
    rng = np.random.default_rng(8)
    x = jnp.asarray(rng.standard_normal((2, 2, 8, 9)), jnp.float32)
    s = kernel if stride is None else stride
    g = jnp.asarray(rng.standard_normal(lax_sum_pool(x, kernel, s, pad).shape), jnp.float32)
    got = jax.grad(lambda a: jnp.sum(contract.sum_pool(a, kernel, stride, pad) * g))(x)
    ref = jax.grad(lambda a: jnp.sum(lax_sum_pool(a, kernel, s, pad) * g))(x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_vmap() -> None:
    rng = np.random.default_rng(9)
    xb = rng.standard_normal((3, 2, 2, 7, 7)).astype(np.float32)
    wb = rng.standard_normal((3, 4, 2, 3, 3)).astype(np.float32)
    got = jax.vmap(lambda a, b: contract.conv(a, b, 2, 1))(xb, wb)
    for i in range(3):
        np.testing.assert_allclose(got[i], np_conv(xb[i], wb[i], 2, 1), rtol=1e-5, atol=1e-5)
    pooled = jax.vmap(lambda a: contract.sum_pool(a, 3, 2, 1), in_axes=4, out_axes=0)(xb)
    for i in range(7):
        np.testing.assert_allclose(pooled[i], np_sum_pool(xb[..., i], 3, 2, 1), rtol=1e-5, atol=1e-5)


def test_lowering_is_dot_general_over_slices_not_gather_or_conv() -> None:
    x = jnp.ones((2, 3, 8, 8), jnp.float32)
    w = jnp.ones((4, 3, 3, 3), jnp.float32)
    overlap = primitives(lambda a, b: contract.conv(a, b, 1, 1), x, w)
    assert "dot_general" in overlap and "conv_general_dilated" not in overlap
    assert "gather" not in overlap
    # stride == kernel: the view is a reshape; no slices stacked.
    blocks = primitives(lambda a, b: contract.conv(a, b[:, :, :2, :2], 2), x, w)
    assert "concatenate" not in blocks and "gather" not in blocks
    pool = primitives(lambda a: contract.sum_pool(a, 2), x)
    assert "reduce_sum" in pool and pool.isdisjoint({"gather", "reduce_window_sum", "pad"})


def test_lower_shows_einsum_and_view() -> None:
    x, w = np.ones((8, 3, 32, 32), np.float32), np.ones((16, 3, 3, 3), np.float32)
    # Overlapping windows: a row view contracted first, then the W taps.
    low = contract.lower(contract.conv, x, w, stride=2, padding=1)
    # W stride 2: one stage-1 einsum per column phase (taps 0, 2 | tap 1).
    assert low.stages == (("ocpq,cpnhv->oqnhv", ((16, 3, 3, 2), (3, 3, 8, 16, 17))),
                          ("ocpq,cpnhv->oqnhv", ((16, 3, 3, 1), (3, 3, 8, 16, 16))),
                          ("oqnhw->nohw", ((16, 3, 8, 16, 16),)))
    assert "3 row slices of stride 2" in str(low) and "result dtype float32" in str(low)
    same = contract.lower(contract.conv, x, w, padding=1)
    assert same.stages == (("ocpq,cpnhv->oqnhv", ((16, 3, 3, 3), (3, 3, 8, 32, 34))),
                           ("oqnhw->nohw", ((16, 3, 8, 32, 32),)))
    # kernel == stride: a batched einsum over the tap view when w broadcast
    # over the batch is small, else one einsum over the reshaped blocks.
    taps = contract.lower(contract.conv, x, w[:, :, :2, :2], stride=2)
    assert taps.stages == (("nocpq,ncpqhw->nohw", ((8, 16, 3, 2, 2), (8, 3, 2, 2, 16, 16))),)
    blocks = contract.lower(contract.conv, x[:, :, :4, :4], w[:, :, :2, :2], stride=2)
    assert blocks.stages == (("nchpwq,ocpq->nohw", ((8, 3, 2, 2, 2, 2), (16, 3, 2, 2))),)
    assert "block view (8, 3, 2, 2, 2, 2): H and W reshaped into (out, stride) blocks" in str(blocks)
    wide = contract.lower(contract.conv, x.astype(np.int8), w.astype(np.int8),
                          preferred_element_type="int32")
    assert "result dtype int32" in str(wide)
    pool = contract.lower(contract.sum_pool, x, 3, 2, 1)
    assert pool.stages == (("pq...hw->...hw", ((3, 3, 8, 3, 16, 16),)),)
    assert "9 strided slices" in str(pool) and "zero-padded by 1" in str(pool)
    shapes = contract.lower(contract.sum_pool, jax.ShapeDtypeStruct((4, 5), jnp.int8), (2,))
    assert shapes.stages == (("q...w->...w", ((2, 4, 2),)),) and "int32" in shapes.notes


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("call,match", [
    (lambda x, w: contract.conv(x[0], w), r"x must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"),
    (lambda x, w: contract.conv(x, w[0]), r"w must be 4-D"),
    (lambda x, w: contract.conv(x, w[:, :2]), r"x has 3 channels .* but w expects 2"),
    (lambda x, w: contract.conv(x, w, 0), r"stride must be positive, got 0"),
    (lambda x, w: contract.conv(x, w, (1, -2)), r"stride must be positive"),
    (lambda x, w: contract.conv(x, w, 1, -1), r"padding must be non-negative"),
    (lambda x, w: contract.conv(x, w, (1, 1, 1)), r"stride=\(1, 1, 1\) has 3 entries but there are 2 spatial dims"),
    (lambda x, w: contract.conv(x, w, 1.5), r"stride must be an int or a tuple"),
    (lambda x, w: contract.conv(x, w, True), r"stride entries must be ints, got True"),
    (lambda x, w: contract.conv(x[:, :, :2], w), r"kernel 3 is larger than the padded input along spatial dim 0 \(size 2 \+ 2\*0 padding = 2\)"),
    (lambda x, w: contract.conv(x, w[:, :, :0]), r"kernel must be positive"),
    (lambda x, w: contract.conv(x > 0, w), r"x has dtype bool"),
    (lambda x, w: contract.conv(x, "w"), r"operand 0 is a str"),
    (lambda x, w: contract.conv(x, w, precision="fast"), r"unknown precision"),
    (lambda x, w: contract.sum_pool(x, 0), r"kernel must be positive"),
    (lambda x, w: contract.sum_pool(x, 9), r"kernel 9 is larger than the padded input"),
    (lambda x, w: contract.sum_pool(x, (2, 2), 2, (1, 1, 1)), r"padding=\(1, 1, 1\) has 3 entries but there are 2"),
    (lambda x, w: contract.sum_pool(x, (2, 2, 2, 2)), r"pools 1 to 3 trailing spatial dims"),
    (lambda x, w: contract.sum_pool(x[0, 0, 0], 2), r"x has shape \(8,\) \(rank 1\) but the kernel \(2, 2\) needs"),
    (lambda x, w: contract.sum_pool(x, None), r"kernel must be an int or a tuple"),
])
def test_bad_arguments_raise_contract_error(call: Any, match: str) -> None:
    x, w = jnp.ones((2, 3, 8, 8), jnp.float32), jnp.ones((4, 3, 3, 3), jnp.float32)
    with pytest.raises(ContractError, match=match):
        call(x, w)


def test_lower_rejects_what_the_op_rejects() -> None:
    with pytest.raises(ContractError, match="x has 3 channels"):
        contract.lower(contract.conv, np.ones((1, 3, 4, 4)), np.ones((1, 2, 2, 2)))
    with pytest.raises(ContractError, match="stride must be positive"):
        contract.lower(contract.sum_pool, np.ones((4, 4)), 2, stride=0)


@pytest.mark.parametrize("padding", [0, 1])
def test_an_integer_preferred_result_sums_the_taps_in_float_then_converts_once(padding):
    # Each tap product is fractional: converting per tap (or the operands)
    # would round every one of them; the sum converted once matches a
    # float64 reference truncated toward zero, as lax's convert does.
    rng = np.random.default_rng(3)
    x = (rng.random((2, 3, 6, 6)) * 0.9).astype(np.float32)
    w = (rng.random((4, 3, 3, 3)) * 0.9).astype(np.float32)
    got = contract.conv(x, w, padding=padding, preferred_element_type=jnp.int32)
    ref = lax.conv_general_dilated(x.astype(np.float64) if jax.config.jax_enable_x64 else x, w,
                                   (1, 1), [(padding, padding)] * 2,
                                   precision=lax.Precision.HIGHEST)
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(got, np.trunc(np.asarray(ref)).astype(np.int32))
