"""PrioritizedFrameReplayBuffer against the formulas of Schaul et al. 2016, computed here from the priorities the
test sets: sampling frequencies (chi-square), importance weights, maximal-priority insertion, the β schedule,
which transitions can be sampled (after the ring wraps, with n-step windows), pickling, the memory check."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sb3_dqn_atari import memory
from sb3_dqn_atari.agent.prioritized import PrioritizedFrameReplayBuffer
from sb3_dqn_atari.agent.replay import FrameReplayBuffer
from tests.test_n_step import History, newest_add, reference
from tests.test_replay import HEIGHT, WIDTH, Stream, play, streams

ALPHA, EPS = 0.6, 1e-6


def make(stream: Stream, n_steps: int = 1, **kwargs: Any) -> PrioritizedFrameReplayBuffer:
    return PrioritizedFrameReplayBuffer(
        stream.buffer_size,
        spaces.Box(0, 255, (stream.k * stream.c, HEIGHT, WIDTH), np.uint8),
        spaces.Discrete(5),
        device="cpu",
        n_envs=stream.n_envs,
        n_stack=stream.k,
        n_steps=n_steps,
        gamma=0.9,
        **kwargs,
    )


def fixed_stream(n_envs: int, k: int, buffer_size: int, steps: int, seed: int = 0) -> Stream:
    """A stream with terminals (1 in 8), truncations (1 in 16) and no restarts."""
    rng = np.random.default_rng(seed)
    events = rng.choice([0] * 13 + [1, 1, 2], size=(steps, n_envs)).tolist()
    return Stream(
        n_envs=n_envs,
        k=k,
        c=1,
        buffer_size=buffer_size,
        pad="zeros",
        seed=seed,
        frames_on_device=False,
        start_capacity=4,
        events=events,
        kinds=np.zeros((steps, n_envs), int).tolist(),
        resets=[False] * steps,
    )


def expected_sampleable(buffer: FrameReplayBuffer, history: History, n: int) -> np.ndarray:
    """(slot, env) -> can be sampled, from the stream alone: stored, frames kept, n-step return known."""
    out = np.zeros((buffer.buffer_size, buffer.n_envs), bool)
    for s in range(buffer.buffer_size):
        for e in range(buffer.n_envs):
            g = newest_add(s, history.n_adds, buffer.buffer_size)
            known = g is not None and reference(history.steps, g, e, n, 0.9) is not None
            out[s, e] = known and history.expected_valid(s, e)
    return out


def chi_square_bound(dof: int, z: float = 3.719) -> float:
    """Upper 1e-4 quantile of the chi-square distribution (Wilson-Hilferty approximation)."""
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


# ------------------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("batch_size", [1, 32])
def test_sampling_frequencies_match_p_alpha_over_the_sum(batch_size: int) -> None:
    """P(i) = p_i^α / Σ_k p_k^α (eq. 1), over the sampleable transitions only; stratified minibatches (32) have the
    same per-draw frequencies as single draws."""
    stream = fixed_stream(n_envs=2, k=4, buffer_size=2 * 40, steps=70)
    buffer = make(stream, n_steps=3)
    history = History(stream.buffer_size, stream.n_envs, stream.k)
    play(stream, [buffer], history)
    sampleable = expected_sampleable(buffer, history, 3)
    assert buffer.full and 50 < sampleable.sum() < 80
    rng = np.random.default_rng(1)
    slots, envs = np.nonzero(sampleable)
    leaves = slots * 2 + envs
    td_errors = rng.choice([-4.0, -1.0, 0.5, 1.0, 4.0], size=len(leaves)) * rng.uniform(0.8, 1.2, size=len(leaves))
    buffer.update_priorities(leaves, td_errors)
    probabilities = (np.abs(td_errors) + EPS) ** ALPHA
    probabilities /= probabilities.sum()

    np.random.seed(0)
    draws = 4_800
    counts = np.zeros(len(leaves))
    position = {int(leaf): i for i, leaf in enumerate(leaves)}
    for _ in range(draws // batch_size):
        batch = buffer.sample(batch_size)
        for leaf in batch.indices:
            counts[position[int(leaf)]] += 1  # KeyError: a transition that cannot be sampled was
    expected = draws * probabilities
    assert expected.min() > 5  # the chi-square approximation holds
    statistic = float(((counts - expected) ** 2 / expected).sum())
    assert statistic < chi_square_bound(len(leaves) - 1), statistic
    # and the test can fail: the same counts against p (α = 1) instead of p^α
    wrong = draws * np.abs(td_errors + EPS) / np.abs(td_errors + EPS).sum()
    assert float(((counts - wrong) ** 2 / wrong).sum()) > 3 * chi_square_bound(len(leaves) - 1)


def test_importance_weights_and_beta_schedule_match_the_formula() -> None:
    """w_j = (N·P(j))^-β / max_i w_i over the minibatch (Algorithm 1), β linear from β0 to 1 (section 3.4)."""
    stream = fixed_stream(n_envs=1, k=2, buffer_size=50, steps=40)
    buffer = make(stream, beta=0.4, beta_start=10, beta_steps=100)
    play(stream, [buffer], History(stream.buffer_size, stream.n_envs, stream.k))
    beta = 0.4 + 0.6 * (40 - 10) / 100  # agent step 40
    assert buffer.current_beta() == pytest.approx(beta)
    td_errors = np.linspace(0.0, 3.0, 40)
    buffer.update_priorities(np.arange(40), td_errors)
    np.random.seed(3)
    batch = buffer.sample(16)
    p_alpha = (td_errors + EPS) ** ALPHA
    probabilities = p_alpha[batch.indices] / p_alpha.sum()
    weights = (40 * probabilities) ** -beta
    np.testing.assert_allclose(batch.weights[:, 0].numpy(), weights / weights.max(), rtol=1e-6)
    assert batch.weights.dtype == th.float32 and batch.weights.max().item() == 1.0
    # the schedule's ends
    assert make(stream, beta=0.4, beta_start=10, beta_steps=100).current_beta() == 0.4
    done = make(stream, beta=0.4, beta_start=0, beta_steps=30)
    play(stream, [done], History(stream.buffer_size, stream.n_envs, stream.k))
    assert done.current_beta() == 1.0


def test_new_transitions_enter_at_the_maximal_priority_seen() -> None:
    """p_1 = 1; a new transition gets max_{i<t} p_i (the running maximum), even after that maximum was lowered."""
    stream = fixed_stream(n_envs=1, k=1, buffer_size=30, steps=25)
    buffer = make(stream)
    history = History(stream.buffer_size, stream.n_envs, stream.k)
    play(stream, [buffer], history, steps=range(10))
    np.testing.assert_array_equal(buffer.priorities()[:10, 0], np.ones(10))  # 1^α
    buffer.update_priorities(np.array([3, 4]), np.array([5.0, -2.0]))
    buffer.update_priorities(np.array([3]), np.array([0.5]))  # the transition that had 5 now has 0.5
    play(stream, [buffer], history, steps=range(10, 12), state=_state_after(stream, buffer, 10))
    got = buffer.priorities()[:, 0]
    assert got[3] == pytest.approx((0.5 + EPS) ** ALPHA) and got[4] == pytest.approx((2.0 + EPS) ** ALPHA)
    np.testing.assert_allclose(got[10:12], (5.0 + EPS) ** ALPHA)
    assert buffer.max_priority == 5.0 + EPS


def _state_after(stream: Stream, buffer: Any, steps: int) -> Any:
    """Replay the first ``steps`` of ``stream`` into throw-away buffers to get play()'s state after them."""
    throwaway = make(stream)
    return play(stream, [throwaway], History(stream.buffer_size, stream.n_envs, stream.k), steps=range(steps))


# ------------------------------------------------------------------------------------------ validity
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_only_sampleable_transitions_have_a_priority(stream: Stream, n: int, seed: int) -> None:
    """After any stream (ring wrap-around, restarts, 1-3 envs), with priority updates halfway: a leaf is non-zero
    exactly for the transitions the stream says can be sampled, and the sampled ones are those transitions."""
    buffer = make(stream, n_steps=n)
    history = History(stream.buffer_size, stream.n_envs, stream.k)
    half = len(stream.events) // 2
    state = play(stream, [buffer], history, steps=range(half))
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(buffer.priorities().ravel())
    buffer.update_priorities(active, rng.exponential(size=len(active)))
    play(stream, [buffer], history, steps=range(half, len(stream.events)), state=state)
    sampleable = expected_sampleable(buffer, history, n)
    np.testing.assert_array_equal(buffer.priorities() > 0, sampleable)
    assert buffer.tree.total == pytest.approx(buffer.priorities().sum())
    if sampleable.any():
        np.random.seed(seed)
        batch = buffer.sample(8)
        slots, envs = np.divmod(batch.indices, stream.n_envs)
        assert sampleable[slots, envs].all()
        for i, (s, e) in enumerate(zip(slots, envs, strict=True)):
            g = newest_add(int(s), history.n_adds, buffer.buffer_size)
            assert g is not None
            want = reference(history.steps, g, int(e), n, 0.9)
            assert want is not None
            np.testing.assert_array_equal(batch.observations[i].numpy(), want["obs"])
            np.testing.assert_array_equal(batch.next_observations[i].numpy(), want["next_obs"])
            assert batch.rewards[i, 0].item() == pytest.approx(want["reward"], rel=1e-6, abs=1e-6)
    else:
        with pytest.raises(ValueError, match="no transition can be sampled yet"):
            buffer.sample(8)


def test_ring_wrap_replaces_old_priorities() -> None:
    """Once the ring wraps, an overwritten slot's old priority is gone: the new transition enters at the maximal
    priority, and the oldest slots whose frames were overwritten leave the tree."""
    stream = fixed_stream(n_envs=1, k=4, buffer_size=20, steps=45)
    buffer = make(stream)
    history = History(stream.buffer_size, stream.n_envs, stream.k)
    state = play(stream, [buffer], history, steps=range(20))
    buffer.update_priorities(np.arange(20), np.full(20, 0.25))
    buffer.update_priorities(np.array([0]), np.array([9.0]))  # max priority 9 + eps, slot 0 keeps it
    state = play(stream, [buffer], history, steps=range(20, 27), state=state)  # slots 0..6 overwritten
    got = buffer.priorities()[:, 0]
    np.testing.assert_allclose(got[:7], (9.0 + EPS) ** ALPHA)
    sampleable = expected_sampleable(buffer, history, 1)[:, 0]
    np.testing.assert_array_equal(got > 0, sampleable)
    np.testing.assert_allclose(got[7:][sampleable[7:]], (0.25 + EPS) ** ALPHA)
    assert not sampleable[7:11].all()  # some of the oldest lost frames to the wrap (the stream makes sure)


# ------------------------------------------------------------------------------------------ state
def test_pickle_keeps_the_tree_and_the_draws() -> None:
    stream = fixed_stream(n_envs=2, k=4, buffer_size=2 * 30, steps=50)
    buffer = make(stream, n_steps=3, beta_steps=80)
    play(stream, [buffer], History(stream.buffer_size, stream.n_envs, stream.k))
    active = np.flatnonzero(buffer.priorities().ravel())
    buffer.update_priorities(active, np.random.default_rng(0).exponential(size=len(active)))
    copy = pickle.loads(pickle.dumps(buffer))
    np.testing.assert_array_equal(copy.tree.nodes, buffer.tree.nodes)
    assert (copy.max_priority, copy.beta_steps, copy.current_beta()) == (
        buffer.max_priority,
        80,
        buffer.current_beta(),
    )
    np.random.seed(5)
    a = buffer.sample(16)
    np.random.seed(5)
    b = copy.sample(16)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert th.equal(a.weights, b.weights) and th.equal(a.observations, b.observations)


def test_memory_check_counts_the_sum_tree() -> None:
    stream = fixed_stream(n_envs=2, k=4, buffer_size=2 * 1000, steps=1)
    plain = FrameReplayBuffer(
        stream.buffer_size, spaces.Box(0, 255, (4, HEIGHT, WIDTH), np.uint8), spaces.Discrete(5), n_envs=2, n_stack=4
    )
    prioritized = make(stream)
    # 2 x 1000 leaves round up to 2**11; 2 * 2**11 float64 nodes, spread over the 1000 ring slots
    tree_per_slot = math.ceil(2 * 2**11 * 8 / 1000)
    assert memory.slot_nbytes(prioritized) == (memory.slot_nbytes(plain)[0] + tree_per_slot, 0)


def test_bad_settings_are_refused() -> None:
    stream = fixed_stream(n_envs=1, k=1, buffer_size=10, steps=1)
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        make(stream, epsilon=0.0)
    with pytest.raises(ValueError, match="beta"):
        make(stream, beta=1.5)


def test_sb3_dqn_can_use_it() -> None:
    """SB3's own DQN trains with it (its train reads SB3's fields; priorities then stay at their entry value)."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.torch_layers import FlattenExtractor

    from tests.test_replay import fake_image_venv

    model = DQN(
        "CnnPolicy",
        fake_image_venv(),
        buffer_size=200,
        learning_starts=50,
        replay_buffer_class=PrioritizedFrameReplayBuffer,
        policy_kwargs={"features_extractor_class": FlattenExtractor},
        device="cpu",
        seed=0,
    )
    model.learn(120)
    assert model._n_updates > 0 and isinstance(model.replay_buffer, PrioritizedFrameReplayBuffer)
    assert model.replay_buffer.max_priority == 1.0
