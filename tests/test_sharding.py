"""Sharded operands and meshes: the label rules, and every public call against jnp.

The planner's rules (contract/planner/sharding.py) are pure Python and run
here. The calls on sharded arrays need several devices, so they run once in a
subprocess started with 4 forced host devices (XLA reads the flag when JAX
starts); every case compares values *and* output sharding with the ``jnp`` /
``jax.jit`` equivalent, over explicit and over auto mesh axes. Where ``jnp``
refuses, the case states what contract gives instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import contract
from contract.planner import Layout, load, shard, spread
from contract.planner.sharding import (communication, device_bytes, local_plan, operand_specs,
                                       output_spec, reduced_axes)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESH = (("x", 2), ("y", 2))


def _layout(*specs):
    return Layout(MESH, tuple(tuple(tuple(a) for a in s) for s in specs))


# ---------------------------------------------------------------- the rules


def test_free_labels_keep_their_sharding_and_summed_ones_end_in_one_psum():
    p = contract.plan("ij,jk->ik", (8, 8), (8, 8))
    sp = shard(p, _layout(["x", ""], ["", "y"]))
    assert sp.shards == (("i", ("x",)), ("k", ("y",)))
    assert output_spec(sp) == (("x",), ("y",)) and reduced_axes(sp) == ()
    assert communication(sp) == [] and sp.n_slices == 4 and sp.overhead == 1.0
    summed = shard(p, _layout(["", "x"], ["x", ""]))
    assert summed.shards == (("j", ("x",)),) and reduced_axes(summed) == ("x",)
    assert output_spec(summed) == ((), ())
    (when, what, size), = communication(summed)
    assert what == "psum of the output over x" and size == 8 * 8 * 4 and when == "after step 0"


def test_output_labels_win_a_mesh_axis_and_the_loser_is_resharded():
    # k (an output label) and j (summed) both arrive on x: k keeps it, as jnp
    # would shard the result; operand 0 is gathered along j.
    p = contract.plan("ij,jk->ik", (8, 8), (8, 8))
    sp = shard(p, _layout(["", "x"], ["", "x"]))
    assert sp.shards == (("k", ("x",)),) and output_spec(sp) == ((), ("x",))
    assert operand_specs(sp) == (((), ()), ((), ("x",)))
    (when, what, _), = communication(sp)
    assert when == "before step 0" and what == "reshard operand 0 (j x -> whole)"


def test_first_operand_decides_a_conflict_and_diagonals_stay_whole():
    p = contract.plan("bij,bjk->bik", (8, 4, 4), (8, 4, 4))
    sp = shard(p, _layout(["x", "", ""], ["y", "", ""]))
    assert sp.shards == (("b", ("x",)),)
    assert communication(sp)[0][1] == "reshard operand 1 (b y -> x)"
    diag = shard(contract.plan("ii->i", (8, 8)), _layout(["x", ""]))
    assert diag.shards == () and output_spec(diag) == ((),)  # as jnp.einsum: P(None)


def test_spread_prefers_free_labels_then_the_fewest_flops():
    sp = spread(contract.plan("ij,jk->ik", (8, 6), (6, 4)), 2)
    assert sp.shards == (("i", ("devices",)),) and reduced_axes(sp) == ()
    # In a ring every free label misses a step; the summed label a is in all of them.
    ring = spread(contract.plan("abc,cde,efg,gha->bdfh", *[(4, 8, 4)] * 4), MESH)
    assert ring.overhead == 1.0 and reduced_axes(ring) == ("x", "y")
    batch = spread(contract.plan("bij,bjk->bik", (64, 32, 32), (64, 32, 32)), MESH)
    assert batch.shards == (("b", ("x", "y")),) and reduced_axes(batch) == ()
    total = 2 * 64 * 32 * 32 * 4
    assert device_bytes(batch) == total // 4
    assert spread(contract.plan("ij,jk->ik", (8, 6), (6, 4)), 1).mesh == ()


CHAIN, CHAIN_SHAPES = "bij,bjk,bkl->bil", [(64, 16, 16)] * 3


def test_a_budget_is_per_device_and_slices_the_local_plan():
    # The whole plan holds its 64 KiB output: a 25 kB budget is out of reach
    # for it, but not for each of 4 devices (a 16 KiB block of the output).
    p = contract.plan(CHAIN, *CHAIN_SHAPES)
    with pytest.raises(contract.ContractError, match="smallest budget that works"):
        contract.plan(CHAIN, *CHAIN_SHAPES, memory_limit=25_000)
    sp = spread(p, 4, 25_000)
    local = local_plan(sp)
    assert sp.memory_limit == 25_000 and sp.peak_bytes <= 25_000
    assert isinstance(local, contract.SlicedPlan) and dict(local.base.sizes)["b"] == 16
    assert sp.n_slices == 4 * local.n_slices
    assert spread(p, 4, 25_000) == shard(sp, Layout.whole(sp.mesh, p), True)


def test_sharded_plans_round_trip_json_and_show_their_sharding():
    p = contract.plan("ij,jk->ik", (8, 8), (8, 8))
    for sp in (shard(p, _layout(["", "y"], ["x", ""])),
               spread(contract.plan(CHAIN, *CHAIN_SHAPES), MESH, 25_000)):
        back = load(sp.to_json())
        assert back == sp and back.shards == sp.shards and back.given == sp.given
        text = str(sp)
        assert "sharding" in text and "per device  operands" in text
        for label, axes in sp.shards:
            assert f"{label} over {'/'.join(axes)}" in text
    assert "psum of the output over y" in str(shard(p, _layout(["", "y"], ["x", ""])))
    with pytest.raises(contract.ContractError, match="mesh axis 'z'"):
        shard(p, _layout(["z", ""], ["", ""]))


# ------------------------------------------------- the calls, on 4 devices


def _device_checks() -> None:
    """Run in a subprocess with 4 forced host devices; prints one JSON line."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

    assert jax.device_count() == 4, jax.devices()
    rng = np.random.default_rng(0)
    results: dict[str, str] = {}

    def check(name, fn, ref, want=None, tol=1e-4):
        """``fn()`` equals ``ref()`` in values and sharding. Without ``ref`` (no
        jnp equivalent) or where it raises (jnp refuses), values equal ``want``."""
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - reported
            results[name] = f"raised {type(e).__name__}: {str(e)[:300]}"
            return None
        expect, note = None, ""
        if ref is not None:
            try:
                expect = ref()
            except Exception:  # noqa: BLE001 - jnp refuses: compare with want
                note = " (jnp refuses)"
        outs = out if isinstance(out, tuple) else (out,)
        exps = expect if isinstance(expect, tuple) else (expect,)
        for o, e in zip(outs, exps):
            value = want if e is None else e
            if not np.allclose(np.asarray(o), np.asarray(value), rtol=tol, atol=tol):
                results[name] = "wrong values"
                return out
            if e is not None and not o.sharding.is_equivalent_to(e.sharding, o.ndim):
                results[name] = f"sharding {o.sharding.spec}, jnp gives {e.sharding.spec}"
                return out
        results[name] = "ok" + note
        return out

    for kind in ("explicit", "auto"):
        t = AxisType.Explicit if kind == "explicit" else AxisType.Auto
        m1 = jax.make_mesh((4,), ("x",), axis_types=(t,))
        m2 = jax.make_mesh((2, 2), ("x", "y"), axis_types=(t, t))

        def put(a, mesh, *spec):
            return jax.device_put(a, NamedSharding(mesh, P(*spec)))

        a, b = rng.standard_normal((8, 4, 6), np.float32), rng.standard_normal((8, 6, 4), np.float32)
        x = rng.standard_normal((8, 3, 4, 4), np.float32)
        A, B, X = put(a, m1, "x"), put(b, m1, "x"), put(x, m1, "x")
        bmm = "bij,bjk->bik"
        k = kind + " "
        check(k + "einsum", lambda: contract.einsum(bmm, A, B), lambda: jnp.einsum(bmm, A, B))
        check(k + "einsum under jax.jit", lambda: jax.jit(lambda u, v: contract.einsum(bmm, u, v))(A, B),
              lambda: jax.jit(lambda u, v: jnp.einsum(bmm, u, v))(A, B))
        check(k + "sum", lambda: contract.sum(X, axis=(0, 2, 3)), lambda: jnp.sum(X, axis=(0, 2, 3)))
        check(k + "batch_stats", lambda: tuple(contract.batch_stats(X, axis=(0, 2, 3))),
              lambda: (jnp.sum(X, axis=(0, 2, 3)), jnp.mean(X, axis=(0, 2, 3)),
                       jnp.var(X, axis=(0, 2, 3))))
        check(k + "var under jax.jit", lambda: jax.jit(lambda u: contract.var(u, axis=1))(X),
              lambda: jax.jit(lambda u: jnp.var(u, axis=1))(X))
        mulsum = lambda u, v: (u * v).sum(0)  # noqa: E731
        check(k + "contract.jit", lambda: contract.jit(mulsum)(A, A), lambda: jax.jit(mulsum)(A, A))
        # A batch of rings: each device's part (two rings) holds 640 B beyond
        # its inputs, so a 600 B budget slices it; the whole plan is sliced
        # under jax.jit over auto axes, which a trace does not show.
        ring = "xabc,xcde,xefg,xgha->x"
        R = [put(rng.standard_normal((8, 4, 8, 4), np.float32), m1, "x") for _ in range(4)]
        check(k + "memory_limit", lambda: contract.einsum(ring, *R, memory_limit=600),
              lambda: jnp.einsum(ring, *R))
        check(k + "memory_limit under jax.jit",
              lambda: jax.jit(lambda *r: contract.einsum(ring, *r, memory_limit=600))(*R),
              lambda: jax.jit(lambda *r: jnp.einsum(ring, *r))(*R))
        check(k + "mesh= on sharded inputs", lambda: contract.einsum(bmm, A, B, mesh=m1),
              lambda: jnp.einsum(bmm, A, B))
        want = np.cumsum(x, 0)
        out = check(k + "cumsum along the sharded axis", lambda: contract.cumsum(X, 0),
                    lambda: jnp.cumsum(X, 0), want)
        check(k + "cumsum under jax.jit", lambda: jax.jit(lambda u: contract.cumsum(u, 0))(X),
              lambda: jax.jit(lambda u: jnp.cumsum(u, 0))(X), want)
        if kind == "explicit" and out is not None:
            results[k + "cumsum keeps the input's sharding"] = (
                "ok" if out.sharding.is_equivalent_to(X.sharding, 4) else str(out.sharding.spec))
            check(k + "cumsum reverse int8", lambda: contract.cumsum(
                put(np.arange(64, dtype=np.int8).reshape(8, 8), m1, "x"), 0, reverse=True),
                None, np.cumsum(np.arange(64).reshape(8, 8)[::-1], 0)[::-1])
        # A 2-D mesh: free labels on different axes, and a summed sharded label.
        m, n = rng.standard_normal((8, 8), np.float32), rng.standard_normal((8, 8), np.float32)
        M, N = put(m, m2, "x", None), put(n, m2, None, "y")
        check(k + "2-D free labels", lambda: contract.einsum("ij,jk->ik", M, N),
              lambda: jnp.einsum("ij,jk->ik", M, N))
        Mj, Nj = put(m, m2, None, "x"), put(n, m2, "x", None)
        out = check(k + "2-D summed label", lambda: contract.einsum("ij,jk->ik", Mj, Nj),
                    lambda: jnp.einsum("ij,jk->ik", Mj, Nj), m @ n)
        if out is not None and not out.sharding.is_fully_replicated:
            results[k + "2-D summed label"] = f"sharding {out.sharding.spec}, want replicated"
        check(k + "vmap", lambda: jax.jit(jax.vmap(lambda u, v: contract.einsum("ij,jk->ik", u, v)))(A, B),
              lambda: jax.jit(jax.vmap(lambda u, v: jnp.einsum("ij,jk->ik", u, v)))(A, B))
        one = "abc,cde,efg,gha->"  # 320 B beyond its inputs: sliced to 100 B
        check(k + "vmap memory_limit", lambda: jax.jit(jax.vmap(
            lambda *r: contract.einsum(one, *r, memory_limit=100)))(*R),
              lambda: jax.jit(jax.vmap(lambda *r: jnp.einsum(one, *r)))(*R))
        with jax.set_mesh(m1):
            check(k + "grad", lambda: jax.jit(jax.grad(lambda u: contract.einsum(bmm, u, B).sum()))(A),
                  lambda: jax.jit(jax.grad(lambda u: jnp.einsum(bmm, u, B).sum()))(A))
        # mesh= on host arrays: sharded along the chosen labels, not copied.
        big = [rng.standard_normal((16, 8, 8), np.float32) for _ in range(2)]
        out = check(k + "mesh= on host arrays", lambda: contract.einsum(bmm, *big, mesh=m2),
                    None, np.einsum(bmm, *big))
        if out is not None:
            e = contract.expression(bmm, (16, 8, 8), (16, 8, 8), mesh=m2)
            placed = [jax.device_put(v, s) for v, s in zip(big, e.in_shardings)]
            # Twice on placed operands (the second call takes the placed fast path),
            # then on host arrays and on operands of another size (the checked path).
            calls = [e(*placed), e(*placed), e(*big)]
            try:
                e(*[v[:8] for v in big])
                calls = []  # a wrong shape must be refused
            except contract.ContractError:
                pass
            fine = (str(out.sharding.spec) == str(P(("x", "y"), None, None))
                    and all(s.spec == P(("x", "y"), None, None) for s in e.in_shardings)
                    and len(calls) == 3 and all(
                        np.allclose(c, np.einsum(bmm, *big), rtol=1e-4, atol=1e-4) for c in calls))
            results[k + "mesh= shards along the batch label"] = "ok" if fine else str(out.sharding)
        plan = contract.plan(bmm, A, B)
        results[k + "plan of sharded arrays"] = (
            "ok" if (kind == "explicit") == (getattr(plan, "shards", ()) == (("b", ("x",)),))
            else repr(getattr(plan, "shards", None)))
        try:
            contract.einsum(bmm, A, B, mesh=m2)
            results[k + "operands on another mesh"] = "no error"
        except contract.ContractError as e:
            results[k + "operands on another mesh"] = "ok" if "operand 0 is sharded over mesh" in str(
                e) else str(e)
    print(json.dumps(results))


@pytest.fixture(scope="module")
def device_results() -> dict[str, str]:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    code = "from tests.test_sharding import _device_checks; _device_checks()"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


CASES = ["einsum", "einsum under jax.jit", "sum", "batch_stats", "var under jax.jit",
         "contract.jit", "memory_limit", "memory_limit under jax.jit", "mesh= on sharded inputs", "2-D free labels", "vmap",
         "vmap memory_limit",
         "grad", "mesh= on host arrays", "mesh= shards along the batch label",
         "plan of sharded arrays", "operands on another mesh", "2-D summed label",
         "cumsum along the sharded axis", "cumsum under jax.jit"]
# Where jnp itself refuses (explicit axes), contract's answer is checked instead.
REFUSED = {"explicit 2-D summed label", "explicit cumsum along the sharded axis",
           "explicit cumsum under jax.jit"}


@pytest.mark.parametrize("kind", ["explicit", "auto"])
@pytest.mark.parametrize("case", CASES)
def test_sharded_call_matches_jnp(device_results, kind, case):
    name = f"{kind} {case}"
    assert device_results[name] == ("ok (jnp refuses)" if name in REFUSED else "ok")


def test_cumsum_along_a_sharded_axis_scans_blocks(device_results):
    assert device_results["explicit cumsum keeps the input's sharding"] == "ok"
    assert device_results["explicit cumsum reverse int8"] == "ok"
