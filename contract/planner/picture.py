"""``plan.plot()``: the contraction tree and per-step costs, drawn with matplotlib.

Left panel: the tree, operands as boxes at the bottom, each pairwise step a
disc whose area grows with log10(FLOPs) and whose colour is its kind. Right
panels: per step, FLOPs and the size of the intermediate written (log scale).
matplotlib is optional (``pip install contract[plot]``); without it ``plot``
raises a ContractError saying so.

>>> import contract, tempfile, os
>>> p = contract.plan("ij,jk,kl->il", (8, 16), (16, 32), (32, 4))
>>> with tempfile.TemporaryDirectory() as d:
...     _ = plot(p, os.path.join(d, "plan.png"))
...     open(os.path.join(d, "plan.png"), "rb").read(4)
b'\\x89PNG'
"""

from __future__ import annotations

import math
import os
import warnings
from typing import TYPE_CHECKING, Any

from ..errors import ContractError
from .costs import costs, itemsize
from .report import human, ratio

if TYPE_CHECKING:
    from .model import Plan, SlicedPlan

__all__ = ["plot", "KIND_COLORS"]

# One colour per step kind (colour-blind-safe Okabe-Ito palette).
KIND_COLORS = {
    "GEMM": "#0072B2", "batched GEMM": "#56B4E9", "GEMV": "#009E73",
    "batched GEMV": "#8FD3B6", "dot": "#E69F00", "batched dot": "#F0E442",
    "outer": "#D55E00", "Hadamard": "#CC79A7", "reduction": "#999999",
    "diagonal": "#BBBBBB", "transpose": "#666666",
}
# Past this many steps leaf labels and per-step ticks are dropped.
_LABELLED = 40


def _tree(plan: "Plan") -> tuple[list[tuple[float, float]], list[tuple[int, int]]]:
    """Node positions (operands first, then one per step) and parent edges.

    Leaves are spread along x in the order an in-order walk meets them, so
    the tree draws without crossings; a step sits above its children, at
    height one more than the taller child.
    """
    n = len(plan.inputs)
    children: dict[int, tuple[int, int]] = {}
    live = list(range(n))
    for k, step in enumerate(plan.steps):
        i, j = step.operands
        children[n + k] = (live[i], live[j])
        live = live[:i] + live[i + 1 : j] + live[j + 1 :] + [n + k]
    x: dict[int, float] = {}
    y: dict[int, float] = {}
    order = iter(range(n))

    def place(node: int) -> None:
        stack = [(node, False)]
        while stack:
            v, done = stack.pop()
            if v not in children:
                x[v], y[v] = float(next(order)), 0.0
            elif not done:
                a, b = children[v]
                stack += [(v, True), (b, False), (a, False)]
            else:
                a, b = children[v]
                x[v], y[v] = (x[a] + x[b]) / 2, max(y[a], y[b]) + 1

    for root in live:
        place(root)
    edges = [(c, p) for p, kids in children.items() for c in kids]
    return [(x[v], y[v]) for v in range(n + len(plan.steps))], edges


def plot(plan: "Plan | SlicedPlan", path: str | os.PathLike | None = None, *, title: str | None = None,
         dpi: int = 150) -> Any:
    """Draw ``plan``; save to ``path`` (format from its suffix: .png, .svg,
    .pdf) when given. Returns the matplotlib Figure."""
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)  # no display needed to save a file
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ContractError("Plan.plot needs matplotlib: pip install 'contract[plot]'") from None

    n, steps = len(plan.inputs), plan.steps
    pos, edges = _tree(plan)
    named = any(len(l) > 1 for t in plan.inputs for l in t)
    join = " ".join if named else "".join
    fig = plt.figure(figsize=(13, 6.2), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[1.35, 1])
    ax_tree = fig.add_subplot(grid[:, 0])
    ax_flops = fig.add_subplot(grid[0, 1])
    ax_size = fig.add_subplot(grid[1, 1], sharex=ax_flops)
    spec = plan.spec if len(plan.spec) <= 70 else f"{n} operands -> {join(plan.output) or '()'}"
    fig.suptitle(title or f"{spec}   ({plan.optimize}: {human(plan.flops)} FLOPs, "
                 f"{ratio(plan.speedup)} fewer than naive, peak {human(plan.peak_bytes, 'B')}"
                 + (f", sliced {', '.join(plan.sliced)}: {plan.n_slices} slices" if plan.sliced else "")
                 + ")",
                 fontsize=11)

    # Tree.
    for c, p in edges:
        (x0, y0), (x1, y1) = pos[c], pos[p]
        ax_tree.plot([x0, x0, x1], [y0, y1, y1], color="#888888", lw=1, zorder=1)
    big = max((s.flops for s in steps), default=1)
    shrink = min(1.0, 20 / n)  # discs get smaller as the tree gets wider
    for k, step in enumerate(steps):
        x, y = pos[n + k]
        # Area in proportion to log10(FLOPs), relative to the costliest step.
        area = shrink * (60 + 500 * math.log10(1 + step.flops) / math.log10(1 + big))
        ax_tree.scatter([x], [y], s=area, color=KIND_COLORS.get(step.kind, "black"),
                        edgecolor="black", lw=0.6, zorder=3)
        if len(steps) <= _LABELLED:
            ax_tree.annotate(f"{k}: {join(step.output) or '()'}", (x, y), xytext=(13, 6),
                             textcoords="offset points", fontsize=8)
    leaf_x = [pos[v][0] for v in range(n)]
    ax_tree.scatter(leaf_x, [0] * n, marker="s", s=70 if n <= _LABELLED else 12,
                    color="white", edgecolor="black", zorder=3)
    if n <= _LABELLED:
        # Past 8 leaves the two-line labels collide side by side: stand them up.
        wide = n > 8
        for v in range(n):
            text = f"{v}: {join(plan.inputs[v]) or '()'}"
            ax_tree.annotate(text if wide else f"{text}\n{plan.shapes[v]}",
                             pos[v], xytext=(0, -10), textcoords="offset points",
                             ha="center", va="top", fontsize=8, rotation=90 if wide else 0)
    ax_tree.set_title("contraction tree (area ~ log FLOPs)", fontsize=10)
    ax_tree.set_ylabel("depth")
    ax_tree.set_xticks([])
    ax_tree.margins(x=0.12, y=0.18)
    for side in ("top", "right", "bottom"):
        ax_tree.spines[side].set_visible(False)
    ax_tree.yaxis.set_major_locator(MaxNLocator(integer=True))
    rows = costs(plan.slice if plan.sliced else plan)  # type: ignore[attr-defined]
    kinds = list(dict.fromkeys(c.kind for c in rows))
    ax_tree.legend(handles=[Line2D([], [], marker="o", ls="", color=KIND_COLORS.get(k, "black"),
                                   markeredgecolor="black", label=k) for k in kinds]
                   + [Line2D([], [], marker="s", ls="", color="white", markeredgecolor="black",
                             label="operand")],
                   loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(kinds) + 1, 6),
                   fontsize=8, frameon=False)

    # Per-step bars, log scale from a decade below the smallest so that
    # bar heights compare honestly.
    xs = list(range(len(rows)))
    colors = [KIND_COLORS.get(c.kind, "black") for c in rows]
    item = itemsize(plan.compute_dtype)
    panels = ((ax_flops, [c.flops for c in rows], "FLOPs", ""),
              (ax_size, [c.size * item for c in rows], f"output bytes ({plan.compute_dtype})", "B"))
    for ax, exact, label, unit in panels:
        if not rows:
            break
        # A pure copy (a final transpose, a diagonal: 0 FLOPs) gets no bar, only
        # its name: a bar of height "1" on a log axis would claim work it does not do.
        values = [v if v > 0 else float("nan") for v in exact]
        shown = [v for v in exact if v > 0] or [1]
        bars = ax.bar(xs, values, color=colors, edgecolor="black", lw=0.4)
        ax.set_yscale("log")
        ax.set_ylim(min(shown) / 10, max(shown) * 4)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        if len(rows) <= 10:  # more value labels than this overlap
            ax.bar_label(bars, [human(v, unit) if v > 0 else "" for v in exact], fontsize=7,
                         padding=2)
        for x, v, c in zip(xs, exact, rows):
            if v <= 0:
                ax.annotate(f"{c.kind}, no FLOPs" if unit == "" else "", (x, min(shown) / 10),
                            xytext=(0, 3), textcoords="offset points", ha="center",
                            fontsize=7, rotation=90, va="bottom")
    ax_flops.set_title("per step", fontsize=10)
    ax_flops.tick_params(labelbottom=False)
    ax_size.set_xlabel("step")
    if len(rows) <= _LABELLED:
        ax_size.set_xticks(xs, [c.name for c in rows], fontsize=8,
                           rotation=0 if len(rows) <= 12 else 90)
    if path is not None:
        with warnings.catch_warnings():
            # Labels outside the font (CJK axis names) draw as boxes; say it once, not per glyph.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig
