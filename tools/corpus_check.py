"""Run the peer einsum corpora against ``contract`` and summarise the failures.

Usage::

    python tools/corpus_check.py [--jit] [--dtypes] [--optimize NAME] [-v]

Reads ``all_execution_cases.jsonl`` and ``all_error_cases.jsonl`` from
``/work/shared/corpora`` (or ``$CONTRACT_CORPORA``); when the folder is absent
it says so and exits 0. This is a development check, not a test: the project's
tests never need the corpora.

Every execution case is evaluated with ``contract.einsum`` and compared with
``numpy.einsum`` (or ``opt_einsum.contract`` where NumPy cannot take the
labels); every error case must raise :class:`contract.ContractError`.
Outcomes: ``pass``, ``fail``, ``expected`` (a documented, deliberate
difference: see ``_EXPECTED``) and ``skip`` (cannot be represented without
x64, or not an einsum behaviour).

``--dtypes`` re-runs each numerical case in bool, int8, uint8, float16,
bfloat16 and complex64 as well (slow: one compile per case and dtype).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import opt_einsum

import contract
from contract import ContractError

CORPORA = Path(os.environ.get("CONTRACT_CORPORA", "/work/shared/corpora"))
INT32 = np.iinfo(np.int32)
# Deliberate differences from NumPy/TensorFlow, keyed by the ContractError
# message fragment that signals them. Size-1 labels broadcast as NumPy's do,
# so the only one left is TensorFlow's "a->aa" (NumPy and jnp refuse it too).
_EXPECTED = {
    "appears more than once": "repeated output label (TensorFlow's generalised diagonal)",
}
SWEEP = ("bool", "int8", "uint8", "float16", "bfloat16", "complex64")


class Outcome(Exception):
    """Raised inside a case to classify it as ``skip`` or ``expected``."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind, self.why = kind, why


def _np_dtype(name: str | None) -> Any:
    if name is None:
        return np.float64
    return ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)


def _decode(value: Any) -> Any:
    """JSON literal to Python: ``{"complex": [re, im]}`` becomes a complex."""
    if isinstance(value, dict) and "complex" in value:
        return complex(*value["complex"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def make_operand(o: dict, rng: np.random.Generator, dtype: str | None = None) -> Any:
    """Build one corpus operand as a NumPy array (or a Python scalar)."""
    name = dtype or o.get("dtype")
    if "value" in o:
        value = _decode(o["value"])
        if name:
            return np.asarray(value).astype(_np_dtype(name))
        # Python scalars stay Python scalars (weakly typed, as users pass them).
        return value if isinstance(value, (bool, int, float, complex)) else np.asarray(value)
    shape = tuple(o["shape"])
    init = o.get("init")
    if init == "python_scalar":
        return 1.5
    if init == "arange":
        x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) + o.get("offset", 0)
    elif init == "ones":
        x = np.ones(shape)
    elif np.dtype(_np_dtype(name)).kind in "iub":
        x = rng.integers(-3, 4, shape).astype(np.float64)
    else:
        x = rng.standard_normal(shape)
    dt = np.dtype(_np_dtype(name))
    if dtype is not None:  # sweeps keep values small enough for every dtype
        x = np.mod(x, 3) if dt.kind in "u" else np.mod(x, 5) - 2 if dt.kind == "i" else x
        if dt.kind == "b":
            x = np.mod(x, 2)
        if dt.kind == "c":
            x = x + 1j * rng.standard_normal(shape)
    return x.astype(dt)


def _wide(x: Any) -> Any:
    """Operand in the reference's wide dtype (int64, float64 or complex128)."""
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        return a.astype(np.int64)
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


def reference(eq: str | None, args: list, ops: list) -> tuple[np.ndarray, np.ndarray]:
    """NumPy/opt_einsum result and the same einsum of absolute values (error scale)."""
    wide = [_wide(x) for x in ops]
    absw = [np.abs(x).astype(np.float64) for x in wide]

    def run(xs: list) -> np.ndarray:
        if eq is None:
            inter = [v for pair in zip(xs, args[1::2]) for v in pair] + args[2 * len(xs):]
            return np.asarray(opt_einsum.contract(*inter))
        try:
            if len(xs) <= 3:
                return np.asarray(np.einsum(eq, *xs))
        except (ValueError, TypeError):  # labels NumPy cannot take
            pass
        # numpy.einsum(optimize=True) may fall back to one giant loop on big
        # networks; opt_einsum contracts pairwise with NumPy.
        return np.asarray(opt_einsum.contract(eq, *xs, backend="numpy"))

    return run(wide), run(absw)


def compare(got: Any, ref: np.ndarray, scale: np.ndarray, dtype: str) -> str | None:
    """None when ``got`` matches ``ref`` for its dtype, else a short reason."""
    got = np.asarray(got)
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    if got.size == 0:
        return None
    if dtype == "bool":
        want = ref != 0
        return None if np.array_equal(got.astype(bool), want) else "bool values differ"
    if np.dtype(_np_dtype(dtype)).kind in "iu":
        ref = ref.real.astype(np.int64)
        if np.dtype(dtype).itemsize >= 4:
            if np.dtype(dtype).itemsize == 4 and (ref.max() > INT32.max or ref.min() < INT32.min):
                raise Outcome("skip", "integer result exceeds int32 (needs x64)")
            want, have = ref, got.astype(np.int64)
        else:  # narrow results wrap like a cast of the exact sum
            bits = np.dtype(dtype).itemsize * 8
            want, have = np.mod(ref, 2**bits), np.mod(got.astype(np.int64), 2**bits)
        return None if np.array_equal(want, have) else "integer values differ"
    tol = {"float16": 2e-3, "bfloat16": 1.6e-2}.get(dtype, 2e-5)
    if np.nanmax(np.abs(np.where(np.isfinite(ref), ref, 0)), initial=0) > ml_dtypes.finfo(
            _np_dtype(dtype)).max:
        raise Outcome("skip", f"result exceeds the {dtype} range (needs x64)")
    finite = np.isfinite(ref) & np.isfinite(scale)
    if not finite.all():  # inf and nan must come out where the reference has them
        same = np.isclose(got[~finite], ref[~finite], equal_nan=True)
        if not same.all():
            return "inf/nan differ from the reference"
        got, ref, scale = got[finite], ref[finite], scale[finite]
    err = np.abs(got.astype(np.complex128) - ref)
    bound = tol * (scale + 1e-30) + 1e-6 * tol
    bad = ~(err <= bound)
    if bad.any():
        k = np.argmax(np.where(bad, err / bound, 0))
        return f"max error {err.flat[k]:.3g} over tolerance {bound.flat[k]:.3g}"
    return None


def _call(args: list, kw: dict, jit: bool) -> Any:
    if not jit:
        return contract.einsum(*args, **kw)
    spec_pos = [i for i, a in enumerate(args)
                if isinstance(a, (np.ndarray, float, int, complex)) and not isinstance(a, bool)]
    arrays = [jnp.asarray(args[i]) for i in spec_pos]

    def f(*xs: Any) -> Any:
        full = list(args)
        for i, x in zip(spec_pos, xs):
            full[i] = x
        return contract.einsum(*full, **kw)

    return jax.jit(f)(*arrays)


def _classify_error(e: ContractError) -> None:
    for fragment, why in _EXPECTED.items():
        if fragment in str(e):
            raise Outcome("expected", why) from None
    raise e


def run_execution(case: dict, jit: bool, dtype: str | None, optimize: str) -> None:
    """Raise AssertionError/Exception on failure, Outcome for skip/expected."""
    kind = case["expect"]["kind"]
    rng = np.random.default_rng(abs(hash(case["id"])) % 2**32)
    ops = [make_operand(o, rng, dtype) for o in case["operands"]]
    if case["format"] == "string":
        eq = case["eq"]
        args: list = [eq, *ops]
    else:
        eq = None
        args = [v for pair in zip(ops, case["subscripts"]) for v in pair]
        args = [[Ellipsis if x == "..." else x for x in a] if isinstance(a, list) else a
                for a in args]
        if case["output"] is not None:
            args.append([Ellipsis if x == "..." else x for x in case["output"]])
    kw: dict = {"optimize": optimize}
    if "explicit_path" in case and case["explicit_path"] and optimize == "auto":
        kw["optimize"] = case["explicit_path"]
    if case.get("numpy_kwargs", {}).get("dtype") == "?":
        kw["preferred_element_type"] = "bool"
    if kind == "raises":
        try:
            _call(args, kw, jit)
        except ContractError:
            return
        raise AssertionError("no ContractError raised")
    if kind == "jax_specific_raise":
        kind = "allclose_numpy_einsum"  # JAX's limitation: we split n-ary path entries
    try:
        got = _call(args, kw, jit)
    except ContractError as e:
        _classify_error(e)
    if kind == "zeros":
        want = tuple(case["expect"]["output_shape"])
        assert got.shape == want and not np.asarray(got).any(), f"got {got.shape}"
        return
    if kind == "jax_lowering":
        text = str(jax.make_jaxpr(lambda *x: contract.einsum(eq, *x))(*ops))
        assert text.count("dot_general") == 1, text
        assert got.dtype == jnp.bfloat16, got.dtype
        return
    if kind == "value":
        assert np.array_equal(np.asarray(got), np.asarray(case["expect_value"])), got
        return
    if kind == "tf_only":
        raise AssertionError("TensorFlow-only behaviour accepted unexpectedly")
    ref_eq = case["expect"].get("equivalent_eq", eq)
    if kind == "allclose_other_case" and eq is not None and ref_eq != eq:
        # The latin original must give the same answer through contract too.
        same = contract.einsum(ref_eq, *ops, **kw)
        assert np.allclose(np.asarray(got), np.asarray(same), rtol=1e-5, atol=1e-5)
    ref, scale = reference(ref_eq, args, ops)
    result_dtype = str(got.dtype)
    why = compare(got, ref, scale, result_dtype)
    assert why is None, why
    if kind == "gradient_check" and got.size and np.asarray(got).dtype.kind == "f":
        xs = [jnp.asarray(x, jnp.float32) for x in ops]
        ct = jnp.asarray(rng.standard_normal(got.shape), jnp.float32)
        gc = jax.grad(lambda *x: jnp.sum(contract.einsum(eq, *x) * ct), range(len(xs)))(*xs)
        gj = jax.grad(lambda *x: jnp.sum(jnp.einsum(eq, *x) * ct), range(len(xs)))(*xs)
        for a, b in zip(gc, gj):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


class _NumpyProxy:
    """``np`` for the error calls: real NumPy, but ``einsum`` is contract's."""

    def __init__(self, fn: Any) -> None:
        self.einsum = fn

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


def run_error(case: dict) -> None:
    """The call must raise ContractError; anything else (or nothing) fails."""
    call = case.get("call", "")
    ns: dict[str, Any] = {
        "np": _NumpyProxy(contract.einsum), "contract": contract.einsum,
        "contract_fn": contract.einsum, "einsum": contract.einsum,
        "ones": np.ones, "do_opt": "auto",
        "a": np.ones((2, 2)), "b": np.ones((2, 2)),
        "views": [np.ones((10, 2, 4, 2))],
    }
    if case.get("format") == "string":
        ops = [make_operand(o, np.random.default_rng(0)) for o in case["operands"]]
        call, ns["ops"] = "einsum(" + repr(case["eq"]) + ", *ops)", ops
    for line in case.get("setup") or []:
        exec(line, ns)  # noqa: S102 - corpus set-up lines such as "a = np.arange(12)"
    extra = [f"{k}={v}" for k, v in (case.get("kwargs") or {}).items() if f"{k}=" not in call]
    if extra:
        call = call[:-1] + ("" if call.endswith("()") else ", ") + ", ".join(extra) + ")"
    try:
        eval(call, ns)  # noqa: S307 - corpus call expressions
    except ContractError:
        return
    except Exception as e:
        raise AssertionError(f"{type(e).__name__} instead of ContractError: {e}") from None
    if "52" in call and "[0, 52]" in call:
        # jnp.einsum accepts them too (where NumPy and jnp disagree, contract follows jnp).
        raise Outcome("expected", "sublist labels >= 52 are accepted, as jnp.einsum does")
    raise AssertionError("no error raised")


def main(argv: list[str] | None = None) -> int:
    """Run every case; print a summary. Returns 1 when a case fails."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jit", action="store_true", help="call contract.einsum inside jax.jit")
    ap.add_argument("--dtypes", action="store_true", help="also sweep " + ", ".join(SWEEP))
    ap.add_argument("--every", type=int, default=1,
                    help="with --dtypes, sweep only every N-th numerical case")
    ap.add_argument("--optimize", default="auto")
    ap.add_argument("-v", "--verbose", action="store_true", help="print progress and failures")
    ap.add_argument("--only", default="", help="run only cases whose id contains this")
    opts = ap.parse_args(argv)
    exe, err = CORPORA / "all_execution_cases.jsonl", CORPORA / "all_error_cases.jsonl"
    if not exe.exists() or not err.exists():
        print(f"corpus folder {CORPORA} not found: nothing to check")
        return 0
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    details: dict[str, list[str]] = collections.defaultdict(list)

    def record(group: str, cid: str, fn: Any, *a: Any) -> None:
        if opts.only not in cid:
            return
        if opts.verbose:
            print(group, cid, file=sys.stderr, flush=True)
        try:
            fn(*a)
            counts[group]["pass"] += 1
        except Outcome as o:
            counts[group][o.kind] += 1
            details[o.kind].append(f"{group} {cid}: {o.why}")
        except Exception as e:  # a failing case, whatever it raised
            counts[group]["fail"] += 1
            msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
            details["fail"].append(f"{group} {cid}: {type(e).__name__}: {msg}")
            if opts.verbose:
                print("FAIL", details["fail"][-1], file=sys.stderr, flush=True)

    numeric_seen = 0
    for line in exe.read_text().splitlines():
        case = json.loads(line)
        record("execution", case["id"], run_execution, case, opts.jit, None, opts.optimize)
        numeric = case["expect"]["kind"] == "allclose_numpy_einsum" and case["recommended_acceptance"]
        numeric_seen += numeric
        if opts.dtypes and numeric and numeric_seen % opts.every == 0:
            for dt in SWEEP:
                record(f"dtype:{dt}", case["id"], run_execution, case, opts.jit, dt, opts.optimize)
    for line in err.read_text().splitlines():
        case = json.loads(line)
        record("errors", case["id"], run_error, case)

    for kind in ("expected", "skip", "fail"):
        reasons = collections.Counter(d.split(": ", 1)[1] if kind != "fail" else d
                                      for d in details[kind])
        if reasons:
            print(f"\n{kind} ({len(details[kind])}):")
            for why, n in reasons.most_common():
                print(f"  {n:4d}  {why}")
    print("\nsummary" + (" (jit)" if opts.jit else "") + f" optimize={opts.optimize!r}")
    for group, c in counts.items():
        total = sum(c.values())
        print(f"  {group:16s} " + "  ".join(f"{k}={c[k]}" for k in
                                            ("pass", "fail", "expected", "skip")) + f"  total={total}")
    return 1 if any(c["fail"] for c in counts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
