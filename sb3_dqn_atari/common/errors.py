"""The project's one exception for mistakes a user can fix, and the one runner every command ends with (no torch,
no third-party import: the ONNX runtime and the file checks use them too).

Every command's ``main`` (:func:`command_main`) runs its library call so that a :class:`UserError` (or an
``OSError``: an output folder that cannot be created) prints ``error: <message>`` as one line on stderr and exits
with status 2 (an error class may set another ``exit_status``: a failed ONNX verification is 1, not the
user's doing).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

#: exit status of Ctrl-C, as a shell reports SIGINT
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """An error the user can fix; CLIs print its message on one line and exit with code 2."""

    exit_status = 2


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on a single line (whitespace runs collapsed), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def command_main(
    parse_args: Callable[[list[str] | None], Any],
    command: Callable[[Any], object],
    interrupted: str | None = None,
    *,
    warning_lines: bool = False,
) -> Callable[..., int]:
    """A command module's ``main(argv=None)``: the arguments parsed, then the library call run. It returns the exit
    status (an ``int`` the call returns, else 0); a user error or an OS error as one ``error:`` line and status 2
    (or the error's ``exit_status``); Ctrl-C, when ``interrupted`` says what was left, as ``interrupted: <that>``
    and status 130. ``warning_lines``: warnings on one line each."""

    def main(argv: list[str] | None = None) -> int:
        args = parse_args(argv)
        try:
            with warnings.catch_warnings():
                if warning_lines:  # "warning: <message>" on one line of stderr
                    warnings.showwarning = lambda message, *_: print(f"warning: {message}", file=sys.stderr)
                result = command(args)
        except (UserError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return int(getattr(exc, "exit_status", 2))
        except KeyboardInterrupt:
            if interrupted is None:
                raise
            print(f"interrupted: {interrupted}" if interrupted else "interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        return result if isinstance(result, int) and not isinstance(result, bool) else 0

    return main


def arguments(args: Any, *names: str) -> dict[str, Any]:
    """``{name: args.name}``: the parsed options a library call takes under the same names."""
    return {name: getattr(args, name) for name in names}
