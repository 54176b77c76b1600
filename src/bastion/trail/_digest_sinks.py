"""Where signed digests go, and where a verifier reads them back.

* :class:`DirectorySink` — an append-only local directory: each digest is written to a
  temporary file, fsynced and linked into place under its own name (never replacing a
  file), read-only (0444); a file of that name that is already there with the same bytes
  is the same digest delivered before (a retry), one with other bytes is an error.
* :class:`S3Sink` — a bucket of an S3-compatible store (AWS S3, MinIO, Ceph, ...)
  through boto3, credentials from boto3's usual chain (environment, shared file,
  instance role), never from Bastion's configuration. When the bucket has Object Lock
  enabled, each object is written with ``ObjectLockMode=COMPLIANCE`` and a
  ``RetainUntilDate`` ``retention_days`` ahead: not even the bucket's owner can delete
  or overwrite it before then. An object already there is never overwritten.

Both raise :class:`DigestDeliveryError` when the digest did not land; the digester keeps
it and tries again next round. :func:`read_digest_files` lists a directory or an
``s3://bucket/prefix`` for ``bastion trail verify --digests``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from bastion.pki import write_file_atomically

from ._digest import looks_like_digest_name
from ._errors import TrailError

_log = logging.getLogger("bastion.trail")
FILE_MODE: Final = 0o444
_TIMEOUT: Final = 30.0


class DigestDeliveryError(TrailError):
    """A digest did not reach a sink (the sink is unreachable, refuses it, or holds
    another file under its name). Nobody's request is at fault; the digest stays in the
    store and is sent again next round."""


class DigestSink(Protocol):
    """A place digests are delivered to.

    :ivar id: names the sink in the delivery cursors (``dir:/path``, ``s3:bucket/prefix``).
    """

    @property
    def id(self) -> str: ...

    def deliver(self, name: str, data: bytes) -> None:
        """Store one digest file under ``name``, or raise :class:`DigestDeliveryError`."""
        ...


class DirectorySink:
    """An append-only local directory of digest files (created 0700 if missing).

    :param path: the directory.
    """

    __slots__ = ("_path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path).resolve()

    def __repr__(self) -> str:
        return f"<DirectorySink {self._path}>"

    @property
    def id(self) -> str:
        return f"dir:{self._path}"

    @property
    def path(self) -> Path:
        return self._path

    def deliver(self, name: str, data: bytes) -> None:
        """:raises DigestDeliveryError: the file cannot be written, or a different file
            of that name exists."""
        target = self._path / name
        try:
            self._path.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_file_atomically(target, data, mode=FILE_MODE, overwrite=False)
        except FileExistsError:
            try:
                same = target.read_bytes() == data
            except OSError as error:
                raise DigestDeliveryError(f"{target} exists and cannot be read: "
                                          f"{error}") from None
            if not same:
                raise DigestDeliveryError(f"{target} exists with other content: refusing "
                                          "to overwrite it") from None
        except OSError as error:
            raise DigestDeliveryError(f"cannot write {target}: {error}") from None


class S3Sink:
    """Digest objects under ``prefix`` in ``bucket`` of the store at ``endpoint_url``.

    :param endpoint_url: empty for AWS's S3 itself.
    :param retention_days: the Object Lock retention of each object (when the bucket
        has Object Lock enabled).
    :param now: the current time (for the retention date).
    :raises ValueError: ``bucket`` is empty or ``retention_days`` < 1.
    """

    __slots__ = ("_client", "_lock", "_locking", "_now", "bucket", "endpoint_url",
                 "prefix", "region", "retention_days")

    def __init__(self, bucket: str, *, prefix: str = "", endpoint_url: str = "",
                 region: str = "us-east-1", retention_days: int = 365,
                 now: Callable[[], datetime]) -> None:
        if not bucket:
            raise ValueError("bucket must not be empty")
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self.retention_days = retention_days
        self._now = now
        self._client: Any = None
        self._locking: bool | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<S3Sink s3://{self.bucket}/{self.prefix}>"

    @property
    def id(self) -> str:
        return f"s3:{self.bucket}/{self.prefix}"

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = s3_client(self.endpoint_url, self.region)
            return self._client

    def object_lock(self) -> bool:
        """Whether the bucket has Object Lock enabled (asked once, then remembered).

        :raises DigestDeliveryError: the store cannot be asked.
        """
        if self._locking is None:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                answer = self._s3().get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in ("ObjectLockConfigurationNotFoundError", "NotImplemented",
                                "MethodNotAllowed"):
                    raise DigestDeliveryError(f"s3://{self.bucket}: {code or error}") from None
                answer = {}
            except BotoCoreError as error:
                raise DigestDeliveryError(f"s3://{self.bucket}: {error}") from None
            enabled = (answer.get("ObjectLockConfiguration", {})
                       .get("ObjectLockEnabled") == "Enabled")
            if not enabled:
                _log.warning("trail digests: bucket %s has no Object Lock; digests are "
                             "written without retention (enable Object Lock on the bucket "
                             "to make them undeletable)", self.bucket)
            self._locking = enabled
        return self._locking

    def deliver(self, name: str, data: bytes) -> None:
        """:raises DigestDeliveryError: no credentials, the store refused or did not
            answer, or another object holds the name."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        key = self.prefix + name
        try:
            existing = self._existing(key)
            if existing is not None:
                if existing != data:
                    raise DigestDeliveryError(f"s3://{self.bucket}/{key} exists with other "
                                              "content: refusing to overwrite it")
                return
            extra: dict[str, Any] = {}
            if self.object_lock():
                extra["ObjectLockMode"] = "COMPLIANCE"
                extra["ObjectLockRetainUntilDate"] = (
                    self._now() + timedelta(days=self.retention_days))
            self._s3().put_object(Bucket=self.bucket, Key=key, Body=data,
                                  ContentType="application/json", **extra)
        except NoCredentialsError:
            raise DigestDeliveryError("no credentials for the object store (set them as for "
                                      "any boto3 client)") from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise DigestDeliveryError(f"put s3://{self.bucket}/{key}: {code or error}") from None
        except BotoCoreError as error:
            raise DigestDeliveryError(f"put s3://{self.bucket}/{key}: {error}") from None

    def _existing(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            answer = self._s3().get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
                return None
            raise
        body = answer["Body"]
        try:
            return bytes(body.read())
        finally:
            with contextlib.suppress(Exception):
                body.close()


def s3_client(endpoint_url: str, region: str) -> Any:
    """A boto3 S3 client (path-style addressing) for ``endpoint_url`` (empty: AWS)."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url or None, region_name=region,
        config=BotoConfig(s3={"addressing_style": "path"}, connect_timeout=_TIMEOUT,
                          read_timeout=_TIMEOUT, retries={"max_attempts": 2}))


def read_digest_files(location: str, *, endpoint_url: str = "",
                      region: str = "us-east-1") -> list[tuple[str, bytes]]:
    """Every digest file at ``location`` — a directory, or ``s3://bucket/prefix`` — as
    ``(name, bytes)``, by name. Files whose names are not digest names are skipped,
    except files of a directory that end in ``.json`` (a renamed digest must be seen).

    :raises OSError: the directory cannot be read.
    :raises ValueError: an ``s3://`` location without a bucket.
    :raises botocore.exceptions.BotoCoreError: the store cannot be read.
    :raises botocore.exceptions.ClientError: the store refused.
    """
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"{location!r} names no bucket")
        client = s3_client(endpoint_url, region)
        found: list[tuple[str, bytes]] = []
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix):]
                if "/" in name or not (looks_like_digest_name(name) or name.endswith(".json")):
                    continue
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
                found.append((name, bytes(body.read())))
        return sorted(found)
    directory = Path(location)
    return sorted((entry.name, entry.read_bytes()) for entry in directory.iterdir()
                  if entry.is_file() and (looks_like_digest_name(entry.name)
                                          or entry.name.endswith(".json")))
