"""Show what an operation becomes: :func:`lower` returns its :class:`Lowering`.

Each operation registers a *lowerer*: a function with the operation's own
signature that returns the einsum(s) the call executes, without running them.

>>> import numpy as np, contract
>>> print(contract.lower(contract.sum, np.ones((2, 3)), axis=0))  # doctest: +SKIP
sum: ij->j  shapes (2, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ContractError

__all__ = ["Lowering", "register", "lower"]


@dataclass(frozen=True)
class Lowering:
    """The einsum stages an operation call runs, in order.

    ``stages`` holds ``(spec, operand shapes)`` pairs; ``notes`` explains any
    work around them (casts, a scale by 1/N, reshapes into blocks, ...).
    """

    op: str
    stages: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...]
    notes: str = ""

    def __str__(self) -> str:
        lines = [f"{self.op}:"]
        for spec, shapes in self.stages:
            lines.append(f"  einsum {spec!r}  shapes {', '.join(map(str, shapes))}")
        if self.notes:
            lines.append(f"  {self.notes}")
        return "\n".join(lines)


_LOWERERS: dict[Callable[..., Any], Callable[..., Lowering]] = {}


def register(op: Callable[..., Any]) -> Callable[[Callable[..., Lowering]], Callable[..., Lowering]]:
    """Decorator: register the lowerer of ``op``."""

    def deco(lowerer: Callable[..., Lowering]) -> Callable[..., Lowering]:
        _LOWERERS[op] = lowerer
        return lowerer

    return deco


def lower(op: Callable[..., Any], *args: Any, **kwargs: Any) -> Lowering:
    """The einsum(s) ``op(*args, **kwargs)`` would run, without running them."""
    lowerer = _LOWERERS.get(op)
    if lowerer is None:
        name = getattr(op, "__name__", repr(op))
        raise ContractError(
            f"lower(): {name} is not a contract operation; known: "
            + ", ".join(sorted(f.__name__ for f in _LOWERERS))
        )
    return lowerer(*args, **kwargs)
