"""ALE envs that skip frames or repeat actions themselves (``ALE/<Game>-v5``) set to one emulator frame per step under
a wrapper that repeats the action itself (:func:`set_frame_by_frame`). Torch-free: NatureAtariWrapper and the
runtime's twin both use it."""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym

_noted: set[tuple[str, str]] = set()


def set_frame_by_frame(env: gym.Env, repeat_action_probability: float | None) -> None:
    """Make the ALE env under ``env`` play one emulator frame per step, with sticky actions of probability
    ``repeat_action_probability`` (None: the env's own), so that the wrapper on top repeats the action itself.

    ``ALE/<Game>-v5`` skips 4 frames and repeats actions with p = 0.25 in the env: under a wrapper that repeats each
    action 4 times that is 16 frames per agent step. The env is set right in place (``frameskip`` 1, the ALE's
    ``repeat_action_probability``, the ROM reloaded for it to apply), with one ``note:`` line per change and process.
    """
    unwrapped: Any = env.unwrapped
    ale = getattr(unwrapped, "ale", None)
    if ale is None:
        return
    changes = []
    if getattr(unwrapped, "_frameskip", 1) != 1:
        changes.append(f"frameskip {unwrapped._frameskip} -> 1")
        unwrapped._frameskip = 1
    sticky = float(ale.getFloat("repeat_action_probability"))
    if repeat_action_probability is not None and abs(sticky - repeat_action_probability) > 1e-9:
        changes.append(f"sticky actions {sticky:g} -> {repeat_action_probability:g}")
        ale.setFloat("repeat_action_probability", float(repeat_action_probability))
        unwrapped.load_game()
    name = env.spec.id if env.spec is not None else type(unwrapped).__name__
    if changes and (name, str(changes)) not in _noted:
        _noted.add((name, str(changes)))
        sticky_note = "" if repeat_action_probability else " (repeat_action_probability: 0.25 for Machado et al.'s)"
        print(f"note: {name} set to one emulator frame per step for the wrapper's own action repeat: "
              f"{', '.join(changes)}{sticky_note}", file=sys.stderr)
