"""A tensor-network contraction: the norm of a periodic matrix product state.

Prints the plan report and draws the contraction tree with its per-step
costs. Run: ``python examples/tensor_network.py [--plot tn_plan.png]``
(without ``--plot`` the picture goes to a temporary directory).
"""

from __future__ import annotations

import argparse
import string
import tempfile
from pathlib import Path

import numpy as np

import contract


def mps_norm_spec(sites: int) -> str:
    """<psi|psi> of a periodic MPS: ket and bra tensors in a ring of ladders.

    >>> mps_norm_spec(2)
    'aeb,ced,bfa,dfc->'
    """
    letters = iter(string.ascii_letters)
    ket = [next(letters) for _ in range(sites)]
    bra = [next(letters) for _ in range(sites)]
    phys = [next(letters) for _ in range(sites)]
    terms = []
    for i in range(sites):
        j = (i + 1) % sites
        terms.append(ket[i] + phys[i] + ket[j])
    for i in range(sites):
        j = (i + 1) % sites
        terms.append(bra[i] + phys[i] + bra[j])
    return ",".join(terms) + "->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=None, help="where to save the picture")
    parser.add_argument("--sites", type=int, default=8)
    parser.add_argument("--bond", type=int, default=16)
    args = parser.parse_args()

    spec = mps_norm_spec(args.sites)
    rng = np.random.default_rng(0)
    tensors = [rng.standard_normal((args.bond, 2, args.bond)).astype(np.float32)
               for _ in range(2 * args.sites)]
    plan = contract.plan(spec, *tensors)
    print(plan)

    value = float(contract.einsum(spec, *tensors, optimize=plan))
    reference = float(np.einsum(spec, *[t.astype(np.float64) for t in tensors],
                                optimize=["einsum_path", *plan.path]))
    print(f"\n<psi|psi> = {value:.6g} (numpy float64: {reference:.6g})")
    np.testing.assert_allclose(value, reference, rtol=1e-3)

    out = args.plot or Path(tempfile.mkdtemp()) / "tensor_network_plan.png"
    plan.plot(out)
    print(f"plan picture written to {out}")


if __name__ == "__main__":
    main()
