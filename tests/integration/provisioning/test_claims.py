"""Claim certificates reach the provisioning topics and nothing else; the service's answers
go to the asking connection only and cannot be forged; the CBOR topics work."""

from __future__ import annotations

from collections.abc import Callable

import cbor2
import pytest

from bastion.provisioning import ProvisioningService
from support.clients import V5, V311, Client, DeviceFiles
from support.running import RunningBastion

from .conftest import fleet_template, unique

CREATE = "$aws/certificates/create/json"


@pytest.fixture
def template(service: ProvisioningService) -> str:
    name = unique("claims-")
    service.create_provisioning_template(name, fleet_template(), enabled=True)
    return name


def test_a_claim_certificate_cannot_publish_outside_the_provisioning_topics(
        prov_bastion: RunningBastion, template: str,
        make_claim: Callable[[str], DeviceFiles]) -> None:
    claim = make_claim(template)
    client = Client(claim, prov_bastion.port, version=V311).connect()
    client.publish("factory/anything", b"x", qos=1, wait=False)
    assert client.disconnected.wait(5), "AWS IoT closes a 3.1.1 client publishing where it may not"


def test_a_claim_certificate_cannot_subscribe_outside_the_provisioning_topics(
        prov_bastion: RunningBastion, service: ProvisioningService, template: str,
        make_claim: Callable[[str], DeviceFiles]) -> None:
    other = unique("other-")
    service.create_provisioning_template(other, fleet_template(), enabled=True)
    client = Client(make_claim(template), prov_bastion.port, version=V5).connect()
    try:
        denied = [
            "#", "$aws/things/dev/shadow/get/accepted",
            f"$aws/provisioning-templates/{other}/provision/json/accepted",
        ]
        for topic_filter in denied:
            assert client.subscribe(topic_filter, 1)[0].is_failure, topic_filter
        allowed = f"$aws/provisioning-templates/{template}/provision/json/accepted"
        assert not client.subscribe(allowed, 1)[0].is_failure
    finally:
        client.disconnect()


def test_answers_go_to_the_asking_connection_only(
        prov_bastion: RunningBastion, template: str,
        make_claim: Callable[[str], DeviceFiles]) -> None:
    claim = make_claim(template)  # one claim certificate shared by two devices, as in fleets
    asking = Client(claim, prov_bastion.port, version=V5).connect()
    other = Client(claim, prov_bastion.port, version=V5).connect()
    try:
        for client in (asking, other):
            client.subscribe(CREATE + "/accepted", 1)
            client.subscribe(CREATE + "/rejected", 1)
            client.subscribe(CREATE, 1)
        asking.publish(CREATE, b"", qos=1)
        answer = asking.expect(1)[0]
        assert answer.topic == CREATE + "/accepted"
        assert b"privateKey" in answer.payload
        other.expect_none()  # neither the answer nor the request (it holds a token)
    finally:
        asking.disconnect()
        other.disconnect()


def test_nobody_can_forge_the_services_answers(
        prov_bastion: RunningBastion, template: str,
        make_claim: Callable[[str], DeviceFiles]) -> None:
    claim = make_claim(template)
    victim = Client(claim, prov_bastion.port, version=V5).connect()
    forger = Client(claim, prov_bastion.port, version=V5).connect()
    try:
        victim.subscribe(CREATE + "/accepted", 1)
        forger.publish(CREATE + "/accepted", b'{"certificateOwnershipToken": "forged"}', qos=1)
        victim.publish(CREATE, b"", qos=1)  # a real answer is the sync point
        answer = victim.expect(1)[0]
        assert b"forged" not in answer.payload
        victim.expect_none()
    finally:
        victim.disconnect()
        forger.disconnect()


def test_the_cbor_topics(prov_bastion: RunningBastion, template: str,
                         make_claim: Callable[[str], DeviceFiles]) -> None:
    client = Client(make_claim(template), prov_bastion.port, version=V311).connect()
    try:
        client.subscribe("$aws/certificates/create/cbor/accepted", 1)
        client.publish("$aws/certificates/create/cbor", b"", qos=1)
        created = cbor2.loads(client.expect(1)[0].payload)
        assert set(created) == {"certificateId", "certificatePem", "privateKey",
                                "certificateOwnershipToken"}

        provision = f"$aws/provisioning-templates/{template}/provision/cbor"
        client.subscribe(provision + "/accepted", 1)
        client.subscribe(provision + "/rejected", 1)
        client.publish(provision, cbor2.dumps({"parameters": {"SerialNumber": "c1"}}), qos=1)
        rejected = client.expect(1)[0]
        assert rejected.topic == provision + "/rejected"
        assert cbor2.loads(rejected.payload) == {
            "statusCode": 400, "errorCode": "InvalidCertificateOwnershipToken",
            "errorMessage": "Certificate ownership token cannot be empty."}

        serial = unique("")
        client.publish(provision, cbor2.dumps({
            "certificateOwnershipToken": created["certificateOwnershipToken"],
            "parameters": {"SerialNumber": serial}}), qos=1)
        accepted = client.expect(1)[0]
        assert accepted.topic == provision + "/accepted"
        assert cbor2.loads(accepted.payload)["thingName"] == f"sensor-{serial}"
    finally:
        client.disconnect()


def test_a_malformed_request_is_rejected(prov_bastion: RunningBastion, template: str,
                                         make_claim: Callable[[str], DeviceFiles]) -> None:
    client = Client(make_claim(template), prov_bastion.port, version=V311).connect()
    try:
        topic = "$aws/certificates/create-from-csr/json"
        client.subscribe(topic + "/rejected", 1)
        client.publish(topic, b"{not json", qos=1)
        assert b'"errorCode":"InvalidRequest"' in client.expect(1)[0].payload
        client.publish(topic, b'{"certificateSigningRequest": "not a csr"}', qos=1)
        assert b'"statusCode":400' in client.expect(1)[0].payload
    finally:
        client.disconnect()
