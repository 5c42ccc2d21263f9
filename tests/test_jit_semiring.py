"""contract.jit rewrites max/min-of-sums broadcasts into planned tropical contractions.

The reference is the same function under plain ``jax.jit`` (its written form,
a broadcast-reduce), and NumPy for the values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract

RNG = np.random.default_rng(0)
A, B, C = (RNG.standard_normal(s).astype(np.float32) for s in [(8, 16), (16, 32), (32, 4)])


def maxplus_chain(a, b, c):
    return jnp.max(jnp.max(a[:, :, None] + b[None], axis=1)[:, :, None] + c[None], axis=1)


def minplus(a, b):
    return jnp.min(a[:, :, None] + b[None], axis=1)


def max_then_min(a, b, c):
    return jnp.min(jnp.max(a[:, :, None] + b[None], axis=1)[:, :, None] + c[None], axis=1)


def test_a_max_plus_chain_becomes_one_planned_contraction():
    g = contract.jit(maxplus_chain)
    want = np.max(np.max(A[:, :, None] + B[None], 1)[:, :, None] + C[None], 1)
    np.testing.assert_allclose(np.asarray(g(A, B, C)), want, rtol=1e-6)
    text = str(g.explain(A, B, C))
    assert "1 contraction cluster, 1 rewritten" in text
    assert "einsum     'ab,bc,cd->ad'" in text and "semiring    max-plus" in text


@pytest.mark.parametrize("f,args,semiring", [(minplus, (A, B), "min-plus"),
                                             (max_then_min, (A, B, C), None)])
def test_min_plus_and_mixed_reductions(f, args, semiring):
    g = contract.jit(f)
    np.testing.assert_allclose(np.asarray(g(*args)), np.asarray(jax.jit(f)(*args)), rtol=1e-6)
    text = str(g.explain(*args))
    if semiring:
        assert f"semiring    {semiring}" in text
    else:  # a max then a min: the max-plus part is planned, the min runs as written
        assert "semiring    max-plus" in text


def test_gradients_are_jnp_maxs():
    g = jax.grad(lambda a: contract.jit(maxplus_chain)(a, B, C).sum())(A)
    want = jax.grad(lambda a: maxplus_chain(a, B, C).sum())(A)
    np.testing.assert_array_equal(np.asarray(g), np.asarray(want))


@pytest.mark.parametrize("f", [
    lambda a, b: jnp.max(a[:, :, None] + b[None] + 1.0, axis=1),  # a constant added
    lambda a, b: jnp.sum((a[:, :, None] + b[None]) * 2.0, axis=1),  # a sum of sums
    lambda a, b: jnp.max(a[:, :, None] * b[None], axis=1),  # max of products: no semiring here
    lambda a, b: jnp.sum(jnp.max(a, axis=1)[:, None] * b[:1].T[None, :, 0], axis=0),
])
def test_other_forms_run_as_written(f):
    np.testing.assert_allclose(np.asarray(contract.jit(f)(A, B)), np.asarray(jax.jit(f)(A, B)),
                               rtol=1e-5, atol=1e-5)


def test_integers_are_left_alone():
    a, b = A.astype(np.int32), B.astype(np.int32)
    np.testing.assert_array_equal(np.asarray(contract.jit(minplus)(a, b)),
                                  np.min(a[:, :, None] + b[None], 1))


def lse_chain(a, b, c):
    inner = jax.nn.logsumexp(a[:, :, None] + b[None], axis=1)
    return jax.nn.logsumexp(inner[:, :, None] + c[None], axis=1)


def test_a_logsumexp_chain_becomes_one_log_contraction():
    from scipy.special import logsumexp

    a, b, c = (20 * x for x in (A, B, C))
    g = contract.jit(lse_chain)
    want = logsumexp(logsumexp(a.astype(np.float64)[:, :, None] + b[None], 1)[:, :, None]
                     + c[None], 1)
    np.testing.assert_allclose(np.asarray(g(a, b, c)), want, rtol=1e-5, atol=1e-4)
    text = str(g.explain(a, b, c))
    assert "1 rewritten" in text and "logsumexp x2" in text and "semiring    log" in text
    grad = jax.grad(lambda x: g(x, b, c).sum())(a)
    np.testing.assert_allclose(np.asarray(grad),
                               np.asarray(jax.grad(lambda x: lse_chain(x, b, c).sum())(a)),
                               atol=1e-5)


@pytest.mark.parametrize("f", [
    lambda a, b: jax.nn.logsumexp(a[:, :, None] + b[None], axis=1, keepdims=True),
    lambda a, b: jax.nn.logsumexp(a[:, :, None] + b[None], axis=1, b=2.0),
    lambda a, b: (jax.nn.logsumexp(a[:, :, None] + b[None], axis=1), jnp.max(a)),
    lambda a, b: jax.nn.logsumexp(a, axis=1)[:, None] + b[:1],
])
def test_other_logsumexp_forms_run_as_written(f):
    got, want = contract.jit(f)(A, B), jax.jit(f)(A, B)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-5)
