"""The module names of the flat package (before issue 13's layers), kept importable.

Pickles and files written before the move name classes by their old modules: an agent zip its policy
(``sb3_dqn_atari.policies.CnnPolicy``) and optimizer (``sb3_dqn_atari.optim.DeepMindRMSprop``), a checkpoint its
replay memory (``sb3_dqn_atari.replay.FrameReplayBuffer``) and env wrappers (``sb3_dqn_atari.wrappers``), a saved
``config.yml`` its policy (``sb3_dqn_atari.policies.NipsCnnPolicy``). :class:`LegacyFinder`, installed by
``sb3_dqn_atari/__init__.py``, answers an import of a retired name with the module of its new home (the same
module object, so classes pickled under either name are the same class). Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterable
from types import ModuleType

#: retired module -> its new home
MOVED: dict[str, str] = {
    **{f"sb3_dqn_atari.{m}": f"sb3_dqn_atari.common.{m}" for m in (
        "errors", "files", "safe_yaml", "trust", "bounded_zip", "env_ids", "pickle_check", "onnx_check", "vetting")},
    **{f"sb3_dqn_atari.{m}": f"sb3_dqn_atari.agent.{m}" for m in (
        "dqn", "optim", "networks", "policies", "replay", "memory", "allocator", "sum_tree", "prioritized", "dueling",
        "hardware", "layout", "lua_order", "variants", "threads")},
    **{f"sb3_dqn_atari.{m}": f"sb3_dqn_atari.atari.{m}" for m in ("preprocessing", "wrappers")},
    "sb3_dqn_atari.runtime": "sb3_dqn_atari.onnx.runtime",
    "sb3_dqn_atari.sweep.hpo": "sb3_dqn_atari.zoo.hpo",
    "sb3_dqn_atari.zoo_run": "sb3_dqn_atari.zoo.run",
    "sb3_dqn_atari.resume_check": "sb3_dqn_atari.checkpoint.resume_check",
    "sb3_dqn_atari.sweep.trial_eval": "sb3_dqn_atari.evaluation.callback",
}
_NEW_TO_OLD = {new: old for old, new in MOVED.items()}


def current_name(module: str) -> str:
    """The module's name today: ``sb3_dqn_atari.replay`` -> ``sb3_dqn_atari.agent.replay``; others unchanged."""
    return MOVED.get(module, module)


def old_name(module: str) -> str:
    """The module's name before the move: ``sb3_dqn_atari.agent.replay`` -> ``sb3_dqn_atari.replay``."""
    return _NEW_TO_OLD.get(module, module)


def with_old_names(dotted_names: Iterable[str]) -> frozenset[str]:
    """``dotted_names`` (``module.Class``) plus the name each had before the move, for allow-lists."""
    names = set(dotted_names)
    for name in list(names):
        module, _, attribute = name.rpartition(".")
        names.add(f"{old_name(module)}.{attribute}")
    return frozenset(names)


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)  # its own __spec__ and __name__ stay as they are

    def exec_module(self, module: ModuleType) -> None:
        """Already executed under its new name."""


class LegacyFinder(importlib.abc.MetaPathFinder):
    """Finds each retired name of :data:`MOVED` as an alias of its new module."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        return None if new is None else importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put :class:`LegacyFinder` first on ``sys.meta_path`` (once): before the path finders, so that a stale
    ``policies.py`` of an older install left beside the package is never imported under the retired name."""
    if not any(isinstance(finder, LegacyFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, LegacyFinder())
