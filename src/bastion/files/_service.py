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
(:mod:`._placeholders`) valid ``expiresInSec`` from the service clock's now.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from bastion.clock import Clock, SystemClock
from bastion.datadir import DataDir
from bastion.pki import Keystore
from bastion.store import ConflictError, FileRow, Store

from ._errors import InvalidFileError, UnknownFileError
from ._placeholders import (
    FILE_NAME,
    FILES_PATH,
    file_name_of,
    is_file_name,
    placeholder_urls,
    replace_placeholders,
)
from ._signing import KEY_BYTES, UrlSigner

log = logging.getLogger("bastion.files")

SIGNING_KEY_SECRET: Final = "files.url-signing-key"
MAX_FILE_BYTES: Final = 256 * 1024 * 1024
MAX_DOCUMENT_BYTES: Final = 32 * 1024
DEFAULT_EXPIRES_IN: Final = 3600
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
        if not overwrite:
            with self._store.transaction(readonly=True) as uow:
                if uow.files.get(name) is not None:
                    raise InvalidFileError(f"File {name} exists (overwrite to replace it)")
        self._directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(self._directory, _DIR_MODE)
        target = self._directory / name
        temporary = self._directory / f".{name}.{uuid.uuid4().hex}.part"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        digest = hashlib.sha256(data).hexdigest()
        with self._store.transaction() as uow:
            row = uow.files.put(name, size=len(data), sha256=digest, now=self.now())
        log.info("file %s uploaded (%d bytes, sha256 %s)", name, len(data), digest)
        return row

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
        """The job document kept in the file ``source`` designates (``documentSource``).

        :raises InvalidFileError: ``source`` designates no Bastion file, or the file is not
            UTF-8 or larger than 32 KB.
        :raises UnknownFileError: no such file.
        """
        name = file_name_of(source) if isinstance(source, str) else None
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

    def presign_document(self, document: str, expires_in_sec: int) -> str:
        """``document`` with its placeholders replaced by download URLs valid
        ``expires_in_sec`` (left as they are when no base URL is known: the API is off).

        The signing key must have been loaded (:meth:`signer`) when this is called inside
        another transaction.
        """
        if self._base_url is None or not placeholder_urls(document):
            return document
        signed = replace_placeholders(
            document, lambda name: self.presigned_url(name, expires_in_sec))
        json.loads(signed)  # the replacement never breaks the JSON (no quotes, no escapes)
        return signed
