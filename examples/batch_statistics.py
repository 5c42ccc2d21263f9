"""Image batch statistics (the seed's "summary by example"), with contract.

Run: ``python examples/batch_statistics.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np

import contract

batch = np.random.default_rng(0).random((512, 3, 64, 64), dtype=np.float32)  # RGB images

# The seed's three sums.
ps = contract.sum(batch, dim=[0, 2, 3])  # per-channel pixel sums: 'abcd->b'
per_image = contract.sum(batch, dim=[1, 2, 3])  # per-image sums: 'abcd->a'
ts = contract.sum(batch)  # overall: 'abcd->'
print(f"Per-Channel Sums: {ps}\nPer-Image Sums: {per_image[:4]} ...\nTotal Sum: {ts}")

# Sum, mean and variance per channel in one compiled program, e.g. to
# normalise the images.
stats = contract.batch_stats(batch, axis=(0, 2, 3), keepdims=True)
normalised = (batch - stats.mean) / jnp.sqrt(stats.var + 1e-5)
print("per-channel mean", stats.mean.ravel(), "var", stats.var.ravel())
print("normalised: mean ~0", contract.mean(normalised, dim=(0, 2, 3)),
      "std ~1", contract.std(normalised, dim=(0, 2, 3)))
print(contract.lower(contract.batch_stats, batch, axis=(0, 2, 3)))

# Min and max are not einsums; compute them next to batch_stats in one
# jax.jit and XLA reads the batch for all of them in the same program.


@jax.jit
def quality_checks(x: jax.Array) -> dict:
    s = contract.batch_stats(x, axis=(1, 2, 3))
    return {"sum": s.sum, "mean": s.mean, "var": s.var,
            "min": jnp.min(x, axis=(1, 2, 3)), "max": jnp.max(x, axis=(1, 2, 3))}


checks = quality_checks(batch)
print({k: v[:3] for k, v in checks.items()})
np.testing.assert_allclose(checks["var"], batch.var(axis=(1, 2, 3)), rtol=1e-4)
