"""Env ids that gymnasium 1.x retired, mapped to their successors: the one place that knows them.

Many agents on the Hub (the sb3 organisation's among them) were trained on ids that gymnasium 1.x no longer
registers: ``gym.make("LunarLander-v2")`` raises ``DeprecatedEnv: ... Please use LunarLander-v3 instead``. The
successors are the same tasks with the same observation and action spaces (gymnasium bumped the versions for
bug fixes, e.g. LunarLander-v3 resets its wind state at every reset). Every command that takes an env id, from
the command line or from a model's files, passes it through :func:`current_env_id`, which says once on stderr
that it maps it. Only ids that gymnasium itself declares retired *and* names a successor for are listed
(``tests/test_trust.py`` checks each against gymnasium's own message); torch-free, as the ONNX player uses it.
"""

from __future__ import annotations

import sys

#: Retired id -> the id gymnasium 1.x says to use instead.
RETIRED_ENV_IDS: dict[str, str] = {
    "LunarLander-v2": "LunarLander-v3",
    "LunarLanderContinuous-v2": "LunarLanderContinuous-v3",
    "BipedalWalker-v2": "BipedalWalker-v3",
    "BipedalWalkerHardcore-v2": "BipedalWalkerHardcore-v3",
    "CarRacing-v0": "CarRacing-v3",
    "CarRacing-v1": "CarRacing-v3",
    "CarRacing-v2": "CarRacing-v3",
    "Pendulum-v0": "Pendulum-v1",
    "Acrobot-v0": "Acrobot-v1",
}

_announced: set[str] = set()


def current_env_id(env_id: str, announce: bool = True) -> str:
    """``env_id``, or its successor if gymnasium retired it (with one ``note:`` line on stderr per id and
    process when ``announce``)."""
    new = RETIRED_ENV_IDS.get(env_id)
    if new is None:
        return env_id
    if announce and env_id not in _announced:
        _announced.add(env_id)
        print(f"note: gymnasium retired {env_id}; using its successor {new} (same observations and actions)",
              file=sys.stderr)
    return new
