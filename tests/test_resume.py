"""Exact resume and atomic checkpoints (issue 8), at small scale.

The reference is an uninterrupted run to ``N`` steps in its own process; the other run is stopped by a
SIGTERM it receives at step ``K`` (it saves a checkpoint at the next rollout start and exits 0), then a new
process loads the checkpoint and trains to ``N``. Everything the next step of training depends on is
compared bit for bit: weights (online and target), optimizer state, replay memory, counters, ε, the
episode in progress, the RNG states.

Run as a module, this file is the child process of those tests: ``python -m tests.test_resume MODE DIR``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import load_results
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecTransposeImage

from sb3_dqn_atari.agent.episode_log import EPISODES_FILE
from tests.conftest import ROOT

ENV_ID = "ResumeDot-v0"
N_STEPS = 600  # total agent steps
SIGNAL_AT = 333  # the interrupted run gets SIGTERM after this step (mid-rollout: train_freq = 4)
SAVE_FREQ = 200  # periodic checkpoints before the signal
AGENT_KWARGS: dict[str, Any] = {
    "buffer_size": 250,  # < N_STEPS: the ring wraps before and after the checkpoint
    "learning_starts": 100,
    "batch_size": 16,
    "target_update_interval": 60,
    "exploration_decay_steps": 300,
    "train_freq": 4,
    "seed": 3,
    "device": "cpu",
}


class DotEnv(gym.Env):
    """A dot to steer onto a target on a ``size`` x ``size`` image, one random noise pixel per step.

    Every source of randomness is the env's ``np_random`` (starts, noise, random terminations), so that its
    state matters for an exact resume; episodes are cut at 40 steps by the registered ``TimeLimit``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, size: int = 36) -> None:
        self.size = size
        self.observation_space = spaces.Box(0, 255, (size, size, 1), np.uint8)
        self.action_space = spaces.Discrete(5)
        self._dot = np.zeros(2, np.int64)
        self._target = np.zeros(2, np.int64)

    def _obs(self) -> np.ndarray:
        obs = np.zeros((self.size, self.size, 1), np.uint8)
        cell = self.size // 6
        for (y, x), value in ((self._target, 128), (self._dot, 255)):
            obs[y * cell : (y + 1) * cell, x * cell : (x + 1) * cell] = value
        noise = self.np_random.integers(0, self.size, 2)
        obs[noise[0], noise[1]] = 60
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._dot = self.np_random.integers(0, 6, 2)
        self._target = self.np_random.integers(0, 6, 2)
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        moves = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])
        self._dot = np.clip(self._dot + moves[int(action)], 0, 5)
        reward = 0.0
        if np.array_equal(self._dot, self._target):
            reward = 1.0
            self._target = self.np_random.integers(0, 6, 2)
        terminated = bool(self.np_random.random() < 0.03)
        return self._obs(), reward, terminated, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=DotEnv, max_episode_steps=40)


def make_env(seed: int = 0, n_envs: int = 1) -> VecEnv:
    """The env stack rl-zoo3 builds for an image env with ``frame_stack: 4``."""
    return VecTransposeImage(VecFrameStack(make_vec_env(ENV_ID, n_envs=n_envs, seed=seed), 4))


class SignalAt(BaseCallback):
    """Sends ``signum`` to this process once ``num_timesteps`` reaches ``step`` (a preemption, in the middle of
    a rollout)."""

    def __init__(self, step: int, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.step, self.signum = step, signum
        self.sent = False

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)
        return True


# ------------------------------------------------------------------------------------------- child runs
def snapshot(model: Any) -> dict[str, Any]:
    """Everything compared between the runs, as plain numpy / python objects."""
    buffer_state = model.replay_buffer.__getstate__()
    return {
        "policy": {k: v.cpu().numpy().copy() for k, v in model.policy.state_dict().items()},
        "optimizer": {
            (i, k): (v.cpu().numpy().copy() if isinstance(v, torch.Tensor) else v)
            for i, s in model.policy.optimizer.state_dict()["state"].items()
            for k, v in s.items()
        },
        "buffer": {k: (np.asarray(v).copy() if isinstance(v, np.ndarray) else v) for k, v in buffer_state.items()
                   if k not in ("device", "observation_space", "action_space")},
        "counters": {
            "num_timesteps": model.num_timesteps,
            "n_updates": model._n_updates,
            "last_train_timestep": model._last_train_timestep,
            "exploration_rate": model.exploration_rate,
            "episode_num": model._episode_num,
            "n_calls": model._n_calls,
        },
        "last_obs": np.asarray(model._last_obs).copy(),
        "ep_info": [{k: v for k, v in e.items() if k != "t"} for e in model.ep_info_buffer],  # t: wall clock
        "rng": {
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "torch": torch.get_rng_state().numpy().copy(),
            "action_space": model.action_space.np_random.bit_generator.state,
        },
    }  # fmt: skip


def _evaluations(log_path: Path) -> EvalCallback:
    """An evaluation every 50 steps, ε-greedy: it draws from the global and action-space RNGs the training
    uses, so its counters and its env's state must be resumed too."""
    env = make_env(seed=7)
    return EvalCallback(env, n_eval_episodes=2, eval_freq=50, log_path=str(log_path), deterministic=False, verbose=0)


def _nature_agent(env: VecEnv) -> Any:
    from sb3_dqn_atari import NatureDQN

    return NatureDQN("CnnPolicy", env, **AGENT_KWARGS)


def child(
    mode: str, folder: Path, agent: Callable[[VecEnv], Any] = _nature_agent, take: Callable[[Any], Any] = snapshot
) -> int:
    """One run of the exactness tests (in its own process, as a resume after preemption would be): ``agent`` makes
    the model, ``take`` its snapshot."""
    from sb3_dqn_atari.checkpoint import ResumableCheckpointCallback, load_checkpoint

    torch.set_num_threads(1)
    checkpoints = folder / "checkpoints"
    if mode == "full":
        model = agent(make_env())
        evaluations = _evaluations(folder / mode)
        model.learn(N_STEPS, callback=evaluations)
    elif mode == "interrupted":
        model = agent(make_env())
        saver = ResumableCheckpointCallback(save_freq=SAVE_FREQ, save_path=str(checkpoints), keep=2, verbose=0)
        model.learn(N_STEPS, callback=[saver, SignalAt(SIGNAL_AT), _evaluations(folder / mode)])
        return 3  # not reached: the signal ends the process
    elif mode == "resume":
        # another seed on purpose: the checkpoint's env state must replace whatever the new env starts with
        model, checkpoint = load_checkpoint(checkpoints, env=make_env(seed=12345), device="cpu")
        saver = ResumableCheckpointCallback(
            save_freq=SAVE_FREQ, save_path=str(folder / "checkpoints2"), resume_from=str(checkpoint.path), verbose=0
        )
        evaluations = _evaluations(folder / mode)
        model.learn(
            N_STEPS - model.num_timesteps,
            reset_num_timesteps=False,
            callback=[saver, SignalAt(SIGNAL_AT), evaluations],  # the same list: callbacks are matched by place
        )
    else:
        raise ValueError(mode)
    result = take(model)
    result["evaluations"] = {"timesteps": evaluations.evaluations_timesteps, "results": evaluations.evaluations_results}
    with open(folder / f"{mode}.pkl", "wb") as f:
        pickle.dump(result, f)
    return 0


def run_child(
    mode: str, folder: Path, expect_rc: int = 0, module: str = "tests.test_resume"
) -> subprocess.CompletedProcess[str]:
    """``python -m module mode folder``: one :func:`child` run in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-m", module, mode, str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert result.returncode == expect_rc, (
        f"{mode}: rc {result.returncode}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    )
    return result


def _assert_same(a: Any, b: Any, where: str = "") -> None:
    """Bit-for-bit equality of nested snapshots (NaN-free floats compared exactly)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b), f"{where}: max |diff| {np.abs(a.astype(float) - b.astype(float)).max()}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


# ------------------------------------------------------------------------------------------------ tests
def test_resume_after_sigterm_is_bit_identical(tmp_path: Path) -> None:
    from sb3_dqn_atari.checkpoint import find_checkpoints

    run_child("full", tmp_path)
    interrupted = run_child("interrupted", tmp_path)
    assert "SIGTERM: saving a checkpoint" in interrupted.stderr
    saved = find_checkpoints(tmp_path / "checkpoints")
    # the periodic one at 200 and the one the signal made at the next rollout start after step 333
    assert [c.num_timesteps for c in saved] == [200, 336]
    assert saved[-1].manifest["env_state"] and saved[-1].manifest["exploration_rate"] < 1.0
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    run_child("resume", tmp_path)

    with open(tmp_path / "full.pkl", "rb") as f:
        full = pickle.load(f)
    with open(tmp_path / "resume.pkl", "rb") as f:
        resumed = pickle.load(f)
    assert full["counters"]["num_timesteps"] == N_STEPS
    assert full["counters"]["n_updates"] == (N_STEPS - AGENT_KWARGS["learning_starts"]) // 4
    assert full["counters"]["exploration_rate"] == pytest.approx(0.1)
    # the ring wrapped; the evaluations before and after the checkpoint are the same
    assert full["buffer"]["full"] and full["buffer"]["n_adds"] == N_STEPS
    assert full["evaluations"]["timesteps"] == list(range(50, N_STEPS + 1, 50))
    _assert_same(full, resumed)
    # the resumed run's own end-of-training checkpoint
    assert [c.num_timesteps for c in find_checkpoints(tmp_path / "checkpoints2")] == [400, 600]


def test_checkpoint_files_keep_and_incomplete_ones_are_never_picked(tmp_path: Path) -> None:
    from sb3_dqn_atari import NatureDQN
    from sb3_dqn_atari.checkpoint import (
        CheckpointError,
        find_checkpoints,
        latest_checkpoint,
        load_checkpoint,
        save_checkpoint,
    )

    model = NatureDQN("CnnPolicy", make_env(), **{**AGENT_KWARGS, "learning_starts": 20})
    folder = tmp_path / "ckpt"
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        latest_checkpoint(tmp_path)
    for _ in range(4):
        model.learn(24, reset_num_timesteps=False)
        save_checkpoint(model, folder, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == ["step_000000000072", "step_000000000096"]
    newest = folder / "step_000000000096"
    assert {p.name for p in newest.iterdir()} == {
        "manifest.json",
        "model.zip",
        "replay_buffer.pkl",
        "training_state.pkl",
    }
    assert latest_checkpoint(tmp_path / "ckpt").path == newest
    # a newer folder without its manifest (killed before the rename can't make one, but a copy can)
    partial = folder / "step_000000000120"
    partial.mkdir()
    (partial / "model.zip").write_bytes((newest / "model.zip").read_bytes())
    assert latest_checkpoint(folder).path == newest
    # a truncated file: skipped with a warning; a flipped byte: caught by the SHA-256 at load
    with open(newest / "replay_buffer.pkl", "r+b") as f:
        f.truncate(100)
    with pytest.warns(UserWarning, match="replay_buffer.pkl has 100 bytes"):
        assert latest_checkpoint(folder).num_timesteps == 72
    data = bytearray((folder / "step_000000000072" / "model.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "step_000000000072" / "model.zip").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(folder / "step_000000000072", env=make_env())
    assert [c.num_timesteps for c in find_checkpoints(folder, verify=False)] == [72, 96]


def test_load_checkpoint_with_another_env_is_a_clear_error(tmp_path: Path) -> None:
    from sb3_dqn_atari import NatureDQN
    from sb3_dqn_atari.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    model = NatureDQN("CnnPolicy", make_env(), **AGENT_KWARGS)
    path = save_checkpoint(model, tmp_path)
    other = VecTransposeImage(VecFrameStack(make_vec_env(ENV_ID, n_envs=1, env_kwargs={"size": 48}), 4))
    with pytest.raises(CheckpointError, match="Observation spaces do not match"):
        load_checkpoint(path, env=other)


def _big_save_child(folder: Path) -> None:
    """Writes checkpoints of a ~300 MB replay memory in a loop until killed (see the kill -9 test)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sb3_dqn_atari import NatureDQN
    from sb3_dqn_atari.checkpoint import save_checkpoint

    torch.set_num_threads(1)

    class Wide(gym.Env):
        observation_space = spaces.Box(-1, 1, (20_000,), np.float32)
        action_space = spaces.Discrete(2)

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
            super().reset(seed=seed)
            return np.zeros(20_000, np.float32), {}

        def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
            return self.np_random.random(20_000, dtype=np.float32), 0.0, False, False, {}

    model = NatureDQN("MlpPolicy", DummyVecEnv([Wide]), buffer_size=2_000, learning_starts=10_000, seed=0, device="cpu")
    model.learn(2_000)  # SB3's ReplayBuffer: obs and next_obs, 160 kB a transition, 320 MB in all
    save_checkpoint(model, folder, keep=3)
    print("first checkpoint saved", flush=True)
    while True:
        model.learn(4, reset_num_timesteps=False)
        save_checkpoint(model, folder, keep=3)


def test_kill_9_during_a_save_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    from sb3_dqn_atari.checkpoint import MANIFEST_FILE, find_checkpoints, latest_checkpoint, load_checkpoint

    folder = tmp_path / "ckpt"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.test_resume", "big-save", str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "first checkpoint saved", child.stderr.read() if child.stderr else ""
        # wait until the second save is writing its replay memory, then kill it mid-write
        deadline, partial = time.monotonic() + 120, None
        while time.monotonic() < deadline and partial is None:
            for temp in folder.glob(".tmp-step_*"):
                buffer = temp / "replay_buffer.pkl"
                if buffer.exists() and buffer.stat().st_size > 10_000_000:
                    partial = temp
            time.sleep(0.002)
        assert partial is not None, "never saw the second save in progress"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()
    assert partial.exists() and not (partial / MANIFEST_FILE).exists()
    assert (partial / "replay_buffer.pkl").stat().st_size < 300_000_000  # really cut in the middle
    complete = find_checkpoints(folder)
    assert [c.num_timesteps for c in complete] == [2_000]
    assert latest_checkpoint(folder).num_timesteps == 2_000
    model, _ = load_checkpoint(folder)
    assert model.num_timesteps == 2_000 and model.replay_buffer.full
    assert model.replay_buffer.observations.shape == (2_000, 1, 20_000)
    assert np.all(model.replay_buffer.next_observations[-1] != 0)
    # the next save (another process) removes the dead process's temporary folder
    from sb3_dqn_atari.checkpoint import save_checkpoint

    save_checkpoint(model, folder, keep=3, save_replay_buffer=False)
    assert not partial.exists()


def test_memory_check_fails_early_with_the_buffer_size_that_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    from sb3_dqn_atari import NatureDQN, memory

    model = NatureDQN("CnnPolicy", make_env(), **{**AGENT_KWARGS, "buffer_size": 10_000, "learning_starts": 10_000})
    # independent count of a FrameReplayBuffer slot: one 36x36 frame, the int64 action, reward/done/timeout
    # float32, the episode step and start length int32, the start serial int64
    per_transition = 36 * 36 + 8 + 3 * 4 + 4 + 4 + 8
    assert memory.slot_nbytes(model.replay_buffer) == (per_transition, 0)
    available = 2_000 * per_transition
    monkeypatch.setattr(memory, "available_memory", lambda: available)
    with pytest.raises(memory.ReplayMemoryError) as error:
        model.learn(5_000)
    message = str(error.value)
    assert "\n" not in message
    needed = int(np.ceil(5_000 * per_transition * 1.05))
    assert f"needs {needed:,} more bytes" in message and f"only {available:,} are available" in message
    fits = int(available / (per_transition * 1.05))
    assert f"buffer_size={fits:,} or less" in message
    assert model.num_timesteps == 0 and model.replay_buffer.pos == 0  # before any step
    # what fits does not fail: a short run; then the filled part is resident, only the rest is counted
    model.learn(1_500)
    memory.check_replay_memory(model.replay_buffer, fits)  # 1,500 + 1,904 slots, but 1,500 are resident
    with pytest.raises(memory.ReplayMemoryError, match=r"needs [\d,]+ more bytes"):
        memory.check_replay_memory(model.replay_buffer, fits + 1)
    monkeypatch.setenv(memory.SKIP_ENV_VAR, "1")
    memory.check_replay_memory(model.replay_buffer, 5_000)


def test_train_cli_reports_missing_memory_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m sb3_dqn_atari.train``: exit 2 before the first step, one line, the run folder removed."""
    import yaml

    from sb3_dqn_atari import memory, train

    monkeypatch.chdir(tmp_path)
    hyperparams = {k: v for k, v in AGENT_KWARGS.items() if k not in ("seed", "device")}
    hyperparams.update(frame_stack=4, policy="CnnPolicy", n_timesteps=N_STEPS, buffer_size=1_000_000)
    (tmp_path / "dot.yml").write_text(yaml.dump({ENV_ID: hyperparams}))
    per_transition = 36 * 36 + 8 + 3 * 4 + 4 + 4 + 8  # as in the test above
    monkeypatch.setattr(memory, "available_memory", lambda: 100 * per_transition)
    capsys.readouterr()
    code = train.main(["--algo", "dqn", "--env", ENV_ID, "-conf", "dot.yml", "--eval-freq", "-1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    needed = int(np.ceil(N_STEPS * per_transition * 1.05))
    assert err.startswith(f"error: the replay memory needs {needed:,} more bytes of memory ({N_STEPS} transitions")
    assert err.count("\n") == 1 and f"buffer_size={int(100 / 1.05)} or less" in err
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "dot.yml"]


def test_loading_an_agent_never_runs_the_memory_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sb3_dqn_atari import NatureDQN, memory

    NatureDQN("CnnPolicy", make_env(), **{**AGENT_KWARGS, "buffer_size": 1_000_000}).save(tmp_path / "m.zip")
    monkeypatch.setattr(memory, "available_memory", lambda: 1)
    model = NatureDQN.load(tmp_path / "m.zip", device="cpu")  # e.g. evaluate/export on a small machine
    assert model.buffer_size == 1_000_000


def _cli(args: list[str], cwd: Path, expect_rc: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "sb3_dqn_atari.train", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == expect_rc, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _zoo(entry: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Run ``python -m <entry> argv`` in this process (``rl_zoo3.train`` or ``sb3_dqn_atari.train``); return
    its stdout and stderr. It must end with status 0 (a checkpoint on SIGINT exits with 0 too)."""
    capsys.readouterr()
    saved = sys.argv
    try:
        if entry == "rl_zoo3.train":
            import rl_zoo3.train

            sys.argv = ["rl_zoo3.train", *argv]
            rl_zoo3.train.train()
            code: Any = 0
        else:
            from sb3_dqn_atari import train

            code = train.main(argv)
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    assert code == 0, out[-2000:] + err[-2000:]
    return out, err


def test_zoo_resume_after_sigint_matches_the_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """rl-zoo3 end to end: a run of ``python -m rl_zoo3.train`` with the checkpoint callback in its yml gets
    SIGINT mid-rollout; ``python -m sb3_dqn_atari.train --resume <run folder>`` (no other argument: the
    checkpoint's command line) finishes it. The final zip and replay memory rl-zoo3 saves are those of the
    uninterrupted ``python -m sb3_dqn_atari.train`` run. (In this process, for speed.)"""
    import yaml

    from sb3_dqn_atari import NatureDQN
    from sb3_dqn_atari.checkpoint import find_checkpoints

    monkeypatch.chdir(tmp_path)
    hyperparams = {k: v for k, v in AGENT_KWARGS.items() if k not in ("seed", "device")}
    hyperparams.update(frame_stack=4, policy="CnnPolicy", n_timesteps=N_STEPS)
    (tmp_path / "dot.yml").write_text(yaml.dump({ENV_ID: hyperparams}))
    hyperparams["callback"] = [
        {"sb3_dqn_atari.checkpoint.ResumableCheckpointCallback": {"save_freq": SAVE_FREQ, "keep": 3}},
        {"tests.test_resume.SignalAt": {"step": SIGNAL_AT, "signum": int(signal.SIGINT)}},
    ]
    (tmp_path / "dot_checkpoints.yml").write_text(yaml.dump({ENV_ID: hyperparams}))
    common = ["--algo", "dqn", "--env", ENV_ID, "--seed", "3", "--eval-freq", "-1", "--save-replay-buffer",
              "--num-threads", "1", "--device", "cpu", "--verbose", "0"]  # fmt: skip
    _zoo("sb3_dqn_atari.train", [*common, "-conf", "dot.yml", "-f", "full"], capsys)
    # sb3_dqn_atari.zoo as a gym package: rl-zoo3's own entry point then builds NatureDQN for --algo dqn
    _, err = _zoo(
        "rl_zoo3.train",
        [*common, "-conf", "dot_checkpoints.yml", "-f", "stopped", "--gym-packages", "sb3_dqn_atari.zoo"],
        capsys,
    )
    assert "SIGINT: saving a checkpoint" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers given back
    run = tmp_path / "stopped" / "dqn" / f"{ENV_ID}_1"
    assert not (run / f"{ENV_ID}.zip").exists()  # stopped: a checkpoint, no final model
    # the yml callback found the run folder by itself
    assert [c.num_timesteps for c in find_checkpoints(run / "checkpoints")] == [200, 336]
    # a run killed after its last checkpoint had written more games: the resume cuts them (and goes on in the folder)
    _append_lines(run / "0.monitor.csv", "-7.0,99,1e9\n")
    _append_lines(run / EPISODES_FILE, "599,-7.0,99\n")
    # the run's yml names tests.test_resume.SignalAt, outside the allow-list of what a run folder may name
    out, _ = _zoo("sb3_dqn_atari.train", ["--resume", str(run), "--trust-remote-code"], capsys)
    assert "Resuming from" in out and f"Continuing the run in {run}" in out
    assert sorted(p.name for p in (tmp_path / "stopped" / "dqn").iterdir()) == [f"{ENV_ID}_1"]
    full, resumed = tmp_path / "full" / "dqn" / f"{ENV_ID}_1", run
    # one run: the same games at the same agent steps as the uninterrupted run, Monitor times in order
    assert (full / EPISODES_FILE).read_text() == (resumed / EPISODES_FILE).read_text()
    a_games, b_games = (load_results(str(r)) for r in (full, resumed))
    assert len(a_games) > 3 and a_games[["r", "l"]].equals(b_games[["r", "l"]])
    assert np.all(np.diff(pd.read_csv(resumed / "0.monitor.csv", skiprows=1)["t"]) >= 0)
    a, b = (NatureDQN.load(r / f"{ENV_ID}.zip", device="cpu") for r in (full, resumed))
    assert a.num_timesteps == b.num_timesteps == N_STEPS and a._n_updates == b._n_updates
    for (ka, va), (kb, vb) in zip(a.policy.state_dict().items(), b.policy.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    a.load_replay_buffer(full / "replay_buffer.pkl")
    b.load_replay_buffer(resumed / "replay_buffer.pkl")
    for name in ("frames", "actions", "rewards", "dones", "episode_steps"):
        assert np.array_equal(getattr(a.replay_buffer, name), getattr(b.replay_buffer, name)), name
    # the resumed run's checkpoints went on in its own folder (the step-600 one: end of training; keep 3)
    assert [c.num_timesteps for c in find_checkpoints(resumed / "checkpoints")] == [336, 400, 600]
    # resumed again: all steps are there, so nothing is trained and nothing is written
    before = {p: p.stat().st_mtime_ns for p in resumed.rglob("*")}
    out, _ = _zoo("sb3_dqn_atari.train", ["--resume", str(run), "--trust-remote-code"], capsys)
    assert "nothing to train" in out
    assert {p: p.stat().st_mtime_ns for p in resumed.rglob("*")} == before
    assert sorted(p.name for p in (tmp_path / "stopped" / "dqn").iterdir()) == [f"{ENV_ID}_1"]


def _append_lines(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text)


@pytest.mark.slow
def test_cli_resume_breakout_paper_config_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    """The paper's yml on Breakout (ALE emulator state, no-op starts, life-loss terminals, the paper-protocol
    evaluation every 500 steps), SIGTERM at step 701, ``--resume``: the same final weights, replay memory
    and evaluation scores as the run that was never stopped."""
    import yaml

    from sb3_dqn_atari import NatureDQN

    env_id = "BreakoutNoFrameskip-v4"
    hyperparams = yaml.load((ROOT / "hyperparams" / "dqn.yml").read_text(), Loader=yaml.UnsafeLoader)[env_id]
    hyperparams.update(n_timesteps=1_200, buffer_size=1_000, learning_starts=200, exploration_decay_steps=1_000)
    conf = tmp_path / "breakout.yml"
    conf.write_text(yaml.dump({env_id: hyperparams}))
    hyperparams["callback"] = [{"tests.test_resume.SignalAt": {"step": 701, "signum": int(signal.SIGTERM)}}]
    signal_conf = tmp_path / "breakout_signal.yml"
    signal_conf.write_text(yaml.dump({env_id: hyperparams}))
    common = ["--algo", "dqn", "--env", env_id, "--seed", "5", "--eval-freq", "500", "--eval-episodes", "1",
              "--save-replay-buffer", "--num-threads", "1", "--device", "cpu"]  # fmt: skip
    _cli([*common, "-conf", str(conf), "-f", "full"], tmp_path)
    stopped = _cli([*common, "-conf", str(signal_conf), "-f", "stopped", "--checkpoint-freq", "300"], tmp_path)
    assert "SIGTERM: saving a checkpoint" in stopped.stderr
    _cli(["--resume", str(tmp_path / "stopped" / "dqn" / f"{env_id}_1"), "--trust-remote-code"], tmp_path)
    full, resumed = tmp_path / "full" / "dqn" / f"{env_id}_1", tmp_path / "stopped" / "dqn" / f"{env_id}_1"
    a, b = (NatureDQN.load(run / f"{env_id}.zip", device="cpu") for run in (full, resumed))
    assert a.num_timesteps == b.num_timesteps == 1_200 and a._n_updates == b._n_updates == 250
    for (ka, va), (kb, vb) in zip(a.policy.state_dict().items(), b.policy.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    a.load_replay_buffer(full / "replay_buffer.pkl")
    b.load_replay_buffer(resumed / "replay_buffer.pkl")
    assert np.array_equal(a.replay_buffer.frames, b.replay_buffer.frames)
    assert np.array_equal(a.replay_buffer.dones, b.replay_buffer.dones) and a.replay_buffer.dones.any()
    assert (full / EPISODES_FILE).read_text() == (resumed / EPISODES_FILE).read_text()
    with np.load(full / "evaluations_nature.npz") as x, np.load(resumed / "evaluations_nature.npz") as y:
        assert list(x["timesteps"]) == list(y["timesteps"]) == [500, 1000]
        assert np.array_equal(x["results"], y["results"]) and np.array_equal(x["ep_frames"], y["ep_frames"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("folder", type=Path)
    options = parser.parse_args()
    if options.mode == "big-save":
        _big_save_child(options.folder)
    sys.exit(child(options.mode, options.folder))
