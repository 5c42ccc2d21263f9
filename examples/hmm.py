"""A hidden Markov model as one einsum: forward log-likelihood in the log
semiring, posteriors and the Viterbi path from its gradients.

Run: ``python examples/hmm.py``. A batch of observation sequences of an HMM
with 12 states and 4 symbols, 10 steps long. The probability of a sequence
sums, over every state path ``z_0 ... z_{T-1}``, the product of the initial,
transition and emission probabilities along it: an einsum of 2T operands in
which each state label ``z_t`` is shared by three of them (``trans`` of
``t-1 -> t``, ``trans`` of ``t -> t+1`` and the emission at ``t``). In log
space (``semiring="log"``: ⊕ is log-add-exp, ⊗ is +) that einsum *is* the
forward algorithm, and the planner finds its order (a sweep along the chain)
by itself. Then:

* the gradient of the log-likelihood with respect to the per-time emission
  scores is the posterior ``p(z_t | x)`` (the forward-backward algorithm);
* the same einsum in ``semiring="max-plus"`` is the score of the best path,
  and its gradient is that path's one-hot indicator (Viterbi decoding).

Each is checked against NumPy float64 dynamic programming.
"""

from __future__ import annotations

import jax
import numpy as np

import contract

STATES, SYMBOLS, STEPS, BATCH = 12, 4, 10, 8


def chain_spec(steps: int) -> str:
    """The HMM as an einsum: initial, transitions, then per-time emissions.

    >>> chain_spec(3)
    'z0, z0 z1, z1 z2, b z0, b z1, b z2 -> b'
    """
    z = [f"z{t}" for t in range(steps)]
    terms = [z[0]] + [f"{z[t - 1]} {z[t]}" for t in range(1, steps)] + [f"b {s}" for s in z]
    return ", ".join(terms) + " -> b"


SPEC = chain_spec(STEPS)


def score(log_init: jax.Array, log_trans: jax.Array, emissions: jax.Array,
          semiring: str) -> jax.Array:
    """log p(x) per sequence ("log") or the best path's log score ("max-plus");
    ``emissions`` is (T, batch, states): log p(x_t | z_t) of each sequence."""
    return contract.einsum(SPEC, log_init, *[log_trans] * (STEPS - 1), *emissions,
                           semiring=semiring)


# --- references: NumPy float64 dynamic programming --------------------------------------


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(x - top), axis=axis)) + np.squeeze(top, axis)


def forward_backward(log_init, log_trans, em):
    """log p(x) and the posteriors p(z_t | x), (T, batch, states)."""
    alpha = [log_init[None] + em[0]]
    for t in range(1, len(em)):
        alpha.append(logsumexp(alpha[-1][:, :, None] + log_trans[None], axis=1) + em[t])
    beta = [np.zeros_like(alpha[0])]
    for t in range(len(em) - 1, 0, -1):
        beta.insert(0, logsumexp(log_trans[None] + (em[t] + beta[0])[:, None, :], axis=2))
    loglik = logsumexp(alpha[-1], axis=1)
    return loglik, np.exp(np.stack(alpha) + np.stack(beta) - loglik[None, :, None])


def viterbi(log_init, log_trans, em):
    """The best path's log score and its states, (batch,) and (batch, T)."""
    delta, back = log_init[None] + em[0], []
    for t in range(1, len(em)):
        terms = delta[:, :, None] + log_trans[None]
        back.append(np.argmax(terms, axis=1))
        delta = np.max(terms, axis=1) + em[t]
    path = [np.argmax(delta, axis=1)]
    for pointers in back[::-1]:
        path.insert(0, pointers[np.arange(len(delta)), path[0]])
    return np.max(delta, axis=1), np.stack(path, axis=1)


def main() -> None:
    rng = np.random.default_rng(0)

    def stochastic(*shape: int) -> np.ndarray:  # rows sum to 1
        p = rng.random(shape) + 0.05
        return p / p.sum(axis=-1, keepdims=True)

    init, trans, emit = stochastic(STATES), stochastic(STATES, STATES), stochastic(STATES, SYMBOLS)
    obs = rng.integers(0, SYMBOLS, (BATCH, STEPS))
    # log p(x_t | z_t) of each sequence at each time: (T, batch, states).
    em64 = np.log(emit)[:, obs].transpose(2, 1, 0)
    log_init, log_trans, em = (np.log(init).astype(np.float32), np.log(trans).astype(np.float32),
                               em64.astype(np.float32))

    plan = contract.plan(SPEC, log_init, *[log_trans] * (STEPS - 1), *em, semiring="log")
    print(f"{2 * STEPS} operands, {len(plan.steps)} pairwise steps, planned "
          f"{plan.flops:.3g} FLOPs (instead of a sum over {STATES}^{STEPS} paths)")

    # Forward algorithm = the log-semiring einsum; its gradient = posteriors.
    def total(e: jax.Array, semiring: str) -> tuple[jax.Array, jax.Array]:
        per_sequence = score(log_init, log_trans, e, semiring)
        return per_sequence.sum(), per_sequence

    (_, loglik), posterior = jax.jit(jax.value_and_grad(total, has_aux=True),
                                     static_argnums=1)(em, "log")
    want_ll, want_post = forward_backward(np.log(init), np.log(trans), em64)
    print(f"log p(x) of the first 3 sequences: {np.round(np.asarray(loglik[:3]), 4)} "
          f"(numpy float64: {np.round(want_ll[:3], 4)})")
    np.testing.assert_allclose(np.asarray(loglik), want_ll, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(posterior), want_post, atol=1e-4)
    print(f"posteriors p(z_t | x) (gradient of log p(x)) match forward-backward; "
          f"each sums to 1: {np.allclose(np.asarray(posterior).sum(-1), 1, atol=1e-4)}")

    # Viterbi = the max-plus einsum; its gradient is the best path's indicator.
    (_, best), onehot = jax.jit(jax.value_and_grad(total, has_aux=True),
                                static_argnums=1)(em, "max-plus")
    want_best, want_path = viterbi(np.log(init), np.log(trans), em64)
    onehot = np.asarray(onehot)
    assert set(np.unique(onehot)) <= {0.0, 1.0} and np.all(onehot.sum(-1) == 1)
    path = onehot.argmax(-1).T  # (batch, T)
    print(f"Viterbi path of sequence 0: {''.join('0123456789ab'[s] for s in path[0])}")
    np.testing.assert_array_equal(path, want_path)
    np.testing.assert_allclose(np.asarray(best), want_best, rtol=1e-5)
    print(f"all {BATCH} Viterbi paths match NumPy's dynamic programming")


if __name__ == "__main__":
    main()
