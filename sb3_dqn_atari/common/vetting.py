"""Checking a model folder before anything in it is used: the one place that knows which files a run folder,
a pulled repo or a checkpoint holds and which check each one gets.

=========================  ======================================================================================
file                       check (``trust_remote_code`` skips only the first two kinds)
=========================  ======================================================================================
``<env>/args.yml``         :mod:`~sb3_dqn_atari.common.safe_yaml` (no Python tag but rl-zoo3's), then
                           :func:`~sb3_dqn_atari.common.trust.check_zoo_args` (env id, ``gym_packages``,
                           ``hyperparams``)
``<env>/config.yml``       safe YAML, then :func:`~sb3_dqn_atari.common.trust.check_hyperparams` (what rl-zoo3 imports
                           or evaluates)
``<env>/env_kwargs.yml``   safe YAML
``<env>/vecnormalize.pkl``  :func:`~sb3_dqn_atari.common.pickle_check.check_pickle` (``rl_zoo3.enjoy`` unpickles it)
``*.zip``, ``*.npz``       :mod:`~sb3_dqn_atari.common.bounded_zip`: no member declares more than the bound
``*.onnx``                 :mod:`~sb3_dqn_atari.common.onnx_check`: no external data, no custom operator domain
``*.monitor.csv``          the header's ``env_id`` (gymnasium imports the ``module:`` of ``module:Env-v0``)
=========================  ======================================================================================

Zip bombs and ONNX files that name other files are refused whatever the trust: trusting a file's author does
not make a 10 GB member fit in memory, and the ONNX runtime never opens a path a model names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sb3_dqn_atari.common.bounded_zip import MAX_MEMBER_BYTES, check_zip
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.files import read_bounded
from sb3_dqn_atari.common.onnx_check import read_checked_onnx
from sb3_dqn_atari.common.pickle_check import UnsafePickleError, check_pickle
from sb3_dqn_atari.common.safe_yaml import read_yaml_mapping
from sb3_dqn_atari.common.sources import TRUST_HINT
from sb3_dqn_atari.common.trust import check_env_id, check_hyperparams, check_zoo_args

#: rl-zoo3's files in a run's config folder ``<run>/<env>/``, and the check of each.
ZOO_FILES: dict[str, Callable[[Any, str], None] | None] = {
    "args.yml": check_zoo_args,
    "config.yml": check_hyperparams,
    "env_kwargs.yml": None,
}
VECNORMALIZE_FILE = "vecnormalize.pkl"
#: Largest ``vecnormalize.pkl`` read for its check (a few kB for a vector env).
MAX_PICKLE_BYTES = 64 << 20


def read_zoo_file(path: str | Path, trust_remote_code: bool = False, source: str | None = None) -> dict[str, Any]:
    """An rl-zoo3 file of a config folder, read with the safe YAML reader and checked by its name (see the
    module docstring); with ``trust_remote_code``, rl-zoo3's own reader and no check. Messages name it ``source``
    (default: the path)."""
    path = Path(path)
    source = source or str(path)
    data = read_yaml_mapping(path, trust_remote_code, source)
    check = ZOO_FILES.get(path.name)
    if check is not None and not trust_remote_code:
        check(data, source)
    return data


def check_pickle_file(path: Path, trust_remote_code: bool = False, source: str | None = None) -> None:
    """A pickle that rl-zoo3 unpickles when the folder is used (``vecnormalize.pkl``)."""
    if trust_remote_code:
        return
    source = source or str(path)
    message = f"{source} is larger than {MAX_PICKLE_BYTES >> 20} MiB; not unpickled"
    data = read_bounded(path, MAX_PICKLE_BYTES, source, lambda: UnsafePickleError(message))
    try:
        check_pickle(data, source)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{exc} ({TRUST_HINT})") from None


@dataclass
class ConfigFolder:
    """An rl-zoo3 config folder ``<run>/<env>/`` and what its files hold (after their checks)."""

    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def args(self) -> dict[str, Any]:
        return self.files.get("args.yml", {})

    @property
    def config(self) -> dict[str, Any]:
        return self.files.get("config.yml", {})


def config_folders(run_dir: Path) -> list[Path]:
    """The sub-folders of ``run_dir`` that hold rl-zoo3 files (normally one: ``<env>/``), sorted."""
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.iterdir() if p.is_dir() and any((p / name).is_file() for name in ZOO_FILES))


def read_config_folder(folder: Path, trust_remote_code: bool = False) -> ConfigFolder:
    """Every rl-zoo3 file of ``folder``, read and checked, and its ``vecnormalize.pkl`` checked."""
    found = ConfigFolder(folder)
    for name in ZOO_FILES:
        if (folder / name).is_file():
            found.files[name] = read_zoo_file(folder / name, trust_remote_code)
    if (folder / VECNORMALIZE_FILE).is_file():
        check_pickle_file(folder / VECNORMALIZE_FILE, trust_remote_code)
    return found


def check_monitor_file(path: Path, trust_remote_code: bool = False) -> None:
    """An SB3 Monitor file's header names the env id that plotting looks up in gymnasium."""
    if trust_remote_code:
        return
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline(1 << 16)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if first.startswith("#"):
        try:
            header = json.loads(first[1:])
        except ValueError:
            return  # not read as a Monitor file: the plot says so
        if isinstance(header, dict):
            check_env_id(header.get("env_id"), "the Monitor header's env_id", str(path))


def vet_run_folder(
    run_dir: str | Path, trust_remote_code: bool = False, max_member_bytes: int = MAX_MEMBER_BYTES
) -> list[ConfigFolder]:
    """Check every file of an rl-zoo3 run folder that a command or rl-zoo3 reads (the module docstring's
    table); return its config folders as read. Raises a :class:`~sb3_dqn_atari.common.errors.UserError` subclass naming
    the first file that fails."""
    run_dir = Path(run_dir)
    folders = [read_config_folder(folder, trust_remote_code) for folder in config_folders(run_dir)]
    check_folder_files(run_dir, trust_remote_code, max_member_bytes)
    return folders


def check_folder_files(
    run_dir: str | Path, trust_remote_code: bool = False, max_member_bytes: int = MAX_MEMBER_BYTES
) -> None:
    """The files directly in ``run_dir`` other than rl-zoo3's YAML: zips and ``.npz`` (member sizes), ONNX files,
    Monitor headers."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    for path in sorted(run_dir.iterdir()):
        if not path.is_file():
            continue
        if path.suffix in (".zip", ".npz"):
            check_zip(path, max_member_bytes)
        elif path.suffix == ".onnx":
            read_checked_onnx(path)
        elif path.name.endswith("monitor.csv"):
            check_monitor_file(path, trust_remote_code)
