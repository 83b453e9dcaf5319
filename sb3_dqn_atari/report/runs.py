"""Finding runs and their evaluation scores in sweep folders and rl-zoo3 log folders (nothing is unpickled).

A **run** is one training run of one env and seed, with its evaluations over training:

* a sweep trial folder (``trial.json``, :mod:`sb3_dqn_atari.sweep.spec`): one run, whatever number of attempts
  it took. Its evaluations are the longest ``evaluations_nature.npz`` of its rl-zoo3 run folders (a resumed
  attempt carries the earlier evaluations on); it is complete when one of them holds the final model;
* an rl-zoo3 run folder (``<algo>/<env id>_<k>/``, or the flat layout of rl-trained-agents) with
  ``evaluations_nature.npz`` (our paper-protocol callback, preferred) or ``evaluations.npz`` (SB3's
  ``EvalCallback``, on the training wrapper: not the paper's protocol, and marked so). A run folder with exact
  checkpoints but no final model was interrupted (and maybe resumed into another folder): it is skipped.

The env id and seed come from rl-zoo3's ``args.yml`` (read with the project's safe YAML reader).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.evaluation.curves import NATURE_EVAL_FILE as PAPER_FILE
from sb3_dqn_atari.evaluation.curves import ZOO_EVAL_FILE as ZOO_FILE
from sb3_dqn_atari.evaluation.curves import read_evaluations as read_evaluations_file

TRIAL_FILE = "trial.json"  # sb3_dqn_atari.sweep.spec.TRIAL_FILE (not imported: sweep is a sibling feature)
#: where each score comes from, as the report states it
SOURCES = {
    "paper": "paper protocol (Mnih et al. 2015): eps=0.05, 1-30 no-op starts, raw score over all lives, 5-min cap",
    "zoo": "SB3 EvalCallback on the training wrapper (rl-zoo3 --eval-freq): NOT the paper's protocol",
}


@dataclass
class Run:
    """One run: its evaluations (mean score of each) over agent steps."""

    path: Path
    env_id: str
    seed: int | None
    source: str
    timesteps: np.ndarray
    scores: np.ndarray
    episodes: int

    @property
    def final_score(self) -> float:
        return float(self.scores[-1])

    @property
    def final_step(self) -> int:
        return int(self.timesteps[-1])


@dataclass
class Skipped:
    path: Path
    why: str


def read_evaluations(path: Path) -> Run | None:
    """The evaluations in ``path`` (an npz of SB3's or our evaluation callback) as the run of its folder, its env id
    and seed not known yet (``""``, ``None``: the caller sets them); ``None`` if it holds no evaluation."""
    found = read_evaluations_file(path)
    if found is None:
        return None
    timesteps, results = found
    if results.shape[1] == 0 or not np.all(np.isfinite(results)):
        raise UserError(f"{path} holds evaluations without finite episode scores; remove it or fix it")
    source = "paper" if path.name == PAPER_FILE else "zoo"
    return Run(path.parent, "", None, source, timesteps.astype(np.int64), results.mean(axis=1), int(results.shape[1]))


def _best_evaluations(folder: Path) -> Run | None:
    """The paper-protocol evaluations of a run folder, else SB3's, else ``None``."""
    for name in (PAPER_FILE, ZOO_FILE):
        if (folder / name).is_file():
            found = read_evaluations(folder / name)
            if found is not None:
                return found
    return None


def _zoo_args(run: Path) -> dict[str, Any]:
    """rl-zoo3's ``args.yml`` of a run folder: in ``<run>/<env id>/`` (rl-zoo3) or in the run folder itself."""
    from sb3_dqn_atari.common.safe_yaml import read_yaml_mapping

    for path in [run / "args.yml", *sorted(run.glob("*/args.yml"))]:
        if path.is_file():
            return read_yaml_mapping(path)
    return {}


def _seed(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def read_zoo_run(folder: Path) -> Run | Skipped:
    """The run of an rl-zoo3 run folder (see the module docstring)."""
    evaluations = _best_evaluations(folder)
    if evaluations is None:
        return Skipped(folder, "no evaluation in its evaluations file")
    args = _zoo_args(folder)
    env_id = args.get("env")
    if not isinstance(env_id, str):
        return Skipped(folder, "no args.yml naming its env (not an rl-zoo3 run folder)")
    if (folder / "checkpoints").is_dir() and not (folder / f"{env_id}.zip").is_file():
        return Skipped(folder, "interrupted: exact checkpoints but no final model (resumed in another run folder?)")
    return replace(evaluations, env_id=env_id, seed=_seed(args.get("seed")))


def read_trial(folder: Path) -> Run | Skipped:
    """The run of a sweep trial folder (see the module docstring)."""
    try:
        trial = json.loads((folder / TRIAL_FILE).read_text())
        env_id, seed, algo = str(trial["env_id"]), int(trial["seed"]), str(trial.get("algo", "dqn"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Skipped(folder, f"unreadable {TRIAL_FILE} ({exc.__class__.__name__})")
    attempts = sorted((p for p in (folder / algo).glob(f"{env_id.replace('/', '_')}_*") if p.is_dir()), key=str)
    complete = any((p / f"{env_id}.zip").is_file() for p in attempts)
    if not complete:
        return Skipped(folder, "trial not finished (no final model in its run folders): resume the sweep")
    found = [e for e in (_best_evaluations(p) for p in attempts) if e is not None and e.source == "paper"]
    if not found:
        return Skipped(folder, f"finished trial without {PAPER_FILE}")
    longest = max(found, key=lambda x: (x.final_step, len(x.timesteps)))
    return replace(longest, path=folder, env_id=env_id, seed=seed)


def find_runs(paths: list[str | Path]) -> tuple[list[Run], list[Skipped]]:
    """Every run under ``paths`` (sweep folders, trial folders, rl-zoo3 log or run folders), each once."""
    runs: list[Run] = []
    skipped: list[Skipped] = []
    seen: set[Path] = set()
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            raise UserError(f"no such folder: {root}; pass sweep folders or rl-zoo3 log/run folders")
        for current, dirs, files in os.walk(root):
            folder = Path(current).resolve()
            if TRIAL_FILE in files:
                found: Run | Skipped = read_trial(folder)
            elif {PAPER_FILE, ZOO_FILE} & set(files):
                found = read_zoo_run(folder)
            else:  # keep looking below, in name order (but not in hidden folders or Tune's checkpoint copies)
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.startswith("checkpoint"))
                continue
            dirs[:] = []  # a run holds no other run
            if folder not in seen:
                seen.add(folder)
                if isinstance(found, Run):
                    runs.append(found)
                else:
                    skipped.append(found)
    return runs, skipped
