"""Hypothesis fuzz over every public entry point with bad input.

einsum, plan, expression, each operation, ``contract.lower``, ``contract.jit``
and the command line get malformed specs, wrong ranks, sizes and dtypes, bad
axes and unknown options. The only exception allowed is ``ContractError``
(``TypeError`` only for a wrong call signature): never a JAX traceback. When
a call succeeds, its shape (and, for einsum, its values) must be the
reference's: never a wrong answer. Example counts are bounded to keep the
file fast.
"""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jax import lax

import contract
from contract import ContractError
from contract.cli import main as cli

# Derandomized so CI sees the same examples every run; CONTRACT_FUZZ_EXAMPLES=2000
# explores further (and randomly) when hunting for bugs.
_MORE = int(os.environ.get("CONTRACT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_MORE or 30, derandomize=not _MORE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow], database=None)
LABELS = "abcij"
DTYPES = ["float32", "int32", "int8", "bool", "bfloat16", "complex64", "float16", "uint8"]


def _attempt(fn, *args, **kwargs):  # noqa: ANN001, ANN202
    """``fn(*args, **kwargs)``, or None when it raised a ContractError.

    Anything else propagates and fails the test; warnings (a float64 request
    without x64) are not errors.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(*args, **kwargs)
        except ContractError as e:
            assert str(e), "a ContractError must say what is wrong"
            event("refused")  # --hypothesis-show-statistics shows the share
            return None
    event("ran")
    return out


def _reference(fn, *args, **kwargs):  # noqa: ANN001, ANN202
    """The reference's result (or its shape), or None when the reference refuses."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except Exception:  # the reference's own errors: any type
            return None


def _array(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape)
    if dtype == "bool":
        return np.asarray(x > 0)
    if dtype == "uint8":
        x = np.abs(x)
    return np.asarray(x.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype))


shapes = st.lists(st.integers(0, 3), max_size=3).map(tuple)
dtypes = st.sampled_from(DTYPES)


@st.composite
def arrays(draw: st.DrawFn, shape: st.SearchStrategy = shapes) -> np.ndarray:
    return _array(draw(shape), draw(dtypes), draw(st.integers(0, 9)))


# Things that are not arrays, or not numeric ones.
NOT_ARRAYS = st.sampled_from(["ab", None, {"a": 1}, object(), [[1, 2], [3]],
                              np.array(["x", "y"]), np.array([object()])])


@st.composite
def specs(draw: st.DrawFn) -> str:
    """Mostly well-formed specs over a few labels, some corrupted character by character."""
    n = draw(st.integers(1, 3))
    terms = ["".join(draw(st.lists(st.sampled_from(LABELS), max_size=3))) for _ in range(n)]
    if draw(st.booleans()):
        terms[0] = "..." + terms[0]
    text = ",".join(terms)
    if draw(st.booleans()):  # an explicit output: input labels, now and then another one
        used = sorted(set("".join(terms).replace(".", ""))) or ["a"]
        out = draw(st.lists(st.one_of(st.sampled_from(used), st.sampled_from(used),
                                      st.sampled_from(LABELS)), max_size=3, unique=True))
        text += "->" + ("..." if "..." in text and draw(st.booleans()) else "") + "".join(out)
    if draw(st.integers(0, 4)) == 4:  # corrupt it (hypothesis favours small draws)
        pos = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["1", "->", ",", ".", "..", "-", ">", " ", "A B", "$", "é"]))
        text = text[:pos] + junk + text[pos:]
    return text


@st.composite
def specs_and_operands(draw: st.DrawFn) -> tuple[str, list]:
    """A spec and operands shaped for it, then sometimes spoilt: a size set to 1
    (which broadcasts) or to another size (which must not), an axis dropped or added."""
    spec = draw(specs())
    size = {l: draw(st.integers(0, 3)) for l in LABELS}
    ops = []
    for n, term in enumerate(spec.split("->")[0].split(",")):
        shape = ([draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 2)))]
                 if "..." in term else [])
        shape += [size.get(c, 2) for c in term.replace("...", "") if c != " "]
        spoil = draw(st.sampled_from(["none"] * 12 + ["one", "one", "other", "drop", "add"]))
        if shape and spoil in ("one", "other", "drop"):
            k = draw(st.integers(0, len(shape) - 1))
            if spoil == "drop":
                shape.pop(k)
            else:
                shape[k] = 1 if spoil == "one" else shape[k] + 1
        elif spoil == "add":
            shape.append(2)
        ops.append(_array(tuple(shape), draw(dtypes), n))
    return spec, ops


def _mostly(default, good: list, bad: list) -> st.SearchStrategy:  # noqa: ANN001
    """The default half the time, else a good or a bad value: bad options alone would
    make almost every call an error and leave the success path untried."""
    return st.one_of(st.just(default), st.sampled_from(good), st.just(default),
                     st.just(default), st.sampled_from(bad))


OPTIMIZE = _mostly("auto", ["greedy", "optimal", "dp", True, False, None, "Greedy",
                            ("greedy", 10), ["einsum_path", (0, 1)], [(0, 1)]],
                   ["nope", 3, 2.5, [(0, 9)], [("a", "b")], ("greedy", -1), object()])
PRECISION = _mostly(None, ["highest", "float32", "tensorfloat32", ("high", "default"),
                           lax.Precision.HIGH, lax.DotAlgorithmPreset.F32_F32_F32],
                    ["TF32_TF32_F32", "bogus", 7, ("high",)])
PREFERRED = _mostly(None, ["float32", "int32", "complex64", "bfloat16", "float64"],
                    ["bogus", 3, "U1", object])
MEMORY = _mostly(None, [1 << 20, 64, "max_input"], [0, -5, "bogus", 1.5, True])


def _einsum_reference(spec: str, ops: list) -> np.ndarray | None:
    """numpy.einsum on float64 copies, or None where NumPy refuses the call."""
    if any(not isinstance(o, np.ndarray) or o.dtype.kind not in "biufc" and
           o.dtype != ml_dtypes.bfloat16 for o in ops):
        return None
    return _reference(np.einsum, spec, *[np.asarray(o, np.complex128 if o.dtype.kind == "c"
                                                    else np.float64) for o in ops])


def _extends(spec: str) -> bool:
    """Whether ``spec`` uses the grammar's documented extensions that NumPy refuses:
    named axes (spaces) and non-ASCII labels."""
    return " " in spec or any(ord(c) > 127 for c in spec)


def _check_einsum_result(got: jax.Array, want: np.ndarray | None, spec: str, ops: list) -> None:
    if want is None:  # NumPy refused but contract answered: only an extension may do that
        assert _extends(spec), (spec, [o.shape for o in ops])
        return
    assert got.shape == want.shape, (spec, [np.shape(o) for o in ops])
    if all(o.dtype.kind == "f" and o.dtype.itemsize == 4 for o in ops):
        np.testing.assert_allclose(np.asarray(got).astype(np.complex128), want, rtol=1e-4,
                                   atol=1e-4)


ANY_OPERANDS = st.tuples(specs(), st.lists(st.one_of(arrays(), NOT_ARRAYS), max_size=3))


@FUZZ
@given(st.one_of(specs_and_operands(), ANY_OPERANDS), OPTIMIZE, PRECISION, PREFERRED, MEMORY)
def test_einsum(case: tuple, optimize, precision, preferred, memory) -> None:  # noqa: ANN001
    spec, ops = case
    got = _attempt(contract.einsum, spec, *ops, optimize=optimize, precision=precision,
                   preferred_element_type=preferred, memory_limit=memory)
    if got is not None:
        _check_einsum_result(got, _einsum_reference(spec, ops), spec, ops)


@FUZZ
@given(specs_and_operands())
def test_einsum_under_jit_and_sublists(case: tuple) -> None:
    spec, ops = case
    want = _einsum_reference(spec, ops)
    got = _attempt(jax.jit(lambda *xs: contract.einsum(spec, *xs)), *ops)
    if got is not None:
        _check_einsum_result(got, want, spec, ops)
    # The same operands in the sublist form, with labels as ints (some bad).
    subs = [[LABELS.index(c) if c in LABELS else -1 for c in t] for t in spec.split("->")[0]
            .replace("...", "").split(",")]
    args = [v for pair in zip(ops, subs) for v in pair]
    got = _attempt(contract.einsum, *args)
    if got is not None:
        want = _reference(np.einsum, *[a.astype(np.complex128) if isinstance(a, np.ndarray)
                                       else a for a in args])
        assert want is not None and got.shape == want.shape


BAD_SHAPES = st.sampled_from([(2, -1), (1.5,), (True, 2), "2x3", (2, "a")])


@FUZZ
@given(st.one_of(specs_and_operands().map(lambda c: (c[0], [o.shape for o in c[1]])),
                 st.tuples(specs(), st.lists(st.one_of(shapes, BAD_SHAPES), max_size=3))),
       _mostly(None, DTYPES + [["float32", "int8", "bool"], "float64"], ["bogus", ["x"], 5]),
       OPTIMIZE, MEMORY)
def test_plan(case: tuple, dtype, optimize, memory) -> None:  # noqa: ANN001
    spec, shape_list = case
    p = _attempt(contract.plan, spec, *shape_list, dtype=dtype, optimize=optimize,
                 memory_limit=memory)
    if p is None:
        return
    base = getattr(p, "base", p)
    sizes = dict(base.sizes)
    # A tuple of ints is a shape; any other tuple is array data, as plan() reads it.
    ref_ops = [np.zeros(s) if all(type(d) is int for d in s) else _reference(np.asarray, s, float)
               for s in shape_list]
    want = _reference(np.einsum, spec, *ref_ops)
    if want is None:
        assert _extends(spec), (spec, shape_list)
    else:
        assert tuple(sizes[l] for l in base.output) == want.shape
    assert p.to_json() and str(p)


@FUZZ
@given(specs_and_operands(), st.one_of(st.none(), st.lists(arrays(), max_size=3)))
def test_expression(case: tuple, other: list | None) -> None:
    spec, ops = case
    built_for = [o.shape for o in ops]
    if other is not None:
        ops = other
    expr = _attempt(contract.expression, spec, *built_for)
    if expr is None:
        return
    want = _reference(np.einsum, spec, *[np.zeros(s) for s in built_for])
    assert want is not None or _extends(spec), (spec, built_for)
    # Right shapes (float32) must run; anything else is a ContractError.
    right = [np.ones(s, np.float32) for s in built_for]
    shape = expr(*right).shape
    assert want is None or shape == want.shape
    got = _attempt(expr, *ops)
    if got is not None:
        assert [o.shape for o in ops] == [tuple(s) for s in built_for]
        assert got.shape == shape


AXES = st.one_of(st.none(), st.integers(-4, 4), st.lists(st.integers(-4, 4), max_size=3).map(tuple),
                 st.sampled_from([1.5, "0", [0, 1], (0, 0), True, ()]))
KEEP = _mostly(None, [True, False], [0, "yes"])
OP_DTYPE = _mostly(None, ["float32", "int32", "int8", "bool", "complex64", "float64"],
                   ["bogus", 3])


def _shape_of(fn, *args, **kwargs):  # noqa: ANN001, ANN202
    """The reference's result shape, abstractly (no compile), or None if it refuses."""
    out = _reference(jax.eval_shape, lambda *xs: fn(*xs, **kwargs), *args)
    return None if out is None else tuple(out.shape)


@FUZZ
@given(st.one_of(arrays(), NOT_ARRAYS), AXES, KEEP, OP_DTYPE,
       st.sampled_from(["sum", "mean", "var", "std", "batch_stats"]))
def test_reductions(x, axis, keepdims, dtype, op: str) -> None:  # noqa: ANN001
    kwargs = {"axis": axis, "keepdims": keepdims}
    if op != "batch_stats":
        kwargs["dtype"] = dtype
    got = _attempt(getattr(contract, op), x, **kwargs)
    low = _attempt(contract.lower, getattr(contract, op), x, **kwargs)
    assert (got is None) == (low is None), "lower() must refuse exactly what the op refuses"
    if got is None:
        return
    out = got.sum if op == "batch_stats" else got
    ref = jnp.sum if op == "batch_stats" else getattr(jnp, op)
    axis_ = list(axis) if isinstance(axis, tuple) else axis
    want = _shape_of(lambda v: ref(v, axis=axis_, keepdims=bool(keepdims)), x)
    assert want is not None and out.shape == want


@FUZZ
@given(st.one_of(arrays(), NOT_ARRAYS),
       _mostly(None, [0, 1, -1, 2, -3, 4], [(0,), 1.5, "0", True]),
       OP_DTYPE, _mostly(False, [True], [1, None, "no"]))
def test_cumsum(x, axis, dtype, reverse) -> None:  # noqa: ANN001
    got = _attempt(contract.cumsum, x, axis, dtype=dtype, reverse=reverse)
    if got is not None:
        want = np.cumsum(np.asarray(x, np.float64), axis=axis)
        assert got.shape == want.shape


@FUZZ
@st.composite
def pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays of the same or of reversed shapes (the products' usual fits)."""
    a = draw(arrays())
    shape = a.shape if draw(st.booleans()) else a.shape[::-1]
    return a, _array(shape, draw(dtypes), 1)


@FUZZ
@given(st.one_of(pairs(), st.tuples(st.one_of(arrays(), NOT_ARRAYS),
                                    st.one_of(arrays(), NOT_ARRAYS))),
       st.sampled_from(["dot", "matmul", "outer", "tensordot", "vecdot"]),
       _mostly(None, [0, 1, 2, -1, ((0,), (0,)), ((1,), (0,))], [5, "x", [[0], [9]], 1.5]))
def test_products(ab, op: str, arg) -> None:  # noqa: ANN001
    a, b = ab
    if op == "tensordot":
        got = _attempt(contract.tensordot, a, b, 2 if arg is None else arg)
        want = _shape_of(lambda u, v: jnp.tensordot(u, v, 2 if arg is None else arg), a, b)
    elif op == "vecdot":
        got = _attempt(contract.vecdot, a, b, axis=-1 if arg is None else arg)
        want = _shape_of(lambda u, v: jnp.vecdot(u, v, axis=-1 if arg is None else arg), a, b)
    else:
        got = _attempt(getattr(contract, op), a, b)
        want = _shape_of(getattr(jnp, op), a, b)
    if got is not None:
        # contract.outer flattens as NumPy does; vecdot/tensordot as jnp: same shapes.
        assert want is not None and got.shape == want, (op, np.shape(a), np.shape(b), arg)


@FUZZ
@given(st.one_of(arrays(st.lists(st.integers(0, 3), min_size=2, max_size=3).map(tuple)),
                 arrays(), NOT_ARRAYS),
       _mostly(0, [1, -1, 5], [1.5, "1", None]), _mostly(0, [1, 2, -1, 3], [0.5, "0"]),
       _mostly(1, [0, 2, -2, 3], ["1", None]))
def test_trace_and_diagonal(x, offset, axis1, axis2) -> None:  # noqa: ANN001
    for ours, theirs in ((contract.trace, jnp.trace), (contract.diagonal, jnp.diagonal)):
        got = _attempt(ours, x, offset, axis1, axis2)
        if got is not None:
            assert got.shape == _shape_of(lambda v: theirs(v, offset, axis1, axis2), x)


@FUZZ
@given(st.one_of(arrays(st.lists(st.integers(2, 4), min_size=2, max_size=4).map(tuple)),
                 arrays(), NOT_ARRAYS),
       _mostly(2, [1, 3, (2,), (1, 2)], [(2, 2, 2), 0, -1, 1.5, "2", None, (2, "a")]),
       _mostly(None, [1, 2, (1, 2), (2,)], [0, -1, 1.5, "2", (2, "a")]),
       _mostly(0, [1, (1, 0), (1,)], [-1, 1.5, (1, 2, 3)]),
       _mostly(False, [True], ["no"]))
def test_sum_pool(x, kernel, stride, padding, ceil_mode) -> None:  # noqa: ANN001
    got = _attempt(contract.sum_pool, x, kernel, stride, padding, ceil_mode=ceil_mode)
    if got is None or ceil_mode:
        return
    # An int means every spatial dim: as many as a tuple argument names, else 2 (H, W).
    nd = next((len(a) for a in (kernel, stride, padding) if isinstance(a, tuple)), 2)
    k, p = ((a,) * nd if isinstance(a, int) else tuple(a) for a in (kernel, padding))
    s = k if stride is None else (stride,) * nd if isinstance(stride, int) else tuple(stride)
    lead = x.ndim - len(k)
    want = _shape_of(lambda v: lax.reduce_window(
        v.astype(jnp.float32), 0.0, lax.add, (1,) * lead + k, (1,) * lead + s,
        [(0, 0)] * lead + [(q, q) for q in p]), x)
    assert want is not None and got.shape == want


@FUZZ
@st.composite
def images_and_filters(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) and (O, C, kH, kW) with the same C, sometimes spoilt (rank, channels)."""
    n, c, o, kh, kw = (draw(st.integers(lo, 3)) for lo in (0, 1, 1, 1, 1))
    h, w = kh + draw(st.integers(-1, 2)), kw + draw(st.integers(-1, 2))  # a kernel that fits, mostly
    x, f = [n, c, h, w], [o, c + draw(st.sampled_from([0] * 6 + [1])), kh, kw]
    if draw(st.integers(0, 6)) == 6:
        x.pop(0)
    return _array(tuple(x), draw(dtypes)), _array(tuple(f), draw(dtypes), 1)


@FUZZ
@given(st.one_of(images_and_filters(), st.tuples(st.one_of(arrays(), NOT_ARRAYS),
                                                 st.one_of(arrays(), NOT_ARRAYS))),
       _mostly(1, [2, (1, 2)], [0, -1, "1"]), _mostly(0, [1, (1, 0)], [-1, 1.5]), PRECISION)
def test_conv(xw, stride, padding, precision) -> None:  # noqa: ANN001
    x, w = xw
    got = _attempt(contract.conv, x, w, stride, padding, precision=precision)
    if got is None:
        return
    s = (stride,) * 2 if isinstance(stride, int) else tuple(stride)
    p = (padding,) * 2 if isinstance(padding, int) else tuple(padding)
    want = _shape_of(lambda u, v: lax.conv_general_dilated(
        u.astype(jnp.float32), v.astype(jnp.float32), s, [(q, q) for q in p]), x, w)
    assert want is not None and got.shape == want


def test_lower_of_something_that_is_not_an_operation() -> None:
    for op in (jnp.sum, len, "sum", None):
        with pytest.raises(ContractError, match=r"is not a contract operation"):
            contract.lower(op, np.ones(3))


@FUZZ
@given(specs(), st.lists(arrays(), min_size=1, max_size=2),
       st.sampled_from(["auto", "greedy", "nope", 3, None, [(0, 1)], True]),
       st.sampled_from([None, "highest", "bogus", ("high", "high")]),
       st.sampled_from([None, 0, (0,), "0", 1.5, (5,)]))
def test_jit(spec: str, ops: list, optimize, precision, static) -> None:  # noqa: ANN001
    def f(*xs):  # noqa: ANN002, ANN202
        return jnp.einsum(spec, *xs)

    want = _reference(jax.eval_shape, f, *ops)
    fn = _attempt(contract.jit, f, optimize=optimize, precision=precision, static_argnums=static)
    if fn is None or want is None or static is not None:
        return  # what jnp.einsum itself refuses is the user function's own error
    got = _attempt(fn, *ops)
    assert got is not None and got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(jax.jit(f)(*ops),
                                                                        np.float64),
                               rtol=2e-2, atol=2e-2)


SHAPE_TOKENS = st.sampled_from(["2x3", "3", "scalar", "3x4", "2xa", "-1", "2x-3", "", "x", "4x4",
                                "1x3", "3*2"])
CLI_TOKENS = st.sampled_from(["--json", "--bogus", "--optimize", "greedy", "Optimal", "nope",
                              "--dtype", "int8", "bogus", "--memory-limit", "64", "max_input",
                              "lots", "--dot", "/nonexistent/p.dot", "--plot", "p.txt",
                              "--optimizers", "greedy", "auto", "-h"])


@settings(FUZZ, max_examples=_MORE or 40)
@given(st.sampled_from(["plan", "compare", "bogus", "--help"]), specs(),
       st.lists(SHAPE_TOKENS, max_size=3), st.lists(CLI_TOKENS, max_size=3))
def test_cli(command: str, spec: str, shape_args: list, extra: list) -> None:
    import contextlib
    import io

    argv = [command, spec] + (["--shapes", *shape_args] if shape_args else []) + extra
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = cli(argv)
        except SystemExit as e:
            code = e.code
    assert "Traceback" not in err.getvalue() + out.getvalue()
    if code == 2:  # an error: one line that says so (after argparse's usage, if any)
        assert err.getvalue().strip().splitlines()[-1].startswith("contract: error: "), argv
    else:
        assert code in (0, None), (argv, code, err.getvalue())


WRONG_SIGNATURES = [
    (contract.einsum, (), {}),
    (contract.einsum, ("ij",), {}),
    (contract.einsum, ("i", np.ones(2)), {"order": "C"}),
    (contract.plan, (), {}),
    (contract.plan, ("ij,jk", (2, 3), (3, 4)), {"bogus": 1}),
    (contract.expression, ("i",), {"nope": 1}),
    (contract.sum, (), {}),
    (contract.sum, (np.ones(2),), {"axes": 0}),
    (contract.mean, (np.ones(2), 0, None, None, None), {}),
    (contract.var, (np.ones(2),), {"unbiased": True, "bogus": 1}),
    (contract.cumsum, (), {}),
    (contract.cumsum, (np.ones(2),), {"axiss": 0}),
    (contract.trace, (np.ones((2, 2)),), {"axis": 0}),
    (contract.dot, (np.ones(2),), {}),
    (contract.matmul, (np.ones(2), np.ones(2), np.ones(2)), {}),
    (contract.tensordot, (np.ones(2), np.ones(2)), {"axis": 1}),
    (contract.outer, (np.ones(2),), {}),
    (contract.vecdot, (np.ones(2),), {}),
    (contract.sum_pool, (np.ones((1, 1, 2, 2)), 2), {"pad": 1}),
    (contract.conv, (np.ones((1, 1, 2, 2)),), {}),
    (contract.diagonal, (np.ones((2, 2)),), {"dim1": 0}),
    (contract.batch_stats, (np.ones(2),), {"dtype": "float32"}),
    (contract.jit, (jnp.sin,), {"bogus": 1}),
    (contract.lower, (), {}),
]


@pytest.mark.parametrize("fn, args, kwargs", WRONG_SIGNATURES,
                         ids=[f"{f.__name__}{i}" for i, (f, _, _) in enumerate(WRONG_SIGNATURES)])
def test_wrong_call_signatures(fn, args: tuple, kwargs: dict) -> None:  # noqa: ANN001
    with pytest.raises((ContractError, TypeError)):
        fn(*args, **kwargs)
