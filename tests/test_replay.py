"""FrameReplayBuffer against references that store full stacked (obs, next_obs) per transition.

Two references, both independent of the buffer's code: ``NaiveReplay`` below (written for this test) and
SB3's own ``ReplayBuffer(optimize_memory_usage=False, handle_timeout_termination=True)`` fed the same
stream. Streams come from a tiny VecFrameStack written here (hypothesis), from SB3's real
``VecFrameStack`` + ``OffPolicyAlgorithm._store_transition`` over a fake image env, and from real Breakout
frames (``make_atari_env`` and ``NatureAtariWrapper``).
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

import sb3_dqn_atari
from sb3_dqn_atari import replay
from sb3_dqn_atari.agent.replay import FrameReplayBuffer

CONTINUE, TERMINAL, TRUNCATED = 0, 1, 2
RANDOM, ZERO, REPEAT = 0, 1, 2
HEIGHT, WIDTH = 6, 7  # not square, to catch a transposed frame


# ------------------------------------------------------------------------------------ references
class Stacker:
    """VecFrameStack's channel-first stacking, for ``n_envs`` stacks of ``k`` frames of ``c`` channels.

    ``pad="zeros"`` is VecFrameStack (a reset stack is zeros then the reset frame); ``pad="repeat"`` is
    gymnasium's FrameStackObservation default (the reset frame repeated)."""

    def __init__(self, n_envs: int, k: int, c: int, pad: str = "zeros") -> None:
        self.k, self.c, self.pad = k, c, pad
        self.stacks = np.zeros((n_envs, k * c, HEIGHT, WIDTH), np.uint8)

    def reset(self, env: int, frame: np.ndarray) -> None:
        self.stacks[env] = 0 if self.pad == "zeros" else np.concatenate([frame] * self.k)
        self.stacks[env, -self.c :] = frame

    def push(self, frames: list[np.ndarray]) -> np.ndarray:
        """Each env's stack shifted by one frame, the new frame last (the next obs, before any reset)."""
        self.stacks = np.concatenate([self.stacks[:, self.c :], np.stack(frames)], axis=1)
        return self.stacks.copy()


@dataclass
class NaiveReplay:
    """SB3's ring (``buffer_size // n_envs`` slots of ``n_envs``), storing full stacked obs and next_obs.

    It also records, from the stream itself, the add() number of each transition's episode start, so a
    test can say which transitions still have all their frames in a frame-once memory: transition ``g``
    of an episode started at ``g0`` shows frames that first appeared in transitions ``max(g0, g - k) .. g``.
    """

    buffer_size: int
    n_envs: int
    k: int
    slots: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    n_adds: int = 0

    def __post_init__(self) -> None:
        self.n_slots = max(self.buffer_size // self.n_envs, 1)

    def add(self, obs, next_obs, action, reward, done, infos, episode_starts) -> None:  # type: ignore[no-untyped-def]
        pos = self.n_adds % self.n_slots
        for e in range(self.n_envs):
            truncated = bool(infos[e].get("TimeLimit.truncated", False))
            self.slots[pos, e] = {
                "obs": obs[e].copy(),
                "next_obs": next_obs[e].copy(),
                "action": int(action[e]),
                "reward": float(np.float32(reward[e])),
                "done": float(done[e]) * (1.0 - truncated),
                "first_needed": max(episode_starts[e], self.n_adds - self.k),
            }
        self.n_adds += 1

    def expected_valid(self, slot: int, env: int) -> bool:
        oldest_kept = self.n_adds - self.n_slots  # add() numbers below this were overwritten
        return (slot, env) in self.slots and self.slots[slot, env]["first_needed"] >= oldest_kept


def assert_sample_equals(samples: Any, expected: list[dict[str, Any]]) -> None:
    assert samples.observations.dtype == th.uint8
    assert samples.rewards.dtype == th.float32 and samples.dones.dtype == th.float32
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(samples.observations[i].cpu().numpy(), want["obs"])
        np.testing.assert_array_equal(samples.next_observations[i].cpu().numpy(), want["next_obs"])
        assert samples.actions[i, 0].item() == want["action"]
        assert samples.rewards[i, 0].item() == want["reward"]
        assert samples.dones[i, 0].item() == want["done"]


def sb3_transition(buffer: ReplayBuffer, slot: int, env: int) -> dict[str, Any]:
    """What SB3's ReplayBuffer returns for (slot, env), read from its arrays."""
    return {
        "obs": buffer.observations[slot, env],
        "next_obs": buffer.next_observations[slot, env],
        "action": int(buffer.actions[slot, env, 0]),
        "reward": float(buffer.rewards[slot, env]),
        "done": float(buffer.dones[slot, env] * (1 - buffer.timeouts[slot, env])),
    }


# ------------------------------------------------------------------------------------ streams
@dataclass
class Stream:
    n_envs: int
    k: int
    c: int
    buffer_size: int
    pad: str
    seed: int
    frames_on_device: bool
    start_capacity: int
    events: list[list[int]]  # per step, per env: CONTINUE / TERMINAL / TRUNCATED
    kinds: list[list[int]]  # per step, per env: the new frame is RANDOM / ZERO / REPEAT of the last
    resets: list[bool]  # per step: all envs reset before it, without a done (a new learn())


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    n_envs = draw(st.sampled_from([1, 2, 3]))
    k = draw(st.integers(1, 4))
    c = draw(st.sampled_from([1, 1, 2]))
    buffer_size = draw(st.integers(1, 10)) * n_envs + draw(st.integers(0, n_envs - 1))
    n_steps = draw(st.integers(1, 40))
    per_env = st.lists(st.integers(0, 2), min_size=n_envs, max_size=n_envs)
    event = st.sampled_from([CONTINUE] * 6 + [TERMINAL, TRUNCATED])
    return Stream(
        n_envs=n_envs,
        k=k,
        c=c,
        buffer_size=buffer_size,
        pad=draw(st.sampled_from(["zeros", "repeat"])),
        seed=draw(st.integers(0, 2**32 - 1)),
        frames_on_device=draw(st.booleans()),
        start_capacity=draw(st.integers(1, 4)),
        events=draw(st.lists(st.lists(event, min_size=n_envs, max_size=n_envs), min_size=n_steps, max_size=n_steps)),
        kinds=draw(st.lists(per_env, min_size=n_steps, max_size=n_steps)),
        resets=draw(st.lists(st.sampled_from([False] * 9 + [True]), min_size=n_steps, max_size=n_steps)),
    )


def play(stream: Stream, buffers: list[Any], naive: NaiveReplay, steps: range | None = None, state: Any = None) -> Any:
    """Feed the stream (or ``steps`` of it, resuming ``state``) to the buffers as SB3's off-policy loop would:
    ``next_obs`` is the terminal stack where an env is done, ``TimeLimit.truncated`` marks truncations."""
    n, k, c = stream.n_envs, stream.k, stream.c
    if state is None:
        rng = np.random.default_rng(stream.seed)
        stacker = Stacker(n, k, c, stream.pad)
        last: list[np.ndarray] = [rng.integers(0, 256, (c, HEIGHT, WIDTH), dtype=np.uint8) for _ in range(n)]
        for e in range(n):
            stacker.reset(e, last[e])
        state = (rng, stacker, last, [0] * n)
    rng, stacker, last, episode_starts = state

    def new_frame(e: int, kind: int) -> np.ndarray:
        if kind == ZERO:
            last[e] = np.zeros((c, HEIGHT, WIDTH), np.uint8)
        elif kind == RANDOM:
            last[e] = rng.integers(0, 256, (c, HEIGHT, WIDTH), dtype=np.uint8)
        return last[e].copy()

    for g in steps if steps is not None else range(len(stream.events)):
        if stream.resets[g]:  # a fresh random reset frame: the new stack can't continue the old one
            for e in range(n):
                stacker.reset(e, new_frame(e, RANDOM))
                episode_starts[e] = naive.n_adds
        obs = stacker.stacks.copy()
        next_obs = stacker.push([new_frame(e, stream.kinds[g][e]) for e in range(n)])
        done = np.array([ev != CONTINUE for ev in stream.events[g]])
        infos = [{"TimeLimit.truncated": ev == TRUNCATED} for ev in stream.events[g]]
        action = rng.integers(0, 5, n)
        reward = rng.normal(size=n).astype(np.float32)
        for buffer in buffers:
            buffer.add(obs, next_obs, action, reward, done, infos)
        naive.add(obs, next_obs, action, reward, done, infos, episode_starts)
        for e in np.flatnonzero(done):
            stacker.reset(e, new_frame(e, stream.kinds[g][(e + 1) % n]))
            episode_starts[e] = naive.n_adds
    return state


def make_buffers(stream: Stream) -> tuple[FrameReplayBuffer, ReplayBuffer, NaiveReplay]:
    obs_space = spaces.Box(0, 255, (stream.k * stream.c, HEIGHT, WIDTH), np.uint8)
    act_space = spaces.Discrete(5)
    with mock.patch.object(replay, "_START_CAPACITY", stream.start_capacity):
        ours = FrameReplayBuffer(
            stream.buffer_size,
            obs_space,
            act_space,
            device="cpu",
            n_envs=stream.n_envs,
            n_stack=stream.k,
            frames_on_device=stream.frames_on_device,
        )
    sb3 = ReplayBuffer(stream.buffer_size, obs_space, act_space, device="cpu", n_envs=stream.n_envs)
    return ours, sb3, NaiveReplay(stream.buffer_size, stream.n_envs, stream.k)


def check_all(ours: FrameReplayBuffer, sb3: ReplayBuffer, naive: NaiveReplay) -> int:
    """Every stored transition the buffer can sample equals both references; it can sample exactly those
    whose frames are all still stored. Returns how many were compared."""
    pairs = [(s, e) for s in range(naive.n_slots) for e in range(naive.n_envs)]
    slots = np.array([p[0] for p in pairs])
    envs = np.array([p[1] for p in pairs])
    valid = ours.valid_mask(slots, envs)
    expected = np.array([naive.expected_valid(s, e) for s, e in pairs])
    np.testing.assert_array_equal(valid, expected)
    if not valid.any():
        return 0
    samples = ours._get_samples(slots[valid], env_indices=envs[valid])
    assert_sample_equals(samples, [naive.slots[p] for p, v in zip(pairs, valid, strict=True) if v])
    assert_sample_equals(samples, [sb3_transition(sb3, *p) for p, v in zip(pairs, valid, strict=True) if v])
    for s, e in np.array(pairs)[~valid]:
        with pytest.raises(IndexError):
            ours._get_samples(np.array([s]), env_indices=np.array([e]))
    return int(valid.sum())


# ------------------------------------------------------------------------------------ property tests
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_random_streams_equal_the_naive_references(stream: Stream) -> None:
    ours, sb3, naive = make_buffers(stream)
    play(stream, [ours, sb3], naive)
    check_all(ours, sb3, naive)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_sample_returns_only_stored_valid_transitions(stream: Stream) -> None:
    ours, sb3, naive = make_buffers(stream)
    play(stream, [ours, sb3], naive)
    valid = {
        (t["obs"].tobytes(), t["next_obs"].tobytes(), t["action"], t["reward"], t["done"])
        for (s, e), t in naive.slots.items()
        if naive.expected_valid(s, e)
    }
    np.random.seed(stream.seed)
    if not valid:
        with pytest.raises(ValueError, match="no transition"):
            ours.sample(8)
        return
    batch = ours.sample(64)
    for i in range(64):
        key = (
            batch.observations[i].numpy().tobytes(),
            batch.next_observations[i].numpy().tobytes(),
            batch.actions[i, 0].item(),
            batch.rewards[i, 0].item(),
            batch.dones[i, 0].item(),
        )
        assert key in valid


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.integers(0, 39), st.sampled_from([4, pickle.HIGHEST_PROTOCOL]))
def test_pickle_round_trip_then_keep_adding(stream: Stream, cut: int, protocol: int) -> None:
    ours, sb3, naive = make_buffers(stream)
    cut = min(cut, len(stream.events))
    state = play(stream, [ours, sb3], naive, range(cut))
    loaded = pickle.loads(pickle.dumps(ours, protocol=protocol))
    assert isinstance(loaded, FrameReplayBuffer)
    check_all(loaded, sb3, naive)
    play(stream, [loaded, sb3], naive, range(cut, len(stream.events)), state)
    check_all(loaded, sb3, naive)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_reset_then_refill(stream: Stream) -> None:
    ours, sb3, naive = make_buffers(stream)
    play(stream, [ours, sb3], naive)
    ours.reset()
    _, sb3, naive = make_buffers(stream)
    play(stream, [ours, sb3], naive)
    check_all(ours, sb3, naive)


def test_same_draws_as_sb3_before_the_ring_wraps() -> None:
    """``sample`` consumes np.random like SB3's ReplayBuffer: same seed, same batch."""
    stream = Stream(3, 4, 1, 300, "zeros", 7, False, 4, [], [], [])
    gen = np.random.default_rng(0)
    stream.events = gen.choice([0] * 8 + [1, 2], size=(90, 3)).tolist()
    stream.kinds = np.zeros((90, 3), int).tolist()
    stream.resets = [False] * 90
    ours, sb3, naive = make_buffers(stream)
    play(stream, [ours, sb3], naive)
    assert not ours.full and ours.pos == 90
    for seed in range(3):
        np.random.seed(seed)
        a = ours.sample(32)
        np.random.seed(seed)
        b = sb3.sample(32)
        for x, y in zip(a[:5], b[:5], strict=True):
            assert th.equal(x, y)


# ------------------------------------------------------------------------------------ SB3's real pipeline
class NoisyImageEnv(gym.Env):
    """7×7×1 random frames; terminates about 1 step in 25 and truncates after 20 (TimeLimit)."""

    observation_space = spaces.Box(0, 255, (HEIGHT, WIDTH, 1), np.uint8)
    action_space = spaces.Discrete(3)

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, (HEIGHT, WIDTH, 1), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        return self._frame(), {}

    def step(self, action: int):  # type: ignore[override]
        return self._frame(), float(action), bool(self.np_random.random() < 1 / 25), False, {}


class TeeBuffer(FrameReplayBuffer):
    """Feeds SB3's ReplayBuffer the same add() calls (same constructor arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reference = ReplayBuffer(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.reference.add(*args, **kwargs)
        super().add(*args, **kwargs)


def check_against_reference(buffer: TeeBuffer) -> int:
    ref = buffer.reference
    n_slots, n_envs = buffer.buffer_size, buffer.n_envs
    assert ref.buffer_size == n_slots and ref.pos == buffer.pos and ref.full == buffer.full
    slots, envs = (a.ravel() for a in np.meshgrid(np.arange(n_slots), np.arange(n_envs), indexing="ij"))
    valid = buffer.valid_mask(slots, envs)
    stored = n_slots * n_envs if buffer.full else buffer.pos * n_envs
    assert valid.sum() >= stored - buffer.n_stack * n_envs  # at most n_stack lost transitions per env
    samples = buffer._get_samples(slots[valid], env_indices=envs[valid])
    assert_sample_equals(samples, [sb3_transition(ref, s, e) for s, e in zip(slots[valid], envs[valid], strict=True)])
    return int(valid.sum())


def run_dqn(venv: Any, buffer_size: int, steps: int) -> TeeBuffer:
    model = DQN(
        "MlpPolicy" if venv.observation_space.shape[-1] < 36 else "CnnPolicy",
        venv,
        buffer_size=buffer_size,
        learning_starts=10**9,  # random actions, no updates: only the collection path runs
        replay_buffer_class=TeeBuffer,
        device="cpu",
        seed=0,
    )
    model.learn(steps)
    assert isinstance(model.replay_buffer, TeeBuffer)
    return model.replay_buffer


@pytest.mark.parametrize("n_envs", [1, 3])
def test_sb3_collect_rollouts_vecframestack_fake_env(n_envs: int) -> None:
    venv = VecTransposeImage(
        VecFrameStack(DummyVecEnv([lambda: gym.wrappers.TimeLimit(NoisyImageEnv(), 20)] * n_envs), 4)
    )
    venv.seed(1)
    buffer = run_dqn(venv, buffer_size=100 * n_envs, steps=250 * n_envs)
    assert buffer.full  # the ring wrapped
    assert buffer.dones.sum() > buffer.timeouts.sum() > 0  # terminals and truncations stored
    assert check_against_reference(buffer) > 90 * n_envs


def test_real_breakout_frames_make_atari_env() -> None:
    """rl-zoo3's Atari stack: make_atari_env (AtariWrapper: life loss terminal, 84x84), VecFrameStack(4),
    VecTransposeImage, SB3's collect_rollouts; episodes truncated at 400 frames by the TimeLimit."""
    venv = VecTransposeImage(
        VecFrameStack(
            make_atari_env("BreakoutNoFrameskip-v4", n_envs=2, seed=0, env_kwargs={"max_episode_steps": 400}), 4
        )
    )
    buffer = run_dqn(venv, buffer_size=2 * 150, steps=2 * 250)
    assert buffer.full and buffer.dones.sum() > buffer.timeouts.sum() > 0
    assert check_against_reference(buffer) > 280
    np.random.seed(0)  # and the ordinary path: every sampled stack never mixes two episodes
    batch = buffer.sample(256)
    assert batch.observations.shape == (256, 4, 84, 84)


def test_real_breakout_frames_nature_atari_wrapper() -> None:
    """The project's NatureAtariWrapper (life loss terminal, no-op starts), truncated at 240 frames."""
    from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper

    def make() -> gym.Env:
        return NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"), max_episode_frames=240)

    venv = VecTransposeImage(VecFrameStack(DummyVecEnv([make, make]), 4))
    venv.seed(0)
    buffer = run_dqn(venv, buffer_size=2 * 60, steps=2 * 90)
    assert buffer.full and buffer.dones.sum() > buffer.timeouts.sum() > 0
    assert check_against_reference(buffer) > 100


# ------------------------------------------------------------------------------------ model integration
def fake_image_venv(n_envs: int = 2) -> VecTransposeImage:
    return VecTransposeImage(
        VecFrameStack(DummyVecEnv([lambda: gym.wrappers.TimeLimit(NoisyImageEnv(), 20)] * n_envs), 4)
    )


def test_model_save_and_load_replay_buffer_round_trip(tmp_path: Any) -> None:
    model = DQN(
        "MlpPolicy",
        fake_image_venv(),
        buffer_size=400,
        learning_starts=50,
        replay_buffer_class=FrameReplayBuffer,
        device="cpu",
        seed=0,
    )
    model.learn(120)  # trains on samples from the buffer too
    before = model.replay_buffer
    assert isinstance(before, FrameReplayBuffer)
    model.save_replay_buffer(tmp_path / "buffer")
    model.load_replay_buffer(tmp_path / "buffer")
    after = model.replay_buffer
    assert after is not before and isinstance(after, FrameReplayBuffer)
    slots = np.arange(after.pos).repeat(2)
    envs = np.tile([0, 1], after.pos)
    a, b = before._get_samples(slots, env_indices=envs), after._get_samples(slots, env_indices=envs)
    for x, y in zip(a[:5], b[:5], strict=True):
        assert th.equal(x, y)
    model.learn(40, reset_num_timesteps=False)  # keeps adding and sampling after the load


def test_pickle_of_a_nearly_empty_big_buffer_is_small() -> None:
    space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    buffer = FrameReplayBuffer(100_000, space, spaces.Discrete(4), device="cpu")
    stack = np.zeros((1, 4, 84, 84), np.uint8)
    for i in range(10):
        next_stack = np.concatenate([stack[:, 1:], np.full((1, 1, 84, 84), i + 1, np.uint8)], axis=1)
        buffer.add(stack, next_stack, np.array([1]), np.array([1.0]), np.array([False]), [{}])
        stack = next_stack
    data = io.BytesIO()
    pickle.dump(buffer, data, protocol=pickle.HIGHEST_PROTOCOL)
    # 10 frames (71 kB), the start frame, the last next_obs and the observation space (113 kB); not 706 MB
    assert data.tell() < 250_000
    loaded = pickle.loads(data.getvalue())
    assert loaded.frames.shape == buffer.frames.shape and loaded.pos == 10
    obs = loaded._get_samples(np.array([9]), env_indices=np.array([0])).observations[0].numpy()
    np.testing.assert_array_equal(obs, np.broadcast_to(np.arange(6, 10, dtype=np.uint8)[:, None, None], (4, 84, 84)))


def test_frames_on_device_cpu_equals_numpy_storage() -> None:
    stream = Stream(2, 4, 1, 40, "zeros", 3, False, 2, [], [], [])
    gen = np.random.default_rng(1)
    stream.events = gen.choice([0] * 6 + [1, 2], size=(70, 2)).tolist()
    stream.kinds = gen.integers(0, 3, size=(70, 2)).tolist()
    stream.resets = [False] * 70
    plain, sb3, naive = make_buffers(stream)
    stream.frames_on_device = True
    on_device, _, _ = make_buffers(stream)
    play(stream, [plain, on_device, sb3], naive)
    assert isinstance(on_device.frames, th.Tensor) and isinstance(plain.frames, np.ndarray)
    for seed in range(5):
        np.random.seed(seed)
        a = plain.sample(32)
        np.random.seed(seed)
        b = on_device.sample(32)
        for x, y in zip(a[:5], b[:5], strict=True):
            assert th.equal(x, y)
    check_all(on_device, sb3, naive)


def test_usable_as_replay_buffer_class_and_from_yml_tag() -> None:
    import yaml

    loaded = yaml.load(
        "replay_buffer_class: !!python/name:sb3_dqn_atari.FrameReplayBuffer ''", Loader=yaml.UnsafeLoader
    )
    assert loaded["replay_buffer_class"] is FrameReplayBuffer is sb3_dqn_atari.FrameReplayBuffer
    model = DQN("MlpPolicy", fake_image_venv(), buffer_size=100, replay_buffer_class=FrameReplayBuffer, device="cpu")
    assert isinstance(model.replay_buffer, FrameReplayBuffer) and isinstance(model.replay_buffer, ReplayBuffer)
    assert not hasattr(model.replay_buffer, "observations")  # SB3's stacked arrays are not allocated


# ------------------------------------------------------------------------------------ errors and memory
@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-1.0, 1.0, (4,), np.float32),
        spaces.Box(0, 255, (4, 84, 84), np.float32),
        spaces.Box(0, 255, (84, 84, 4), np.uint8),  # channel-last: VecTransposeImage missing
        spaces.Dict({"image": spaces.Box(0, 255, (4, 84, 84), np.uint8)}),
        spaces.Discrete(5),
    ],
)
def test_other_observation_spaces_name_sb3_replay_buffer(space: spaces.Space) -> None:
    with pytest.raises((TypeError, ValueError), match="SB3's ReplayBuffer"):
        FrameReplayBuffer(100, space, spaces.Discrete(4), device="cpu")


def test_n_stack_must_divide_the_channels() -> None:
    with pytest.raises(ValueError, match="n_stack=3"):
        FrameReplayBuffer(100, spaces.Box(0, 255, (4, 8, 8), np.uint8), spaces.Discrete(4), n_stack=3)


def test_unstacked_observations_are_refused() -> None:
    buffer = FrameReplayBuffer(100, spaces.Box(0, 255, (4, 8, 8), np.uint8), spaces.Discrete(4), device="cpu")
    rng = np.random.default_rng(0)
    obs, next_obs = (rng.integers(0, 256, (1, 4, 8, 8), dtype=np.uint8) for _ in range(2))
    with pytest.raises(ValueError, match="shifted by one"):
        buffer.add(obs, next_obs, np.array([0]), np.array([0.0]), np.array([False]), [{}])


def test_one_million_atari_transitions_are_allocated_lazily() -> None:
    """1M 4x84x84 transitions: 7,056 frame bytes each, and nothing resident until written (fresh process)."""
    code = textwrap.dedent(
        """
        import numpy as np, psutil
        from gymnasium import spaces
        from sb3_dqn_atari.agent.replay import FrameReplayBuffer
        before = psutil.Process().memory_info().rss
        space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
        buffer = FrameReplayBuffer(1_000_000, space, spaces.Discrete(4), device="cpu")
        grown = psutil.Process().memory_info().rss - before
        per_slot = sum(getattr(buffer, name).nbytes for name in buffer._SLOT_ARRAYS) / 1_000_000
        print(grown, buffer.frames.nbytes, per_slot)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    grown, frame_bytes, per_slot = int(out[0]), int(out[1]), float(out[2])
    assert frame_bytes == 1_000_000 * 84 * 84
    assert per_slot < 84 * 84 + 48  # the frame plus action, reward, flags and episode bookkeeping
    assert grown < 64e6


@pytest.mark.slow
def test_rl_zoo3_train_with_the_buffer_from_a_yml(tmp_path: Any) -> None:
    """rl-zoo3 reads the training yml with ``yaml.safe_load`` and ``eval``s ``replay_buffer_class`` in its own
    module, where ``sb3_dqn_atari`` is not imported: ``__import__`` makes the string self-contained."""
    config = tmp_path / "dqn.yml"
    config.write_text(
        textwrap.dedent(
            """
            BreakoutNoFrameskip-v4:
              env_wrapper:
                - stable_baselines3.common.atari_wrappers.AtariWrapper
              frame_stack: 4
              policy: 'CnnPolicy'
              n_timesteps: 300
              buffer_size: 1000
              learning_starts: 200
              replay_buffer_class: "__import__('sb3_dqn_atari').FrameReplayBuffer"
            """
        )
    )
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", "BreakoutNoFrameskip-v4"]
    command += ["-conf", str(config), "-f", str(tmp_path / "logs"), "--save-replay-buffer", "--eval-freq", "-1"]
    subprocess.run([*command, "--seed", "0", "--device", "cpu"], check=True, capture_output=True)
    (path,) = (tmp_path / "logs" / "dqn").glob("BreakoutNoFrameskip-v4_*/replay_buffer.pkl")
    with open(path, "rb") as f:
        buffer = pickle.load(f)
    assert isinstance(buffer, FrameReplayBuffer) and buffer.pos == 300 and buffer.dones.sum() > 0
