"""Spec parsing and binding: NumPy grammar, named axes, sublists, >52 labels."""

from __future__ import annotations

import dataclasses

import pytest

from contract.spec import ELLIPSIS, Spec, from_sublists, parse
from contract.testing import symbol


@pytest.mark.parametrize("text, inputs, output", [
    ("ij,jk->ik", [("i", "j"), ("j", "k")], ("i", "k")),
    ("ij,jk", [("i", "j"), ("j", "k")], ("i", "k")),
    ("ba", [("b", "a")], ("a", "b")),
    ("bA", [("b", "A")], ("A", "b")),  # NumPy orders by code point: upper first
    ("ii", [("i", "i")], ()),
    ("ii->i", [("i", "i")], ("i",)),
    (",i->i", [(), ("i",)], ("i",)),
    ("->", [()], ()),
    (" i j , j k -> i k ", [("i", "j"), ("j", "k")], ("i", "k")),  # one letter per name
    ("...ij,...jk", [(ELLIPSIS, "i", "j"), (ELLIPSIS, "j", "k")], (ELLIPSIS, "i", "k")),
    ("i...->...", [("i", ELLIPSIS)], (ELLIPSIS,)),
    ("ij->ij...", [("i", "j")], ("i", "j", ELLIPSIS)),  # an empty '...', as NumPy allows
    ("cβa", [("c", "β", "a")], ("a", "c", "β")),
])
def test_parse(text: str, inputs: list, output: tuple) -> None:
    spec = parse(text)
    assert spec.inputs == tuple(inputs)
    assert spec.output == output


def test_whitespace_between_single_letters_is_ignored() -> None:
    assert parse("ij, jk -> ik") == parse("ij,jk->ik")


def test_named_axes() -> None:
    spec = parse("batch chan h w, chan -> batch")
    assert spec.named
    assert spec.inputs == (("batch", "chan", "h", "w"), ("chan",))
    assert spec.output == ("batch",)
    assert str(spec) == "batch chan h w, chan -> batch"
    implicit = parse("batch seq, seq out")
    assert implicit.output == ("batch", "out")


def test_spec_is_frozen_and_hashable() -> None:
    spec = parse("ij,jk->ik")
    assert hash(spec) == hash(Spec((("i", "j"), ("j", "k")), ("i", "k")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.output = ()  # type: ignore[misc]
    assert str(parse("ij,jk")) == "ij,jk->ik"


def test_sublists_match_strings() -> None:
    spec, ops = from_sublists(["a", [0, 1], "b", [1, 2], [0, 2]])
    assert ops == ["a", "b"]
    assert spec == parse("AB,BC->AC")
    implicit, _ = from_sublists(["a", [1, 0]])
    assert implicit.output == ("A", "B")  # sorted by integer label
    ell, _ = from_sublists(["a", [Ellipsis, 0], [Ellipsis]])
    assert ell.inputs == ((ELLIPSIS, "A"),) and ell.output == (ELLIPSIS,)


def test_sublists_beyond_52_labels_are_named() -> None:
    spec, _ = from_sublists(["a", [0, 60], "b", [60, 99], [0, 99]])
    assert spec.named
    assert spec.inputs == (("i0", "i60"), ("i60", "i99"))


def test_sublists_with_hashable_labels() -> None:
    spec, _ = from_sublists(["x", ["left", "bond"], "y", ["bond", "right"], ["left", "right"]])
    assert spec.inputs == (("left", "bond"), ("bond", "right"))
    assert spec.output == ("left", "right")


def test_more_than_52_unicode_labels() -> None:
    labels = [symbol(k) for k in range(80)]
    text = ",".join(a + b for a, b in zip(labels, labels[1:])) + "->" + labels[0] + labels[-1]
    spec = parse(text)
    assert len(spec.inputs) == 79
    assert spec.output == (labels[0], labels[-1])


def test_bind_expands_ellipsis_and_broadcasts() -> None:
    bound = parse("...ij,...jk->...ik").bind([(1, 3, 2, 3), (4, 1, 3, 5)])
    assert bound.sizes["i"] == 2 and bound.sizes["k"] == 5
    ell = [l for l in bound.output if l not in ("i", "k")]
    assert [bound.sizes[l] for l in ell] == [4, 3]
    # operand 0's leading size-1 axis and operand 1's second axis broadcast away
    assert bound.squeeze == ((0,), (1,))


def test_bind_keeps_size_zero_broadcast() -> None:
    bound = parse("...,...->...").bind([(1,), (0,)])
    assert [bound.sizes[l] for l in bound.output] == [0]


def test_unicode_spaces_are_labels_not_named_axis_separators():
    # opt_einsum.get_symbol(k) yields U+2000-U+200A and U+3000 for k in the thousands.
    import numpy as np
    import opt_einsum

    import contract

    spaces = [chr(c) for c in range(0x2000, 0x200B)] + ["\u3000"]
    assert all(opt_einsum.get_symbol(k) in spaces for k in range(8052, 8063))
    chain = ",".join(a + b for a, b in zip(spaces[:-1], spaces[1:])) + "->" + spaces[0] + spaces[-1]
    ascii_chain = ",".join(a + b for a, b in zip("abcdefghijkl"[:-1], "abcdefghijkl"[1:])) + "->al"
    rng = np.random.default_rng(0)
    ops = [rng.standard_normal((2, 2)).astype(np.float32) for _ in spaces[:-1]]
    assert contract.parse(chain).inputs[0] == (spaces[0], spaces[1])
    np.testing.assert_allclose(contract.einsum(chain, *ops), np.einsum(ascii_chain, *ops),
                               rtol=1e-4, atol=1e-5)
    # ASCII whitespace still switches to named axes.
    assert contract.parse("batch chan,\tchan -> batch").inputs == (("batch", "chan"), ("chan",))
