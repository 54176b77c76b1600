"""Files received over HTTP: written to disk as they arrive, hashed, capped; and the
presigned upload URLs devices get in their job documents.

Theory of operation
-------------------
A :class:`FileWriter` takes the body of an upload chunk by chunk into a temporary file
beside the files (``.<random>.part``, mode ``0600``; a name no file may have, so it is
never served), counting and hashing as it goes: more bytes than its limit and it stops
with :class:`FileTooLargeError`, and whoever holds it discards it. Nothing is held in
memory but the chunk at hand. :meth:`FileWriter.finish` syncs and renames it into place.

A device uploads for a job execution. The job document holds the placeholder
``${bastion:upload-url}`` (or ``${bastion:upload-url:<max bytes>}``); when the device
fetches its document, the placeholder becomes a URL for *that* execution::

    https://bastion.example:8443/_bastion/uploads/<jobId>/<thingName>/<executionNumber>
        ?X-Bastion-Expires=…&X-Bastion-Max-Bytes=…&X-Bastion-Signature=…

signed for ``PUT`` with its size limit (:mod:`._signing`): only the targeted device ever
sees it, it expires with the job's ``presignedUrlConfig.expiresInSec``, it is good only
while the execution is pending (``QUEUED`` or ``IN_PROGRESS``: not once it is canceled,
timed out, removed or reported), and it is good once — the first upload records the
execution (``file_uploads``), and every later ``PUT`` to a URL of that execution is
refused. The file is stored as
:func:`upload_file_name` and stays linked to its job execution and thing.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import unquote

from ._errors import FileTooLargeError, UnknownFileError

UPLOADS_PATH: Final = "/_bastion/uploads/"
UPLOAD_PLACEHOLDER: Final = re.compile(r"\$\{bastion:upload-url(?::(?P<max>[0-9]{1,12}))?\}")
MAX_BYTES_PARAM: Final = "X-Bastion-Max-Bytes"
DEFAULT_UPLOAD_BYTES: Final = 16 * 1024 * 1024
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_JOB_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_THING: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """The job execution an upload URL is for, and how many bytes it may bring."""

    job_id: str
    thing_name: str
    execution_number: int
    max_bytes: int


def upload_path(job_id: str, thing_name: str, execution_number: int) -> str:
    return f"{UPLOADS_PATH}{job_id}/{thing_name}/{execution_number}"


def parse_upload_path(raw_path: str) -> tuple[str, str, int] | None:
    """(job id, thing name, execution number) of an upload URL's path, or ``None``."""
    if not raw_path.startswith(UPLOADS_PATH):
        return None
    parts = unquote(raw_path[len(UPLOADS_PATH):]).split("/")
    if len(parts) != 3 or not _JOB_ID.fullmatch(parts[0]) or not _THING.fullmatch(parts[1]) \
            or not parts[2].isdigit() or len(parts[2]) > 12:
        return None
    return parts[0], parts[1], int(parts[2])


def upload_file_name(job_id: str, thing_name: str, execution_number: int) -> str:
    """The name a device's upload is stored under: ``device-<thing>-<jobId>-<n>`` (a
    thing name with ``:`` gets ``_`` and a digest of the real name, to stay unique)."""
    thing = _UNSAFE.sub("_", thing_name)
    if thing != thing_name:
        thing += "-" + hashlib.sha256(thing_name.encode()).hexdigest()[:8]
    return f"device-{thing}-{job_id}-{execution_number}"


class FileWriter:
    """One upload on its way to disk (see the module docstring).

    :param directory: where the files are kept (created ``0700``).
    :param max_bytes: the most it takes.
    :raises OSError: the temporary file cannot be made.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._path = directory / f".{uuid.uuid4().hex}.part"
        self._handle = os.fdopen(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                         _FILE_MODE), "wb")

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, chunk: bytes) -> None:
        """:raises FileTooLargeError: past ``max_bytes`` (nothing more is written)."""
        if self.size + len(chunk) > self.max_bytes:
            raise FileTooLargeError(f"The upload exceeds its limit of {self.max_bytes} bytes")
        self._handle.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def finish(self, target: Path) -> None:
        """Sync the bytes and rename them to ``target``.

        :raises UnknownFileError: discarded already.
        """
        if self._handle.closed:
            raise UnknownFileError("The upload was discarded")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self._path, target)

    def discard(self) -> None:
        """Drop what was written (idempotent)."""
        if not self._handle.closed:
            self._handle.close()
        self._path.unlink(missing_ok=True)
