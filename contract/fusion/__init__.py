"""``contract.jit``: jaxpr -> contraction clusters -> plans -> a rewritten program.

:mod:`.net` reads contraction-expressible equations into a labelled network,
:mod:`.cluster` plans one cluster and decides whether rewriting pays,
:mod:`.program` rebuilds the jaxpr with the planned clusters, :mod:`.explain`
reports what happened, and :mod:`.jitted` is the ``jax.jit``-like wrapper.
"""

from .jitted import Jitted, jit

__all__ = ["Jitted", "jit"]
