"""Zip archives read with bounded memory: every member's declared size is checked before anything is inflated.

A zip member's size is declared in the archive's central directory, and deflate compresses runs of zeros about
1000:1: a 10 GB zero-filled ``policy.pth`` fits in a 10 MB zip. ``zipfile`` never inflates more than a member
declares (it stops there and checks the CRC), so refusing members that *declare* more than a bound, before
reading them, bounds the memory a stranger's zip can make us use. The bound is :data:`MAX_MEMBER_BYTES`
(2 GiB: the largest tensor file of a DQN agent is a few tens of MB) unless a caller passes a smaller one
(``max_member_bytes``; the tests do). SB3 zips, rl-zoo3's ``train_eval_metrics.zip`` and numpy's ``.npz``
files are all zips.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from sb3_dqn_atari.common.errors import UserError, one_line

#: Largest declared (uncompressed) size of a zip member that is read.
MAX_MEMBER_BYTES = 2 << 30


class ZipBombError(UserError):
    """A zip member declares more bytes than the bound: refused before anything is inflated."""


def _too_big(info: zipfile.ZipInfo, source: str, max_member_bytes: int) -> ZipBombError:
    return ZipBombError(
        f"{source}: the member {one_line(info.filename, 80)!r} declares {info.file_size:,} bytes "
        f"({info.compress_size:,} compressed), over the {max_member_bytes:,}-byte bound; refusing the "
        "archive without reading it (a zip bomb, or not a file this project reads)"
    )


def check_members(archive: zipfile.ZipFile, source: str, max_member_bytes: int = MAX_MEMBER_BYTES) -> None:
    """Raise :class:`ZipBombError` naming the first member that declares more than ``max_member_bytes``."""
    for info in archive.infolist():
        if info.file_size > max_member_bytes:
            raise _too_big(info, source, max_member_bytes)


def open_zip(path: str | Path, max_member_bytes: int = MAX_MEMBER_BYTES, what: str = "zip archive") -> zipfile.ZipFile:
    """``zipfile.ZipFile(path)`` after :func:`check_members`; :class:`UserError` (``path is not a readable
    <what>``) for an unreadable archive."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise UserError(
            f"{path} is not a readable {what} ({exc.__class__.__name__}: {one_line(str(exc), 120)})"
        ) from exc
    try:
        check_members(archive, str(path), max_member_bytes)
    except BaseException:
        archive.close()
        raise
    return archive


def check_zip(path: str | Path, max_member_bytes: int = MAX_MEMBER_BYTES, what: str = "zip archive") -> None:
    """:func:`open_zip` and close: the archive is readable and no member declares more than the bound."""
    open_zip(path, max_member_bytes, what).close()


def read_member(archive: zipfile.ZipFile, name: str, source: str, max_member_bytes: int = MAX_MEMBER_BYTES) -> bytes:
    """The bytes of member ``name`` (its declared size checked first); ``KeyError`` if there is none,
    :class:`UserError` if it cannot be inflated (truncated, corrupted)."""
    info = archive.getinfo(name)
    if info.file_size > max_member_bytes:
        raise _too_big(info, source, max_member_bytes)
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise UserError(
            f"{source}: {name} cannot be read ({exc.__class__.__name__}: {one_line(str(exc), 120)}); truncated?"
        ) from exc
