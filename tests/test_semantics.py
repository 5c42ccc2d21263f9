"""Drop-in semantics against jnp and NumPy: size-1 broadcasting, result dtypes
(x64 off *and* on: CI runs this file a second time with ``JAX_ENABLE_X64=1``,
and every expectation reads the mode and asks jnp), the warnings of dtypes JAX
cannot honour, and the keywords ``jnp.einsum`` takes (``precision=``,
``out=``, ``optimize=``)."""

from __future__ import annotations

import warnings
from typing import Any

import cotengra
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import opt_einsum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import contract
from contract import ContractError
from tests._helpers import mixed_dtype_pairs

X64 = bool(jax.config.jax_enable_x64)
RNG = np.random.default_rng(0)


def _array(shape: tuple[int, ...], dtype: str = "float32", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    if np.dtype(dt).kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if np.dtype(dt).kind in "iu":
        return rng.integers(0, 5, shape).astype(dt)
    x = rng.standard_normal(shape)
    if np.dtype(dt).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dt)


# ---------------------------------------------------------------- size-1 broadcasting

BROADCAST = [
    ("bhqd,bhkd->bhqk", ((1, 8, 16, 8), (4, 8, 16, 8))),  # attention, batch of 1 for q
    ("ij,jk->ik", ((2, 1), (3, 3))),  # a contracted label of size 1 in one operand
    ("cij,cjk->cik", ((1, 2, 3), (5, 3, 4))),  # a batch label of size 1
    ("cij,cjk->cik", ((5, 2, 3), (1, 3, 4))),
    ("ij,ij->ij", ((1, 3), (2, 1))),  # both operands broadcast
    ("i,i", ((1,), (4,))),  # implicit output: everything contracted
    ("ij,jk->ik", ((2, 1), (0, 3))),  # 1 against 0 is 0
    ("ii,i->i", ((1, 1), (3,))),  # a repeated label of size 1 broadcasts
    ("ab,bc,cd->ad", ((2, 1), (3, 1), (1, 5))),
    ("ab,bc,cd->", ((2, 1), (3, 1), (1, 5))),
    ("i,i,i->i", ((1,), (1,), (3,))),
    ("...ij,jk->...ik", ((2, 1, 3), (1, 4))),  # named and ellipsis broadcast together
    ("b i, b i -> b", ((1, 3), (4, 3))),  # named axes
]


@pytest.mark.parametrize("spec, shapes", BROADCAST, ids=[f"{s}|{sh}" for s, sh in BROADCAST])
def test_size_one_labels_broadcast_as_numpy_and_jnp(spec: str, shapes: tuple) -> None:
    ops = [_array(s, seed=k) for k, s in enumerate(shapes)]
    numpy_spec = spec.replace("b i", "bi").replace(" ", "")
    want = np.einsum(numpy_spec, *[o.astype(np.float64) for o in ops])
    got = contract.einsum(spec, *ops)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(np.asarray(jnp.einsum(numpy_spec, *ops)), want, rtol=2e-5,
                               atol=2e-5)
    jitted = jax.jit(lambda *xs: contract.einsum(spec, *xs))(*ops)
    np.testing.assert_allclose(np.asarray(jitted), want, rtol=2e-5, atol=2e-5)


def test_broadcast_in_the_sublist_form_and_expression() -> None:
    a, b = _array((2, 1)), _array((3, 3), seed=1)
    want = np.einsum("ij,jk->ik", a, b)
    np.testing.assert_allclose(contract.einsum(a, [0, 1], b, [1, 2], [0, 2]), want, rtol=1e-5)
    expr = contract.expression("ij,jk->ik", (2, 1), (3, 3))
    np.testing.assert_allclose(expr(a, b), want, rtol=1e-5)


def test_broadcast_is_not_materialised() -> None:
    q, k = _array((1, 8, 16, 8)), _array((4, 8, 16, 8), seed=1)
    p = contract.plan("bhqd,bhkd->bhqk", q, k)
    # q's batch axis is squeezed: the label b lives in k only, and the step is
    # a plain batched GEMM over h, with b a free label of k.
    assert p.squeeze == ((0,), ())
    assert p.shapes == ((8, 16, 8), (4, 8, 16, 8))
    jaxpr = jax.make_jaxpr(lambda x, y: contract.einsum("bhqd,bhkd->bhqk", x, y))(q, k)
    prims = {e.primitive.name for e in jaxpr.eqns}
    assert "broadcast_in_dim" not in prims and "dot_general" in prims
    # The contracted size-1 label: a[:, 0] times the column sums of b, no (2, 3) copy of a.
    jaxpr = jax.make_jaxpr(lambda x, y: contract.einsum("ij,jk->ik", x, y))(
        _array((2, 1)), _array((3, 3)))
    assert "broadcast_in_dim" not in {e.primitive.name for e in jaxpr.eqns}


def test_broadcast_gradients_match_jnp() -> None:
    q, k = _array((1, 2, 3, 4)), _array((3, 2, 5, 4), seed=1)
    ours = jax.grad(lambda x, y: contract.einsum("bhqd,bhkd->", x, y), (0, 1))(q, k)
    theirs = jax.grad(lambda x, y: jnp.einsum("bhqd,bhkd->", x, y), (0, 1))(q, k)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_mismatched_sizes_still_name_operand_label_and_sizes() -> None:
    with pytest.raises(ContractError, match=r"label 'j' has size 2 in operand 0 but size 3 in "
                                            r"operand 1 \(spec 'ij,jk->ik'\)"):
        contract.einsum("ij,jk->ik", np.ones((4, 2)), np.ones((3, 3)))
    # The size of a label broadcast from 1 is the size met next, and a third
    # operand must agree with it.
    with pytest.raises(ContractError, match=r"label 'i' has size 3 in operand 1 but size 4 in "
                                            r"operand 2"):
        contract.einsum("i,i,i->i", np.ones(1), np.ones(3), np.ones(4))
    with pytest.raises(ContractError, match=r"'\.\.\.' dimension 0 has size 2 in operand 0 but "
                                            r"size 3 in operand 1"):
        contract.einsum("...i,...i->...i", np.ones((2, 1)), np.ones((3, 1)))
    with pytest.raises(ContractError, match=r"label 'j' has size 2 in operand 0 but size 3"):
        contract.plan("ij,jk->ik", (4, 2), (3, 3))


@st.composite
def _broadcast_case(draw: st.DrawFn) -> tuple[str, list[tuple[int, ...]]]:
    """A random spec whose operands set some of their label sizes to 1."""
    labels = "abcde"
    n = draw(st.integers(1, 3))
    terms = [draw(st.lists(st.sampled_from(labels), min_size=0, max_size=3, unique=True))
             for _ in range(n)]
    used = sorted({l for t in terms for l in t})
    out = draw(st.lists(st.sampled_from(used), unique=True)) if used else []
    size = {l: draw(st.integers(0, 3)) for l in used}
    shapes = [tuple(1 if draw(st.booleans()) else size[l] for l in t) for t in terms]
    return ",".join("".join(t) for t in terms) + "->" + "".join(out), shapes


@settings(max_examples=25, deadline=None)
@given(_broadcast_case())
def test_random_size_one_broadcasting_matches_numpy(case: tuple) -> None:
    spec, shapes = case
    ops = [_array(s, "float64", seed=k) for k, s in enumerate(shapes)]
    try:
        want = np.einsum(spec, *ops)
    except ValueError:
        with pytest.raises(ContractError):
            contract.einsum(spec, *ops)
        return
    got = contract.einsum(spec, *ops)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- result dtypes vs jnp

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]


def _quiet(fn, *args, **kwargs):  # noqa: ANN001, ANN202 - float64 without x64 warns, on purpose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# (contract's function, jnp's function) over a (2, 3) array.
PAIRS = {
    "sum": (lambda x: contract.sum(x), lambda x: jnp.sum(x)),
    "sum axis": (lambda x: contract.sum(x, axis=1), lambda x: jnp.sum(x, axis=1)),
    "mean": (lambda x: contract.mean(x, axis=0), lambda x: jnp.mean(x, axis=0)),
    "var": (lambda x: contract.var(x), lambda x: jnp.var(x)),
    "std": (lambda x: contract.std(x, axis=1), lambda x: jnp.std(x, axis=1)),
    "trace": (lambda x: contract.trace(x), lambda x: jnp.trace(x)),
    "einsum 1": (lambda x: contract.einsum("ij->j", x), lambda x: jnp.einsum("ij->j", x)),
    "einsum 2": (lambda x: contract.einsum("ij,kj->ik", x, x),
                 lambda x: jnp.einsum("ij,kj->ik", x, x)),
    "tensordot": (lambda x: contract.tensordot(x, x.T, 1), lambda x: jnp.tensordot(x, x.T, 1)),
    "batch_stats": (lambda x: contract.batch_stats(x, axis=0).sum, lambda x: jnp.sum(x, axis=0)),
}


@pytest.mark.parametrize("dtype", DTYPES)
def test_result_dtypes_are_jnps(dtype: str) -> None:
    x = jnp.asarray(_quiet(jnp.asarray, _array((2, 3), dtype)))
    for name, (ours, theirs) in PAIRS.items():
        # Abstractly (no compile): the dtype rules are the same traced or eager.
        assert jax.eval_shape(ours, x).dtype == jax.eval_shape(theirs, x).dtype, (name, dtype)
    if dtype in ("bool", "int8", "uint32", "bfloat16", "float64", "complex128"):
        for name, (ours, theirs) in PAIRS.items():  # and eagerly, for a few
            assert ours(x).dtype == jax.eval_shape(theirs, x).dtype, (name, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cumsum_dtypes(dtype: str) -> None:
    x = jnp.asarray(_quiet(jnp.asarray, _array((2, 3), dtype)))
    got = contract.cumsum(x, axis=1)
    if x.dtype.kind in "biu":
        # The marked exception (docs/coming_from.md#cumsum-narrow-int): integers
        # widen as jnp.sum widens them (as NumPy and PyTorch do); jnp.cumsum
        # keeps int8..int32 and wraps.
        assert got.dtype == jnp.sum(x).dtype
    else:
        assert got.dtype == jnp.cumsum(x, axis=1).dtype
    np.testing.assert_allclose(np.asarray(got.astype(jnp.complex64 if x.dtype.kind == "c"
                                                     else jnp.float32)),
                               np.cumsum(np.asarray(x.astype(got.dtype)), axis=1),
                               rtol=2e-2 if dtype in ("float16", "bfloat16") else 1e-5)


REQUESTED = ["bool", "int8", "int32", "int64", "uint8", "uint64", "float16", "bfloat16",
             "float32", "float64", "complex64", "complex128"]


@pytest.mark.parametrize("requested", REQUESTED)
def test_requested_dtypes_are_jnps(requested: str) -> None:
    x = jnp.asarray(_array((2, 3), "float32"))
    for op in ("sum", "cumsum"):
        ours = _quiet(getattr(contract, op), x, 0, dtype=requested)
        theirs = _quiet(getattr(jnp, op), x, 0, dtype=requested)
        assert ours.dtype == theirs.dtype, (op, requested)
    if jnp.dtype(requested).kind in "fc" or requested == "bfloat16":
        for op in ("mean", "var", "std"):
            ours = _quiet(getattr(contract, op), x, 0, dtype=requested)
            theirs = _quiet(getattr(jnp, op), x, 0, dtype=requested)
            assert ours.dtype == theirs.dtype, (op, requested)
    ours = _quiet(contract.einsum, "ij->j", x, preferred_element_type=requested)
    theirs = _quiet(jnp.einsum, "ij->j", x, preferred_element_type=requested)
    assert ours.dtype == theirs.dtype, ("einsum", requested)


def test_integer_sums_use_the_default_integer() -> None:
    big = np.array([2**30, 2**30, 2**30], np.int32)
    total = contract.sum(big)
    assert total.dtype == jnp.sum(big).dtype == (jnp.int64 if X64 else jnp.int32)
    assert int(total) == int(jnp.sum(big))  # 3 * 2**30 with x64; wrapped like jnp without
    if X64:
        assert int(total) == 3 * 2**30
        assert contract.sum(np.ones(3, np.int8)).dtype == jnp.int64
        assert contract.sum(np.ones(3, np.uint32)).dtype == jnp.uint64
        assert contract.cumsum(big).tolist() == [2**30, 2**31, 3 * 2**30]
        assert contract.mean(np.ones(3, np.int64)).dtype == jnp.float64
        assert contract.var(np.ones(3, np.complex128)).dtype == jnp.float64
    else:
        assert contract.sum(np.ones(3, np.int8)).dtype == jnp.int32
        assert contract.cumsum(np.ones(3, np.int8)).dtype == jnp.int32


def test_var_of_complex_with_a_real_dtype_is_refused_as_in_jnp() -> None:
    z = np.ones(3, np.complex64)
    with pytest.raises(ValueError):
        jnp.var(z, dtype="float32")
    with pytest.raises(ContractError, match=r"var\(\): dtype=float32 is real but the input is "
                                            r"complex"):
        contract.var(z, dtype="float32")
    assert contract.var(z, dtype="complex64").dtype == jnp.var(z, dtype="complex64").dtype


# ---------------------------------------------------------------- results narrower than operands

DIMS = (((1,), (0,)), ((), ()))
# Sums with fractional parts, where converting the operands first changes the
# answer: the issue's [[1.6, 2.7]] @ [[1.5], [1.5]] is 6 as lax computes it
# (6.45 converted), 3 with the operands converted first; 0.3 + 0.3 is True as
# a bool, False converted first.
NARROW_A = np.array([[1.6, 2.7], [0.3, 0.3], [-1.6, 0.4], [0.0, 0.0]], np.float32)
NARROW_B = np.array([[1.5, 0.5], [1.5, -2.0]], np.float32)
FLOATS = ["float32", "bfloat16", "float16"] + (["float64"] if X64 else [])
NARROW = ["int32", "int16", "int8", "uint8", "bool"] + (["int64", "float32"] if X64 else [])


def _narrow_pairs() -> list[tuple[str, str]]:
    # float32 is narrower than float64 only: a narrow request on float64 operands.
    return [(f, p) for f in FLOATS for p in NARROW if p != "float32" or f == "float64"]


def _pair(dtype: str, unsigned: bool) -> tuple[jax.Array, jax.Array]:
    a, b = (np.abs(x) if unsigned else x for x in (NARROW_A, NARROW_B))
    dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    return jnp.asarray(a.astype(dt)), jnp.asarray(b.astype(dt))


def test_the_issue_example_is_six() -> None:
    a, b = np.array([[1.6, 2.7]], np.float32), np.array([[1.5], [1.5]], np.float32)
    assert lax.dot_general(a, b, DIMS, preferred_element_type=jnp.int32).tolist() == [[6]]
    assert contract.einsum("ij,jk->ik", a, b, preferred_element_type=jnp.int32).tolist() == [[6]]
    assert contract.dot_general(a, b, DIMS, preferred_element_type=jnp.int32).tolist() == [[6]]


@pytest.mark.parametrize("operand, preferred", _narrow_pairs())
def test_one_contraction_with_a_narrow_preferred_type_is_lax_dot_general(
        operand: str, preferred: str) -> None:
    a, b = _pair(operand, preferred.startswith("u"))
    want = lax.dot_general(a, b, DIMS, preferred_element_type=preferred)
    assert want.dtype == jnp.dtype(preferred)
    # jnp.einsum's one step is that dot_general too.
    np.testing.assert_array_equal(jnp.einsum("ij,jk->ik", a, b, preferred_element_type=preferred),
                                  want)
    expr = contract.expression("ij,jk->ik", a.shape, b.shape, dtype=a.dtype,
                               preferred_element_type=preferred)
    calls = {
        "einsum": lambda x, y: contract.einsum("ij,jk->ik", x, y, preferred_element_type=preferred),
        "sublists": lambda x, y: contract.einsum(x, [0, 1], y, [1, 2], [0, 2],
                                                 preferred_element_type=preferred),
        "dot_general": lambda x, y: contract.dot_general(x, y, DIMS,
                                                         preferred_element_type=preferred),
        "expression": expr,
    }
    for name, call in calls.items():
        for how, run in (("eager", call), ("jit", jax.jit(call))):
            got = run(a, b)
            assert got.dtype == want.dtype, (name, how)
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want),
                                          err_msg=f"{name} {how}")
    p = contract.plan("ij,jk->ik", a, b, preferred_element_type=preferred)
    assert p.result_dtype == preferred


def test_a_label_summed_first_is_summed_in_the_operands_type() -> None:
    # k only in b: b is summed over k first (in float32, as jnp does), then one dot.
    a, b = _pair("float32", False)
    for preferred in ("int32", "bool"):
        want = jnp.einsum("ij,jk->i", a, b, preferred_element_type=preferred)
        np.testing.assert_array_equal(
            contract.einsum("ij,jk->i", a, b, preferred_element_type=preferred), want)
        np.testing.assert_array_equal(  # one operand: summed, then converted
            contract.einsum("ij->i", a, preferred_element_type=preferred),
            jnp.einsum("ij->i", a, preferred_element_type=preferred))


def _exact(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Values whose products and sums every float dtype here holds exactly."""
    return np.random.default_rng(seed).choice([-1.0, -0.5, 0.5, 1.0, 1.5], shape)


@pytest.mark.parametrize("operand", FLOATS)
@pytest.mark.parametrize("preferred", ["int32", "int16", "bool"])
def test_a_multi_step_plan_converts_once_at_the_end(operand: str, preferred: str) -> None:
    spec, shapes = "ij,jk,kl->il", ((2, 32), (32, 32), (32, 2))
    ops = [_exact(s, n) for n, s in enumerate(shapes)]  # sums within int16
    exact = np.einsum(spec, *ops)  # float64: every sum here is exact
    want = exact != 0 if preferred == "bool" else np.trunc(exact).astype(preferred)
    dt = ml_dtypes.bfloat16 if operand == "bfloat16" else operand
    ops = [jnp.asarray(x.astype(dt)) for x in ops]
    # Any order, sliced to a budget or not, eager or jitted: one conversion of the sum.
    sliced = contract.plan(spec, *ops, preferred_element_type=preferred, memory_limit=200)
    assert isinstance(sliced, contract.SlicedPlan) and sliced.n_slices > 1
    for kw in ({}, {"optimize": False}, {"optimize": [(1, 2), (0, 1)]}, {"memory_limit": 200}):
        def call(*xs: jax.Array, kw: dict = kw) -> jax.Array:
            return contract.einsum(spec, *xs, preferred_element_type=preferred, **kw)

        for run in (call, jax.jit(call)):
            got = run(*ops)
            assert got.dtype == jnp.dtype(preferred)
            np.testing.assert_array_equal(np.asarray(got), want, err_msg=str(kw))


def test_jnp_converts_after_each_of_its_steps() -> None:
    """The example of docs/coming_from.md#preferred-narrow."""
    a = jnp.array([[1.5, 2.75]])
    b = jnp.array([[1.5], [1.5]])
    c = jnp.array([[0.5]])
    ours = contract.einsum("ij,jk,kl->il", a, b, c, preferred_element_type=jnp.int32)
    theirs = jnp.einsum("ij,jk,kl->il", a, b, c, preferred_element_type=jnp.int32)
    assert ours.tolist() == [[3]]  # int32(6.375 * 0.5)
    assert theirs.tolist() == [[0]]  # 6.375 -> 6, then 0.5 -> 0 (or 0.75 -> 0 first)


def test_contract_jit_keeps_dots_with_an_integer_result_as_written() -> None:
    rng = np.random.default_rng(3)
    a, b, c = (jnp.asarray(rng.uniform(0, 1, s), jnp.float32)
               for s in ((64, 8), (8, 64), (64, 2)))

    def chain(preferred: Any):  # noqa: ANN202
        return lambda x, y, z: jnp.einsum("ij,jk,kl->il", x, y, z, optimize=False,
                                          preferred_element_type=preferred)

    def dots(x: jax.Array, y: jax.Array, z: jax.Array) -> jax.Array:
        xy = lax.dot_general(x, y, DIMS, preferred_element_type=jnp.int32)
        return lax.dot_general(xy.astype(jnp.float32), z, DIMS, preferred_element_type=jnp.int32)

    # The same chain with a float result is rewritten (the fuser does see it) ...
    assert contract.jit(chain(None)).explain(a, b, c).rewritten
    # ... with an integer or bool result it is left to jax.jit, as written.
    for f in (chain(jnp.int32), chain(jnp.bool_), dots):
        assert contract.jit(f).explain(a, b, c).clusters == ()
        np.testing.assert_array_equal(contract.jit(f)(a, b, c), jax.jit(f)(a, b, c))


# ---------------------------------------------------------------- operands of two dtypes

MIXED = mixed_dtype_pairs()


@pytest.mark.parametrize("left, right", MIXED)
@pytest.mark.parametrize("spec", ["a,a->a", "ab,bc->ac", "abc,acd->abd"])
def test_two_dtypes_give_jnps_dtype_and_values(spec: str, left: str, right: str) -> None:
    shapes = {"a,a->a": ((6,), (6,)), "ab,bc->ac": ((3, 4), (4, 5)),
              "abc,acd->abd": ((2, 3, 4), (2, 4, 5))}[spec]
    x, y = _array(shapes[0], left), _array(shapes[1], right, seed=1)
    want = jnp.einsum(spec, x, y)
    # What contract computed before it passed the pair uncast: both operands
    # cast to the accumulation dtype first.
    acc = contract.plan(spec, x, y).compute_dtype
    before = contract.einsum(spec, x.astype(acc), y.astype(acc)).astype(want.dtype)
    terms, out = spec.split("->")
    swapped = ",".join(reversed(terms.split(","))) + "->" + out
    tol = 1e-2 if want.dtype == jnp.bfloat16 else 0
    for run in (contract.einsum, jax.jit(contract.einsum, static_argnums=0)):
        for got in (run(spec, x, y), run(swapped, y, x)):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(np.asarray(got), np.asarray(before))
            np.testing.assert_allclose(np.asarray(got.astype(jnp.float32)),
                                       np.asarray(want.astype(jnp.float32)), rtol=tol)


# ---------------------------------------------------------------- dtypes JAX cannot honour

def _warnings(fn, *args, **kwargs) -> list[warnings.WarningMessage]:  # noqa: ANN001
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    return [w for w in caught if "Explicitly requested dtype" in str(w.message)]


WIDE_CALLS = [
    ("sum", lambda m, x: m.sum(x, dtype="float64")),
    ("cumsum", lambda m, x: m.cumsum(x, dtype="int64")),
    ("mean", lambda m, x: m.mean(x, dtype="float64")),
    ("var", lambda m, x: m.var(x, dtype="complex128")),
    ("einsum", lambda m, x: m.einsum("i,i->", x, x, preferred_element_type="float64")),
]


@pytest.mark.parametrize("name, call", WIDE_CALLS, ids=[n for n, _ in WIDE_CALLS])
def test_a_dtype_jax_cannot_honour_warns_as_jnp_does(name: str, call) -> None:  # noqa: ANN001
    x = np.ones(3, np.float32)
    ours, theirs = _warnings(call, contract, x), _warnings(call, jnp, x)
    if X64:  # honoured: nothing to say
        assert ours == [] and theirs == []
        return
    assert theirs and len(ours) == 1  # jnp.sum says it twice
    assert ours[0].category is theirs[0].category is UserWarning
    wide = "int64" if name == "cumsum" else "complex128" if name == "var" else "float64"
    gist = rf"Explicitly requested dtype {wide} requested in {name} is not available, and will " \
           rf"be truncated to dtype {wide.replace('64', '32').replace('128', '64')}"
    import re

    assert re.match(gist, str(theirs[0].message))
    assert re.match(gist, str(ours[0].message))
    assert ours[0].filename == __file__  # it points at the caller's line, not at contract


def test_ops_warn_for_64_bit_dtypes_without_x64_and_plans_do_not() -> None:
    # A plan is data: it plans the dtype asked for in either mode, silently
    # (its report says what JAX would run); an operation narrows as jnp does.
    assert _warnings(contract.plan, "ij,jk->ik", (2, 3), (3, 4), dtype="float64") == []
    assert contract.plan("ij,jk->ik", (2, 3), (3, 4), dtype="float64").dtypes == (
        "float64", "float64")
    assert (_warnings(contract.trace, np.eye(2, dtype=np.float32), dtype="float64") == []) == X64


# ---------------------------------------------------------------- precision=

PRECISIONS = [
    "default", "high", "highest", "fastest", "float32", "bfloat16", "tensorfloat32",
    "bfloat16_3x", "HIGHEST", *lax.Precision, ("high", "highest"), ("default", "float32"),
    (lax.Precision.HIGH, lax.Precision.DEFAULT), *lax.DotAlgorithmPreset,
    *(p.name for p in lax.DotAlgorithmPreset),
    lax.DotAlgorithm(jnp.float32, jnp.float32, jnp.float32),
]


def _dot_precisions(jaxpr: jax.core.ClosedJaxpr) -> set:
    return {str(e.params["precision"]) for e in jaxpr.eqns if e.primitive.name == "dot_general"}


@pytest.mark.parametrize("precision", PRECISIONS, ids=[repr(p) for p in PRECISIONS])
def test_every_precision_jnp_accepts(precision) -> None:  # noqa: ANN001
    a, b = _array((3, 4)), _array((4, 5), seed=1)
    spelled = precision.lower() if precision == "HIGHEST" else precision  # jnp: exact case
    try:
        want = jnp.einsum("ij,jk->ik", a, b, precision=spelled)
    except ValueError as e:  # this backend's XLA does not run that algorithm
        with pytest.raises(ContractError, match=r"precision=.*cannot run on"):
            contract.einsum("ij,jk->ik", a, b, precision=precision)
        assert str(e) in str(pytest.raises(ContractError, contract.einsum, "ij,jk->ik", a, b,
                                           precision=precision).value)
        return
    got = contract.einsum("ij,jk->ik", a, b, precision=precision)
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-2)  # bfloat16 passes are coarse
    # The precision reaches the dot_general exactly as jnp passes it.
    ours = jax.make_jaxpr(lambda x, y: contract.einsum("ij,jk->ik", x, y, precision=precision))
    theirs = jax.make_jaxpr(lambda x, y: jnp.einsum("ij,jk->ik", x, y, precision=spelled))
    assert _dot_precisions(ours(a, b)) == _dot_precisions(theirs(a, b))
    if isinstance(precision, tuple):  # a list is fine too (jnp needs a hashable tuple)
        np.testing.assert_array_equal(
            contract.einsum("ij,jk->ik", a, b, precision=list(precision)), got)
    p = contract.plan("ij,jk->ik", a, b, precision=precision)
    expr = contract.expression("ij,jk->ik", a.shape, b.shape, precision=precision)
    np.testing.assert_allclose(expr(a, b), got, rtol=1e-6)
    assert p.flops == 2 * 3 * 4 * 5


@pytest.mark.parametrize("bad", ["fast", "HIGHER", 3, ("high",), ("high", "high", "high"),
                                 (lax.Precision.HIGH, lax.DotAlgorithmPreset.DEFAULT), 1.5])
def test_unknown_precisions_are_contract_errors(bad) -> None:  # noqa: ANN001
    with pytest.raises(ContractError, match=r"unknown precision"):
        contract.einsum("ij,jk->ik", np.ones((2, 3)), np.ones((3, 4)), precision=bad)


# ---------------------------------------------------------------- out=

def test_out_none_is_accepted_and_anything_else_is_refused() -> None:
    a = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(contract.einsum("ij->i", a, out=None), jnp.einsum("ij->i", a))
    for out in (np.zeros(2, np.float32), jnp.zeros(2), [0.0, 0.0]):
        with pytest.raises(ContractError, match=r"takes only out=None: JAX arrays are immutable"):
            contract.einsum("ij->i", a, out=out)


# ---------------------------------------------------------------- optimize=

SPEC3 = "ab,bc,cd->ad"
SHAPES3 = ((2, 3), (3, 4), (4, 5))
# What numpy.einsum accepts, and what jnp.einsum accepts (names go to opt_einsum).
NUMPY_OPTIMIZE = [False, True, None, "greedy", "optimal", ["einsum_path", (0, 1), (0, 1)],
                  ("greedy", 100), ("optimal", 1e4)]
JNP_OPTIMIZE = [False, True, None, "auto", "greedy", "optimal", "eager", "opportunistic", "dp",
                "dynamic-programming", "branch-all", "branch-2", "branch-1", "random-greedy",
                "random-greedy-128", "auto-hq", "Greedy", "OPTIMAL", [(1, 2), (0, 1)]]


def _check_optimize(optimize) -> None:  # noqa: ANN001
    ops = [_array(s, seed=k) for k, s in enumerate(SHAPES3)]
    want = np.einsum(SPEC3, *[o.astype(np.float64) for o in ops])
    np.testing.assert_allclose(contract.einsum(SPEC3, *ops, optimize=optimize), want, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(lambda *x: contract.einsum(SPEC3, *x, optimize=optimize))(
        *ops), want, rtol=1e-5)
    assert contract.plan(SPEC3, *SHAPES3, optimize=optimize).flops > 0


@pytest.mark.parametrize("optimize", NUMPY_OPTIMIZE, ids=repr)
def test_every_optimize_numpy_accepts(optimize) -> None:  # noqa: ANN001
    ops = [_array(s, seed=k) for k, s in enumerate(SHAPES3)]
    np.einsum(SPEC3, *ops, optimize=optimize)  # numpy takes it
    _check_optimize(optimize)


@pytest.mark.parametrize("optimize", JNP_OPTIMIZE, ids=repr)
def test_every_optimize_jnp_accepts(optimize) -> None:  # noqa: ANN001
    ops = [_array(s, seed=k) for k, s in enumerate(SHAPES3)]
    jnp.einsum(SPEC3, *ops, optimize=optimize)  # jnp takes it
    _check_optimize(optimize)


def test_numpy_memory_limited_optimize_caps_intermediates() -> None:
    # ("greedy", cap): no intermediate over cap elements where a path allows it.
    p = contract.plan("ab,bc,cd->ad", (2, 50), (50, 50), (50, 2), optimize=("optimal", 200))
    assert p.largest_intermediate <= 200


class _Recording(opt_einsum.paths.PathOptimizer):
    """A user's path optimizer: contracts the last two operands first."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, inputs, output, size_dict, memory_limit=None):  # noqa: ANN001, ANN204
        self.calls.append((inputs, output, size_dict, memory_limit))
        n = len(inputs)
        return [(n - 2, n - 1)] + [(0, n - 1 - k) for k in range(1, n - 1)]


def test_a_path_optimizer_instance_is_called_and_its_path_used() -> None:
    opt = _Recording()
    p = contract.plan(SPEC3, *SHAPES3, optimize=opt)
    assert p.path == ((1, 2), (0, 1)) and p.optimize.split(".")[-1] == "_Recording"
    (inputs, output, size_dict, limit), = opt.calls
    assert len(inputs) == 3 and all(isinstance(t, frozenset) for t in inputs)
    assert len(output) == 2 and sorted(size_dict.values()) == [2, 3, 4, 5] and limit is None
    assert contract.plan(SPEC3, *SHAPES3, optimize=opt).path == p.path and len(opt.calls) == 1
    _check_optimize(opt)


@pytest.mark.parametrize("make", [
    lambda: opt_einsum.RandomGreedy(max_repeats=4),
    lambda: opt_einsum.paths.DynamicProgramming(),
    lambda: cotengra.HyperOptimizer(max_repeats=4, methods=["greedy"], parallel=False,
                                    progbar=False),
    lambda: cotengra.RandomGreedyOptimizer(max_repeats=4),
    lambda: cotengra.ReusableHyperOptimizer(max_repeats=4, methods=["greedy"], parallel=False,
                                            progbar=False),
], ids=["RandomGreedy", "DynamicProgramming", "HyperOptimizer", "ctg.RandomGreedyOptimizer",
        "ReusableHyperOptimizer"])
def test_opt_einsum_and_cotengra_optimizers(make) -> None:  # noqa: ANN001
    opt = make()
    p = contract.plan(SPEC3, *SHAPES3, optimize=opt)
    assert p.flops == contract.plan(SPEC3, *SHAPES3, optimize="optimal").flops
    _check_optimize(opt)


def test_a_broken_path_optimizer_is_a_contract_error(tmp_path) -> None:  # noqa: ANN001
    class Bad(opt_einsum.paths.PathOptimizer):
        def __call__(self, inputs, output, size_dict, memory_limit=None):  # noqa: ANN001, ANN204
            return [(0, 7)]

    class Raises(opt_einsum.paths.PathOptimizer):
        def __call__(self, inputs, output, size_dict, memory_limit=None):  # noqa: ANN001, ANN204
            raise RuntimeError("no path today")

    with pytest.raises(ContractError, match=r"optimize=(\w+\.)?Bad returned an invalid path"):
        contract.plan(SPEC3, *SHAPES3, optimize=Bad())
    with pytest.raises(ContractError, match=r"optimize=(\w+\.)?Raises failed: RuntimeError: no path"):
        contract.plan(SPEC3, *SHAPES3, optimize=Raises())
    # An optimizer object has no identity across processes: never on disk.
    contract.set_cache_dir(tmp_path)
    try:
        contract.plan(SPEC3, *SHAPES3, optimize=_Recording())
        assert list(tmp_path.glob("*.json")) == []
    finally:
        contract.set_cache_dir(None)


@pytest.mark.parametrize("bad", ["fastest-please", 3, 1.5, ("greedy", -1), ("greedy", "x"),
                                 object()], ids=repr)
def test_unknown_optimize_options_are_contract_errors(bad) -> None:  # noqa: ANN001
    with pytest.raises(ContractError):
        contract.einsum(SPEC3, *[np.ones(s) for s in SHAPES3], optimize=bad)
