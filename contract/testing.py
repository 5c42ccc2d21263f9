"""Shared einsum cases and seeded random specs for tests and benchmarks.

``CASES`` is a broad, hand-written list of ``(spec, shapes)`` pairs: two- to
ten-operand contractions, batch dimensions, ellipsis broadcasting, repeated
labels, scalars, size-0 and size-1 dimensions and named axes.
:func:`random_spec` draws a valid spec with shapes from a seed;
:func:`random_network` and :func:`fully_connected` make large networks for
planning tests.

>>> spec, shapes = random_spec(0)
>>> import contract
>>> contract.plan(spec, *shapes).spec == spec
True
>>> random_network(3, seed=1)[0].count(",")
2
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import ml_dtypes
import numpy as np
import opt_einsum
from opt_einsum import get_symbol

__all__ = ["CASES", "Case", "DTYPES", "random_spec", "random_network", "fully_connected",
           "symbol", "operands", "reference", "assert_matches", "np_dtype", "letters"]

Case = tuple[str, tuple[tuple[int, ...], ...]]

CASES: tuple[Case, ...] = (
    # two operands: GEMM family
    ("ij,jk->ik", ((3, 4), (4, 5))),
    ("ij,jk", ((3, 4), (4, 5))),
    ("ij,kj->ik", ((3, 4), (5, 4))),
    ("ji,jk->ki", ((4, 3), (4, 5))),
    ("ij,j->i", ((3, 4), (4,))),
    ("i,i->", ((6,), (6,))),
    ("i,i", ((6,), (6,))),
    ("i,j->ij", ((3,), (4,))),
    ("i,j->ji", ((3,), (4,))),
    ("ik,ik->k", ((5, 3), (5, 3))),
    ("ij,ij->ij", ((3, 4), (3, 4))),
    ("bij,bjk->bik", ((2, 3, 4), (2, 4, 5))),
    ("bhqd,bhkd->bhqk", ((2, 3, 4, 5), (2, 3, 6, 5))),
    ("bhqk,bhkd->bqhd", ((2, 3, 4, 6), (2, 3, 6, 5))),
    ("abc,cd->dba", ((2, 3, 4), (4, 5))),
    ("abcd,cd->ab", ((2, 3, 4, 5), (4, 5))),
    ("ijk,jkl->il", ((2, 3, 4), (3, 4, 5))),
    ("ab,cd->abcd", ((2, 3), (4, 5))),
    # three or more operands
    ("ijk,jkl,lmn->imn", ((2, 3, 4), (3, 4, 5), (5, 2, 3))),
    ("ij,jk,kl->il", ((3, 4), (4, 5), (5, 2))),
    ("ij,ik,il->jkl", ((2, 3), (2, 4), (2, 5))),
    ("a,b,c->abc", ((2,), (3,), (4,))),
    ("ab,bc,cd,de,ef->af", ((8, 2), (2, 9), (9, 3), (3, 7), (7, 4))),
    ("ea,fb,abcd,gc,hd->efgh", ((3, 2), (3, 2), (2, 2, 2, 2), (3, 2), (3, 2))),
    ("abc,bcd,cde,def,efg,fga->ag", ((2, 3, 2), (3, 2, 3), (2, 3, 2), (3, 2, 3), (2, 3, 2),
                                     (3, 2, 2))),
    ("ab,bc,cd,de,ef,fg,gh,hi,ij,ja->", ((2, 3), (3, 2), (2, 3), (3, 2), (2, 3), (3, 2),
                                         (2, 3), (3, 2), (2, 3), (3, 2))),
    ("ab,ac,ad,ae,af,ag,ah,ai,aj,a->a", ((3, 2),) * 9 + ((3,),)),
    # repeated labels: diagonals and traces
    ("ii", ((4, 4),)),
    ("ii->", ((4, 4),)),
    ("ii->i", ((4, 4),)),
    ("iji->ij", ((3, 2, 3),)),
    ("iii->i", ((3, 3, 3),)),
    ("iij,jk->ik", ((3, 3, 4), (4, 2))),
    ("ij,jj,jk->ik", ((2, 3), (3, 3), (3, 4))),
    ("aabb->ab", ((2, 2, 3, 3),)),
    # single operand: permutations and reductions
    ("ij->ji", ((3, 4),)),
    ("ijk->kij", ((2, 3, 4),)),
    ("ijk->", ((2, 3, 4),)),
    ("ijk->j", ((2, 3, 4),)),
    ("i->i", ((5,),)),
    ("ba", ((3, 4),)),
    # scalars
    (",i->i", ((), (4,))),
    (",->", ((), ())),
    ("->", ((),)),
    ("i,->i", ((4,), ())),
    ("ij,,jk->ik", ((2, 3), (), (3, 2))),
    # ellipsis and broadcasting
    ("...ij,...jk->...ik", ((2, 3, 4), (2, 4, 5))),
    ("...ij,...jk->...ik", ((1, 3, 4), (5, 4, 2))),
    ("...ij,...jk", ((2, 1, 3, 4), (5, 4, 2))),
    ("...i,...i->...", ((2, 3, 4), (4,))),
    ("i...->...", ((3, 2, 2),)),
    ("...ii->...i", ((2, 3, 3),)),
    ("a...a->...", ((3, 2, 3),)),
    ("...,...->...", ((2, 1), (1, 3))),
    ("i...,i...->i...", ((2, 1, 3), (2, 4, 1))),
    ("ij...,jk...->ik...", ((2, 3), (3, 4))),
    ("ij->ij...", ((2, 3),)),
    ("->...", ((),)),
    # size-0 and size-1 dimensions
    ("ij,jk->ik", ((0, 3), (3, 4))),
    ("ij,jk->ik", ((2, 0), (0, 4))),
    ("ij,jk->ik", ((1, 1), (1, 1))),
    ("ij,jk->ik", ((1, 3), (3, 1))),
    ("ii->i", ((0, 0),)),
    ("ii", ((1, 1),)),
    ("bij,bjk->bik", ((0, 2, 3), (0, 3, 2))),
    ("...ij,...jk->...ik", ((0, 2, 3), (1, 3, 2))),
    ("abc,cd->ad", ((1, 2, 1), (1, 3))),
    # named axes
    ("batch chan, chan -> batch", ((2, 3), (3,))),
    ("batch seq dim, dim out -> batch seq out", ((2, 3, 4), (4, 5))),
    ("b h q d, b h k d -> b h q k", ((2, 2, 3, 4), (2, 2, 5, 4))),
    ("row row -> row", ((3, 3),)),
    ("... d, d e -> ... e", ((2, 3, 4), (4, 5))),
)


def symbol(k: int) -> str:
    """The k-th einsum label: a–z, A–Z, then other Unicode letters.

    >>> symbol(0), symbol(51), symbol(52).isalpha()
    ('a', 'Z', True)
    """
    return get_symbol(k)


def _spec(terms: Sequence[Sequence[str]], output: Sequence[str] | None) -> str:
    lhs = ",".join("".join(t) for t in terms)
    return lhs if output is None else f"{lhs}->{''.join(output)}"


def random_spec(seed: int, max_operands: int = 5, max_rank: int = 4, max_size: int = 4,
                ellipsis: bool = True, repeats: bool = True) -> Case:
    """A random valid spec and shapes: shared labels, hyperedges, optional
    repeated labels, implicit or explicit output, optional broadcasting ``...``.

    Sizes lie in ``0..max_size`` (size 0 rarely). The same seed always gives
    the same case.

    >>> random_spec(3) == random_spec(3)
    True
    """
    rng = random.Random(seed)
    n_ops = rng.randint(1, max_operands)
    n_labels = rng.randint(1, max(1, max_rank + n_ops - 1))
    labels = [symbol(k) for k in range(n_labels)]
    size = {l: (0 if rng.random() < 0.03 else rng.randint(1, max_size)) for l in labels}
    terms: list[list[str]] = []
    for _ in range(n_ops):
        rank = rng.randint(0, max_rank)
        term = [rng.choice(labels) for _ in range(rank)]
        if not repeats:
            term = list(dict.fromkeys(term))
        terms.append(term)
    used = list(dict.fromkeys(l for t in terms for l in t))
    use_ellipsis = ellipsis and rng.random() < 0.3
    width = rng.randint(0, 2) if use_ellipsis else 0
    batch = [rng.randint(1, 3) for _ in range(width)]
    shapes = []
    for k, term in enumerate(terms):
        shape = [size[l] for l in term]
        if use_ellipsis:
            # Each operand takes the trailing part of the batch, with some 1s.
            own = batch[rng.randint(0, width):] if k else batch
            own = [1 if rng.random() < 0.3 else d for d in own]
            at = rng.randint(0, len(term))
            term.insert(at, "...")
            shape[at:at] = own
        shapes.append(tuple(shape))
    if rng.random() < 0.3:
        spec = _spec(terms, None)
    else:
        out = [l for l in used if rng.random() < 0.5]
        rng.shuffle(out)
        if use_ellipsis:
            out.insert(rng.randint(0, len(out)), "...")
        spec = _spec(terms, out)
    return spec, tuple(shapes)


def random_network(n: int, seed: int = 0, degree: int = 3, size: int = 2,
                   output: int = 0) -> Case:
    """A random tensor network of ``n`` operands whose labels each join two
    operands (``output`` labels are left open); about ``degree`` labels per
    operand. Uses Unicode labels beyond 52.

    >>> spec, shapes = random_network(4, seed=0, degree=2)
    >>> len(shapes)
    4
    """
    rng = random.Random(seed)
    terms: list[list[str]] = [[] for _ in range(n)]
    k = 0
    # A spanning chain keeps the network connected; random edges add loops.
    for a in range(1, n):
        b = rng.randrange(a)
        terms[a].append(symbol(k))
        terms[b].append(symbol(k))
        k += 1
    for _ in range(max(0, n * degree // 2 - (n - 1))):
        a, b = rng.sample(range(n), 2) if n > 1 else (0, 0)
        terms[a].append(symbol(k))
        terms[b].append(symbol(k))
        k += 1
    out = []
    for _ in range(output):
        terms[rng.randrange(n)].append(symbol(k))
        out.append(symbol(k))
        k += 1
    return _spec(terms, out), tuple((size,) * len(t) for t in terms)


def fully_connected(n: int, size: int = 2) -> Case:
    """``n`` operands, one label between every pair: the densest network.

    >>> fully_connected(3)
    ('ab,ac,bc->', ((2, 2), (2, 2), (2, 2)))
    """
    terms: list[list[str]] = [[] for _ in range(n)]
    k = 0
    for a in range(n):
        for b in range(a + 1, n):
            terms[a].append(symbol(k))
            terms[b].append(symbol(k))
            k += 1
    return _spec(terms, []), tuple((size,) * len(t) for t in terms)


# One representative per dtype family; values are chosen per family so every
# result is exactly representable or compared with a family tolerance.
DTYPES = ("bool", "int8", "uint8", "int32", "float16", "bfloat16", "float32", "complex64")
TOLERANCE = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-5, "complex64": 2e-5}


def np_dtype(name: str) -> np.dtype:
    """NumPy dtype for a name, bfloat16 included.

    >>> np_dtype("bfloat16").name, np_dtype("int8").name
    ('bfloat16', 'int8')
    """
    return np.dtype(ml_dtypes.bfloat16 if name == "bfloat16" else name)


def operands(shapes: Sequence[Sequence[int]], dtype: str = "float32", seed: int = 0) -> list:
    """Random operands of a dtype family, small enough that no int32 sum overflows.

    >>> [x.dtype.name for x in operands([(2,), ()], "uint8")]
    ['uint8', 'uint8']
    """
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        kind = np.dtype(np_dtype(dtype)).kind
        if kind == "b":
            x = rng.integers(0, 2, shape)
        elif kind == "u":
            x = rng.integers(0, 4, shape)
        elif kind == "i":
            x = rng.integers(-3, 4, shape)
        elif kind == "c":
            x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        else:
            x = rng.standard_normal(shape)
        out.append(np.asarray(x).astype(np_dtype(dtype)))
    return out


def letters(spec: str) -> str:
    """A named-axes spec spelled with one letter per label (for NumPy).

    >>> letters("batch chan, chan -> batch")
    'ab,b->a'
    >>> letters("... d, d e -> ... e")
    '...a,ab->...b'
    """
    from .spec import ELLIPSIS, parse

    parsed = parse(spec)
    if not parsed.named:
        return spec
    names: dict[str, str] = {ELLIPSIS: ELLIPSIS}
    for term in parsed.inputs:
        for label in term:
            names.setdefault(label, symbol(len(names) - 1))
    lhs = ",".join("".join(names[l] for l in t) for t in parsed.inputs)
    return lhs + "->" + "".join(names[l] for l in parsed.output)


def _wide(x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        return a.astype(np.int64)
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


def reference(spec: Any, *ops: Any) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.einsum`` in int64/float64/complex128, and the einsum of absolute
    values (the scale of the rounding error). Specs NumPy cannot spell (more
    than 52 labels) or big networks go through ``opt_einsum.contract`` with
    NumPy arrays; named axes are respelled with letters.

    >>> reference("i,i->", np.array([1, -2]), np.array([3, 4]))
    (array(-5), array(11.))
    """
    spec = letters(spec)
    wide = [_wide(x) for x in ops]
    absolute = [np.abs(x).astype(np.float64) for x in wide]

    def run(xs: list) -> np.ndarray:
        if len(xs) <= 10:  # past that numpy's optimize=True may fall back to one huge loop
            try:
                return np.asarray(np.einsum(spec, *xs, optimize=len(xs) > 2))
            except ValueError:  # labels NumPy cannot take
                pass
        return np.asarray(opt_einsum.contract(spec, *xs, backend="numpy"))

    return run(wide), run(absolute)


def assert_matches(got: Any, spec: str, ops: Sequence[Any], dtype: str | None = None) -> None:
    """Compare a contract result with the NumPy reference for its dtype.

    Integers compare exactly modulo 2**bits (narrow results wrap like a cast
    of the exact sum); bool is "any product nonzero"; floats compare within a
    dtype tolerance relative to the einsum of absolute values.

    >>> assert_matches(np.array([3.0]), "i->i", [np.array([3.0])])
    """
    got = np.asarray(got)
    want, scale = reference(spec, *ops)
    assert got.shape == want.shape, (got.shape, want.shape)
    name = dtype or got.dtype.name
    kind = np.dtype(np_dtype(name)).kind
    if kind == "b":
        np.testing.assert_array_equal(got, want != 0)
    elif kind in "iu":
        bits = np.dtype(name).itemsize * 8
        np.testing.assert_array_equal(np.mod(got.astype(np.int64), 2**bits),
                                      np.mod(want, 2**bits))
    else:
        err = np.abs(got.astype(np.complex128) - want)
        tol = TOLERANCE.get(name, 2e-5)
        bound = tol * scale + 1e-6
        assert (err <= bound).all(), f"max error {err.max() if err.size else 0} (tol {tol})"
