"""Atomic, permission-safe file writes.

A file is written to a uniquely named temporary file in the same directory, created with
``os.open(..., O_CREAT | O_EXCL, mode)`` so it never exists with wider permissions than
``mode`` (the umask can only narrow it; it is then set to exactly ``mode``), flushed with
``fsync``, and moved into place with a rename (or a hard link when it must not replace an
existing file); finally the directory is fsynced. Readers see the old file or the complete
new one, never a partial key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

_OPEN_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
)


def write_file_atomically(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, overwrite: bool = True
) -> None:
    """Atomically write ``data`` to ``path`` with permission bits ``mode``.

    :param mode: permission bits of the new file (default ``0o600``: owner read/write).
    :param overwrite: replace an existing file; when ``False`` an existing file is an error
        (checked atomically, without a race).
    :raises FileExistsError: ``overwrite`` is false and ``path`` exists.
    :raises TypeError: ``data`` is not bytes.
    :raises OSError: the directory does not exist or is not writable, the disk is full, ...
        No temporary file is left behind.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, _OPEN_FLAGS, mode)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)
            os.unlink(temporary)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
