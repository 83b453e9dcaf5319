"""The learning curves ``python -m sb3_dqn_atari.plot`` draws (:mod:`sb3_dqn_atari.plot` for its arguments).

Each ``LOGDIR`` is a run folder (``logs/dqn/BreakoutNoFrameskip-v4_1``) or a folder of run folders
(``logs/dqn``). Plotted, per game (one column each):

* **training score** from the Monitor files (``*.monitor.csv``): the raw game score of every training game.
  ``make_vec_env`` puts the Monitor directly on the ALE env, *under* our
  :class:`~sb3_dqn_atari.atari.wrappers.NatureAtariWrapper`, so it sees unclipped rewards and whole games (a life
  loss is terminal for the learner only). Its episode lengths count emulator frames there (one raw
  frame per step of a ``NoFrameskip`` env), which is how the x positions are computed; smoothed over
  ``--window`` games.
* **evaluation score**: ``evaluations_nature.npz`` written by
  :class:`~sb3_dqn_atari.evaluation.NatureEvalCallback` (the paper's protocol: Mnih et al. 2015, Methods;
  or Machado et al. 2018; ``evaluations_nature_eval_freq.npz`` from rl-zoo3's ``--eval-freq`` when the yml has
  its own), and rl-zoo3's own ``evaluations.npz`` (SB3 ``EvalCallback``: the training
  wrapper and the model's own exploration, so *not* the paper's protocol) for comparison; the paper's DQN,
  human and random scores (Extended Data Table 2) as horizontal lines.

The x axis is agent steps (the paper's "frames" in Extended Data Table 1), with emulator frames (× 4, the
action repeat) on the top axis. Evaluation points are placed at the agent steps they were made at. Training
games are placed at the agent step each ended at, as the run recorded it in ``episodes.csv``
(:mod:`sb3_dqn_atari.agent.episode_log`); for a run folder without that file (written before it existed, or
not by NatureDQN) at the Monitor's emulator frames / 4, with a note: the no-ops after every life loss make that
an over-estimate (8 % in a 100k-step Breakout run).

Each run folder is checked before it is read (:func:`sb3_dqn_atari.common.vetting.vet_run_folder`: rl-zoo3's YAML files,
the Monitor headers' env ids, zip and ``.npz`` member sizes, ONNX files); ``--trust-remote-code`` skips the
YAML and allow-list checks.

With several runs of a game, their mean is drawn with a band: min–max (default) or ± one standard deviation
across runs, on the range all runs cover. A single run's evaluation band is the ± std across its episodes.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sb3_dqn_atari.agent.episode_log import EPISODES_FILE, read_games
from sb3_dqn_atari.atari.wrappers import ACTION_REPEAT
from sb3_dqn_atari.common.errors import UserError

#: rl-zoo3 / SB3 file names.
MONITOR_GLOB = "*monitor.csv"
NATURE_EVAL_FILE = "evaluations_nature.npz"
#: the paper-protocol evaluation of rl-zoo3's ``--eval-freq`` when the yml has its own (:mod:`sb3_dqn_atari.zoo.run`)
NATURE_EVAL_FREQ_FILE = "evaluations_nature_eval_freq.npz"
ZOO_EVAL_FILE = "evaluations.npz"
EVAL_FILES = (NATURE_EVAL_FILE, NATURE_EVAL_FREQ_FILE, ZOO_EVAL_FILE)
#: Points of the common grid when several training curves are averaged.
GRID_POINTS = 200


@dataclass
class Curve:
    """``y`` against agent steps ``x``; ``lo``/``hi`` optional band."""

    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None


@dataclass
class RunData:
    """What one rl-zoo3 run folder holds, as curves against agent steps."""

    path: Path
    env_id: str | None
    train_raw: Curve | None = None  # one point per training game
    evals: dict[str, Curve] = field(default_factory=dict)  # NATURE_EVAL_FILE / ZOO_EVAL_FILE -> mean per evaluation


def _frames_per_monitor_step(env_id: str | None) -> float:
    """Emulator frames per step of the env the Monitor wraps: 1 for ``NoFrameskip`` ids, the id's frameskip else."""
    if env_id is None or ":" in env_id:  # module:Env-v0 would make gymnasium import the module: not an ALE id
        return 1.0
    try:
        import ale_py
        import gymnasium as gym

        gym.register_envs(ale_py)
        frameskip = gym.spec(env_id).kwargs.get("frameskip", 1)
    except Exception:  # an unknown id (another gym package): assume single frames
        return 1.0
    if isinstance(frameskip, (tuple, list)):  # v4 ids draw the skip uniformly from [low, high)
        return (frameskip[0] + frameskip[1] - 1) / 2
    return float(frameskip)


def _monitor_env_id(run_dir: Path) -> str | None:
    """The env id the first Monitor file's header records (its first line, read bounded)."""
    for f in sorted(run_dir.glob(MONITOR_GLOB)):
        with f.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline(1 << 16)
        with contextlib.suppress(ValueError):
            header = json.loads(first[1:]) if first.startswith("#") else None
            if isinstance(header, dict) and isinstance(header.get("env_id"), str):
                return str(header["env_id"])
    return None


def read_monitor(run_dir: Path) -> tuple[np.ndarray, np.ndarray, str | None] | None:
    """Episode scores and cumulative emulator frames at each episode's end, in time order, from every
    Monitor file of ``run_dir`` (several with ``n_envs > 1``; SB3's ``load_results``); None when there is none or
    it is empty."""
    from stable_baselines3.common.monitor import LoadMonitorResultsError, load_results

    try:
        data = load_results(str(run_dir))
        if len(data) and not {"r", "l", "t"} <= set(data.columns):
            raise ValueError("no r, l, t columns")
        scores, lengths = data["r"].to_numpy(dtype=np.float64), data["l"].to_numpy(dtype=np.float64)
    except LoadMonitorResultsError:
        return None
    # pandas' ParserError and EmptyDataError, and UnicodeDecodeError, are ValueErrors
    except (AssertionError, IndexError, KeyError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise UserError(
            f"{run_dir}: a Monitor file ({MONITOR_GLOB}) is not a readable SB3 Monitor file ({exc.__class__.__name__})"
        ) from exc
    if not len(scores):
        return None
    env_id = _monitor_env_id(run_dir)
    return scores, np.cumsum(lengths * _frames_per_monitor_step(env_id)), env_id


def read_recorded_games(run_dir: Path) -> Curve | None:
    """Training scores at the agent steps the games ended, from the run's ``episodes.csv``; None without it."""
    path = run_dir / EPISODES_FILE
    if not path.is_file():
        return None
    try:
        steps, scores = read_games(path)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} is not this project's episodes file ({exc.__class__.__name__}: {exc})") from exc
    return Curve(np.asarray(steps, dtype=np.float64), np.asarray(scores, dtype=np.float64)) if steps else None


def read_evaluations(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The agent steps and the ``(evaluations, episodes)`` scores of an ``evaluations*.npz`` (SB3's ``EvalCallback``,
    :class:`~sb3_dqn_atari.evaluation.NatureEvalCallback`; nothing is unpickled); None if it holds no evaluation."""
    try:
        with np.load(path, allow_pickle=False) as data:
            timesteps = np.asarray(data["timesteps"], dtype=np.float64).reshape(-1)
            results = np.asarray(data["results"], dtype=np.float64)
        return (timesteps, results.reshape(len(timesteps), -1)) if len(timesteps) else None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        name = exc.__class__.__name__
        raise UserError(f"{path} is not an evaluations file ({name}: {exc}); remove it or fix it") from exc


def _env_from_folder(run_dir: Path) -> str | None:
    match = re.fullmatch(r"(.+)_\d+", run_dir.name)
    return match.group(1) if match else None


def load_run(run_dir: str | Path, trust_remote_code: bool = False) -> RunData:
    """The curves of one run folder (see the module docstring for what each file means), after the folder's
    files are checked (:func:`sb3_dqn_atari.common.vetting.vet_run_folder`: a pulled or downloaded run folder is a
    stranger's files; ``trust_remote_code`` skips the YAML and allow-list checks, not the zip bounds)."""
    from sb3_dqn_atari.common.vetting import vet_run_folder

    path = Path(run_dir)
    vet_run_folder(path, trust_remote_code)
    monitor = read_monitor(path)
    run = RunData(path=path, env_id=monitor[2] if monitor else None)
    games = read_recorded_games(path)
    if games is not None:
        run.train_raw = games
    elif monitor is not None:
        scores, frames, _ = monitor
        run.train_raw = Curve(frames / ACTION_REPEAT, scores)
        print(f"note: {path} has no {EPISODES_FILE}: training games placed at emulator frames / 4", file=sys.stderr)
    for name in EVAL_FILES:
        found = read_evaluations(path / name) if (path / name).is_file() else None
        if found is not None:  # the mean score of each evaluation, its band ± the std across its episodes
            mean, std = found[1].mean(axis=1), found[1].std(axis=1)
            run.evals[name] = Curve(found[0], mean, mean - std, mean + std)
    if run.env_id is None:
        run.env_id = _env_from_folder(path)
    return run


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (fewer at the start)."""
    import pandas as pd

    return pd.Series(y, dtype=np.float64).rolling(max(window, 1), min_periods=1).mean().to_numpy()


def aggregate(curves: Sequence[Curve], band: str = "minmax", grid: np.ndarray | None = None) -> Curve | None:
    """Mean of several curves and their spread (``"minmax"`` or ``"std"``) on the x range all of them cover.

    ``grid``: the x positions (default: the union of the curves' x within the common range, capped at
    ``GRID_POINTS`` evenly spaced points). None when the ranges do not overlap.
    """
    lo_x = max(float(c.x[0]) for c in curves)
    hi_x = min(float(c.x[-1]) for c in curves)
    if hi_x < lo_x:
        return None
    if grid is None:
        xs = np.unique(np.concatenate([c.x for c in curves]))
        grid = xs[(xs >= lo_x) & (xs <= hi_x)]
        if len(grid) > GRID_POINTS:
            grid = np.linspace(lo_x, hi_x, GRID_POINTS)
    ys = np.stack([np.interp(grid, c.x, c.y) for c in curves])
    mean = ys.mean(axis=0)
    if band == "std":
        std = ys.std(axis=0)
        return Curve(grid, mean, mean - std, mean + std)
    return Curve(grid, mean, ys.min(axis=0), ys.max(axis=0))


def group_runs(runs: Sequence[RunData]) -> dict[str, list[RunData]]:
    """Runs of the same game together (by env id), in the order first seen."""
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        groups.setdefault(run.env_id or "unknown env", []).append(run)
    return groups


def _has_data(folder: Path) -> bool:
    return any(folder.glob(MONITOR_GLOB)) or any((folder / name).is_file() for name in EVAL_FILES)


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders: each path that holds Monitor/evaluation files, else its sub-folders that do."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise UserError(f"no such folder: {p}; pass rl-zoo3 run folders such as logs/dqn/BreakoutNoFrameskip-v4_1")
        if _has_data(p):
            found.append(p)
            continue
        subs = [s for s in sorted(p.iterdir()) if s.is_dir() and _has_data(s)]
        if not subs:
            raise UserError(
                f"{p} holds no {MONITOR_GLOB} nor {', '.join(EVAL_FILES)} (nor do its sub-folders)"
            )
        found.extend(subs)
    return found
