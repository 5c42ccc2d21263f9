"""The backend's semiring steps (contract.backend.semiring) against float64 NumPy/SciPy brute force."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings, strategies as st

import contract
from contract.backend.semiring import semiring_dot, semiring_reduce, tropical_xla
from contract.semiring import SEMIRINGS, Semiring, check_dtype, resolve

from _helpers import rearm

X64 = jax.config.jax_enable_x64
MM = (((1,), (0,)), ((), ()))
LOG, MAXP, MINP = SEMIRINGS["log"], SEMIRINGS["max-plus"], SEMIRINGS["min-plus"]
RUNS = [pytest.param(lambda f: f, id="eager"), pytest.param(jax.jit, id="jit")]


@pytest.fixture(params=["kernel", "portable"])
def repair(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The CPU kernels (where contract.native loaded: the log step's repair,
    the max-plus gradient) and the portable forms (CONTRACT_NATIVE=0)."""
    if request.param == "portable":
        monkeypatch.setenv("CONTRACT_NATIVE", "0")
    rearm()
    yield request.param
    monkeypatch.undo()
    rearm()


def log_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        return scipy.special.logsumexp(a[:, :, None] + b[None], axis=1)


def adversarial(rng: np.random.Generator, m: int, k: int, n: int) -> tuple:
    """Random logs with spreads of hundreds, disjoint supports, -inf entries and rows."""
    a = rng.uniform(-400, 50, (m, k)).astype(np.float32)
    b = rng.uniform(-400, 50, (k, n)).astype(np.float32)
    a[0] = -np.inf
    b[:, 1] = -np.inf
    a[1, : k // 2], b[: k // 2, 2] = 0, -300     # row 1 big on the first half,
    a[1, k // 2 :], b[k // 2 :, 2] = -300, 0     # column 2 on the second
    a[2, ::3] = -np.inf
    return a, b


@pytest.mark.parametrize("run", RUNS)
def test_log_step_matches_float64_on_adversarial_inputs(run, repair: str) -> None:
    rng = np.random.default_rng(0)
    for m, k, n in [(7, 9, 5), (33, 64, 17)]:
        a, b = adversarial(rng, m, k, n)
        out = np.asarray(run(lambda a, b: semiring_dot(a, b, MM, LOG))(a, b))
        ref = log_ref(a, b)
        assert not np.isnan(out).any()
        assert np.array_equal(np.isfinite(out), np.isfinite(ref))
        assert np.array_equal(out == -np.inf, ref == -np.inf)
        fin = np.isfinite(ref)
        np.testing.assert_allclose(out[fin], ref[fin], atol=1e-4, rtol=0)


def test_log_step_disjoint_supports_exact_value() -> None:
    a = np.array([[0.0, -200.0]], np.float32)
    b = np.array([[-200.0], [0.0]], np.float32)
    assert abs(float(semiring_dot(a, b, MM, LOG)[0, 0]) - -199.30685) < 1e-4


def test_log_step_nan_propagates_only_where_jnp_would() -> None:
    a = np.zeros((3, 4), np.float32)
    b = np.zeros((4, 2), np.float32)
    a[1, 2] = np.nan
    out = np.asarray(semiring_dot(a, b, MM, LOG))
    assert np.isnan(out[1]).all() and not np.isnan(out[[0, 2]]).any()


def test_batch_and_several_contracted_dims_in_odd_positions() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(-50, 0, (3, 2, 4, 5)).astype(np.float32)   # k1 b m k2
    b = rng.uniform(-50, 0, (5, 6, 2, 3)).astype(np.float32)   # k2 n b k1
    dims = (((0, 3), (3, 0)), ((1,), (2,)))
    terms = np.einsum("xbmy,ynbx->bmnxy", a.astype(np.float64) * 0, b * 0)  # shape only
    full = a.transpose(1, 2, 0, 3)[:, :, None, :, :] + b.transpose(2, 1, 3, 0)[:, None, :, :, :]
    assert terms.shape == full.shape
    ref = scipy.special.logsumexp(full.astype(np.float64), axis=(3, 4))
    np.testing.assert_allclose(semiring_dot(a, b, dims, LOG), ref, atol=1e-4)
    ref = full.max(axis=(3, 4))
    np.testing.assert_array_equal(semiring_dot(a, b, dims, MAXP), ref)
    np.testing.assert_array_equal(tropical_xla(*_bmk(a, b), True).reshape(ref.shape), ref)


def _bmk(a: np.ndarray, b: np.ndarray) -> tuple:
    """The (batch, m, k) and (batch, k, n) forms of the operands above."""
    return (a.transpose(1, 2, 0, 3).reshape(2, 4, 15), b.transpose(2, 3, 0, 1).reshape(2, 15, 6))


@pytest.mark.parametrize("run", RUNS)
def test_log_gradient_is_softmax_weights(run, repair: str) -> None:
    rng = np.random.default_rng(2)
    a, b = adversarial(rng, 6, 8, 5)
    g = rng.standard_normal((6, 5)).astype(np.float32)
    f = lambda a, b: jnp.sum(g * semiring_dot(a, b, MM, LOG))  # noqa: E731
    ga, gb = run(jax.grad(f, (0, 1)))(a, b)
    out = log_ref(a, b)
    with np.errstate(invalid="ignore"):
        w = np.exp(a.astype(np.float64)[:, :, None] + b[None] - out[:, None, :])
    w = np.where(np.isfinite(out)[:, None, :], np.nan_to_num(w), 0)
    assert not (np.isnan(ga).any() or np.isnan(gb).any())
    np.testing.assert_allclose(ga, np.einsum("ij,ikj->ik", g, w), atol=1e-4)
    np.testing.assert_allclose(gb, np.einsum("ij,ikj->kj", g, w), atol=1e-4)


def test_log_repair_on_cpu_is_one_kernel_call_not_a_loop() -> None:
    a, b = adversarial(np.random.default_rng(5), 6, 8, 5)
    f = jax.jit(jax.grad(lambda a, b: jnp.sum(semiring_dot(a, b, MM, LOG)), (0, 1)))
    hlo = f.lower(a, b).compile().as_text()
    on = contract.native.available() and jax.device_count() == 1
    assert ("contract_logrepair_f32" in hlo and "contract_logrepairgrad_f32" in hlo) == on
    assert (" while(" not in hlo and " conditional(" not in hlo) == on


def test_log_step_under_vmap() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(-300, 0, (3, 5, 6)).astype(np.float32)
    b = rng.uniform(-300, 0, (3, 6, 4)).astype(np.float32)
    out = jax.vmap(lambda a, b: semiring_dot(a, b, MM, LOG))(a, b)
    for i in range(3):
        np.testing.assert_allclose(out[i], log_ref(a[i], b[i]), atol=1e-4)


@pytest.mark.parametrize("maximum", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "int32", "int8"] + (["float64", "int64"] if X64 else []))
@pytest.mark.parametrize("native", [True, False])
def test_tropical_matches_brute_force(dtype: str, maximum: bool, native: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if not native:
        monkeypatch.setenv("CONTRACT_NATIVE", "0")
    rearm()
    try:
        rng = np.random.default_rng(4)
        a = (rng.standard_normal((2, 13, 37)) * 50).astype(dtype)
        b = (rng.standard_normal((2, 37, 70)) * 50).astype(dtype)
        wide = np.int64 if dtype.startswith("int") else np.float64
        red = np.max if maximum else np.min
        ref = red(a.astype(wide)[:, :, :, None] + b.astype(wide)[:, None], axis=2)
        dims = (((2,), (1,)), ((0,), (0,)))
        out = jax.jit(lambda a, b: semiring_dot(a, b, dims, MAXP if maximum else MINP))(a, b)
        if dtype == "int8":
            assert out.dtype == jnp.int32
        np.testing.assert_array_equal(out, ref.astype(out.dtype))
    finally:
        monkeypatch.undo()
        rearm()


def test_tropical_kernel_and_xla_form_agree_with_nan_and_infinities() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((1, 20, 30)).astype(np.float32)
    b = rng.standard_normal((1, 30, 40)).astype(np.float32)
    a[0, 3, 4], b[0, 7, 9] = np.nan, np.nan
    a[0, 5, :] = -np.inf
    a[0, 6, 2], b[0, 2, 11] = np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        ref = np.max(a[:, :, :, None] + b[:, None], axis=2)
    out = semiring_dot(a, b, (((2,), (1,)), ((0,), (0,))), MAXP)
    np.testing.assert_array_equal(out, ref)
    # XLA's CPU max may drop a NaN; tropical_xla, the portable form, is jnp.max.
    naive = jnp.max(jnp.asarray(a)[:, :, :, None] + b[:, None], axis=2)
    np.testing.assert_array_equal(tropical_xla(jnp.asarray(a), jnp.asarray(b), True), naive)


@pytest.mark.parametrize("maximum", [True, False])
@pytest.mark.parametrize("shape", [(5, 6, 4), (9, 40, 37)], ids=["tails", "vectors"])
def test_tropical_gradient_is_jnp_max_gradient_with_ties(maximum: bool, shape: tuple,
                                                         repair: str) -> None:
    # Small integers: many ties; on CPU the count/share kernels (vector loops
    # and scalar tails), or XLA's reductions without them.
    m, k, n = shape
    rng = np.random.default_rng(6)
    a = rng.integers(-2, 3, (m, k)).astype(np.float32)
    b = rng.integers(-2, 3, (k, n)).astype(np.float32)
    a[0] = -np.inf if maximum else np.inf                 # a row of zeros: all tie
    g = rng.standard_normal((m, n)).astype(np.float32)
    red = jnp.max if maximum else jnp.min
    naive = lambda a, b: jnp.sum(g * red(a[:, :, None] + b[None], axis=1))  # noqa: E731
    ours = lambda a, b: jnp.sum(g * semiring_dot(a, b, MM, MAXP if maximum else MINP))  # noqa: E731
    want = jax.grad(naive, (0, 1))(a, b)
    for x, y in zip(jax.jit(jax.grad(ours, (0, 1)))(a, b), want):
        np.testing.assert_allclose(x, y, atol=1e-5)
    assert np.any(np.asarray(want[0]) % 1 != 0)  # ties were split
    if maximum and m > 5:  # batched by vmap: the kernels take the leading axis as a batch
        batched = jax.jit(jax.vmap(jax.grad(ours, 0), in_axes=(0, None)))(np.stack([a, a[::-1]]), b)
        for i, x in enumerate((a, a[::-1])):
            np.testing.assert_allclose(batched[i], jax.grad(naive, 0)(x, b), atol=1e-5)


def test_tropical_gradient_on_cpu_is_the_kernels() -> None:
    a = np.ones((6, 8), np.float32)
    f = jax.jit(jax.grad(lambda a: jnp.sum(semiring_dot(a, a.T, MM, MAXP)), 0))
    hlo = f.lower(a).compile().as_text()
    on = contract.native.available() and jax.device_count() == 1
    assert ("contract_tropcount_f32" in hlo and "contract_tropshare_f32" in hlo) == on


def test_tropical_under_vmap() -> None:
    a = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    b = np.arange(40.0, dtype=np.float32).reshape(2, 4, 5)
    out = jax.vmap(lambda a, b: semiring_dot(a, b, MM, MAXP))(a, b)
    np.testing.assert_array_equal(out, np.max(a[:, :, :, None] + b[:, None], axis=2))


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_random_shapes_max_product_and_user_semiring(m: int, k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.random((m, k)).astype(np.float32), rng.random((k, n)).astype(np.float32)
    prod = a.astype(np.float64)[:, :, None] * b[None]
    np.testing.assert_allclose(semiring_dot(a, b, MM, SEMIRINGS["max-product"]), prod.max(1), rtol=1e-6)
    minprod = Semiring("test-min-product", lambda x, axes: jnp.min(x, axis=axes), jnp.multiply,
                       float("inf"), 1.0)
    np.testing.assert_allclose(semiring_dot(a, b, MM, minprod), prod.min(1), rtol=1e-6)
    np.testing.assert_allclose(semiring_dot(a, b, MM, MAXP), (a[:, :, None] + b[None]).max(1))


@pytest.mark.parametrize("name", ["log", "max-plus", "min-plus", "max-product"])
def test_size_zero_contraction_gives_the_zero(name: str) -> None:
    s = SEMIRINGS[name]
    out = semiring_dot(np.zeros((3, 0), np.float32), np.zeros((0, 2), np.float32), MM, s)
    np.testing.assert_array_equal(out, np.full((3, 2), s.zero))
    assert semiring_reduce(np.zeros((3, 0), np.float32), (1,), s).tolist() == [s.zero] * 3


def test_bfloat16_computes_in_float32() -> None:
    a = jnp.ones((2, 3), jnp.bfloat16)
    assert semiring_dot(a, a.T, MM, LOG).dtype == jnp.float32


def test_reduce_log_is_stable_and_gradient_free_of_nan() -> None:
    x = np.array([[1000.0, 1000.0], [-np.inf, -np.inf], [-1000.0, 0.0]], np.float32)
    out = semiring_reduce(x, (1,), LOG)
    np.testing.assert_allclose(out, scipy.special.logsumexp(x.astype(np.float64), axis=1), atol=1e-4)
    grad = jax.grad(lambda x: semiring_reduce(x, (1,), LOG).sum())(x)
    np.testing.assert_allclose(grad, [[0.5, 0.5], [0, 0], [0, 1]], atol=1e-6)
    assert semiring_reduce(x, (0, 1), MAXP) == 1000.0 and semiring_reduce(x, (), MINP).shape == (3, 2)


def test_resolve_names_aliases_and_user_semirings() -> None:
    assert resolve(None) is SEMIRINGS["sum-product"] is resolve("sum-product")
    for alias, name in [("LogSumExp", "log"), ("log-sum-exp", "log"), ("tropical", "max-plus"),
                        ("max-sum", "max-plus"), ("min-sum", "min-plus"), ("viterbi", "max-product")]:
        assert resolve(alias).name == name
    mine = Semiring("test-resolve", jnp.sum, jnp.multiply, 0.0, 1.0)
    assert resolve(mine) is mine and resolve("test-resolve") is mine
    with pytest.raises(contract.errors.ContractError, match="already taken"):
        resolve(Semiring("test-resolve", jnp.max, jnp.add, 0.0, 0.0))
    with pytest.raises(contract.errors.ContractError, match="built-in"):
        resolve(Semiring("log", jnp.max, jnp.add, 0.0, 0.0))
    with pytest.raises(contract.errors.ContractError, match="'max-plus'"):
        resolve("max-times-nothing")


@pytest.mark.parametrize("name,dtype,ok", [
    ("log", "complex64", False), ("max-plus", "int32", True), ("min-plus", "uint8", True),
    ("log", "int32", False), ("max-product", "int8", False), ("max-plus", "bool", False),
    ("sum-product", "complex64", True), ("sum-product", "bool", True), ("log", "bfloat16", True)])
def test_check_dtype(name: str, dtype: str, ok: bool) -> None:
    if ok:
        check_dtype(SEMIRINGS[name], dtype)
    else:
        with pytest.raises(contract.errors.ContractError, match=f"{name}.*{dtype}"):
            check_dtype(SEMIRINGS[name], dtype)
