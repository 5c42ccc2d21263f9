"""contract against PyTorch's recorded outputs: no torch needed at test time.

``tools/make_torch_goldens.py`` (run once, with torch 2.13.0) recorded each
case's inputs and torch's outputs in ``tests/data/torch_goldens.{json,npz}``.
Every case is replayed through contract's public API -- eager and under
``jax.jit`` -- with the arguments a PyTorch user writes (``dim=``,
``keepdim=``, ``correction=``/``unbiased=``, ``kernel_size=``,
``ceil_mode=``, torch's positional order), and must give torch's values.

Result dtypes: torch's dtype as JAX canonicalises it (int64 is int32 and
float64 float32 with x64 off). Where torch and ``jax.numpy`` disagree, a case
carries a tag naming its row in docs/coming_from.md: ``dtype_differs`` when
torch's values hold but the dtype is the one ``jnp.sum`` gives for the input,
``differs`` when contract follows ``jax.numpy`` (or NumPy) instead of torch;
those cases check contract against that reference and that torch really does
differ, so the table cannot go stale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract
from contract import ContractError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
INDEX = json.loads((DATA / "torch_goldens.json").read_text())
ARRAYS = np.load(DATA / INDEX["arrays"])
CASES = {c["id"]: c for c in INDEX["cases"]}
SAME = sorted(k for k, c in CASES.items() if "differs" not in c)
DIFFERS = sorted(k for k, c in CASES.items() if "differs" in c)

# Relative tolerance per result dtype (torch and XLA sum in different orders);
# the absolute tolerance is this times the largest magnitude in the result.
RTOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-5, "complex64": 2e-5,
        "float64": 1e-10, "complex128": 1e-10}


def array(key: str) -> np.ndarray:
    """A stored array in its recorded dtype (bfloat16 is stored as its bits)."""
    a = ARRAYS[key]
    return a.view(jnp.bfloat16) if INDEX["dtypes"][key] == "bfloat16" else a


def canonical(name: str) -> np.dtype:
    """torch's dtype as JAX represents it in the current x64 mode."""
    return jax.dtypes.canonicalize_dtype(jnp.dtype(name))


def inputs(c: dict) -> list[jax.Array]:
    return [jnp.asarray(array(k)) for k in c["inputs"]]


def golden(c: dict) -> list[np.ndarray]:
    return [array(k) for k in c["outputs"]]


def call(c: dict) -> Callable[..., Any]:
    """The contract call a PyTorch user would write for case ``c``."""
    op, args, kwargs = c["op"], tuple(c["args"]), c["kwargs"]
    if op == "einsum":
        return lambda *xs: contract.einsum(args[0], *xs)
    if op == "mul_sum":
        return lambda a, b: contract.sum(a * b, **kwargs)
    if op == "jit_mul_sum":
        return lambda a, b: contract.jit(lambda u, v: (u * v).sum(0))(a, b)
    fn = getattr(contract, op)
    return lambda *xs: fn(*xs, *args, **kwargs)


def close(got: Any, want: np.ndarray, dtype: np.dtype) -> None:
    """``got`` has ``want``'s shape, dtype ``dtype`` and its values."""
    got = jax.device_get(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == dtype, (got.dtype, dtype)
    if dtype.kind in "biu":
        np.testing.assert_array_equal(np.asarray(got).astype(np.int64), want.astype(np.int64))
        return
    kind = np.complex128 if dtype.kind == "c" else np.float64
    want = want.astype(kind)
    rtol = RTOL[dtype.name]
    finite = np.abs(want[np.isfinite(want)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(np.asarray(got).astype(kind), want, rtol=rtol, atol=rtol * scale,
                               equal_nan=True)


def expected_dtype(c: dict, key: str) -> np.dtype:
    """torch's result dtype, canonicalised; for a ``dtype_differs`` case jnp.sum's."""
    torch_dtype = INDEX["dtypes"][key]
    if "dtype_differs" not in c:
        return canonical(torch_dtype)
    (x,) = c["inputs"]
    ours = jnp.sum(jnp.zeros(0, INDEX["dtypes"][x])).dtype
    assert ours != canonical(torch_dtype) or c["dtype_differs"] == "cumsum-narrow-int"
    return ours


def check(c: dict, outs: Any) -> None:
    outs = tuple(outs) if isinstance(outs, tuple) else (outs,)
    wants = golden(c)
    assert len(outs) == len(wants)
    for got, key, want in zip(outs, c["outputs"], wants):
        close(got, want, expected_dtype(c, key))


# ---------------------------------------------------------------- the goldens


def test_goldens_are_small_and_cover_the_seed_operations() -> None:
    size = sum(p.stat().st_size for p in DATA.glob("torch_goldens.*"))
    assert size < 2_000_000
    ops = {c["op"] for c in CASES.values()}
    assert {"sum", "mean", "var", "std", "cumsum", "sum_pool", "conv", "mul_sum", "einsum",
            "batch_stats", "matmul"} <= ops
    dtypes = {INDEX["dtypes"][k] for c in CASES.values() for k in c["inputs"]}
    assert {"bool", "int32", "int64", "float16", "bfloat16", "float32", "float64"} <= dtypes
    assert any(0 in array(k).shape for c in CASES.values() for k in c["inputs"])


@pytest.mark.parametrize("cid", SAME)
def test_eager_matches_torch(cid: str) -> None:
    c = CASES[cid]
    check(c, call(c)(*inputs(c)))


@pytest.mark.parametrize("cid", SAME)
def test_jit_matches_torch(cid: str) -> None:
    c = CASES[cid]
    check(c, jax.jit(call(c))(*inputs(c)))


# ---------------------------------------------------------------- documented differences


def _differs_from_torch(got: Any, want: np.ndarray) -> bool:
    got = np.asarray(jax.device_get(got))
    if got.shape != want.shape:
        return True
    return not np.allclose(got.astype(np.complex128), want.astype(np.complex128), equal_nan=True)


def _jnp_reference(c: dict, x: jax.Array) -> tuple[Any, Any]:
    """(contract's result, the jax.numpy/NumPy result it must equal) for a tag."""
    tag, kw = c["differs"], c["kwargs"]
    if tag == "dim-empty":
        op = getattr(contract, c["op"])
        return op(x, dim=kw["dim"]), getattr(jnp, c["op"])(x, axis=())
    if tag == "int-sum-dtype":
        return contract.sum(x), jnp.sum(x)
    if tag == "var-default":
        return getattr(contract, c["op"])(x), getattr(jnp, c["op"])(x)
    if tag == "var-correction-ge-n":
        return (getattr(contract, c["op"])(x, **kw),
                getattr(jnp, c["op"])(x, axis=kw["dim"], ddof=kw["correction"]))
    if tag == "cumsum-0d":  # NumPy scans a 0-d array as 1-d; jnp refuses axis=0 there
        return contract.cumsum(x, dim=0), np.cumsum(np.asarray(x), axis=0)
    if tag == "cumsum-no-axis":
        return contract.cumsum(x), jnp.cumsum(x)
    raise AssertionError(f"no reference for tag {tag!r}")


@pytest.mark.parametrize("cid", [k for k in DIFFERS if CASES[k]["differs"] != "0d-dim"])
def test_documented_difference_follows_jnp(cid: str) -> None:
    c = CASES[cid]
    (x,) = inputs(c)
    got, ref = _jnp_reference(c, x)
    ref = np.asarray(ref)
    assert np.asarray(got).dtype == ref.dtype and np.shape(got) == ref.shape
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6, equal_nan=True)
    (want,) = golden(c)
    if c["differs"] == "cumsum-no-axis":
        # torch needs the flatten spelled out; the values are the same.
        assert not _differs_from_torch(got, want)
    elif c["differs"] == "int-sum-dtype" and jax.config.jax_enable_x64:
        assert not _differs_from_torch(got, want)  # int64 under x64, as torch
    else:
        assert _differs_from_torch(got, want), "torch agrees: remove the row and the tag"


@pytest.mark.parametrize("cid", [k for k in DIFFERS if CASES[k]["differs"] == "0d-dim"])
def test_a_dim_of_a_0d_array_is_an_error_as_in_jnp(cid: str) -> None:
    c = CASES[cid]
    (x,) = inputs(c)
    with pytest.raises(ContractError, match="rank 0"):
        contract.sum(x, dim=0)
    with pytest.raises(ValueError, match="out of bounds"):
        jnp.sum(x, axis=0)
    # NumPy and torch read axis 0 of a 0-d array as the array itself.
    assert np.sum(np.asarray(x), axis=0) == golden(c)[0] == np.asarray(x)


def test_dtype_differences_are_real() -> None:
    tagged = [c for c in CASES.values() if "dtype_differs" in c]
    assert {c["dtype_differs"] for c in tagged} == {"uint-sum-dtype", "cumsum-narrow-int"}
    for c in tagged:
        (x,) = inputs(c)
        assert INDEX["dtypes"][c["outputs"][0]] == "int64"  # torch widens to int64
        if c["dtype_differs"] == "uint-sum-dtype":
            assert jnp.sum(x).dtype.kind == "u"  # jnp keeps unsigned sums unsigned
        else:
            assert jnp.cumsum(x, axis=c["kwargs"]["dim"]).dtype == x.dtype  # jnp does not widen


def test_var_default_divisor_is_the_population_one() -> None:
    (c,) = [c for c in CASES.values() if c.get("differs") == "var-default" and c["op"] == "var"]
    (x,), (want,) = inputs(c), golden(c)
    # torch's default is correction=1; say so to get torch's value.
    close(contract.var(x, correction=1), want, canonical("float32"))
    close(contract.var(x, unbiased=True), want, canonical("float32"))


def test_every_difference_has_a_row_in_coming_from() -> None:
    text = (ROOT / "docs" / "coming_from.md").read_text()
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', text))
    tags = {c.get("differs") or c.get("dtype_differs") for c in CASES.values()} - {None}
    assert tags <= anchors, f"docs/coming_from.md lacks rows for {sorted(tags - anchors)}"


# ---------------------------------------------------------------- PyTorch habits


class _TorchLike:
    """Stands in for a torch object: only its type's module says "torch"."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


Tensor = type("Tensor", (_TorchLike,), {"__module__": "torch"})
Parameter = type("Parameter", (_TorchLike,), {"__module__": "torch.nn.parameter"})
TorchDtype = type("dtype", (_TorchLike,), {"__module__": "torch"})


@pytest.mark.parametrize("call_", [
    lambda t: contract.sum(t), lambda t: contract.mean(t, dim=0), lambda t: contract.var(t),
    lambda t: contract.std(t), lambda t: contract.cumsum(t, dim=0),
    lambda t: contract.sum_pool(t, 2), lambda t: contract.conv(t, np.ones((1, 1, 1, 1))),
    lambda t: contract.conv(np.ones((1, 1, 2, 2)), t), lambda t: contract.batch_stats(t),
    lambda t: contract.einsum("ij->i", t), lambda t: contract.einsum("i,i->", np.ones(2), t),
    lambda t: contract.matmul(t, t), lambda t: contract.lower(contract.sum, t),
])
@pytest.mark.parametrize("cls", [Tensor, Parameter])
def test_a_torch_tensor_is_refused_with_the_conversion(call_: Callable, cls: type) -> None:
    with pytest.raises(ContractError, match=r"is a PyTorch \w+; .*jnp\.from_dlpack\(t\.detach\(\)\)"):
        call_(cls("tensor([1.])"))


@pytest.mark.parametrize("call_", [
    lambda d: contract.sum(np.ones(3), dtype=d), lambda d: contract.mean(np.ones(3), dtype=d),
    lambda d: contract.cumsum(np.ones(3), 0, dtype=d),
    lambda d: contract.einsum("i,i->", np.ones(2), np.ones(2), preferred_element_type=d),
    lambda d: contract.conv(np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1)),
                            preferred_element_type=d),
])
def test_a_torch_dtype_is_refused_with_its_jax_name(call_: Callable) -> None:
    with pytest.raises(ContractError, match=r"torch\.float16.*'float16'.*jnp\.float16"):
        call_(TorchDtype("torch.float16"))


def test_unbiased_maps_to_correction() -> None:
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    for op in ("var", "std"):
        fn, ref = getattr(contract, op), getattr(np, op)
        np.testing.assert_allclose(fn(x, dim=1, unbiased=True), ref(x, axis=1, ddof=1), rtol=1e-5)
        np.testing.assert_allclose(fn(x, 0, unbiased=False, keepdim=True),
                                   ref(x, 0, ddof=0, keepdims=True), rtol=1e-5)
        s = contract.batch_stats(x, dim=0, unbiased=True)
        np.testing.assert_allclose(s.var, np.var(x, 0, ddof=1), rtol=1e-5)


@pytest.mark.parametrize("call_,match", [
    (lambda: contract.var(np.ones(3), unbiased=True, correction=1), "unbiased=.*correction="),
    (lambda: contract.std(np.ones(3), unbiased=False, ddof=0), "unbiased=.*ddof="),
    (lambda: contract.batch_stats(np.ones(3), unbiased=True, correction=0), "unbiased="),
    (lambda: contract.var(np.ones(3), unbiased=1), "unbiased must be True or False"),
    # torch.var(x, 0, True) means unbiased=True; contract's third place is keepdims.
    (lambda: contract.var(np.ones((2, 3)), 0, True), r"var\(x, dim, True\) is ambiguous"),
    (lambda: contract.std(np.ones((2, 3)), 0, False), r"std\(x, dim, False\) is ambiguous"),
    (lambda: contract.sum(np.ones(3), 0, "int32", True), "keepdims= by keyword"),
    (lambda: contract.sum(np.ones(3), 0, "yes"), "keepdims must be True or False"),
    (lambda: contract.sum_pool(np.ones((4, 4)), 2, kernel_size=2), "both kernel= and"),
    (lambda: contract.sum_pool(np.ones((4, 4))), "kernel_size"),
    (lambda: contract.sum_pool(np.ones((4, 4)), 2, ceil_mode="yes"), "ceil_mode must be"),
])
def test_torch_habit_errors(call_: Callable, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        call_()


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_third_positional_is_keepdims_or_dtype_as_numpy_and_torch(op: str) -> None:
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    fn, ref = getattr(contract, op), getattr(np, op)
    kept = fn(x, 1, True)  # torch: (x, dim, keepdim)
    np.testing.assert_allclose(kept, ref(x, 1, keepdims=True))
    assert kept.shape == (3, 1)
    typed = fn(x, 1, "float16")  # NumPy: (x, axis, dtype)
    assert typed.dtype == jnp.float16 and typed.shape == (3,)
    np.testing.assert_allclose(np.asarray(typed, np.float32), ref(x, 1, np.float16), rtol=1e-3)
    for dt in (np.float32, jnp.float32, np.dtype("float32")):
        assert fn(x, 0, dt).dtype == jnp.float32


def test_var_third_positional_dtype_is_numpy_order() -> None:
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    got = contract.var(x, 0, "float32")
    np.testing.assert_allclose(got, np.var(x, 0, np.float32), rtol=1e-6)
