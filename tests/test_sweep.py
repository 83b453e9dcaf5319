"""``python -m sb3_dqn_atari.sweep``: games × seeds on a real Ray cluster, a killed trial retried from its exact
checkpoint, ``--resume``, the report of the sweep, and bad input.

The cluster: two Ray nodes on 127.0.0.1 with one CPU each (:mod:`tests.ray_cluster`); the trials: Pong and
Breakout with the paper's yml and a tiny budget (replay start 200, 900 agent steps, a 1,000-frame evaluation
cap), each in its own Ray worker process with one torch thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sb3_dqn_atari.sweep.__main__ import main as sweep_main
from sb3_dqn_atari.sweep.spec import SweepSpec, create_sweep, env_id_for, read_attempts
from tests.conftest import ROOT
from tests.ray_cluster import CLUSTER_ENV, ray_cluster

CONF = ROOT / "hyperparams" / "dqn.yml"
N_STEPS = 900
TINY = [
    "-n", str(N_STEPS), "-conf", str(CONF),
    "-params", "learning_starts:200", "buffer_size:1000", "exploration_decay_steps:600", "target_update_interval:200",
    "--eval-freq", "450", "--eval-episodes", "1", "--eval-max-frames", "1000", "--checkpoint-freq", "300",
]  # fmt: skip


def _sweep(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sb3_dqn_atari.sweep", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **CLUSTER_ENV},
    )


def _finish(process: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return out


def _tune_checkpoints(trial: Path, pid: int | None = None) -> list[int]:
    """The steps of the checkpoints Tune registered for a trial (``checkpoint_dir_name`` in its results), only
    those reported by the worker process ``pid`` when given (Tune fills ``pid`` in every result)."""
    steps = []
    with contextlib.suppress(FileNotFoundError), open(trial / "result.json") as f:
        for line in f:
            result = json.loads(line)
            if result.get("checkpoint_dir_name") and pid in (None, result["pid"]):
                steps.append(int(result["checkpoint_step"]))
    return steps


def _wait(condition: Callable[[], Any], process: subprocess.Popen[str], what: str, timeout: float = 400) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, f"the sweep ended before {what}: {process.communicate()[0][-3000:]}"
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout} s")


def _checkpointed_on(sweep: Path, node: str) -> tuple[Path, int] | None:
    """A trial in its first attempt on ``node`` with a checkpoint registered by Tune, and that checkpoint's step."""
    for trial in sorted(sweep.glob("*_seed*")):
        attempts, steps = read_attempts(trial), _tune_checkpoints(trial)
        if len(attempts) == 1 and attempts[0]["node_id"] == node and steps and steps[-1] < N_STEPS:
            return trial, steps[-1]
    return None


def _final_model(trial: Path) -> Path:
    env_id = json.loads((trial / "trial.json").read_text())["env_id"]
    (model,) = trial.glob(f"dqn/{env_id}_*/{env_id}.zip")
    return model


def _same_weights(a: Path, b: Path) -> None:
    from sb3_dqn_atari import NatureDQN

    x, y = (NatureDQN.load(p, device="cpu") for p in (a, b))
    assert x.num_timesteps == y.num_timesteps == N_STEPS and x._n_updates == y._n_updates > 0
    for (kx, vx), (ky, vy) in zip(x.policy.state_dict().items(), y.policy.state_dict().items(), strict=True):
        assert kx == ky and torch.equal(vx, vy), kx
    ox, oy = x.policy.optimizer.state_dict()["state"], y.policy.optimizer.state_dict()["state"]
    assert all(torch.equal(ox[i]["square_avg"], oy[i]["square_avg"]) for i in ox)


def test_sweep_survives_a_killed_worker_a_lost_node_and_an_interruption_exactly(tmp_path: Path) -> None:
    """2 games × 2 seeds on a two-node cluster. Once the trial on the second node has a checkpoint, its worker
    process is killed (SIGKILL, by its pid) and its node with it: Tune runs the trial again on the other node,
    from that checkpoint. Then the sweep itself is interrupted (Ctrl-C), the cluster shut down, and ``--resume``
    (no ``--address``: a Ray instance started on this machine) finishes every trial from its latest checkpoint.
    The killed trial ends with the weights, optimizer state and evaluations of the same trial run uninterrupted
    by ``python -m sb3_dqn_atari.train`` (the command line the trial recorded). Then the report of the sweep."""
    from sb3_dqn_atari.report.__main__ import main as report_main

    sweep = tmp_path / "runs" / "s"
    name = ["-f", str(tmp_path / "runs"), "--name", "s"]
    with ray_cluster() as cluster:
        head, worker = cluster.nodes
        # two trials at a time: the retry of the killed one is then the only trial waiting for a CPU
        process = _sweep(["--games", "Pong", "Breakout", "--seeds", "0", "1", *TINY, *name, "--address",
                          cluster.address, "--max-failures", "3", "--max-concurrent-trials", "2"])  # fmt: skip
        try:
            victim, _ = _wait(lambda: _checkpointed_on(sweep, worker), process, "a checkpoint on the 2nd node")
            pid = read_attempts(victim)[0]["pid"]
            os.kill(pid, signal.SIGKILL)
            cluster.remove_node(worker)
            _wait(lambda: len(read_attempts(victim)) == 2, process, "the retry of the killed trial")
            # the checkpoints Tune had from the killed worker, once the retry has started (it may have reported more
            # than the first one seen above before the kill; which one Tune restores is Tune's choice: a report that
            # reached it while the node was being removed was once not the one restored, 300 of [300, 600])
            steps = _tune_checkpoints(victim, pid)
            process.send_signal(signal.SIGINT)
        finally:
            out = _finish(process, 300)
        assert process.returncode == 1, out[-5000:]
    # progress per trial (Tune's table), then the summary and how to resume
    assert "│ PongNoFrameskip-v4_seed0" in out and "│ BreakoutNoFrameskip-v4_seed0" in out and "paper_score" in out
    assert f"python -m sb3_dqn_atari.sweep --resume -f {tmp_path / 'runs'} --name s" in out
    retry = read_attempts(victim)[1]
    assert retry["node_id"] == head and retry["pid"] != pid  # on the other node
    assert retry["resumed_step"] in steps and Path(retry["resumed_from"]).parent == victim  # Tune's copy, ours
    first = {t.name: read_attempts(t) for t in sweep.glob("*_seed*")}
    saved = {t.name: _tune_checkpoints(t) for t in sweep.glob("*_seed*")}  # what Tune had when it stopped

    resumed = _sweep(["--resume", *name])
    out = _finish(resumed, 900)
    assert resumed.returncode == 0, out[-5000:]
    assert read_attempts(victim)[0]["resumed_from"] is None
    trials = sorted(sweep.glob("*_seed*"))
    assert len(trials) == 4
    for trial in trials:  # (with two at a time, the last trials were made after the interruption)
        later, had = read_attempts(trial)[len(first.get(trial.name, [])) :], saved.get(trial.name, [])
        if later:  # not finished before the interruption: went on from Tune's latest checkpoint, if it had one
            assert later[0]["resumed_step"] == (had[-1] if had else None), trial.name
        results = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert {r["torch_threads"] for r in results} == {1}  # one torch thread per trial (its one CPU)
        _final_model(trial)  # each trial finished (one final model)
    assert read_attempts(victim)[-1]["resumed_step"] is not None  # the victim went on after the interruption too

    # the same trial, uninterrupted, by hand: python -m sb3_dqn_atari.train with the trial's command line
    trial = json.loads((victim / "trial.json").read_text())
    argv, env_id = trial["argv"], trial["env_id"]
    argv[argv.index("-f") + 1] = str(tmp_path / "reference")
    done = subprocess.run(
        [sys.executable, "-m", "sb3_dqn_atari.train", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = tmp_path / "reference" / "dqn" / f"{env_id}_1"
    _same_weights(_final_model(victim), reference / f"{env_id}.zip")
    a, b = (np.load(folder / "evaluations_nature.npz") for folder in (_final_model(victim).parent, reference))
    assert list(a["timesteps"]) == list(b["timesteps"]) == [450, 900]
    assert np.array_equal(a["results"], b["results"]) and np.array_equal(a["ep_frames"], b["ep_frames"])
    # the killed attempt's run folder has no final model: it is not counted again by the report
    assert not (victim / "dqn" / f"{env_id}_1" / f"{env_id}.zip").exists()

    assert report_main([str(sweep), "-o", str(tmp_path / "report"), "--reps", "300", "--curve-reps", "100"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [(g["env_id"], g["seeds"]) for g in report["games"]] == [
        ("BreakoutNoFrameskip-v4", [0, 1]),
        ("PongNoFrameskip-v4", [0, 1]),
    ]
    for run in report["runs"]:  # each trial's score: the last evaluation of its finished attempt
        with np.load(_final_model(Path(run["path"])).parent / "evaluations_nature.npz") as data:
            assert run["score"] == float(data["results"][-1].mean()) and run["step"] == N_STEPS
    assert report["games_in_aggregates"] == ["BreakoutNoFrameskip-v4", "PongNoFrameskip-v4"]
    for interval in report["aggregates"].values():
        assert interval["low"] <= interval["estimate"] <= interval["high"]
    assert report["curve"]["timesteps"] == [450, 900]
    assert set(report["figures"]) == {"aggregates", "sample_efficiency", "performance_profile"}


# ------------------------------------------------------------------------------------------------ no Ray
def test_games_resolve_to_the_paper_env_ids() -> None:
    assert env_id_for("Pong") == "PongNoFrameskip-v4"
    assert env_id_for("space_invaders") == env_id_for("SpaceInvaders") == "SpaceInvadersNoFrameskip-v4"
    assert env_id_for("mspacman") == "MsPacmanNoFrameskip-v4"
    assert env_id_for("ALE/Pong-v5") == "ALE/Pong-v5"
    from sb3_dqn_atari.loading import UserError

    with pytest.raises(UserError, match="unknown game 'Pongg'"):
        env_id_for("Pongg")


def test_trial_command_line_is_the_train_command_with_the_sweep_callbacks(tmp_path: Path) -> None:
    """The yml's own paper-protocol evaluation and checkpoint callbacks are replaced by the sweep's, others kept;
    the budget and the defaults come from the yml; torch threads = CPUs per trial."""
    conf = tmp_path / "mine.yml"
    conf.write_text(
        "atari:\n  policy: CnnPolicy\n  n_timesteps: !!float 2e6\n  callback:\n"
        "    - sb3_dqn_atari.evaluation.NatureEvalCallback: {eval_freq: 1000}\n"
        "    - sb3_dqn_atari.checkpoint.ResumableCheckpointCallback\n"
        "    - stable_baselines3.common.callbacks.StopTrainingOnMaxEpisodes: {max_episodes: 5}\n"
    )
    spec = SweepSpec(str(tmp_path / "s"), ["BreakoutNoFrameskip-v4"], [4], params=["gamma:0.98"], cpus_per_trial=2.5)
    create_sweep(spec, conf)
    argv = spec.trial_argv("BreakoutNoFrameskip-v4", 4)
    assert argv[:14] == [
        "--algo", "dqn", "--env", "BreakoutNoFrameskip-v4", "-conf", str(tmp_path / "s" / "hyperparams.yml"),
        "--seed", "4", "-f", str(tmp_path / "s" / "BreakoutNoFrameskip-v4_seed4"), "--eval-freq", "-1",
        "--num-threads", "2",
    ]  # fmt: skip
    params = argv[argv.index("-params") + 1 :]
    assert params[0] == "gamma:0.98" and params[1].startswith("callback:")
    callbacks = eval(params[1].split(":", 1)[1])  # what rl-zoo3's -params does with it
    assert callbacks == [
        {"stable_baselines3.common.callbacks.StopTrainingOnMaxEpisodes": {"max_episodes": 5}},
        {"sb3_dqn_atari.sweep.callbacks.TuneEvalCallback": {
            "eval_freq": 250_000, "n_eval_episodes": 10, "max_episode_frames": 18_000, "report_freq": 10_000}},
        {"sb3_dqn_atari.sweep.callbacks.TuneCheckpointCallback": {"save_freq": 500_000, "keep": 1}},
    ]  # fmt: skip
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["env_ids"] == ["BreakoutNoFrameskip-v4"]
    small = SweepSpec(str(tmp_path / "s"), ["BreakoutNoFrameskip-v4"], [4], n_timesteps=40_000)
    evaluation, checkpoints = (next(iter(c.values())) for c in small.callbacks("BreakoutNoFrameskip-v4")[-2:])
    assert evaluation["eval_freq"] == 40_000 and checkpoints["save_freq"] == 10_000


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = sweep_main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_bad_input_is_one_line_before_ray_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["-f", str(tmp_path), "-conf", str(CONF)]
    assert "unknown game 'Pongg'" in _cli(["--games", "Pongg", "--seeds", "0", *base], capsys)
    assert "pass --games and --seeds" in _cli(["--games", "Pong", *base], capsys)
    assert "not an ALE Atari env" in _cli(["--games", "CartPole-v1", "--seeds", "0", *base], capsys)
    assert "no such hyperparameter file" in _cli(["--games", "Pong", "--seeds", "0", "-f", str(tmp_path), "-conf",
                                                  str(tmp_path / "nope.yml")], capsys)  # fmt: skip
    assert "write key:value" in _cli(["--games", "Pong", "--seeds", "0", *base, "-params", "gamma"], capsys)
    assert "Python literal" in _cli(["--games", "Pong", "--seeds", "0", *base, "-params", "callback:f()"], capsys)
    assert "must not repeat" in _cli(["--games", "Pong", "--seeds", "0", "0", *base], capsys)
    assert "no sweep_<k> folder" in _cli(["--resume", *base], capsys)
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    create_sweep(SweepSpec(str(tmp_path / "sweep_1"), ["PongNoFrameskip-v4"], [0], n_timesteps=10), CONF)
    assert "already exists: add --resume" in _cli(["--games", "Pong", "--seeds", "0", "--name", "sweep_1", *base],
                                                  capsys)  # fmt: skip
    assert "resume it with those" in _cli(["--resume", "--games", "Breakout", *base], capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["sweep_1"]
