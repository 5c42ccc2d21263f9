"""Install and cold-start figures: what a new user waits for.

Run: ``python -m bench.install_bench [--install]``.

Prints one table: the time of a fresh process from its start to the first
kernel-backed result (``import contract`` included) for the three kernels (a
complex64 GEMM, an int32 cumsum, a float32 conv), the planner's annealer on
a 200-tensor network, and ``contract doctor``. With ``--install`` it first
times ``pip wheel . --no-deps`` (the whole native build, in pip's isolated
build environment) from this checkout. There is no peer to compare with: the
figure to beat is the 13-20 s the first call took when the kernels were
compiled in the user's process (docs/install.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each snippet runs in a fresh interpreter; the clock starts before the import.
CASES = {
    "complex64 GEMM 256^2 (BLAS kernel)":
        "import numpy as np, contract\n"
        "a = np.ones((256, 256), np.complex64)\n"
        "contract.einsum('ij,jk->ik', a, a).block_until_ready()\n"
        "assert contract.native.status() == 'available'",
    "int32 cumsum 1e6 (scan kernel)":
        "import numpy as np, contract\n"
        "contract.cumsum(np.ones(10**6, np.int32), 0).block_until_ready()",
    "float32 conv 3x3 (conv kernel)":
        "import numpy as np, contract\n"
        "contract.conv(np.ones((4, 8, 32, 32), np.float32), np.ones((8, 8, 3, 3), np.float32),"
        " padding=1).block_until_ready()",
    "auto-hq plan, 200-tensor 3-regular graph (annealer)":
        "import contract\n"
        "from tests._helpers import ring_graph\n"
        "inputs, sizes = ring_graph(200, 1)\n"
        "eq = ','.join(''.join(sorted(t)) for t in inputs) + '->'\n"
        "contract.plan(eq, *[tuple(sizes[l] for l in sorted(t)) for t in inputs], optimize='auto-hq')",
    "contract doctor":
        "import contract\ncontract.doctor()",
}


def _cold(code: str) -> float:
    """Seconds from a fresh interpreter's first line to the end of ``code``."""
    timed = f"import time\n_t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)"
    done = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="also time pip wheel .")
    args = parser.parse_args()
    print("### Cold start (fresh process, import included; best of 3)\n")
    print("| workload | first result |\n|---|---|")
    if args.install:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q",
                            "-w", out], cwd=ROOT, check=True, capture_output=True)
            print(f"| pip wheel . (native build, isolated env) | {time.perf_counter() - start:.1f} s |")
    for name, code in CASES.items():
        print(f"| {name} | {min(_cold(code) for _ in range(3)):.2f} s |")


if __name__ == "__main__":
    main()
