"""``gym.make`` with one-line errors, the one env builder under the others: the ONNX runtime plays on it, the
export verifies on it, :mod:`sb3_dqn_atari.atari.protocols` builds the evaluation envs on it. Torch-free.
"""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym

from sb3_dqn_atari.common.env_ids import current_env_id
from sb3_dqn_atari.common.errors import UserError


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    render_mode: str | None = None,
    error: type[UserError] = UserError,
) -> gym.Env:
    """``gym.make(env_id, render_mode=..., **env_kwargs)`` (a retired id mapped to its successor); whatever stops it
    (an unknown id, arguments the env does not take, a missing ROM, no display for a window) ends as one line of
    ``error``."""
    env_id = current_env_id(env_id)
    register_ale()
    try:
        return gym.make(env_id, render_mode=render_mode, **(env_kwargs or {}))
    except Exception as exc:  # gymnasium's errors, the env constructor's TypeError/ValueError, ALE's, SDL's
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        if render_mode == "human" and not isinstance(exc, gym.error.Error):
            raise error(f"cannot open a window for {env_id} ({exc.__class__.__name__}: {text})") from exc
        args = f" with {json.dumps(env_kwargs, default=str)[:120]}" if env_kwargs else ""
        raise error(f"cannot make env {env_id!r}{args}: {text}") from exc


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` is an ALE env (a :class:`UserError` for an unknown id)."""
    register_ale()
    try:
        return "ale_py" in str(gym.spec(env_id).entry_point)
    except gym.error.Error as exc:
        raise UserError(f"unknown env id {env_id!r} ({exc})") from exc


def register_ale() -> None:
    """Register the ALE's ids with gymnasium (``BreakoutNoFrameskip-v4``, ``ALE/Breakout-v5``), if ale-py is here."""
    try:
        import ale_py
    except ImportError:
        return
    gym.register_envs(ale_py)
