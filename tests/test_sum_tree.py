"""SumTree against a plain list: the same totals, prefix-sum searches and values after random updates."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sb3_dqn_atari.agent.sum_tree import SumTree


def _search(values: list[float], target: float) -> int:
    """The O(N) reference: the first i with target < values[0] + ... + values[i]."""
    running = 0.0
    for i, value in enumerate(values):
        running += value
        if target < running:
            return i
    raise AssertionError("target beyond the total")


@pytest.mark.parametrize("capacity", [1, 2, 5, 8, 37, 1000])
def test_random_updates_match_a_list(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    reference = [0.0] * capacity
    assert tree.total == 0.0
    for _ in range(60):
        # a batch of updates, with repeated leaves (the last value wins) and some zeros
        leaves = rng.integers(0, capacity, size=int(rng.integers(1, 12)))
        values = rng.exponential(1.0, size=len(leaves)) * (rng.random(len(leaves)) < 0.85)
        tree.set(leaves, values)
        for leaf, value in zip(leaves, values, strict=True):
            reference[int(leaf)] = float(value)
        assert tree.total == pytest.approx(sum(reference), rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(tree.get(np.arange(capacity)), reference)
        if sum(reference) > 0:
            targets = rng.random(50) * sum(reference) * (1 - 1e-12)
            found = tree.find(targets)
            expected = [_search(reference, t) for t in targets]
            # a target within rounding of a boundary may fall on either side of it
            for target, got, want in zip(targets, found, expected, strict=True):
                if got != want:
                    boundary = sum(reference[: max(got, want)])
                    assert abs(target - boundary) < 1e-9, (target, got, want)
                assert reference[int(got)] > 0  # never a leaf of zero


def test_prefix_sum_boundaries_and_zero_leaves() -> None:
    tree = SumTree(6)
    tree.set(np.arange(6), [0.0, 2.0, 0.0, 0.0, 1.0, 0.0])
    # leaf 1 covers [0, 2), leaf 4 covers [2, 3)
    np.testing.assert_array_equal(tree.find(np.array([0.0, 1.999, 2.0, 2.5, np.nextafter(3.0, 0)])), [1, 1, 4, 4, 4])
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3.0\)"):
        tree.find(np.array([3.0]))
    with pytest.raises(ValueError, match="finite and non-negative"):
        tree.set([0], [-1.0])
    with pytest.raises(IndexError):
        tree.set([6], [1.0])
    empty = SumTree(4)
    with pytest.raises(ValueError, match="empty"):
        empty.find(np.array([0.0]))


def test_pickle_keeps_leaves_and_rebuilds_identical_sums() -> None:
    rng = np.random.default_rng(0)
    tree = SumTree(1000)
    for _ in range(200):
        tree.set(rng.integers(0, 1000, size=5), rng.random(5) ** 3)
        tree.set([int(rng.integers(0, 1000))], [float(rng.random())])
    data = pickle.dumps(tree)
    assert len(data) < 1000 * 8 + 500  # the leaves, not the internal nodes
    copy = pickle.loads(data)
    np.testing.assert_array_equal(copy.nodes, tree.nodes)  # every partial sum bit for bit
    targets = rng.random(100) * tree.total
    np.testing.assert_array_equal(copy.find(targets), tree.find(targets))


def test_nbytes_counts_the_float64_nodes() -> None:
    # 1,000,000 leaves round up to 2**20; the array holds 2 * 2**20 float64 nodes
    assert SumTree(1_000_000).nbytes == 2 * 2**20 * 8
    assert SumTree(1).nbytes == 2 * 8
