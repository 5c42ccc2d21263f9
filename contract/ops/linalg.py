"""Placeholder: to be written (issue 3)."""

from typing import Any


def dot(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("dot")


def vecdot(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("vecdot")


def matmul(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("matmul")


def tensordot(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("tensordot")


def outer(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("outer")


def trace(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("trace")


def diagonal(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("diagonal")

