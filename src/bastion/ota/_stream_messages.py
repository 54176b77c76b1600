"""The messages of MQTT-based file delivery (AWS IoT's streams topics): pure.

Theory of operation
-------------------
A device reads a stream's files in blocks over
``$aws/things/<thing>/streams/<streamId>/<request>/<json|cbor>``:

* ``describe`` → ``description``: ``{"c", "s": version, "d": description,
  "r": [{"f": fileId, "z": size}, …]}``;
* ``get`` → one ``data`` message per block: ``{"c", "f": fileId, "l": size of this
  block, "i": block id, "p": the bytes}`` — base64 text in JSON, a byte string in CBOR;
* a refused request → ``rejected``: ``{"o": code, "m": message, "c"}``.

Every short key is AWS's. A get request (:func:`parse_get_request`) names the file
(``f``, 0–255), the block size (``l``, 256–131072 bytes), the first block (``o``,
0–98304, default 0) and either a count (``n``, 0–98304, default 131072 / ``l``) or a
bitmap (``b``) of wanted blocks counted from ``o`` — bit *k* is ``1 << (k % 8)`` of byte
*k* // 8, the bytes as hexadecimal text in JSON (``"0x130080"``) or a byte string in
CBOR, under 12288 bytes; with a bitmap, ``n`` caps how many of its blocks come back.
One request yields at most 128 KB of blocks (:data:`MAX_BYTES_PER_REQUEST`): a device
asking for more gets the first ones and asks again, as AWS documents.

:func:`plan_blocks` turns a request and the file's size into the block ids to send;
bits past the end of the file are ignored (a bitmap is whole bytes), a request that
names no block of the file is refused. The encoders take values and return the payload
in the request's format. Nothing here reads a file, a clock or the store.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import cbor2

MIN_BLOCK_SIZE: Final = 256
MAX_BLOCK_SIZE: Final = 131_072
MAX_BYTES_PER_REQUEST: Final = 131_072
MAX_OFFSET: Final = 98_304
MAX_BLOCK_COUNT: Final = 98_304
MAX_BITMAP_BYTES: Final = 12_288
MAX_CLIENT_TOKEN_BYTES: Final = 64
MAX_FILE_ID: Final = 255
FORMATS: Final = ("json", "cbor")


class StreamErrorCode(str, Enum):
    """The ``o`` of a ``rejected`` message (AWS's codes)."""

    INVALID_TOPIC = "InvalidTopic"
    INVALID_JSON = "InvalidJson"
    INVALID_CBOR = "InvalidCbor"
    INVALID_REQUEST = "InvalidRequest"
    UNAUTHORIZED = "Unauthorized"
    BLOCK_SIZE_OUT_OF_BOUNDS = "BlockSizeOutOfBounds"
    OFFSET_OUT_OF_BOUNDS = "OffsetOutOfBounds"
    BLOCK_COUNT_LIMIT_EXCEEDED = "BlockCountLimitExceeded"
    BLOCK_BITMAP_LIMIT_EXCEEDED = "BlockBitmapLimitExceeded"
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    VERSION_MISMATCH = "VersionMismatch"
    ETAG_MISMATCH = "ETagMismatch"
    INTERNAL_ERROR = "InternalError"


class StreamRequestRefused(Exception):
    """A streams request refused: the device's fault (or, for ``InternalError``, ours).
    The device sees ``{"o": code, "m": message, "c": client_token}`` on ``…/rejected``.

    :ivar code: the error code. :ivar message: its text.
    :ivar client_token: the request's token, when it was valid (else not echoed).
    """

    def __init__(self, code: StreamErrorCode, message: str,
                 client_token: str | None = None) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.client_token = client_token


@dataclass(frozen=True, slots=True)
class GetStreamRequest:
    """A get request, checked (see the module docstring)."""

    file_id: int
    block_size: int
    offset: int = 0
    count: int | None = None
    bitmap: bytes | None = None
    stream_version: int | None = None
    client_token: str | None = None


# -- decoding --------------------------------------------------------------------------------


def decode_request(payload: bytes, payload_format: str) -> dict[str, Any]:
    """The request's map (an empty payload is an empty request).

    :raises StreamRequestRefused: ``InvalidJson`` / ``InvalidCbor``, or ``InvalidRequest``
        for something other than a map.
    :raises ValueError: ``payload_format`` is neither ``json`` nor ``cbor``.
    """
    if payload_format not in FORMATS:
        raise ValueError(f"payload_format must be json or cbor, not {payload_format!r}")
    if not payload.strip():
        return {}
    if payload_format == "json":
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise StreamRequestRefused(StreamErrorCode.INVALID_JSON,
                                       "The request is not a valid JSON document") from None
    else:
        try:
            data = cbor2.loads(payload)
        except (ValueError, cbor2.CBORDecodeError, RecursionError, MemoryError):
            raise StreamRequestRefused(StreamErrorCode.INVALID_CBOR,
                                       "The request is not a valid CBOR document") from None
    if not isinstance(data, dict):
        raise StreamRequestRefused(StreamErrorCode.INVALID_REQUEST,
                                   "The request must be a map")
    return data


def client_token_of(data: Mapping[Any, Any]) -> str | None:
    """The request's ``c``.

    :raises StreamRequestRefused: ``InvalidRequest``: not text, or longer than 64 bytes.
    """
    token = data.get("c")
    if token is None:
        return None
    if not isinstance(token, str) or len(token.encode("utf-8")) > MAX_CLIENT_TOKEN_BYTES:
        raise StreamRequestRefused(
            StreamErrorCode.INVALID_REQUEST,
            f"c (the client token) must be text of at most {MAX_CLIENT_TOKEN_BYTES} bytes")
    return token


def _integer(data: Mapping[Any, Any], key: str, token: str | None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise StreamRequestRefused(StreamErrorCode.INVALID_REQUEST,
                                   f"{key} must be an integer", token)
    return value


def _bitmap(value: object, token: str | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value[2:] if value[:2].lower() == "0x" else value
        if len(text) % 2:
            text = "0" + text
        try:
            raw = binascii.unhexlify(text)
        except (binascii.Error, ValueError):
            raise StreamRequestRefused(StreamErrorCode.INVALID_REQUEST,
                                       "b (the bitmap) must be hexadecimal", token) from None
    else:
        raise StreamRequestRefused(StreamErrorCode.INVALID_REQUEST,
                                   "b (the bitmap) must be hexadecimal text or bytes", token)
    if len(raw) >= MAX_BITMAP_BYTES:
        raise StreamRequestRefused(StreamErrorCode.BLOCK_BITMAP_LIMIT_EXCEEDED,
                                   f"The bitmap must be under {MAX_BITMAP_BYTES} bytes", token)
    return raw


def parse_get_request(data: Mapping[Any, Any]) -> GetStreamRequest:
    """Check a get request's fields and bounds.

    :raises StreamRequestRefused: ``InvalidRequest`` (a missing or mistyped field, a file
        id out of 0–255), ``BlockSizeOutOfBounds``, ``OffsetOutOfBounds``,
        ``BlockCountLimitExceeded``, ``BlockBitmapLimitExceeded``.
    """
    token = client_token_of(data)
    file_id = _integer(data, "f", token)
    if file_id is None or not 0 <= file_id <= MAX_FILE_ID:
        raise StreamRequestRefused(StreamErrorCode.INVALID_REQUEST,
                                   f"f (the file id) must be an integer from 0 to {MAX_FILE_ID}",
                                   token)
    block_size = _integer(data, "l", token)
    if block_size is None or not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise StreamRequestRefused(StreamErrorCode.BLOCK_SIZE_OUT_OF_BOUNDS,
                                   f"l (the block size) must be from {MIN_BLOCK_SIZE} to "
                                   f"{MAX_BLOCK_SIZE} bytes", token)
    offset = _integer(data, "o", token)
    if offset is not None and not 0 <= offset <= MAX_OFFSET:
        raise StreamRequestRefused(StreamErrorCode.OFFSET_OUT_OF_BOUNDS,
                                   f"o (the block offset) must be from 0 to {MAX_OFFSET}", token)
    count = _integer(data, "n", token)
    if count is not None and not 0 <= count <= MAX_BLOCK_COUNT:
        raise StreamRequestRefused(StreamErrorCode.BLOCK_COUNT_LIMIT_EXCEEDED,
                                   f"n (the number of blocks) must be from 0 to "
                                   f"{MAX_BLOCK_COUNT}", token)
    version = _integer(data, "s", token)
    return GetStreamRequest(file_id=file_id, block_size=block_size, offset=offset or 0,
                            count=count or None, bitmap=_bitmap(data.get("b"), token),
                            stream_version=version, client_token=token)


def plan_blocks(request: GetStreamRequest, file_size: int) -> list[int]:
    """The ids of the blocks to send for ``request`` from a file of ``file_size`` bytes,
    in order: at most 128 KB of them, never past the end of the file.

    :raises StreamRequestRefused: ``OffsetOutOfBounds`` (the offset is past the file's
        last block), ``ResourceNotFound`` (the bitmap names no block of the file).
    :raises ValueError: a negative ``file_size``.
    """
    if file_size < 0:
        raise ValueError("file_size must not be negative")
    blocks_in_file = max(1, -(-file_size // request.block_size))  # an empty file: one block
    token = request.client_token
    if request.offset >= blocks_in_file:
        raise StreamRequestRefused(StreamErrorCode.OFFSET_OUT_OF_BOUNDS,
                                   f"Block {request.offset} is past the end of the file "
                                   f"({blocks_in_file} blocks of {request.block_size} bytes)",
                                   token)
    limit = MAX_BYTES_PER_REQUEST // request.block_size
    if request.count is not None:
        limit = min(limit, request.count)
    if request.bitmap is None:
        return list(range(request.offset, min(request.offset + limit, blocks_in_file)))
    wanted: list[int] = []
    for index, byte in enumerate(request.bitmap):
        if not byte:
            continue
        for bit in range(8):
            if byte & (1 << bit):
                block = request.offset + index * 8 + bit
                if block >= blocks_in_file:
                    break
                wanted.append(block)
                if len(wanted) == limit:
                    return wanted
    if not wanted:
        raise StreamRequestRefused(StreamErrorCode.RESOURCE_NOT_FOUND,
                                   "The bitmap names no block of the file", token)
    return wanted


# -- encoding --------------------------------------------------------------------------------


def encode(document: Mapping[str, Any], payload_format: str) -> bytes:
    """``document`` as the payload of ``payload_format``. In JSON, bytes become base64
    text (the block payload ``p``); CBOR keeps them as a byte string.

    :raises ValueError: ``payload_format`` is neither ``json`` nor ``cbor``.
    """
    if payload_format == "cbor":
        return bytes(cbor2.dumps(dict(document)))
    if payload_format != "json":
        raise ValueError(f"payload_format must be json or cbor, not {payload_format!r}")
    plain = {key: base64.b64encode(value).decode("ascii") if isinstance(value, bytes)
             else value for key, value in document.items()}
    return json.dumps(plain, separators=(",", ":")).encode("utf-8")


def _with_token(document: dict[str, Any], client_token: str | None) -> dict[str, Any]:
    if client_token is not None:
        document = {"c": client_token, **document}
    return document


def data_message(*, file_id: int, block_id: int, data: bytes,
                 client_token: str | None) -> dict[str, Any]:
    """One block on ``…/data/<format>`` (``l`` is this block's size)."""
    return _with_token({"f": file_id, "l": len(data), "i": block_id, "p": data},
                       client_token)


def description_message(*, version: int, description: str | None,
                        files: Sequence[tuple[int, int]],
                        client_token: str | None) -> dict[str, Any]:
    """The answer on ``…/description/<format>``; ``files`` are (file id, size) pairs."""
    document: dict[str, Any] = {"s": version}
    if description is not None:
        document["d"] = description
    document["r"] = [{"f": file_id, "z": size} for file_id, size in files]
    return _with_token(document, client_token)


def rejection_message(refused: StreamRequestRefused) -> dict[str, Any]:
    """The answer on ``…/rejected/<format>``."""
    document: dict[str, Any] = {"o": refused.code.value, "m": refused.message}
    if refused.client_token is not None:
        document["c"] = refused.client_token
    return document
