"""Gradients of contractions against jnp.einsum's gradients."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract
from contract.testing import operands

GRAD_CASES = [
    ("ij,jk->ik", ((3, 4), (4, 5))),
    ("bhqd,bhkd->bhqk", ((2, 2, 3, 4), (2, 2, 5, 4))),
    ("ij,jk,kl->il", ((3, 4), (4, 5), (5, 2))),
    ("ii->i", ((4, 4),)),
    ("iji->ij", ((3, 2, 3),)),
    ("ii->", ((4, 4),)),
    ("iij,jk->ik", ((3, 3, 4), (4, 2))),
    ("...ij,...jk->...ik", ((1, 3, 4), (5, 4, 2))),
    ("ij,ik,il->jkl", ((2, 3), (2, 4), (2, 5))),
    ("ijk->", ((2, 3, 4),)),
    (",i->i", ((), (4,))),
]


def _grads(einsum: Any, spec: str, ops: list, cotangent: np.ndarray) -> tuple:
    def loss(*xs: Any) -> jax.Array:
        return jnp.sum(einsum(spec, *xs) * cotangent)

    return jax.jit(jax.grad(loss, argnums=tuple(range(len(ops)))))(*ops)


@pytest.mark.parametrize("spec, shapes", GRAD_CASES, ids=[s for s, _ in GRAD_CASES])
def test_grad_matches_jnp_einsum(spec: str, shapes: tuple) -> None:
    ops = [jnp.asarray(x) for x in operands(shapes, seed=5)]
    out_shape = np.einsum(spec, *[np.asarray(x) for x in ops]).shape
    cotangent = np.random.default_rng(6).standard_normal(out_shape).astype(np.float32)
    ours = _grads(contract.einsum, spec, ops, cotangent)
    theirs = _grads(lambda s, *x: jnp.einsum(s, *x, precision="highest"), spec, ops, cotangent)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        assert np.abs(np.asarray(a)).sum() > 0  # a zero gradient would hide a bug


def test_complex_vjp_matches_jnp_einsum() -> None:
    a, b = (jnp.asarray(x) for x in operands([(3, 4), (4, 2)], "complex64", seed=7))
    ct = jnp.asarray(operands([(3, 2)], "complex64", seed=8)[0])
    _, ours = jax.vjp(lambda x, y: contract.einsum("ij,jk->ik", x, y), a, b)
    _, theirs = jax.vjp(lambda x, y: jnp.einsum("ij,jk->ik", x, y, precision="highest"), a, b)
    for g, h in zip(ours(ct), theirs(ct)):
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-5)


def test_grad_through_expression_and_bfloat16() -> None:
    expr = contract.expression("ij,jk->ik", (3, 4), (4, 2))
    a, b = (jnp.asarray(x) for x in operands([(3, 4), (4, 2)], seed=9))
    g = jax.grad(lambda x: expr(x, b).sum())(a)
    np.testing.assert_allclose(g, np.broadcast_to(np.asarray(b).sum(1), (3, 4)), rtol=1e-5)
    a16, b16 = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
    g16 = jax.grad(lambda x: contract.einsum("ij,jk->ik", x, b16).astype(jnp.float32).sum())(a16)
    assert g16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(g16, np.float32),
                               np.broadcast_to(np.asarray(b16, np.float32).sum(1), (3, 4)),
                               rtol=1e-2)
