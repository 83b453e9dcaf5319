"""n-step returns on the frames-once memory against a naive reference written here.

The reference keeps every transition in add order and computes, for transition ``g`` of env ``e``,
``R = sum_{j<m} gamma^j r_{g+j}``, the ``next_obs`` of transition ``g + m - 1``, ``gamma^m`` and that transition's
termination, where ``m <= n`` stops at the first episode end (terminal, life loss, truncation) or where the next
transition starts a new episode (a new ``learn()``); a transition whose window is not stored yet is not
sampleable. Streams: random hypothesis streams (terminals, truncations, restarts, ring wrap-around, 1-3 envs), and
real Breakout through NatureAtariWrapper (life losses are terminals, truncations at a frame cap) collected by SB3's
own ``collect_rollouts``. SB3's ``NStepReplayBuffer`` fed the same stream is a second reference where its rules
apply (it does not see restarts).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

from sb3_dqn_atari import NatureDQN
from sb3_dqn_atari.agent.replay import FrameReplayBuffer
from tests.test_replay import HEIGHT, WIDTH, NaiveReplay, Stream, play, streams


@dataclass
class Step:
    obs: np.ndarray
    next_obs: np.ndarray
    action: int
    reward: float  # the float32 the buffers store
    end: bool  # done: terminal or truncation
    terminal: bool  # done and not a truncation
    start: bool  # the first transition of its episode


@dataclass
class History(NaiveReplay):
    """NaiveReplay (which says whose frames are still stored) that also keeps every step, per env, in order."""

    steps: list[list[Step]] = field(default_factory=list)

    def add(self, obs, next_obs, action, reward, done, infos, episode_starts) -> None:  # type: ignore[no-untyped-def]
        self.steps.append(
            [
                Step(
                    obs=obs[e].copy(),
                    next_obs=next_obs[e].copy(),
                    action=int(action[e]),
                    reward=float(np.float32(reward[e])),
                    end=bool(done[e]),
                    terminal=bool(done[e]) and not infos[e].get("TimeLimit.truncated", False),
                    start=episode_starts[e] == self.n_adds,
                )
                for e in range(self.n_envs)
            ]
        )
        super().add(obs, next_obs, action, reward, done, infos, episode_starts)


def reference(steps: list[list[Step]], g: int, e: int, n: int, gamma: float) -> dict[str, Any] | None:
    """The n-step transition starting at add ``g`` of env ``e``, or None while its return is not known."""
    total = 0.0
    for j in range(n):
        if g + j >= len(steps):
            return None  # the window runs past the newest transition
        step = steps[g + j][e]
        total += gamma**j * step.reward
        restart = g + j + 1 < len(steps) and steps[g + j + 1][e].start
        if step.end or restart or j == n - 1:
            return {
                "obs": steps[g][e].obs,
                "action": steps[g][e].action,
                "reward": total,
                "next_obs": step.next_obs,
                "done": float(step.terminal),
                "discount": gamma ** (j + 1),
                "cut_by_restart": restart and not step.end and j < n - 1,
            }
    raise AssertionError("unreachable")


def newest_add(slot: int, n_adds: int, n_slots: int) -> int | None:
    """The add() number stored in ``slot``: the newest ``g < n_adds`` with ``g % n_slots == slot``."""
    if n_adds <= slot:
        return None
    return slot + ((n_adds - 1 - slot) // n_slots) * n_slots


def check_n_step(buffer: FrameReplayBuffer, steps: list[list[Step]], frames_kept: Any, n: int, gamma: float) -> int:
    """Every (slot, env): sampleable exactly when the reference knows its return and its frames are kept, and then
    equal to the reference. Returns how many were compared."""
    n_slots, n_envs = buffer.buffer_size, buffer.n_envs
    slots, envs, expected = [], [], []
    for s in range(n_slots):
        for e in range(n_envs):
            g = newest_add(s, len(steps), n_slots)
            want = None if g is None or not frames_kept(s, e) else reference(steps, g, e, n, gamma)
            slots.append(s)
            envs.append(e)
            expected.append(want)
    slots_a, envs_a = np.array(slots), np.array(envs)
    valid = buffer.valid_mask(slots_a, envs_a)
    np.testing.assert_array_equal(valid, [w is not None for w in expected])
    if not valid.any():
        return 0
    samples = buffer._get_samples(slots_a[valid], env_indices=envs_a[valid])
    wanted = [w for w in expected if w is not None]
    # one-step samples are SB3's, without discounts (the algorithm uses gamma)
    discounts = samples.discounts if n > 1 else th.full_like(samples.rewards, gamma)
    assert (samples.discounts is None) == (n == 1)
    for i, want in enumerate(wanted):
        np.testing.assert_array_equal(samples.observations[i].numpy(), want["obs"])
        np.testing.assert_array_equal(samples.next_observations[i].numpy(), want["next_obs"])
        assert samples.actions[i, 0].item() == want["action"]
        np.testing.assert_allclose(samples.rewards[i, 0].item(), want["reward"], rtol=1e-6, atol=1e-6)
        assert samples.dones[i, 0].item() == want["done"]
        np.testing.assert_allclose(discounts[i, 0].item(), want["discount"], rtol=1e-7)
    assert samples.rewards.dtype == discounts.dtype == th.float32
    return len(wanted)


# ------------------------------------------------------------------------------------ random streams
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.integers(1, 5), st.sampled_from([0.99, 0.5, 1.0]))
def test_random_streams_equal_the_naive_n_step_reference(stream: Stream, n: int, gamma: float) -> None:
    obs_space = spaces.Box(0, 255, (stream.k * stream.c, HEIGHT, WIDTH), np.uint8)
    buffer = FrameReplayBuffer(
        stream.buffer_size,
        obs_space,
        spaces.Discrete(5),
        device="cpu",
        n_envs=stream.n_envs,
        n_stack=stream.k,
        frames_on_device=stream.frames_on_device,
        n_steps=n,
        gamma=gamma,
    )
    sb3 = NStepReplayBuffer(
        stream.buffer_size, obs_space, spaces.Discrete(5), device="cpu", n_envs=stream.n_envs, n_steps=n, gamma=gamma
    )
    history = History(stream.buffer_size, stream.n_envs, stream.k)
    play(stream, [buffer, sb3], history)
    check_n_step(buffer, history.steps, history.expected_valid, n, gamma)

    # SB3's NStepReplayBuffer on the transitions whose windows it reads the same way (no restart inside)
    pairs = [(s, e) for s in range(buffer.buffer_size) for e in range(buffer.n_envs)]
    valid = [p for p in pairs if buffer.valid_mask(np.array([p[0]]), np.array([p[1]]))[0]]
    comparable = []
    for s, e in valid:
        g = newest_add(s, len(history.steps), buffer.buffer_size)
        assert g is not None
        want = reference(history.steps, g, e, n, gamma)
        if want is not None and not want["cut_by_restart"]:
            comparable.append((s, e))
    if comparable:
        slots = np.array([p[0] for p in comparable])
        envs = np.array([p[1] for p in comparable])
        state = np.random.get_state()
        np.random.seed(0)
        sb3_envs = np.random.randint(0, buffer.n_envs, size=slots.shape)  # what SB3's _get_samples will draw
        np.random.seed(0)
        theirs = sb3._get_samples(slots)
        np.random.set_state(state)
        keep = sb3_envs == envs
        if keep.any():
            ours = buffer._get_samples(slots[keep], env_indices=envs[keep])
            for name in ("observations", "next_observations", "actions", "dones"):
                np.testing.assert_array_equal(getattr(ours, name).numpy(), getattr(theirs, name)[keep].numpy())
            np.testing.assert_allclose(ours.rewards.numpy(), theirs.rewards[keep].numpy(), rtol=1e-6, atol=1e-6)
            assert theirs.discounts is not None
            mine = ours.discounts.numpy() if ours.discounts is not None else np.full((int(keep.sum()), 1), gamma)
            np.testing.assert_allclose(mine, theirs.discounts[keep].numpy(), rtol=1e-6)


def test_one_step_is_unchanged_and_n_step_waits_for_its_window() -> None:
    """n_steps=1 returns no discounts (SB3's one-step samples); with n = 3 the two newest transitions of a running
    episode are not sampleable, and become so as the episode goes on or ends."""
    obs_space = spaces.Box(0, 255, (1, HEIGHT, WIDTH), np.uint8)
    one = FrameReplayBuffer(10, obs_space, spaces.Discrete(2), device="cpu", n_stack=1)
    three = FrameReplayBuffer(10, obs_space, spaces.Discrete(2), device="cpu", n_stack=1, n_steps=3, gamma=0.5)
    frames = [np.full((1, 1, HEIGHT, WIDTH), i, np.uint8) for i in range(10)]

    def add(buffer: FrameReplayBuffer, i: int, done: bool) -> None:
        buffer.add(frames[i], frames[i + 1], np.array([0]), np.array([float(i)]), np.array([done]), [{}])

    for i in range(3):
        add(one, i, False)
        add(three, i, False)
    assert one._get_samples(np.array([2]), env_indices=np.array([0])).discounts is None
    np.testing.assert_array_equal(three.valid_mask(np.arange(3), np.zeros(3, int)), [True, False, False])
    early = FrameReplayBuffer(10, obs_space, spaces.Discrete(2), device="cpu", n_stack=1, n_steps=3)
    for i in range(2):
        add(early, i, False)
    with pytest.raises(ValueError, match="no n-step return is complete yet"):
        early.sample(4)
    add(three, 3, True)  # the episode ends: every window is known
    np.testing.assert_array_equal(three.valid_mask(np.arange(4), np.zeros(4, int)), [True] * 4)
    samples = three._get_samples(np.arange(4), env_indices=np.zeros(4, int))
    assert samples.discounts is not None
    # by hand: rewards 0, 1, 2, 3 (terminal at 3), gamma 0.5
    np.testing.assert_allclose(samples.rewards[:, 0].numpy(), [0 + 0.5 + 0.25 * 2, 1 + 0.5 * 2 + 0.25 * 3, 2 + 1.5, 3])
    np.testing.assert_allclose(samples.discounts[:, 0].numpy(), [0.125, 0.125, 0.25, 0.5])
    np.testing.assert_array_equal(samples.dones[:, 0].numpy(), [0, 1, 1, 1])
    np.testing.assert_array_equal(samples.next_observations[:, 0, 0, 0].numpy(), [3, 4, 4, 4])


# ------------------------------------------------------------------------------------ real Breakout
class Recorder(FrameReplayBuffer):
    """A FrameReplayBuffer that also keeps every add() call (the reference's input) and the games' lives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps: list[list[Step]] = []
        self.lives: list[list[int]] = []

    def add(self, obs, next_obs, action, reward, done, infos) -> None:  # type: ignore[no-untyped-def]
        previous = self.steps[-1] if self.steps else None
        self.steps.append(
            [
                Step(
                    obs=np.array(obs[e]),
                    next_obs=np.array(next_obs[e]),
                    action=int(np.asarray(action).reshape(-1)[e]),
                    reward=float(np.float32(reward[e])),
                    end=bool(done[e]),
                    terminal=bool(done[e]) and not infos[e].get("TimeLimit.truncated", False),
                    start=previous is None or previous[e].end,
                )
                for e in range(self.n_envs)
            ]
        )
        self.lives.append([int(info.get("lives", -1)) for info in infos])
        super().add(obs, next_obs, action, reward, done, infos)


def test_real_breakout_life_losses_and_truncations_collected_by_sb3() -> None:
    """NatureAtariWrapper (a lost life is a terminal, the game goes on) truncated at 360 frames, 2 envs, SB3's
    collect_rollouts with random actions; the ring wraps. Rewards are clipped to {-1, 0, 1}: gamma = 0.9 makes
    every window's return distinct enough to catch a misplaced step."""
    from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper

    def make() -> gym.Env:
        return NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"), max_episode_frames=360)

    venv = VecTransposeImage(VecFrameStack(DummyVecEnv([make, make]), 4))
    venv.seed(3)
    model = DQN(
        "CnnPolicy",
        venv,
        buffer_size=2 * 150,
        learning_starts=10**9,  # random actions, no updates: only the collection path runs
        replay_buffer_class=Recorder,
        replay_buffer_kwargs={"n_steps": 3, "gamma": 0.9},
        device="cpu",
        seed=0,
    )
    model.learn(2 * 260)
    buffer = model.replay_buffer
    assert isinstance(buffer, Recorder) and buffer.full
    ends = [(s.end, s.terminal, lives) for row, life in zip(buffer.steps, buffer.lives, strict=True)
            for s, lives in zip(row, life, strict=True)]  # fmt: skip
    assert any(end and terminal and lives > 0 for end, terminal, lives in ends), "no life loss in the stream"
    assert any(end and not terminal for end, terminal, _ in ends), "no truncation in the stream"
    assert sum(s.reward != 0 for row in buffer.steps for s in row) > 0

    def frames_kept(slot: int, env: int) -> bool:  # the episode's frames the obs shows are still in the ring
        g = newest_add(slot, len(buffer.steps), buffer.buffer_size)
        assert g is not None
        first = g
        while first > 0 and not buffer.steps[first][env].start and g - first < buffer.n_stack:
            first -= 1
        return first >= len(buffer.steps) - buffer.buffer_size

    # at most n_stack (lost frames) + n - 1 (windows not known yet) transitions per env are not sampleable
    assert check_n_step(buffer, buffer.steps, frames_kept, 3, 0.9) >= 2 * 150 - 2 * (4 + 2)


def test_nature_dqn_passes_n_steps_and_gamma_to_the_frames_once_memory() -> None:
    venv = VecTransposeImage(VecFrameStack(DummyVecEnv([lambda: gym.wrappers.TimeLimit(_Noise(), 20)]), 4))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = NatureDQN(
            "CnnPolicy",
            venv,
            n_steps=3,
            gamma=0.97,
            buffer_size=100,
            device="cpu",
            policy_kwargs={"features_extractor_class": FlattenExtractor},  # NatureCNN needs 36x36 or more
        )
    assert isinstance(model.replay_buffer, FrameReplayBuffer)
    assert (model.replay_buffer.n_steps, model.replay_buffer.gamma) == (3, 0.97)
    assert not [w for w in record if "is ignored" in str(w.message)]  # SB3's "n_steps ignored" warning is moot


class _Noise(gym.Env):
    observation_space = spaces.Box(0, 255, (HEIGHT, WIDTH, 1), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        return self.np_random.integers(0, 256, (HEIGHT, WIDTH, 1), dtype=np.uint8), {}

    def step(self, action: int):  # type: ignore[override]
        obs = self.np_random.integers(0, 256, (HEIGHT, WIDTH, 1), dtype=np.uint8)
        return obs, 1.0, bool(self.np_random.random() < 0.05), False, {}
