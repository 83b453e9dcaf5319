"""The project's one exception for mistakes a user can fix (no torch, no third-party import: the ONNX runtime and
the file checks use it too).

Every command catches :class:`UserError`, prints ``error: <message>`` as one line on stderr and exits with
status 2. :mod:`sb3_dqn_atari.loading` re-exports it, where the other modules have always taken it from.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; CLIs print its message on one line and exit with code 2."""


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on a single line (whitespace runs collapsed), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
