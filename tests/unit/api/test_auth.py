"""Roles, the in-memory plug-point implementations, the API's safety checks and the
logging options."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from bastion.api import (
    ADMIN_SERVICE,
    ApiConfigError,
    MemoryTrail,
    Role,
    StaticCredentials,
    check_api_config,
    implemented_operations,
    is_loopback,
    role_allows,
)
from bastion.config import ApiConfig
from bastion.logging_options import LoggingOptions, NotConfiguredError
from bastion.store import Store


@pytest.mark.parametrize(("role", "service", "operation", "allowed"), [
    (Role.AUDITOR, "iot", "ListThings", True),
    (Role.AUDITOR, "iot", "DescribeThing", True),
    (Role.AUDITOR, "iot", "GetPolicy", True),
    (Role.AUDITOR, "iot", "GetEffectivePolicies", True),
    (Role.AUDITOR, "iot", "TestAuthorization", True),
    (Role.AUDITOR, "iot-data", "GetRetainedMessage", True),
    (Role.AUDITOR, "iot", "CreateThing", False),
    (Role.AUDITOR, "iot", "AttachPolicy", False),
    (Role.AUDITOR, "iot", "GetRegistrationCode", False),  # creates the code
    (Role.AUDITOR, "iot-data", "Publish", False),
    (Role.AUDITOR, ADMIN_SERVICE, "ListAccessKeys", True),
    (Role.AUDITOR, ADMIN_SERVICE, "CreateAccessKey", False),
    (Role.OPERATOR, "iot", "CreateThing", True),
    (Role.OPERATOR, "iot", "DeleteCACertificate", True),
    (Role.OPERATOR, "iot-data", "Publish", True),
    (Role.OPERATOR, ADMIN_SERVICE, "CreateAccessKey", False),
    (Role.OPERATOR, ADMIN_SERVICE, "ResetEmulator", False),
    (Role.OPERATOR, ADMIN_SERVICE, "ListAccessKeys", True),
    (Role.ADMIN, ADMIN_SERVICE, "CreateAccessKey", True),
    (Role.ADMIN, "iot", "DeleteThing", True),
])
def test_role_allows(role: Role, service: str, operation: str, allowed: bool) -> None:
    assert role_allows(role, service, operation) is allowed


def test_role_allows_needs_a_role() -> None:
    with pytest.raises(TypeError):
        role_allows("admin", "iot", "ListThings")  # type: ignore[arg-type]


def test_another_str_enum_with_the_same_values_is_a_role() -> None:
    class StoredRole(str, Enum):
        ADMIN = "admin"

    assert Role(StoredRole.ADMIN) is Role.ADMIN


def test_static_credentials_and_memory_trail() -> None:
    keys = StaticCredentials({"AK1": ("secret", Role.AUDITOR)})
    assert keys.lookup("AK1") == ("secret", Role.AUDITOR)
    assert keys.lookup("AK2") is None
    assert "secret" not in repr(keys)
    with pytest.raises(TypeError):
        StaticCredentials({"AK1": ("secret", "admin")})  # type: ignore[dict-item]
    trail = MemoryTrail()
    trail.record(caller=None, access_key_id="AK1", source_ip="127.0.0.1", service="iot",
                 operation="CreateThing", parameters={"thingName": "t"}, outcome="denied",
                 error_code="AccessDeniedException", http_status=403)
    [record] = trail.records
    assert (record.operation, record.outcome, record.http_status) == ("CreateThing", "denied",
                                                                      403)
    assert record.parameters == {"thingName": "t"}


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("10.0.0.1", False), ("::", False),
    ("example.com", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plaintext_and_emulator_only_on_loopback() -> None:
    check_api_config(ApiConfig(host="127.0.0.1", plaintext=True, emulator=True))
    check_api_config(ApiConfig(host="0.0.0.0"))
    with pytest.raises(ApiConfigError, match="plain HTTP"):
        check_api_config(ApiConfig(host="0.0.0.0", plaintext=True))
    with pytest.raises(ApiConfigError, match="emulator"):
        check_api_config(ApiConfig(host="192.168.1.10", emulator=True))
    with pytest.raises(ApiConfigError):
        check_api_config(ApiConfig(port=70000))


def test_handlers_exist_for_the_issue_operations() -> None:
    iot = implemented_operations("iot")
    for name in ("CreateThing", "ListThings", "CreateThingGroup", "AddThingToThingGroup",
                 "CreateKeysAndCertificate", "CreateCertificateFromCsr", "RegisterCertificate",
                 "RegisterCACertificate", "GetRegistrationCode", "CreatePolicyVersion",
                 "AttachPolicy", "AttachThingPrincipal", "TestAuthorization",
                 "GetEffectivePolicies", "ListTargetsForPolicy", "DescribeEndpoint",
                 "SetLoggingOptions", "SetV2LoggingOptions"):
        assert name in iot
    assert implemented_operations("iot-data") >= {"Publish", "GetRetainedMessage",
                                                  "ListRetainedMessages"}


@pytest.fixture
def options(tmp_path: Path) -> Iterator[tuple[LoggingOptions, logging.Logger, Store]]:
    store = Store.for_sqlite_file(tmp_path / "db.sqlite")
    logger = logging.getLogger("bastion.test-logging-options")
    logger.setLevel(logging.WARNING)
    try:
        yield LoggingOptions(store, logger), logger, store
    finally:
        store.close()


def test_logging_options_set_levels_and_persist(
        options: tuple[LoggingOptions, logging.Logger, Store]) -> None:
    opts, logger, store = options
    assert opts.get_v1() == {}
    with pytest.raises(NotConfiguredError) as caught:
        opts.get_v2()
    assert (caught.value.aws_error_type, caught.value.http_status) == ("NotConfiguredException", 404)
    with pytest.raises(NotConfiguredError):
        opts.set_level("DEFAULT", None, "DEBUG")
    opts.set_v1("arn:aws:iam::123456789012:role/logs", "DEBUG")
    assert logger.level == logging.DEBUG
    opts.set_v2({"roleArn": "arn:aws:iam::123456789012:role/logs", "defaultLogLevel": "WARN",
                 "disableAllLogs": False})
    assert logger.level == logging.WARNING  # v2 wins over v1
    opts.set_level("DEFAULT", None, "INFO")
    opts.set_level("CLIENT_ID", "dev-1", "DEBUG")
    assert logger.level == logging.INFO
    assert [e["targetType"] for e in opts.list_levels(None)] == ["CLIENT_ID", "DEFAULT"]
    assert opts.list_levels("CLIENT_ID") == [{"targetType": "CLIENT_ID",
                                              "targetName": "dev-1", "logLevel": "DEBUG"}]
    opts.set_v2({"disableAllLogs": True})
    assert logger.level > logging.CRITICAL
    # A new instance over the same store reads the same options.
    logger.setLevel(logging.WARNING)  # as after a restart
    again = LoggingOptions(store, logger)
    again.load()
    assert logger.level > logging.CRITICAL
    assert again.get_v2()["disableAllLogs"] is True
    again.reset()
    assert logger.level == logging.WARNING
    assert again.get_v1() == {}


def test_describe_endpoint_answers_the_public_host() -> None:
    from types import SimpleNamespace

    from bastion.api._handlers.system import describe_endpoint

    def context(public_host: str) -> Any:
        gateway = SimpleNamespace(config=ApiConfig(public_host=public_host))
        return SimpleNamespace(gateway=gateway, host="127.0.0.1", host_header="127.0.0.1:8443")

    assert describe_endpoint(context("iot.example.com"), {"endpointType": "iot:Data-ATS"}) == {
        "endpointAddress": "iot.example.com"}
    assert describe_endpoint(context(""), {"endpointType": "iot:Data-ATS"}) == {
        "endpointAddress": "127.0.0.1"}
    assert describe_endpoint(context(""), {"endpointType": "iot:Jobs"}) == {
        "endpointAddress": "127.0.0.1:8443"}
