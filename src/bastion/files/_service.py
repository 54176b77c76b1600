"""The file service: files uploaded by the operator, served to devices through presigned
URLs, and the job documents they may hold.

Theory of operation
-------------------
A file's bytes live in the data directory (``files/<name>``, directory ``0700``, files
``0600``); its row in the store (name, size, SHA-256) is what makes it exist: a file is
served only while its row exists. An upload writes the bytes to a temporary file, renames
it over the old one, then records the row.

Download URLs are signed (:mod:`._signing`) with a 256-bit key created on first use and
kept in the store sealed by the installation's master key (secret
:data:`SIGNING_KEY_SECRET`, the name bound as associated data). The key is loaded once
per process, outside any other transaction.

For jobs, the service is the :class:`~bastion.jobs.JobDocumentSource`: it reads a job
document from a file (``documentSource``), checks that a document's presigned-URL
placeholders designate existing files, and replaces them with presigned URLs
(:mod:`._placeholders`) valid ``expiresInSec`` from the service clock's now — and, for the
execution a device fetches, ``${bastion:upload-url}`` with that execution's single-use
upload URL (:mod:`._uploads`).

Uploads over HTTP (the operator's ``PUT /_bastion/files/<name>``, a device's presigned
upload) go through a :class:`~bastion.files.FileWriter`: to disk as they arrive, never
whole in memory.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from bastion.clock import Clock, SystemClock
from bastion.datadir import DataDir
from bastion.pki import Keystore
from bastion.store import ConflictError, FileRow, FileUploadRow, InvalidPageTokenError, Store

from ._errors import InvalidFileError, UnknownFileError, UploadUsedError
from ._placeholders import (
    FILE_NAME,
    FILES_PATH,
    file_name_of,
    is_file_name,
    placeholder_urls,
    replace_placeholders,
)
from ._remote import RemoteDocumentFetcher
from ._signing import KEY_BYTES, UrlSigner
from ._uploads import (
    DEFAULT_UPLOAD_BYTES,
    MAX_BYTES_PARAM,
    UPLOAD_PLACEHOLDER,
    FileWriter,
    UploadTarget,
    parse_upload_path,
    upload_file_name,
    upload_path,
)

log = logging.getLogger("bastion.files")

SIGNING_KEY_SECRET: Final = "files.url-signing-key"
MAX_FILE_BYTES: Final = 256 * 1024 * 1024
MAX_DOCUMENT_BYTES: Final = 32 * 1024
DEFAULT_EXPIRES_IN: Final = 3600
_MAX_RESULTS: Final = 250
_WAITING: Final = frozenset({"QUEUED", "IN_PROGRESS"})
"""The statuses of a job execution that may still upload (AWS IoT Jobs' pending ones)."""
_DIR_MODE: Final = 0o700
_FILE_MODE: Final = 0o600


def check_file_name(name: object) -> str:
    """:raises TypeError: not a string. :raises InvalidFileError: not a file name."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, not {type(name).__name__}")
    if not is_file_name(name):
        raise InvalidFileError(f"Invalid file name {name!r}: names match {FILE_NAME.pattern}")
    return name


class FileService:
    """Uploaded files and their presigned download URLs.

    :param store: an open :class:`~bastion.store.Store`.
    :param directory: where the bytes are kept (created ``0700`` on first upload).
    :param keystore: seals the URL-signing key (only needed to sign or verify).
    :param clock: the current time; tests pass one they move by hand.
    :param base_url: the scheme, host and port devices download from
        (``https://bastion.example:8443``); settable later (the API's port may be known
        only once it is bound).
    :raises TypeError: wrong argument types.
    """

    def __init__(self, store: Store, directory: Path, keystore: Keystore | None = None, *,
                 clock: Clock | None = None, base_url: str | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        if keystore is not None and not isinstance(keystore, Keystore):
            raise TypeError(f"keystore must be a Keystore, not {type(keystore).__name__}")
        self._store = store
        self._directory = Path(directory)
        self._keystore = keystore
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._signer: UrlSigner | None = None
        self._base_url: str | None = None
        self.remote_documents: RemoteDocumentFetcher | None = None
        """Fetches ``documentSource`` URLs that name no Bastion file (``None``: refused)."""
        if base_url is not None:
            self.base_url = base_url

    @classmethod
    def from_datadir(cls, store: Store, datadir: DataDir, *, clock: Clock | None = None,
                     with_keystore: bool = True) -> FileService:
        """The service of a data directory (bytes in ``<data dir>/files``).

        :raises bastion.pki.KeystoreError: ``with_keystore`` and the master key is missing.
        """
        keystore = datadir.open_keystore() if with_keystore else None
        return cls(store, datadir.path / "files", keystore, clock=clock)

    # -- configuration ---------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def base_url(self) -> str | None:
        return self._base_url

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        if value is not None:
            if not isinstance(value, str):
                raise TypeError("base_url must be a string")
            if not value.startswith(("https://", "http://")) or value.count("/") != 2:
                raise ValueError(f"base_url must be scheme://host[:port], not {value!r}")
        self._base_url = value

    def now(self) -> datetime:
        """:raises ValueError: the clock returned a naive datetime."""
        now = self._clock.now()
        if now.utcoffset() is None:
            raise ValueError("the clock returned a naive datetime")
        return now.astimezone(UTC)

    def url(self, name: str, base_url: str | None = None) -> str:
        """The unsigned URL of file ``name`` (what ``documentSource`` and placeholders may
        name).

        :raises InvalidFileError: a bad name.
        :raises RuntimeError: no base URL is known.
        """
        base = base_url or self._base_url
        if base is None:
            raise RuntimeError("the file service has no base URL (is the API running?)")
        return f"{base}{FILES_PATH}{check_file_name(name)}"

    # -- files -----------------------------------------------------------------------------

    def upload(self, name: str, data: bytes, *, overwrite: bool = False) -> FileRow:
        """Store ``data`` as file ``name``.

        :raises TypeError: ``data`` is not bytes.
        :raises InvalidFileError: a bad name, more than :data:`MAX_FILE_BYTES`, or the file
            exists and not ``overwrite``.
        :raises OSError: the bytes cannot be written.
        """
        name = check_file_name(name)
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if len(data) > MAX_FILE_BYTES:
            raise InvalidFileError(f"A file may have at most {MAX_FILE_BYTES} bytes")
        writer = self.writer(len(data))
        try:
            writer.write(data)
        except BaseException:
            writer.discard()
            raise
        return self.store_written(name, writer, overwrite=overwrite)

    def writer(self, max_bytes: int = MAX_FILE_BYTES) -> FileWriter:
        """A writer for an upload of at most ``max_bytes`` (and :data:`MAX_FILE_BYTES`).

        :raises OSError: the temporary file cannot be made.
        """
        self._directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(self._directory, _DIR_MODE)
        return FileWriter(self._directory, min(max_bytes, MAX_FILE_BYTES))

    def store_written(self, name: str, writer: FileWriter, *, overwrite: bool = False
                      ) -> FileRow:
        """Store what ``writer`` received as file ``name`` (the writer is finished or
        discarded either way).

        :raises InvalidFileError: a bad name, or the file exists and not ``overwrite``.
        """
        try:
            name = check_file_name(name)
            if not overwrite:
                with self._store.transaction(readonly=True) as uow:
                    if uow.files.get(name) is not None:
                        raise InvalidFileError(f"File {name} exists (overwrite to replace it)")
            writer.finish(self._directory / name)
        except BaseException:
            writer.discard()
            raise
        with self._store.transaction() as uow:
            row = uow.files.put(name, size=writer.size, sha256=writer.sha256, now=self.now())
        log.info("file %s uploaded (%d bytes, sha256 %s)", name, writer.size, writer.sha256)
        return row

    def list_files(self, *, max_results: int | None = None, next_token: str | None = None,
                   thing_name: str | None = None
                   ) -> tuple[list[tuple[FileRow, FileUploadRow | None]], str | None]:
        """Files by name with the device upload behind each (if one is); with
        ``thing_name``, only what that thing's device uploaded (oldest first, one page).

        :raises InvalidFileError: a bad page size or token.
        """
        limit = _MAX_RESULTS if max_results is None else max_results
        if isinstance(limit, bool) or not isinstance(limit, int) \
                or not 1 <= limit <= _MAX_RESULTS:
            raise InvalidFileError(f"maxResults must be from 1 to {_MAX_RESULTS}")
        with self._store.transaction(readonly=True) as uow:
            if thing_name is not None:
                found: list[tuple[FileRow, FileUploadRow | None]] = []
                for upload in uow.files.uploads_of_thing(thing_name):
                    row = uow.files.get(upload.file_name)
                    if row is not None:
                        found.append((row, upload))
                return found, None
            try:
                rows, token = uow.files.list_page(limit=limit, token=next_token)
            except InvalidPageTokenError:
                raise InvalidFileError("nextToken is not valid") from None
            uploads = uow.files.uploads_of_files([row.name for row in rows])
        return [(row, uploads.get(row.name)) for row in rows], token

    def delete(self, name: str) -> None:
        """Delete file ``name`` (its row, then its bytes). A device upload's record stays:
        its URL stays used.

        :raises InvalidFileError: a bad name. :raises UnknownFileError: no such file.
        """
        name = check_file_name(name)
        with self._store.transaction() as uow:
            if not uow.files.delete(name):
                raise UnknownFileError(f"File {name} does not exist")
        (self._directory / name).unlink(missing_ok=True)
        log.info("file %s deleted", name)

    def describe(self, name: str) -> FileRow:
        """:raises InvalidFileError: a bad name. :raises UnknownFileError: no such file."""
        name = check_file_name(name)
        with self._store.transaction(readonly=True) as uow:
            row = uow.files.get(name)
        if row is None:
            raise UnknownFileError(f"File {name} does not exist")
        return row

    def read(self, name: str) -> bytes:
        """The bytes of file ``name``.

        :raises InvalidFileError: a bad name.
        :raises UnknownFileError: no such file (no row, or its bytes are gone).
        """
        self.describe(name)
        try:
            return (self._directory / name).read_bytes()
        except FileNotFoundError:
            raise UnknownFileError(f"File {name} does not exist") from None

    def read_blocks(self, name: str, block_size: int, block_ids: Sequence[int]) -> list[bytes]:
        """Blocks of file ``name`` (block *i* is the bytes from ``i * block_size``; the
        last one may be shorter), read from disk one by one: never the whole file.

        :raises InvalidFileError: a bad name.
        :raises UnknownFileError: the file's bytes are gone.
        :raises ValueError: ``block_size`` < 1.
        """
        name = check_file_name(name)
        if block_size < 1:
            raise ValueError("block_size must be positive")
        try:
            with (self._directory / name).open("rb") as handle:
                blocks = []
                for block_id in block_ids:
                    handle.seek(block_id * block_size)
                    blocks.append(handle.read(block_size))
                return blocks
        except FileNotFoundError:
            raise UnknownFileError(f"File {name} does not exist") from None

    # -- signed URLs -------------------------------------------------------------------------

    def signer(self) -> UrlSigner:
        """The URL signer, its key loaded (or created) on the first call.

        :raises RuntimeError: the service has no keystore.
        :raises bastion.pki.SecretTamperedError: the stored key fails authentication.
        """
        with self._lock:
            if self._signer is None:
                self._signer = UrlSigner(self._load_key())
            return self._signer

    def _load_key(self) -> bytes:
        keystore = self._keystore
        if keystore is None:
            raise RuntimeError("the file service was built without a keystore")
        aad = SIGNING_KEY_SECRET.encode("ascii")
        for attempt in range(2):
            try:
                with self._store.transaction() as uow:
                    sealed = uow.secrets.get(SIGNING_KEY_SECRET)
                    if sealed is not None:
                        return keystore.unseal(sealed, associated_data=aad)
                    key = secrets.token_bytes(KEY_BYTES)
                    uow.secrets.put(SIGNING_KEY_SECRET,
                                    keystore.seal(key, associated_data=aad), self.now())
                return key
            except (ConflictError, sa.exc.IntegrityError):
                # Another process created it between our read and our write: read theirs.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def presigned_url(self, name: str, expires_in_sec: int = DEFAULT_EXPIRES_IN) -> str:
        """A download URL of file ``name`` valid ``expires_in_sec`` from now.

        :raises InvalidFileError: a bad name.
        :raises ValueError: ``expires_in_sec`` < 1.
        :raises RuntimeError: no base URL or keystore.
        """
        if isinstance(expires_in_sec, bool) or not isinstance(expires_in_sec, int):
            raise TypeError("expires_in_sec must be an integer")
        if expires_in_sec < 1:
            raise ValueError("expires_in_sec must be positive")
        url = self.url(name)
        return self.signer().sign(url, self.now() + timedelta(seconds=expires_in_sec))

    # -- device uploads ----------------------------------------------------------------------

    def upload_url(self, job_id: str, thing_name: str, execution_number: int, *,
                   max_bytes: int = DEFAULT_UPLOAD_BYTES,
                   expires_in_sec: int = DEFAULT_EXPIRES_IN) -> str:
        """The single-use upload URL of a job execution (see :mod:`._uploads`).

        :raises ValueError: a bad limit or validity.
        :raises RuntimeError: no base URL or keystore.
        """
        if not 1 <= max_bytes <= MAX_FILE_BYTES:
            raise ValueError(f"max_bytes must be from 1 to {MAX_FILE_BYTES}")
        if expires_in_sec < 1:
            raise ValueError("expires_in_sec must be positive")
        base = self._base_url
        if base is None:
            raise RuntimeError("the file service has no base URL (is the API running?)")
        return self.signer().sign(
            base + upload_path(job_id, thing_name, execution_number),
            self.now() + timedelta(seconds=expires_in_sec), method="PUT",
            limits={MAX_BYTES_PARAM: str(max_bytes)})

    def upload_target(self, raw_path: str, raw_query: str) -> UploadTarget:
        """Check ``PUT <raw_path>?<raw_query>``: the signature first, then the path, then
        whether the execution uploaded already.

        :raises SignatureRejectedError: a missing, bad or expired signature.
        :raises UnknownFileError: a valid signature on a path that is not an upload's.
        :raises UploadUsedError: the URL was used, or its job execution is over (or gone).
        """
        _, limits = self.signer().verify_limits(raw_path, raw_query, self.now(), method="PUT")
        parsed = parse_upload_path(raw_path)
        raw_max = limits.get(MAX_BYTES_PARAM, "")
        if parsed is None or not raw_max.isdigit():
            raise UnknownFileError("No such upload")
        job_id, thing_name, number = parsed
        with self._store.transaction(readonly=True) as uow:
            if uow.files.upload_of(job_id, thing_name, number) is not None:
                raise UploadUsedError("This upload URL was used already")
            execution = uow.job_executions.get(job_id, thing_name, number)
        if execution is None or execution.status not in _WAITING:
            raise UploadUsedError("The job execution of this upload URL is over")
        return UploadTarget(job_id, thing_name, number, min(int(raw_max), MAX_FILE_BYTES))

    def finish_upload(self, target: UploadTarget, writer: FileWriter) -> FileUploadRow:
        """Store a device's upload and link it to its job execution, once (the writer is
        finished or discarded either way).

        :raises UploadUsedError: another upload of the execution got there first.
        """
        name = upload_file_name(target.job_id, target.thing_name, target.execution_number)
        row = FileUploadRow(target.job_id, target.thing_name, target.execution_number, name,
                            writer.size, writer.sha256, self.now())
        try:
            with self._store.transaction() as uow:
                try:
                    uow.files.record_upload(row)
                except ConflictError:
                    raise UploadUsedError("This upload URL was used already") from None
                writer.finish(self._directory / name)
                uow.files.put(name, size=writer.size, sha256=writer.sha256, now=row.uploaded_at)
        except BaseException:
            writer.discard()
            raise
        log.info("file %s uploaded by %s for job %s (%d bytes)", name, target.thing_name,
                 target.job_id, writer.size)
        return row

    def download(self, raw_path: str, raw_query: str) -> tuple[FileRow, bytes]:
        """Serve ``GET <raw_path>?<raw_query>``: the signature is checked first, then the
        file looked up (an unsigned request learns nothing about which files exist).

        :raises SignatureRejectedError: a missing, bad or expired signature.
        :raises UnknownFileError: a valid signature, but no such file (any more).
        """
        self.signer().verify(raw_path, raw_query, self.now())
        name = raw_path[len(FILES_PATH):] if raw_path.startswith(FILES_PATH) else ""
        if not is_file_name(name):
            raise UnknownFileError("No such file")
        row = self.describe(name)
        return row, self.read(name)

    # -- job documents (bastion.jobs.JobDocumentSource) --------------------------------------

    def fetch_document(self, source: str) -> str:
        """The job document kept in the file ``source`` designates (``documentSource``), or
        — for another ``https://`` URL, when :attr:`remote_documents` is set — the one that
        URL serves (:mod:`._remote`).

        :raises InvalidFileError: ``source`` designates no Bastion file and cannot be
            fetched, or the document is not UTF-8 or larger than 32 KB.
        :raises UnknownFileError: no such file.
        """
        name = file_name_of(source) if isinstance(source, str) else None
        if name is None and self.remote_documents is not None and isinstance(source, str) \
                and source.startswith(("https://", "http://")):
            return self.remote_documents.fetch(source)
        if name is None:
            raise InvalidFileError(
                f"documentSource {source!r} is not a Bastion file URL "
                f"(https://<host>{FILES_PATH}<name> or s3://<bucket>/<name>)")
        data = self.read(name)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise InvalidFileError(f"The job document in {name} exceeds "
                                   f"{MAX_DOCUMENT_BYTES} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidFileError(f"The job document in {name} is not UTF-8") from None

    def check_document(self, document: str) -> None:
        """Check that every presigned-URL placeholder of ``document`` designates an
        uploaded file.

        :raises InvalidFileError: a placeholder designates no Bastion file.
        :raises UnknownFileError: a placeholder designates a file that does not exist.
        """
        for url in placeholder_urls(document):
            name = file_name_of(url)
            if name is None:
                raise InvalidFileError(
                    f"The presigned-URL placeholder {url!r} designates no Bastion file")
            self.describe(name)

    def presign_document(self, document: str, expires_in_sec: int, *,
                         execution: tuple[str, str, int] | None = None) -> str:
        """``document`` with its placeholders replaced by download URLs valid
        ``expires_in_sec``, and — for ``execution`` (job id, thing name, execution
        number) — its upload placeholders by that execution's upload URL (left as they
        are when no base URL is known: the API is off).

        The signing key must have been loaded (:meth:`signer`) when this is called inside
        another transaction.
        """
        if self._base_url is None:
            return document
        signed = document
        if execution is not None and "${bastion:upload-url" in document:
            job_id, thing_name, number = execution
            signed = UPLOAD_PLACEHOLDER.sub(lambda match: self.upload_url(
                job_id, thing_name, number, expires_in_sec=expires_in_sec,
                max_bytes=min(int(match.group("max") or DEFAULT_UPLOAD_BYTES),
                              MAX_FILE_BYTES) or 1), signed)
        if placeholder_urls(signed):
            signed = replace_placeholders(
                signed, lambda name: self.presigned_url(name, expires_in_sec))
        if signed is document:
            return document
        json.loads(signed)  # the replacement never breaks the JSON (no quotes, no escapes)
        return signed
