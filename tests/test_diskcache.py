"""The opt-in plan cache on disk: hits across processes, atomic concurrent
writes, corrupted entries ignored and replaced, clearing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import contract
from contract.planner import cache as diskcache

SPEC, SHAPES = "ab,bc,cd->ad", [(3, 40), (40, 50), (50, 2)]


@pytest.fixture
def cache(tmp_path):
    contract.set_cache_dir(tmp_path)
    yield tmp_path
    contract.set_cache_dir(None)


def _entries(d):
    return sorted(d.glob("*.json"))


def test_store_then_load_in_this_process(cache):
    p = contract.plan(SPEC, *SHAPES, optimize="branch-2", dtype="int8")
    (entry,) = _entries(cache)
    contract.clear_caches(disk=False)  # force a miss in memory: the disk answers
    assert contract.plan(SPEC, *SHAPES, optimize="branch-2", dtype="int8") == p
    assert _entries(cache) == [entry]
    # Another dtype, option or shape is another entry.
    contract.plan(SPEC, *SHAPES, optimize="branch-2", dtype="float32")
    contract.plan(SPEC, *SHAPES, optimize="branch-1", dtype="int8")
    assert len(_entries(cache)) == 3
    assert contract.clear_caches() == 3 and _entries(cache) == []


def test_corrupted_entries_are_ignored_and_replaced(cache):
    p = contract.plan(SPEC, *SHAPES, optimize="greedy")
    (entry,) = _entries(cache)
    for junk in (b"", b"{trunc", b'{"key": "other", "plan": "{}"}', b"\xff\xfe", b"[1, 2]"):
        entry.write_bytes(junk)
        contract.clear_caches(disk=False)
        assert contract.plan(SPEC, *SHAPES, optimize="greedy") == p
        assert entry.read_bytes() != junk  # rewritten with the good plan


def test_environment_variable_and_off_switch(tmp_path):
    """A fresh process (the variable is read when nothing overrides it): the
    variable turns the cache on, ``set_cache_dir(None)`` turns it off again."""
    code = textwrap.dedent(f"""
        import contract
        from contract.planner import cache
        print(cache.cache_dir())
        contract.plan({SPEC!r}, *{SHAPES!r})
        print(cache.cache_info()["disk"]["entries"])
        contract.set_cache_dir(None)
        print(cache.cache_dir(), contract.clear_caches())
    """)
    env = {**os.environ, diskcache.ENV: str(tmp_path), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:3] == [str(tmp_path), "1", "None 0"]


def test_unusable_directory_is_a_clear_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("not a directory")
    with pytest.raises(contract.ContractError, match="cache directory"):
        contract.set_cache_dir(target / "sub")


_WORKER = textwrap.dedent("""
    import sys, contract
    from contract import plan_cache_info
    contract.set_cache_dir(sys.argv[1])
    n = int(sys.argv[2])
    plans = []
    for k in range(n):
        shapes = [(3, 4 + k), (4 + k, 5), (5, 2)]
        plans.append(contract.plan("ab,bc,cd->ad", *shapes, optimize="greedy"))
    print(plan_cache_info()["plans"]["misses"], sum(p.flops for p in plans))
""")


def test_two_processes_share_the_cache(tmp_path):
    def run(n):
        return subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), str(n)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # Two writers at once over the same keys: whole entries only, never a crash.
    first, second = run(12), run(12)
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert all(p.returncode == 0 for p in (first, second)), outs
    assert outs[0][0].split()[1] == outs[1][0].split()[1]
    assert len(_entries(tmp_path)) == 12 and not list(tmp_path.glob("*.tmp"))
    for entry in _entries(tmp_path):
        contract.Plan.from_json(__import__("json").loads(entry.read_text())["plan"])
    # A third process finds every plan on disk: nothing is rebuilt or rewritten.
    stamps = {e: e.stat().st_mtime_ns for e in _entries(tmp_path)}
    third = run(12)
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    assert out.split()[1] == outs[0][0].split()[1]
    assert {e: e.stat().st_mtime_ns for e in _entries(tmp_path)} == stamps


def test_set_cache_dir_rejects_a_non_path():
    with pytest.raises(contract.ContractError, match="takes a path or None, got int"):
        contract.set_cache_dir(123)
