"""contract: einsum-centric tensor contractions, planned and compiled with JAX.

>>> import numpy as np, contract
>>> contract.einsum("ij,jk->ik", np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)).tolist()
[[3.0, 3.0], [3.0, 3.0]]
"""

from .api import Expression, einsum, expression, plan
from .errors import ContractError
from .plan import OPTIMIZERS, Plan, Step, plan_cache_info
from .spec import Spec, parse

__all__ = [
    "ContractError",
    "Expression",
    "OPTIMIZERS",
    "Plan",
    "Spec",
    "Step",
    "einsum",
    "expression",
    "parse",
    "plan",
    "plan_cache_info",
]

__version__ = "0.1.0"
