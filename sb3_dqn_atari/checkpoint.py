"""Exact, atomic training checkpoints for SB3 off-policy agents (NatureDQN): save, find, resume.

A paper run takes days and machines get preempted. A checkpoint here is everything the next step of
training depends on, so that a run stopped at step ``k`` and resumed to step ``n`` computes what an
uninterrupted run to ``n`` computes (on the CPU: the same weights bit for bit, ``tests/test_resume.py``).

What a checkpoint folder ``step_<num_timesteps>/`` holds:

=======================  ===================================================================================
file                     contents
=======================  ===================================================================================
``model.zip``            SB3's zip: weights of the online and target networks, the optimizer state (RMSProp
                         averages), ``num_timesteps`` (hence ε and the target-network phase,
                         ``_last_train_timestep``), ``_n_updates``, ``_total_timesteps``, the episode in
                         progress (``_last_obs``, ``_last_episode_starts``), the episode-info buffer
``replay_buffer.pkl``    the replay memory (SB3's ``save_replay_buffer`` format; :class:`FrameReplayBuffer`
                         pickles only its filled part)
``training_state.pkl``   RNG states (python ``random``, numpy's global RNG, torch CPU and CUDA, the agent's
                         action- and observation-space samplers); the training env's state, layer by layer
                         (every wrapper's attributes: frame stack, Monitor and no-op counters, TimeLimit,
                         each env's ``np_random``; the emulator via ``ALEInterface.cloneState(include_rng=True)``);
                         the other callbacks' counters and their evaluation envs (``EvalCallback`` and ours)
``manifest.json``        written last: step, versions, command line, and each file's size and SHA-256
=======================  ===================================================================================

Atomicity: everything is written into ``.tmp-step_<n>-<pid>/`` (each file fsynced, the manifest last), which
is then renamed to ``step_<n>/`` and the parent folder fsynced. A folder without a manifest, or whose files do
not match it, is never picked; ``kill -9`` at any moment leaves the previous checkpoints loadable. The newest
``keep`` are kept (older ones are renamed away, then deleted).

When: :class:`ResumableCheckpointCallback` saves at the start of a rollout (``on_rollout_start``), i.e. after
the gradient update of the previous one: the only point of SB3's loop where the state is that of a finished
``learn`` iteration, so that ``learn(reset_num_timesteps=False)`` carries on exactly. SIGINT/SIGTERM save one
there (at most ``train_freq`` agent steps later) and exit with status 0.

Resume: :func:`load_checkpoint`, then ``model.learn(remaining, reset_num_timesteps=False)``; with rl-zoo3,
``python -m sb3_dqn_atari.train --resume <folder>`` (:func:`zoo_train`, at the end of this module).
Not rl-zoo3's ``-i``: that restarts the step counter (ε back to 1.0, 50,000 steps without updates), reseeds
the RNGs and resets the env.

What is not restored: string/path attributes (names, files of the new run), file handles (the Monitor CSV
writer), the envs of a ``SubprocVecEnv`` (their env is reset at resume, with a warning).

Loading unpickles the checkpoint. ``--resume`` without ``--trust-remote-code`` first checks every pickle and
unpickles only what this project's checkpoints hold (:mod:`sb3_dqn_atari.resume_check`); the Python functions
here do so inside :func:`sb3_dqn_atari.resume_check.checked_loading`, and otherwise trust the checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import importlib
import json
import os
import pickle
import random
import re
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from sb3_dqn_atari.errors import UserError
from sb3_dqn_atari.memory import ReplayMemoryError
from sb3_dqn_atari.resume_check import check_checkpoint, checked_loading, load_model, load_pickle, load_replay_buffer

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.zip"
BUFFER_FILE = "replay_buffer.pkl"
STATE_FILE = "training_state.pkl"
#: name of a complete checkpoint folder: ``step_<num_timesteps, 12 digits>``
CHECKPOINT_NAME = re.compile(r"^step_(\d+)$")
_TEMP_NAME = re.compile(r"^\.(?:tmp|trash)-.*-(\d+)$")
_CHUNK = 1 << 22


class CheckpointError(Exception):
    """A checkpoint that cannot be found, read, verified or applied (one clear line)."""


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


def _fsync_dir(path: Path) -> None:
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
        f.flush()
        os.fsync(f.fileno())
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


# --------------------------------------------------------------------------------------------- RNG state
def _space_generators(space: spaces.Space) -> list[spaces.Space]:
    """The space and its sub-spaces, in a fixed order (each has its own sampler)."""
    found = [space]
    if isinstance(space, spaces.Dict):
        for sub in space.spaces.values():
            found += _space_generators(sub)
    elif isinstance(space, spaces.Tuple):
        for sub in space.spaces:
            found += _space_generators(sub)
    return found


def capture_rng_state(model: BaseAlgorithm | None = None) -> dict[str, Any]:
    """The states of python's ``random``, numpy's global RNG, torch (CPU, and CUDA when initialised) and, with
    ``model``, its action- and observation-space samplers (``action_space.sample()`` picks ε-greedy actions)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": th.get_rng_state(),
        "cuda": th.cuda.get_rng_state_all() if th.cuda.is_available() and th.cuda.is_initialized() else None,
    }
    if model is not None:
        for name in ("action_space", "observation_space"):
            generators = [copy.deepcopy(s._np_random) for s in _space_generators(getattr(model, name))]
            state[name] = generators
    return state


def restore_rng_state(state: dict[str, Any], model: BaseAlgorithm | None = None) -> None:
    """Inverse of :func:`capture_rng_state` (global RNGs of this process, and ``model``'s space samplers)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])
    if state.get("cuda") is not None and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["cuda"])
    if model is not None:
        for name in ("action_space", "observation_space"):
            targets = _space_generators(getattr(model, name))
            saved = state.get(name)
            if saved is None or len(saved) != len(targets):
                warnings.warn(f"checkpoint: the {name} sampler state does not match; left as loaded", stacklevel=2)
                continue
            for space, generator in zip(targets, saved, strict=True):
                space._np_random = copy.deepcopy(generator)


# --------------------------------------------------------------------------------------- object states
def _is_link(value: Any) -> bool:
    """Objects that are not part of an object's own state: other envs, agents, callbacks, loggers, buffers."""
    kinds = (gym.Env, VecEnv, BaseAlgorithm, BaseCallback, Logger, BaseBuffer, th.nn.Module)
    if isinstance(value, kinds):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, kinds) for v in value)


def _object_state(obj: Any, exclude: frozenset[str] = frozenset()) -> tuple[dict[str, Any], list[str]]:
    """``obj``'s picklable attributes (references, pickled by the caller right away), and the names skipped.

    Skipped: links to other objects (:func:`_is_link`), strings and paths (names and files of the new run),
    and whatever does not pickle (file handles, emulators, progress bars)."""
    state: dict[str, Any] = {}
    skipped: list[str] = []
    for key, value in vars(obj).items():
        if key in exclude or _is_link(value) or isinstance(value, (str, bytes, os.PathLike)):
            continue
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            skipped.append(key)
            continue
        state[key] = value
    return state, skipped


def _ale_of(obj: Any) -> Any:
    """The ``ALEInterface`` an Atari env holds, else ``None`` (ale_py is optional here)."""
    ale = vars(obj).get("ale")
    if ale is None:
        return None
    try:
        import ale_py
    except ImportError:  # pragma: no cover - an "ale" attribute without ale_py
        return None
    return ale if isinstance(ale, ale_py.ALEInterface) else None


class EnvStateError(CheckpointError):
    """The env's state cannot be captured (e.g. ``SubprocVecEnv``) or does not fit the env given at resume."""


def _env_layers(env: VecEnv | gym.Env) -> Iterator[Any]:
    """Every object of an env stack, outermost first; sub-envs of a ``DummyVecEnv`` in order."""
    while isinstance(env, VecEnvWrapper):
        yield env
        env = env.venv
    if isinstance(env, VecEnv):
        if not isinstance(env, DummyVecEnv):
            raise EnvStateError(f"the state of a {type(env).__name__}'s envs cannot be read in this process")
        yield env
        for sub in env.envs:
            yield from _env_layers(sub)
        return
    while isinstance(env, gym.Wrapper):
        yield env
        env = env.env
    yield env


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def capture_env_state(env: VecEnv | gym.Env) -> dict[str, Any]:
    """The state of every layer of ``env`` (see the module docstring); pickle it right away (it holds references).

    :raises EnvStateError: for an env whose layers live in other processes (``SubprocVecEnv``)
    """
    layers, skipped = [], []
    for obj in _env_layers(env):
        state, missed = _object_state(obj)
        ale = _ale_of(obj)
        layers.append(
            {
                "class": _class_name(obj),
                "state": state,
                "ale": ale.cloneState(include_rng=True) if ale is not None else None,
            }
        )
        skipped += [f"{type(obj).__name__}.{name}" for name in missed if not (name == "ale" and ale is not None)]
    return {"layers": layers, "skipped": sorted(set(skipped))}


def restore_env_state(env: VecEnv | gym.Env, snapshot: dict[str, Any]) -> None:
    """Put a :func:`capture_env_state` snapshot into ``env``, which must be built the same way.

    :raises EnvStateError: if the wrapper stack differs (then ``env`` is left unchanged)
    """
    objects = list(_env_layers(env))
    have = [_class_name(obj) for obj in objects]
    want = [layer["class"] for layer in snapshot["layers"]]
    if have != want:
        raise EnvStateError(f"the env's wrappers differ from the checkpoint's: {have} != {want}")
    for obj, layer in zip(objects, snapshot["layers"], strict=True):
        vars(obj).update(layer["state"])
        if layer["ale"] is not None:
            ale = _ale_of(obj)
            if ale is None:  # pragma: no cover - same class names, so the same env type
                raise EnvStateError(f"{type(obj).__name__} has no ALE to restore into")
            ale.restoreState(layer["ale"])


# ------------------------------------------------------------------------------------ callback states
def _callback_tree(
    root: BaseCallback | None, path: str = "", seen: set[int] | None = None
) -> Iterator[tuple[str, BaseCallback]]:
    """Every callback reachable from ``root`` (lists, event callbacks' children) once, with a stable path."""
    seen = set() if seen is None else seen
    if root is None or id(root) in seen:
        return
    seen.add(id(root))
    yield path or "root", root
    if isinstance(root, CallbackList):
        for i, child in enumerate(root.callbacks):
            yield from _callback_tree(child, f"{path}/{i}", seen)
        return
    for key, value in vars(root).items():
        if key != "parent" and isinstance(value, BaseCallback):
            yield from _callback_tree(value, f"{path}/{key}", seen)


_CALLBACK_LINKS = frozenset({"model", "parent", "locals", "globals", "training_env"})


def capture_callbacks_state(root: BaseCallback | None, skip: BaseCallback | None = None) -> list[dict[str, Any]]:
    """Counters, results and evaluation envs of the callbacks under ``root`` (but ``skip``)."""
    states = []
    for path, callback in _callback_tree(root):
        if callback is skip or isinstance(callback, CallbackList):
            continue
        state, _ = _object_state(callback, _CALLBACK_LINKS)
        envs = {}
        for key, value in vars(callback).items():
            if key in _CALLBACK_LINKS or not isinstance(value, (VecEnv, gym.Env)):
                continue
            with contextlib.suppress(EnvStateError):  # e.g. a SubprocVecEnv: left as it is at resume
                envs[key] = capture_env_state(value)
        states.append({"path": path, "class": _class_name(callback), "state": state, "envs": envs})
    return states


def restore_callbacks_state(
    root: BaseCallback | None, states: list[dict[str, Any]], skip: BaseCallback | None = None
) -> list[str]:
    """Inverse of :func:`capture_callbacks_state`, matching callbacks by path and class; returns what did not match."""
    by_key = {(s["path"], s["class"]): s for s in states}
    unmatched = []
    for path, callback in _callback_tree(root):
        if callback is skip or isinstance(callback, CallbackList):
            continue
        saved = by_key.pop((path, _class_name(callback)), None)
        if saved is None:
            unmatched.append(f"{type(callback).__name__} (new)")
            continue
        vars(callback).update(saved["state"])
        for key, env_state in saved["envs"].items():
            try:
                restore_env_state(getattr(callback, key), env_state)
            except (EnvStateError, AttributeError):
                unmatched.append(f"{type(callback).__name__}.{key}")
    unmatched += [f"{c.rsplit('.', 1)[-1]} (gone)" for _, c in by_key]
    return unmatched


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
    keep: int | None = 2,
    save_replay_buffer: bool = True,
    callbacks: BaseCallback | None = None,
    skip_callback: BaseCallback | None = None,
    argv: list[str] | None = None,
) -> Path:
    """Write a complete checkpoint of ``model`` into ``folder/step_<num_timesteps>`` atomically; keep the newest
    ``keep`` (``None``: all). Call it between ``learn`` iterations (``on_rollout_start``) for an exact resume.

    :param callbacks: the callbacks of the ``learn`` call, whose counters and evaluation envs are saved too
    :param skip_callback: one of them not to save (the checkpointing callback itself)
    :param argv: the training command's arguments, recorded in the manifest (default ``sys.argv[1:]``)
    :return: the checkpoint folder
    """
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be at least 1 (or None for all), not {keep}")
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
        with open(temp / MANIFEST_FILE, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(temp)
        final = folder / name
        if final.exists():  # the same step saved again (e.g. a signal right after a resume)
            _remove_dir(final)
        os.replace(temp, final)
        _fsync_dir(folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _clean(folder, keep)
    return final


def _clean(folder: Path, keep: int | None) -> None:
    """Delete checkpoints beyond the newest ``keep``, and temporary folders of processes that are gone."""
    for path in folder.iterdir():
        match = _TEMP_NAME.match(path.name)
        if match and path.is_dir() and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
    if keep is not None:
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
        """The RNG, env and callback states (unpickled: see :func:`~sb3_dqn_atari.resume_check.load_pickle`)."""
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
    module, _, qualname = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), qualname)
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
    verify: bool = True,
    **kwargs: Any,
) -> tuple[BaseAlgorithm, Checkpoint]:
    """Load the checkpoint at ``path`` (see :func:`latest_checkpoint`) to go on training exactly.

    Loads the model (``force_reset=False``: the episode in progress goes on) and its replay memory, then sets
    this process's RNG states and, if ``env`` is given, the env's state (built the same way as for training).
    Continue with ``model.learn(total - model.num_timesteps, reset_num_timesteps=False)``; pass a
    :class:`ResumableCheckpointCallback` with ``resume_from=checkpoint.path`` to restore the other callbacks.

    :param cls: algorithm class (default: the one recorded in the manifest)
    :param verify: check the files' SHA-256 against the manifest first
    :param kwargs: passed to ``cls.load`` (e.g. ``tensorboard_log``, ``verbose``)
    :raises CheckpointError: for a missing, incomplete or corrupted checkpoint, or one for another env
    """
    checkpoint = latest_checkpoint(path)
    checkpoint.verify(hashes=verify)
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


# ---------------------------------------------------------------------------------------------- callback
def _run_folder(venv: VecEnv) -> Path | None:
    """rl-zoo3's run folder: where the training env's Monitor writes (read in-process), else ``None``."""
    try:
        layers = list(_env_layers(venv))
    except EnvStateError:
        return None
    for obj in layers:
        if isinstance(obj, Monitor) and obj.results_writer is not None:
            return Path(obj.results_writer.file_handler.name).parent
    return None


class ResumableCheckpointCallback(BaseCallback):
    """Periodic exact checkpoints (see :mod:`sb3_dqn_atari.checkpoint`), and one on SIGINT/SIGTERM before exit 0.

    With rl-zoo3, in the hyperparameter yml (rl-zoo3 builds it with these kwargs)::

        callback:
          - sb3_dqn_atari.checkpoint.ResumableCheckpointCallback: {save_freq: 500000, keep: 2}

    or ``python -m sb3_dqn_atari.train ... --checkpoint-freq 500000``; resume with
    ``python -m sb3_dqn_atari.train --resume logs/dqn/<Env>_1``.

    :param save_freq: save when a multiple of this many agent steps (``num_timesteps``) has been crossed,
        at the next rollout start; ``0``: only on signals and at the end
    :param save_path: folder of the ``step_<n>`` checkpoints; default ``<run folder>/checkpoints``, the run
        folder being where the training env's Monitor writes (rl-zoo3's), else the logger's, else ``.``
    :param keep: how many checkpoints to keep (the newest)
    :param save_replay_buffer: save the replay memory (needed for an exact resume)
    :param handle_signals: on SIGINT/SIGTERM, save at the next rollout start and exit with status 0 (a
        second signal interrupts at once)
    :param save_at_end: save one when ``learn`` completes its steps (to train further later)
    :param resume_from: checkpoint whose callback states (other callbacks' counters, evaluation envs) are
        restored at the start of training (:func:`load_checkpoint` restores the rest)
    """

    def __init__(
        self,
        save_freq: int = 500_000,
        save_path: str | None = None,
        keep: int = 2,
        save_replay_buffer: bool = True,
        handle_signals: bool = True,
        save_at_end: bool = True,
        resume_from: str | None = None,
        verbose: int = 1,
    ) -> None:
        super().__init__(verbose)
        if save_freq < 0 or keep < 1:
            raise ValueError(f"save_freq must be >= 0 and keep >= 1 (got {save_freq}, {keep})")
        self.save_freq = int(save_freq)
        self.save_path = save_path
        self.keep = int(keep)
        self.save_replay_buffer = save_replay_buffer
        self.handle_signals = handle_signals
        self.save_at_end = save_at_end
        self.resume_from = resume_from
        #: the training command's arguments, recorded in the manifest (``--resume`` alone reuses them)
        self.argv: list[str] = list(sys.argv[1:])
        self.last_checkpoint: Path | None = None
        self._last_save_step = -1
        self._signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._root: BaseCallback | None = None
        self._started = False

    # ---------------------------------------------------------------------------------------- plumbing
    def _folder(self) -> Path:
        if self.save_path is not None:
            return Path(self.save_path)
        run = _run_folder(self.training_env)
        if run is None and self.logger is not None and self.logger.get_dir():
            run = Path(str(self.logger.get_dir()))
        return (run or Path(".")) / "checkpoints"

    def _on_training_start(self) -> None:
        self._started = True
        self._root = self.locals.get("callback")
        self._last_save_step = self.num_timesteps = self.model.num_timesteps
        if self.resume_from is not None:
            states = latest_checkpoint(self.resume_from).training_state()["callbacks"]
            unmatched = restore_callbacks_state(self._root, states, skip=self)
            if unmatched:
                warnings.warn(f"callbacks not restored from the checkpoint: {', '.join(unmatched)}", stacklevel=2)
        if self.handle_signals:
            self._install_handlers()

    def _install_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread: signals stay as they are
                return

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signal is not None:  # a second signal: stop now
            self._restore_handlers()
            raise KeyboardInterrupt
        self._signal = signum
        print(
            f"{signal.Signals(signum).name}: saving a checkpoint at the next rollout start, then exiting "
            "(signal again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    # ------------------------------------------------------------------------------------------ events
    def save(self) -> Path:
        """Save a checkpoint now (exact only between ``learn`` iterations, e.g. in ``on_rollout_start``)."""
        path = save_checkpoint(
            self.model,
            self._folder(),
            keep=self.keep,
            save_replay_buffer=self.save_replay_buffer,
            callbacks=self._root,
            skip_callback=self,
            argv=self.argv,
        )
        self.last_checkpoint = path
        self._last_save_step = self.model.num_timesteps
        if self.verbose >= 1:
            print(f"Saved checkpoint {path}")
        return path

    def _on_rollout_start(self) -> None:
        step = self.model.num_timesteps
        due = self.save_freq > 0 and step // self.save_freq > self._last_save_step // self.save_freq
        if (due or self._signal is not None) and step != self._last_save_step:
            self.save()
        if self._signal is not None:
            self._restore_handlers()
            if self.verbose >= 1:
                print(
                    f"Stopped by {signal.Signals(self._signal).name} at step {step}; resume from {self.last_checkpoint}"
                )
            raise SystemExit(0)

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._restore_handlers()
        # Only after a complete learn() (not when stopped early or by an exception: not a rollout boundary;
        # rl-zoo3 also calls this when learn() failed before it started).
        completed = self._started and self.model.num_timesteps >= getattr(self.model, "_total_timesteps", 0)
        self._started = False
        if self.save_at_end and completed and self.model.num_timesteps != self._last_save_step:
            self.save()


# ------------------------------------------------------------------ rl-zoo3 train with checkpoints and resume

#: exit status for bad input (as the other commands)
EXIT_USAGE = 2


@dataclass
class _Session:
    """What this command adds to one rl-zoo3 ``train()`` call."""

    argv: list[str]
    checkpoint_freq: int = 0
    checkpoint_keep: int = 2
    resume: Checkpoint | None = None
    learning: bool = False
    run_folders: list[str] = field(default_factory=list)


_session: _Session | None = None


def _experiment_manager_class() -> Any:
    from rl_zoo3.exp_manager import ExperimentManager
    from rl_zoo3.utils import ALGOS

    class ResumableExperimentManager(ExperimentManager):
        """rl-zoo3's ExperimentManager with exact checkpoints and resume (see :mod:`sb3_dqn_atari.train`)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            assert _session is not None
            self.session = _session
            if self.session.resume is not None:
                self.continue_training = True  # build the model with _load_pretrained_agent below

        def setup_experiment(self) -> Any:
            if not os.path.exists(self.save_path):
                self.session.run_folders.append(self.save_path)
            return super().setup_experiment()

        def create_callbacks(self) -> None:
            super().create_callbacks()
            session = self.session
            ours = [c for c in self.callbacks if isinstance(c, ResumableCheckpointCallback)]
            if not ours and (session.checkpoint_freq > 0 or session.resume is not None):
                ours = [
                    ResumableCheckpointCallback(
                        save_freq=session.checkpoint_freq,
                        save_path=os.path.join(self.save_path, "checkpoints"),
                        keep=session.checkpoint_keep,
                        verbose=self.verbose,
                    )
                ]
                self.callbacks += ours
            for callback in ours:
                callback.argv = list(session.argv)
                if callback.save_path is None:
                    callback.save_path = os.path.join(self.save_path, "checkpoints")
                if session.resume is not None:
                    callback.resume_from = str(session.resume.path)

        def _load_pretrained_agent(self, hyperparams: dict[str, Any], env: Any) -> Any:
            checkpoint = self.session.resume
            if checkpoint is None:
                return super()._load_pretrained_agent(hyperparams, env)
            cls = ALGOS[self.algo]
            recorded = str(checkpoint.manifest.get("algorithm", ""))
            if recorded != f"{cls.__module__}.{cls.__qualname__}":
                raise CheckpointError(
                    f"{checkpoint.path} holds a {recorded} agent; --algo {self.algo} builds {cls.__name__}"
                )
            print(f"Resuming from {checkpoint.path} (step {checkpoint.num_timesteps:,})")
            model, _ = load_checkpoint(
                checkpoint.path,
                env=env,
                device=self.device,
                cls=cls,
                tensorboard_log=self.tensorboard_log,
                verbose=self.verbose,
            )
            return model

        def learn(self, model: Any) -> None:
            self.session.learning = True
            if self.session.resume is None:
                super().learn(model)
                return
            # rl-zoo3's learn, but going on: reset_num_timesteps=False, up to the same total.
            remaining = self.n_timesteps - model.num_timesteps
            if remaining <= 0:
                print(f"The checkpoint is at step {model.num_timesteps:,} >= {self.n_timesteps:,}: nothing to train")
                return
            kwargs: dict[str, Any] = {}
            if self.log_interval > -1:
                kwargs["log_interval"] = self.log_interval
            elif self.log_interval < -1:
                kwargs["log_interval"] = None
            if self.callbacks:
                kwargs["callback"] = self.callbacks
            try:
                model.learn(remaining, reset_num_timesteps=False, **kwargs)
            except KeyboardInterrupt:
                pass
            finally:
                if self.callbacks:
                    self.callbacks[0].on_training_end()
                with contextlib.suppress(EOFError):
                    model.env.close()

    return ResumableExperimentManager


def _own_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.train",
        add_help=False,
        description="rl-zoo3's train (NatureDQN as --algo dqn) with exact checkpoints and resume; "
        "all rl-zoo3 train arguments apply.",
    )
    parser.add_argument("--checkpoint-freq", type=int, default=0, help="exact checkpoint every N agent steps (0: off)")
    parser.add_argument("--checkpoint-keep", type=int, default=2, help="checkpoints to keep (default 2)")
    parser.add_argument("--resume", default=None, help="checkpoint, checkpoints folder or run folder to go on from")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="with --resume: skip the checks of the run folder's yml files, of the command line the checkpoint "
        "records and of its pickles, and unpickle it as SB3 does (for checkpoints you trust)",
    )
    return parser


def _without_resume(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume=") and arg != "--trust-remote-code":
            out.append(arg)
    return out


def _vet_resume(checkpoint: Checkpoint, reused_argv: list[str] | None, trust_remote_code: bool) -> None:
    """What ``--resume`` reads as plain files, checked before anything is unpickled: the run folder around the
    checkpoint (:func:`sb3_dqn_atari.vetting.vet_run_folder`: rl-zoo3's yml files, zip and ONNX files), the
    checkpoint's ``model.zip`` (member sizes: SB3 reads them whole), and the command line it records when that is
    reused (:func:`sb3_dqn_atari.trust.check_zoo_argv`: ``-conf``, ``--gym-packages``, ``-params``, ...), and the
    checkpoint's pickles (:func:`sb3_dqn_atari.resume_check.check_checkpoint`)."""
    from sb3_dqn_atari.bounded_zip import check_zip
    from sb3_dqn_atari.trust import check_zoo_argv
    from sb3_dqn_atari.vetting import vet_run_folder

    if checkpoint.path.parent.name == "checkpoints":
        vet_run_folder(checkpoint.path.parent.parent, trust_remote_code)
    if (checkpoint.path / MODEL_FILE).is_file():
        check_zip(checkpoint.path / MODEL_FILE, what="SB3 model zip")
    if reused_argv is not None and not trust_remote_code:
        check_zoo_argv(reused_argv, str(checkpoint.path / MANIFEST_FILE))
    if not trust_remote_code:
        check_checkpoint(checkpoint.path)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    known = (CheckpointError, ReplayMemoryError, UserError)
    return text if isinstance(exc, known) else f"{exc.__class__.__name__}: {text}"


def zoo_train(argv: list[str] | None = None) -> int:
    """``python -m sb3_dqn_atari.train``: rl-zoo3's ``train`` with ``--checkpoint-freq``, ``--checkpoint-keep``
    and ``--resume`` (see :mod:`sb3_dqn_atari.train`); returns the exit status (2: bad input, one line on
    stderr, and the run folder it had begun removed). NatureDQN must be registered (``sb3_dqn_atari.zoo``)."""
    global _session
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _own_options()
    ours, rest = parser.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        print(parser.format_help())
    try:
        if ours.checkpoint_freq < 0 or ours.checkpoint_keep < 1:
            raise CheckpointError("--checkpoint-freq must be >= 0 and --checkpoint-keep >= 1")
        if ours.resume is not None and {"-i", "--trained-agent"} & {a.split("=")[0] for a in rest}:
            raise CheckpointError("--resume and -i/--trained-agent exclude each other: pass one")
        resume = latest_checkpoint(ours.resume) if ours.resume is not None else None
        reused: list[str] | None = None
        if resume is not None and not rest:  # the checkpoint's command line; our options given now win
            recorded = resume.manifest.get("argv", [])
            if not isinstance(recorded, list):
                raise CheckpointError(f"{resume.path}/{MANIFEST_FILE}: 'argv' is not a list of arguments")
            reused = [str(a) for a in recorded]
            argv = reused + argv
            ours, rest = parser.parse_known_args(argv)
        if resume is not None:
            resume.verify(hashes=False)
            _vet_resume(resume, reused, ours.trust_remote_code)
        _session = _Session(_without_resume(argv), ours.checkpoint_freq, ours.checkpoint_keep, resume)
    except (CheckpointError, UserError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE

    import rl_zoo3.train as zoo_module

    saved_argv, saved_manager = sys.argv, zoo_module.ExperimentManager
    sys.argv = [sys.argv[0], *rest]
    zoo_module.ExperimentManager = _experiment_manager_class()  # type: ignore[misc]
    try:
        with checked_loading(resume is not None and not ours.trust_remote_code):
            zoo_module.train()
    except ReplayMemoryError as exc:
        _remove_run_folders(_session)
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if _session.learning:  # a failure while training is not bad input: the full traceback
            raise
        _remove_run_folders(_session)
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        sys.argv, zoo_module.ExperimentManager = saved_argv, saved_manager  # type: ignore[misc]
    return 0


def _remove_run_folders(session: _Session | None) -> None:
    """Remove the run folders this command created before failing (no partial output)."""
    for folder in session.run_folders if session is not None else []:
        shutil.rmtree(folder, ignore_errors=True)
