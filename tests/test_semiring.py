"""einsum/plan/expression with ``semiring=``: against brute force in float64.

The reference (:func:`brute`) broadcasts every operand over all the spec's
labels, combines them with ⊗ and reduces the labels the output lacks with ⊕,
in NumPy float64 (``scipy.special.logsumexp`` for log-add-exp): no planning,
no pairwise steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import logsumexp

import contract
from contract.semiring import Semiring

RINGS = ["log", "max-plus", "min-plus", "max-product"]


def brute(spec: str, ops: list[np.ndarray], ring: str) -> np.ndarray:
    """The semiring einsum by full broadcast (letters only, explicit output)."""
    ins, out = spec.split("->")
    terms = ins.split(",")
    letters = sorted(set("".join(terms)))
    size = {l: x.shape[t.index(l)] for t, x in zip(terms, ops) for l in t}
    shape = [size[l] for l in letters]
    total = None
    for t, x in zip(terms, ops):
        x = np.asarray(x, np.float64)
        # A repeated label: its diagonal.
        for l in set(t):
            while t.count(l) > 1:
                a, b = t.index(l), t.index(l, t.index(l) + 1)
                x = np.diagonal(x, axis1=a, axis2=b)
                t = t[:a] + t[a + 1:b] + t[b + 1:] + l  # the diagonal comes last
        order = [t.index(l) for l in letters if l in t]
        x = np.transpose(x, order).reshape([size[l] if l in t else 1 for l in letters])
        if total is None:
            total = np.broadcast_to(x, shape)
        else:
            total = total * x if ring == "max-product" else total + x
    gone = tuple(k for k, l in enumerate(letters) if l not in out)
    if ring == "log":
        red = logsumexp(total, axis=gone) if gone else total
    elif ring in ("max-plus", "max-product"):
        red = np.max(total, axis=gone, initial=-np.inf if ring == "max-plus" else 0.0) if gone else total
    else:
        red = np.min(total, axis=gone, initial=np.inf) if gone else total
    kept = [l for l in letters if l in out]
    return np.transpose(red, [kept.index(l) for l in out])


def operands(shapes, ring, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(s).astype(np.float32) * 3 for s in shapes]
    return [np.abs(x) for x in xs] if ring == "max-product" else xs


CASES = [
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),
    ("abc,cd,bd->a", [(2, 3, 4), (4, 5), (3, 5)]),
    ("ii,ij->j", [(3, 3), (3, 4)]),  # a diagonal
    ("ijx,jk->ki", [(3, 4, 2), (4, 5)]),  # a lone label reduced first
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),  # batch
    ("ij,kl->ijkl", [(2, 3), (2, 2)]),  # outer product: ⊗ only
]


@pytest.mark.parametrize("ring", RINGS)
@pytest.mark.parametrize("spec,shapes", CASES)
def test_against_brute_force(ring, spec, shapes):
    ops = operands(shapes, ring)
    want = brute(spec, ops, ring)
    eager = contract.einsum(spec, *ops, semiring=ring)
    jitted = jax.jit(lambda *xs: contract.einsum(spec, *xs, semiring=ring))(*ops)
    for got in (eager, jitted):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("ring", RINGS)
def test_grammar_forms(ring):
    """Implicit output, ``...``, size-1 broadcasting, sublists and named axes
    give what the explicit letter form gives."""
    ops = operands([(2, 3, 4), (4, 5)], ring, seed=1)
    want = brute("abc,cd->abd", ops, ring)
    forms = [
        contract.einsum("abc,cd", *ops, semiring=ring),
        contract.einsum("...c,cd->...d", *ops, semiring=ring),
        contract.einsum(ops[0], [0, 1, 2], ops[1], [2, 3], [0, 1, 3], semiring=ring),
        contract.einsum("a b chan, chan d -> a b d", *ops, semiring=ring),
    ]
    for got in forms:
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)
    x, y = operands([(1, 3), (4, 3)], ring, seed=2)  # i: size 1 against 4
    np.testing.assert_allclose(np.asarray(contract.einsum("ij,ij->i", x, y, semiring=ring)),
                               brute("ij,ij->i", [np.broadcast_to(x, (4, 3)), y], ring),
                               rtol=1e-5, atol=1e-4)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(RINGS), st.integers(2, 5), st.integers(0, 10**6))
def test_random_chains(ring, n, seed):
    rng = np.random.default_rng(seed)
    dims = rng.integers(1, 5, n + 1)
    letters = "abcdefgh"
    spec = ",".join(letters[k] + letters[k + 1] for k in range(n)) + "->" + letters[0] + letters[n]
    ops = operands([(int(dims[k]), int(dims[k + 1])) for k in range(n)], ring, seed)
    np.testing.assert_allclose(np.asarray(contract.einsum(spec, *ops, semiring=ring)),
                               brute(spec, ops, ring), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("ring,zero", [("log", -np.inf), ("max-plus", -np.inf),
                                       ("min-plus", np.inf), ("max-product", 0.0)])
def test_empty_contraction_gives_the_zero(ring, zero):
    got = contract.einsum("ij,jk->ik", np.ones((2, 0), np.float32), np.ones((0, 3), np.float32),
                          semiring=ring)
    assert got.shape == (2, 3) and np.all(np.asarray(got) == zero)


@pytest.mark.parametrize("ring", ["log", "max-plus"])
def test_sliced_plans_combine_slices_with_the_semirings_sum(ring):
    ops = operands([(16, 16)] * 3, ring, seed=3)
    p = contract.plan("ab,bc,cd->ad", *ops, memory_limit=1_600, semiring=ring)
    assert p.n_slices > 1 and p.semiring == ring
    got = contract.einsum("ab,bc,cd->ad", *ops, memory_limit=1_600, semiring=ring)
    np.testing.assert_allclose(np.asarray(got), brute("ab,bc,cd->ad", ops, ring), rtol=1e-5,
                               atol=1e-4)


def test_integers_are_exact_for_tropical_semirings():
    rng = np.random.default_rng(4)
    a, b = rng.integers(-100, 100, (5, 6)).astype(np.int32), rng.integers(-100, 100, (6, 7)).astype(np.int32)
    got = contract.einsum("ij,jk->ik", a, b, semiring="max-plus")
    assert got.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(got), np.max(a[:, :, None] + b[None], axis=1))


def test_the_semiring_is_part_of_the_plan_json_and_caches():
    p = contract.plan("ij,jk->ik", (2, 3), (3, 4), semiring="log")
    q = contract.plan("ij,jk->ik", (2, 3), (3, 4))
    assert (p.semiring, q.semiring) == ("log", "sum-product") and p != q
    assert contract.Plan.from_json(p.to_json()) == p
    assert "semiring    log" in str(p) and "semiring" not in str(q)
    ones = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    assert float(contract.einsum("ij,jk->ik", *ones)[0, 0]) == 3.0
    assert float(contract.einsum("ij,jk->ik", *ones, semiring="log")[0, 0]) == pytest.approx(2 + np.log(3))
    with pytest.raises(contract.ContractError, match="semiring='log'"):
        contract.einsum("ij,jk->ik", *ones, optimize=p, semiring="max-plus")


def test_expression_and_vmap():
    ops = operands([(4, 5), (5, 6)], "log", seed=5)
    e = contract.expression("ij,jk->ik", (4, 5), (5, 6), semiring="log")
    np.testing.assert_allclose(np.asarray(e(*ops)), brute("ij,jk->ik", ops, "log"), rtol=1e-5, atol=1e-4)
    batch = np.stack([ops[0], ops[0] + 1.0])
    got = jax.vmap(lambda x: contract.einsum("ij,jk->ik", x, ops[1], semiring="max-plus"))(batch)
    np.testing.assert_allclose(np.asarray(got[1]), brute("ij,jk->ik", [batch[1], ops[1]], "max-plus"),
                               rtol=1e-6)


def test_log_gradient_is_the_softmax_weight():
    a, b = operands([(3, 4), (4, 2)], "log", seed=6)
    g = jax.grad(lambda x: contract.einsum("ij,jk->", x, b, semiring="log"))(a)
    terms = a.astype(np.float64)[:, :, None] + b[None]
    want = np.exp(terms - logsumexp(terms)).sum(axis=2)
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-4, atol=1e-6)


def test_a_user_semiring_runs_by_its_own_operations():
    minprod = Semiring("test-min-product", add=lambda x, axes: jnp.min(x, axis=axes),
                       mul=jnp.multiply, zero=float("inf"), one=1.0)
    a, b = operands([(3, 4), (4, 2)], "max-product", seed=7)
    got = contract.einsum("ij,jk->ik", a, b, semiring=minprod)
    np.testing.assert_allclose(np.asarray(got), np.min(a[:, :, None] * b[None], axis=1), rtol=1e-6)
    assert contract.plan("ij,jk->ik", a, b, semiring=minprod).semiring == "test-min-product"


@pytest.mark.parametrize("kwargs,match", [
    (dict(semiring="tropicalish"), "unknown semiring 'tropicalish'; valid: 'sum-product', 'log'"),
    (dict(semiring="log", preferred_element_type="float32"), "preferred_element_type"),
    (dict(semiring="log", strip_exponent=True), "strip_exponent is for sum-product"),
    (dict(semiring="max-product"), "operand 0 has negative entries"),
])
def test_bad_input(kwargs, match):
    a = -np.ones((2, 3), np.float32)
    with pytest.raises(contract.ContractError, match=match):
        contract.einsum("ij,jk->ik", a, np.ones((3, 2), np.float32), **kwargs)


@pytest.mark.parametrize("dtype,ring", [("complex64", "log"), ("int32", "log"), ("bool", "max-plus")])
def test_dtypes_a_semiring_does_not_take(dtype, ring):
    x = np.ones((2, 2), dtype)
    with pytest.raises(contract.ContractError, match=f"operand 0: semiring '{ring}' does not take"):
        contract.einsum("ij,jk->ik", x, x, semiring=ring)


def test_many_operands_compile_rather_than_run_on_the_host():
    ops = operands([(2, 2)] * 40, "log", seed=8)
    letters = [chr(0x100 + k) for k in range(41)]
    spec = ",".join(letters[k] + letters[k + 1] for k in range(40)) + "->" + letters[0] + letters[40]
    got = contract.einsum(spec, *ops, semiring="log")
    want = ops[0].astype(np.float64)
    for x in ops[1:]:
        want = logsumexp(want[:, :, None] + x[None], axis=1)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
