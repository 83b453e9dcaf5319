"""rl-zoo3's hyperparameter search with NatureDQN: the sampler keeps the Nature network and stays around the
paper's values, trials are scored with the paper's protocol, and several workers share one Optuna storage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from tests.conftest import ROOT

CONF = str(ROOT / "hyperparams" / "dqn.yml")
SAMPLED = {"learning_rate", "batch_size", "target_update_interval", "exploration_final_eps", "exploration_decay_steps"}


def test_sampler_keeps_the_nature_network_and_the_paper_neighbourhood() -> None:
    from rl_zoo3 import exp_manager
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

    import sb3_dqn_atari.zoo  # noqa: F401  (what rl-zoo3 imports from our yml)
    from sb3_dqn_atari.evaluation.callback import PaperProtocolTrialEvalCallback
    from sb3_dqn_atari.zoo import hpo

    sampler, converter = HYPERPARAMS_SAMPLER["dqn"], HYPERPARAMS_CONVERTER["dqn"]
    assert sampler is hpo.sample_nature_dqn_params and converter is hpo.convert_nature_dqn_params
    assert exp_manager.TrialEvalCallback is PaperProtocolTrialEvalCallback
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, set[object]] = {name: set() for name in SAMPLED}
    for _ in range(300):
        trial = study.ask()
        params = sampler(trial, 6, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
        study.tell(trial, 0.0)
        # nothing that changes the network, the optimizer or the ε schedule's form
        assert set(params) == SAMPLED
        assert converter(trial.params) == params  # --trial-id gives back the same hyperparameters
        assert 6.25e-5 <= params["learning_rate"] <= 1e-3  # 2.5e-4 (Table 1) times 1/4 to 4
        assert params["batch_size"] in (32, 64)
        assert params["target_update_interval"] in (1_000, 2_500, 5_000, 10_000, 20_000)
        assert params["exploration_final_eps"] in (0.01, 0.05, 0.1)
        assert params["exploration_decay_steps"] in (250_000, 500_000, 1_000_000)
        for name, value in params.items():
            seen[name].add(value)
    assert all(len(values) >= 2 for values in seen.values())
    assert {2.5e-4 / 4 < lr < 2.5e-4 for lr in seen["learning_rate"]} == {True, False}


def _worker(tmp_path: Path, seed: int) -> subprocess.Popen[str]:
    args = [
        "--algo", "dqn", "--env", "PongNoFrameskip-v4", "-conf", CONF, "-n", "400", "-optimize",
        "--storage", str(tmp_path / "study.log"), "--study-name", "pong", "--max-total-trials", "4",
        "--n-evaluations", "1", "--eval-episodes", "1", "--sampler", "random", "--pruner", "none",
        "--no-optim-plots", "--seed", str(seed), "--num-threads", "1", "-f", str(tmp_path / "logs"),
        "--optimization-log-path", str(tmp_path / "trials"), "-params", "learning_starts:100", "buffer_size:1000",
    ]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "rl_zoo3.train", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_two_workers_share_one_study_scored_with_the_paper_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``python -m rl_zoo3.train -optimize`` processes on one JournalStorage file finish a 4-trial study: 4
    distinct trials, each worker ran some; each value is the raw game score of the paper-protocol evaluation
    written in its trial folder; each trial trained the Nature network with its sampled hyperparameters. Then
    ``python -m sb3_dqn_atari.train --trial-id`` trains with one trial's hyperparameters."""
    from sb3_dqn_atari import NatureDQN

    workers = [_worker(tmp_path, seed) for seed in (1, 2)]
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=900)[0])
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert worker.returncode == 0, outputs[-1][-4000:]
    ran = [set(map(int, re.findall(r"Trial (\d+) finished with value", out))) for out in outputs]
    assert all(ran) and not ran[0] & ran[1] and ran[0] | ran[1] == {0, 1, 2, 3}

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log")))
    trials = optuna.load_study(study_name="pong", storage=storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4
    for trial in trials:
        folder = tmp_path / "trials" / f"trial_{trial.number}"
        with np.load(folder / "evaluations_nature.npz") as data:  # NatureEvalCallback's file: the paper's protocol
            assert list(data["timesteps"]) == [400] and str(data["protocol"]) == "nature"
            assert float(data["epsilon"]) == 0.05 and data["ep_frames"][0][0] <= 18_000
            assert trial.value == float(data["results"][-1].mean())
        assert trial.value is not None and -21 <= trial.value <= 21 and trial.value == int(trial.value)  # raw score
        model = NatureDQN.load(folder / "best_model.zip", device="cpu")
        head = model.policy.q_net.q_net
        assert isinstance(head, torch.nn.Sequential) and [type(m) for m in head] == [torch.nn.Linear]
        assert head[0].in_features == 512 and head[0].out_features == 6  # NatureCNN's 512 features, no net_arch
        assert model.lr_schedule(1.0) == trial.params["learning_rate"]
        assert model.batch_size == trial.params["batch_size"]
        assert model.target_update_interval == trial.params["target_update_interval"]
        assert model.policy.optimizer.defaults["eps"] == pytest.approx(0.01 / model.batch_size**2)

    # one trial's hyperparameters, trained again: python -m sb3_dqn_atari.train registers before rl-zoo3 reads them
    from sb3_dqn_atari import train

    monkeypatch.chdir(tmp_path)
    best = max(trials, key=lambda t: (t.value, -t.number))
    args = ["--algo", "dqn", "--env", "PongNoFrameskip-v4", "-conf", CONF, "-n", "200", "--storage", "study.log",
            "--study-name", "pong", "--trial-id", str(best.number), "--eval-freq", "-1", "-f", "again",
            "-params", "learning_starts:100", "buffer_size:500", "--num-threads", "1", "--verbose", "0"]  # fmt: skip
    assert train.main(args) == 0
    model = NatureDQN.load(tmp_path / "again" / "dqn" / "PongNoFrameskip-v4_1" / "PongNoFrameskip-v4.zip")
    assert model.lr_schedule(1.0) == best.params["learning_rate"]
    assert model.exploration_decay_steps == best.params["exploration_decay_steps"]
