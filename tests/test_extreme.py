"""Max and min reductions: ``csrc/kernels/extreme.cc`` on CPU.

``contract.amax``/``amin`` and the ⊕ of a label a max-plus, min-plus or
max-product einsum drops run as the native kernel, one pass per run of
adjacent axes (rows where the run is trailing, columns otherwise). References are NumPy's
``max``/``min`` (exact, NaN propagating as in ``jnp``) and ``jnp.max``'s own
gradient. Each case runs eager and under ``jax.jit``; x64 off and on.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract
from contract import native
from contract.backend.ffi import kernels_usable

X64 = bool(jax.config.jax_enable_x64)
RNG = np.random.default_rng(1127)
OPS = [("amax", np.max), ("amin", np.min)]
# Where the row kernel runs here: contract.native built and loaded (not with
# CONTRACT_NATIVE=0) and one CPU device. The tests check the numbers of
# whichever path runs, never skip.
ON_KERNEL = native.available() and kernels_usable("float32", "contract_max", "contract_min")


@pytest.fixture(params=["eager", "jit"])
def mode(request: pytest.FixtureRequest) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return (lambda f: f) if request.param == "eager" else jax.jit


def _hlo(f: Callable[..., Any], *args: Any) -> str:
    """The compiled program (the platform's branch chosen), metadata cut."""
    text = jax.jit(f).lower(*args).compile().as_text()
    return "\n".join(line.split(", metadata=")[0] for line in text.splitlines())


@pytest.mark.parametrize("dim, passes", [((1, 2), 1), (0, 1), (1, 1), ((0, 2), 2), (None, 1)])
def test_every_axis_set_runs_the_kernel_alone(dim: Any, passes: int) -> None:
    # One kernel call per run of adjacent axes (each of more than FOLDED
    # elements); no XLA reduce beside them. Without the kernels, XLA's reduce
    # and a NaN check (CPU).
    x = jnp.ones((24, 30, 20), jnp.float32)
    hlo = _hlo(lambda v: contract.amax(v, dim=dim), x)
    if ON_KERNEL:
        assert hlo.count('custom_call_target="contract_max_f32"') == passes
        assert " reduce(" not in hlo and "fusion" not in hlo
    else:
        assert "custom_call" not in hlo and " reduce(" in hlo
    # Half floats keep XLA's reduce (the kernel has no such types).
    assert "custom_call" not in _hlo(lambda v: contract.amax(v, dim=-1), x.astype(jnp.bfloat16))


def test_short_runs_stay_one_xla_reduce(mode: Any) -> None:
    # 2x2 windows (max_pool's views): runs of at most FOLDED elements stay
    # one XLA reduce, which fuses with the view it reads.
    x = RNG.standard_normal((8, 16, 2, 16, 2)).astype(np.float32)
    hlo = _hlo(lambda v: contract.amax(v, dim=(2, 4)), jnp.asarray(x))
    assert "custom_call" not in hlo and hlo.count(" reduce(") == 1
    for op, ref in OPS:
        got = mode(lambda v: getattr(contract, op)(v, dim=(2, 4)))(jnp.asarray(x))
        np.testing.assert_array_equal(np.asarray(got), ref(x, axis=(2, 4)))
    # A short run beside a long one: the long one is the kernel's.
    y = jnp.ones((4, 100, 3), jnp.float32)
    hlo = _hlo(lambda v: contract.amax(v, dim=(1, 2)), y)
    assert ("custom_call_target" in hlo) == ON_KERNEL


def _floats() -> list[str]:
    return ["float32", "float64"] if X64 else ["float32"]


@pytest.mark.parametrize("dtype", _floats())
@pytest.mark.parametrize("length", [17, 31, 33, 2049])
def test_rows_match_numpy_with_nan_and_inf_anywhere(dtype: str, length: int, mode: Any) -> None:
    # Rows (over FOLDED elements, so the kernel's) of lengths that reach the
    # unrolled loop, the single-vector loop and the scalar tail in turn; NaN
    # and infinities planted at the start, the middle and the last element
    # of some rows, one row all -inf and one all +inf.
    x = RNG.standard_normal((12, length)).astype(dtype)
    for row, col, value in [(1, 0, np.nan), (2, length // 2, np.nan), (3, length - 1, np.nan),
                            (4, length // 2, np.inf), (5, length - 1, -np.inf),
                            (6, 0, np.inf), (6, length - 1, np.nan)]:
        x[row, col] = value
    x[7], x[8] = -np.inf, np.inf
    for op, ref in OPS:
        got = mode(lambda v: getattr(contract, op)(v, dim=-1))(jnp.asarray(x))
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(np.asarray(got), ref(x, axis=-1))


@pytest.mark.parametrize("dtype", ["int32", "int64"] if X64 else ["int32"])
def test_integers_are_exact_at_their_extremes(dtype: str, mode: Any) -> None:
    info = np.iinfo(dtype)
    x = RNG.integers(info.min, info.max, (9, 77), dtype=np.dtype(dtype), endpoint=True)
    x[0] = info.min
    x[1] = info.max
    x[2, 40] = info.max
    x[3, 76] = info.min
    for op, ref in OPS:
        got = mode(lambda v: getattr(contract, op)(v, dim=1))(jnp.asarray(x))
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(np.asarray(got), ref(x, axis=1))


def test_long_rows_cut_into_segments(mode: Any) -> None:
    # A full reduction of 2^20 elements and two rows of 300,000: each row is
    # cut into segments that the threads share; NaN or inf in a late segment.
    x = RNG.standard_normal(1 << 20).astype(np.float32)
    # Many rows: shared among the threads in guided ranges (parallel.h).
    z = RNG.standard_normal((700, 100)).astype(np.float32)
    z[[3, 350, 699], [5, 99, 0]] = np.nan
    for op, ref in OPS:
        got = mode(lambda v: getattr(contract, op)(v, dim=1))(jnp.asarray(z))
        np.testing.assert_array_equal(np.asarray(got), ref(z, axis=1))
    y = RNG.standard_normal((2, 300_000)).astype(np.float32)
    y[0, 299_999] = np.nan
    y[1, 200_001] = np.inf
    for op, ref in OPS:
        f = mode(lambda v: getattr(contract, op)(v))
        assert f(jnp.asarray(x)).item() == ref(x)
        x_nan = x.copy()
        x_nan[-3] = np.nan
        assert np.isnan(f(jnp.asarray(x_nan)).item())
        got = mode(lambda v: getattr(contract, op)(v, dim=1))(jnp.asarray(y))
        np.testing.assert_array_equal(np.asarray(got), ref(y, axis=1))


def test_huge_values_whose_running_sums_overflow(mode: Any) -> None:
    # The row loop's NaN sentinel is a running sum; +-3e38 terms drive it to
    # inf - inf = NaN, and such a row must still get its true maximum.
    x = np.where(RNG.random((4, 256)) < 0.5, 3e38, -3e38).astype(np.float32)
    x[1, 100] = 3.3e38
    for op, ref in OPS:
        got = mode(lambda v: getattr(contract, op)(v, dim=1))(jnp.asarray(x))
        np.testing.assert_array_equal(np.asarray(got), ref(x, axis=1))


@pytest.mark.parametrize("op, ref", [("amax", jnp.max), ("amin", jnp.min)])
def test_gradients_are_jnp_max_s_with_ties_split(op: str, ref: Any, mode: Any) -> None:
    x = jnp.asarray(RNG.integers(0, 3, (5, 6, 40)).astype(np.float32))  # many ties per row
    w = 1 + 2 * jnp.arange(30, dtype=jnp.float32).reshape(5, 6)

    def loss(f: Any) -> Any:
        return lambda v: jnp.sum(f(v, axis=-1) * w)

    got = mode(jax.grad(loss(getattr(contract, op))))(x)
    np.testing.assert_allclose(got, jax.grad(loss(ref))(x), rtol=1e-6)
    assert np.any(np.asarray(got) % 1 != 0)  # some ties really were split
    tangent = jnp.asarray(RNG.standard_normal(x.shape).astype(np.float32))
    _, jvp = jax.jvp(lambda v: getattr(contract, op)(v, dim=(1, 2)), (x,), (tangent,))
    _, want = jax.jvp(lambda v: ref(v, axis=(1, 2)), (x,), (tangent,))
    np.testing.assert_allclose(jvp, want, rtol=1e-6)


def test_vmap_over_any_axis_matches_numpy() -> None:
    x = RNG.standard_normal((4, 5, 33)).astype(np.float32)
    x[2, 3, 7] = np.nan
    for op, ref in OPS:
        f = lambda v: getattr(contract, op)(v, dim=-1)  # noqa: E731
        np.testing.assert_array_equal(jax.vmap(f)(x), ref(x, axis=-1))
        np.testing.assert_array_equal(jax.vmap(f, in_axes=1)(x), ref(x, axis=-1).T)
        np.testing.assert_array_equal(jax.jit(jax.vmap(f, in_axes=2))(x),
                                      ref(np.moveaxis(x, 2, 0), axis=-1))


@pytest.mark.parametrize("semiring, ref", [("max-plus", np.max), ("min-plus", np.min),
                                           ("max-product", np.max)])
def test_semiring_einsum_drops_labels_through_the_kernel(semiring: str, ref: Any,
                                                         mode: Any) -> None:
    # 'ijk,il->ij': k is dropped from the first operand (its trailing axis),
    # l from the second; then the pairwise step (a broadcast product here).
    a = np.abs(RNG.standard_normal((6, 5, 70))).astype(np.float32)
    b = np.abs(RNG.standard_normal((6, 9))).astype(np.float32)
    combine = np.multiply if semiring == "max-product" else np.add
    want = combine(ref(a, axis=2), ref(b, axis=1)[:, None])
    got = mode(lambda u, v: contract.einsum("ijk,il->ij", u, v, semiring=semiring))(a, b)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    plan = contract.plan("ijk,il->ij", a.shape, b.shape, semiring=semiring)
    assert ("contract's SIMD max/min kernel" in str(plan)) == native.available()


def test_nan_where_xla_s_cpu_reduce_drops_it(mode: Any) -> None:
    # docs/coming_from.md#amax-nan: jnp.max of this array (jax 0.10.2, CPU)
    # returns 1.0 in row 5; contract's kernel, or its NaN check where the
    # kernel cannot run, returns NaN.
    x = jnp.ones((64, 64), jnp.float32).at[5, 9].set(jnp.nan)
    for op in ("amax", "amin"):
        got = np.asarray(mode(lambda v: getattr(contract, op)(v, dim=1))(x))
        assert np.isnan(got[5]) and np.isnan(got).sum() == 1
        got = np.asarray(mode(lambda v: getattr(contract, op)(v, dim=0))(x))
        assert np.isnan(got[9]) and np.isnan(got).sum() == 1
