"""``contract.dot_general``: ``jax.lax.dot_general``'s signature, run by contract.

Model libraries take a ``dot_general`` hook with lax's signature (flax's
``nnx.Linear(dot_general=...)``, ``nnx.LinearGeneral``,
``nnx.MultiHeadAttention(qkv_dot_general=..., out_dot_general=...)``,
linen's ``Dense``/``DenseGeneral``); :func:`dot_general` plugs contract in
there. Its ``dimension_numbers`` become one einsum (batch axes, then the
free axes of ``lhs``, then those of ``rhs``: lax's output order), checked
in Python, so a bad call is a :class:`~contract.errors.ContractError` that
names the axis, never an error from inside JAX.

Where it follows contract rather than lax (see docs/coming_from.md):
``precision=None`` on float32 means full float32 accuracy
(``Precision.HIGHEST``), so a GPU does not drop to TF32; bfloat16/float16
accumulate in float32; ``precision`` takes what :func:`contract.einsum`
takes. ``preferred_element_type`` means what it means to lax, an integer
one on float operands included: the sum in the operands' type, converted
(docs/coming_from.md#preferred-narrow).

>>> import numpy as np, contract
>>> x, w = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
>>> contract.dot_general(x, w, (((1,), (0,)), ((), ()))).shape
(2, 4)
>>> print(contract.lower(contract.dot_general, np.ones((5, 2, 3)), np.ones((5, 3, 4)),
...                      (((2,), (1,)), ((0,), (0,)))))
dot_general:
  einsum 'abc,acd->abd'  shapes (5, 2, 3), (5, 3, 4)
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ..api import einsum
from ..errors import ContractError
from ..validate import check_precision, numeric_dtype
from ._args import operand
from ._compiled import letters, run
from .lowering import Lowering, register

__all__ = ["dot_general"]

_FORM = ("dimension_numbers must be ((lhs_contracting, rhs_contracting), "
         "(lhs_batch, rhs_batch)), each a sequence of axes")


def _axes(value: Any, what: str, ndim: int) -> tuple[int, ...]:
    """One list of axes of ``dimension_numbers``, checked against the operand's rank."""
    items = (value,) if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        raise ContractError(f"dot_general(): {_FORM}; {what} is {value!r}") from None
    if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in items):
        raise ContractError(f"dot_general(): {what} must hold ints, got {value!r}")
    axes = tuple(int(a) for a in items)
    for a in axes:
        if not 0 <= a < ndim:
            raise ContractError(f"dot_general(): {what} names axis {a}, but the operand has "
                                f"rank {ndim} (axes are 0..{ndim - 1}, as in lax)")
    if len(set(axes)) != len(axes):
        raise ContractError(f"dot_general(): {what} {axes} repeats an axis")
    return axes


def _spec(dimension_numbers: Any, lhs: jax.Array, rhs: jax.Array) -> str:
    """The einsum of ``dimension_numbers`` for these operands.

    >>> import jax.numpy as jnp
    >>> _spec((((1,), (0,)), ((), ())), jnp.ones((2, 3)), jnp.ones((3, 4)))
    'ab,bc->ac'
    """
    try:
        (lc, rc), (lb, rb) = dimension_numbers
    except (TypeError, ValueError):
        raise ContractError(f"dot_general(): {_FORM}, got {dimension_numbers!r}") from None
    lc, lb = _axes(lc, "lhs_contracting", lhs.ndim), _axes(lb, "lhs_batch", lhs.ndim)
    rc, rb = _axes(rc, "rhs_contracting", rhs.ndim), _axes(rb, "rhs_batch", rhs.ndim)
    for side, c, b in (("lhs", lc, lb), ("rhs", rc, rb)):
        if set(c) & set(b):
            raise ContractError(f"dot_general(): {side} axis {min(set(c) & set(b))} is both a "
                                "contracting and a batch axis")
    for kind, l, r in (("contracting", lc, rc), ("batch", lb, rb)):
        if len(l) != len(r):
            raise ContractError(f"dot_general(): {len(l)} lhs {kind} axes but {len(r)} rhs "
                                f"{kind} axes; they pair up one to one")
        for i, j in zip(l, r):
            if lhs.shape[i] != rhs.shape[j]:
                raise ContractError(f"dot_general(): {kind} axes {i} of lhs and {j} of rhs "
                                    f"differ in size: {lhs.shape[i]} vs {rhs.shape[j]} "
                                    f"(shapes {tuple(lhs.shape)} and {tuple(rhs.shape)})")
    labels = iter(letters(lhs.ndim + rhs.ndim - len(rc + rb), "dot_general"))
    la = [next(labels) for _ in range(lhs.ndim)]
    paired = dict(zip(rc + rb, lc + lb))
    ra = [la[paired[k]] if k in paired else next(labels) for k in range(rhs.ndim)]
    out = ([la[i] for i in lb] + [l for k, l in enumerate(la) if k not in lc + lb]
           + [l for k, l in enumerate(ra) if k not in rc + rb])
    return f"{''.join(la)},{''.join(ra)}->{''.join(out)}"


def _args(lhs: Any, rhs: Any, dimension_numbers: Any, precision: Any = None,
          preferred_element_type: Any = None,
          out_sharding: Any = None) -> tuple[list[jax.Array], dict[str, Any]]:
    lhs, rhs = operand(lhs, "dot_general"), operand(rhs, "dot_general")
    preferred = (None if preferred_element_type is None
                 else numeric_dtype(preferred_element_type, "preferred_element_type").name)
    return [lhs, rhs], dict(spec=_spec(dimension_numbers, lhs, rhs),
                            precision=check_precision(precision), preferred=preferred,
                            out_sharding=out_sharding)


def _kernel(lhs: jax.Array, rhs: jax.Array, *, spec: str, precision: Any, preferred: Any,
            out_sharding: Any) -> jax.Array:
    return einsum(spec, lhs, rhs, precision=precision, preferred_element_type=preferred,
                  out_sharding=out_sharding)


def dot_general(lhs: Any, rhs: Any, dimension_numbers: Any, precision: Any = None,
                preferred_element_type: Any = None, out_sharding: Any = None) -> jax.Array:
    """``jax.lax.dot_general`` as a contract einsum: same signature, same result
    shape and axis order, contract's precision and error rules.

    ``dimension_numbers`` is ``((lhs_contracting, rhs_contracting),
    (lhs_batch, rhs_batch))``; the result holds the batch axes, then the free
    axes of ``lhs``, then those of ``rhs``. ``out_sharding`` is a
    ``NamedSharding`` or ``PartitionSpec`` for the result, as in
    :func:`contract.einsum`. Pass it where a library takes a ``dot_general``
    hook: ``nnx.Linear(..., dot_general=contract.dot_general)``.

    >>> import numpy as np
    >>> q, k = np.ones((2, 5, 8), np.float32), np.ones((2, 7, 8), np.float32)
    >>> dot_general(q, k, (((2,), (2,)), ((0,), (0,)))).shape  # batched q @ k.T
    (2, 5, 7)
    >>> dot_general(q, k, (((2,), (1,)), ((), ())))
    Traceback (most recent call last):
    ...
    contract.errors.ContractError: dot_general(): contracting axes 2 of lhs and 1 of rhs differ in size: 8 vs 7 (shapes (2, 5, 8) and (2, 7, 8))
    """
    return run(_args, _kernel, lhs, rhs, dimension_numbers, precision=precision,
               preferred_element_type=preferred_element_type, out_sharding=out_sharding)


@register(dot_general)
def _lower(*args: Any, **kwargs: Any) -> Lowering:
    arrays, p = _args(*args, **kwargs)
    return Lowering("dot_general", ((p["spec"], tuple(tuple(a.shape) for a in arrays)),))
