"""The API's front door against hostile clients, over real TLS sockets on loopback.

A slowloris client (headers never finished) and a trickled body are cut within their
configured limits while boto3 keeps working on other connections; one source address
cannot hold more than its share of connections while other addresses are served; a JSON
body nested 100,000 deep is a 400, not a crash. Each refusal is trailed. Timeouts are
short in these servers' configuration; every wait is a deadline (limit + margin), never
a sleep.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from bastion.api import MemoryTrail, TrailRecord
from bastion.config import ApiConfig
from bastion.datadir import init_data_dir
from support.clients import wait_for

from .conftest import KEYS, ApiBastion, _start
from .test_security import raw

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
CAP = 3
MARGIN = 5.0  # scheduling slack on a loaded machine; the limits are what is asserted

Unique = Callable[[str], str]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _serve(tmp_path_factory: pytest.TempPathFactory, name: str,
           api: ApiConfig) -> Iterator[ApiBastion]:
    datadir = init_data_dir(tmp_path_factory.mktemp(name) / "data")
    trail = MemoryTrail()
    running = _start(datadir, api, trail)
    try:
        server = running.app.api
        assert server is not None
        yield ApiBastion(running, trail, server.url, datadir, str(datadir.ca_cert_path))
    finally:
        running.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiBastion]:
    """Short header and body timeouts."""
    yield from _serve(tmp_path_factory, "strict", ApiConfig(
        host="127.0.0.1", port=0, header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT))


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiBastion]:
    """A few connections per source address; timeouts long enough to hold them."""
    yield from _serve(tmp_path_factory, "capped", ApiConfig(
        host="127.0.0.1", port=0, max_connections_per_source=CAP, header_timeout=60.0))


def connect(api: ApiBastion, source: str = "127.0.0.1") -> ssl.SSLSocket:
    """A TLS connection to the API from ``source`` (any 127.0.0.0/8 address on Linux)."""
    url = urlsplit(api.url)
    assert url.hostname is not None and url.port is not None
    plain = socket.create_connection((url.hostname, url.port), timeout=10,
                                     source_address=(source, 0))
    context = ssl.create_default_context(cafile=str(api.verify))
    return context.wrap_socket(plain, server_hostname=url.hostname)


def receive(sock: ssl.SSLSocket, deadline: float) -> bytes | None:
    """The next bytes, ``b""`` once the server has closed, ``None`` at ``deadline``."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    sock.settimeout(remaining)
    try:
        return sock.recv(65536)
    except TimeoutError:
        return None
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError):
        return b""


def until_closed(sock: ssl.SSLSocket, deadline: float, *,
                 trickle: bytes = b"", every: float = 0.2) -> bytes:
    """Everything the server sends until it closes the connection, sending one byte of
    ``trickle`` every ``every`` seconds meanwhile.

    :raises AssertionError: still open at ``deadline``.
    """
    received = b""
    while True:
        if trickle:
            try:
                sock.sendall(trickle[:1])
                trickle = trickle[1:]
            except (ssl.SSLError, OSError):
                trickle = b""  # closed under us: what remains is to read the answer
        step = min(deadline, time.monotonic() + every) if trickle else deadline
        chunk = receive(sock, step)
        if chunk == b"":
            return received
        if chunk is None:
            if time.monotonic() >= deadline:
                raise AssertionError(f"the server kept the connection open; got {received!r}")
            continue
        received += chunk


def parse(data: bytes) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def exchange(sock: ssl.SSLSocket, request: bytes, deadline: float) -> Answer:
    """Send ``request``, read one response and keep the connection open."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            parse(data).headers.get("content-length", "0")):
        chunk = receive(sock, deadline)
        assert chunk, f"no complete response before the deadline; got {data!r}"
        data += chunk
    return parse(data)


def assert_aws_error(answer: Answer, status: int, error_type: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["x-amzn-errortype"] == error_type
    assert answer.headers["connection"] == "close"
    assert isinstance(answer.json()["message"], str)


UNSIGNED_GET = b"GET /things HTTP/1.1\r\nHost: bastion\r\n\r\n"


def refusals(api: ApiBastion, status: int, source: str = "127.0.0.1") -> list[TrailRecord]:
    """The trail's records of connections refused below the application."""
    return [record for record in api.trail.records
            if record.http_status == status and record.source_ip == source
            and "reason" in record.parameters]


def assert_refusal_record(record: TrailRecord, error_type: str, reason: str) -> None:
    """Trailed as denied, with nothing but the source, the answer and the reason."""
    assert (record.outcome, record.error_code) == ("denied", error_type)
    assert (record.caller, record.access_key_id, record.service, record.operation) == (
        None, "", "", "")
    assert record.parameters == {"reason": reason}


# -- header timeout ---------------------------------------------------------------------


def test_unfinished_headers_are_cut_while_others_are_served(strict: ApiBastion) -> None:
    iot = strict.client()
    trailed = len(refusals(strict, 408))
    started = time.monotonic()
    with connect(strict) as silent, connect(strict) as trickling:
        # ``silent`` never sends a byte; ``trickling`` starts a request, then sends one
        # byte at a time.
        trickling.sendall(b"GET /things HTTP/1.1\r\nHost: bastion\r\n")

        assert "things" in iot.list_things()   # a normal call on its own connection

        deadline = started + HEADER_TIMEOUT + MARGIN
        cut = until_closed(trickling, deadline, trickle=b"X-Slow: " + b"a" * 1000)
        assert b"RequestTimeoutException" in cut or cut == b""  # it may still be sending
        told = parse(until_closed(silent, deadline))
    assert_aws_error(told, 408, "RequestTimeoutException")
    assert "headers" in told.json()["message"]
    assert "things" in iot.list_things()   # and the server is still there
    # Both cuts are in the trail, as refusals of the address.
    wait_for(lambda: len(refusals(strict, 408)) >= trailed + 2, timeout=MARGIN,
             what="the two header timeouts in the trail")
    for record in refusals(strict, 408)[trailed:]:
        assert_refusal_record(record, "RequestTimeoutException",
                              told.json()["message"])


def test_a_kept_alive_connection_gets_a_fresh_header_deadline(strict: ApiBastion) -> None:
    with connect(strict) as sock:
        first = exchange(sock, UNSIGNED_GET, time.monotonic() + MARGIN)
        assert first.status == 403         # answered, not cut: the request was complete
        started = time.monotonic()
        sock.sendall(b"GET /things HTTP/1.1\r\n")  # the next request never finishes
        answer = parse(until_closed(sock, started + HEADER_TIMEOUT + MARGIN))
    assert_aws_error(answer, 408, "RequestTimeoutException")


# -- body timeout -----------------------------------------------------------------------


def test_a_trickled_body_is_answered_408_and_closed(strict: ApiBastion) -> None:
    iot = strict.client()
    with connect(strict) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /things/slow HTTP/1.1\r\nHost: bastion\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        answer = parse(until_closed(sock, started + BODY_TIMEOUT + MARGIN,
                                    trickle=b"{" * 1000))
    assert_aws_error(answer, 408, "RequestTimeoutException")
    assert "body" in answer.json()["message"]
    assert "things" in iot.list_things()
    # The refusal is in the trail, like every other.
    (late,) = [r for r in strict.trail.records if r.error_code == "RequestTimeoutException"
               and r.parameters.get("contentLength") == "1000"]
    assert (late.outcome, late.http_status) == ("denied", 408)


# -- connections per source ---------------------------------------------------------------


def admitted(api: ApiBastion, source: str) -> tuple[ssl.SSLSocket, Answer]:
    """A connection from ``source`` and the answer to an unsigned request on it (403 when
    admitted, 429 when refused)."""
    sock = connect(api, source)
    sock.settimeout(10)
    data = b""
    try:
        sock.sendall(UNSIGNED_GET)
        while b"\r\n\r\n" not in data:
            chunk = receive(sock, time.monotonic() + MARGIN)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, OSError):
        pass  # refused and closed while we were still sending: read what was sent
    if b"\r\n\r\n" not in data:
        data += until_closed(sock, time.monotonic() + MARGIN)
    return sock, parse(data)


def test_one_source_is_capped_while_others_are_served(capped: ApiBastion) -> None:
    held: list[ssl.SSLSocket] = []
    try:
        for _ in range(CAP):
            sock = connect(capped, "127.0.0.2")
            assert exchange(sock, UNSIGNED_GET, time.monotonic() + MARGIN).status == 403
            sock.sendall(b"GET /things HTTP/1.1\r\n")  # hold it (header deadline: 60 s)
            held.append(sock)

        refused = connect(capped, "127.0.0.2")     # the N+1th from the same address
        answer = parse(until_closed(refused, time.monotonic() + MARGIN))
        assert_aws_error(answer, 429, "ThrottlingException")
        assert str(CAP) in answer.json()["message"]
        refused.close()
        wait_for(lambda: refusals(capped, 429, "127.0.0.2"), timeout=MARGIN,
                 what="the refused connection in the trail")
        assert_refusal_record(refusals(capped, 429, "127.0.0.2")[0], "ThrottlingException",
                              answer.json()["message"])

        assert "things" in capped.client().list_things()  # 127.0.0.1 is served
        other, answer = admitted(capped, "127.0.0.3")
        other.close()
        assert answer.status == 403

        held.pop().close()                         # a slot frees once the server sees it
        deadline = time.monotonic() + MARGIN
        while True:
            sock, answer = admitted(capped, "127.0.0.2")
            sock.close()
            if answer.status == 403:
                break
            assert answer.status == 429
            assert time.monotonic() < deadline, "the closed connection was never released"
    finally:
        for sock in held:
            sock.close()


# -- JSON nesting -------------------------------------------------------------------------


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_a_100000_deep_json_body_is_invalid_request(api_bastion: ApiBastion, iot: Any,
                                                    unique: Unique, opener: str) -> None:
    depth = 100_000
    closer = "]" if opener == "[" else "}"
    body = ('{"attributePayload":' + opener * depth + "1" + closer * depth + "}").encode()
    name = unique("deep")
    status, headers, document = raw(api_bastion, "POST", f"/things/{name}", body=body,
                                    sign_as=KEYS["admin"])
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidRequestException")
    assert "at most 64 levels" in document["message"]  # refused before parsing
    assert set(document) == {"message"}

    iot.create_thing(thingName=name)       # the next request is served as usual
    assert iot.describe_thing(thingName=name)["thingName"] == name


def test_a_deep_document_inside_a_string_member_is_invalid_request(
        iot: Any, unique: Unique) -> None:
    # The body is shallow; the job document it carries is not. The jobs service parses
    # it: whatever it raises for the depth, the caller gets a 400, never a 500.
    thing = iot.create_thing(thingName=unique("deepjob"))
    document = '{"a":' + "[" * 15_000 + "]" * 15_000 + "}"
    with pytest.raises(ClientError) as caught:
        iot.create_job(jobId=unique("deepjob"), targets=[thing["thingArn"]],
                       document=document)
    response = caught.value.response
    assert (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]) == (
        400, "InvalidRequestException")
    assert iot.describe_thing(thingName=thing["thingName"])["thingArn"] == thing["thingArn"]
