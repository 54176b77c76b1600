"""Fleet provisioning by claim with AWS's device SDK: CreateKeysAndCertificate or
CreateCertificateFromCsr, then RegisterThing, ending in a device that connects with its
new certificate — and the ways it must fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.provisioning import ProvisioningService
from bastion.provisioning._tokens import token_hash
from bastion.registry import CertificateStatus
from bastion.store._schema import provisioning_ownership_tokens
from support.clients import V5, V311, Client, DeviceFiles
from support.running import RunningBastion

from .conftest import (
    DEVICE_POLICY,
    IdentityDevice,
    Rejected,
    csr_for,
    fleet_template,
    key_pem,
    unique,
    write_device,
)


@pytest.fixture
def template(service: ProvisioningService) -> str:
    name = unique("fleet-")
    service.create_provisioning_template(name, fleet_template(), enabled=True)
    return name


def connect_as_new_device(bastion: RunningBastion, files: DeviceFiles, thing: str,
                          version: int = V311) -> None:
    """The provisioned device connects as its thing and uses its own topics."""
    client = Client(files, bastion.port, version=version, client_id=thing).connect()
    try:
        client.subscribe(f"fleet/{thing}/commands", 1)
        client.publish(f"fleet/{thing}/commands", b"hello", qos=1)
        assert client.expect(1)[0].payload == b"hello"
    finally:
        client.disconnect()


@pytest.mark.parametrize("mqtt5_client", [False, True], ids=["mqtt311", "mqtt5"])
def test_create_keys_then_register_thing_then_connect(
        prov_bastion: RunningBastion, service: ProvisioningService, template: str,
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice],
        tmp_path: Path, mqtt5_client: bool) -> None:
    claim = make_claim(template)
    device = IdentityDevice(claim, prov_bastion.port, mqtt5_client=mqtt5_client)
    devices.append(device)

    created = device.create_keys_and_certificate()
    assert created.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in created.private_key
    assert created.certificate_ownership_token
    identity = prov_bastion.app.plane.identity
    assert identity.describe_certificate(created.certificate_id).status is (
        CertificateStatus.PENDING_ACTIVATION)

    serial = unique("")
    registered = device.register_thing(template, created.certificate_ownership_token,
                                       {"SerialNumber": serial})
    thing = f"sensor-{serial}"
    assert registered.thing_name == thing
    assert registered.device_configuration == {"topic": f"fleet/{serial}/telemetry",
                                               "site": "plant-1"}

    record = identity.describe_certificate(created.certificate_id)
    assert record.status is CertificateStatus.ACTIVE
    plane = prov_bastion.app.plane
    assert plane.registry.describe_thing(thing).attributes == {"site": "plant-1",
                                                               "serial": serial}
    principals, _ = plane.registry.list_thing_principals(thing)
    assert principals == [record.certificate_arn]
    # The new certificate gets the template's policy and nothing more (no claim policy).
    attached, _ = plane.policies.list_attached_policies(record.certificate_arn)
    assert len(attached) == 1
    document = plane.policies.get_policy(attached[0].policy_name).policy_document
    assert json.loads(document) == json.loads(DEVICE_POLICY)

    files = write_device(tmp_path / "new", thing, created.certificate_pem,
                         created.private_key, claim.ca)
    connect_as_new_device(prov_bastion, files, thing, V5 if mqtt5_client else V311)


def test_create_certificate_from_csr_then_register_thing_then_connect(
        prov_bastion: RunningBastion, template: str,
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice],
        tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    device = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.append(device)

    created = device.create_certificate_from_csr(csr_for(key, "csr-device"))
    assert created.certificate_id and created.certificate_ownership_token
    serial = unique("")
    registered = device.register_thing(template, created.certificate_ownership_token,
                                       {"SerialNumber": serial, "Site": "plant-9"})
    thing = f"sensor-{serial}"
    assert registered.thing_name == thing
    assert registered.device_configuration["site"] == "plant-9"

    files = write_device(tmp_path / "csr", thing, created.certificate_pem, key_pem(key),
                         device.files.ca)
    connect_as_new_device(prov_bastion, files, thing)


def test_a_replayed_ownership_token_is_rejected(
        prov_bastion: RunningBastion, template: str,
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice]) -> None:
    device = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.append(device)
    created = device.create_keys_and_certificate()
    token = created.certificate_ownership_token
    device.register_thing(template, token, {"SerialNumber": unique("")})

    with pytest.raises(Rejected) as rejected:
        device.register_thing(template, token, {"SerialNumber": unique("")})
    assert rejected.value.status_code == 400
    assert rejected.value.error_code == "InvalidCertificateOwnershipToken"
    assert "already been used" in rejected.value.error_message


def test_an_expired_ownership_token_is_rejected(
        prov_bastion: RunningBastion, template: str,
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice]) -> None:
    device = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.append(device)
    created = device.create_keys_and_certificate()
    token = created.certificate_ownership_token
    # An hour passes: the stored expiry is moved into the past.
    store = prov_bastion.app.plane.store
    table = provisioning_ownership_tokens
    with store.transaction() as uow:
        uow.connection.execute(table.update()
                               .where(table.c.token_hash == token_hash(token))
                               .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    with pytest.raises(Rejected) as rejected:
        device.register_thing(template, token, {"SerialNumber": unique("")})
    assert (rejected.value.status_code, rejected.value.error_code) == (
        400, "InvalidCertificateOwnershipToken")
    assert "expired" in rejected.value.error_message
    identity = prov_bastion.app.plane.identity
    assert identity.describe_certificate(created.certificate_id).status is (
        CertificateStatus.PENDING_ACTIVATION)


def test_a_token_of_another_claim_certificate_is_rejected(
        prov_bastion: RunningBastion, template: str,
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice]) -> None:
    owner = IdentityDevice(make_claim(template), prov_bastion.port)
    thief = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.extend([owner, thief])
    token = owner.create_keys_and_certificate().certificate_ownership_token

    with pytest.raises(Rejected) as rejected:
        thief.register_thing(template, token, {"SerialNumber": unique("")})
    assert rejected.value.error_code == "InvalidCertificateOwnershipToken"
    # The owner can still use it.
    assert owner.register_thing(template, token, {"SerialNumber": unique("")}).thing_name


def test_a_missing_template_parameter_is_rejected(
        prov_bastion: RunningBastion, template: str,
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice]) -> None:
    device = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.append(device)
    created = device.create_keys_and_certificate()

    with pytest.raises(Rejected) as rejected:
        device.register_thing(template, created.certificate_ownership_token, {"Site": "x"})
    assert (rejected.value.status_code, rejected.value.error_code) == (400, "InvalidParameters")
    assert rejected.value.error_message == "Missing parameters: SerialNumber"
    # Nothing was provisioned, and the token still works once the device fixes its request.
    serial = unique("")
    assert device.register_thing(template, created.certificate_ownership_token,
                                 {"SerialNumber": serial}).thing_name == f"sensor-{serial}"


def test_a_deleted_template_is_rejected(
        prov_bastion: RunningBastion, service: ProvisioningService, template: str,
        make_claim: Callable[[str], DeviceFiles], devices: list[IdentityDevice]) -> None:
    device = IdentityDevice(make_claim(template), prov_bastion.port)
    devices.append(device)
    created = device.create_keys_and_certificate()
    service.delete_provisioning_template(template)
    with pytest.raises(Rejected) as rejected:
        device.register_thing(template, created.certificate_ownership_token,
                              {"SerialNumber": "1"})
    assert (rejected.value.status_code, rejected.value.error_code) == (404, "ResourceNotFound")
