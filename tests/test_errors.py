"""Every user error raises ContractError with a message naming what is wrong."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import contract
from contract import ContractError

A23, A34, A44 = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.ones((4, 4), np.float32)


def test_error_is_a_value_error() -> None:
    assert issubclass(ContractError, ValueError)


@pytest.mark.parametrize("args, match", [
    (("ij,jk->ik", A23), r"2 input term\(s\) but 1 operand"),
    (("ij->ij", A23, A34), r"1 input term\(s\) but 2 operand"),
    (("", ), r"1 input term\(s\) but 0 operand"),
    ((), r"needs a spec"),
])
def test_wrong_operand_count(args: tuple, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        contract.einsum(*args)


def test_label_size_mismatch_names_operands_label_and_sizes() -> None:
    with pytest.raises(ContractError, match=r"label 'j' has size 3 in operand 0 but size 4 in operand 1"):
        contract.einsum("ij,jk->ik", A23, A44)
    with pytest.raises(ContractError, match=r"label 'b' is repeated in operand 0 with sizes 4 and 6"):
        contract.einsum("aabcb,abc", np.ones((3, 3, 4, 5, 6)), np.ones((3, 4, 5)))
    with pytest.raises(ContractError, match=r"label 'i' is repeated in operand 0 with sizes 2 and 3"):
        contract.einsum("ii", A23)
    # Size 1 broadcasts across operands (tests/test_semantics.py), not within one (NumPy).
    with pytest.raises(ContractError, match=r"label 'i' is repeated in operand 0 with sizes 1 and 3"):
        contract.einsum("ii->i", np.ones((1, 3)))


def test_ellipsis_broadcast_mismatch() -> None:
    with pytest.raises(ContractError, match=r"'\.\.\.' dimension 0 has size 5 in operand 0 but size 7"):
        contract.einsum("...ij,...jk->...ik", np.ones((5, 2, 3)), np.ones((7, 3, 4)))
    with pytest.raises(ContractError, match=r"add '\.\.\.' to the output"):
        contract.einsum("...ij,...jk->ik", np.ones((2, 2, 3)), A34)


def test_output_label_absent_from_inputs() -> None:
    with pytest.raises(ContractError, match=r"output label 'k' does not appear in any input(.|\n)*\^"):
        contract.einsum("ij->k", A23)


def test_repeated_output_label() -> None:
    with pytest.raises(ContractError, match=r"output label 'i' appears more than once"):
        contract.einsum("ij->ii", A44)
    with pytest.raises(ContractError, match=r"appears more than once"):
        contract.einsum(A44, [0, 1], [0, 0])


@pytest.mark.parametrize("spec, shape, match", [
    ("ijk,jk->ik", (2, 3), r"operand 0 has shape \(2, 3\) \(rank 2\) but its term 'ijk' has 3 label"),
    ("i,jk->ik", (2, 3), r"operand 0 has shape \(2, 3\) \(rank 2\) but its term 'i' has 1 label"),
    ("...ijk,jk->ik", (2, 3), r"term '\.\.\.ijk' has at least rank 3"),
])
def test_rank_mismatch(spec: str, shape: tuple, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        contract.einsum(spec, np.ones(shape), A34[:, :3] if "jk" in spec else A34)


@pytest.mark.parametrize("spec, col", [
    ("ij,j&->i", 4), ("i%...", 1), ("ij,j1->i", 4), ("i->&", 3), ("i-i", 1), ("i>i", 1),
])
def test_bad_character_shows_caret(spec: str, col: int) -> None:
    with pytest.raises(ContractError) as info:
        contract.einsum(spec, np.ones(2), np.ones((2, 2)))
    lines = str(info.value).splitlines()
    assert lines[-2] == "  " + spec
    assert lines[-1] == "  " + " " * col + "^"


@pytest.mark.parametrize("spec, match", [
    ("i..", r"'\.' must be part of an ellipsis"),
    ("...i...", r"at most one '\.\.\.'"),
    ("i->->i", r"more than one '->'"),
])
def test_bad_ellipsis_and_arrows(spec: str, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        contract.einsum(spec, np.ones((2, 2, 2)))


def test_named_axis_must_be_identifier() -> None:
    with pytest.raises(ContractError, match=r"invalid axis name '2x'(.|\n)*\^"):
        contract.einsum("batch 2x, x -> batch", np.ones((2, 3)), np.ones(3))


def test_unknown_optimize_lists_valid_options() -> None:
    for bad in ("fastest-please", 3, 2.5, object()):
        with pytest.raises(ContractError, match=r"unknown optimize option .*valid options are 'annealed-greedy', 'auto'.*'dp', 'greedy',.*'optimal'"):
            contract.einsum("ij,jk->ik", A23, A34, optimize=bad)


@pytest.mark.parametrize("path, match", [
    ([(0, 5)], r"entry \(0, 5\) is invalid"),
    ([(0, 1), (0, 1), (0, 1)], r"entry \(0, 1\) is invalid.*below 1"),
    ([(0, 0)], r"distinct operand positions"),
    ([(0, 1)], r"leaves 2 operands uncontracted"),
    ([()], r"entry \(\) is invalid"),
    ([("a", "b"), (0, 1)], r"tuples of ints"),
    ([1, 2], r"tuples of ints"),
])
def test_invalid_explicit_paths(path: list, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        contract.einsum("ij,jk,kl->il", A23, A34, A44, optimize=path)


def test_non_array_operands() -> None:
    for bad, name in (("ab", "str"), (None, "NoneType"), ({"a": 1}, "dict"), (object(), "object")):
        with pytest.raises(ContractError, match=rf"operand 1 is a {name}, not an array"):
            contract.einsum("i,i", np.ones(2), bad)
    with pytest.raises(ContractError, match=r"operand 0 is not a rectangular array"):
        contract.einsum("ij", [[1, 2], [3]])
    with pytest.raises(ContractError, match=r"operand 0 has dtype <U1, which is not numeric"):
        contract.einsum("i", np.array(["a"]))


def test_bad_precision_and_preferred_element_type() -> None:
    with pytest.raises(ContractError, match=r"unknown precision 'bad'.*'highest'"):
        contract.einsum("ij,jk->ik", A23, A34, precision="bad")
    with pytest.raises(ContractError, match=r"preferred_element_type 'nope' is not a dtype"):
        contract.einsum("ij,jk->ik", A23, A34, preferred_element_type="nope")
    with pytest.raises(ContractError, match=r"preferred_element_type .* is not numeric"):
        contract.einsum("ij,jk->ik", A23, A34, preferred_element_type=np.str_)


@pytest.mark.parametrize("limit", [-1, 0, "lots", 1.5, True])
def test_bad_memory_limit(limit: object) -> None:
    with pytest.raises(ContractError, match=r"memory_limit must be a positive number of bytes"):
        contract.einsum("ij,jk->ik", A23, A34, memory_limit=limit)


def test_sublist_errors() -> None:
    with pytest.raises(ContractError, match=r"sublist labels must be non-negative ints"):
        contract.einsum(np.ones(2), [-1])
    with pytest.raises(ContractError, match=r"must be a list of ints"):
        contract.einsum(np.ones(2), "i")
    with pytest.raises(ContractError, match=r"does not appear in any input"):
        contract.einsum(np.ones(2), [0], [1])


def test_errors_inside_jit_are_contract_errors() -> None:
    f = jax.jit(lambda a, b: contract.einsum("ij,jk->ik", a, b))
    with pytest.raises(ContractError, match=r"label 'j'"):
        f(jnp.ones((2, 3)), jnp.ones((4, 4)))


def test_expression_checks_its_operands() -> None:
    expr = contract.expression("ij,jk->ik", (2, 3), (3, 4))
    with pytest.raises(ContractError, match=r"takes 2 operand\(s\), got 1"):
        expr(A23)
    with pytest.raises(ContractError, match=r"operand 1 has shape \(4, 4\) but .* built for \(3, 4\)"):
        expr(A23, A44)
    with pytest.raises(ContractError, match=r"negative size"):
        contract.expression("ij", (2, -1))


@pytest.mark.parametrize("kwargs, match", [
    ({"out": np.zeros((2, 4))}, r"takes only out=None: JAX arrays are immutable"),
    ({"dtype": "float32"}, r"does not take dtype=.*preferred_element_type"),
    ({"order": "C", "casting": "safe"}, r"unexpected keyword argument\(s\) 'order', 'casting'"),
])
def test_numpy_only_keywords(kwargs: dict, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        contract.einsum("ij,jk->ik", A23, A34, **kwargs)


def test_preferred_real_type_for_complex_operands() -> None:
    z = np.ones((2, 3), np.complex64)
    with pytest.raises(ContractError, match=r"drop the imaginary part"):
        contract.einsum("ij,jk->ik", z, A34, preferred_element_type="float32")


@pytest.mark.parametrize("call", ["eager", "jit", "expression"])
def test_our_own_bugs_keep_their_traceback(call: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug inside contract (here: the backend raising while it lowers) reaches
    the user as itself, with its frames, not as "failed in JAX"."""
    import traceback

    from contract.backend import program

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(program, "execute_plan", broken)
    contract.clear_caches(disk=False)
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    run = {"eager": lambda: contract.einsum("ij,jk->ik", a, b),
           "jit": lambda: jax.jit(lambda x, y: contract.einsum("ij,jk->ik", x, y))(a, b),
           "expression": lambda: contract.expression("ij,jk->ik", a.shape, b.shape)(a, b)}[call]
    try:
        with pytest.raises(ValueError, match="an internal invariant broke") as info:
            run()
        assert not isinstance(info.value, ContractError)
        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert "broken" in frames
    finally:
        monkeypatch.undo()
        contract.clear_caches(disk=False)


def test_refusals_by_jax_are_told_from_our_own_errors() -> None:
    from contract.api import refused_by_jax

    try:
        jax.lax.dot_general(jnp.ones(2), jnp.ones(3), (((0,), (0,)), ((), ())))
    except TypeError as e:
        assert refused_by_jax(e)
    assert not refused_by_jax(ValueError("raised in contract's code"))
