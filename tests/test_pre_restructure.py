"""Files written before the package was layered (issue 13) load with today's code: an agent zip, its ONNX export and
an exact checkpoint, made by ``tests/data/pre_restructure/make_fixtures.py`` at commit 23afbbe, whose pickles and
manifest name the flat modules (``sb3_dqn_atari.policies``, ``sb3_dqn_atari.replay``, ``sb3_dqn_atari.dqn``)."""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import rl_zoo3.gym_patches  # noqa: F401  (the fixtures were made with it: its TimeLimit, whatever ran before)
import torch

from sb3_dqn_atari import NatureDQN
from sb3_dqn_atari.agent.policies import MlpPolicy
from sb3_dqn_atari.agent.replay import FrameReplayBuffer
from sb3_dqn_atari.checkpoint import ResumableCheckpointCallback, load_checkpoint
from sb3_dqn_atari.loading import load_agent
from sb3_dqn_atari.onnx.runtime import OnnxAgent
from tests.data.pre_restructure.make_fixtures import STEPS, ZIP_ENV_ID, make_env, second_callback

DATA = Path(__file__).parent / "data" / "pre_restructure"
CHECKPOINT = DATA / "checkpoints" / f"step_{STEPS:012d}"


def _recorded_policy_module(zip_path: Path) -> str:
    with zipfile.ZipFile(zip_path) as archive:
        return str(json.loads(archive.read("data"))["policy_class"]["__module__"])


def test_the_fixtures_name_the_flat_modules() -> None:
    assert _recorded_policy_module(DATA / "agent.zip") == "sb3_dqn_atari.policies"
    assert json.loads((CHECKPOINT / "manifest.json").read_text())["algorithm"] == "sb3_dqn_atari.dqn.NatureDQN"
    assert b"sb3_dqn_atari.replay" in (CHECKPOINT / "replay_buffer.pkl").read_bytes()
    state = (CHECKPOINT / "training_state.pkl").read_bytes()
    assert b"sb3_dqn_atari.checkpoint.ResumableCheckpointCallback" in state


def test_an_old_zip_loads_safely_and_trusted_and_matches_its_old_onnx_export() -> None:
    safe, _ = load_agent(DATA / "agent.zip", device="cpu", env_id=ZIP_ENV_ID)
    trusted = NatureDQN.load(DATA / "agent.zip", device="cpu")  # SB3's own loader: unpickles the old names
    assert type(safe.policy) is MlpPolicy and type(trusted.policy) is MlpPolicy
    env = gym.make(ZIP_ENV_ID)
    obs = np.stack([env.reset(seed=seed)[0] for seed in range(16)]).astype(np.float32)
    with torch.no_grad():
        q_safe = safe.policy.q_net(torch.as_tensor(obs)).numpy()
        q_trusted = trusted.policy.q_net(torch.as_tensor(obs)).numpy()
    np.testing.assert_array_equal(q_safe, q_trusted)
    agent = OnnxAgent(DATA / "agent.onnx")
    assert agent.metadata.env_id == ZIP_ENV_ID
    np.testing.assert_allclose(agent.q_values(obs), q_safe, rtol=0, atol=1e-5)
    assert np.all(np.isfinite(q_safe)) and np.ptp(q_safe) > 0  # a trained network, not zeros


def test_an_old_checkpoint_loads_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    shutil.copytree(CHECKPOINT, folder / CHECKPOINT.name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exactly: the env's state and the callbacks' restored, nothing reset
        model, checkpoint = load_checkpoint(folder, env=make_env(seed=99), device="cpu")
    assert isinstance(model, NatureDQN) and model.num_timesteps == checkpoint.num_timesteps == STEPS
    buffer = model.replay_buffer
    assert type(buffer) is FrameReplayBuffer and buffer.full  # 300 steps in a 250-transition ring
    saver = ResumableCheckpointCallback(
        save_freq=0, save_path=str(tmp_path / "after"), resume_from=str(checkpoint.path), handle_signals=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the other callback's state, recorded under its old class name, restored
        model.learn(STEPS + 40 - model.num_timesteps, reset_num_timesteps=False, callback=[saver, second_callback()])
    assert model.num_timesteps == STEPS + 40
    resumed, _ = load_checkpoint(tmp_path / "after", env=make_env(), device="cpu")
    assert resumed.num_timesteps == STEPS + 40


def test_the_resume_checks_admit_the_old_names() -> None:
    """``train --resume`` checks a checkpoint's pickles before unpickling them: the pre-layering names pass."""
    from sb3_dqn_atari.checkpoint.resume_check import ADMITTED, check_model_zip, check_pickle_file

    old = {("sb3_dqn_atari.replay", "FrameReplayBuffer"), ("sb3_dqn_atari.evaluation", "EvalEnvInfo")}
    assert old <= ADMITTED.classes
    assert "sb3_dqn_atari.policies.MlpPolicy" in check_model_zip(CHECKPOINT / "model.zip")
    assert "sb3_dqn_atari.replay.FrameReplayBuffer" in check_pickle_file(CHECKPOINT / "replay_buffer.pkl")
