"""``strip_exponent=True``: networks whose value leaves the float range, as
``(mantissa, exponent)``, against exact integer arithmetic and an independent
NumPy float64 contraction that rescales in log space."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract
from contract.backend.program import program
from contract.planner import SlicedPlan, slice_plan

LN10 = math.log(10)


def sublists(arrays: Sequence[Any], terms: Sequence[Sequence[int]], output: Sequence[int]) -> list:
    """NumPy's interleaved sublist form of a network."""
    args: list = []
    for x, t in zip(arrays, terms):
        args += [x, list(t)]
    return args + [list(output)]


def log_einsum(arrays: Sequence[np.ndarray], terms: Sequence[Sequence[int]],
               output: Sequence[int]) -> tuple[np.ndarray, float]:
    """The reference: fold the operands into one accumulator in list order with
    ``np.einsum`` in float64/complex128, dividing by its largest magnitude
    after each step: ``(array, log10 scale)``, the value ``array * 10**scale``."""
    def local(*groups: Sequence[int]) -> list[list[int]]:  # np.einsum takes 52 labels
        index = {l: n for n, l in enumerate(dict.fromkeys(l for g in groups for l in g))}
        return [[index[l] for l in g] for g in groups]

    wide = [np.asarray(x, np.complex128 if np.iscomplexobj(x) else np.float64) for x in arrays]
    acc, labels, scale = wide[0], list(terms[0]), 0.0
    for n in range(1, len(wide)):
        later = set(output).union(*map(set, terms[n + 1:]))
        keep = [l for l in dict.fromkeys(labels + list(terms[n])) if l in later]
        a, b, c = local(labels, terms[n], keep)
        acc, labels = np.einsum(acc, a, wide[n], b, c), keep
        s = np.abs(acc).max()
        acc, scale = acc / s, scale + math.log10(s)
    a, c = local(labels, output)
    return np.einsum(acc, a, c), scale


def assert_close(got: tuple[Any, Any], want: tuple[np.ndarray, float], rtol: float) -> None:
    """``m * 10**e`` equals ``w * 10**f`` elementwise to ``rtol`` of the largest entry."""
    m, e = np.asarray(got[0]), float(got[1])
    w, f = want
    assert np.isfinite(m).all() and math.isfinite(e)
    np.testing.assert_allclose(m * 10 ** (e - f), w, rtol=0, atol=rtol * np.abs(w).max())


def ring(n: int, d: int, seed: int, dtype: Any = np.float32) -> tuple[list, list, list]:
    """``tr(A_0 ... A_{n-1})``: ``n`` ``d x d`` matrices with integer entries 1..19
    (complex: integer real and imaginary parts in -9..9)."""
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.complexfloating):
        mats = [rng.integers(-9, 10, (d, d)) + 1j * rng.integers(-9, 10, (d, d))
                for _ in range(n)]
    else:
        mats = [rng.integers(1, 20, (d, d)) for _ in range(n)]
    return [m.astype(dtype) for m in mats], [[k, (k + 1) % n] for k in range(n)], []


def exact_trace(mats: Sequence[np.ndarray]) -> tuple[int, int]:
    """The ring's value in exact integer arithmetic: its real and imaginary
    parts as Python ints (Gaussian integers multiplied part by part)."""
    d = len(mats[0])
    re, im = np.eye(d, dtype=object), np.zeros((d, d), dtype=object)
    for m in mats:
        a, b = (np.vectorize(int, otypes=[object])(part) for part in (m.real, m.imag))
        re, im = re.dot(a) - im.dot(b), re.dot(b) + im.dot(a)
    return sum(re[i, i] for i in range(d)), sum(im[i, i] for i in range(d))


def lattice(rows: int, cols: int, bond: int, seed: int) -> tuple[list, list, list]:
    """A PEPS-like norm network: one tensor per site of a ``rows x cols`` grid,
    a leg of size ``bond`` per neighbour, entries uniform in [5, 15)."""
    rng = np.random.default_rng(seed)
    labels: dict[tuple, int] = {}

    def bond_label(a: tuple, b: tuple) -> int:
        return labels.setdefault((min(a, b), max(a, b)), len(labels))

    arrays, terms = [], []
    for r in range(rows):
        for c in range(cols):
            legs = [bond_label((r, c), (r + dr, c + dc))
                    for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
                    if 0 <= r + dr < rows and 0 <= c + dc < cols]
            terms.append(legs)
            arrays.append(rng.uniform(5, 15, (bond,) * len(legs)).astype(np.float32))
    return arrays, terms, []


def test_ring_of_60_matches_exact_integers() -> None:
    mats, terms, out = ring(60, 4, seed=0)
    args = sublists(mats, terms, out)
    assert np.isinf(contract.einsum(*args, optimize="greedy"))  # float32 overflows
    m, e = contract.einsum(*args, optimize="greedy", strip_exponent=True)
    assert m.dtype == jnp.float32 and e.dtype == jnp.float32 and e.shape == ()
    exact, _ = exact_trace(mats)
    assert m.item() == 1.0  # a scalar's mantissa is its sign
    assert abs(e.item() - math.log10(exact)) * LN10 < 1e-5


def test_peps_norm_matches_log_space_reference() -> None:
    arrays, terms, out = lattice(6, 6, 4, seed=1)
    args = sublists(arrays, terms, out)
    assert np.isinf(contract.einsum(*args, optimize="greedy"))
    got = contract.einsum(*args, optimize="greedy", strip_exponent=True)
    want = log_einsum(arrays, terms, out)
    assert want[1] > 60  # far beyond float32
    assert_close(got, want, 1e-5)


def test_open_output_and_underflow() -> None:
    # An open bond (a matrix result) and entries so small the plain result underflows.
    mats, _, _ = ring(40, 3, seed=2)
    tiny = [m * np.float32(1e-3) for m in mats]
    terms, out = [[k, k + 1] for k in range(40)], [0, 40]  # a chain
    args = sublists(tiny, terms, out)
    assert not np.asarray(contract.einsum(*args, optimize="greedy")).any()  # all zero
    got = contract.einsum(*args, optimize="greedy", strip_exponent=True)
    assert np.abs(np.asarray(got[0])).max() == 1.0
    assert_close(got, log_einsum(tiny, terms, out), 1e-5)


def test_complex_ring_matches_exact_integers() -> None:
    mats, terms, out = ring(50, 3, seed=3, dtype=np.complex64)
    m, e = contract.einsum(*sublists(mats, terms, out), optimize="greedy", strip_exponent=True)
    assert m.dtype == jnp.complex64 and e.dtype == jnp.float32
    re, im = exact_trace(mats)
    # The exact value over a power of ten (int / int rounds correctly).
    shift = len(str(max(abs(re), abs(im)))) - 1
    ref = complex(re / 10**shift, im / 10**shift)
    assert abs(abs(m.item()) - 1) < 1e-6
    assert abs(m.item() * 10 ** (e.item() - shift) - ref) / abs(ref) < 1e-5


def test_sliced_equals_unsliced() -> None:
    arrays, terms, out = lattice(5, 5, 4, seed=4)
    args = sublists(arrays, terms, out)
    assert np.isinf(contract.einsum(*args, optimize="greedy"))
    whole = contract.plan(*args, optimize="greedy")
    limit = whole.peak_bytes // 8
    sliced = contract.plan(*args, optimize="greedy", memory_limit=limit)
    assert isinstance(sliced, SlicedPlan) and sliced.n_slices > 1
    unsliced = contract.einsum(*args, optimize="greedy", strip_exponent=True)
    got = contract.einsum(*args, optimize="greedy", memory_limit=limit, strip_exponent=True)
    assert_close(got, (np.asarray(unsliced[0]), float(unsliced[1])), 1e-5)
    assert_close(got, log_einsum(arrays, terms, out), 1e-5)


def test_sliced_output_labels() -> None:
    # Output labels sliced: each slice fills its block, at its own exponent.
    mats, _, _ = ring(30, 8, seed=5)
    terms, out = [[k, k + 1] for k in range(30)], [0, 30]  # a chain
    args = sublists(mats, terms, out)
    base = contract.plan(*args, optimize="greedy")
    assert base.output == ("A", "e")
    sp = slice_plan(base, {"A": 4, "e": 2, "P": 2})  # two output labels, one contracted
    got = jax.jit(program(sp, strip_exponent=True))(*mats)
    assert_close(got, log_einsum(mats, terms, out), 1e-5)


def test_zero_slice_does_not_set_the_scale() -> None:
    # Slices of j: the last one is exactly zero but made of huge entries, the
    # others are ~1e-60. Were the zero slice's exponent to win, the others
    # would be scaled by 2**-300 and flushed to zero.
    a = np.full((4, 6), 1e-30, np.float32)
    a[:, 4:] = 0
    b = np.full((6, 5), 1e-30, np.float32)
    b[4:] = 1e30
    sp = slice_plan(contract.plan("ij,jk->ik", a, b), {"j": 3})
    m, e = jax.jit(program(sp, strip_exponent=True))(a, b)
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(np.asarray(m, np.float64) * 10.0 ** float(e), want, rtol=1e-5)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_jit_and_expression(jit: bool) -> None:
    mats, terms, out = ring(60, 4, seed=6)
    spec = ",".join("".join(chr(0x100 + l) for l in t) for t in terms) + "->"
    expr = contract.expression(spec, *[m.shape for m in mats], optimize="greedy")

    def f(*ms: Any) -> tuple:
        return contract.einsum(spec, *ms, optimize="greedy", strip_exponent=True)

    def g(*ms: Any) -> tuple:
        return expr(*ms, strip_exponent=True)

    f, g = (jax.jit(f), jax.jit(g)) if jit else (f, g)
    exact = math.log10(exact_trace(mats)[0])
    for m, e in (f(*mats), g(*mats)):
        assert m.item() == 1.0 and abs(e.item() - exact) * LN10 < 1e-5
    assert np.isinf(expr(*mats))  # the plain call is unchanged


def log_norm(m: jax.Array, e: jax.Array) -> jax.Array:
    """``log|result|`` from ``(mantissa, exponent)`` of a scalar result."""
    return jnp.log(jnp.abs(m)) + e * LN10


@pytest.mark.parametrize("memory_limit", [None, 40], ids=["unsliced", "sliced"])
def test_gradient_of_log_norm_matches_plain(memory_limit: int | None) -> None:
    # A ring that does not overflow: the gradient equals log|plain result|'s.
    mats, terms, out = ring(8, 3, seed=7)
    mats = [m / np.float32(20) for m in mats]
    args = sublists(mats, terms, out)
    if memory_limit:
        assert contract.plan(*args, memory_limit=memory_limit).n_slices > 1

    def stripped(x: jax.Array) -> jax.Array:
        return log_norm(*contract.einsum(*sublists([x, *mats[1:]], terms, out),
                                         memory_limit=memory_limit, strip_exponent=True))

    def plain(x: jax.Array) -> jax.Array:
        return jnp.log(jnp.abs(contract.einsum(*sublists([x, *mats[1:]], terms, out))))

    assert np.isfinite(contract.einsum(*args))
    for f in (jax.grad(stripped), jax.jit(jax.grad(stripped))):
        np.testing.assert_allclose(f(mats[0]), jax.grad(plain)(mats[0]), rtol=1e-4)


def test_gradient_of_overflowing_log_norm() -> None:
    # d log|tr(A_0 P)| / dA_0 = P^T / tr(A_0 P), P = A_1 ... A_59: a ratio of
    # two values past float32, taken from the log-space reference.
    mats, terms, out = ring(60, 4, seed=8)

    def f(x: jax.Array) -> jax.Array:
        return log_norm(*contract.einsum(*sublists([x, *mats[1:]], terms, out),
                                         optimize="greedy", strip_exponent=True))

    p, p_scale = log_einsum(mats[1:], terms[1:], terms[0])  # indexed as A_0
    z, z_scale = log_einsum(mats, terms, out)
    want = p / z * 10 ** (p_scale - z_scale)
    np.testing.assert_allclose(jax.grad(f)(mats[0]), want, rtol=1e-4)


def test_gradient_of_mantissa_is_scaled_gradient() -> None:
    # The mantissa is result * 10**-exponent with the exponent held fixed.
    a = np.arange(1, 7, dtype=np.float32).reshape(2, 3) * np.float32(1e20)
    b = np.ones((3, 2), np.float32) * np.float32(1e20)
    m, e = contract.einsum("ij,jk->", a, b, strip_exponent=True)
    grad = jax.grad(lambda x: contract.einsum("ij,jk->", x, b, strip_exponent=True)[0])(a)
    np.testing.assert_allclose(grad, np.full((2, 3), 2e20) / 10.0 ** float(e), rtol=1e-5)


def test_zero_result_and_dtypes() -> None:
    m, e = contract.einsum("ij,jk->ik", np.zeros((2, 3), np.float32),
                           np.ones((3, 2), np.float32), strip_exponent=True)
    assert not np.asarray(m).any() and e.item() == 0.0
    # No pairwise step (one operand) and integer operands with a float result.
    m, e = contract.einsum("ii->", np.full((3, 3), 1e30, np.float32), strip_exponent=True)
    assert m.item() == 1.0 and abs(e.item() - math.log10(3e30)) < 1e-6
    m, e = contract.einsum("i,i->", np.arange(4, dtype=np.int32), np.arange(4, dtype=np.int32),
                           preferred_element_type=jnp.float32, strip_exponent=True)
    assert m.item() * 10 ** e.item() == pytest.approx(14.0, rel=1e-6)
    m, e = contract.einsum("ij,jk->ik", np.ones((2, 3), jnp.bfloat16),
                           np.ones((3, 2), jnp.bfloat16), strip_exponent=True)
    assert m.dtype == jnp.bfloat16 and e.dtype == jnp.float32
    assert abs(e.item() - math.log10(3)) < 1e-6


def test_float64_exponent_under_x64() -> None:
    if not jax.config.jax_enable_x64:
        m, e = contract.einsum("i,i->", np.ones(3), np.ones(3), strip_exponent=True)
        assert e.dtype == jnp.float32  # float64 operands run as float32
        return
    x = np.full((4, 4), 1e200)
    m, e = contract.einsum("ij,jk,kl->", x, x, x, strip_exponent=True)
    assert m.dtype == e.dtype == jnp.float64
    assert abs(e.item() - (600 + math.log10(4**4))) < 1e-12


def test_sharded_operands() -> None:
    # On 2 CPU devices: a plan sharded by explicitly sharded operands is refused;
    # operands over automatic axes run as XLA partitions the program.
    code = textwrap.dedent("""
        import jax, numpy as np, contract
        from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
        x = np.full((8, 8), 1e20, np.float32)
        for axis_type in (AxisType.Explicit, AxisType.Auto):
            mesh = jax.make_mesh((2,), ("d",), axis_types=(axis_type,))
            a = jax.device_put(x, NamedSharding(mesh, P("d", None)))
            with jax.set_mesh(mesh):
                try:
                    m, e = contract.einsum("ij,jk,kl->il", a, a, a, strip_exponent=True)
                except contract.ContractError as err:
                    assert axis_type == AxisType.Explicit, err
                    assert "strip_exponent is not supported with mesh= yet" in str(err), err
                    continue
            assert axis_type == AxisType.Auto
            assert (np.asarray(m) == 1).all() and abs(float(e) - np.log10(64e60)) < 1e-5
        print("ok")
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


@pytest.mark.parametrize("call, match", [
    (lambda: contract.einsum("i,i->", np.ones(3, np.int32), np.ones(3, np.int32),
                             strip_exponent=True),
     "strip_exponent=True needs a floating-point or complex result; einsum 'i,i->' gives int32"),
    (lambda: contract.einsum("i,i->", np.ones(3, bool), np.ones(3, bool), strip_exponent=True),
     "gives bool"),
    (lambda: contract.einsum("i,i->", np.ones(3, np.float32), np.ones(3, np.float32),
                             preferred_element_type=jnp.int32, strip_exponent=True),
     "gives int32"),
    (lambda: jax.jit(lambda x: contract.einsum("i,i->", x, x, strip_exponent=True))(
        np.ones(3, np.int32)), "gives int32"),
    (lambda: contract.expression("i,i->", (3,), (3,), dtype="int32")(
        np.ones(3, np.int32), np.ones(3, np.int32), strip_exponent=True), "gives int32"),
    (lambda: contract.einsum("i,i->", np.ones(3), np.ones(3), strip_exponent="yes"),
     "strip_exponent must be True or False, got 'yes'"),
    (lambda: contract.einsum("i,i->", np.ones(3), np.ones(3), strip_exponent=True,
                             mesh=jax.sharding.Mesh(np.array(jax.devices()[:1]), ("d",))),
     "strip_exponent is not supported with mesh= yet"),
    (lambda: contract.expression("i,i->", (3,), (3,),
                                 mesh=jax.sharding.Mesh(np.array(jax.devices()[:1]), ("d",)))(
        np.ones(3), np.ones(3), strip_exponent=True),
     "strip_exponent is not supported with mesh= yet"),
], ids=["int", "bool", "preferred-int", "jit-int", "expression-int", "not-bool", "mesh",
        "expression-mesh"])
def test_bad_input(call: Any, match: str) -> None:
    with pytest.raises(contract.ContractError, match=match):
        call()
