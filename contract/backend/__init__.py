"""The backend: the only place where plans meet JAX.

:mod:`.jax` lowers a :class:`~contract.planner.Plan` to ``dot_general``s,
:mod:`.sliced` runs a :class:`~contract.planner.SlicedPlan` as one
``lax.scan``, :mod:`.layout` reads how operands are sharded, :mod:`.sharded`
runs a sharded plan with ``jax.shard_map``, :mod:`.program` picks the runner
for any plan, and :mod:`.measure` times compiled candidates for
``optimize="measure"``. :mod:`.blas` and :mod:`.scan` call contract's native
CPU kernels (GEMM, cumsum), whose handlers :mod:`.ffi` registers.
"""
