"""Run every benchmark, write bench/RESULTS.md and a ratio chart (bench/ratios.png).

Run: ``python -m bench [--quick] [--only einsum_bench,ops_bench]``.

Each benchmark module runs in its own process (so one module's JAX settings,
e.g. forced host devices, cannot leak into another) and prints Markdown
tables whose last column is the ratio contract / fastest peer. This script
collects those tables verbatim and draws one bar per row.

As every ``python -m bench...`` run, this process drops ``OPENBLAS_CORETYPE``
and ``OPENBLAS_L2_SIZE`` first (see ``bench/__init__.py``), so the modules it
starts inherit an environment without them; RESULTS.md records the library
versions, thread counts and the BLAS kernel NumPy picked.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = ["einsum_bench", "ops_bench", "cumsum_bench", "window_bench", "semiring_bench", "jit_bench",
           "kernel_bench", "planner_bench", "scale_bench"]
# The full planner comparison runs cotengra's 128-trial hyper-optimizer on
# 12 networks (about an hour on 2 cores): run it alone with
# `python -m bench.planner_bench`; here it runs in its quick mode.
QUICK_ONLY = {"planner_bench"}
# Rows whose ratio is not against a peer (sliced / unsliced time, XLA's dot /
# the BLAS kernel) stay out of the chart.
NOT_IN_CHART = {"scale_bench", "kernel_bench"}
_RATIO = re.compile(r"^\|(?P<name>[^|]+)\|.*\|\s*(?P<ratio>[0-9.e+-]+|nan)x\s*\|\s*$")


def ratios(markdown: str, tag: str = "") -> list[tuple[str, float]]:
    """(workload, ratio) for every table row ending in a ratio cell.

    Tables headed "first call" (compile-time overhead, not run time) are
    left out; ``tag`` prefixes each workload name.

    >>> ratios("### t\n| a | 1 ms | 2 ms | 0.50x |\n| b | - | - | nanx |", "x")
    [('x: a', 0.5)]
    """
    out = []
    skip = False
    for line in markdown.splitlines():
        if line.startswith("#"):
            skip = "first call" in line
        m = _RATIO.match(line)
        if m and m["ratio"] != "nan" and not skip:
            name = m["name"].strip()
            out.append((f"{tag}: {name}" if tag else name, float(m["ratio"])))
    return out


def chart(rows: list[tuple[str, float]], path: Path) -> None:
    """Horizontal bars of contract / fastest peer, with the 1.0 parity line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(13, 0.3 * len(rows) + 1.4))
    names = [n if len(n) <= 50 else n[:47] + "..." for n, _ in rows][::-1]
    values = [max(r, 1e-3) for _, r in rows][::-1]  # a 0.000x row still shows
    colors = ["#2a9d8f" if v <= 1.0 else "#e76f51" for v in values]
    ax.barh(names, values, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("time ratio contract / fastest peer (log scale; < 1: contract is faster)")
    # Labels give the measured ratio, not the bar's clamped length.
    for y, (v, (_, r)) in enumerate(zip(values, rows[::-1])):
        ax.text(v * 1.05, y, f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x", va="center", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="", help="comma-separated module names")
    p.add_argument("--chart-only", action="store_true",
                   help="redraw ratios.png from the existing RESULTS.md without running anything")
    p.add_argument("--env", action="store_true",
                   help="print library versions, threads and NumPy's BLAS kernel, and stop")
    args = p.parse_args()
    if args.env:
        from .common import environment

        print("\n".join(environment()))
        return
    if args.chart_only:
        rows = []
        for section in (HERE / "RESULTS.md").read_text().split("\n## ")[1:]:
            name = section.split()[0]
            if name not in NOT_IN_CHART:
                rows += ratios(section, name.replace("_bench", ""))
        chart(rows, HERE / "ratios.png")
        return
    from .common import environment, machine

    print("\n".join(environment()) + "\n", flush=True)
    chosen = [m for m in MODULES if not args.only or m in args.only.split(",")]
    sections, all_rows = [], []
    for name in chosen:
        if not (HERE / f"{name}.py").exists():
            continue
        quick = args.quick or name in QUICK_ONLY
        cmd = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if quick else [])
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        took = time.perf_counter() - start
        body = proc.stdout.strip() if proc.returncode == 0 else (
            f"FAILED (exit {proc.returncode}):\n```\n{proc.stderr[-2000:]}\n```")
        mode = " (quick mode)" if quick and not args.quick else ""
        print(f"## {name}{mode} ({took:.0f} s)\n\n{body}\n", flush=True)
        sections.append(f"## {name}{mode}\n\n{body}\n")
        if name not in NOT_IN_CHART:
            all_rows += ratios(proc.stdout, name.replace("_bench", ""))
    command = "python -m bench" + (" --quick" if args.quick else "")
    if args.only:
        command += f" --only {args.only}"
    text = (f"# Benchmark results\n\nMade by `{command}` on {machine()}, "
            f"{time.strftime('%Y-%m-%d')}. Ratio = contract / fastest peer (< 1: contract "
            f"is faster). Each module ran in one process: contract and its peers were timed "
            f"side by side after warm-up, in rounds with the order rotated each round, fast "
            f"calls looped to samples of at least 0.2 s, the process idle between systems; "
            f"the best sample counts.\n\n" + "\n".join(environment()) +
            "\n\n![ratios](ratios.png)\n\n" + "\n".join(sections))
    (HERE / "RESULTS.md").write_text(text)
    if all_rows:
        chart(all_rows, HERE / "ratios.png")


if __name__ == "__main__":
    main()
