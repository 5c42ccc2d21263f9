"""The package around the core: plans that do not depend on the host, and
``contract doctor``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import contract

# A 60-tensor 3-regular network planned by auto-hq (partitions, annealing)
# and auto: the plan's path and cost, printed as JSON.
_PLAN = """
import json, sys
import numpy as np
import contract
from tests._helpers import ring_graph
inputs, sizes = ring_graph(60, 3)
eq = ",".join("".join(sorted(t)) for t in inputs) + "->"
shapes = [tuple(sizes[l] for l in sorted(t)) for t in inputs]
out = {}
for how in ("auto", "auto-hq"):
    p = contract.plan(eq, *shapes, optimize=how)
    out[how] = [p.path, p.flops]
print(json.dumps({"native": contract.native.status(), "plans": out}))
"""


def _run(code: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env},
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_plans_are_the_same_with_the_kernels_on_and_off() -> None:
    on = _run(_PLAN, CONTRACT_NATIVE="1", CONTRACT_CACHE_DIR="")
    off = _run(_PLAN, CONTRACT_NATIVE="0", CONTRACT_CACHE_DIR="")
    assert on["native"] == "available" and off["native"] == "off (CONTRACT_NATIVE=0)"
    assert on["plans"] == off["plans"]


def test_doctor_says_what_runs_where() -> None:
    facts = contract.doctor()
    assert json.loads(json.dumps(facts)) == facts
    assert facts["kernels"]["status"] == contract.native.status()
    assert facts["kernels"]["build"]["ffi_api"] is not None  # CI builds the kernels
    assert facts["jax"]["devices"] and isinstance(facts["jax"]["x64"], bool)
    assert set(facts["cpu"]["features"]) >= {"amx_bf16", "amx_int8"}
    assert facts["blas"]["name"] == contract.native.blas()


def test_contract_doctor_on_the_command_line() -> None:
    text = subprocess.run([sys.executable, "-m", "contract", "doctor"], capture_output=True,
                          text=True, timeout=120)
    assert text.returncode == 0 and text.stderr == "", text.stderr
    assert f"kernels.status {contract.native.status()}" in text.stdout
    as_json = subprocess.run([sys.executable, "-m", "contract", "doctor", "--json"],
                             capture_output=True, text=True, timeout=120)
    facts = json.loads(as_json.stdout)
    assert facts["kernels"]["build"]["jaxlib"] and facts["jax"]["backend"] == "cpu"


def test_the_report_and_the_cache_key_say_whether_kahypar_shaped_the_plan(tmp_path) -> None:
    code = ("import sys, json\n{block}"
            "import contract\n"
            "p = contract.plan('ab,bc,cd,de,ef,fg->ag', *[(4, 4)] * 6, optimize='auto-hq')\n"
            "print(json.dumps([p.strategy]))")
    cache = {"CONTRACT_CACHE_DIR": str(tmp_path)}
    with_it = _run(code.format(block=""), **cache)
    without = _run(code.format(block="sys.modules['kahypar'] = None\n"), **cache)
    assert with_it == ["auto-hq, KaHyPar bisections"]
    assert without == ["auto-hq, Python bisections: kahypar not installed"]
    # Two entries: a plan made with kahypar is never read back without it.
    assert len(list(tmp_path.rglob("*.json"))) == 2
