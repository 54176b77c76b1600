"""Bastion's file service over HTTPS: the operator's REST calls and the devices' uploads.

Theory of operation
-------------------
Four requests besides the presigned download (``GET /_bastion/files/<name>?…``, in
:mod:`._app`):

* ``PUT /_bastion/files/<name>[?overwrite=true]`` — the operator uploads (SigV4; roles
  ``admin`` and ``operator``). The body is streamed to disk (:class:`~bastion.files.FileWriter`),
  so the signature cannot cover it as it is read: the request must sign its SHA-256 in
  ``x-amz-content-sha256`` (as S3 clients do), and the bytes received are stored only if
  they hash to it.
* ``GET /_bastion/files[?thingName=…&maxResults=…&nextToken=…]`` — the files, with the
  job execution behind each one a device uploaded (SigV4; every role, ``auditor``
  included).
* ``DELETE /_bastion/files/<name>`` — (SigV4; ``admin`` and ``operator``).
* ``PUT /_bastion/uploads/<jobId>/<thing>/<executionNumber>?…`` — a device uploads with
  the single-use URL its job document gave it (no SigV4: the URL's signature is the
  authorization, see :mod:`bastion.files`). 403 for a bad, expired or used URL, 413 past
  its size limit.

Uploads are refused before their body is read when the declared ``content-length`` is
over the limit (or the name is bad, or taken without ``overwrite``), and stopped at the
limit otherwise; one takes at most ten minutes. A refused upload stores nothing. The
trail records each call as service ``files`` (``PutFile``, ``ListFiles``, ``DeleteFile``,
``UploadDeviceFile``).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final, Protocol

from bastion.files import (
    FILES_PATH,
    UPLOADS_PATH,
    FilesError,
    FileService,
    FileTooLargeError,
    FileWriter,
    InvalidFileError,
    check_file_name,
)

from ._auth import OUTCOME_DENIED, OUTCOME_ERROR, Caller, role_allows
from ._errors import ApiError, access_denied, request_timeout
from ._serialize import JSON_CONTENT_TYPE, Response
from ._sigv4 import HttpRequest, SigV4Authorization, parse_authorization

FILES_SERVICE: Final = "files"
LIST_PATH: Final = FILES_PATH.rstrip("/")
_CHUNK_TIMEOUT: Final = 30.0
_UPLOAD_DEADLINE: Final = 600.0

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Authenticate = Callable[..., Awaitable[Caller]]


class CallRecord(Protocol):
    """What the trail learns about the request (the application's ``_Call``)."""

    access_key_id: str
    caller: Caller | None
    service: str
    operation: str
    parameters: Any
    outcome: str


class Disconnected(Exception):
    """The client went away before its body was in."""


def is_files_request(request: HttpRequest) -> bool:
    return request.raw_path == LIST_PATH or request.raw_path.startswith(
        (FILES_PATH, UPLOADS_PATH))


def is_streamed_upload(request: HttpRequest) -> bool:
    """A ``PUT`` whose body the door reads itself (before the application would)."""
    return request.method == "PUT" and request.raw_path.startswith((FILES_PATH, UPLOADS_PATH))


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        try:
            async with asyncio.timeout(_CHUNK_TIMEOUT):
                message = await receive()
        except TimeoutError:
            raise request_timeout(f"No part of the body came within {_CHUNK_TIMEOUT:g} "
                                  "seconds") from None
        if message["type"] == "http.disconnect":
            raise Disconnected
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _json(status: int, body: object) -> Response:
    return Response(status, (("content-type", JSON_CONTENT_TYPE),),
                    json.dumps(body, separators=(",", ":")).encode())


class FilesDoor:
    """Serves the file requests (see the module docstring).

    :param files: the file service.
    :param authenticate: the application's SigV4 check (``streamed_body`` keyword).
    """

    def __init__(self, files: FileService, authenticate: Authenticate) -> None:
        self._files = files
        self._authenticate = authenticate

    async def _caller(self, request: HttpRequest, call: CallRecord, source_ip: str,
                      operation: str, *, streamed_body: bool = False) -> Caller:
        auth: SigV4Authorization = parse_authorization(request)
        call.access_key_id = auth.credential.access_key_id
        caller = await self._authenticate(request, auth, source_ip,
                                          streamed_body=streamed_body)
        call.caller = caller
        call.outcome = OUTCOME_ERROR
        if not role_allows(caller.role, FILES_SERVICE, operation):
            call.outcome = OUTCOME_DENIED
            raise access_denied(f"User: {caller.access_key_id} (role {caller.role.value}) is "
                                f"not authorized to perform: {FILES_SERVICE}:{operation}")
        return caller

    # -- PUT (the body streamed) -----------------------------------------------------

    async def receive(self, request: HttpRequest, receive: Receive, call: CallRecord,
                      source_ip: str) -> Response:
        """A streamed ``PUT``.

        :raises ServiceError: refused (the body may be unread: close the connection).
        :raises Disconnected: the client went away.
        """
        files = self._files
        call.service = FILES_SERVICE
        if request.raw_path.startswith(UPLOADS_PATH):
            call.operation = "UploadDeviceFile"
            call.parameters = {"path": request.raw_path}
            call.outcome = OUTCOME_ERROR
            try:
                target = await asyncio.to_thread(files.upload_target, request.raw_path,
                                                 request.raw_query)
            except FilesError as error:
                if error.http_status == 403:
                    call.outcome = OUTCOME_DENIED
                raise
            writer = await self._receive_body(request, receive, target.max_bytes)
            upload = await asyncio.to_thread(files.finish_upload, target, writer)
            return _json(200, {"name": upload.file_name, "size": upload.size,
                               "sha256": upload.sha256, "jobId": upload.job_id,
                               "thingName": upload.thing_name,
                               "executionNumber": upload.execution_number})
        call.operation = "PutFile"
        name = urllib.parse.unquote(request.raw_path[len(FILES_PATH):])
        query = urllib.parse.parse_qs(request.raw_query)
        overwrite = query.get("overwrite", ["false"])[-1].lower() == "true"
        call.parameters = {"name": name, "overwrite": overwrite}
        await self._caller(request, call, source_ip, "PutFile", streamed_body=True)
        check_file_name(name)  # refused before the body is read: a bad name, a file
        if not overwrite and await asyncio.to_thread(self._exists, name):  # not to replace
            raise InvalidFileError(f"File {name} exists (overwrite=true to replace it)")
        claimed = (request.header("x-amz-content-sha256") or "").strip().lower()
        writer = await self._receive_body(request, receive)
        if writer.sha256 != claimed:
            writer.discard()
            raise ApiError("InvalidSignatureException", 403,
                           "The body received is not the one whose SHA-256 was signed")
        row = await asyncio.to_thread(files.store_written, name, writer, overwrite=overwrite)
        return _json(200, {"name": row.name, "size": row.size, "sha256": row.sha256})

    async def _receive_body(self, request: HttpRequest, receive: Receive,
                            max_bytes: int | None = None) -> FileWriter:
        writer = await asyncio.to_thread(self._files.writer, *(
            () if max_bytes is None else (max_bytes,)))
        declared = request.header("content-length")
        try:
            if declared is not None and declared.strip().isdigit() \
                    and int(declared) > writer.max_bytes:
                raise FileTooLargeError(f"The upload exceeds its limit of {writer.max_bytes} "
                                        "bytes")
            async with asyncio.timeout(_UPLOAD_DEADLINE):
                async for chunk in _chunks(receive):
                    await asyncio.to_thread(writer.write, chunk)
        except TimeoutError:
            writer.discard()
            raise request_timeout(f"The upload took longer than {_UPLOAD_DEADLINE:g} "
                                  "seconds") from None
        except BaseException:
            writer.discard()
            raise
        return writer

    def _exists(self, name: str) -> bool:
        try:
            self._files.describe(name)
        except FilesError:
            return False
        return True

    # -- GET (list) and DELETE ---------------------------------------------------------

    async def serve(self, request: HttpRequest, call: CallRecord, source_ip: str) -> Response:
        """``GET /_bastion/files`` or ``DELETE /_bastion/files/<name>``.

        :raises ServiceError: refused.
        """
        call.service = FILES_SERVICE
        if request.method == "GET" and request.raw_path == LIST_PATH:
            call.operation = "ListFiles"
            query = {key: values[-1] for key, values in
                     urllib.parse.parse_qs(request.raw_query).items()}
            call.parameters = query
            await self._caller(request, call, source_ip, "ListFiles")
            raw_max = query.get("maxResults")
            if raw_max is not None and not raw_max.isdigit():
                raise InvalidFileError("maxResults must be a number")
            found, token = await asyncio.to_thread(
                self._files.list_files, max_results=None if raw_max is None else int(raw_max),
                next_token=query.get("nextToken"), thing_name=query.get("thingName"))
            listed = []
            for row, upload in found:
                item: dict[str, Any] = {"name": row.name, "size": row.size,
                                        "sha256": row.sha256,
                                        "lastModifiedDate": row.last_modified_date.isoformat()}
                if upload is not None:
                    item.update({"thingName": upload.thing_name, "jobId": upload.job_id,
                                 "executionNumber": upload.execution_number})
                listed.append(item)
            body: dict[str, Any] = {"files": listed}
            if token:
                body["nextToken"] = token
            return _json(200, body)
        if request.method == "DELETE" and request.raw_path.startswith(FILES_PATH):
            call.operation = "DeleteFile"
            name = urllib.parse.unquote(request.raw_path[len(FILES_PATH):])
            call.parameters = {"name": name}
            await self._caller(request, call, source_ip, "DeleteFile")
            await asyncio.to_thread(self._files.delete, name)
            return _json(200, {})
        raise ApiError("MethodNotAllowedException", 405,
                       "Files: PUT or DELETE /_bastion/files/<name>, GET /_bastion/files, "
                       "or GET a presigned URL")
