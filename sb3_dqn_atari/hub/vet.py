"""The checks a pulled repo's files get before anything is placed (see :mod:`sb3_dqn_atari.hub.pull`): plain file
names, the model zip's JSON and pickles read as text, the rl-zoo3 files with the safe reader, the metrics zip's
members; and the env id the files record."""

from __future__ import annotations

import contextlib
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

from sb3_dqn_atari.common.bounded_zip import MAX_MEMBER_BYTES, ZipBombError, check_members, open_zip
from sb3_dqn_atari.common.onnx_check import read_checked_onnx
from sb3_dqn_atari.common.pickle_check import UnsafePickleError, check_pickle
from sb3_dqn_atari.common.trust import UntrustedError, check_env_id, check_relative_name
from sb3_dqn_atari.common.vetting import VECNORMALIZE_FILE, ZOO_FILES, check_pickle_file, read_zoo_file
from sb3_dqn_atari.hub.client import (
    METRICS_ZIP,
    HubError,
    env_folder_name,
)
from sb3_dqn_atari.loading import UserError, algorithm_class, is_serialized, read_zip_data
from sb3_dqn_atari.loading.zipdata import serialized_pickle

#: Repo files copied into the rl-zoo3 config folder ``<env>/`` (repo name -> local name, as rl_zoo3.load_from_hub).
CONFIG_FILES = {**{name: name for name in ZOO_FILES}, "vec_normalize.pkl": VECNORMALIZE_FILE}
#: Other repo files worth having next to the model (the unzipped model folder some repos carry is skipped).
EXTRA_SUFFIXES = (".onnx", ".mp4", ".png", ".json", ".md")

#: Largest ``results.json`` read for its env id.
_MAX_JSON_BYTES = 16 << 20
#: Entries of a zip's ``data`` that ``rl_zoo3.enjoy`` does not unpickle (it passes them as ``custom_objects``).
_ENJOY_CUSTOM_OBJECTS = frozenset({"learning_rate", "lr_schedule", "clip_range"})


def env_from_files(
    files: dict[str, Path], zip_name: str, source: str, trust_remote_code: bool = False
) -> str | None:
    """The env id the repo records: args.yml ``env``, then results.json ``env_id``, then the zip's name; an id
    read from a file is checked (:func:`sb3_dqn_atari.common.trust.check_env_id`) unless ``trust_remote_code``."""
    found: str | None = None
    where = ""
    args = files.get("args.yml")
    if args is not None:
        env = read_zoo_file(args, trust_remote_code, f"{source}/args.yml").get("env")
        if isinstance(env, str) and env:
            found, where = env, f"{source}/args.yml"
    results = files.get("results.json")
    if found is None and results is not None and results.stat().st_size <= _MAX_JSON_BYTES:
        with contextlib.suppress(ValueError, OSError, AttributeError, RecursionError):
            env = json.loads(results.read_text(encoding="utf-8", errors="replace")).get("env_id")
            if isinstance(env, str) and env:
                found, where = env, f"{source}/results.json"
    if found is None:
        stem = zip_name[: -len(".zip")]
        if "-" in stem:
            found, where = _registered_id(stem.split("-", 1)[1]), f"{source}/{zip_name}"
    if found is not None and not trust_remote_code:
        check_env_id(found, "the env id", where)
    return found


def _check_zip_pickles(data: dict[str, Any], label: str) -> None:
    """Warn when the zip's pickles that ``rl_zoo3.enjoy`` (SB3's ``load``) would unpickle hold more than plain
    data; our commands never unpickle them (:mod:`sb3_dqn_atari.loading`)."""
    flagged = []
    for key, value in data.items():
        if key in _ENJOY_CUSTOM_OBJECTS or not is_serialized(value):
            continue
        try:
            check_pickle(serialized_pickle(value), key)
        except (UnsafePickleError, ValueError):
            flagged.append(key)
    if flagged:
        warnings.warn(
            f"{label}: the pickles of {', '.join(flagged[:6])}{', ...' if len(flagged) > 6 else ''} hold more than "
            "plain data (code or objects of other packages); sb3_dqn_atari never unpickles them, but "
            "rl_zoo3.enjoy (SB3's load) would: run enjoy on this folder only if you trust the repo",
            UserWarning,
            stacklevel=3,
        )


def _registered_id(env_name: str) -> str:
    """Map a folder-style env name back to a registered id (``ALE-Breakout-v5`` -> ``ALE/Breakout-v5``)."""
    import gymnasium as gym

    with contextlib.suppress(ImportError):
        import ale_py

        gym.register_envs(ale_py)
    if env_name in gym.registry:
        return env_name
    for env_id in gym.registry:
        if env_folder_name(env_id) == env_name:
            return env_id
    return env_name


def metrics_members(archive: zipfile.ZipFile, source: str) -> list[zipfile.ZipInfo]:
    """The files of a metrics zip, checked: every member name (folders' too) a plain relative path, no member (and
    not all of them together) declaring more than :data:`~sb3_dqn_atari.common.bounded_zip.MAX_MEMBER_BYTES`."""
    check_members(archive, source)
    members = [m for m in archive.infolist() if not m.is_dir()]
    total = sum(m.file_size for m in members)
    if total > MAX_MEMBER_BYTES:
        raise HubError(f"{source} declares {total:,} bytes in all, over the {MAX_MEMBER_BYTES:,}-byte bound")
    for name in archive.namelist():
        check_relative_name(name, source)
    return members


def check_repo_files(
    repo_id: str, files: list[str], trust_remote_code: bool = False
) -> tuple[list[str], list[str]]:
    """``(kept, skipped)`` repo file names: a name that is not a plain relative path refuses the repo, or with
    ``trust_remote_code`` is skipped (never written)."""
    kept, skipped = [], []
    for name in files:
        try:
            check_relative_name(name, f"the repo {repo_id}")
        except UntrustedError as exc:
            if not trust_remote_code:
                raise UntrustedError(f"{exc} (--trust-remote-code skips such files, never writing them)") from None
            skipped.append(name)
            continue
        kept.append(name)
    return kept, skipped


def vet_download(
    repo_id: str,
    local: dict[str, Path],
    zip_name: str,
    trust_remote_code: bool = False,
) -> type:
    """Check the downloaded files (see the module docstring) before any is placed; the zip's algorithm class."""
    label = f"{repo_id}/{zip_name}"
    try:
        data = read_zip_data(local[zip_name])
    except ZipBombError as exc:
        raise ZipBombError(str(exc).replace(str(local[zip_name]), label)) from None
    except UserError as exc:
        why = exc.__cause__.__class__.__name__ if exc.__cause__ else "no JSON data member"
        raise HubError(f"{repo_id}: {zip_name} is not a readable SB3 model zip ({why})") from exc
    try:
        cls = algorithm_class(data)
    except UserError as exc:
        raise HubError(f"{repo_id}: {zip_name} is not a DQN-family SB3 model ({exc})") from exc
    if not trust_remote_code:
        _check_zip_pickles(data, label)
    for name, path in local.items():
        source = f"{repo_id}/{name}"
        if name in ZOO_FILES:
            read_zoo_file(path, trust_remote_code, source)
        elif name == "vec_normalize.pkl":
            check_pickle_file(path, trust_remote_code, source)
        elif name == METRICS_ZIP:
            with open_zip(path) as archive:
                metrics_members(archive, source)
        elif name.endswith(".onnx"):
            read_checked_onnx(path, source=source)
    return cls
