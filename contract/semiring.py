"""Semirings for ``contract.einsum(..., semiring=...)``: what ⊕ and ⊗ are.

An einsum sums products; in a semiring it "⊕-reduces ⊗-products". The five
built-ins, by name (:data:`SEMIRINGS`):

==============  ==========================  ===========  =====  =====
name            ⊕ (reduction)               ⊗            zero   one
==============  ==========================  ===========  =====  =====
sum-product     sum                         ×            0      1
log             log-sum-exp                 \\+           -inf   0
max-plus        max                         \\+           -inf   0
min-plus        min                         \\+           +inf   0
max-product     max (operands ≥ 0)          ×            0      1
==============  ==========================  ===========  =====  =====

A user semiring is a :class:`Semiring` written with ``jax.numpy``; its name
goes in plans, their JSON and cache keys, so :func:`resolve` registers it and
the name alone finds it later. How each lowers to JAX is
:mod:`contract.backend.semiring`'s business.

>>> resolve("tropical").name, resolve(None).name
('max-plus', 'sum-product')
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ContractError
from .validate import is_array

__all__ = ["SEMIRINGS", "Semiring", "check_call", "check_dtype", "name_of", "resolve"]


@dataclass(frozen=True)
class Semiring:
    """A commutative semiring: ``add(x, axes)`` ⊕-reduces ``x`` over ``axes``
    (a tuple of ints), ``mul(x, y)`` is ⊗ elementwise with broadcasting;
    ``zero`` is ⊕'s identity (an empty reduction), ``one`` is ⊗'s.

    A min-product semiring, for instance (with a name of its own):

    >>> import jax.numpy as jnp
    >>> minprod = Semiring("min-product", add=lambda x, axes: jnp.min(x, axis=axes),
    ...                    mul=jnp.multiply, zero=float("inf"), one=1.0)
    >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    >>> minprod.add(minprod.mul(x[:, :, None], x[None]), (1,)).tolist()
    [[1.0, 2.0], [3.0, 6.0]]
    """

    name: str
    add: Callable[[Any, tuple[int, ...]], Any]
    mul: Callable[[Any, Any], Any]
    zero: float
    one: float


def _logsumexp(x: Any, axes: tuple[int, ...]) -> Any:
    """⊕ of the log semiring (the backend lowers its own, NaN-free on all -inf)."""
    import jax  # noqa: PLC0415 - keeps `import contract` JAX-free

    return jax.nn.logsumexp(x, axis=axes)


def _reduction(name: str) -> Callable[[Any, tuple[int, ...]], Any]:
    """``jnp.<name>`` over ``axes``, imported when first called."""
    def add(x: Any, axes: tuple[int, ...]) -> Any:
        import jax.numpy as jnp  # noqa: PLC0415 - keeps `import contract` JAX-free

        return getattr(jnp, name)(x, axis=axes)
    add.__name__ = name
    return add


def _plus(x: Any, y: Any) -> Any:
    return x + y


def _times(x: Any, y: Any) -> Any:
    return x * y


SEMIRINGS: dict[str, Semiring] = {
    "sum-product": Semiring("sum-product", _reduction("sum"), _times, 0.0, 1.0),
    "log": Semiring("log", _logsumexp, _plus, float("-inf"), 0.0),
    "max-plus": Semiring("max-plus", _reduction("max"), _plus, float("-inf"), 0.0),
    "min-plus": Semiring("min-plus", _reduction("min"), _plus, float("inf"), 0.0),
    "max-product": Semiring("max-product", _reduction("max"), _times, 0.0, 1.0),
}

_ALIASES = {"logsumexp": "log", "log-sum-exp": "log", "tropical": "max-plus",
            "max-sum": "max-plus", "min-sum": "min-plus", "viterbi": "max-product"}

# User semirings by name: a process fact, like a registered optimizer (a
# cleared cache must not forget the name a plan refers to).
_REGISTERED: dict[str, Semiring] = {}
_LOCK = threading.Lock()


def _valid() -> str:
    return ", ".join(repr(n) for n in [*SEMIRINGS, *sorted(_REGISTERED)])


def resolve(value: Any) -> Semiring:
    """The :class:`Semiring` that ``semiring=value`` means: None is sum-product;
    a name (built-in, alias, case-insensitive, or one registered before); a
    :class:`Semiring`, registered under its name on first use.

    >>> resolve("Viterbi").name
    'max-product'
    >>> resolve("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: unknown semiring 'nope'; valid: 'sum-product', 'log', 'max-plus', 'min-plus', 'max-product'...
    """
    if value is None:
        return SEMIRINGS["sum-product"]
    if isinstance(value, Semiring):
        with _LOCK:
            known = SEMIRINGS.get(value.name) or _REGISTERED.get(value.name)
            if known is None:
                _REGISTERED[value.name] = value
                return value
        if known is value or known == value:
            return known
        kind = "a built-in" if value.name in SEMIRINGS else "another registered"
        raise ContractError(f"semiring name {value.name!r} is already taken by {kind} semiring; "
                            "give this one a name of its own")
    if isinstance(value, str):
        key = value.strip().lower()
        key = _ALIASES.get(key, key)
        if key in SEMIRINGS:
            return SEMIRINGS[key]
        if value in _REGISTERED:
            return _REGISTERED[value]
    raise ContractError(f"unknown semiring {value!r}; valid: {_valid()} "
                        "(or a contract.semiring.Semiring)")


def check_dtype(semiring: Semiring, dtype: Any) -> None:
    """Refuse operand dtypes a semiring has no meaning for: complex outside
    sum-product, integers outside sum-product, max-plus and min-plus (their
    log, exp or max of products would not stay integer or ordered), and bool
    outside sum-product.

    >>> check_dtype(SEMIRINGS["max-plus"], "int32")
    >>> check_dtype(SEMIRINGS["log"], "int32")
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: semiring 'log' does not take int32 operands; cast them to a float dtype first (e.g. x.astype(jnp.float32))
    """
    import ml_dtypes  # noqa: F401, PLC0415 - NumPy learns the names "bfloat16" etc.

    dt = np.dtype(dtype)
    name = semiring.name
    if name == "sum-product":
        return
    if dt.kind == "c":
        fix = "use real operands (or semiring='sum-product' for complex ones)"
    elif dt.kind == "b":
        fix = "cast them to a number dtype first (e.g. x.astype(jnp.float32))"
    elif dt.kind in "iu" and name not in ("max-plus", "min-plus"):
        fix = "cast them to a float dtype first (e.g. x.astype(jnp.float32))"
    else:
        return
    raise ContractError(f"semiring {name!r} does not take {dt.name} operands; {fix}")


def check_call(name: str, dtypes: Sequence[str], preferred: Any, mesh: Any) -> None:
    """Refuse what a contraction in semiring ``name`` cannot honour."""
    ring = resolve(name)
    for n, dtype in enumerate(dtypes):
        try:
            check_dtype(ring, dtype)
        except ContractError as e:
            raise ContractError(f"operand {n}: {e}") from None
    if preferred is not None:
        raise ContractError(f"preferred_element_type is for sum-product contractions; with "
                            f"semiring={name!r} the result has the operands' dtype")
    if mesh is not None:
        raise ContractError(f"semiring={name!r} does not run sharded yet: leave out mesh=")


def name_of(value: Any, operands: Sequence[Any] = ()) -> str:
    """``semiring=value`` as the name plans carry; max-product's concrete
    operands are checked for negative entries (its ⊗ is a product of
    probabilities: the max of products of signed numbers is another algebra)."""
    name = resolve(value).name
    if name == "max-product":
        for n, x in enumerate(operands):
            if (type(x) is np.ndarray or is_array(x)) and x.size and bool(np.any(np.asarray(x) < 0)):
                raise ContractError(f"operand {n} has negative entries; semiring='max-product' "
                                    "takes non-negative operands (for signed scores use "
                                    "'max-plus' on their logs)")
    return name
