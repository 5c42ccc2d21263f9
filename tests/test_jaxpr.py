"""What the lowered programs look like: one dot_general per planned step, no
stray transposes, diagonals without masks, no retracing, the spec as a name."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract
from contract import api
from contract.testing import CASES, operands
from tests._helpers import mixed_dtype_pairs


def _eqns(jaxpr: Any) -> Iterator[Any]:
    """Every equation, descending into sub-jaxprs (jit, named calls, custom rules)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _eqns(inner)


def primitives(spec: str, *ops: Any) -> Counter:
    """Primitive counts of the traced ``contract.einsum(spec, *ops)``."""
    closed = jax.make_jaxpr(lambda *xs: contract.einsum(spec, *xs))(*ops)
    return Counter(e.primitive.name for e in _eqns(closed.jaxpr))


@pytest.mark.parametrize("spec, shapes", CASES, ids=[f"{s}|{sh}" for s, sh in CASES])
def test_one_dot_general_per_step(spec: str, shapes: tuple) -> None:
    ops = operands(shapes)
    plan = contract.plan(spec, *ops)
    assert primitives(spec, *ops)["dot_general"] == len(plan.steps)
    assert len(plan.steps) == max(0, len(shapes) - 1)


@pytest.mark.parametrize("spec, shapes", [
    ("ij,jk->ik", ((3, 4), (4, 5))),
    ("bij,bjk->bik", ((2, 3, 4), (2, 4, 5))),
    ("bhqd,bhkd->bhqk", ((2, 3, 4, 5), (2, 3, 6, 5))),
    ("ij,kj->ik", ((3, 4), (5, 4))),
    ("i,i->", ((6,), (6,))),
    ("ij,j->i", ((3, 4), (4,))),
])
def test_no_transpose_for_gemm_shapes(spec: str, shapes: tuple) -> None:
    prims = primitives(spec, *operands(shapes))
    assert prims["dot_general"] == 1
    assert prims["transpose"] == 0, prims


# Primitives a mask-based diagonal would need (iota/eq/select or a multiply by
# an identity matrix); a strided slice needs none of them.
MASK = {"iota", "eq", "select_n", "mul", "broadcast_in_dim", "gather", "scatter-add"}


@pytest.mark.parametrize("spec, shape", [
    ("ii->i", (5, 5)), ("ii", (5, 5)), ("ii->", (5, 5)), ("iji->ij", (4, 3, 4)),
    ("iii->i", (3, 3, 3)), ("aabb->ab", (2, 2, 3, 3)), ("...ii->...i", (2, 4, 4)),
])
def test_repeated_labels_use_no_full_size_mask(spec: str, shape: tuple) -> None:
    prims = primitives(spec, *operands([shape]))
    assert not MASK & set(prims), prims
    assert prims["slice"] >= 1  # the diagonal is a strided slice
    assert "dot_general" not in prims


def test_diagonal_inside_a_contraction_has_no_mask() -> None:
    prims = primitives("iij,jk->ik", *operands([(3, 3, 4), (4, 2)]))
    assert not MASK & set(prims), prims
    assert prims["dot_general"] == 1


@pytest.mark.parametrize("spec, shape, allowed", [
    ("ij->ji", (3, 4), {"transpose"}),
    ("ijk->kij", (2, 3, 4), {"transpose"}),
    ("ijk->j", (2, 3, 4), {"reduce_sum"}),
    ("ijk->", (2, 3, 4), {"reduce_sum"}),
    ("ijk->kj", (2, 3, 4), {"reduce_sum", "transpose"}),
    ("i->i", (5,), set()),
])
def test_single_operand_is_one_reduce_or_transpose(spec: str, shape: tuple, allowed: set) -> None:
    prims = primitives(spec, *operands([shape]))
    assert set(prims) == allowed, prims
    assert all(prims[p] == 1 for p in allowed)


def test_float32_uses_highest_precision_unless_asked() -> None:
    a, b = operands([(3, 4), (4, 5)])

    def precisions(**kw: Any) -> set:
        closed = jax.make_jaxpr(lambda x, y: contract.einsum("ij,jk->ik", x, y, **kw))(a, b)
        return {str(e.params["precision"]) for e in _eqns(closed.jaxpr)
                if e.primitive.name == "dot_general"}

    assert precisions() == {str((jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST))}
    assert "HIGHEST" not in " ".join(precisions(precision="default"))
    assert precisions(precision=jax.lax.Precision.HIGH) == {
        str((jax.lax.Precision.HIGH, jax.lax.Precision.HIGH))}


def test_preferred_element_type_reaches_dot_general() -> None:
    a, b = operands([(3, 4), (4, 5)], "bfloat16")
    closed = jax.make_jaxpr(
        lambda x, y: contract.einsum("ij,jk->ik", x, y, preferred_element_type=jnp.float32))(a, b)
    (dot,) = [e for e in _eqns(closed.jaxpr) if e.primitive.name == "dot_general"]
    assert dot.params["preferred_element_type"] == jnp.float32
    assert closed.out_avals[0].dtype == jnp.float32


def test_int8_accumulates_in_int32() -> None:
    a, b = operands([(3, 4), (4, 5)], "int8")
    closed = jax.make_jaxpr(lambda x, y: contract.einsum("ij,jk->ik", x, y))(a, b)
    (dot,) = [e for e in _eqns(closed.jaxpr) if e.primitive.name == "dot_general"]
    assert dot.params["preferred_element_type"] == jnp.int32
    assert closed.out_avals[0].dtype == jnp.int8


def test_no_retrace_on_second_eager_call(caplog: pytest.LogCaptureFixture) -> None:
    spec = "xq,qz->zx"  # a spec no other test uses, so the first call compiles
    a, b = (jnp.asarray(x) for x in operands([(3, 7), (7, 2)], seed=11))
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        contract.einsum(spec, a, b)
        first = len(caplog.records)
        caplog.clear()
        a2 = a + 1  # new values, same shapes (this add compiles on its own)
        caplog.clear()
        second = contract.einsum(spec, a2, b)
        third = contract.einsum(spec, np.asarray(a), np.asarray(b))
        traced = [r.getMessage() for r in caplog.records]
    assert first >= 1  # the check itself can see tracing and compiling
    assert traced == []  # neither call traced nor compiled anything
    np.testing.assert_allclose(second, (a2 @ b).T, rtol=1e-5)
    np.testing.assert_allclose(third, (a @ b).T, rtol=1e-5)


def test_program_carries_the_spec_name() -> None:
    spec = "bhqd,bhkd->bhqk"
    a, b = (jnp.asarray(x) for x in operands([(1, 2, 3, 4), (1, 2, 5, 4)]))
    # The eager entry is a jax.jit of the same traced program: its HLO carries the name.
    assert spec in jax.jit(lambda x, y: contract.einsum(spec, x, y)).lower(a, b).as_text(debug_info=True)
    traced = jax.make_jaxpr(lambda x, y: contract.einsum(spec, x, y))(a, b)
    (dot,) = [e for e in _eqns(traced.jaxpr) if e.primitive.name == "dot_general"]
    assert spec in str(dot.source_info.name_stack)


MIXED = mixed_dtype_pairs()


@pytest.mark.parametrize("left, right", MIXED)
@pytest.mark.parametrize("spec, shapes", [("a,a->a", ((6,), (6,))),
                                          ("ab,bc->ac", ((3, 4), (4, 5))),
                                          ("abc,acd->abd", ((2, 3, 4), (2, 4, 5)))])
def test_two_dtypes_reach_dot_general_unconverted(spec: str, shapes: tuple, left: str,
                                                   right: str) -> None:
    """As jnp.einsum hands them over: no converted copy of the narrower operand."""
    x, y = operands([shapes[0]], left)[0], operands([shapes[1]], right, seed=1)[0]
    closed = jax.make_jaxpr(lambda a, b: contract.einsum(spec, a, b))(x, y)
    eqns = list(_eqns(closed.jaxpr))
    names = [e.primitive.name for e in eqns]
    assert names.count("dot_general") == 1, names
    dot = eqns[names.index("dot_general")]
    assert "convert_element_type" not in names[: names.index("dot_general")], names
    assert {v.aval.dtype for v in dot.invars} == {jnp.dtype(x.dtype), jnp.dtype(y.dtype)}
    acc = contract.plan(spec, x, y).compute_dtype  # int16 results accumulate in int32
    assert dot.params["preferred_element_type"] == jnp.dtype(acc)
    assert closed.out_avals[0].dtype == jnp.einsum(spec, x, y).dtype


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("preferred", ["int32", "bool"])
def test_a_narrow_preferred_type_is_lax_own_dot_general(dtype: str, preferred: str) -> None:
    """One step with an integer result on float operands: lax.dot_general with
    that preferred_element_type on the operands as given, never cast first."""
    a, b = operands([(3, 4), (4, 5)], dtype)
    closed = jax.make_jaxpr(lambda x, y: contract.einsum("ij,jk->ik", x, y,
                                                         preferred_element_type=preferred))(a, b)
    names = [e.primitive.name for e in _eqns(closed.jaxpr)]
    assert [n for n in names if n not in ("jit", "pjit")] == ["dot_general"], names
    (dot,) = [e for e in _eqns(closed.jaxpr) if e.primitive.name == "dot_general"]
    assert [v.aval.dtype for v in dot.invars] == [jnp.dtype(dtype)] * 2
    assert dot.params["preferred_element_type"] == jnp.dtype(preferred)
