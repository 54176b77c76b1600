"""Redaction of request parameters, checked over every operation of the AWS models.

For each input member of ``iot``, ``iot-data`` and ``iot-jobs-data`` the botocore models
define, a request is built with every member filled. Members named like a secret
(``*[Pp]rivate[Kk]ey*``, ``*[Ss]ecret*``, ``*[Pp]assword*``, ``*[Tt]oken*`` except the
pagination ``nextToken``) and the CSR get a unique canary value that must not survive
redaction; every other leaf value must survive it (redaction that hides everything would
pass the first check).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bastion.pki import Keystore
from bastion.store import Store
from bastion.trail import REDACTED, Trail, TrailKeys, is_secret_name, redact

botocore_session = pytest.importorskip("botocore.session")

SERVICES = ("iot", "iot-data", "iot-jobs-data")
MUST_HIDE = re.compile(r"[Pp]rivate[Kk]ey|[Ss]ecret|[Pp]assword|[Tt]oken")
PAGINATION = {"nextToken"}
CSR_MEMBERS = {"certificateSigningRequest"}
MAX_DEPTH = 7

_counter = itertools.count()


def must_hide(name: str) -> bool:
    return name not in PAGINATION and (bool(MUST_HIDE.search(name)) or name in CSR_MEMBERS)


class Sample:
    """A filled-in request and the leaf values that must, or must not, survive."""

    def __init__(self) -> None:
        self.canaries: list[str] = []
        self.kept: list[str] = []

    def build(self, shape: Any, depth: int, hidden: bool, dropped: bool) -> Any:
        kind = shape.type_name
        if kind == "structure":
            if depth > MAX_DEPTH:
                return {}
            out = {}
            for name, member in shape.members.items():
                secret = must_hide(name)
                out[name] = self.build(member, depth + 1, hidden or secret,
                                       dropped or secret or is_secret_name(name))
            return out
        if kind == "list":
            return [] if depth > MAX_DEPTH else [self.build(shape.member, depth + 1, hidden,
                                                            dropped)]
        if kind == "map":
            return {} if depth > MAX_DEPTH else {
                f"key{next(_counter)}": self.build(shape.value, depth + 1, hidden, dropped)}
        if kind == "string":
            if shape.enum:
                value = shape.enum[0]
                if not dropped:
                    self.kept.append(json.dumps(value))
                return value
            if hidden:
                value = f"CANARY-{next(_counter)}-SECRET"
                self.canaries.append(value)
                return value
            value = f"value-{next(_counter)}"
            if not dropped:
                self.kept.append(json.dumps(value))
            return value
        if kind == "blob":
            value = f"CANARY-{next(_counter)}-BLOB"
            self.canaries.append(value)
            return value.encode()
        if kind in ("integer", "long"):
            return 7
        if kind in ("float", "double"):
            return 1.5
        if kind == "boolean":
            return True
        if kind == "timestamp":
            return datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        raise AssertionError(f"unexpected shape type {kind}")


SESSION = botocore_session.get_session()
MODELS = {service: SESSION.get_service_model(service) for service in SERVICES}


def operations() -> Iterator[tuple[str, str]]:
    for service in SERVICES:
        model = MODELS[service]
        for name in model.operation_names:
            if model.operation_model(name).input_shape is not None:
                yield service, name


ALL_OPERATIONS = list(operations())
KEEP_ONLY = {("iot", "TestInvokeAuthorizer")}  # everything but the authorizer is credentials


def test_the_models_were_found() -> None:
    assert len(ALL_OPERATIONS) > 250
    assert ("iot", "CreateCertificateFromCsr") in ALL_OPERATIONS
    assert ("iot-data", "Publish") in ALL_OPERATIONS


@pytest.mark.parametrize(("service", "operation"), ALL_OPERATIONS,
                         ids=[f"{s}:{o}" for s, o in ALL_OPERATIONS])
def test_every_operation_is_redacted(service: str, operation: str) -> None:
    model = MODELS[service]
    sample = Sample()
    params = sample.build(model.operation_model(operation).input_shape, 0, False, False)
    redacted = redact(service, operation, params)
    text = json.dumps(redacted)  # JSON-safe
    leaked = [canary for canary in sample.canaries if canary in text]
    assert leaked == []
    if (service, operation) not in KEEP_ONLY:
        lost = [value for value in sample.kept if value not in text]
        assert lost == []


def test_secret_members_of_the_models_are_all_recognised() -> None:
    """The brief's patterns are a subset of what the redactor treats as secret."""
    names: set[str] = set()

    def walk(shape: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if shape.type_name == "structure":
            for name, member in shape.members.items():
                names.add(name)
                walk(member, depth + 1)
        elif shape.type_name == "list":
            walk(shape.member, depth + 1)
        elif shape.type_name == "map":
            walk(shape.value, depth + 1)

    for service, operation in ALL_OPERATIONS:
        walk(MODELS[service].operation_model(operation).input_shape, 0)
    secret = {name for name in names if must_hide(name) and name not in CSR_MEMBERS}
    assert {"password", "secretKey", "token", "tokenSignature", "clientToken"} <= secret
    assert all(is_secret_name(name) for name in secret)
    assert not is_secret_name("nextToken")
    assert not any(is_secret_name(n) for n in ("thingName", "certificateId", "policyDocument",
                                               "certificatePem", "caCertificate"))


# -- the rules one by one ---------------------------------------------------------------

PRIVATE_KEY = ("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"
               "\n-----END PRIVATE KEY-----\n")
CSR = ("-----BEGIN CERTIFICATE REQUEST-----\nMIIBDjCBtQIBADAUMRIwEAYDVQQDDAlkZXZpY2UtMQ=="
       "\n-----END CERTIFICATE REQUEST-----\n")


def test_csr_keeps_only_length_and_fingerprint() -> None:
    out = redact("iot", "CreateCertificateFromCsr",
                 {"certificateSigningRequest": CSR, "setAsActive": True})
    text = out["certificateSigningRequest"]
    assert "MIIBDjCB" not in text and "BEGIN" not in text
    assert re.fullmatch(rf"\[CSR: {len(CSR)} characters, sha256 [0-9a-f]{{64}}\]", text)
    assert out["setAsActive"] is True


def test_pem_private_keys_are_redacted_wherever_they_are() -> None:
    out = redact("iot", "UpdateThing", {"thingName": "t", "attributePayload": {
        "attributes": {"note": PRIVATE_KEY, "csr": CSR, "other": "fine"}}})
    attributes = out["attributePayload"]["attributes"]
    assert attributes["note"] == REDACTED
    assert attributes["csr"].startswith("[CSR: ")
    assert attributes["other"] == "fine"
    nested = redact("iot", "X", {"list": [[{"deep": "x " + PRIVATE_KEY}]]})
    assert "BEGIN" not in json.dumps(nested)


@pytest.mark.parametrize("name", [
    "privateKey", "PrivateKey", "private_key", "keyPair", "KeyPair", "secretAccessKey",
    "SecretAccessKey", "aws_secret_access_key", "password", "Password", "sasl.plain.password",
    "ssl.keystore.password", "ssl.keystore", "token", "sessionToken", "Authorization",
    "Cookie", "x-api-key", "credentials",
])
def test_secret_names_are_redacted_at_any_depth(name: str) -> None:
    value = {"a": "CANARY", "b": [b"CANARY"]}
    out = redact("iot", "CreateTopicRule", {"ruleName": "r", "nested": {"deeper": [
        {name: "CANARY"}, {name: value}]}})
    assert "CANARY" not in json.dumps(out)
    assert out["ruleName"] == "r"


def test_header_pairs_hide_secret_values_only() -> None:
    out = redact("iot", "CreateTopicRule", {"topicRulePayload": {"actions": [{"http": {
        "url": "https://example.com",
        "headers": [{"key": "Authorization", "value": "Bearer CANARY"},
                    {"key": "x-api-key", "value": "CANARY"},
                    {"key": "content-type", "value": "application/json"}]}}]}})
    headers = out["topicRulePayload"]["actions"][0]["http"]["headers"]
    assert headers == [{"key": "Authorization", "value": REDACTED},
                       {"key": "x-api-key", "value": REDACTED},
                       {"key": "content-type", "value": "application/json"}]


def test_pagination_tokens_are_kept() -> None:
    assert redact("iot", "ListThings", {"nextToken": "abc", "maxResults": 5}) == {
        "nextToken": "abc", "maxResults": 5}


def test_test_invoke_authorizer_keeps_only_the_authorizer() -> None:
    out = redact("iot", "TestInvokeAuthorizer", {
        "authorizerName": "auth", "token": "CANARY", "tokenSignature": "CANARY",
        "httpContext": {"headers": {"x": "CANARY"}, "queryString": "k=CANARY"},
        "mqttContext": {"username": "CANARY", "password": b"CANARY", "clientId": "c"},
        "tlsContext": {"serverName": "example.com"}})
    assert "CANARY" not in json.dumps(out)
    assert out["authorizerName"] == "auth"
    assert out["tlsContext"] == {"serverName": "example.com"}


def test_values_are_made_json_safe_and_bounded() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "CANARY"

    out = redact("iot-data", "Publish", {
        "topic": "a/b", "payload": b"\x00\x01CANARY", "qos": 1, "retain": False,
        "when": datetime(2025, 1, 1, tzinfo=UTC), "ratio": float("nan"), "obj": Opaque(),
        "long": "x" * 20000, "many": list(range(1500)), "tuple": (1, 2), "none": None})
    text = json.dumps(out, allow_nan=False)
    assert "CANARY" not in text
    assert out["payload"].startswith("[bytes: 8 bytes, sha256 ")
    assert out["when"] == "2025-01-01T00:00:00+00:00"
    assert out["ratio"] == "nan" and out["obj"] == "<Opaque>"
    assert len(out["long"]) < 17000 and "TRUNCATED" in out["long"]
    assert len(out["many"]) == 1001 and out["tuple"] == [1, 2] and out["none"] is None
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(50):
        cursor["d"] = {}
        cursor = cursor["d"]
    assert "TOO DEEP" in json.dumps(redact("iot", "X", deep))
    with pytest.raises(TypeError):
        redact("iot", "X", [("a", 1)])  # type: ignore[arg-type]


def test_the_trail_stores_only_redacted_parameters(store: Store) -> None:
    trail = Trail(store, TrailKeys.from_keystore(Keystore.generate()))
    trail.record(caller=None, access_key_id="AKIAEXAMPLEEXAMPLE00", source_ip="127.0.0.1",
                 service="iot", operation="CreateCertificateFromCsr",
                 parameters={"certificateSigningRequest": CSR, "privateKey": PRIVATE_KEY,
                             "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
                 outcome="denied", error_code="AccessDeniedException", http_status=403)
    exported = json.dumps(list(trail.export()))
    for secret in ("MIIBDjCB", "MIGHAgEA", "wJalrXUtnFEMI"):
        assert secret not in exported
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT parameters FROM trail_records").scalar_one()
    assert "MIIBDjCB" not in stored and "MIGHAgEA" not in stored
