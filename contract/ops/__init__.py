"""Array operations, each lowered to an einsum run by the planner and JAX backend."""

from .linalg import diagonal, dot, matmul, outer, tensordot, trace, vecdot
from .lowering import Lowering, lower
from .moments import batch_stats, mean, std, var
from .reduce import sum
from .scan import cumsum
from .convolution import conv
from .window import sum_pool

__all__ = [
    "Lowering", "batch_stats", "conv", "cumsum", "diagonal", "dot", "lower", "matmul",
    "mean", "outer", "std", "sum", "sum_pool", "tensordot", "trace", "var", "vecdot",
]
