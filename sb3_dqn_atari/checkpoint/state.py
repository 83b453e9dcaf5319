"""What a checkpoint captures besides the model zip and the replay memory, and how it is put back: the RNG states,
the training env layer by layer (the emulator via ``cloneState(include_rng=True)``), the other callbacks' counters
and evaluation envs (see :mod:`sb3_dqn_atari.checkpoint`)."""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import pkgutil
import random
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from sb3_dqn_atari.agent.episode_log import env_layers as all_env_layers


class CheckpointError(Exception):
    """A checkpoint that cannot be found, read, verified or applied (one clear line)."""


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


def capture_rng_state(model: BaseAlgorithm) -> dict[str, Any]:
    """The states of python's ``random``, numpy's global RNG, torch (CPU, and CUDA when initialised) and ``model``'s
    action- and observation-space samplers (``action_space.sample()`` picks ε-greedy actions)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": th.get_rng_state(),
        "cuda": th.cuda.get_rng_state_all() if th.cuda.is_available() and th.cuda.is_initialized() else None,
    }
    for name in ("action_space", "observation_space"):
        state[name] = [copy.deepcopy(s._np_random) for s in _space_generators(getattr(model, name))]
    return state


def restore_rng_state(state: dict[str, Any], model: BaseAlgorithm) -> None:
    """Inverse of :func:`capture_rng_state` (global RNGs of this process, and ``model``'s space samplers)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])
    if state.get("cuda") is not None and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["cuda"])
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
    """The ``ALEInterface`` an Atari env holds, else ``None``."""
    ale = vars(obj).get("ale")
    if ale is None:
        return None
    import ale_py  # only for a layer that holds an "ale"

    return ale if isinstance(ale, ale_py.ALEInterface) else None


class EnvStateError(CheckpointError):
    """The env's state cannot be captured (e.g. ``SubprocVecEnv``) or does not fit the env given at resume."""


def env_layers(env: VecEnv | gym.Env) -> list[Any]:
    """Every object of an env stack (:func:`sb3_dqn_atari.agent.episode_log.env_layers`), or an error for a VecEnv
    whose envs live in other processes."""
    layers = list(all_env_layers(env))
    for layer in layers:
        if isinstance(layer, VecEnv) and not isinstance(layer, (VecEnvWrapper, DummyVecEnv)):
            raise EnvStateError(f"the state of a {type(layer).__name__}'s envs cannot be read in this process")
    return layers


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def current_class_name(recorded: str) -> str:
    """A class of this package as a checkpoint recorded it, named as today: checkpoints written before the layering
    (issue 13) name ``sb3_dqn_atari.wrappers.NatureAtariWrapper``, ``sb3_dqn_atari.zoo.PaperProtocolEvalCallback``
    (old modules, :mod:`sb3_dqn_atari._legacy`, or a package's re-export); other names are returned as they are."""
    if not recorded.startswith("sb3_dqn_atari."):
        return recorded
    try:
        cls = pkgutil.resolve_name(recorded)
    except (ImportError, AttributeError, ValueError):
        return recorded
    return f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else recorded


def capture_env_state(env: VecEnv | gym.Env) -> dict[str, Any]:
    """The state of every layer of ``env`` (see the module docstring); pickle it right away (it holds references).

    :raises EnvStateError: for an env whose layers live in other processes (``SubprocVecEnv``)
    """
    layers, skipped = [], []
    for obj in env_layers(env):
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
    objects = list(env_layers(env))
    have = [_class_name(obj) for obj in objects]
    want = [current_class_name(layer["class"]) for layer in snapshot["layers"]]
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
def callback_tree(
    root: BaseCallback | None, skip: BaseCallback | None, path: str = "", seen: set[int] | None = None
) -> Iterator[tuple[str, BaseCallback]]:
    """Every callback reachable from ``root`` (lists, event callbacks' children) once, with a stable path; not the
    lists themselves, nor ``skip``."""
    seen = set() if seen is None else seen
    if root is None or id(root) in seen:
        return
    seen.add(id(root))
    if isinstance(root, CallbackList):
        for i, child in enumerate(root.callbacks):
            yield from callback_tree(child, skip, f"{path}/{i}", seen)
        return
    if root is not skip:
        yield path or "root", root
    for key, value in vars(root).items():
        if key != "parent" and isinstance(value, BaseCallback):
            yield from callback_tree(value, skip, f"{path}/{key}", seen)


_CALLBACK_LINKS = frozenset({"model", "parent", "locals", "globals", "training_env"})


def capture_callbacks_state(root: BaseCallback | None, skip: BaseCallback | None = None) -> list[dict[str, Any]]:
    """Counters, results and evaluation envs of the callbacks under ``root`` (but ``skip``)."""
    states = []
    for path, callback in callback_tree(root, skip):
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
    by_key = {(s["path"], current_class_name(s["class"])): s for s in states}
    unmatched = []
    for path, callback in callback_tree(root, skip):
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
