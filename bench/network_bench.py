"""Tensor networks at device scale: sliced planning, one-shot amplitudes, overflow.

Run: ``python -m bench.network_bench [--quick]`` (about 15 minutes; ``--quick``
caps cotengra at 10 s and runs one row of each table). Needs quimb and
cotengra (with cotengrust and kahypar): bench dependencies only.

Networks: Sycamore-style circuits (:func:`sycamore`): a ``rows x cols`` grid,
each cycle a random sqrt(X)/sqrt(Y)/sqrt(W) on every qubit then fSim(pi/2,
pi/6) on one of the four ABCD edge patterns; the amplitude of a random
bitstring, simplified by quimb's ``ADCRS``; complex64.

1. **Sliced planning.** ``memory_limit = 8 * 2^k`` bytes (complex64) for
   contract's ``auto`` and ``auto-hq``, against cotengra's
   ``HyperOptimizer(max_time=120, parallel=False, slicing_reconf_opts={"target_size": 2^k})``
   (its target bounds the largest intermediate only; ours the whole peak).
   FLOPs of every plan are recounted by cotengra (``ContractionTree.from_path``
   on the path run, the sliced labels removed, ``total_flops()``: all slices).
2. **One-shot amplitude**, each system in a fresh process: contract's first
   ``einsum`` (plan + run; a large plan's first call runs on the host, see
   ``contract/backend/policy.py``), its second call (XLA compiles) and a
   repeat; quimb's ``tn.contract(all, optimize="auto")`` on NumPy (its path
   search included) and a repeat.
3. **Sliced contraction** that does not fit unsliced: the result against the
   unsliced one, and the peak RSS rise of a warmed-up process during a call
   (sampled from ``/proc/self/statm``), against budget + inputs.
4. **Overflow**: a PEPS 8x8, bond 2, norm whose value leaves float32, with
   ``strip_exponent=True``, against quimb's float64 contraction.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import opt_einsum

from bench.common import environment, parser
from bench.planner_bench import fsim_circuit

__all__ = ["main", "sycamore"]

Network = tuple[list[tuple[str, ...]], list[np.ndarray]]


def sycamore(rows: int, cols: int, cycles: int, seed: int = 0) -> Network:
    """The simplified amplitude network of a random Sycamore-style circuit
    (:func:`bench.planner_bench.fsim_circuit`) for a random bitstring: each
    tensor's labels and its complex64 array."""
    rng = random.Random(seed)
    circ = fsim_circuit(rows, cols, cycles, rng)
    tn = circ.amplitude_tn("".join(rng.choice("01") for _ in range(circ.N)))
    tn.full_simplify_("ADCRS", output_inds=[])
    tn.astype_("complex64")
    return [tuple(t.inds) for t in tn], [t.data for t in tn]


def _spec(inputs: list[tuple[str, ...]]) -> str:
    sym: dict[str, str] = {}
    terms = ["".join(sym.setdefault(i, opt_einsum.get_symbol(len(sym))) for i in t)
             for t in inputs]
    return ",".join(terms) + "->"


def _recount(plan: Any) -> float:
    """log10 of cotengra's total FLOPs (all slices) for ``plan``'s path and cuts."""
    import cotengra

    p = plan.slice if hasattr(plan, "slice") else plan
    inputs = [tuple(pr.labels) for pr in p.preps]
    tree = cotengra.ContractionTree.from_path(inputs, (), dict(plan.base.sizes if hasattr(
        plan, "base") else plan.sizes), path=p.path)
    for label in getattr(plan, "labels", ()):
        tree.remove_ind_(label)
    return math.log10(tree.total_flops())


def sliced_rows(quick: bool) -> list[str]:
    import cotengra

    import contract

    cap = 10 if quick else 120
    rows = [(14, 22), (14, 27), (20, 27), (20, 30)]
    lines = ["| circuit (tensors), k | contract `auto` | contract `auto-hq` | "
             f"cotengra HyperOptimizer ({cap} s) | `auto` ≤ 10 s | `auto-hq` FLOPs ≤ cotengra's, ≤ 1/10 time |",
             "|---|---|---|---|---|---|"]
    nets: dict[int, Network] = {}
    for cycles, k in rows[:1] if quick else rows:
        inputs, arrays = nets.setdefault(cycles, sycamore(7, 8, cycles))
        spec, shapes = _spec(inputs), [a.shape for a in arrays]
        cells, ours = [], {}
        for opt in ("auto", "auto-hq"):
            start = time.perf_counter()
            p = contract.plan(spec, *shapes, dtype="complex64", optimize=opt,
                              memory_limit=8 * 2**k)
            seconds = time.perf_counter() - start
            ours[opt] = (_recount(p), seconds)
            cells.append(f"{ours[opt][0]:.2f} · {p.n_slices} slices · {seconds:.1f} s")
        sym = {l: opt_einsum.get_symbol(n) for n, l in enumerate(dict.fromkeys(
            l for t in inputs for l in t))}
        ins = [tuple(sym[l] for l in t) for t in inputs]
        sizes = {sym[l]: d for t, a in zip(inputs, arrays) for l, d in zip(t, a.shape)}
        opt = cotengra.HyperOptimizer(max_time=cap, parallel=False, progbar=False,
                                      slicing_reconf_opts={"target_size": 2**k})
        start = time.perf_counter()
        tree = opt.search(ins, (), sizes)
        ctg_seconds = time.perf_counter() - start
        ctg = math.log10(tree.total_flops())
        cells.append(f"{ctg:.2f} · {tree.nslices} slices · {ctg_seconds:.1f} s")
        hq, hq_s = ours["auto-hq"]
        lines.append(
            f"| 7x8, {cycles} cycles ({len(inputs)}), k={k} | " + " | ".join(cells)
            + f" | {'yes' if ours['auto'][1] <= 10 else 'no'} ({ours['auto'][1]:.1f} s)"
            + f" | {'yes' if hq <= ctg and hq_s <= ctg_seconds / 10 else 'no'}"
            + f" (Δ{hq - ctg:+.2f}, ×{hq_s / ctg_seconds:.2f} time) |")
        print(lines[-1], file=sys.stderr, flush=True)  # progress; the table comes at the end
    return lines


_CONTRACT = """
import time, pickle, sys
t0 = time.perf_counter()
import jax, contract
t1 = time.perf_counter()
spec, arrays = pickle.load(open(sys.argv[1], "rb"))
times = []
for _ in range(3):
    t = time.perf_counter(); v = complex(contract.einsum(spec, *arrays)); times.append(time.perf_counter() - t)
p = contract.plan(spec, *arrays)
f = jax.jit(lambda *x: contract.einsum(spec, *x))
t = time.perf_counter(); f.lower(*arrays).compile(); compile_s = time.perf_counter() - t
print(t1 - t0, *times, compile_s, v.real, v.imag, len(p.steps))
"""

_QUIMB = """
import time, pickle, sys
t0 = time.perf_counter()
import quimb.tensor as qtn
t1 = time.perf_counter()
inputs, arrays = pickle.load(open(sys.argv[1], "rb"))
tn = qtn.TensorNetwork([qtn.Tensor(a, inds=ix) for a, ix in zip(arrays, inputs)])
times = []
for _ in range(2):
    t = time.perf_counter(); v = complex(tn.contract(all, optimize="auto", output_inds=())); times.append(time.perf_counter() - t)
print(t1 - t0, *times, v.real, v.imag)
"""


def _fresh(code: str, data: Any) -> list[float]:
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
        pickle.dump(data, f)
    try:
        out = subprocess.run([sys.executable, "-c", code, f.name], capture_output=True,
                             text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    finally:
        os.unlink(f.name)
    return [float(x) for x in out.stdout.split()]


def one_shot_rows(quick: bool) -> list[str]:
    grids = [(6, 6, 12), (6, 7, 12), (7, 8, 10)]
    lines = ["| circuit (tensors) | contract first call (plan + run) | its second call (compiles) "
             "| repeat | XLA compile alone | quimb first `contract` | quimb repeat | first-call ratio | ≤ 1/2 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rows, cols, cycles in grids[:1] if quick else grids:
        inputs, arrays = sycamore(rows, cols, cycles)
        ours = _fresh(_CONTRACT, (_spec(inputs), arrays))
        theirs = _fresh(_QUIMB, (inputs, arrays))
        a, b = complex(ours[5], ours[6]), complex(theirs[3], theirs[4])
        assert abs(a - b) <= 1e-3 * abs(b), (a, b)
        ratio = ours[1] / theirs[1]
        lines.append(f"| {rows}x{cols}, {cycles} cycles ({len(inputs)}; {int(ours[7])} steps) "
                     f"| {ours[1]:.2f} s | {ours[2]:.2f} s | {ours[3]:.3f} s | {ours[4]:.2f} s "
                     f"| {theirs[1]:.2f} s | {theirs[2]:.3f} s | {ratio:.2f} "
                     f"| {'yes' if ratio <= 0.5 else 'no'} |")
        print(lines[-1], file=sys.stderr, flush=True)  # progress; the table comes at the end
    return lines


_SLICED = """
import pickle, sys, threading, time, os
import numpy as np, jax, contract
spec, arrays, k = pickle.load(open(sys.argv[1], "rb"))
limit = 8 * 2**k
page = os.sysconf("SC_PAGE_SIZE")
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page
p = contract.plan(spec, *arrays, memory_limit=limit)
e = contract.expression(spec, *[a.shape for a in arrays], dtype="complex64", memory_limit=limit)
xs = [jax.device_put(a) for a in arrays]
v = complex(e(*xs))  # warm: compiled and run once
peak, done = [rss()], []
def watch():
    while not done:
        peak.append(rss()); time.sleep(0.0005)
before = rss(); w = threading.Thread(target=watch); w.start()
v = complex(e(*xs).block_until_ready()); done.append(1); w.join()
whole = complex(contract.einsum(spec, *arrays))
inputs = sum(a.nbytes for a in arrays)
print(v.real, v.imag, whole.real, whole.imag, max(peak) - before, limit, inputs, p.n_slices, p.base.peak_bytes)
"""


def sliced_contraction_rows(quick: bool) -> list[str]:
    lines = ["| circuit (tensors), budget | slices | unsliced peak | sliced result vs unsliced "
             "| peak RSS rise | budget + inputs | ≤ budget + inputs + 10% |",
             "|---|---|---|---|---|---|---|"]
    inputs, arrays = sycamore(6, 6, 12)
    k = 18
    out = _fresh(_SLICED, (_spec(inputs), arrays, k))
    sliced, whole = complex(out[0], out[1]), complex(out[2], out[3])
    rise, limit, held = out[4], out[5], out[6]
    lines.append(f"| 6x6, 12 cycles ({len(inputs)}), 8·2^{k} B | {int(out[7])} "
                 f"| {out[8] / 2**20:.1f} MiB | rel. diff {abs(sliced - whole) / abs(whole):.1e} "
                 f"| {rise / 2**20:.2f} MiB | {(limit + held) / 2**20:.2f} MiB "
                 f"| {'yes' if rise <= 1.1 * (limit + held) else 'no'} |")
    return lines


def overflow_rows() -> list[str]:
    import quimb.tensor as qtn

    import contract

    # Bond 2, not the 4: the exact norm of an 8x8 bond-4 PEPS holds
    # 2^37 elements at its widest (bench/PLANNER.md), past this machine's
    # memory for quimb and contract alike; bond 2 overflows float32 the same way.
    peps = qtn.PEPS.rand(8, 8, bond_dim=2, seed=0)
    peps.multiply_each_(8.0)  # the norm leaves float32
    tn = peps.make_norm()
    inputs = [tuple(t.inds) for t in tn]
    arrays = [t.data.astype(np.float32) for t in tn]
    start = time.perf_counter()
    # cotengra in this process (its "auto-hq" preset forks a pool beside JAX's threads).
    import cotengra

    search = cotengra.HyperOptimizer(max_repeats=32, parallel=False, progbar=False)
    reference = tn.contract(all, output_inds=(), optimize=search)
    quimb_s = time.perf_counter() - start
    log_ref = math.log10(abs(reference))
    mantissa, exponent = contract.einsum(_spec(inputs), *arrays, strip_exponent=True)
    ours = math.log10(abs(float(mantissa))) + float(exponent)
    plain = float(contract.einsum(_spec(inputs), *arrays))
    return ["| network | quimb float64 log10(norm) | contract float32 `strip_exponent` log10 "
            "| difference | plain float32 result |",
            "|---|---|---|---|---|",
            f"| PEPS 8x8, bond 2, norm ({len(arrays)} tensors) | {log_ref:.5f} ({quimb_s:.1f} s) "
            f"| {ours:.5f} | {ours - log_ref:+.1e} | {plain} |"]


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    sections = [("Sliced planning (log10 FLOPs of all slices, recounted by cotengra)",
                 lambda: sliced_rows(args.quick)),
                ("One-shot amplitude, fresh processes", lambda: one_shot_rows(args.quick)),
                ("A sliced contraction that does not fit unsliced",
                 lambda: sliced_contraction_rows(args.quick)),
                ("Overflow: strip_exponent", overflow_rows)]
    print("\n".join(environment()))
    for title, rows in sections:
        print(f"\n### {title}\n")
        print("\n".join(rows()), flush=True)


if __name__ == "__main__":
    main()
