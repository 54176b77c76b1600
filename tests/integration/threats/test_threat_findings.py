"""Threat detection end to end: each finding raised by doing the thing against a real
Bastion — signed requests from real loopback addresses, boto3, real devices on mutual
TLS — and listed through boto3's own ``guardduty`` client."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from bastion.api import Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, MQTTConfig, ThreatsConfig
from bastion.datadir import DataDir
from support.clients import Client, DeviceFiles, wait_for
from support.running import RunningBastion

KEYS = {"admin": ("AKIATHREATADMIN0001", "threat-admin-secret/abcdefghijklmnopqrstu"),
        "auditor": ("AKIATHREATAUDITOR01", "threat-auditor-secret/abcdefghijklmnopqr")}
WIDE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})


@dataclass
class Threats:
    """A running Bastion with threat detection. The data directory is the session's, so
    :meth:`findings` answers only what changed since the test began."""

    running: RunningBastion
    datadir: DataDir
    before: set[tuple[str, int]] = field(default_factory=set)

    @property
    def url(self) -> str:
        api = self.running.app.api
        assert api is not None
        return str(api.url)

    def client(self, service: str, role: str = "admin") -> Any:
        key_id, secret = KEYS[role]
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret,
                            verify=str(self.datadir.ca_cert_path),
                            config=BotoConfig(retries={"max_attempts": 1}))

    def raw_call(self, source_ip: str, secret: str | None = None,
                 key_id: str = KEYS["admin"][0]) -> int:
        """ListThings signed with ``secret`` (default: the admin's), sent from
        ``source_ip``; the HTTP status."""
        url = self.url + "/things"
        request = AWSRequest(method="GET", url=url, headers={})
        SigV4Auth(Credentials(key_id, secret or KEYS["admin"][1]), "iot",
                  "us-east-1").add_auth(request)
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        context = ssl.create_default_context(cafile=str(self.datadir.ca_cert_path))
        connection = http.client.HTTPSConnection(host, int(port), context=context,
                                                 source_address=(source_ip, 0), timeout=10)
        try:
            connection.request("GET", "/things", headers=dict(request.headers.items()))
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def flush(self) -> None:
        self.running.app.services.threats.flush()

    def findings(self, **criterion: Any) -> list[dict[str, Any]]:
        """The findings matching ``criterion`` that are new or counted again since the
        test began."""
        return [f for f in self.all_findings(**criterion)
                if (f["Id"], f["Service"]["Count"]) not in self.before]

    def all_findings(self, **criterion: Any) -> list[dict[str, Any]]:
        self.flush()
        guardduty = self.client("guardduty", "auditor")
        [detector] = guardduty.list_detectors()["DetectorIds"]
        criteria = {"Criterion": criterion} if criterion else {}
        ids = guardduty.list_findings(DetectorId=detector, FindingCriteria=criteria)[
            "FindingIds"]
        if not ids:
            return []
        found: list[dict[str, Any]] = guardduty.get_findings(DetectorId=detector,
                                                             FindingIds=ids)["Findings"]
        return found


def _credentials() -> StaticCredentials:
    return StaticCredentials({k: (s, Role(r)) for r, (k, s) in KEYS.items()})


@pytest.fixture
def threats(datadir: DataDir) -> Iterator[Threats]:
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(host="127.0.0.1", port=0),
                    threats=ThreatsConfig(burst_failures=8, block_seconds=600,
                                          learn_calls=1000, verify_trail_minutes=0))
    running = RunningBastion(config, datadir, credentials=_credentials()).start()
    try:
        threats = Threats(running, datadir)
        threats.before = {(f["Id"], f["Service"]["Count"]) for f in threats.all_findings()}
        yield threats
    finally:
        running.stop()


def _types(findings: list[dict[str, Any]]) -> list[str]:
    return sorted(f["Type"] for f in findings)


def test_ordinary_use_raises_nothing(threats: Threats,
                                     make_device: Callable[..., DeviceFiles]) -> None:
    iot = threats.client("iot")
    for i in range(30):
        name = f"quiet-{uuid.uuid4().hex[:6]}"
        iot.create_thing(thingName=name)
        iot.describe_thing(thingName=name)
        iot.list_things(maxResults=5)
    device = make_device()
    for _ in range(3):
        client = Client(device, threats.running.port, client_id=device.name).connect()
        client.disconnect()
    assert threats.findings() == []


def test_a_signature_failure_burst_is_found_and_the_source_blocked(threats: Threats) -> None:
    for _ in range(8):
        assert threats.raw_call("127.0.0.3", secret="guessed-wrong-secret") == 403
    # the right secret from the blocked address is refused too; other addresses are not
    assert threats.raw_call("127.0.0.3") == 403
    assert threats.raw_call("127.0.0.1") == 200
    [finding] = threats.findings(type={"Eq": ["CredentialAccess:IoTAPI/SignatureFailureBurst"]})
    assert finding["Severity"] >= 7
    assert finding["Service"]["Action"]["AwsApiCallAction"]["RemoteIpDetails"] == {
        "IpAddressV4": "127.0.0.3"}
    evidence = json.loads(finding["Service"]["AdditionalInfo"]["Value"])["evidence"]
    assert evidence["failures"] == 8 and "blockedUntil" in evidence
    trail = threats.running.app.services.trail
    denied = [r for r in trail.export() if r["source_ip"] == "127.0.0.3"]
    assert len(denied) == 9 and all(r["outcome"] == "denied" for r in denied)


def test_one_key_from_two_addresses(threats: Threats) -> None:
    assert threats.raw_call("127.0.0.1") == 200
    assert threats.raw_call("127.0.0.2") == 200
    [finding] = threats.findings(
        type={"Eq": ["UnauthorizedAccess:IoTAPI/KeyUsedFromTwoAddresses"]})
    assert finding["Resource"]["AccessKeyDetails"]["AccessKeyId"] == KEYS["admin"][0]


def test_widening_a_policy_to_a_wildcard(threats: Threats) -> None:
    iot = threats.client("iot")
    iot.create_policy(policyName=f"narrow-{uuid.uuid4().hex[:6]}", policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}))
    assert threats.findings() == []
    name = f"wide-{uuid.uuid4().hex[:6]}"
    iot.create_policy(policyName=name, policyDocument=WIDE)
    [finding] = threats.findings()
    assert finding["Type"] == "PrivilegeEscalation:IoTControlPlane/PolicyWidenedToWildcard"
    assert name in finding["Description"]
    assert finding["Service"]["Action"]["AwsApiCallAction"]["Api"] == "CreatePolicy"


def test_a_cloned_certificate_connecting_from_two_addresses(
        threats: Threats, make_device: Callable[..., DeviceFiles]) -> None:
    device = make_device()
    first = Client(device, threats.running.port, client_id=device.name).connect(
        bind_address="127.0.0.1")
    clone = Client(device, threats.running.port, client_id=f"{device.name}-twin").connect(
        bind_address="127.0.0.2")
    try:
        wait_for(lambda: bool(threats.findings()), what="the clone finding")
        [finding] = threats.findings()
        assert finding["Type"] == "UnauthorizedAccess:IoTDevice/CertificateCloned"
        assert finding["Resource"]["ResourceType"] == "IoTCertificate"
        evidence = json.loads(finding["Service"]["AdditionalInfo"]["Value"])
        assert evidence["resourceId"] == device.certificate_id
        assert evidence["evidence"]["liveFromOtherAddresses"] == ["127.0.0.1"]
    finally:
        first.disconnect()
        clone.disconnect()


def test_guardduty_api_threat_list_statistics_and_archive(
        threats: Threats, make_device: Callable[..., DeviceFiles]) -> None:
    guardduty = threats.client("guardduty")
    [detector] = guardduty.list_detectors()["DetectorIds"]
    assert guardduty.get_detector(DetectorId=detector)["Status"] == "ENABLED"
    with pytest.raises(ClientError) as bad:
        guardduty.get_detector(DetectorId="0" * 32)
    assert bad.value.response["Error"]["Code"] == "BadRequestException"

    files = threats.running.app.services.files
    files.upload("threats.txt", b"# blocked networks\n127.0.0.4/32\n198.51.100.0/24\n")
    intel = guardduty.create_threat_intel_set(
        DetectorId=detector, Name="known-bad", Format="TXT",
        Location="bastion-file://threats.txt", Activate=True)["ThreatIntelSetId"]
    assert guardduty.list_threat_intel_sets(DetectorId=detector)["ThreatIntelSetIds"] == [
        intel]
    assert guardduty.get_threat_intel_set(DetectorId=detector, ThreatIntelSetId=intel)[
        "Status"] == "ACTIVE"
    for bad_set in ({"Format": "STIX", "Location": "bastion-file://threats.txt"},
                    {"Format": "TXT", "Location": "bastion-file://missing.txt"}):
        with pytest.raises(ClientError):
            guardduty.create_threat_intel_set(DetectorId=detector, Name="x", Activate=True,
                                              **bad_set)
    with pytest.raises(ClientError):  # an auditor reads, never writes
        threats.client("guardduty", "auditor").archive_findings(DetectorId=detector,
                                                                FindingIds=["x"])

    device = make_device()
    listed = Client(device, threats.running.port, client_id=device.name).connect(
        bind_address="127.0.0.4")
    listed.disconnect()
    threats.client("iot").create_policy(policyName=f"w-{uuid.uuid4().hex[:6]}",
                                        policyDocument=WIDE)
    found = threats.findings()
    assert _types(found) == ["PrivilegeEscalation:IoTControlPlane/PolicyWidenedToWildcard",
                             "UnauthorizedAccess:IoTDevice/ThreatListAddress"]
    high = threats.findings(severity={"Gte": 8})
    assert _types(high) == ["UnauthorizedAccess:IoTDevice/ThreatListAddress"]
    ids = [f["Id"] for f in found]
    statistics = guardduty.get_findings_statistics(
        DetectorId=detector, FindingStatisticTypes=["COUNT_BY_SEVERITY"],
        FindingCriteria={"Criterion": {"id": {"Eq": ids}}})
    assert statistics["FindingStatistics"]["CountBySeverity"] == {"7.0": 1, "8.0": 1}

    ids = [f["Id"] for f in high]
    guardduty.archive_findings(DetectorId=detector, FindingIds=ids)
    mine = {"id": {"Eq": [f["Id"] for f in found]}}
    archived = {**mine, "service.archived": {"Eq": ["true"]}}
    assert [f["Id"] for f in threats.all_findings(**archived)] == ids
    assert len(threats.all_findings(**{**mine, "service.archived": {"Eq": ["false"]}})) == 1
    guardduty.unarchive_findings(DetectorId=detector, FindingIds=ids)
    assert threats.all_findings(**archived) == []
    with pytest.raises(ClientError) as unknown:
        guardduty.archive_findings(DetectorId=detector, FindingIds=["no-such-finding"])
    assert unknown.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ClientError):
        guardduty.list_findings(DetectorId=detector, FindingCriteria={
            "Criterion": {"resource.instanceDetails.instanceId": {"Eq": ["i-1"]}}})

    # findings and threat lists survive a restart
    threats.flush()
    threats.running.stop()
    time.sleep(0.1)
    threats.running = RunningBastion(threats.running.config, threats.datadir,
                                     credentials=_credentials()).start()
    assert _types(threats.findings()) == _types(found)
    guardduty = threats.client("guardduty")
    guardduty.delete_threat_intel_set(DetectorId=detector, ThreatIntelSetId=intel)
    assert guardduty.list_threat_intel_sets(DetectorId=detector)["ThreatIntelSetIds"] == []


def test_a_burst_of_refused_device_connects_from_the_iot_logs(
        threats: Threats, make_device: Callable[..., DeviceFiles]) -> None:
    policy = f"connect-nobody-{uuid.uuid4().hex[:6]}"
    threats.running.app.plane.policies.create_policy(policy, json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "iot:Connect",
            "Resource": "arn:aws:iot:*:*:client/nobody"}]}))
    device = make_device(policy=policy)
    for _ in range(8):
        Client(device, threats.running.port, client_id=device.name).connect(
            expect_success=False, bind_address="127.0.0.5")
    wait_for(lambda: bool(threats.findings(
        type={"Eq": ["CredentialAccess:IoTDevice/ConnectFailureBurst"]})),
        what="the connect-failure finding", timeout=10)
    [finding] = threats.findings(type={"Eq": ["CredentialAccess:IoTDevice/ConnectFailureBurst"]})
    evidence = json.loads(finding["Service"]["AdditionalInfo"]["Value"])
    assert evidence["resourceId"] == "127.0.0.5"
    assert evidence["evidence"]["clientIds"] == [device.name]
