"""Refused requests land in the real, keyed trail: a body too large (413), a bad
signature, an expired one, an unknown key, a missing signature and a request h11 cannot
parse (uvicorn's 400) each leave a record with what is known of the caller, and the trail
still verifies intact."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bastion.api import Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, MQTTConfig
from bastion.datadir import DataDir, init_data_dir
from bastion.store import Store
from bastion.trail import TrailKeys, export, verify
from support.clients import wait_for
from support.running import RunningBastion

from .conftest import KEYS, NO_RETRIES, REGION
from .test_hardening import connect, parse, until_closed
from .test_security import raw, signing_clock

MAX_BODY_BYTES = 2 * 1024 * 1024  # the API's default cap (bastion.api._app)


@dataclass
class TrailedBastion:
    running: RunningBastion
    url: str
    datadir: DataDir
    store: Store

    def client(self, service: str, key: tuple[str, str]) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key[0], aws_secret_access_key=key[1],
                            verify=str(self.datadir.ca_cert_path), config=NO_RETRIES)

    @property
    def verify(self) -> str:
        return str(self.datadir.ca_cert_path)

    def records(self) -> list[dict[str, Any]]:
        return list(export(self.store))

    def keys(self) -> TrailKeys:
        return TrailKeys.from_keystore(self.datadir.open_keystore())


@pytest.fixture(scope="module")
def bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailedBastion]:
    """A Bastion whose API records into its store's trail (no trail override)."""
    datadir = init_data_dir(tmp_path_factory.mktemp("trail") / "data")
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(host="127.0.0.1", port=0))
    credentials = StaticCredentials({key_id: (secret, Role(role))
                                     for role, (key_id, secret) in KEYS.items()})
    running = RunningBastion(config, datadir, credentials=credentials).start()
    store = Store.for_sqlite_file(datadir.db_path)
    try:
        api = running.app.api
        assert api is not None
        yield TrailedBastion(running, api.url, datadir, store)
    finally:
        running.stop()
        store.close()


def _new_records(bastion: TrailedBastion, before: int) -> list[dict[str, Any]]:
    return bastion.records()[before:]


def test_a_body_too_large_is_trailed(bastion: TrailedBastion) -> None:
    before = len(bastion.records())
    iot_data = bastion.client("iot-data", KEYS["operator"])
    with pytest.raises(ClientError) as caught:
        iot_data.publish(topic="big/one", payload=b"x" * (MAX_BODY_BYTES + 1))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    [record] = _new_records(bastion, before)
    assert record["http_status"] == 413
    assert record["error_code"] == "RequestEntityTooLargeException"
    assert record["outcome"] == "denied" and record["role"] is None  # not authenticated
    assert record["access_key_id"] == KEYS["operator"][0]
    assert (record["service"], record["operation"]) == ("iot-data", "Publish")
    assert record["source_ip"] == "127.0.0.1"
    assert record["parameters"] == {"contentLength": str(MAX_BODY_BYTES + 1)}
    assert verify(bastion.store, bastion.keys()).ok


def test_a_bad_signature_is_trailed(bastion: TrailedBastion) -> None:
    before = len(bastion.records())
    key_id = KEYS["admin"][0]
    iot = bastion.client("iot", (key_id, "not-the-secret"))
    with pytest.raises(ClientError) as caught:
        iot.list_things()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    [record] = _new_records(bastion, before)
    assert (record["http_status"], record["error_code"]) == (403, "InvalidSignatureException")
    assert (record["outcome"], record["role"], record["access_key_id"]) == (
        "denied", None, key_id)
    assert (record["service"], record["operation"]) == ("iot", "ListThings")
    assert verify(bastion.store, bastion.keys()).ok


def test_an_unknown_key_and_a_missing_signature_are_trailed(bastion: TrailedBastion) -> None:
    before = len(bastion.records())
    nobody = bastion.client("iot", ("AKIANOBODY000000000", "whatever"))
    with pytest.raises(ClientError):
        nobody.describe_thing(thingName="x")
    status, _headers, _body = raw(bastion, "GET", "/things")  # type: ignore[arg-type]
    assert status == 403
    unknown, unsigned = _new_records(bastion, before)
    assert (unknown["access_key_id"], unknown["error_code"], unknown["operation"]) == (
        "AKIANOBODY000000000", "UnrecognizedClientException", "DescribeThing")
    assert (unsigned["access_key_id"], unsigned["error_code"], unsigned["outcome"]) == (
        "", "MissingAuthenticationTokenException", "denied")
    assert unsigned["source_ip"] == "127.0.0.1"
    assert verify(bastion.store, bastion.keys()).ok


def test_an_expired_signature_is_trailed(bastion: TrailedBastion) -> None:
    before = len(bastion.records())
    iot = bastion.client("iot", KEYS["operator"])
    with signing_clock(timedelta(minutes=-6)), pytest.raises(ClientError) as caught:
        iot.create_thing(thingName="signed-too-long-ago")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    [record] = _new_records(bastion, before)
    assert (record["outcome"], record["role"], record["access_key_id"]) == (
        "denied", None, KEYS["operator"][0])
    assert (record["http_status"], record["error_code"]) == (403, "InvalidSignatureException")
    assert (record["service"], record["operation"]) == ("iot", "CreateThing")
    assert verify(bastion.store, bastion.keys()).ok


@pytest.mark.parametrize(("sent", "reason"), [
    (b"\x16\x03 not HTTP at all\r\n\r\n", "illegal request line"),
    ((b"POST /things/x HTTP/1.1\r\nHost: bastion\r\nContent-Length: 11\r\n"
      b"x-amz-security-token secret-token\r\n\r\nsecret-body"), "illegal header line"),
    (b"GET /things HTTP/1.1\r\n\r\n", "Missing mandatory Host: header"),
], ids=["request-line", "header-line", "no-host"])
def test_a_request_h11_cannot_parse_is_trailed(bastion: TrailedBastion, sent: bytes,
                                               reason: str) -> None:
    before = len(bastion.records())
    with connect(bastion) as sock:  # type: ignore[arg-type]
        sock.sendall(sent)
        answer = parse(until_closed(sock, time.monotonic() + 10))
    assert answer.status == 400  # uvicorn's own answer, before any parsing of ours
    wait_for(lambda: len(bastion.records()) > before, what="the refusal's record")
    [record] = _new_records(bastion, before)
    assert (record["outcome"], record["http_status"], record["error_code"]) == (
        "denied", 400, None)
    assert (record["source_ip"], record["access_key_id"], record["role"]) == (
        "127.0.0.1", "", None)
    assert (record["service"], record["operation"]) == ("", "")
    assert record["parameters"] == {"reason": f"Malformed HTTP request: {reason}"}
    assert "secret" not in json.dumps(record)  # neither the header line nor the body
    assert verify(bastion.store, bastion.keys()).ok
