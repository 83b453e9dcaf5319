"""The agent step at which each training game ended, beside rl-zoo3's Monitor files: ``episodes.csv``.

rl-zoo3 wraps SB3's ``Monitor`` around the raw Atari env, under the preprocessing, so the Monitor's episode
length ``l`` counts emulator frames: 4 per agent step, plus the 1-30 single-frame no-ops the paper plays at the
start of every game *and after every lost life* (``atari/wrappers.py``), which the agent never sees. Frames / 4
overshoots the agent steps by the no-op share (8 % in a 100k-step Breakout run, issue 18). The learner knows its
own count: :class:`EpisodeLogMixin` writes, for every game the Monitor reports, the algorithm's
``num_timesteps`` at that step (all envs together, as SB3 counts), the score and the Monitor's length, in
the order the games ended. ``sb3_dqn_atari.plot`` draws the training curve from it.

The file is appended to, one line per game, and opened only for that line (the algorithm holds no file handle:
it is saved and checkpointed). :func:`rewind` drops the games after a checkpoint's step when a run is resumed
in its own folder.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

#: the file's name in the run folder (the folder of the Monitor files)
EPISODES_FILE = "episodes.csv"
#: its columns: the agent step at which the game ended (``num_timesteps``), its score and emulator frames
COLUMNS = ("agent_steps", "r", "l")


def env_layers(env: VecEnv | gym.Env | None) -> Iterator[Any]:
    """Every layer of an env stack, outermost first: VecEnv wrappers, the VecEnv, then each env of a ``DummyVecEnv``
    from its outermost wrapper to the unwrapped env (none under other VecEnvs: their envs live in other processes)."""
    while isinstance(env, VecEnvWrapper):
        yield env
        env = env.venv
    if isinstance(env, VecEnv):
        yield env
        for sub in env.envs if isinstance(env, DummyVecEnv) else []:
            yield from env_layers(sub)
        return
    while isinstance(env, gym.Wrapper):
        yield env
        env = env.env
    yield env


def monitors(venv: VecEnv | None) -> Iterator[Monitor]:
    """The Monitors of the training env (:func:`env_layers`) that write a file."""
    for layer in env_layers(venv):
        if isinstance(layer, Monitor) and layer.results_writer is not None:
            yield layer


def monitor_folder(venv: VecEnv | None) -> Path | None:
    """The folder the training env's Monitor files are written to (rl-zoo3's run folder), when it can be read
    in-process, else ``None``."""
    for monitor in monitors(venv):
        assert monitor.results_writer is not None
        return Path(monitor.results_writer.file_handler.name).parent
    return None


def append_games(path: Path, rows: list[tuple[int, float, int]]) -> None:
    """Append ``(agent_steps, r, l)`` rows, writing the header when the file is new."""
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(COLUMNS)
        writer.writerows(rows)


def read_games(path: Path) -> tuple[list[int], list[float]]:
    """The agent steps and scores of the games in ``path``, in the order they ended."""
    steps, scores = [], []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            steps.append(int(row["agent_steps"]))
            scores.append(float(row["r"]))
    return steps, scores


def rewind(folder: Path, num_timesteps: int, venv: VecEnv | None) -> None:
    """Drop what the run folder recorded after step ``num_timesteps`` (a resume from a checkpoint there goes on
    from that step): the games of ``episodes.csv`` that ended later, and the Monitor rows beyond the games each
    (restored) Monitor has counted (``len(episode_returns)``). Each file is cut in place: the Monitors have it
    open for appending."""
    path = folder / EPISODES_FILE
    if path.is_file():
        steps, _ = read_games(path)
        _cut_after_lines(path, 1 + sum(step <= num_timesteps for step in steps))  # + the header
    for monitor in monitors(venv):
        assert monitor.results_writer is not None
        monitor.results_writer.file_handler.flush()
        monitor_path = Path(monitor.results_writer.file_handler.name)
        _cut_after_lines(monitor_path, 2 + len(monitor.get_episode_rewards()))  # JSON + CSV header


def _cut_after_lines(path: Path, keep: int) -> None:
    with open(path, newline="") as handle:
        lines = handle.readlines()
    if keep < len(lines):
        os.truncate(path, sum(len(line.encode()) for line in lines[:keep]))


class EpisodeLogMixin:
    """Writes ``episodes.csv`` (see the module) beside the training env's Monitor files, from SB3's
    ``_update_info_buffer``, which every off-policy algorithm calls after each env step with the step's infos
    (``num_timesteps`` already counts that step). No Monitor file (or another VecEnv than ``DummyVecEnv``): no
    log."""

    num_timesteps: int
    env: VecEnv | None

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: Any = None) -> None:
        super()._update_info_buffer(infos, dones)  # type: ignore[misc]
        ends = [info["episode"] for info in infos if "episode" in info]
        games = [(self.num_timesteps, float(end["r"]), int(end["l"])) for end in ends]
        if games:
            folder = monitor_folder(self.env)
            if folder is not None:
                append_games(folder / EPISODES_FILE, games)
