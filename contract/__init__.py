"""contract: einsum-centric tensor contractions, planned and compiled with JAX.

>>> import numpy as np, contract
>>> contract.einsum("ij,jk->ik", np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)).tolist()
[[3.0, 3.0], [3.0, 3.0]]
"""

from .api import Expression, einsum, expression, plan
from .caching import set_cache_size
from .comparison import compare
from .machine import doctor
from .errors import ContractError, ContractWarning
from .fusion import jit
from .ops import (
    Lowering,
    amax,
    amin,
    batch_stats,
    conv,
    cumsum,
    diagonal,
    dot,
    logsumexp,
    lower,
    matmul,
    max_pool,
    mean,
    outer,
    std,
    sum,
    sum_pool,
    tensordot,
    trace,
    var,
    vecdot,
)
from .ops.lax_style import dot_general
from .ops.moments import BatchStats
from .planner import OPTIMIZERS, Plan, SlicedPlan, Step, clear_caches, set_cache_dir
from .planner import cache_info as plan_cache_info
from .planner.optimizers.adapter import optimizer
from .semiring import Semiring
from .spec import Spec, parse

__all__ = [
    "BatchStats",
    "ContractError",
    "ContractWarning",
    "Expression",
    "Lowering",
    "OPTIMIZERS",
    "Plan",
    "Semiring",
    "SlicedPlan",
    "Spec",
    "Step",
    "amax",
    "amin",
    "batch_stats",
    "clear_caches",
    "compare",
    "conv",
    "cumsum",
    "diagonal",
    "doctor",
    "dot",
    "dot_general",
    "einsum",
    "expression",
    "jit",
    "logsumexp",
    "lower",
    "matmul",
    "max_pool",
    "mean",
    "optimizer",
    "outer",
    "parse",
    "plan",
    "plan_cache_info",
    "set_cache_dir",
    "set_cache_size",
    "std",
    "sum",
    "sum_pool",
    "tensordot",
    "trace",
    "var",
    "vecdot",
]

__version__ = "0.1.0"
