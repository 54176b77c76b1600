"""Streams (``iot`` CreateStream, DescribeStream, ListStreams, UpdateStream,
DeleteStream): files that devices read in blocks over MQTT.

Theory of operation
-------------------
A stream lists up to 50 files, each under a file id (0–255). A file is a Bastion file
named the way S3 would name it (``s3Location``: ``bucket`` is free, ``key`` is the file's
name, ``version``, when given, must be the file's SHA-256 — Bastion has no object
versions). The stream records each file's size and SHA-256 when it is made or updated,
as AWS records the S3 object's ETag: a file replaced since is refused to devices with
``ETagMismatch`` until the stream is updated. The stream's version is 1 at creation and
one more at each update; a device that names a version (``s``) gets ``VersionMismatch``
once the stream has changed.

Devices reach the service through :class:`bastion.reserved.StreamsTopics`:
:meth:`StreamService.describe_for_device` answers ``describe``,
:meth:`StreamService.read_blocks` answers ``get`` with the blocks
:func:`~bastion.ota.plan_blocks` chose, read from disk block by block (at most 128 KB per
request). Whether a device may read a stream at all is its policy's decision on the
request and answer topics (``iot:Publish``, ``iot:Receive``), as on AWS.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from bastion.account import Account
from bastion.clock import Clock, SystemClock
from bastion.files import FilesError, FileService, is_file_name
from bastion.store import (
    ConflictError,
    InvalidPageTokenError,
    Store,
    StreamFileRow,
    StreamRow,
)

from ._errors import InvalidRequestError, ResourceAlreadyExistsError, ResourceNotFoundError
from ._stream_messages import (
    GetStreamRequest,
    StreamErrorCode,
    StreamRequestRefused,
    plan_blocks,
)

log = logging.getLogger("bastion.ota.streams")

_STREAM_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_BUCKET: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,254}")
MAX_FILES: Final = 50
MAX_DESCRIPTION: Final = 2028
MAX_VERSION: Final = 65_535
_MAX_RESULTS: Final = 250


def page_size(max_results: int | None) -> int:
    """A list call's ``maxResults`` (default and most: 250).

    :raises InvalidRequestError: not an integer from 1 to 250."""
    limit = _MAX_RESULTS if max_results is None else max_results
    if isinstance(limit, bool) or not isinstance(limit, int) \
            or not 1 <= limit <= _MAX_RESULTS:
        raise InvalidRequestError(f"maxResults must be from 1 to {_MAX_RESULTS}")
    return limit


@dataclass(frozen=True, slots=True)
class Stream:
    """A stream as DescribeStream describes it."""

    stream_id: str
    arn: str
    version: int
    description: str | None
    role_arn: str
    files: tuple[StreamFileRow, ...]
    created_at: datetime
    last_updated_at: datetime

    def file(self, file_id: int) -> StreamFileRow | None:
        return next((item for item in self.files if item.file_id == file_id), None)


def check_stream_id(stream_id: object) -> str:
    """:raises InvalidRequestError: not 1 to 128 characters of a-z A-Z 0-9 _ -."""
    if not isinstance(stream_id, str) or not _STREAM_ID.fullmatch(stream_id):
        raise InvalidRequestError("streamId must be 1 to 128 characters of a-z A-Z 0-9 _ -")
    return stream_id


class StreamService:
    """Streams over the file service.

    :raises TypeError: ``store`` is not a :class:`~bastion.store.Store`.
    """

    def __init__(self, store: Store, *, files: FileService, account: Account,
                 clock: Clock | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be a Store, not {type(store).__name__}")
        self._store = store
        self._files = files
        self._account = account
        self._clock: Clock = clock if clock is not None else SystemClock()

    def _stream(self, row: StreamRow) -> Stream:
        return Stream(stream_id=row.stream_id, arn=self._account.arn(f"stream/{row.stream_id}"),
                      version=row.version, description=row.description,
                      role_arn=row.role_arn, files=row.files, created_at=row.created_at,
                      last_updated_at=row.last_updated_at)

    # -- the operator's API ------------------------------------------------------------

    def _check_files(self, files: object) -> tuple[StreamFileRow, ...]:
        if isinstance(files, str | bytes) or not isinstance(files, Sequence) \
                or not 1 <= len(files) <= MAX_FILES:
            raise InvalidRequestError(f"files must list 1 to {MAX_FILES} files")
        checked: list[StreamFileRow] = []
        seen: set[int] = set()
        for index, item in enumerate(files):
            if not isinstance(item, Mapping):
                raise InvalidRequestError(f"files[{index}] must be an object")
            file_id = item.get("fileId")
            if isinstance(file_id, bool) or not isinstance(file_id, int) \
                    or not 0 <= file_id <= 255:
                raise InvalidRequestError(f"files[{index}].fileId must be from 0 to 255")
            if file_id in seen:
                raise InvalidRequestError(f"fileId {file_id} is given twice")
            seen.add(file_id)
            location = item.get("s3Location")
            if not isinstance(location, Mapping):
                raise InvalidRequestError(f"files[{index}].s3Location must name the file")
            bucket, key, version = (location.get("bucket"), location.get("key"),
                                    location.get("version"))
            if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
                raise InvalidRequestError(f"files[{index}].s3Location.bucket must be a "
                                          "bucket name")
            if not is_file_name(key):
                raise InvalidRequestError(f"files[{index}].s3Location.key {key!r} is not a "
                                          "Bastion file name")
            assert isinstance(key, str)
            try:
                described = self._files.describe(key)
            except FilesError as error:
                raise ResourceNotFoundError(f"File {key}: {error.message}") from None
            if version is not None and version != described.sha256:
                raise InvalidRequestError(f"files[{index}].s3Location.version must be the "
                                          f"SHA-256 of file {key} ({described.sha256})")
            checked.append(StreamFileRow(file_id, bucket, key, described.size,
                                         described.sha256))
        return tuple(checked)

    @staticmethod
    def _check_description(description: object) -> str | None:
        if description is None:
            return None
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidRequestError(f"description must be text of at most "
                                      f"{MAX_DESCRIPTION} characters")
        return description

    @staticmethod
    def _check_role(role_arn: object) -> str:
        if not isinstance(role_arn, str) or not 20 <= len(role_arn) <= 2048:
            raise InvalidRequestError("roleArn must be an IAM role ARN")
        return role_arn

    def _now(self) -> datetime:
        return self._clock.now().astimezone(UTC)

    def create_stream(self, stream_id: str, *, files: Sequence[Mapping[str, Any]],
                      role_arn: str, description: str | None = None) -> Stream:
        """CreateStream (version 1).

        :raises InvalidRequestError: a bad id, description, role or file list.
        :raises ResourceNotFoundError: a file does not exist.
        :raises ResourceAlreadyExistsError: the id is taken.
        """
        stream_id = check_stream_id(stream_id)
        now = self._now()
        row = StreamRow(stream_id=stream_id, version=1,
                        description=self._check_description(description),
                        role_arn=self._check_role(role_arn), files=self._check_files(files),
                        created_at=now, last_updated_at=now)
        try:
            with self._store.transaction() as uow:
                uow.streams.insert(row)
        except ConflictError:
            raise ResourceAlreadyExistsError(f"Stream {stream_id} already exists") from None
        log.info("stream %s: %s", stream_id, ", ".join(
            f"{item.file_id}={item.key}" for item in row.files))
        return self._stream(row)

    def describe_stream(self, stream_id: str) -> Stream:
        """:raises ResourceNotFoundError: no such stream."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.streams.get(stream_id) if isinstance(stream_id, str) else None
        if row is None:
            raise ResourceNotFoundError(f"Stream {stream_id} does not exist")
        return self._stream(row)

    def list_streams(self, *, max_results: int | None = None, next_token: str | None = None,
                     ascending: bool = True) -> tuple[list[Stream], str | None]:
        """:raises InvalidRequestError: a bad page size or token."""
        limit = page_size(max_results)
        try:
            with self._store.transaction(readonly=True) as uow:
                rows, token = uow.streams.list_page(limit=limit, token=next_token,
                                                    ascending=ascending)
        except InvalidPageTokenError:
            raise InvalidRequestError("nextToken is not valid") from None
        return [self._stream(row) for row in rows], token

    def update_stream(self, stream_id: str, *, files: Sequence[Mapping[str, Any]] | None = None,
                      role_arn: str | None = None,
                      description: str | None = None) -> Stream:
        """UpdateStream: what is given replaces what was; the version goes up by one (and
        each file's size and SHA-256 are taken again, given or not).

        :raises InvalidRequestError: a bad description, role or file list; the version
            would pass 65535.
        :raises ResourceNotFoundError: no such stream, or a file does not exist.
        """
        current = self.describe_stream(stream_id)
        if current.version >= MAX_VERSION:
            raise InvalidRequestError(f"Stream {stream_id} is at version {MAX_VERSION}: "
                                      "make a new stream")
        new_files = self._check_files(
            files if files is not None else [
                {"fileId": item.file_id, "s3Location": {"bucket": item.bucket,
                                                        "key": item.key}}
                for item in current.files])
        row = StreamRow(
            stream_id=current.stream_id, version=current.version + 1,
            description=self._check_description(description) if description is not None
            else current.description,
            role_arn=self._check_role(role_arn) if role_arn is not None else current.role_arn,
            files=new_files, created_at=current.created_at, last_updated_at=self._now())
        with self._store.transaction() as uow:
            if not uow.streams.update(row, expected_version=current.version):
                raise ResourceNotFoundError(f"Stream {stream_id} does not exist (or changed "
                                            "meanwhile: try again)")
        return self._stream(row)

    def delete_stream(self, stream_id: str) -> None:
        """:raises ResourceNotFoundError: no such stream."""
        with self._store.transaction() as uow:
            deleted = isinstance(stream_id, str) and uow.streams.delete(stream_id)
        if not deleted:
            raise ResourceNotFoundError(f"Stream {stream_id} does not exist")

    # -- devices (bastion.reserved.StreamsTopics) --------------------------------------

    def describe_for_device(self, stream_id: str, client_token: str | None) -> Stream:
        """The stream a device's ``describe`` names.

        :raises StreamRequestRefused: ``ResourceNotFound``.
        """
        with self._store.transaction(readonly=True) as uow:
            row = uow.streams.get(stream_id)
        if row is None:
            raise StreamRequestRefused(StreamErrorCode.RESOURCE_NOT_FOUND,
                                       f"Stream {stream_id} does not exist", client_token)
        return self._stream(row)

    def read_blocks(self, stream_id: str, request: GetStreamRequest
                    ) -> list[tuple[int, bytes]]:
        """The blocks a device's ``get`` asks for: (block id, bytes) pairs.

        :raises StreamRequestRefused: ``ResourceNotFound`` (no such stream, file id, file
            or block), ``VersionMismatch``, ``ETagMismatch`` (the file changed since the
            stream recorded it), ``OffsetOutOfBounds``.
        """
        token = request.client_token
        with self._store.transaction(readonly=True) as uow:
            row = uow.streams.get(stream_id)
            item = None if row is None else next(
                (f for f in row.files if f.file_id == request.file_id), None)
            current = None if item is None else uow.files.get(item.key)
        if row is None:
            raise StreamRequestRefused(StreamErrorCode.RESOURCE_NOT_FOUND,
                                       f"Stream {stream_id} does not exist", token)
        if request.stream_version is not None and request.stream_version != row.version:
            raise StreamRequestRefused(StreamErrorCode.VERSION_MISMATCH,
                                       f"Stream {stream_id} is at version {row.version}, not "
                                       f"{request.stream_version}", token)
        if item is None:
            raise StreamRequestRefused(StreamErrorCode.RESOURCE_NOT_FOUND,
                                       f"Stream {stream_id} has no file {request.file_id}",
                                       token)
        if current is None:
            raise StreamRequestRefused(StreamErrorCode.RESOURCE_NOT_FOUND,
                                       f"File {request.file_id} of stream {stream_id} no "
                                       "longer exists", token)
        if current.sha256 != item.sha256:
            raise StreamRequestRefused(StreamErrorCode.ETAG_MISMATCH,
                                       f"File {request.file_id} of stream {stream_id} changed "
                                       "since the stream was made", token)
        block_ids = plan_blocks(request, item.size)
        try:
            blocks = self._files.read_blocks(item.key, request.block_size, block_ids)
        except FilesError:
            raise StreamRequestRefused(StreamErrorCode.RESOURCE_NOT_FOUND,
                                       f"File {request.file_id} of stream {stream_id} no "
                                       "longer exists", token) from None
        return list(zip(block_ids, blocks, strict=True))
