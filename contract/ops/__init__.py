"""Array operations, each lowered to an einsum run by the planner and JAX backend."""

from .linalg import diagonal, dot, matmul, outer, tensordot, trace, vecdot
from .lowering import Lowering, lower
from .moments import batch_stats, mean, std, var
from .reduce import amax, amin, logsumexp, sum
from .scan import cumsum
from .convolution import conv
from .window import max_pool, sum_pool

__all__ = [
    "Lowering", "amax", "amin", "batch_stats", "conv", "cumsum", "diagonal", "dot",
    "logsumexp", "lower", "matmul", "max_pool", "mean", "outer", "std", "sum", "sum_pool",
    "tensordot", "trace", "var", "vecdot",
]
