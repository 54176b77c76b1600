"""Provisioning services on both database backends, with a fake clock and a fake hook."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bastion.account import Account
from bastion.pki import create_root_ca
from bastion.provisioning import HookCallError, ProvisioningService
from bastion.registry import (
    CertificateAuthority,
    IdentityService,
    PolicyService,
    RegistryService,
)
from bastion.store import Store
from support.clock import ManualClock
from support.databases import _pg_schemas, _session_store, fresh_database_url, store

__all__ = ["_pg_schemas", "_session_store", "fresh_database_url", "store"]


class FakeHook:
    """A hook client answering ``answer`` (JSON), or failing with ``failure``."""

    def __init__(self) -> None:
        self.answer: Any = {"allowProvisioning": True}
        self.status = 200
        self.failure: BaseException | None = None
        self.calls: list[dict[str, Any]] = []
        self.timeouts: list[float] = []

    def post(self, url: str, payload: bytes, timeout: float) -> tuple[int, bytes]:
        self.calls.append(json.loads(payload))
        self.timeouts.append(timeout)
        if self.failure is not None:
            raise self.failure
        return self.status, json.dumps(self.answer).encode()

    def hang(self) -> None:
        self.failure = HookCallError("no answer within 5 s")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hook() -> FakeHook:
    return FakeHook()


@pytest.fixture(scope="session")
def authority() -> CertificateAuthority:
    return CertificateAuthority(*create_root_ca("Bastion Provisioning Test CA"))


@pytest.fixture
def account() -> Account:
    return Account()


@pytest.fixture
def registry(store: Store, account: Account, clock: ManualClock) -> RegistryService:
    return RegistryService(store, account=account, clock=clock)


@pytest.fixture
def identity(store: Store, account: Account, clock: ManualClock,
             authority: CertificateAuthority) -> IdentityService:
    service = IdentityService(store, authority=authority, account=account, clock=clock)
    service.ensure_authority_registered()
    return service


@pytest.fixture
def policies(store: Store, account: Account, clock: ManualClock) -> PolicyService:
    return PolicyService(store, account=account, clock=clock)


@pytest.fixture
def service(store: Store, registry: RegistryService, identity: IdentityService,
            policies: PolicyService, clock: ManualClock, hook: FakeHook) -> ProvisioningService:
    return ProvisioningService(store, registry=registry, identity=identity, policies=policies,
                               hook_client=hook, clock=clock)


def fleet_body(**extra: Any) -> str:
    body: dict[str, Any] = {
        "Parameters": {"Serial": {"Type": "String"}},
        "Resources": {
            "thing": {"Type": "AWS::IoT::Thing",
                      "Properties": {"ThingName": {"Fn::Sub": "dev-${Serial}"},
                                     "AttributePayload": {"serial": {"Ref": "Serial"}}}},
            "certificate": {"Type": "AWS::IoT::Certificate",
                            "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}},
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}}},
        },
        "DeviceConfiguration": {"greeting": {"Fn::Sub": "hello ${Serial}"}},
    }
    for path, value in extra.items():
        body[path] = value
    return json.dumps(body)


@pytest.fixture
def fleet(service: ProvisioningService) -> Callable[..., str]:
    """``fleet(name, **options)`` creates an enabled fleet template; returns its name."""

    def make(name: str = "fleet", body: str | None = None, **options: Any) -> str:
        options.setdefault("enabled", True)
        service.create_provisioning_template(name, body or fleet_body(), **options)
        return name

    return make
