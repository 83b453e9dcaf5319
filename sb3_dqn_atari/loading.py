"""Finding and loading a trained agent: an SB3 zip or an rl-zoo3 log folder.

Shared by ``evaluate``, ``export``, ``push_to_hub`` and friends so that they accept the same inputs.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


class UserError(Exception):
    """An error the user can fix; CLIs print its message on one line and exit with code 2."""


@dataclass
class ModelSource:
    """Where a model lives: its zip, and the rl-zoo3 run folder around it when there is one."""

    zip_path: Path
    env_id: str | None = None
    run_dir: Path | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(), Loader=yaml.UnsafeLoader)  # rl-zoo3 writes OrderedDict tags
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({exc.__class__.__name__}); fix or remove it") from exc
    if isinstance(data, list):  # rl-zoo3 dumps OrderedDict as a list of [key, value] pairs
        data = {k: v for k, v in data}
    return dict(data or {})


def resolve_model(path: str | Path, env_id: str | None = None) -> ModelSource:
    """Turn ``path`` (a zip, or an rl-zoo3 run folder ``logs/dqn/Env_1``) into a :class:`ModelSource`.

    In a run folder the final ``<env_id>.zip`` is preferred, then ``best_model.zip``, then the newest
    checkpoint. ``env_id`` defaults to the one rl-zoo3 recorded in ``<env_id>/args.yml``.
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"no such file or folder: {p}; pass an SB3 .zip or an rl-zoo3 log folder (logs/dqn/Env_1)")
    run_dir = p if p.is_dir() else p.parent
    hyperparams: dict[str, Any] = {}
    found_env = env_id
    for args_file in sorted(run_dir.glob("*/args.yml")):
        args = _read_yaml(args_file)
        found_env = found_env or args.get("env")
        config_file = args_file.parent / "config.yml"
        if config_file.exists():
            hyperparams = _read_yaml(config_file)
        break
    if p.is_dir():
        candidates = [p / f"{found_env}.zip"] if found_env else []
        candidates += [p / "best_model.zip"]
        checkpoints = sorted(p.glob("rl_model_*_steps.zip"), key=lambda f: int(f.stem.split("_")[2]))
        candidates += checkpoints[::-1]
        candidates += sorted(p.glob("*.zip"))
        zips = [c for c in candidates if c.is_file()]
        if not zips:
            raise UserError(f"{p} holds no SB3 model zip; pass the .zip itself or an rl-zoo3 run folder")
        zip_path = zips[0]
    else:
        zip_path = p
    run_dir_found = run_dir if found_env else None
    return ModelSource(zip_path=zip_path, env_id=found_env, run_dir=run_dir_found, hyperparams=hyperparams)


def read_zip_data(zip_path: str | Path) -> dict[str, Any]:
    """The plain JSON ``data`` member of an SB3 zip (no unpickling)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return dict(json.loads(archive.read("data")))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise UserError(f"{zip_path} is not a readable SB3 model zip ({exc.__class__.__name__}: {exc})") from exc


def algorithm_class(data: dict[str, Any]) -> type[BaseAlgorithm]:
    """The algorithm that saved a zip, from the module of its pickled policy class (read as plain text)."""
    module = str(data.get("policy_class", {}).get("__module__", ""))
    if module.startswith("sb3_dqn_atari"):
        from sb3_dqn_atari.dqn import NatureDQN

        return NatureDQN
    if module.startswith("sb3_contrib.qrdqn"):
        from sb3_contrib import QRDQN

        return QRDQN
    if module.startswith("stable_baselines3.dqn"):
        from stable_baselines3 import DQN

        return DQN
    raise UserError(f"the zip's policy ({module or 'unknown'}) is not DQN, NatureDQN or QR-DQN; pass one of those")


def load_agent(path: str | Path, device: str = "auto", env_id: str | None = None) -> tuple[BaseAlgorithm, ModelSource]:
    """Load the agent at ``path`` (zip or rl-zoo3 run folder) with the class that saved it."""
    source = resolve_model(path, env_id)
    cls = algorithm_class(read_zip_data(source.zip_path))
    try:
        model = cls.load(source.zip_path, device=device)
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as exc:
        raise UserError(f"could not load {source.zip_path}: {exc.__class__.__name__}: {exc}") from exc
    return model, source
