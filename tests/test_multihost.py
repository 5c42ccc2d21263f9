"""Several hosts on one machine: docs/scaling.md's recipe, run in 2 processes.

Each process has 2 forced CPU devices; ``jax.distributed.initialize`` joins
them into one 4-device mesh (CPU collectives over Gloo) after ``import
contract``. The recipe checks its own values (each process its blocks of the
global results); here both processes must finish, see 4 devices, give the
same output shardings and print the same plan. Bounded: the processes are
killed after ``TIMEOUT`` seconds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import contract

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- multihost recipe: tests/test_multihost.py runs this block -->"
TIMEOUT = 150


def _recipe() -> str:
    """The fenced Python block that follows the marker in docs/scaling.md."""
    text = (ROOT / "docs" / "scaling.md").read_text()
    assert MARKER in text, "docs/scaling.md lost its multihost recipe marker"
    block = text.split(MARKER, 1)[1].split("```python\n", 1)[1]
    return block.split("\n```", 1)[0] + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_share_one_mesh(tmp_path: Path) -> None:
    script = tmp_path / "recipe.py"
    script.write_text(_recipe())
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = []
    for i in range(2):
        env = {**base, "COORDINATOR": f"127.0.0.1:{port}", "NUM_PROCESSES": "2",
               "PROCESS_ID": str(i), "JAX_PLATFORMS": "cpu",
               "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
               "PYTHONPATH": os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")])}
        procs.append(subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, err[-3000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:  # a process stuck waiting for its peer stops here
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert sorted(o["process"] for o in outs) == [0, 1]
    assert all(o["devices"] == 4 for o in outs)
    assert outs[0]["sharding"] == outs[1]["sharding"]
    assert outs[0]["sharding"]["bij,bjk->bik"] == "P('batch', None, None)"
    assert outs[0]["sharding"]["mesh="] == "P('batch', None, None)"
    plans = [contract.Plan.from_json(json.dumps(o["plan"])) for o in outs]
    assert plans[0] == plans[1]
    assert plans[0].shards == (("b", ("batch",)),) and plans[0].mesh == (("batch", 4),)
