"""Checkpoint folders on disk: :func:`save_checkpoint` (atomic: a temporary folder, fsynced, renamed), the
manifest with each file's SHA-256, :func:`find_checkpoints` / :func:`latest_checkpoint`, and :func:`load_checkpoint`
(see :mod:`sb3_dqn_atari.checkpoint`)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import pkgutil
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import gymnasium as gym
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_dqn_atari.checkpoint.resume_check import (
    BUFFER_FILE,
    MODEL_FILE,
    STATE_FILE,
    load_model,
    load_pickle,
    load_replay_buffer,
)
from sb3_dqn_atari.checkpoint.state import (
    CheckpointError,
    EnvStateError,
    capture_callbacks_state,
    capture_env_state,
    capture_rng_state,
    restore_env_state,
    restore_rng_state,
)
from sb3_dqn_atari.common.files import move_into_place

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
#: name of a complete checkpoint folder: ``step_<num_timesteps, 12 digits>``
CHECKPOINT_NAME = re.compile(r"^step_(\d+)$")
#: temporary folders of a save: its own, an old checkpoint being deleted, one being replaced (``move_into_place``)
_TEMP_NAME = re.compile(r"^\.(?:tmp-.*|trash-.*|step_\d+\.old)-(\d+)$")
_CHUNK = 1 << 22

# ------------------------------------------------------------------------------------------ file helpers
class _HashingWriter:
    """A binary file that hashes what goes through it (pickle writes the replay memory in one pass)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha256.update(view)
        self.size += len(view)
        return self.file.write(view)


def _fsync(path: Path) -> None:
    """Flush a written file, or a folder's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_file(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a written file; fsyncs it on the way (fsync on any descriptor flushes the inode)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
        os.fsync(f.fileno())
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _write_pickle(path: Path, obj: Any) -> dict[str, Any]:
    with open(path, "wb") as f:
        writer = _HashingWriter(f)
        pickle.dump(obj, writer, protocol=pickle.HIGHEST_PROTOCOL)
    _fsync(path)
    return {"bytes": writer.size, "sha256": writer.sha256.hexdigest()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dir(path: Path) -> None:
    """Rename away first (atomic), then delete: a half-deleted checkpoint never looks like one."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    if trash.exists():
        shutil.rmtree(trash)
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ saving
def _versions() -> dict[str, str]:
    found = {}
    for name in ("sb3_dqn_atari", "stable_baselines3", "torch", "numpy", "gymnasium", "ale_py"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = str(getattr(module, "__version__", "?"))
    return found


def _env_id(env: VecEnv | None) -> str | None:
    if env is None:
        return None
    try:
        spec = env.get_attr("spec", [0])[0]
    except Exception:
        return None
    return None if spec is None else str(spec.id)


def save_checkpoint(
    model: BaseAlgorithm,
    folder: str | Path,
    *,
    keep: int = 2,
    save_replay_buffer: bool = True,
    callbacks: BaseCallback | None = None,
    skip_callback: BaseCallback | None = None,
    argv: list[str] | None = None,
) -> Path:
    """Write a complete checkpoint of ``model`` into ``folder/step_<num_timesteps>`` atomically; keep the newest
    ``keep``. Call it between ``learn`` iterations (``on_rollout_start``) for an exact resume.

    :param callbacks: the callbacks of the ``learn`` call, whose counters and evaluation envs are saved too
    :param skip_callback: one of them not to save (the checkpointing callback itself)
    :param argv: the training command's arguments, recorded in the manifest (default ``sys.argv[1:]``)
    :return: the checkpoint folder

    Long on purpose: one sequence of steps, in this order, sharing their state.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step_{model.num_timesteps:012d}"
    temp = folder / f".tmp-{name}-{os.getpid()}"
    if temp.exists():
        shutil.rmtree(temp)
    temp.mkdir()
    try:
        env = model.get_env()
        env_state, env_note = None, ""
        if env is not None:
            try:
                env_state = capture_env_state(env)
            except EnvStateError as exc:
                env_note = str(exc)
        state = {
            "format": FORMAT_VERSION,
            "rng": capture_rng_state(model),
            "env": env_state,
            "callbacks": capture_callbacks_state(callbacks, skip=skip_callback),
        }
        files = {STATE_FILE: _write_pickle(temp / STATE_FILE, state)}
        model.save(temp / MODEL_FILE)
        files[MODEL_FILE] = _hash_file(temp / MODEL_FILE)
        replay_buffer = getattr(model, "replay_buffer", None)
        if save_replay_buffer and replay_buffer is not None:
            files[BUFFER_FILE] = _write_pickle(temp / BUFFER_FILE, replay_buffer)
        manifest = {
            "format": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "num_timesteps": int(model.num_timesteps),
            "total_timesteps": int(getattr(model, "_total_timesteps", 0)),
            "exploration_rate": float(getattr(model, "exploration_rate", float("nan"))),
            "algorithm": f"{type(model).__module__}.{type(model).__qualname__}",
            "env_id": _env_id(env),
            "env_state": env_state is not None,
            "env_state_note": env_note or (f"not restored: {env_state['skipped']}" if env_state else "no env"),
            "argv": list(sys.argv[1:] if argv is None else argv),
            "versions": _versions(),
            "files": files,
        }
        (temp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        _fsync(temp / MANIFEST_FILE)
        _fsync(temp)
        final = folder / name
        move_into_place(temp, final, force=True)  # the same step saved again: e.g. a signal right after a resume
        _fsync(folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _clean(folder, keep)
    return final


def _clean(folder: Path, keep: int) -> None:
    """Delete checkpoints beyond the newest ``keep``, and temporary folders of processes that are gone."""
    for path in folder.iterdir():
        match = _TEMP_NAME.match(path.name)
        if match and path.is_dir() and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
    for old in find_checkpoints(folder, verify=False)[:-keep]:
        _remove_dir(old.path)


# ----------------------------------------------------------------------------------------------- loading
@dataclass
class Checkpoint:
    """A complete checkpoint folder and its manifest."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def num_timesteps(self) -> int:
        return int(self.manifest["num_timesteps"])

    def verify(self, hashes: bool = True) -> None:
        """Check that every file the manifest lists is there with its size (and SHA-256 with ``hashes``).

        :raises CheckpointError: naming the first file that does not match
        """
        files = self.manifest.get("files", {})
        if not isinstance(files, dict):
            raise CheckpointError(f"{self.path}/{MANIFEST_FILE}: 'files' is not a mapping")
        for name, info in files.items():
            # names from the manifest: one plain file name of this folder, never a path elsewhere
            if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name) or name in (".", ".."):
                raise CheckpointError(f"{self.path}/{MANIFEST_FILE} lists the file {str(name)[:80]!r}, which is "
                                      "not a plain file name of the checkpoint folder")
            if not isinstance(info, dict) or not isinstance(info.get("bytes"), int):
                raise CheckpointError(f"{self.path}/{MANIFEST_FILE}: the entry of {name} is malformed")
            path = self.path / name
            if not path.is_file():
                raise CheckpointError(f"checkpoint {self.path} lacks {name}")
            size = path.stat().st_size
            if size != info["bytes"]:
                raise CheckpointError(
                    f"checkpoint {self.path}: {name} has {size} bytes, the manifest says {info['bytes']}"
                )
            if hashes and _hash_file(path)["sha256"] != info["sha256"]:
                raise CheckpointError(f"checkpoint {self.path}: {name} does not match its SHA-256 (corrupted)")

    def training_state(self) -> dict[str, Any]:
        """The RNG, env and callback states (unpickled: see
        :func:`~sb3_dqn_atari.checkpoint.resume_check.load_pickle`)."""
        state: dict[str, Any] = load_pickle(self.path / STATE_FILE)
        if state.get("format") != FORMAT_VERSION:
            raise CheckpointError(f"checkpoint {self.path} has format {state.get('format')}, not {FORMAT_VERSION}")
        return state


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint in folder ``path`` (which must hold a readable manifest)."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path} is not a complete checkpoint (no {MANIFEST_FILE})") from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}/{MANIFEST_FILE} is unreadable ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or "num_timesteps" not in manifest:
        raise CheckpointError(f"{path}/{MANIFEST_FILE} is not a format-{FORMAT_VERSION} checkpoint manifest")
    return Checkpoint(path, manifest)


def find_checkpoints(folder: str | Path, verify: bool = True) -> list[Checkpoint]:
    """The complete checkpoints directly in ``folder``, oldest first; incomplete ones are left out (with a
    warning when ``verify`` finds a manifest whose files do not match: sizes only, hashes at load)."""
    found = []
    folder = Path(folder)
    if not folder.is_dir():
        return []
    for path in folder.iterdir():
        if not (CHECKPOINT_NAME.match(path.name) and path.is_dir() and (path / MANIFEST_FILE).is_file()):
            continue
        try:
            checkpoint = read_checkpoint(path)
            if verify:
                checkpoint.verify(hashes=False)
        except CheckpointError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        found.append(checkpoint)
    return sorted(found, key=lambda c: c.num_timesteps)


def latest_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint to resume from: ``path`` itself if it is one, else the newest complete one in ``path``
    or in ``path/checkpoints`` (an rl-zoo3 run folder).

    :raises CheckpointError: if there is none
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such checkpoint or folder: {path}")
    if (path / MANIFEST_FILE).is_file():
        return read_checkpoint(path)
    for folder in (path, path / "checkpoints"):
        found = find_checkpoints(folder)
        if found:
            return found[-1]
    for folder in (path, path / "checkpoints"):  # manifests there, none usable: say what is wrong with the newest
        named = sorted(p for p in folder.glob("step_*") if (p / MANIFEST_FILE).is_file()) if folder.is_dir() else []
        if named:
            read_checkpoint(named[-1]).verify(hashes=False)
    raise CheckpointError(f"no complete checkpoint in {path} (folders step_<n>/ with a {MANIFEST_FILE})")


def _algorithm_class(name: str) -> type[BaseAlgorithm]:
    try:
        cls = pkgutil.resolve_name(name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint's algorithm {name} cannot be imported ({exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseAlgorithm)):
        raise CheckpointError(f"the checkpoint's algorithm {name} is not an SB3 algorithm")
    return cls


def load_checkpoint(
    path: str | Path,
    env: VecEnv | gym.Env | None = None,
    device: th.device | str = "auto",
    *,
    cls: type[BaseAlgorithm] | None = None,
    **kwargs: Any,
) -> tuple[BaseAlgorithm, Checkpoint]:
    """Load the checkpoint at ``path`` (see :func:`latest_checkpoint`) to go on training exactly.

    Loads the model (``force_reset=False``: the episode in progress goes on) and its replay memory, then sets
    this process's RNG states and, if ``env`` is given, the env's state (built the same way as for training).
    Continue with ``model.learn(total - model.num_timesteps, reset_num_timesteps=False)``; pass a
    :class:`ResumableCheckpointCallback` with ``resume_from=checkpoint.path`` to restore the other callbacks.

    :param cls: algorithm class (default: the one recorded in the manifest)
    :param kwargs: passed to ``cls.load`` (e.g. ``tensorboard_log``, ``verbose``)
    :raises CheckpointError: for a missing, incomplete or corrupted checkpoint, or one for another env
    """
    checkpoint = latest_checkpoint(path)
    checkpoint.verify()  # every file's size and SHA-256
    cls = cls or _algorithm_class(str(checkpoint.manifest.get("algorithm", "")))
    try:
        model = load_model(cls, checkpoint.path / MODEL_FILE, env=env, device=device, force_reset=False, **kwargs)
    except (ValueError, KeyError) as exc:  # check_for_correct_spaces: a checkpoint of another env
        raise CheckpointError(f"cannot load {checkpoint.path / MODEL_FILE}: {exc}") from exc
    if (checkpoint.path / BUFFER_FILE).is_file():
        load_replay_buffer(model, checkpoint.path / BUFFER_FILE)
    state = checkpoint.training_state()
    venv = model.get_env()
    if venv is not None:
        reason = checkpoint.manifest.get("env_state_note", "")
        try:
            if state["env"] is None:
                raise EnvStateError(reason or "the checkpoint holds no env state")
            restore_env_state(venv, state["env"])
        except EnvStateError as exc:
            warnings.warn(f"resuming with a reset env, not exactly: {exc}", stacklevel=2)
            model._last_obs = None
    restore_rng_state(state["rng"], model)
    if model.num_timesteps != checkpoint.num_timesteps:
        raise CheckpointError(
            f"{checkpoint.path}: the model is at step {model.num_timesteps}, "
            f"the manifest says {checkpoint.num_timesteps}"
        )
    return model, checkpoint
