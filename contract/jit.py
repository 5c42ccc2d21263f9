"""Placeholder: to be written (issue 4)."""

from typing import Any


def jit(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("jit")
