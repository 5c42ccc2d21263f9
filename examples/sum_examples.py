"""The seed ``torch.sum`` examples, with contract.

Run: ``python examples/sum_examples.py``. Each call prints its result and the
einsum it lowers to.
"""

import numpy as np

import contract

tensor = [[1, 2], [3, 4]]

# Sum of all elements: 1 + 2 + 3 + 4.
total = contract.sum(tensor)
print(total)  # 10
assert total.item() == 10

# Along dim 0 ("sums columns"): [1 + 3, 2 + 4]; dim= and axis= are the same.
print(contract.sum(tensor, dim=0))  # [4 6]
assert contract.sum(tensor, axis=0).tolist() == [4, 6]

# Along dim 1 ("sums rows").
print(contract.sum(tensor, dim=1))  # [3 7]
assert contract.sum(tensor, dim=1).tolist() == [3, 7]

# keepdim keeps the rank, so the result broadcasts back against the input.
row_sums = contract.sum(tensor, dim=1, keepdim=True)
print(row_sums.tolist())  # [[3], [7]]
print((np.array(tensor) / row_sums).round(3).tolist())  # each row sums to 1

# A scalar sum broadcasts like any array (the seed's "broadcast summation").
x = np.array([[1.0, 2.0], [3.0, 4.0]])
print((x + contract.sum(x)).tolist())  # [[11.0, 12.0], [13.0, 14.0]]

# dtype rules: small integers accumulate and return int32 (no overflow) ...
print(contract.sum(np.full(10, 100, np.int8)))  # 1000 (int32)
# ... and dtype= casts the input first, then sums (PyTorch semantics).
print(contract.sum([1.5, 2.5, 3.5], dtype="int32"))  # 6 = 1 + 2 + 3

# What each call becomes:
print(contract.lower(contract.sum, tensor))
print(contract.lower(contract.sum, tensor, dim=0, keepdim=True))
