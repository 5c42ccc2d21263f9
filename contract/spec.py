"""Parse einsum specs into a frozen, hashable :class:`Spec`; bind it to shapes.

Three spellings are accepted and all become the same ``Spec``:

* NumPy's string grammar: ``"ij,jk->ik"``, implicit output ``"ij,jk"``,
  ``...`` ellipsis, repeated labels (``"ii->i"``), scalars (``",i->i"``).
  Any letter (and any other non-ASCII symbol) is a label, so specs with more
  than 52 labels can use the symbols opt_einsum's ``get_symbol`` produces.
* Named axes: when a term holds whitespace between labels, every term is a
  whitespace-separated list of identifiers (``"batch chan, chan -> batch"``).
* NumPy's interleaved sublists: ``(a, [0, 1], b, [1, 2], [0, 2])``.

>>> s = parse("ij,jk")
>>> s.inputs, s.output, str(s)
((('i', 'j'), ('j', 'k')), ('i', 'k'), 'ij,jk->ik')
>>> str(parse("batch chan, chan -> batch"))
'batch chan, chan -> batch'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .caching import memoized
from .errors import ContractError, caret

__all__ = ["ELLIPSIS", "Spec", "Bound", "parse", "from_sublists"]

ELLIPSIS = "..."
# Labels made for ellipsis dimensions; the leading character can never start a
# user label (not alphabetic, not an identifier), so they cannot collide.
_BCAST = "\u2026"


@dataclass(frozen=True)
class Spec:
    """A parsed einsum spec: one label tuple per operand and one for the output.

    ``"..."`` stands for an ellipsis until :meth:`bind` expands it.
    ``named`` records whether labels print space-separated.
    """

    inputs: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]
    named: bool = False

    def __str__(self) -> str:
        if self.named:
            sides = [" ".join(t) for t in self.inputs]
            return ", ".join(sides) + " -> " + " ".join(self.output)
        return ",".join("".join(t) for t in self.inputs) + "->" + "".join(self.output)

    @property
    def has_ellipsis(self) -> bool:
        """Whether any term holds ``...``."""
        return any(ELLIPSIS in t for t in self.inputs + (self.output,))

    def bind(self, shapes: Sequence[Sequence[int]]) -> "Bound":
        """Check the spec against operand shapes and expand ellipses.

        >>> b = parse("...ij,jk").bind([(5, 2, 3), (3, 4)])
        >>> b.output, b.sizes["j"]
        (('…0', 'i', 'k'), 3)
        >>> b = parse("ij,jk->ik").bind([(2, 1), (3, 3)])  # j broadcasts, as in NumPy
        >>> b.inputs, b.squeeze
        ((('i',), ('j', 'k')), ((1,), ()))
        """
        return _bind(self, tuple(tuple(int(d) for d in s) for s in shapes))


@dataclass(frozen=True)
class Bound:
    """A spec bound to shapes: no ellipsis, every label has one size.

    ``squeeze[n]`` lists the size-1 axes of operand ``n`` that broadcast
    against a larger (or empty) dimension of the same label, named or
    ellipsis, as NumPy broadcasts them; they are dropped before contracting,
    so the broadcast is never materialised: ``"ij,jk->ik"`` of ``(2, 1)``
    and ``(3, 3)`` is ``a[:, 0]`` times the column sums of ``b``.
    """

    spec: Spec
    inputs: tuple[tuple[str, ...], ...]
    output: tuple[str, ...]
    sizes: dict[str, int]
    squeeze: tuple[tuple[int, ...], ...]


def _bind(spec: Spec, shapes: tuple[tuple[int, ...], ...]) -> Bound:
    if len(shapes) != len(spec.inputs):
        raise ContractError(
            f"spec '{spec}' has {len(spec.inputs)} input term(s) but "
            f"{len(shapes)} operand(s) were given"
        )
    # Rank of each operand's ellipsis part; the widest sets the broadcast width.
    ranks = []
    for n, (term, shape) in enumerate(zip(spec.inputs, shapes)):
        named = len(term) - (ELLIPSIS in term)
        if len(shape) < named or (ELLIPSIS not in term and len(shape) != named):
            need = f"at least rank {named}" if ELLIPSIS in term else f"{named} label(s)"
            raise ContractError(
                f"operand {n} has shape {shape} (rank {len(shape)}) but its term "
                f"'{_term(spec, term)}' has {need} in spec '{spec}'"
            )
        ranks.append(len(shape) - named)
    width = max(ranks, default=0)
    if width and ELLIPSIS not in spec.output:
        raise ContractError(
            f"spec '{spec}' has ellipsis dimensions in its inputs but none in its "
            f"explicit output; add '...' to the output to keep them"
        )
    ell = tuple(f"{_BCAST}{k}" for k in range(width))
    expanded = []
    for term, rank in zip(spec.inputs, ranks):
        labels: list[str] = []
        for label in term:
            labels.extend(ell[width - rank :] if label == ELLIPSIS else (label,))
        expanded.append(labels)
    # First pass: one size per label. Sizes broadcast as NumPy's do, for named
    # and ellipsis labels alike: 1 against n is n (0 included). Inside one
    # operand the axes of a repeated label must agree exactly, as in NumPy.
    sizes: dict[str, int] = {}
    owner: dict[str, int] = {}
    for n, (labels, shape) in enumerate(zip(expanded, shapes)):
        local: dict[str, int] = {}
        for label, size in zip(labels, shape):
            if local.setdefault(label, size) != size:
                raise ContractError(
                    f"label {_show(label)} is repeated in operand {n} with sizes "
                    f"{local[label]} and {size} (spec '{spec}'); the axes of a repeated "
                    f"label must have the same size"
                )
            seen = sizes.get(label)
            if seen is None or seen == 1:
                sizes[label], owner[label] = size, n
            elif size != seen and size != 1:
                raise ContractError(
                    f"label {_show(label)} has size {seen} in operand {owner[label]} "
                    f"but size {size} in operand {n} (spec '{spec}')"
                )
    # Second pass: size-1 axes that broadcast are squeezed away, so the label
    # lives only in the operands that have it at full size: the broadcast is
    # never materialised, and a contracted label is summed where it is full
    # size, which is what NumPy's broadcast-then-contract gives.
    inputs, squeeze = [], []
    for labels, shape in zip(expanded, shapes):
        drop = tuple(a for a, (l, d) in enumerate(zip(labels, shape)) if d != sizes[l])
        inputs.append(tuple(l for a, l in enumerate(labels) if a not in drop))
        squeeze.append(drop)
    output: list[str] = []
    for label in spec.output:
        output.extend(ell if label == ELLIPSIS else (label,))
    return Bound(spec, tuple(inputs), tuple(output), sizes, tuple(squeeze))


def _show(label: str) -> str:
    if label.startswith(_BCAST):
        return f"'...' dimension {label[1:]}"
    return f"'{label}'"


def _term(spec: Spec, term: tuple[str, ...]) -> str:
    return (" " if spec.named else "").join(term)


@memoized("specs", 4096)
def parse(text: str) -> Spec:
    """Parse a NumPy-style or named-axes einsum string into a :class:`Spec`.

    >>> parse("ii").output
    ()
    >>> parse("bA").output
    ('A', 'b')
    """
    if not isinstance(text, str):
        raise ContractError(f"an einsum spec must be a string, got {type(text).__name__}")
    arrow = text.find("->")
    if text.count("->") > 1:
        raise ContractError("spec has more than one '->':\n" + caret(text, text.rfind("->")))
    lhs, rhs = (text, None) if arrow < 0 else (text[:arrow], text[arrow + 2 :])
    # Split terms, remembering each term's offset for caret messages.
    terms: list[tuple[str, int]] = []
    start = 0
    for part in lhs.split(","):
        terms.append((part, start))
        start += len(part) + 1
    named = any(len(_words(t)) > 1 for t, _ in terms) or (
        rhs is not None and len(_words(rhs)) > 1
    )
    tokenize = _named_tokens if named else _char_tokens
    inputs = tuple(tokenize(text, t, off) for t, off in terms)
    if rhs is None:
        counts: dict[str, int] = {}
        for term in inputs:
            for label in term:
                counts[label] = counts.get(label, 0) + 1
        singles = sorted(l for l, c in counts.items() if c == 1 and l != ELLIPSIS)
        has_ell = any(ELLIPSIS in t for t in inputs)
        output = ((ELLIPSIS,) if has_ell else ()) + tuple(singles)
    else:
        output = tokenize(text, rhs, arrow + 2)
        _check_output(text, inputs, output, arrow + 2)
    return Spec(inputs, output, named)


# Only ASCII whitespace separates named axes: opt_einsum.get_symbol hands out
# Unicode spaces (U+2000-U+200A, U+3000) as labels once specs have thousands.
_ASCII_SPACE = " \t\n\r\f\v"


def _words(term: str) -> list[str]:
    """``term`` split at ASCII whitespace only.

    >>> _words(" batch chan "), _words("a\u2002b")
    (['batch', 'chan'], ['a\u2002b'])
    """
    words, word = [], ""
    for ch in term:
        if ch in _ASCII_SPACE:
            if word:
                words.append(word)
            word = ""
        else:
            word += ch
    return words + [word] if word else words


def _is_label(ch: str) -> bool:
    """Letters, and any non-ASCII character: opt_einsum's ``get_symbol`` hands
    out ``×``, ``÷``, combining marks, Unicode spaces and even unassigned code
    points past 52 labels. ASCII punctuation and digits are never labels.

    >>> _is_label("β"), _is_label("×"), _is_label("\u3000"), _is_label("&"), _is_label("1")
    (True, True, True, False, False)
    """
    return ch.isalpha() or ord(ch) > 127


def _char_tokens(text: str, term: str, offset: int) -> tuple[str, ...]:
    labels: list[str] = []
    k = 0
    while k < len(term):
        ch = term[k]
        if ch == ".":
            if term[k : k + 3] != "...":
                raise ContractError(
                    "'.' must be part of an ellipsis '...':\n" + caret(text, offset + k)
                )
            labels.append(ELLIPSIS)
            k += 3
            continue
        if ch in _ASCII_SPACE:
            k += 1
            continue
        if not _is_label(ch):
            what = "'>' without '-'" if ch in "->" else f"invalid label character {ch!r}"
            raise ContractError(
                f"{what} in einsum spec (labels are letters; use spaces for named axes):\n"
                + caret(text, offset + k)
            )
        labels.append(ch)
        k += 1
    _check_term(text, labels, offset)
    return tuple(labels)


def _named_tokens(text: str, term: str, offset: int) -> tuple[str, ...]:
    labels: list[str] = []
    pos = 0
    for token in _words(term):
        pos = term.index(token, pos)
        if token != ELLIPSIS and not token.isidentifier():
            raise ContractError(
                f"invalid axis name {token!r} (names are identifiers or '...'):\n"
                + caret(text, offset + pos)
            )
        labels.append(token)
        pos += len(token)
    _check_term(text, labels, offset)
    return tuple(labels)


def _check_term(text: str, labels: list[str], offset: int) -> None:
    if labels.count(ELLIPSIS) > 1:
        raise ContractError("a term may hold at most one '...':\n" + caret(text, offset))


def _check_output(text: str, inputs: tuple, output: tuple, offset: int) -> None:
    seen: set[str] = set()
    # An output '...' without one in the inputs is allowed and empty, as in NumPy.
    known = {l for t in inputs for l in t} | {ELLIPSIS}
    for label in output:
        if label in seen:
            raise ContractError(
                f"output label '{label}' appears more than once in spec:\n"
                + caret(text, text.rfind(label))
            )
        seen.add(label)
        if label not in known:
            raise ContractError(
                f"output label '{label}' does not appear in any input term:\n"
                + caret(text, text.find(label, offset))
            )


def from_sublists(args: Sequence[Any]) -> tuple[Spec, list[Any]]:
    """Split NumPy's interleaved ``(op, sublist, op, sublist, [out])`` form.

    As in NumPy, labels 0–25 print as ``A``–``Z`` and 26–51 as ``a``–``z``
    (so the implicit output, sorted by label, follows the integers); larger
    labels switch the spec to named axes ``i52``, ``i53``, …, as do string
    labels (identifiers, as opt_einsum accepts: ``[x, ["left", "bond"]]``).

    >>> spec, ops = from_sublists(["x", [0, 1], "y", [1, 2], [0, 2]])
    >>> str(spec), ops
    ('AB,BC->AC', ['x', 'y'])
    """
    args = list(args)
    output = _sublist(args.pop(), "output") if len(args) % 2 == 1 else None
    operands = args[0::2]
    ins = [_sublist(s, "input") for s in args[1::2]]
    if not operands:
        raise ContractError("einsum needs at least one operand")
    if output is None:
        counts: dict[Any, int] = {}
        for term in ins:
            for x in term:
                counts[x] = counts.get(x, 0) + 1
        singles = sorted((x for x, c in counts.items() if c == 1 and x is not Ellipsis),
                         key=lambda x: (isinstance(x, str), x))
        output = ([Ellipsis] if any(Ellipsis in t for t in ins) else []) + singles
    every = [x for t in ins + [output] for x in t if x is not Ellipsis]
    # Past 52 integer labels, or with string labels, the spec uses named axes.
    named = any(isinstance(x, str) or x >= 52 for x in every)

    def name(x: Any) -> str:
        if x is Ellipsis:
            return ELLIPSIS
        if isinstance(x, str):
            return x
        if named:
            return f"i{x}"
        return chr(ord("A") + x) if x < 26 else chr(ord("a") + x - 26)

    spec = Spec(tuple(tuple(map(name, t)) for t in ins), tuple(map(name, output)), named)
    _check_output(str(spec), spec.inputs, spec.output, 0)
    return spec, operands


def _sublist(sub: Any, what: str) -> list[Any]:
    if isinstance(sub, (str, bytes)) or not hasattr(sub, "__iter__"):
        raise ContractError(
            f"in the sublist form each {what} subscript must be a list of ints, got {sub!r}"
        )
    out = [Ellipsis if x == ELLIPSIS else x for x in sub]
    for x in out:
        if x is Ellipsis or (isinstance(x, str) and x.isidentifier()):
            continue
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0:
            raise ContractError(
                f"sublist labels must be non-negative ints, identifier strings or Ellipsis, "
                f"got {x!r} in {what} {out!r}"
            )
    return [int(x) if isinstance(x, np.integer) else x for x in out]
