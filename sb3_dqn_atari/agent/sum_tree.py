"""A sum tree: the data structure of proportional prioritized replay (Schaul et al. 2016, Appendix B.2.1).

"Every node is the sum of its children, with the priorities as the leaf nodes": the total is the root, a leaf is
found from a prefix sum in ``O(log N)``, and a leaf is changed in ``O(log N)``. The layout is dqn_zoo's
``replay.SumTree`` (one float64 array; node ``i`` has children ``2i`` and ``2i + 1``, the root is node 1, the
``capacity`` leaves start at ``first_leaf``, a power of two). As in dqn_zoo, a parent is always recomputed as
``left + right`` from its two children, never by adding a difference (Dopamine's ``sum_tree.py`` does that, and
rounding then drifts): the whole tree is a function of its leaves, so pickling only the leaves restores it bit
for bit (exact resume), and a subtree whose leaves are all zero sums to exactly zero (never entered by a search).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SumTree:
    """``capacity`` non-negative leaves and their partial sums.

    :param capacity: number of leaves (all zero at the start)
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a sum tree needs at least one leaf, got capacity={capacity}")
        self.capacity = int(capacity)
        self.depth = max(int(np.ceil(np.log2(self.capacity))), 0)
        self.first_leaf = 1 << self.depth
        # np.zeros maps pages lazily: they become resident as leaves are written.
        self.nodes = np.zeros(2 * self.first_leaf, dtype=np.float64)

    @property
    def total(self) -> float:
        """The sum of all leaves."""
        return float(self.nodes[1])

    @property
    def nbytes(self) -> int:
        """Bytes of the tree (counted by :func:`sb3_dqn_atari.agent.memory.slot_nbytes`)."""
        return int(self.nodes.nbytes)

    def get(self, leaves: np.ndarray) -> np.ndarray:
        """The values of ``leaves`` (indices in ``[0, capacity)``)."""
        leaves = np.asarray(leaves, dtype=np.int64)
        if leaves.size and (leaves.min() < 0 or leaves.max() >= self.capacity):
            raise IndexError(f"sum tree leaf out of range [0, {self.capacity})")
        return self.nodes[self.first_leaf + leaves]

    def set(self, leaves: np.ndarray, values: np.ndarray) -> None:
        """Set ``leaves`` to ``values`` (finite, >= 0) and update the sums above them.

        A leaf given twice takes its last value (what setting them one after the other would do).
        """
        leaves = np.atleast_1d(np.asarray(leaves, dtype=np.int64))
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), leaves.shape)
        if not leaves.size:
            return
        if leaves.min() < 0 or leaves.max() >= self.capacity:
            raise IndexError(f"sum tree leaf out of range [0, {self.capacity})")
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError("sum tree values must be finite and non-negative")
        nodes = self.nodes
        if leaves.size <= 4:  # an add() changes a few leaves: plain loops are faster than numpy calls
            for leaf, value in zip(leaves.tolist(), values.tolist(), strict=True):
                node = leaf + self.first_leaf
                nodes[node] = value
                node //= 2
                while node:
                    nodes[node] = nodes[2 * node] + nodes[2 * node + 1]
                    node //= 2
            return
        # the last occurrence of each leaf wins
        unique, first_in_reversed = np.unique(leaves[::-1], return_index=True)
        nodes[unique + self.first_leaf] = values[::-1][first_in_reversed]
        parents = unique + self.first_leaf
        for _ in range(self.depth):
            # a parent listed twice gets the same sum twice: its children are final at this level
            parents >>= 1
            left = parents << 1
            nodes[parents] = nodes[left] + nodes[left + 1]

    def find(self, targets: np.ndarray) -> np.ndarray:
        """For each target in ``[0, total)``: the leaf ``i`` with ``sum(leaves[:i]) <= target < sum(leaves[:i+1])``.

        Vectorised over the targets (one pass per tree level). Rounding can make the target left after a step to
        the right reach that right subtree's sum and end on a leaf of zero; such a search is redone keeping the
        target strictly inside each subtree it enters, so a leaf of value zero is never returned.
        """
        total = self.total
        if not total > 0:
            raise ValueError("the sum tree is empty (all leaves are zero): nothing to sample")
        targets = np.asarray(targets, dtype=np.float64)
        if targets.size and (targets.min() < 0 or targets.max() >= total):
            raise ValueError(f"sum tree targets must lie in [0, {total})")
        nodes = self.nodes
        node = np.ones(targets.shape, dtype=np.int64)
        remaining = targets.copy()
        for _ in range(self.depth):
            node <<= 1
            left_sum = nodes.take(node)
            right = remaining >= left_sum
            remaining -= left_sum * right
            node += right
        found = node - self.first_leaf
        stray = nodes[node] == 0  # rounding walked into a subtree of zeros (astronomically rare): walk again
        for i in np.flatnonzero(stray):
            found[i] = self._find_clamped(float(targets.flat[i]))
        return found

    def _find_clamped(self, target: float) -> int:
        """One search that keeps the remaining target strictly below the sum of the subtree it enters."""
        nodes, node, remaining = self.nodes, 1, target
        for _ in range(self.depth):
            left_sum = float(nodes[2 * node])
            if remaining >= left_sum and nodes[2 * node + 1] > 0:
                remaining = min(remaining - left_sum, float(np.nextafter(nodes[2 * node + 1], 0.0)))
                node = 2 * node + 1
            else:
                remaining = min(remaining, float(np.nextafter(left_sum, 0.0)))
                node = 2 * node
        return node - self.first_leaf

    def __getstate__(self) -> dict[str, Any]:
        """The leaves only; ``__setstate__`` recomputes the sums (the same values, see the module docstring)."""
        state = self.__dict__.copy()
        state["nodes"] = self.nodes[self.first_leaf : self.first_leaf + self.capacity].copy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        leaves = state.pop("nodes")
        self.__dict__.update(state)
        self.nodes = np.zeros(2 * self.first_leaf, dtype=np.float64)
        self.nodes[self.first_leaf : self.first_leaf + self.capacity] = leaves
        for level in range(self.depth - 1, -1, -1):
            parents = np.arange(1 << level, 2 << level)
            self.nodes[parents] = self.nodes[2 * parents] + self.nodes[2 * parents + 1]
