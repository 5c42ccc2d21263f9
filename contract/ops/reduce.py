"""Placeholder: to be written (issue 3)."""

from typing import Any


def sum(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sum")


def mean(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("mean")


def var(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("var")


def std(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("std")


def batch_stats(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("batch_stats")

