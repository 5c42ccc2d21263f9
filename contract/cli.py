"""The ``contract`` command line (also ``python -m contract``).

A contraction is a spec with ``--shapes`` (one per operand) or ``--size``
(one per label), or a JSON network file (``--network``, :func:`read_network`).
Bad input prints one line, ``contract: error: ...``, on stderr and exits
with status 2; success exits 0.

>>> main(["plan", "ij,jk->ik", "--shapes", "2x3", "3x4"])  # doctest: +ELLIPSIS
spec        ij,jk->ik
...
0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from .errors import ContractError
from .machine import render

if TYPE_CHECKING:
    from .planner import Plan

__all__ = ["main", "parse_shape", "parse_sizes", "read_network"]

_EXAMPLES = """\
examples:
  contract plan "ij,jk,kl->il" --shapes 8x16 16x32 32x4
  contract plan "ij,jk,kl->il" --shapes 8x16 16x32 32x4 --optimize dp --dtype bfloat16
  contract plan "bij,bjk->bik" --shapes 4x8x16 4x16x2 --json > plan.json
  contract plan "ij,jk,kl->il" --shapes 8x16 16x32 32x4 --plot plan.png --dot plan.dot
  contract plan "i,i->" --shapes 5 5          (a scalar operand is written "scalar")
  contract plan "ij,jk,kl->il" --size i=8,j=16,k=32,l=4
  contract plan --network net.json --optimize auto-hq
  contract doctor --json                      (what runs where on this machine)
        (net.json: {"eq": "ab,bc->ac", "shapes": [[2, 3], [3, 4]]}, or opt_einsum's
         {"inputs": [["a", "b"], ["b", "c"]], "output": ["a", "c"], "size_dict": {"a": 2, ...}})
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


def parse_sizes(items: Sequence[str]) -> dict[str, int]:
    """``--size``: ``["i=8,j=16", "k=4"]`` → ``{"i": 8, "j": 16, "k": 4}``.

    >>> parse_sizes(["i=8,j=16", "k=4"])
    {'i': 8, 'j': 16, 'k': 4}
    >>> parse_sizes(["i=8,i=9"])
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: --size gives label 'i' two sizes: 8 and 9
    """
    sizes: dict[str, int] = {}
    for item in (part for text in items for part in text.split(",") if part.strip()):
        label, eq, size = (x.strip() for x in item.partition("="))
        if not (label and eq and size.isdecimal()):
            raise ContractError(f"bad --size {item!r}: write label=size, e.g. i=8,j=16")
        if sizes.setdefault(label, int(size)) != int(size):
            raise ContractError(
                f"--size gives label {label!r} two sizes: {sizes[label]} and {int(size)}")
    return sizes


def _sized(spec: str, sizes: dict[str, int]) -> list[tuple[int, ...]]:
    """The operand shapes ``sizes`` gives the labels of ``spec``."""
    from .spec import ELLIPSIS, parse

    parsed = parse(spec)
    labels = {l for t in parsed.inputs for l in t}
    if ELLIPSIS in labels:
        raise ContractError(f"--size cannot size the dimensions '...' stands for in "
                            f"'{spec}': give --shapes")
    for label in sizes:
        if label not in labels:
            raise ContractError(f"--size gives label {label!r}, which spec '{spec}' does not have")
    for n, term in enumerate(parsed.inputs):
        for label in term:
            if label not in sizes:
                raise ContractError(f"--size gives no size for label {label!r} "
                                    f"(operand {n} of spec '{spec}')")
    return [tuple(sizes[l] for l in term) for term in parsed.inputs]


def read_network(path: str) -> tuple[str, list[tuple[int, ...]]]:
    """``--network``: the spec and shapes a JSON file holds, in one of two forms:
    ``{"eq": "ab,bc->ac", "shapes": [[2, 3], [3, 4]]}``, or opt_einsum's
    ``{"inputs": [["a", "b"], ["b", "c"]], "output": ["a", "c"], "size_dict": {"a": 2, ...}}``
    whose labels are strings. Labels that are not single letters (``"bond_3"``,
    ``"0"``) are renamed as opt_einsum renames them (``get_symbol``, in order
    of first appearance); the report shows the new names.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ContractError(f"cannot read network {path}: {getattr(e, 'strerror', e)}") from None
    try:
        return _network(json.loads(text, object_pairs_hook=_unique))
    except ContractError as e:  # before ValueError: it is one
        raise ContractError(f"network {path}: {e}") from None
    except ValueError as e:
        raise ContractError(f"network {path} is not JSON: {e}") from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json keeps the last silently):
    in ``size_dict``, two sizes for one label."""
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ContractError(f"key {key!r} is given twice: {doc[key]!r} and {value!r}")
        doc[key] = value
    return doc


_FORMS = {frozenset({"eq", "shapes"}), frozenset({"inputs", "output", "size_dict"})}


def _network(doc: Any) -> tuple[str, list[tuple[int, ...]]]:
    """Check a decoded network file; its spec and shapes."""
    keys = frozenset(doc) if isinstance(doc, dict) else None
    if keys not in _FORMS:
        got = ", ".join(sorted(keys)) if keys is not None else f"a JSON {type(doc).__name__}"
        raise ContractError(f"expected an object with keys eq and shapes, or inputs, output and "
                            f"size_dict; got {got or 'an empty object'}")
    if "eq" in keys:
        if not isinstance(doc["eq"], str):
            raise ContractError(f"eq must be a string, got {doc['eq']!r}")
        shapes = _list(doc["shapes"], "shapes")
        return doc["eq"], [tuple(_size(d, f"shapes[{n}]") for d in _list(s, f"shapes[{n}]"))
                           for n, s in enumerate(shapes)]
    inputs = [[_label(l, f"inputs[{n}]") for l in _list(t, f"inputs[{n}]")]
              for n, t in enumerate(_list(doc["inputs"], "inputs"))]
    output = [_label(l, "output") for l in _list(doc["output"], "output")]
    sizes = doc["size_dict"]
    if not isinstance(sizes, dict):
        raise ContractError(f"size_dict must map labels to sizes, got {sizes!r}")
    for n, term in enumerate(inputs):
        for label in term:
            if label not in sizes:
                raise ContractError(f"size_dict has no size for label {label!r} of inputs[{n}]")
    seen = {l for t in inputs for l in t}
    for label in output:
        if label not in seen:
            raise ContractError(f"output label {label!r} is in no input")
    if len(set(output)) != len(output):
        raise ContractError(f"output lists a label twice: {output}")
    shapes = [tuple(_size(sizes[l], f"size_dict[{l!r}]") for l in t) for t in inputs]
    return _spec(inputs, output), shapes


def _list(x: Any, what: str) -> list[Any]:
    if not isinstance(x, list):
        raise ContractError(f"{what} must be a list, got {x!r}")
    return x


def _label(x: Any, what: str) -> str:
    if not isinstance(x, str) or not x:
        raise ContractError(f"{what} holds {x!r}: labels are non-empty strings")
    return x


def _size(x: Any, what: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise ContractError(f"{what} holds {x!r}: sizes are non-negative integers")
    return x


def _spec(inputs: list[list[str]], output: list[str]) -> str:
    """The einsum spec of string labels: as they are when the spec grammar
    reads each back as one label, else renamed as opt_einsum does.

    >>> _spec([["a", "b"], ["b", "c"]], ["a", "c"]), _spec([["x0", "x1"], ["x1"]], [])
    ('ab,bc->ac', 'ab,b->')
    """
    import opt_einsum

    from .spec import parse

    def text(name: dict[str, str]) -> str:
        terms = ",".join("".join(name[l] for l in t) for t in inputs)
        return terms + "->" + "".join(name[l] for l in output)

    labels = dict.fromkeys(l for t in inputs for l in t)
    plain = text({l: l for l in labels})
    try:
        if parse(plain).inputs == tuple(map(tuple, inputs)):
            return plain
    except ContractError:
        pass
    return text({l: opt_einsum.get_symbol(k) for k, l in enumerate(labels)})


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
    common.add_argument("spec", nargs="?",
                        help='einsum spec, e.g. "ij,jk->ik" (quote it); not with --network')
    sizes = common.add_mutually_exclusive_group(required=True)
    sizes.add_argument("--shapes", nargs="+", metavar="SHAPE",
                       help="one shape per operand: 8x16, 5, or scalar")
    sizes.add_argument("--size", nargs="+", metavar="LABEL=N",
                       help="the size of each label instead: i=8,j=16,k=32")
    sizes.add_argument("--network", metavar="FILE",
                       help='spec and sizes from a JSON file: {"eq": ..., "shapes": [...]} or '
                            'opt_einsum\'s {"inputs": ..., "output": ..., "size_dict": ...}')
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
    doctor = sub.add_parser("doctor", help="what runs where on this machine: the CPU kernels and "
                            "their build, BLAS, CPU features, jax/jaxlib, devices, x64")
    doctor.add_argument("--json", action="store_true", help="print the facts as JSON instead")
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


def _operands(args: argparse.Namespace) -> tuple[str, list[tuple[int, ...]]]:
    """The spec and shapes of the command line: SPEC with --shapes or --size, or --network."""
    if args.network is not None:
        if args.spec is not None:
            raise ContractError(f"--network {args.network} holds the spec: drop '{args.spec}'")
        return read_network(args.network)
    if args.spec is None:
        raise ContractError("the spec is missing: give SPEC with --shapes or --size, "
                            "or --network FILE")
    if args.size is not None:
        return args.spec, _sized(args.spec, parse_sizes(args.size))
    return args.spec, [parse_shape(s) for s in args.shapes]


def _named(p: "Plan", name: str) -> "Plan":
    """The unsliced plan that ``--progress`` made with the optimizer object
    called ``name``, named as ``optimize=name`` names it: the object runs the
    same search (the same path), but plans name objects by their class."""
    from .planner import auto_strategy
    from .planner.search import ran as reported

    if p.strategy == "trivial":  # nothing to order: no optimizer ran
        return p
    ran = auto_strategy([frozenset(q.labels) for q in p.preps]) if name == "auto" else name
    return replace(p, optimize=name, strategy=reported(ran))


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        import contract

        from .planner import fit

        if args.command == "doctor":
            facts = contract.doctor()
            print(json.dumps(facts, indent=1) if args.json else render(facts), flush=True)
            return 0
        spec, shapes = _operands(args)
        if args.command == "compare":
            print(contract.compare(spec, *shapes, optimizers=args.optimizers,
                                   measure=args.measure, dtype=args.dtype,
                                   memory_limit=args.memory_limit), flush=True)
            return 0
        _check_output(getattr(args, "plot", None), "--plot", _PLOT_FORMATS)
        _check_output(getattr(args, "dot", None), "--dot")
        name = args.optimize.lower()
        if args.progress and name in _OURS:
            # The same search as the name (the same path), as an object that
            # reports; then sliced as a named plan is (a fresh search for the
            # sliced sizes is tried for names only).
            drawn = contract.optimizer(name, progress=True)
            p = _named(contract.plan(spec, *shapes, optimize=drawn, dtype=args.dtype), name)
            if args.memory_limit is not None:
                p = fit(p, args.memory_limit)
        else:
            p = contract.plan(spec, *shapes, optimize=args.optimize, dtype=args.dtype,
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
