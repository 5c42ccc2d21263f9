"""``logsumexp``, ``amax``, ``amin`` and ``max_pool``: reductions and pooling in a semiring.

References are independent of contract: ``scipy.special.logsumexp`` and
``softmax`` in float64, ``np.max``/``np.min``, a NumPy brute-force max pool
in float64, ``lax.reduce_window`` (values, padding names and the gradient on
ties) and PyTorch's ``max_pool1d/2d/3d`` recorded once (values and gradients)
into ``tests/data/semiring_ops_goldens.npz`` by this module run as a script
with torch installed (torch 2.13.0 CPU)::

    /work/venv/bin/python tests/test_semiring_ops.py

The tests themselves never import torch. Each runs eager and under
``jax.jit``; expectations hold with x64 off and on.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from scipy.special import logsumexp as sp_logsumexp
from scipy.special import softmax as sp_softmax

import contract
from contract import ContractError

GOLDENS = Path(__file__).resolve().parent / "data" / "semiring_ops_goldens.npz"
X64 = bool(jax.config.jax_enable_x64)
RNG = np.random.default_rng(27)

# PyTorch max_pool cases: (id, x shape, kernel_size, stride, padding, ceil_mode).
# Integer-valued float inputs make ties in most windows.
TORCH_CASES = [
    ("2d_k2", (2, 3, 8, 8), 2, None, 0, False),
    ("2d_k3_s2_p1", (2, 3, 9, 7), 3, 2, 1, False),
    ("2d_k3x2_s1x2_p1x0", (1, 2, 7, 8), (3, 2), (1, 2), (1, 0), False),
    ("2d_k3_s1_p1", (1, 2, 6, 5), 3, 1, 1, False),
    ("2d_ceil_k2", (1, 2, 7, 7), 2, 2, 0, True),
    ("2d_ceil_k3_s2_p1", (1, 1, 6, 6), 3, 2, 1, True),
    ("2d_k9_block", (1, 2, 18, 18), 9, 9, 0, False),
    ("1d_k3_s2_p1", (2, 3, 10), (3,), (2,), (1,), False),
    ("3d_k2_s121_p101", (1, 2, 5, 6, 4), (2, 2, 2), (1, 2, 1), (1, 0, 1), False),
]


def _record_goldens() -> None:
    """Run every TORCH_CASES case through PyTorch; save inputs, outputs, gradients."""
    import torch  # noqa: PLC0415 - only the recording script needs torch

    pools = {3: torch.nn.functional.max_pool1d, 4: torch.nn.functional.max_pool2d,
             5: torch.nn.functional.max_pool3d}
    arrays: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(2027)
    for name, shape, k, s, p, ceil in TORCH_CASES:
        x = torch.tensor(rng.integers(0, 4, shape).astype(np.float32), requires_grad=True)
        y = pools[len(shape)](x, k, s if s is not None else None, p, ceil_mode=ceil)
        w = torch.arange(y.numel(), dtype=torch.float32).reshape(y.shape)
        (y * w).sum().backward()
        arrays[f"{name}/x"] = x.detach().numpy()
        arrays[f"{name}/y"] = y.detach().numpy()
        arrays[f"{name}/grad"] = x.grad.numpy()
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(GOLDENS, **arrays)
    print(f"wrote {GOLDENS} ({len(TORCH_CASES)} cases, torch {torch.__version__})")


@pytest.fixture(params=["eager", "jit"])
def mode(request: pytest.FixtureRequest) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a function of arrays: as it is, or under ``jax.jit``."""
    return (lambda f: f) if request.param == "eager" else jax.jit


def canonical(name: str) -> np.dtype:
    return jax.dtypes.canonicalize_dtype(jnp.dtype(name))


# ---------------------------------------------------------------- logsumexp, amax, amin

# (dim, keepdim) pairs: ints, negative ints, tuples, () (no axes), None (all axes)
DIMS = [(None, False), (None, True), (0, True), (-1, False), (1, False), ((0, 2), True),
        ((-1, 0), False), ((), False)]


@pytest.mark.parametrize("dim, keepdim", DIMS, ids=str)
def test_logsumexp_matches_scipy(dim: Any, keepdim: bool, mode: Any) -> None:
    x = (5 * RNG.standard_normal((3, 4, 5))).astype(np.float32)
    x[1, 2] = -np.inf  # a row of -inf: -inf along axis 2
    got = mode(lambda a: contract.logsumexp(a, dim=dim, keepdim=keepdim))(jnp.asarray(x))
    want = sp_logsumexp(x.astype(np.float64), axis=dim, keepdims=keepdim)
    assert got.dtype == np.float32 and got.shape == np.shape(want)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("dim, keepdim", DIMS, ids=str)
def test_amax_amin_match_numpy(dim: Any, keepdim: bool, mode: Any) -> None:
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    for op, ref in (("amax", np.max), ("amin", np.min)):
        got = mode(lambda a: getattr(contract, op)(a, axis=dim, keepdims=keepdim))(jnp.asarray(x))
        np.testing.assert_array_equal(got, ref(x, axis=dim, keepdims=keepdim))


def _dtypes() -> list[str]:
    names = ["bool", "int8", "uint8", "int16", "int32", "uint32", "float16", "bfloat16", "float32"]
    return names + (["int64", "uint64", "float64"] if X64 else [])


@pytest.mark.parametrize("dtype", _dtypes())
def test_amax_amin_keep_the_dtype_and_are_exact(dtype: str, mode: Any) -> None:
    if dtype == "bool":
        x = RNG.integers(0, 2, (4, 6)).astype(bool)
    elif jnp.issubdtype(dtype, jnp.integer):
        info = jnp.iinfo(dtype)  # the extremes: nothing may wrap or round
        x = RNG.integers(info.min, info.max, (4, 6), dtype=np.dtype(dtype), endpoint=True)
    else:
        x = RNG.standard_normal((4, 6)).astype(jnp.dtype(dtype))
    a = jnp.asarray(x)
    for op, ref in (("amax", np.max), ("amin", np.min)):
        got = mode(lambda v: getattr(contract, op)(v, dim=1))(a)
        assert got.dtype == a.dtype, (op, got.dtype)
        np.testing.assert_array_equal(np.asarray(got), ref(x, axis=1))


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int32", "float16", "bfloat16",
                                   "float32"] + (["int64", "float64"] if X64 else []))
def test_logsumexp_dtypes_follow_jax(dtype: str, mode: Any) -> None:
    x = jnp.asarray(RNG.integers(0, 2 if dtype == "bool" else 5, (3, 7))).astype(dtype)
    got = mode(lambda v: contract.logsumexp(v, 1))(x)
    # jax.nn.logsumexp: bool and integers up to 32 bits give float32, int64 float64.
    assert got.dtype == jax.eval_shape(lambda v: jax.nn.logsumexp(v, axis=1), x).dtype
    want = sp_logsumexp(np.asarray(x.astype(jnp.float32), np.float64), axis=1)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-2 if "16" in dtype
                               else 2e-6)
    if dtype in ("float16", "bfloat16"):  # computed in float32, rounded once at the end
        f32 = contract.logsumexp(x.astype(jnp.float32), 1).astype(dtype)
        np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(f32, np.float32))


def test_empty_reductions(mode: Any) -> None:
    empty = jnp.zeros((2, 0), jnp.float32)
    got = mode(lambda v: contract.logsumexp(v, dim=1))(empty)
    np.testing.assert_array_equal(got, [-np.inf, -np.inf])
    assert mode(lambda v: contract.logsumexp(v))(empty).item() == -np.inf
    # an empty array reduced over its non-empty axis only is empty, not an error
    assert mode(lambda v: contract.amax(v, dim=0))(empty).shape == (0,)
    for op in ("amax", "amin"):
        for dim in (1, None, (0, 1), -1):
            with pytest.raises(ContractError, match=rf"{op}\(\): x has shape \(2, 0\) and axis 1 "
                                                    rf"of size 0 is reduced"):
                getattr(contract, op)(empty, dim=dim)


def test_reducing_no_axes_and_scalars(mode: Any) -> None:
    x = jnp.asarray(RNG.standard_normal((2, 3)).astype(np.float32))
    np.testing.assert_array_equal(mode(lambda v: contract.amax(v, dim=()))(x), x)
    np.testing.assert_array_equal(mode(lambda v: contract.amin(v, axis=()))(x), x)
    np.testing.assert_allclose(mode(lambda v: contract.logsumexp(v, dim=()))(x), x, rtol=1e-6)
    assert contract.amax(3).item() == 3 and contract.logsumexp(0.0).item() == 0.0
    assert contract.amax([[1, 9], [4, 2]]).item() == 9  # Python lists


def test_nan_and_inf() -> None:
    x = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, -np.inf], [-np.inf] * 3], np.float32)
    for op, ref in (("amax", np.max), ("amin", np.min)):
        np.testing.assert_array_equal(getattr(contract, op)(x, dim=1), ref(x, axis=1))
    with np.errstate(invalid="ignore"):
        want = sp_logsumexp(x.astype(np.float64), axis=1)
    np.testing.assert_array_equal(contract.logsumexp(x, dim=1), want.astype(np.float32))


def test_bad_arguments() -> None:
    x = jnp.ones((2, 3))
    for op in ("logsumexp", "amax", "amin"):
        fn = getattr(contract, op)
        with pytest.raises(ContractError, match=rf"{op}\(\): axis 2 is out of range for an array "
                                                r"of rank 2 \(valid: -2..1\)"):
            fn(x, dim=2)
        with pytest.raises(ContractError, match=rf"{op}\(\): axis -3 is out of range"):
            fn(x, dim=(0, -3))
        with pytest.raises(ContractError, match=rf"{op}\(\): x has dtype complex64"):
            fn(jnp.ones((2, 3), jnp.complex64), dim=1)
        with pytest.raises(ContractError, match=r"both axis= and its alias dim="):
            fn(x, 0, dim=1)
        with pytest.raises(ContractError, match="keepdims must be True or False"):
            fn(x, 0, keepdim="yes")
        with pytest.raises(ContractError, match="out= is not supported"):
            fn(x, 0, out=x)


@pytest.mark.parametrize("op, ref, dim", [("amax", jnp.max, (0, 2)), ("amin", jnp.min, None)])
def test_amax_amin_gradients_split_ties_as_jnp(op: str, ref: Any, dim: Any, mode: Any) -> None:
    x = jnp.asarray(RNG.integers(0, 3, (3, 4, 5)).astype(np.float32))  # many ties
    w = 1 + 2 * jnp.arange(np.prod(ref(x, axis=dim).shape), dtype=jnp.float32)  # odd weights
    fn = getattr(contract, op)

    def loss(f: Any) -> Any:
        return lambda v: jnp.sum(f(v, axis=dim).reshape(-1) * w)

    got = mode(jax.grad(loss(fn)))(x)
    np.testing.assert_allclose(got, jax.jit(jax.grad(loss(ref)))(x), rtol=1e-6)
    assert np.any(got % 1 != 0)  # some ties really were split


def test_logsumexp_gradient_is_the_softmax_and_zero_on_all_minus_inf(mode: Any) -> None:
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    x[2] = -np.inf
    x[1, :2] = -np.inf
    got = mode(jax.grad(lambda v: contract.logsumexp(v, dim=1).sum()))(jnp.asarray(x))
    want = sp_softmax(x[:2].astype(np.float64), axis=1)
    np.testing.assert_allclose(np.asarray(got[:2], np.float64), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(got[2], np.zeros(5))  # jax.nn.logsumexp: NaN there
    assert np.all(np.isnan(jax.jit(jax.grad(jax.nn.logsumexp))(jnp.asarray(x[2]))))


def test_lower_shows_the_semiring_einsum() -> None:
    x = jnp.ones((2, 3, 4), jnp.bfloat16)
    low = str(contract.lower(contract.logsumexp, x, dim=(0, 2), keepdim=True))
    assert "einsum 'abc->b'  shapes (2, 3, 4)" in low
    assert "input cast to float32 first" in low and "in the log semiring" in low
    assert "result bfloat16" in low and "reshaped to (1, 3, 1) (keepdims)" in low
    assert "in the max-plus semiring" in str(contract.lower(contract.amax, x, 1))
    low = str(contract.lower(contract.amin, jnp.ones((2, 3), jnp.int8), axis=-1))
    assert "einsum 'ab->a'" in low and "in the min-plus semiring" in low and "result int8" in low
    # one reduce in the program, as jnp.max compiles to
    jaxpr = str(jax.make_jaxpr(lambda v: contract.amax(v, 1))(jnp.ones((2, 3))))
    assert "reduce_max[axes=(1,)]" in jaxpr


# ---------------------------------------------------------------- max_pool


def _pairs(v: Any, nd: int) -> tuple[int, ...]:
    return (v,) * nd if isinstance(v, int) else tuple(v)


def np_max_pool(x: np.ndarray, kernel: Any, stride: Any = None, padding: Any = 0,
                ceil: bool = False) -> np.ndarray:
    """Brute-force max pooling (PyTorch's definition) with a loop over every window."""
    nd = len(kernel) if isinstance(kernel, tuple) else 2
    k = _pairs(kernel, nd)
    s = k if stride is None else _pairs(stride, nd)
    p = _pairs(padding, nd)
    spatial = x.shape[x.ndim - nd:]
    outs = []
    for n, kk, ss, pp in zip(spatial, k, s, p):
        o = (n + 2 * pp - kk + (ss - 1 if ceil else 0)) // ss + 1
        if ceil and (o - 1) * ss >= n + pp:  # PyTorch drops a window starting in the padding
            o -= 1
        outs.append(o)
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    big = np.full(x.shape[:x.ndim - nd] + tuple(n + 2 * pp + ss * kk for n, pp, ss, kk
                                                 in zip(spatial, p, s, k)), fill, x.dtype)
    big[(...,) + tuple(slice(pp, pp + n) for pp, n in zip(p, spatial))] = x
    out = np.empty(x.shape[:x.ndim - nd] + tuple(outs), x.dtype)
    for idx in itertools.product(*map(range, outs)):
        win = big[(...,) + tuple(slice(i * ss, i * ss + kk) for i, ss, kk in zip(idx, s, k))]
        out[(...,) + idx] = win.reshape(win.shape[:x.ndim - nd] + (-1,)).max(-1)
    return out


def lax_max_pool(x: Any, kernel: tuple[int, ...], stride: tuple[int, ...], padding: Any) -> Any:
    """JAX's own max pooling: ``lax.reduce_window(x, -inf, lax.max, ...)``."""
    lead = x.ndim - len(kernel)
    pads = padding if isinstance(padding, str) else [(0, 0)] * lead + [(q, q) for q in padding]
    init = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    return lax.reduce_window(x, jnp.asarray(init, x.dtype), lax.max, (1,) * lead + kernel,
                             (1,) * lead + stride, pads)


POOL_CASES = [  # x shape, kernel, stride, padding, ceil_mode
    ((2, 3, 8, 8), 2, None, 0, False),
    ((2, 3, 9, 7), 3, 2, 1, False),
    ((1, 2, 7, 8), (3, 2), (1, 2), (1, 0), False),
    ((1, 2, 7, 7), 3, 2, 1, True),
    ((1, 2, 7, 7), 2, None, 0, True),
    ((1, 2, 19, 18), 9, None, 0, False),  # 81 taps, no overlap: the block view
    ((3, 11), (3,), (2,), (1,), False),
    ((1, 2, 5, 6, 4), (2, 2, 2), (1, 2, 1), (1, 0, 1), False),
    ((1, 1, 4, 4), 2, 1, 2, False),  # padding past half the kernel: windows of padding only
]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool_matches_numpy(case: Any, mode: Any) -> None:
    shape, k, s, p, ceil = case
    x = RNG.standard_normal(shape)
    got = mode(lambda v: contract.max_pool(v, k, s, p, ceil_mode=ceil))(
        jnp.asarray(x, jnp.float32))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np_max_pool(x.astype(np.float32), k, s, p, ceil))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "float16", "bfloat16"]
                         + (["int64", "float64"] if X64 else []))
def test_max_pool_keeps_the_dtype_exactly(dtype: str, mode: Any) -> None:
    dt = jnp.dtype(dtype)
    if dt.kind in "iu":
        info = jnp.iinfo(dt)
        x = RNG.integers(info.min, info.max, (2, 2, 7, 6), dtype=np.dtype(dt), endpoint=True)
    else:
        x = RNG.standard_normal((2, 2, 7, 6)).astype(dt)
    got = mode(lambda v: contract.max_pool(v, 3, 2, 1))(jnp.asarray(x))
    assert got.dtype == dt
    want = np_max_pool(np.asarray(x, np.float64) if dt.kind == "f" or dtype == "bfloat16"
                       else x, 3, 2, 1)
    np.testing.assert_array_equal(np.asarray(got, want.dtype), want)


@pytest.mark.parametrize("padding", ["SAME", "VALID", "same", "valid"])
def test_max_pool_padding_names_match_reduce_window(padding: str, mode: Any) -> None:
    x = jnp.asarray(RNG.standard_normal((1, 2, 7, 8)).astype(np.float32))
    for k, s in (((3, 2), (2, 3)), ((4, 3), (1, 1))):
        if padding == "same" and s != (1, 1):
            continue  # PyTorch's 'same' is for stride 1 (an error otherwise, as for sum_pool)
        got = mode(lambda v: contract.max_pool(v, k, s, padding))(x)
        want = lax_max_pool(x, k, s, padding.upper())
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", [POOL_CASES[1], POOL_CASES[5]], ids=str)
def test_max_pool_gradient_on_ties_equals_reduce_window(case: Any) -> None:
    # Jitted: eager autodiff compiles each primitive of the tap view on its own.
    shape, k, s, p, ceil = case
    nd = len(k) if isinstance(k, tuple) else 2
    kk = _pairs(k, nd)
    ss, pp = (kk if s is None else _pairs(s, nd)), _pairs(p, nd)
    x = jnp.asarray(RNG.integers(0, 3, shape).astype(np.float32))  # integer values: ties
    out = lax_max_pool(x, kk, ss, pp).shape
    w = jnp.arange(math.prod(out), dtype=jnp.float32).reshape(out)  # tells windows apart

    def loss(pool: Any) -> Any:
        return lambda v: jnp.sum(pool(v) * w)

    got = jax.jit(jax.grad(loss(lambda v: contract.max_pool(v, k, s, p))))(x)
    want = jax.grad(loss(lambda v: lax_max_pool(v, kk, ss, pp)))(x)
    np.testing.assert_array_equal(got, want)


def test_max_pool_gradient_differs_from_an_even_split() -> None:
    x = jnp.ones((1, 1, 2, 2), jnp.float32)  # one window, four tied maxima; eager autodiff
    np.testing.assert_array_equal(jax.grad(lambda v: contract.max_pool(v, 2).sum())(x),
                                  [[[[1.0, 0.0], [0.0, 0.0]]]])
    np.testing.assert_array_equal(jax.grad(lambda v: contract.amax(v))(x),
                                  np.full((1, 1, 2, 2), 0.25))


def test_max_pool_forward_mode_and_vmap() -> None:
    x = jnp.asarray(RNG.standard_normal((2, 1, 6, 6)).astype(np.float32))
    t = jnp.asarray(RNG.standard_normal((2, 1, 6, 6)).astype(np.float32))
    y, dy = jax.jit(lambda a, b: jax.jvp(lambda v: contract.max_pool(v, 3, 1, 1), (a,), (b,)))(
        x, t)
    y2, dy2 = jax.jvp(lambda v: lax_max_pool(v, (3, 3), (1, 1), (1, 1)), (x,), (t,))
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_allclose(dy, dy2, rtol=1e-6)  # no ties: one maximum per window
    vm = jax.vmap(lambda v: contract.max_pool(v, 2))(x)
    np.testing.assert_array_equal(vm, contract.max_pool(x, 2))


@pytest.fixture(scope="module")
def goldens() -> dict[str, np.ndarray]:
    with np.load(GOLDENS) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_max_pool_matches_torch(case: Any, goldens: dict[str, np.ndarray], mode: Any) -> None:
    name, _, k, s, p, ceil = case
    x = jnp.asarray(goldens[f"{name}/x"])
    y = goldens[f"{name}/y"]
    pool = mode(lambda v: contract.max_pool(v, kernel_size=k, stride=s, padding=p,
                                            ceil_mode=ceil))
    np.testing.assert_array_equal(pool(x), y)


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_max_pool_gradient_matches_torch(case: Any, goldens: dict[str, np.ndarray]) -> None:
    # PyTorch's gradient also goes to the first maximum of each window (jitted
    # only: eager autodiff compiles each primitive on its own, seconds a case)
    name, _, k, s, p, ceil = case
    x = jnp.asarray(goldens[f"{name}/x"])
    shape = goldens[f"{name}/y"].shape
    w = jnp.arange(math.prod(shape), dtype=jnp.float32).reshape(shape)
    grad = jax.jit(jax.grad(lambda v: jnp.sum(contract.max_pool(
        v, kernel_size=k, stride=s, padding=p, ceil_mode=ceil) * w)))(x)
    np.testing.assert_array_equal(grad, goldens[f"{name}/grad"])


def test_max_pool_bad_input() -> None:
    x = jnp.ones((1, 1, 4, 5), jnp.float32)
    with pytest.raises(ContractError, match=r"max_pool\(\): padding='full' is not a padding name"):
        contract.max_pool(x, 2, padding="full")
    with pytest.raises(ContractError, match=r"max_pool\(\): kernel 5 is larger than the padded "
                                            r"input along spatial dim 0 \(size 4 \+ 2\*0 padding"):
        contract.max_pool(x, 5)
    with pytest.raises(ContractError, match=r"max_pool\(\): x has dtype complex64"):
        contract.max_pool(x.astype(jnp.complex64), 2)
    with pytest.raises(ContractError, match=r"max_pool\(\): x has dtype bool"):
        contract.max_pool(x > 0, 2)
    with pytest.raises(ContractError, match=r"max_pool\(\): padding='same' needs stride 1"):
        contract.max_pool(x, 2, padding="same")
    with pytest.raises(ContractError, match=r"max_pool\(\): x has shape \(4,\) \(rank 1\)"):
        contract.max_pool(jnp.ones(4), 2)
    with pytest.raises(ContractError, match=r"max_pool\(\): stride must be positive"):
        contract.max_pool(x, 2, 0)


def test_max_pool_lowering() -> None:
    low = str(contract.lower(contract.max_pool, jnp.ones((1, 2, 8, 8), jnp.int8), 3, 1, 1))
    assert "einsum 'pq...hw->...hw'  shapes (3, 3, 1, 2, 8, 8)" in low
    assert "H: 8 -> 8 windows of 3, stride 1, -inf-padded by 1" in low
    assert "in the max-plus semiring (max over the window labels)" in low
    assert "result dtype int8" in low
    low = str(contract.lower(contract.max_pool, jax.ShapeDtypeStruct((1, 2, 18, 18), jnp.float32),
                             kernel_size=9))
    assert "block view" in low and "'...hpwq->...hw'" in low


if __name__ == "__main__":
    _record_goldens()
