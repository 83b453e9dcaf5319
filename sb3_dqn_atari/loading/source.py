"""Where a model lives: a zip or an rl-zoo3 run folder turned into a :class:`ModelSource` (zip, env id, config)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sb3_dqn_atari.common.bounded_zip import MAX_MEMBER_BYTES, check_zip
from sb3_dqn_atari.common.env_ids import current_env_id
from sb3_dqn_atari.common.errors import UserError, one_line


@dataclass
class ModelSource:
    """Where a model lives: its zip, and the rl-zoo3 run folder around it when there is one."""

    zip_path: Path
    env_id: str | None = None
    run_dir: Path | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    conf_file: str | None = None  # the hyperparameter file rl-zoo3 recorded in args.yml (``-conf``), as given


# ------------------------------------------------------------------------------------------- finding the zip


def resolve_model(
    path: str | Path,
    env_id: str | None = None,
    trust_remote_code: bool = False,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> ModelSource:
    """Turn ``path`` (a zip, or an rl-zoo3 run folder ``logs/dqn/Env_1``) into a :class:`ModelSource`.

    In a run folder the final ``<env_id>.zip`` is preferred, then ``best_model.zip``, then the newest
    checkpoint. ``env_id`` defaults to the one rl-zoo3 recorded in ``<env_id>/args.yml`` (a retired id mapped to
    its successor: :mod:`sb3_dqn_atari.common.env_ids`). A run folder is checked as a whole first
    (:func:`sb3_dqn_atari.common.vetting.vet_run_folder`); for a zip, the zip and the rl-zoo3 files beside it.
    """
    from sb3_dqn_atari.common.vetting import config_folders, read_config_folder, vet_run_folder

    p = Path(path)
    if not p.exists():
        raise UserError(f"no such file or folder: {p}; pass an SB3 .zip or an rl-zoo3 log folder (logs/dqn/Env_1)")
    run_dir = p if p.is_dir() else p.parent
    if p.is_dir():
        folders = [f for f in vet_run_folder(p, trust_remote_code, max_member_bytes) if "args.yml" in f.files]
    else:
        check_zip(p, max_member_bytes, "SB3 model zip")
        with_args = [f for f in config_folders(run_dir) if (f / "args.yml").is_file()]
        folders = [read_config_folder(with_args[0], trust_remote_code)] if with_args else []
    recorded = folders[0].args.get("env") if folders else None
    if recorded is not None and not isinstance(recorded, str):
        raise UserError(f"{folders[0].path / 'args.yml'}: env is {one_line(repr(recorded), 80)}, not an env id")
    hyperparams: dict[str, Any] = dict(folders[0].config) if folders else {}
    conf_file = folders[0].args.get("conf_file") if folders else None
    wanted_env = env_id or recorded
    found_env = current_env_id(wanted_env) if wanted_env else None
    if p.is_dir():
        # rl-zoo3 names the final model after the env folder name ("/" -> "-": ALE-Breakout-v5.zip), under the
        # id it trained on (a retired one too)
        # one path component each: never outside the folder
        names = dict.fromkeys(n.replace("/", "-") for n in (found_env, env_id, recorded) if n)
        candidates = [p / f"{name}.zip" for name in names] + [p / "best_model.zip"]
        candidates += sorted(p.glob("rl_model_*_steps.zip"), key=_checkpoint_step)[::-1]
        candidates += sorted(c for c in p.glob("*.zip") if c.name != "train_eval_metrics.zip")
        zips = [c for c in candidates if c.is_file()]
        if not zips:
            raise UserError(f"{p} holds no SB3 model zip; pass the .zip itself or an rl-zoo3 run folder")
        zip_path = zips[0]
    else:
        zip_path = p
    run_dir_found = run_dir if found_env else None
    conf = conf_file if isinstance(conf_file, str) else None
    return ModelSource(zip_path, found_env, run_dir_found, hyperparams, conf)


def _checkpoint_step(path: Path) -> int:
    match = re.fullmatch(r"rl_model_(\d+)_steps", path.stem)
    return int(match.group(1)) if match else -1
