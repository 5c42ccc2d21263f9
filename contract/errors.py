"""The one exception users catch, :class:`ContractError`, and the one warning, :class:`ContractWarning`."""

from __future__ import annotations

__all__ = ["ContractError", "ContractWarning", "caret"]


class ContractError(ValueError):
    """Raised for every user error: bad spec, mismatched sizes, unknown options.

    It subclasses :class:`ValueError` so code written against ``numpy.einsum``
    (which raises ``ValueError``) keeps working.

    >>> import contract
    >>> try:
    ...     contract.einsum("ij,jk->ik", [[1.0, 2.0]], [[1.0], [2.0], [3.0]])
    ... except contract.ContractError as e:
    ...     print(e)
    label 'j' has size 2 in operand 0 but size 3 in operand 1 (spec 'ij,jk->ik')
    """


class ContractWarning(UserWarning):
    """Said once when something runs slower than it could, with the fix: the
    CPU kernels off, a fallback taken, a budget that cannot be met.

    >>> issubclass(ContractWarning, UserWarning)
    True
    """


def caret(text: str, position: int) -> str:
    """Return ``text`` with a caret line under character ``position``.

    >>> print(caret("ij,j1->i", 4))
      ij,j1->i
          ^
    """
    return f"  {text}\n  {' ' * position}^"
