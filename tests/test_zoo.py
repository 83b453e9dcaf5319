"""rl-zoo3 integration end to end: the README's command trains NatureDQN; SB3's own `dqn` stays untouched."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecFrameStack

from sb3_dqn_atari import DeepMindRMSprop, FrameReplayBuffer, NatureAtariWrapper, NatureDQN
from tests.conftest import ROOT


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_readme_command_trains_nature_dqn(tmp_path: Path) -> None:
    conf = ROOT / "hyperparams" / "dqn.yml"
    _run(
        [
            "-m", "rl_zoo3.train", "--algo", "dqn", "--env", "BreakoutNoFrameskip-v4", "-conf", str(conf),
            "-n", "2500", "-f", str(tmp_path / "logs"), "--seed", "0",
            "-params", "learning_starts:1000", "buffer_size:5000", "--eval-freq", "2000", "--eval-episodes", "1",
        ],
        cwd=tmp_path,
    )  # fmt: skip
    run_dir = tmp_path / "logs" / "dqn" / "BreakoutNoFrameskip-v4_1"
    zip_path = run_dir / "BreakoutNoFrameskip-v4.zip"
    assert zip_path.is_file()
    model = NatureDQN.load(zip_path, device="cpu")
    assert type(model) is NatureDQN
    assert isinstance(model.policy.optimizer, DeepMindRMSprop)
    assert model.replay_buffer_class is FrameReplayBuffer
    assert model.num_timesteps >= 2500 and model._n_updates == (model.num_timesteps - 1000) // 4
    assert model.lr_schedule(1.0) == 2.5e-4 and model.exploration_final_eps == 0.1
    # the optimizer state was saved after real updates
    assert all(s["square_avg"].abs().sum() > 0 for s in model.policy.optimizer.state.values())
    # --eval-freq evaluated with the paper's protocol (raw score, 18,000-frame cap), not rl-zoo3's wrapper
    with np.load(run_dir / "evaluations_nature.npz") as evaluations:
        assert list(evaluations["timesteps"]) == [2000]
        assert evaluations["frames"][0] == 8000
    assert (run_dir / "best_model.zip").is_file()
    assert not (run_dir / "evaluations.npz").exists()
    config = (run_dir / "BreakoutNoFrameskip-v4" / "config.yml").read_text()
    assert "sb3_dqn_atari.zoo.NatureAtariWrapper" in config

    # rl-zoo3's enjoy re-reads that config, so `--algo dqn` loads it back as NatureDQN
    probe = (
        "import sys; from rl_zoo3.utils import ALGOS, get_saved_hyperparams;"
        f"get_saved_hyperparams(r'{run_dir / 'BreakoutNoFrameskip-v4'}');"
        "from rl_zoo3.utils import get_wrapper_class;"
        f"h, _ = get_saved_hyperparams(r'{run_dir / 'BreakoutNoFrameskip-v4'}'); get_wrapper_class(h);"
        "m = ALGOS['dqn'].load(sys.argv[1]); print(type(m).__name__)"
    )
    out = _run(["-c", probe, str(zip_path)], cwd=tmp_path).stdout
    assert out.strip().splitlines()[-1] == "NatureDQN"


def test_sb3_dqn_untouched_without_our_file(tmp_path: Path) -> None:
    # importing the package (even the classes) does not change rl-zoo3's "dqn"
    probe = (
        "import rl_zoo3, sb3_dqn_atari; from sb3_dqn_atari import NatureDQN, FrameReplayBuffer;"
        "from rl_zoo3.utils import ALGOS; from stable_baselines3 import DQN; from sb3_contrib import QRDQN;"
        "assert ALGOS['dqn'] is DQN and ALGOS['qrdqn'] is QRDQN; print('ok')"
    )
    assert _run(["-c", probe], cwd=tmp_path).stdout.strip() == "ok"
    # a run with rl-zoo3's own hyperparameters still trains SB3's DQN
    _run(["-m", "rl_zoo3.train", "--algo", "dqn", "--env", "CartPole-v1", "-n", "300", "-f", "logs"], cwd=tmp_path)
    data = zipfile.ZipFile(tmp_path / "logs" / "dqn" / "CartPole-v1_1" / "CartPole-v1.zip").read("data").decode()
    assert '"__module__": "stable_baselines3.dqn.policies"' in data
    assert "sb3_dqn_atari" not in data


def _breakout_env(seed: int):
    env = make_vec_env("BreakoutNoFrameskip-v4", n_envs=1, seed=seed, wrapper_class=NatureAtariWrapper)
    return VecFrameStack(env, 4)


def test_python_api_save_load_acts_identically(tmp_path: Path) -> None:
    model = NatureDQN("CnnPolicy", _breakout_env(0), learning_starts=300, buffer_size=2_000, seed=0, device="cpu")
    model.learn(600)
    model.save(tmp_path / "agent.zip")
    loaded = NatureDQN.load(tmp_path / "agent.zip", device="cpu")
    env = _breakout_env(1)
    obs = env.reset()
    observations = []
    for _ in range(30):
        observations.append(obs)
        obs, *_ = env.step(np.array([env.action_space.sample()]))
    batch = np.concatenate(observations)
    with torch.no_grad():
        q_a = model.q_net(model.policy.obs_to_tensor(batch)[0])
        q_b = loaded.q_net(loaded.policy.obs_to_tensor(batch)[0])
    assert torch.equal(q_a, q_b)
    actions_a, _ = model.predict(batch, deterministic=True)
    actions_b, _ = loaded.predict(batch, deterministic=True)
    np.testing.assert_array_equal(actions_a, actions_b)
    assert isinstance(loaded.policy.optimizer, DeepMindRMSprop)
    assert loaded.policy.optimizer.state_dict()["state"].keys() == model.policy.optimizer.state_dict()["state"].keys()
    assert gym.spaces.utils.flatdim(loaded.action_space) == 4


def test_train_without_conf_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On an Atari game without ``-conf``, rl-zoo3 would build NatureDQN from its packaged SB3 settings (SB3's
    AtariWrapper, lr 1e-4 on DeepMind's RMSProp): refused with what to pass, exit 2, no run folder (issue 18,
    item 4)."""
    from sb3_dqn_atari.train import main

    monkeypatch.chdir(tmp_path)
    code = main(["--algo", "dqn", "--env", "BreakoutNoFrameskip-v4", "-n", "100", "-f", "logs"])
    err = capsys.readouterr().err.strip().splitlines()
    expected = "error: pass -conf hyperparams/dqn.yml (the paper's settings) to train BreakoutNoFrameskip-v4"
    assert code == 2 and len(err) == 1 and err[0].startswith(expected)
    assert not (tmp_path / "logs").exists()
