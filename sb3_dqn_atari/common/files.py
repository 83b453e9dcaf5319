"""Writing output files so that nothing half-written is ever left behind (their paths checked before the work that
fills them), and reading a stranger's file no larger than a bound (no torch: the ONNX player uses it).

Every file goes to a temporary file in the destination's folder and is moved into place with ``os.replace``
(atomic on POSIX) only once it is complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sb3_dqn_atari.common.errors import UserError


def read_bounded(path: str | Path, max_bytes: int, source: str, too_large: Callable[[], UserError]) -> bytes:
    """The bytes of the file at ``path``, its size checked before it is read (over ``max_bytes``: ``too_large()`` is
    raised); an unreadable file is a :class:`UserError` naming ``source``."""
    try:
        if Path(path).stat().st_size > max_bytes:
            raise too_large()
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {source}: {exc.strerror or exc}") from exc


def check_output_file(path: Path, what: str, suffix: str | None = None, *, make_folder: bool = False) -> None:
    """Fail early, before any slow work, when the file ``path`` cannot be written: one :class:`UserError` naming it
    as ``what`` (``"the video"``) for a name without ``suffix``, a folder, a missing folder (``make_folder``:
    created), a folder where no file can be created (tried, as the writers here create one beside ``path``), or a
    read-only file."""
    if suffix is not None and path.suffix.lower() != suffix:
        raise UserError(f"{what} {path} should end in {suffix}")
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; pass a file name")
    if not make_folder and not path.parent.is_dir():
        raise UserError(f"cannot write {what} {path}: the folder {path.parent} does not exist")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"cannot write {what} {path}: permission denied")


def set_default_permissions(path: str | Path, mode: int = 0o666) -> None:
    """Give a ``mkstemp`` file (0600) the permissions a plain ``open`` would have (0666 minus the umask), or a
    ``mkdtemp`` folder (0700) a plain ``mkdir``'s (``mode=0o777``)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def make_parents(folder: str | Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created, outermost first (for :func:`remove_empty`)."""
    folder = Path(folder)
    missing = []
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            break
        missing.append(candidate)
    folder.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def remove_empty(created: list[Path]) -> None:
    """Remove the folders :func:`make_parents` created, innermost first, as long as they are empty."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else wrote there), or gone already
            return


@contextlib.contextmanager
def atomic_file(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """The one way a file is written here: a temporary file beside ``path`` (with the permissions a plain ``open``
    gives) for the block to write, moved into place with ``os.replace`` when the block ends, removed if it
    raises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        set_default_permissions(tmp)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temporary folder next to ``final``; removed unless the caller moved it into place, and so are the
    parent folders it had to create when ``final`` was not placed."""
    created = make_parents(final.parent)
    try:
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-"))
    except BaseException:
        remove_empty(created)
        raise
    set_default_permissions(tmp, 0o777)  # the final folder gets a plain mkdir's permissions
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            remove_empty(created)


def move_into_place(staged: Path, final: Path, force: bool = False) -> None:
    """``os.rename`` ``staged`` to ``final``; with ``force`` an existing ``final`` is replaced (old one removed
    only after the new one is in place)."""
    old: Path | None = None
    if final.exists():
        if not force:
            raise UserError(f"{final} already exists; pass --force to replace it, or --exp-id 0 for a new folder")
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    try:
        os.rename(staged, final)
    except OSError:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class Mp4Writer:
    """Streams RGB frames into an H.264 MP4 (imageio-ffmpeg) in a temporary file beside ``path``, moved into
    place by :meth:`finish`; :meth:`abort` leaves nothing. Raises ``OSError`` if the folder is not writable. As a
    context manager: finished when the block ends, aborted when it raises.

    :param path: the ``.mp4`` to write
    :param fps: frames per second of the video
    :param scale: nearest-neighbour upscaling of each frame (players and encoders like bigger frames)
    """

    def __init__(self, path: Path, fps: float, scale: int = 1) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".mp4")
        os.close(fd)
        self.path, self.tmp, self.fps, self.scale = path, Path(tmp), fps, scale
        self.frames = 0
        self._writer: Any = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.finish()
        self.abort()  # a no-op after finish()

    def __call__(self, frame: np.ndarray) -> None:
        if self.scale > 1:
            frame = frame.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
        if self._writer is None:
            import imageio_ffmpeg

            height, width = frame.shape[:2]
            # Even sizes suit yuv420p: no rescaling (macro_block_size 2), so the video has the frames' size.
            self._writer = imageio_ffmpeg.write_frames(
                str(self.tmp),
                (width, height),
                fps=self.fps,
                codec="libx264",
                pix_fmt_out="yuv420p",
                macro_block_size=2,
                ffmpeg_log_level="error",
            )
            self._writer.send(None)
        self._writer.send(np.ascontiguousarray(frame, dtype=np.uint8))
        self.frames += 1

    def finish(self) -> bool:
        """Close the stream and move the file into place; False (and no file) if no frame was written."""
        if self._writer is None:
            self.abort()
            return False
        self._writer.close()
        self._writer = None
        set_default_permissions(self.tmp)
        os.replace(self.tmp, self.path)
        return True

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):  # ffmpeg may be gone already (Ctrl-C); the temp file goes anyway
                self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)
