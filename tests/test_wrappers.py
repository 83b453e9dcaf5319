"""NatureAtariWrapper against hand computations on real ALE frames."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from sb3_dqn_atari.atari.preprocessing import TRUNCATION_SLACK, nature_frame
from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper


def _torch7_scale_1d(src: list[float], dst_len: int) -> list[float]:
    """``scaleLinear_rowcol`` of torch7's image package (the downscale branch), transcribed as a loop."""
    src_len = len(src)
    scale = src_len / dst_len
    out = []
    si0_i, si0_f = 0, 0.0
    for di in range(dst_len):
        si1 = (di + 1) * scale
        si1_i = math.floor(si1)
        si1_f = si1 - si1_i
        acc = (1 - si0_f) * src[si0_i]
        n = 1 - si0_f
        for si in range(si0_i + 1, si1_i):
            acc += src[si]
            n += 1
        if si1_i < src_len:
            acc += si1_f * src[si1_i]
            n += si1_f
        out.append(acc / n)
        si0_i, si0_f = si1_i, si1_f
    return out


def _hand_scaled(frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
    """Max of two RGB frames, rgb2y, torch7 'bilinear' (rows first, then columns) ×255 — pure Python, float64."""
    rgb = np.maximum(frame_a, frame_b).astype(np.float64) / 255.0
    y = 0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2]
    rows = [_torch7_scale_1d(list(row), 84) for row in y]  # width 160 -> 84
    cols = np.array(rows).T  # (84, 210)
    return np.array([_torch7_scale_1d(list(col), 84) for col in cols]).T * 255  # height 210 -> 84


def _assert_truncation_matches(got: np.ndarray, scaled: np.ndarray) -> None:
    """``got`` must be byte(255·x) (x + slack for exact integers): exact, except where float32 error can
    cross a truncation boundary (within 1e-3 of it), where it may be one lower or higher."""
    want = np.floor(scaled + TRUNCATION_SLACK).astype(np.int64)
    frac = scaled + TRUNCATION_SLACK - np.floor(scaled + TRUNCATION_SLACK)
    near_boundary = (frac < 1e-3) | (frac > 1 - 1e-3)
    diff = got.astype(np.int64) - want
    assert (diff[~near_boundary] == 0).all()
    assert (np.abs(diff[near_boundary]) <= 1).all()
    assert near_boundary.mean() < 0.01


def test_frames_equal_a_hand_computation_on_breakout() -> None:
    raw = gym.make("BreakoutNoFrameskip-v4")
    wrapped = NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"), noop_max=0, terminal_on_life_loss=False)
    raw.reset(seed=3)
    obs, _ = wrapped.reset(seed=3)
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(40):
        action = int(rng.integers(4))
        frames = []
        for _ in range(4):
            frame, *_ = raw.step(action)
            frames.append(frame)
        obs, *_ = wrapped.step(action)
        if checked < 3 or rng.random() < 0.05:
            assert obs.shape == (84, 84, 1) and obs.dtype == np.uint8
            _assert_truncation_matches(obs[:, :, 0], _hand_scaled(frames[-2], frames[-1]))
            checked += 1
    assert checked >= 3


def test_vectorised_preprocessing_equals_the_loop_on_random_images() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (210, 160, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (210, 160, 3), dtype=np.uint8)
    _assert_truncation_matches(nature_frame(np.maximum(a, b)), _hand_scaled(a, b))


def test_gray_pixels_keep_their_value() -> None:
    """R = G = B = v gives Y = v: a uniform gray frame must stay v, not v - 1 from float error."""
    for v in (0, 1, 142, 200, 255):
        frame = np.full((210, 160, 3), v, np.uint8)
        assert (nature_frame(frame) == v).all()


def test_reward_is_sign_clipped_and_no_fire_on_reset() -> None:
    env = NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    rewards = set()
    for _ in range(3000):
        _, reward, terminated, truncated, _ = env.step(int(rng.integers(4)))
        rewards.add(float(reward))
        if terminated or truncated:
            env.reset()
    assert rewards <= {0.0, 1.0} and 1.0 in rewards  # Breakout's raw rewards are 1, 4, 7: clipped to 1

    # no FIRE on reset: with only NOOPs the ball is never served and nothing scores
    env = NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"))
    env.reset(seed=0)
    for _ in range(300):
        _, reward, terminated, _, info = env.step(0)
        assert reward == 0 and not terminated
    assert info["lives"] == 5


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_noop_starts_are_1_to_30_frames(seed: int) -> None:
    env = NatureAtariWrapper(gym.make("PongNoFrameskip-v4"))
    env.reset(seed=seed)
    frames = env.unwrapped.ale.getEpisodeFrameNumber()
    assert 1 <= frames <= 30


def test_noop_count_varies_with_seed() -> None:
    counts = set()
    for seed in range(12):
        env = NatureAtariWrapper(gym.make("PongNoFrameskip-v4"))
        env.reset(seed=seed)
        counts.add(env.unwrapped.ale.getEpisodeFrameNumber())
    assert len(counts) >= 4


def test_life_loss_is_terminal_and_the_game_goes_on() -> None:
    env = NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"))
    env.reset(seed=0)
    ale = env.unwrapped.ale
    rng = np.random.default_rng(0)
    for _ in range(5000):
        lives_before = ale.lives()
        frame_before = ale.getEpisodeFrameNumber()
        _, _, terminated, truncated, info = env.step(int(rng.integers(4)))
        if terminated:
            break
    assert terminated and not truncated
    assert info["lives"] == lives_before - 1 > 0
    # alewrap stops repeating the action at the life loss: at most 4 frames, maybe fewer
    frames_at_loss = ale.getEpisodeFrameNumber()
    assert 1 <= frames_at_loss - frame_before <= 4
    env.reset()
    # the same game continues (no reset of the episode frame counter), after 1-30 single-frame no-ops
    assert ale.lives() == lives_before - 1
    assert 1 <= ale.getEpisodeFrameNumber() - frames_at_loss <= 30


def test_real_game_over_resets_the_game() -> None:
    env = NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"))
    env.reset(seed=1)
    ale = env.unwrapped.ale
    rng = np.random.default_rng(1)
    game_overs = 0
    for _ in range(20000):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            over = ale.game_over()
            env.reset()
            if over:
                game_overs += 1
                assert ale.lives() == 5 and ale.getEpisodeFrameNumber() <= 30
                break
    assert game_overs == 1


def test_eval_flags_give_raw_rewards_and_no_life_loss_terminal() -> None:
    env = NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"), terminal_on_life_loss=False, clip_reward=False)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    lives_seen = set()
    while True:
        _, _, terminated, truncated, info = env.step(int(rng.integers(4)))
        lives_seen.add(info["lives"])
        if terminated or truncated:
            break
    assert env.unwrapped.ale.game_over() and lives_seen == {0, 1, 2, 3, 4, 5}
