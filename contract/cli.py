"""The ``contract`` command line (also ``python -m contract``).

Bad input prints one line, ``contract: error: ...``, on stderr and exits
with status 2; success exits 0.

>>> main(["plan", "ij,jk->ik", "--shapes", "2x3", "3x4"])  # doctest: +ELLIPSIS
spec        ij,jk->ik
...
0
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .errors import ContractError

__all__ = ["main", "parse_shape"]

_EXAMPLES = """\
examples:
  contract plan "ij,jk,kl->il" --shapes 8x16 16x32 32x4
  contract plan "ij,jk,kl->il" --shapes 8x16 16x32 32x4 --optimize dp --dtype bfloat16
  contract plan "bij,bjk->bik" --shapes 4x8x16 4x16x2 --json > plan.json
  contract plan "ij,jk,kl->il" --shapes 8x16 16x32 32x4 --plot plan.png --dot plan.dot
  contract plan "i,i->" --shapes 5 5          (a scalar operand is written "scalar")
  contract compare "ab,bc,cd,de->ae" --shapes 8x64 64x64 64x64 64x2 --measure
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and status 2, as for bad specs
        _fail(message)


def _fail(message: str) -> None:
    print(f"contract: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"8x16"`` → ``(8, 16)``; ``"scalar"`` or ``"()"`` → ``()``.

    >>> parse_shape("8x16"), parse_shape("5"), parse_shape("scalar")
    ((8, 16), (5,), ())
    """
    if text.strip().lower() in ("scalar", "()", ""):
        return ()
    try:
        dims = tuple(int(d) for d in text.lower().replace("*", "x").split("x"))
    except ValueError:
        raise ContractError(f"bad shape {text!r}: write sizes joined by 'x', e.g. 8x16") from None
    if any(d < 0 for d in dims):
        raise ContractError(f"bad shape {text!r}: sizes must not be negative")
    return dims


def _limit(text: str) -> int | str:
    """``--memory-limit``: bytes, or ``max_input``.

    >>> _limit("4096"), _limit("max_input")
    (4096, 'max_input')
    """
    if text == "max_input":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of bytes: {text!r}") from None


_PLOT_FORMATS = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".eps", ".ps", ".webp", ".tif", ".tiff")


def _check_output(path: str | None, what: str, formats: tuple[str, ...] = ()) -> None:
    """Refuse an output file that cannot be written *before* anything is printed."""
    if path is None:
        return
    if formats and os.path.splitext(path)[1].lower() not in formats:
        raise ContractError(f"cannot draw {path}: {what} takes one of {', '.join(formats)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ContractError(f"cannot write {path}: {folder} is not a writable directory")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="contract", description="Plan, inspect and compare einsum contractions.",
                epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("spec", help='einsum spec, e.g. "ij,jk->ik" (quote it)')
    common.add_argument("--shapes", nargs="+", required=True, metavar="SHAPE",
                        help="one shape per operand: 8x16, 5, or scalar")
    common.add_argument("--dtype", default="float32",
                        help="operand dtype (default float32), e.g. bfloat16, int8")
    common.add_argument("--memory-limit", type=_limit, default=None, metavar="BYTES",
                        help="slice the plan when its peak (the bytes it holds beyond the inputs: "
                             "intermediates and output; sliced, one slice and the output "
                             "accumulator) is over BYTES (a number of bytes, or max_input: the "
                             "largest input plus the output); the report shows the slicing")
    plan = sub.add_parser("plan", parents=[common], help="plan one contraction and report it",
                          epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    plan.add_argument("--optimize", default="auto",
                      help="optimizer: auto (default), auto-hq, greedy, dp, optimal, measure, ...")
    plan.add_argument("--progress", action="store_true",
                      help="draw a progress bar on stderr while contract's own planners "
                           "(auto, auto-hq, annealed-greedy) anneal; the plan is the same")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON instead")
    plan.add_argument("--plot", metavar="FILE", help="draw the plan to FILE (.png, .svg, .pdf)")
    plan.add_argument("--dot", metavar="FILE", help="write Graphviz text to FILE")
    cmp = sub.add_parser("compare", parents=[common], help="compare optimizers on one contraction",
                         epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmp.add_argument("--optimizers", nargs="+", metavar="NAME",
                     help="optimizers to run (default: auto greedy dp random-greedy-128 auto-hq)")
    cmp.add_argument("--measure", action="store_true", help="also compile and time each plan")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (errors exit with 2).

    Output cut short by the reader (``contract plan ... | head -1``) is not
    an error: the command stops quietly with status 0.
    """
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader is gone: point stdout at devnull so the interpreter's
        # final flush does not raise again, and stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# The names --progress can draw a bar for (contract's annealing planners).
_OURS = frozenset({"auto", "auto-hq", "annealed-greedy"})


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        import contract

        shapes = [parse_shape(s) for s in args.shapes]
        if args.command == "compare":
            print(contract.compare(args.spec, *shapes, optimizers=args.optimizers,
                                   measure=args.measure, dtype=args.dtype,
                                   memory_limit=args.memory_limit), flush=True)
            return 0
        _check_output(getattr(args, "plot", None), "--plot", _PLOT_FORMATS)
        _check_output(getattr(args, "dot", None), "--dot")
        optimize: object = args.optimize
        if args.progress and args.optimize.lower() in _OURS:
            # The same search as the name (the same path), as an object that reports.
            optimize = contract.optimizer(args.optimize.lower(), progress=True)
        p = contract.plan(args.spec, *shapes, optimize=optimize, dtype=args.dtype,
                          memory_limit=args.memory_limit)
        print(p.to_json(indent=1) if args.json else p, flush=True)
        if args.dot:
            with open(args.dot, "w", encoding="utf-8") as f:
                f.write(p.to_dot() + "\n")
        if args.plot:
            p.plot(args.plot)
    except ContractError as e:
        # One line: caret diagrams drop their caret row and keep the spec.
        _fail(" ".join(l.strip() for l in str(e).splitlines() if l.strip(" ^")))
    except BrokenPipeError:
        raise  # the reader left: main() stops quietly
    except OSError as e:
        _fail(f"cannot write {e.filename}: {e.strerror}")
    except ValueError as e:  # matplotlib: unknown image format
        _fail(f"cannot draw {args.plot}: {e}")
    return 0
