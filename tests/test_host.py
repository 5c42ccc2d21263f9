"""First eager calls of large plans run on the host (backend/host.py), later ones compiled.

References are ``numpy.einsum`` in float64/complex128; whether a call ran on
the host is read from a counting wrapper around ``host.run``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import opt_einsum
import pytest

import contract
from contract.backend import host
from contract.backend.policy import HOST_MIN_STEPS, first_call

S = opt_einsum.get_symbol


def chain(n: int, dtype: str = "float32", seed: int = 0):
    """A chain of ``n`` matrices with a diagonal in the first operand, a lone
    (summed) label in the sixth, a size-1 label broadcast against size 3 in
    the eighth, and the output in reverse order."""
    rng = np.random.default_rng(seed)
    terms = [S(k) + S(k + 1) for k in range(n)]
    terms[0] = S(0) + S(0) + S(1)
    terms[5] += "Z"
    spec = ",".join(terms) + "->" + S(n) + S(0)
    shapes = [(3,) * len(t) for t in terms]
    shapes[7] = (1, 3)
    ops = [rng.standard_normal(s) for s in shapes]
    if np.dtype(dtype).kind == "c":
        ops = [x + 1j * rng.standard_normal(x.shape) for x in ops]
    return spec, [x.astype(dtype) for x in ops]


@pytest.fixture
def runs(monkeypatch):
    """How many times host.run ran."""
    count = []
    real = host.run

    def counted(*args):
        count.append(1)
        return real(*args)

    monkeypatch.setattr(host, "run", counted)
    contract.clear_caches(disk=False)
    return count


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_first_call_on_host_then_compiled(runs, dtype):
    spec, ops = chain(40, dtype)
    want = np.einsum(spec, *(x.astype(np.complex128) for x in ops), optimize=True)
    first = contract.einsum(spec, *ops)
    assert len(runs) == 1 and isinstance(first, jax.Array) and first.dtype == dtype
    second = contract.einsum(spec, *ops)
    assert len(runs) == 1  # compiled from the second call
    tol = 1e-5 * np.abs(want).max()
    for got in (first, second):
        np.testing.assert_allclose(np.asarray(got), want if dtype[0] == "c" else want.real,
                                   atol=tol)


def test_host_run_matches_numpy_in_float64():
    """float64 under x64; without it JAX plans float64 operands as float32."""
    spec, ops = chain(36, "float64", seed=1)
    p = contract.plan(spec, *ops)
    x64 = jax.config.jax_enable_x64
    got = host.run(p, ops)
    assert got.dtype == (np.float64 if x64 else np.float32) == np.dtype(p.result_dtype)
    np.testing.assert_allclose(got, np.einsum(spec, *ops, optimize=True),
                               rtol=1e-12 if x64 else 1e-4)


def test_jax_operands_and_expressions(runs):
    spec, ops = chain(40, seed=2)
    want = np.einsum(spec, *(x.astype(np.float64) for x in ops), optimize=True)
    e = contract.expression(spec, *[x.shape for x in ops], dtype="float32")
    arrays = [jnp.asarray(x) for x in ops]
    for _ in range(2):
        np.testing.assert_allclose(np.asarray(e(*arrays)), want, rtol=1e-4, atol=1e-4)
    assert len(runs) == 1


@pytest.mark.parametrize("case", ["jit", "small", "int", "precision"])
def test_compiled_where_the_host_does_not_apply(runs, case):
    spec, ops = chain(40, seed=3)
    want = np.einsum(spec, *(x.astype(np.float64) for x in ops), optimize=True)
    if case == "jit":
        got = jax.jit(lambda *xs: contract.einsum(spec, *xs))(*ops)
    elif case == "small":  # too few steps for the compile to dominate
        spec, ops = chain(HOST_MIN_STEPS - 4, seed=3)
        want = np.einsum(spec, *(x.astype(np.float64) for x in ops), optimize=True)
        got = contract.einsum(spec, *ops)
    elif case == "int":  # not a BLAS dtype: accumulation rules of its own
        ops = [np.round(x).astype(np.int32) for x in ops]
        want = np.einsum(spec, *ops, optimize=True)
        got = contract.einsum(spec, *ops)
    else:  # NumPy cannot honour a precision below HIGHEST
        got = contract.einsum(spec, *ops, precision="default")
    assert not runs
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_report_says_how_a_first_call_runs():
    spec, ops = chain(40)
    p = contract.plan(spec, *ops)
    assert first_call(p, "cpu") is not None and first_call(p, "gpu") is None
    lines = [l for l in str(p).splitlines() if l.startswith("execution")]
    if jax.default_backend() == "cpu":
        assert lines == [f"execution     {first_call(p)}; later calls run compiled"]
    spec, ops = chain(8)
    small = contract.plan(spec, *ops)
    assert first_call(small, "cpu") is None
    assert not any(l.startswith("execution") for l in str(small).splitlines())
