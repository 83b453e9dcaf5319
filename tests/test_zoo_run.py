"""What an rl-zoo3 run prints first and records (sb3_dqn_atari.zoo_run), and the two paper-protocol evaluations of
one run folder keeping their own files (issue 18, items 5 and 8)."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stable_baselines3.common.env_util import make_vec_env

from sb3_dqn_atari.agent.dqn import NatureDQN
from sb3_dqn_atari.agent.threads import ThreadChoice
from sb3_dqn_atari.common.safe_yaml import read_yaml_mapping
from sb3_dqn_atari.evaluation import NatureEvalCallback
from sb3_dqn_atari.zoo import PaperProtocolEvalCallback
from sb3_dqn_atari.zoo.run import EVAL_FREQ_FILE_STEM, record_n_timesteps, run_banner, separate_eval_files
from tests.conftest import ROOT
from tests.zoo_runs import zoo_env

BREAKOUT = "BreakoutNoFrameskip-v4"


def test_config_records_the_steps_run() -> None:
    saved = OrderedDict([("n_timesteps", 50_000_000.0), ("policy", "CnnPolicy")])
    record_n_timesteps(saved, 100_000)
    assert saved == OrderedDict([("n_timesteps", 100_000), ("policy", "CnnPolicy")])


def test_banner_names_class_mode_yml_steps_and_threads() -> None:
    threads = ThreadChoice(1, "chosen", usable=2, host_cpus=2, load=1.2)
    text = run_banner(NatureDQN, {"mode": "fast"}, "dqn", "hyperparams/dqn.yml", 100_000, 5e7, threads)
    first, second = text.splitlines()
    assert first == (
        "--algo dqn builds NatureDQN (sb3_dqn_atari.agent.dqn.NatureDQN, mode=fast) from hyperparams/dqn.yml, "
        "100,000 agent steps (-n; the yml says 50,000,000)"
    )
    assert second.startswith("torch threads: 1 (chosen: 2 usable CPU(s), 1-minute load average 1.20")
    # no mode in the yml: the class's default; the yml's own budget: no note
    text = run_banner(NatureDQN, {}, "dqn", "x.yml", 1000, 1000, threads)
    assert "mode=exact) from x.yml, 1,000 agent steps\n" in text


def test_separate_eval_files_only_on_a_clash() -> None:
    venv = make_vec_env("CartPole-v1")
    zoo_eval = PaperProtocolEvalCallback(venv, eval_freq=10, log_path="logs/dqn/run_1")
    yml_eval = NatureEvalCallback(eval_freq=10)  # the run folder: the training env's Monitor folder
    assert separate_eval_files([zoo_eval], PaperProtocolEvalCallback) is None
    assert zoo_eval.file_stem == "evaluations_nature"
    elsewhere = NatureEvalCallback(eval_freq=10, log_path="elsewhere")
    assert separate_eval_files([elsewhere, zoo_eval], PaperProtocolEvalCallback) is None
    note = separate_eval_files([yml_eval, zoo_eval], PaperProtocolEvalCallback)
    assert note is not None and EVAL_FREQ_FILE_STEM in note
    assert (zoo_eval.file_stem, yml_eval.file_stem) == (EVAL_FREQ_FILE_STEM, "evaluations_nature")
    for bad in ("", "..", "../evil", "a/b"):
        with pytest.raises(ValueError, match="plain file name"):
            NatureEvalCallback(eval_freq=10, file_stem=bad)


def test_eval_freq_and_a_yml_callback_keep_their_own_files(tmp_path: Path) -> None:
    """rl-zoo3's ``--eval-freq`` (our PaperProtocolEvalCallback) and a NatureEvalCallback from the yml, in one
    run: each writes its own npz/csv with its own steps, nothing is overwritten."""
    callback = "callback:[{'sb3_dqn_atari.evaluation.NatureEvalCallback': dict(eval_freq=300, n_eval_episodes=1, max_episode_frames=400)}]"  # noqa: E501
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", BREAKOUT, "-conf",
               str(ROOT / "hyperparams" / "dqn.yml"), "-n", "700", "--seed", "0", "-f", "logs",
               "--eval-freq", "600", "--eval-episodes", "1",
               "-params", "learning_starts:1000", "buffer_size:2000", callback]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=zoo_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"--eval-freq's paper-protocol evaluation writes {EVAL_FREQ_FILE_STEM}.npz/.csv" in result.stdout
    run = tmp_path / "logs" / "dqn" / f"{BREAKOUT}_1"
    with np.load(run / "evaluations_nature.npz") as yml_evals, np.load(run / f"{EVAL_FREQ_FILE_STEM}.npz") as zoo:
        assert yml_evals["timesteps"].tolist() == [300, 600] and yml_evals["seeds"].tolist() == [0, 1]
        assert yml_evals["ep_frames"].max() <= 400
        assert zoo["timesteps"].tolist() == [600] and zoo["seeds"].tolist() == [0]
    assert pd.read_csv(run / "evaluations_nature.csv")["timesteps"].tolist() == [300, 600]
    assert pd.read_csv(run / f"{EVAL_FREQ_FILE_STEM}.csv")["timesteps"].tolist() == [600]
    assert read_yaml_mapping(run / BREAKOUT / "config.yml")["n_timesteps"] == 700
