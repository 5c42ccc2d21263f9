"""The layout's rules, checked from the code: one-way imports, no JAX in the planner,
nothing started at import time, every cache bounded and thread-safe, SlicedPlan a
plan of its own, and ``optimize="measure"`` timing real arrays under any trace."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract
from contract.cli import main as cli

PKG = Path(contract.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (function-level imports included)."""
    module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    if path.name == "__init__.py":
        module = package
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.add(target)
            names |= {f"{target}.{a.name}" for a in node.names}
    return names


def _violations(folder: str, banned: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((PKG / folder).rglob("*.py")):
        for name in _imports(path):
            if any(name == b or name.startswith(b + ".") for b in banned):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    return bad


def test_the_ast_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    # The rule tests below are only as good as this reader: check it on known code.
    probe = PKG / "planner" / "_probe_for_test.py"
    probe.write_text("import jax.numpy\nfrom ..ops import sum\ndef f():\n    from .. import api\n")
    try:
        found = _violations("planner", ("jax", "contract.ops", "contract.api"))
    finally:
        probe.unlink()
    assert sorted(found) == sorted([
        "planner/_probe_for_test.py imports jax.numpy",
        "planner/_probe_for_test.py imports contract.ops",
        "planner/_probe_for_test.py imports contract.ops.sum",
        "planner/_probe_for_test.py imports contract.api",
    ])


def test_planner_imports_no_jax_backend_api_ops_or_fusion() -> None:
    # Nor anything that reads the host: the native loader (CPU features,
    # BLAS), the FFI kernels, contract doctor. A plan is the same everywhere.
    banned = ("jax", "jaxlib", "contract.backend", "contract.api", "contract.ops",
              "contract.fusion", "contract.validate", "contract.cli", "contract.native",
              "contract._kernels", "contract.machine")
    assert _violations("planner", banned) == []


def test_backend_imports_no_ops_or_fusion() -> None:
    assert _violations("backend", ("contract.ops", "contract.fusion", "contract.api",
                                   "contract.cli")) == []


def test_nothing_imports_the_cli() -> None:
    users = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
             if p.name not in ("cli.py", "__main__.py") and "contract.cli" in _imports(p)]
    assert users == []


def test_no_public_function_shadows_a_submodule() -> None:
    modules = {p.stem for p in PKG.glob("*.py")} | {p.name for p in PKG.iterdir() if p.is_dir()}
    assert {n for n in contract.__all__ if callable(getattr(contract, n))} & modules == set()


def test_no_module_is_over_500_lines() -> None:
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 550}
    assert long == {}


def test_import_starts_no_jax_backend() -> None:
    code = "import contract, jax._src.xla_bridge as xb; assert not xb._backends, xb._backends"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_xla_flags_set_after_import_still_apply() -> None:
    code = ("import os, contract; os.environ['XLA_FLAGS'] = "
            "'--xla_force_host_platform_device_count=3'; import jax; print(jax.device_count())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in __import__("os").environ.items()
                              if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "3"


SPEC, SHAPES = "ab,bc,cd->ad", [(64, 64), (64, 64), (64, 64)]


def _sliced() -> contract.SlicedPlan:
    sp = contract.plan(SPEC, *SHAPES, memory_limit=24_000)
    assert isinstance(sp, contract.SlicedPlan)
    return sp


def test_sliced_plan_round_trips_json() -> None:
    sp = _sliced()
    back = contract.Plan.from_json(sp.to_json())
    assert back == sp and isinstance(back, contract.SlicedPlan)
    assert back.labels == sp.labels and back.counts == sp.counts and back.flops == sp.flops
    doc = json.loads(sp.to_json())
    assert doc["kind"] == "sliced" and doc["labels"] == list(sp.labels)
    plain = contract.plan(SPEC, *SHAPES)
    assert contract.SlicedPlan.from_json(plain.to_json()) == plain


def test_sliced_plan_does_not_pass_for_its_base() -> None:
    sp = _sliced()
    base = sp.base
    assert sp.flops == sp.n_slices * sp.slice.flops >= base.flops
    assert sp.peak_bytes <= 24_000 < base.peak_bytes
    assert sp.sliced == sp.labels and base.sliced == () and base.n_slices == 1
    # Attributes that are not part of the shared interface are not forwarded.
    with pytest.raises(AttributeError):
        sp.no_such_attribute  # noqa: B018


def test_every_view_of_a_sliced_plan_names_its_slicing() -> None:
    sp = _sliced()
    report = sp.report()
    assert "slicing" in report and f"slices      {sp.n_slices}" in report
    for label in sp.labels:
        assert f"{label} 64 -> " in report
        assert f"{label} 64 -> " in sp.to_dot()
    plain = contract.plan(SPEC, *SHAPES)
    assert "slicing" not in plain.report() and "sliced" not in plain.to_dot()


def test_cli_json_of_a_sliced_plan_keeps_the_slicing(capsys: pytest.CaptureFixture) -> None:
    assert cli(["plan", SPEC, "--shapes", "64x64", "64x64", "64x64", "--memory-limit", "24000",
                "--json"]) == 0
    back = contract.Plan.from_json(capsys.readouterr().out)
    assert back == _sliced()
    assert cli(["plan", SPEC, "--shapes", "64x64", "64x64", "64x64", "--memory-limit", "24000"]) == 0
    out = capsys.readouterr().out
    assert "slicing" in out and all(f"{l} 64 -> " in out for l in back.labels)


# Candidates of very different FLOPs: auto's path 3.8e7, greedy's 2.7e8.
M_SPEC = "fbc,cde,abc,eab,ef->ab"
M_SHAPES = [(8, 64, 16), (16, 32, 64), (32, 64, 16), (64, 32, 64), (64, 8)]


def test_measure_picks_the_same_plan_eagerly_under_jit_and_from_plan(tmp_path: Path) -> None:
    """The measured choice is stored as a plan: with the disk cache on, the
    eager, jitted and plan() calls all read the first call's decision, even
    after the in-memory caches are emptied between them."""
    contract.set_cache_dir(tmp_path)
    try:
        _measure_is_one_decision()
    finally:
        contract.set_cache_dir(None)


def _measure_is_one_decision() -> None:
    ops = [np.random.default_rng(n).standard_normal(s).astype(np.float32)
           for n, s in enumerate(M_SHAPES)]
    want = np.einsum(M_SPEC, *ops)
    paths = []
    for call in ("plan", "eager", "jit"):
        contract.clear_caches(disk=False)
        if call == "eager":
            got = contract.einsum(M_SPEC, *ops, optimize="measure")
        elif call == "jit":
            got = jax.jit(lambda *x: contract.einsum(M_SPEC, *x, optimize="measure"))(*ops)
        if call != "plan":
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2)
        p = contract.plan(M_SPEC, *M_SHAPES, optimize="measure")  # the cached choice
        paths.append((p.optimize, p.path))
    # Which candidate wins is a timing (greedy's path, 7x the FLOPs, won once
    # on a machine loaded by another test run); that all three calls share
    # the one cached decision is not.
    assert paths[0][0] in {f"measure:{name}" for name in ("auto", "greedy", "auto-hq", "dp")}
    assert paths == [paths[0]] * 3
    # contract.jit measures its clusters the same way. Its labels and operand
    # order differ, so it is a decision of its own (a timing): its plan is the
    # plan of the optimizer it names. The cluster keeps the written code when
    # that is greedy's own path (the order written), so it is looked up among
    # all clusters.
    f = contract.jit(lambda *x: jnp.einsum(M_SPEC, *x, optimize="greedy"), optimize="measure")
    np.testing.assert_allclose(f(*ops), want, rtol=1e-3, atol=1e-2)
    (cluster,) = f.explain(*ops).clusters
    name = cluster.plan.optimize.removeprefix("measure:")
    assert name != cluster.plan.optimize
    assert cluster.plan.flops == contract.plan(M_SPEC, *M_SHAPES, optimize=name).flops


def test_caches_are_bounded_and_thread_safe() -> None:
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((6, 5)).astype(np.float32))
    b = jnp.asarray(rng.standard_normal((5, 4)).astype(np.float32))
    c = jnp.asarray(rng.standard_normal((4, 3)).astype(np.float32))
    an, bn, cn = map(np.asarray, (a, b, c))
    calls = [
        (lambda: contract.einsum("ij,jk->ik", a, b), an @ bn),
        (lambda: contract.einsum("ij,jk,kl->il", a, b, c), an @ bn @ cn),
        (lambda: contract.einsum("xy,yz->zx", a, b), (an @ bn).T),
        (lambda: contract.einsum("ij->", a), an.sum()),
        (lambda: contract.einsum("ij,ij->j", a, a), (an * an).sum(0)),
        (lambda: contract.sum(a, axis=0), an.sum(0)),
        (lambda: contract.sum(b, dim=1, keepdim=True), bn.sum(1, keepdims=True)),
        (lambda: contract.cumsum(c, axis=1), np.cumsum(cn, 1)),
        (lambda: contract.mean(a, axis=1), an.mean(1)),
        (lambda: contract.var(b, axis=0), bn.var(0)),
        (lambda: contract.plan("ij,jk->ik", (6, 5), (5, 4)).flops, 240),
        (lambda: contract.einsum("ij,jk->ik", an, bn, optimize="greedy"), an @ bn),
    ]
    errors: list[BaseException] = []
    contract.set_cache_size(16)
    try:
        def work(seed: int) -> None:
            order = np.random.default_rng(seed).integers(0, len(calls), 500)
            try:
                for k in order:
                    fn, want = calls[k]
                    np.testing.assert_allclose(np.asarray(fn()), want, rtol=1e-4, atol=1e-5)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        info = contract.plan_cache_info()
        assert all(v["size"] <= 16 for k, v in info.items() if k != "disk")
    finally:
        contract.set_cache_size(1024)
    assert errors == []


def test_clear_caches_empties_every_cache() -> None:
    contract.einsum("ij,jk->ik", jnp.ones((2, 3)), jnp.ones((3, 4)))
    contract.sum(jnp.ones((2, 3)), axis=0)
    info = contract.plan_cache_info()
    assert {"plans", "eager einsums", "op programs", "specs"} <= set(info)
    assert info["plans"]["size"] > 0 and info["eager einsums"]["size"] > 0
    contract.clear_caches(disk=False)
    assert all(v["size"] == 0 for k, v in contract.plan_cache_info().items() if k != "disk")


def test_clear_caches_forgets_what_validation_learned() -> None:
    from jax import lax

    from contract import validate

    validate.check_precision(lax.DotAlgorithmPreset.DEFAULT)  # whether the backend runs it
    assert validate.is_concrete(jnp.ones(2))  # the concrete jax.Array class
    info = contract.plan_cache_info()
    assert info["precision refusals"]["size"] >= 1 and info["concrete types"]["size"] >= 1
    contract.clear_caches(disk=False)
    info = contract.plan_cache_info()
    assert info["precision refusals"]["size"] == info["concrete types"]["size"] == 0
    # Forgetting costs only the slow path: numbers stay concrete, arrays are learned again.
    assert validate.concrete_type(float) and validate.is_concrete(jnp.ones(2))
    assert contract.plan_cache_info()["concrete types"]["size"] >= 1
