"""Complex contractions on CPU: BLAS GEMMs or real GEMMs (contract.backend.complex).

Values against numpy.einsum in complex128 (complex64, and complex128 with x64
on), eager and under jax.jit, with contract's BLAS kernel and without it
(``CONTRACT_NATIVE=0``); every lowering forced on awkward dimension layouts;
gradients against jnp.einsum and finite differences; and the lowered
programs themselves: on CPU the complex step is one BLAS custom call (or
real dot_generals without the kernel), while the branch for other platforms
keeps the complex dot.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import contract
from contract.backend.complex import METHODS, complex_dot, dot_sizes, method

# Sizes of at least 32 on both sides of the GEMM, so that method() picks a
# real lowering; the thin ones check that it keeps the native dot.
SPECS = [
    ("ij,jk->ik", [(48, 40), (40, 36)]),
    ("ij,kj->ik", [(48, 40), (36, 40)]),
    ("ji,jk->ik", [(40, 48), (40, 36)]),
    ("bij,bjk->bik", [(3, 40, 36), (3, 36, 44)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 40, 33), (2, 3, 34, 33)]),
    ("ijk,jkl->il", [(40, 5, 8), (5, 8, 36)]),
    ("ijk,jkl,lmn->imn", [(40, 5, 8), (5, 8, 40), (40, 6, 7)]),
    ("ab,bc,cd,de->ae", [(33, 40), (40, 34), (34, 41), (41, 35)]),
    ("ij,j->i", [(64, 64), (64,)]),
    ("ij,ij->", [(40, 40), (40, 40)]),
    ("ab,cd->abcd", [(33, 34), (35, 36)]),
    ("iij,jk->ik", [(40, 40, 36), (36, 38)]),
    ("...ij,...jk->...ik", [(2, 40, 36), (2, 36, 44)]),
]


def _operands(shapes: list, seed: int, dtype: Any, real: tuple[int, ...] = ()) -> list:
    """Random complex operands (the positions in ``real`` real-valued)."""
    rng = np.random.default_rng(seed)
    rdtype = np.float64 if np.dtype(dtype) == np.complex128 else np.float32
    out = []
    for k, s in enumerate(shapes):
        x = rng.standard_normal(s)
        out.append(x.astype(rdtype) if k in real else
                   (x + 1j * rng.standard_normal(s)).astype(dtype))
    return out


def _want(spec: str, ops: list) -> np.ndarray:
    return np.einsum(spec, *[np.asarray(x).astype(np.complex128) for x in ops])


def _close(got: Any, want: np.ndarray, dtype: Any) -> None:
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype)
    tol = 1e-13 if got.dtype == np.complex128 else 2e-6
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale * np.sqrt(want.size + 1))


no_blas = pytest.mark.parametrize("kernel", ["portable"], indirect=True)


def _runs(fn: Any) -> list:
    """The same body eagerly and under jax.jit."""
    return [fn, jax.jit(fn)]


@pytest.mark.parametrize("spec, shapes", SPECS, ids=[s for s, _ in SPECS])
def test_complex64_values(spec: str, shapes: list, kernel: str) -> None:
    ops = _operands(shapes, 1, np.complex64)
    want = _want(spec, ops)
    for run in _runs(lambda *xs: contract.einsum(spec, *xs)):
        _close(run(*ops), want, np.complex64)


@pytest.mark.parametrize("spec, shapes", SPECS[:8], ids=[s for s, _ in SPECS[:8]])
def test_complex128_values_in_x64_mode(spec: str, shapes: list, kernel: str) -> None:
    with jax.enable_x64(True):
        ops = _operands(shapes, 2, np.complex128)
        want = _want(spec, ops)
        for run in _runs(lambda *xs: contract.einsum(spec, *xs)):
            _close(run(*ops), want, np.complex128)


@pytest.mark.parametrize("real", [(0,), (1,), (0, 2), (1, 2)])
def test_real_operands_in_a_complex_plan(real: tuple[int, ...]) -> None:
    spec, shapes = "ij,jk,kl->il", [(40, 36), (36, 44), (44, 38)]
    ops = _operands(shapes, 3, np.complex64, real)
    want = _want(spec, ops)
    for run in _runs(lambda *xs: contract.einsum(spec, *xs)):
        _close(run(*ops), want, np.complex64)


# dot_general layouts for the forced lowerings: plain, transposed, batched
# (batch not leading), several contracted axes, none contracted, lhs smaller.
DIMS = [
    ((40, 36), (36, 44), (((1,), (0,)), ((), ()))),
    ((36, 40), (44, 36), (((0,), (1,)), ((), ()))),
    ((40, 3, 36), (3, 36, 44), (((2,), (1,)), ((1,), (0,)))),
    ((5, 40, 6), (6, 5, 44), (((0, 2), (1, 0)), ((), ()))),
    ((7, 9), (5, 4), (((), ()), ((), ()))),
    ((8, 36), (36, 200), (((1,), (0,)), ((), ()))),
    ((2, 8, 36), (2, 36, 100), (((2,), (1,)), ((0,), (0,)))),
    ((40,), (40, 6), (((0,), (0,)), ((), ()))),
]


@pytest.mark.parametrize("choice", METHODS)
@pytest.mark.parametrize("lhs, rhs, dims", DIMS)
def test_every_lowering_matches_the_native_dot(choice: str, lhs: tuple, rhs: tuple,
                                               dims: Any) -> None:
    real = () if choice != "real-mixed" else (1,)
    a, b = _operands([lhs, rhs], 4, np.complex64, real)
    want = np.asarray(lax.dot_general(a.astype(np.complex128), b.astype(np.complex128), dims))
    for run in _runs(lambda x, y: complex_dot(x, y, dims, lax.Precision.HIGHEST, choice)):
        _close(run(a, b), want, np.complex64)


def test_method_picks_per_step_shape_and_precision() -> None:
    assert method(1, 512, 512, 512) == "real"
    assert method(1, 512, 512, 512, highest=False) == "gauss"
    assert method(1, 512, 512, 512, blas=True) == method(32, 128, 128, 128, False, blas=True) \
        == "blas"
    assert method(1, 2048, 1, 2048, blas=True) == "native"
    assert method(4, 64, 64, 64, mixed=True, blas=True) == "real-mixed"
    assert method(1, 2048, 1, 2048) == "native"  # matrix-vector: memory-bound
    assert method(1, 2048, 2048, 1) == "native"  # outer product
    assert method(4, 64, 64, 64, mixed=True) == "real-mixed"
    assert dot_sizes((4, 8, 16), (4, 16, 2), (((2,), (1,)), ((0,), (0,)))) == (4, 8, 2, 16)


@no_blas
def test_precision_decides_gauss(kernel: str) -> None:
    a, b = _operands([(128, 128), (128, 128)], 5, np.complex64)
    dims = (((1,), (0,)), ((), ()))
    hi, lo = lax.Precision.HIGHEST, lax.Precision.DEFAULT
    for precision, dots in ((None, 1), (hi, 1), ((lo, hi), 1), (lo, 3), ((lo, lo), 3)):
        hlo = jax.jit(lambda x, y: complex_dot(x, y, dims, precision)).lower(a, b)
        assert len(_dots(hlo.compile().as_text())) == dots, precision


@no_blas
def test_gauss_only_on_request_and_still_accurate_on_random_data(kernel: str) -> None:
    a, b = _operands([(128, 128), (128, 128)], 5, np.complex64)
    got = contract.einsum("ij,jk->ik", a, b, precision="default")
    _close(got, _want("ij,jk->ik", [a, b]), np.complex64)
    hlo = jax.jit(lambda x, y: contract.einsum("ij,jk->ik", x, y, precision="default")) \
        .lower(a, b).compile().as_text()
    assert len(_dots(hlo)) == 3  # Gauss: three real GEMMs


def test_real_lowering_rounds_like_the_native_dot_on_nearly_real_data() -> None:
    """Gauss's imaginary part would lose digits here; the default must not."""
    rng = np.random.default_rng(6)
    a = (rng.standard_normal((64, 64)) + 1e-4j * rng.standard_normal((64, 64))).astype(np.complex64)
    b = (rng.standard_normal((64, 64)) + 1e-4j * rng.standard_normal((64, 64))).astype(np.complex64)
    want = _want("ij,jk->ik", [a, b])
    dims = (((1,), (0,)), ((), ()))
    native = np.asarray(complex_dot(a, b, dims, None, "native"))
    for choice in ("real", "gauss"):
        got = np.asarray(complex_dot(a, b, dims, None, choice))
        err = np.abs(got.imag - want.imag).max() / np.abs(want.imag).max()
        ref = np.abs(native.imag - want.imag).max() / np.abs(want.imag).max()
        assert (err <= 4 * ref + 1e-7) == (choice == "real"), (choice, err, ref)


GRAD_SPECS = [SPECS[0], SPECS[3], SPECS[4], SPECS[6]]


@pytest.mark.parametrize("spec, shapes", GRAD_SPECS, ids=[s for s, _ in GRAD_SPECS])
def test_grads_match_jnp_einsum(spec: str, shapes: list) -> None:
    ops = [jnp.asarray(x) for x in _operands(shapes, 7, np.complex64)]
    out = _want(spec, ops)
    ct = jnp.asarray(_operands([out.shape], 8, np.complex64)[0])

    def grads(einsum: Any) -> Any:
        loss = lambda *xs: jnp.real(jnp.sum(einsum(spec, *xs) * ct))
        return jax.jit(jax.grad(loss, argnums=tuple(range(len(ops)))))(*ops)

    ours = grads(contract.einsum)
    theirs = grads(lambda s, *xs: jnp.einsum(s, *xs, precision="highest"))
    for g, h in zip(ours, theirs):
        assert g.dtype == h.dtype
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-4)
        assert np.abs(np.asarray(g)).sum() > 0


def test_grad_of_a_real_operand_in_a_complex_plan_is_real() -> None:
    a, w = _operands([(40, 36), (36, 44)], 9, np.complex64, real=(1,))
    loss = lambda x, y: jnp.sum(jnp.abs(contract.einsum("ij,jk->ik", x, y)) ** 2)
    ref = lambda x, y: jnp.sum(jnp.abs(jnp.einsum("ij,jk->ik", x, y, precision="highest")) ** 2)
    g, h = jax.grad(loss, argnums=1)(a, w), jax.grad(ref, argnums=1)(a, w)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("choice", METHODS)
def test_finite_differences(choice: str) -> None:
    with jax.enable_x64(True):
        a, b = _operands([(5, 40, 6), (6, 5, 44)], 10, np.complex128,
                         real=(1,) if choice == "real-mixed" else ())
        dims = (((0, 2), (1, 0)), ((), ()))
        check_grads(lambda x, y: complex_dot(x, y, dims, None, choice), (a, b), order=2,
                    modes=("fwd", "rev"))


def test_vmap() -> None:
    a, b = _operands([(3, 40, 36), (3, 36, 44)], 11, np.complex64)
    got = jax.vmap(lambda x, y: contract.einsum("ij,jk->ik", x, y))(a, b)
    _close(got, _want("bij,bjk->bik", [a, b]), np.complex64)


def _dots(hlo: str) -> list[str]:
    """The element types of every dot in compiled HLO text ('f32', 'c64', ...)."""
    return re.findall(r"= (\w+)\[[^\]]*\]\{[^}]*\} dot\(", hlo)


def _gemm_calls(hlo: str) -> list[str]:
    """The targets of contract's BLAS custom calls in compiled HLO text."""
    return re.findall(r'custom_call_target="(contract_gemm_\w+)"', hlo)


def test_compiled_cpu_program_is_one_blas_call_or_real_dots(kernel: str) -> None:
    a, b = _operands([(64, 48), (48, 40)], 12, np.complex64)
    hlo = jax.jit(lambda x, y: contract.einsum("ij,jk->ik", x, y)).lower(a, b).compile().as_text()
    if kernel == "native":
        assert _gemm_calls(hlo) == ["contract_gemm_c64"] and _dots(hlo) == []
    else:
        assert _gemm_calls(hlo) == [] and _dots(hlo) == ["f32"]
    thin = jax.jit(lambda x, y: contract.einsum("ij,j->i", x, y))
    thin_hlo = thin.lower(a, b[:, 0]).compile().as_text()
    assert _dots(thin_hlo) == ["c64"] and _gemm_calls(thin_hlo) == []


def test_precision_needs_no_gauss_with_the_kernel(kernel: str) -> None:
    a, b = _operands([(128, 128), (128, 128)], 5, np.complex64)
    hlo = jax.jit(lambda x, y: contract.einsum("ij,jk->ik", x, y, precision="default")) \
        .lower(a, b).compile().as_text()
    assert len(_gemm_calls(hlo)) == (kernel == "native")
    assert len(_dots(hlo)) == (0 if kernel == "native" else 3)


def test_jaxpr_cpu_branch_is_blas_or_real_and_other_platforms_keep_the_complex_dot(
        kernel: str) -> None:
    a, b = _operands([(64, 48), (48, 40)], 13, np.complex64)
    jaxpr = jax.make_jaxpr(lambda x, y: contract.einsum("ij,jk->ik", x, y))(a, b)
    conds = [e for e in _eqns(jaxpr.jaxpr) if e.primitive.name == "cond"]
    assert len(conds) == 1
    (cond,) = conds
    platforms = cond.params["branches_platforms"]
    by_platform = dict(zip(platforms, cond.params["branches"]))
    cpu = _eqns(by_platform[("cpu",)].jaxpr)
    cpu_dots = [e for e in cpu if e.primitive.name == "dot_general"]
    calls = [e for e in cpu if e.primitive.name == "ffi_call"]
    other_dots = [e for e in _eqns(by_platform[None].jaxpr) if e.primitive.name == "dot_general"]
    if kernel == "native":
        assert cpu_dots == [] and [e.params["target_name"] for e in calls] == ["contract_gemm_c64"]
    else:
        assert calls == [] and [str(e.outvars[0].aval.dtype) for e in cpu_dots] == ["float32"]
    assert [str(e.outvars[0].aval.dtype) for e in other_dots] == ["complex64"]


def _eqns(jaxpr: Any) -> list:
    """Every equation of a jaxpr, nested call/jit bodies included (not cond branches)."""
    out = []
    for e in jaxpr.eqns:
        out.append(e)
        for p in ("jaxpr", "call_jaxpr"):
            sub = e.params.get(p)
            if sub is not None and e.primitive.name != "cond":
                out += _eqns(getattr(sub, "jaxpr", sub))
    return out
