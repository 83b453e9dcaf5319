"""The Hugging Face Hub as both commands reach it: ``HF_ENDPOINT`` (default https://huggingface.co), the token of
``HF_TOKEN`` or ``hf auth login`` (required to push), transient failures (HTTP 5xx / 408 / 429, connection errors)
retried with exponential backoff (``--retries``, ``--retry-wait``), any failure as one ``error: ...`` line that
says what to do (exit code 2); and rl-zoo3's names (``huggingface_sb3.EnvironmentName``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sb3_dqn_atari.common.errors import UserError, one_line

if TYPE_CHECKING:
    from huggingface_sb3 import EnvironmentName

T = TypeVar("T")

#: rl-zoo3's ``--algo`` name of each algorithm class (NatureDQN registers itself as ``dqn``: sb3_dqn_atari.zoo).
ALGO_NAMES = {"NatureDQN": "dqn", "DQN": "dqn", "QRDQN": "qrdqn"}
#: rl-zoo3's training logs, zipped in a repo
METRICS_ZIP = "train_eval_metrics.zip"

class HubError(UserError):
    """A Hub operation failed in a way the user can act on (one line, exit code 2)."""


# ----------------------------------------------------------------------------------------------------- naming


def env_folder_name(env_id: str) -> EnvironmentName:
    """The file-system name of an env id (``huggingface_sb3.EnvironmentName``: ``/`` -> ``-``, and for
    ``module:EnvId`` ids the part after the colon); rl-zoo3's model name is ``ModelName(algo, <this>)``."""
    from huggingface_sb3 import EnvironmentName  # imports SB3 and torch: only when a name is needed

    try:
        return EnvironmentName(env_id)
    except ValueError as exc:  # more than one ':'
        raise UserError(f"env id {env_id!r} has more than one ':'") from exc


def algo_name(algorithm_class_name: str) -> str:
    """rl-zoo3's ``--algo`` name for a loaded model's class."""
    return ALGO_NAMES.get(algorithm_class_name, algorithm_class_name.lower())


def hub_endpoint() -> str:
    """``HF_ENDPOINT`` read now (huggingface_hub reads it once, at import), else the library's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_token() -> str:
    """The user's token to push with (``HF_TOKEN``, else the one ``hf auth login`` stored), or a :class:`HubError`."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise HubError(
            "no Hugging Face token: to push to the Hub, set HF_TOKEN or run `hf auth login` "
            "(with a token that has write access)"
        )
    return token


# ------------------------------------------------------------------------------------------- retries, errors


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff: ``attempts`` tries, waiting ``base_delay · 2^k`` seconds
    (at most ``max_delay``) after the k-th transient failure."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, failure: int) -> float:
        return float(min(self.base_delay * 2 ** (failure - 1), self.max_delay))


def _connection_errors() -> tuple[type[BaseException], ...]:
    """The transport-level exception types of whichever HTTP stack this huggingface_hub uses."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    types: list[type[BaseException]] = [ConnectionError, TimeoutError, LocalEntryNotFoundError, OfflineModeIsEnabled]
    for module, names in (
        ("httpx2", ("TransportError",)),
        ("httpx", ("TransportError",)),
        ("requests", ("ConnectionError", "Timeout")),
    ):
        with contextlib.suppress(ImportError):
            imported = __import__(module)
            types.extend(getattr(imported, name) for name in names if hasattr(imported, name))
    return tuple(types)


def _status(exc: BaseException) -> int | None:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return int(exc.response.status_code)
    return None


def _is_transient(exc: BaseException) -> bool:
    status = _status(exc)
    if status is not None:
        return status >= 500 or status in (408, 429)
    return isinstance(exc, _connection_errors())


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for pattern, reason in (
        (r"[Cc]onnection refused|Errno 111", "connection refused"),
        (r"[Nn]ame or service not known|getaddrinfo|nodename nor servname", "host name not resolved"),
        (r"[Tt]imed? ?out", "timed out"),
    ):
        if re.search(pattern, text):
            return reason
    return f"{exc.__class__.__name__}: {text[:120]}" if text else exc.__class__.__name__


def describe_hub_error(exc: BaseException, action: str, repo_id: str, endpoint: str, attempts: int = 1) -> HubError:
    """One line that says what failed and what to do, for any error of a Hub call."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        RevisionNotFoundError,
    )

    status = _status(exc)
    server = one_line(getattr(exc, "server_message", None) or "", 200)  # HfHubHTTPError: the Hub's own words
    detail = f": {server}" if server else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(exc, HFValidationError):
        return HubError(f"{repo_id!r} is not a valid repo id (expected NAMESPACE/NAME): {str(exc).splitlines()[0]}")
    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"{repo_id} has no such revision on {endpoint} (HTTP {status}){detail}")
    if isinstance(exc, EntryNotFoundError) and status == 404:
        return HubError(f"{repo_id} on {endpoint} has no such file (HTTP 404){detail}")
    if status == 404:
        return HubError(f"repository {repo_id} not found on {endpoint} (HTTP 404); check --repo-id")
    if status == 401:
        return HubError(
            f"no permission to {action} {repo_id} on {endpoint} (HTTP 401: not authenticated, or the repo is private "
            "or does not exist); set HF_TOKEN or run `hf auth login`"
        )
    if status == 403:
        writing = action.startswith(("push", "create", "commit"))
        fix = "use a token with write access to that namespace" if writing else "check your token's access"
        return HubError(f"no permission to {action} {repo_id} on {endpoint} (HTTP 403{detail}); {fix}")
    if status is not None and _is_transient(exc):
        return HubError(f"the Hub at {endpoint} answered HTTP {status} to {action} {repo_id}{tries}{detail}; try later")
    if status is not None:
        return HubError(f"the Hub at {endpoint} refused to {action} {repo_id} (HTTP {status}){detail}")
    if isinstance(exc, _connection_errors()):
        return HubError(
            f"cannot reach the Hugging Face Hub at {endpoint} ({_reason(exc)}){tries}; "
            "check your network connection or HF_ENDPOINT"
        )
    return HubError(f"could not {action} {repo_id}: {exc.__class__.__name__}: {one_line(str(exc), 200)}")


def with_retries(
    call: Callable[[], T], action: str, repo_id: str, endpoint: str, policy: RetryPolicy = RetryPolicy()
) -> T:
    """Run ``call``; on a transient failure (HTTP 5xx/408/429, connection error) wait and try again, at most
    ``policy.attempts`` times in all; any failure ends as a :class:`HubError` with one clear line."""
    attempts = max(1, policy.attempts)
    # HfHubHTTPError is an OSError, HFValidationError a ValueError
    catch: tuple[type[BaseException], ...] = (OSError, ValueError, *_connection_errors())
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except catch as exc:
            if _is_transient(exc) and attempt < attempts:
                wait = policy.delay(attempt)
                status = _status(exc)
                why = f"HTTP {status}" if status is not None else _reason(exc)
                print(
                    f"warning: could not {action} {repo_id} ({why}); "
                    f"retrying in {wait:.1f}s ({attempt}/{attempts - 1})",
                    file=sys.stderr,
                )
                time.sleep(wait)
                continue
            raise describe_hub_error(exc, action, repo_id, endpoint, attempt) from exc
    raise AssertionError("unreachable")


def retry_policy(args: argparse.Namespace) -> RetryPolicy:
    """The retries ``--retries`` and ``--retry-wait`` (:func:`add_hub_arguments`) ask for."""
    if args.retries < 1 or args.retry_wait < 0:
        raise UserError("--retries must be at least 1 and --retry-wait not negative")
    return RetryPolicy(attempts=args.retries, base_delay=args.retry_wait)


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both Hub commands take: retries with backoff, and quiet progress."""
    parser.add_argument("--retries", type=int, default=RetryPolicy.attempts, help="attempts per Hub call")
    parser.add_argument("--retry-wait", type=float, default=RetryPolicy.base_delay, help="first backoff (s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
