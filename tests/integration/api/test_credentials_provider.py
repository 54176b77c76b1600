"""The credentials provider over real mutual TLS, and the temporary credentials it hands
out used with boto3 against the real API: a device with a certificate from Bastion's CA
asks ``GET /role-aliases/<alias>/credentials`` and signs API calls with what it gets,
within its alias's role, until the credentials expire or its certificate is deactivated.

The Bastion here runs on a hand-moved clock (the services' time: expiry), while SigV4's
clock check uses the real time, as boto3 signs with it.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
import trustme
from botocore.exceptions import ClientError

from bastion.api import MemoryTrail, Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, CredentialsConfig, MQTTConfig
from bastion.datadir import DataDir, init_data_dir
from bastion.pki import client_ssl_context
from bastion.store import RoleAliasRow
from support.clients import DeviceFiles
from support.clock import ManualClock
from support.running import RunningBastion

from .conftest import ACCOUNT, KEYS, NO_RETRIES, REGION, device_through_api

Unique = Callable[[str], str]
OPERATOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bastion-operator"
AUDITOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bastion-auditor"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bastion-admin"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _assume(alias: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate",
            "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:rolealias/{alias}"}


@dataclass
class Provider:
    running: RunningBastion
    datadir: DataDir
    trail: MemoryTrail
    clock: ManualClock
    api_url: str
    port: int
    tmp: Path

    @property
    def iot(self) -> Any:
        return self.client("iot", KEYS["admin"])

    def client(self, service: str, key: tuple[str, str], token: str | None = None) -> Any:
        return boto3.client(service, endpoint_url=self.api_url, region_name=REGION,
                            aws_access_key_id=key[0], aws_secret_access_key=key[1],
                            aws_session_token=token, verify=str(self.datadir.ca_cert_path),
                            config=NO_RETRIES)

    def device(self, name: str, document: str) -> DeviceFiles:
        """A thing, an ACTIVE certificate from Bastion's CA attached to it, and a policy
        with ``document`` attached to the certificate."""
        # device_through_api reads only the data directory of what it is given.
        return device_through_api(cast(Any, self), self.iot, name, self.tmp / name, document)

    def ask(self, context: ssl.SSLContext, alias: str, thing: str | None = None,
            method: str = "GET", path: str | None = None
            ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """One request to the credentials endpoint; status, headers, JSON body."""
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=context,
                                                 timeout=10)
        try:
            headers = {} if thing is None else {"x-amzn-iot-thingname": thing}
            connection.request(method, path or f"/role-aliases/{alias}/credentials",
                               headers=headers)
            response = connection.getresponse()
            body = response.read()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    json.loads(body))
        finally:
            connection.close()

    def context_of(self, device: DeviceFiles) -> ssl.SSLContext:
        return client_ssl_context(self.datadir.ca_cert_path.read_bytes(), device.cert,
                                  device.key)

    def credentials(self, device: DeviceFiles, alias: str, thing: str | None = None
                    ) -> dict[str, str]:
        status, _, body = self.ask(self.context_of(device), alias,
                                   device.name if thing is None else thing)
        assert status == 200, body
        return dict(body["credentials"])

    def temporary(self, credentials: dict[str, str], service: str = "iot") -> Any:
        return self.client(service, (credentials["accessKeyId"],
                                     credentials["secretAccessKey"]),
                           credentials["sessionToken"])


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    root = tmp_path_factory.mktemp("credentials")
    datadir = init_data_dir(root / "data")
    trail = MemoryTrail()
    clock = ManualClock()
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(host="127.0.0.1", port=0),
                    credentials=CredentialsConfig(enabled=True, host="127.0.0.1", port=0))
    running = RunningBastion(config, datadir, credentials=StaticCredentials(
        {key_id: (secret, Role(role)) for role, (key_id, secret) in KEYS.items()}),
        trail=trail, clock=clock).start()
    try:
        api, server = running.app.api, running.app.credentials
        assert api is not None and server is not None
        yield Provider(running, datadir, trail, clock, api.url, server.port, root)
    finally:
        running.stop()


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# -- the happy path ----------------------------------------------------------------------


def test_a_device_trades_its_certificate_for_operator_credentials(
        provider: Provider, unique: Unique) -> None:
    alias = unique("uploader")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=OPERATOR_ROLE,
                                   credentialDurationSeconds=900)
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    before = provider.clock.now()
    status, headers, body = provider.ask(provider.context_of(device), alias, device.name)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    credentials = body["credentials"]
    assert set(credentials) == {"accessKeyId", "secretAccessKey", "sessionToken", "expiration"}
    assert credentials["accessKeyId"].startswith("ASIA") and len(credentials["accessKeyId"]) == 20
    assert len(credentials["secretAccessKey"]) == 40
    expiration = datetime.strptime(credentials["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC)
    assert expiration == before + timedelta(seconds=900)

    # boto3 with the temporary credentials: the operator role runs the fleet...
    iot = provider.temporary(credentials)
    described = iot.describe_thing(thingName=device.name)
    assert described["thingName"] == device.name
    other = unique("made-by-device")
    iot.create_thing(thingName=other)
    provider.iot.delete_thing(thingName=other)
    # ...and the data plane too.
    data = provider.temporary(credentials, "iot-data")
    data.publish(topic=f"{device.name}/logs", qos=0, payload=b"uploaded")

    # The trail names the device, its certificate and the alias for every call.
    records = [r for r in provider.trail.records
               if r.access_key_id == credentials["accessKeyId"]]
    issued = [r for r in records if r.operation == "AssumeRoleWithCertificate"]
    assert len(issued) == 1 and issued[0].outcome == "allowed"
    assert issued[0].parameters == {"roleAlias": alias, "thingName": device.name,
                                    "certificateId": device.certificate_id}
    calls = [r for r in records if r.operation == "DescribeThing"]
    assert calls and calls[0].caller is not None
    assert calls[0].caller.role is Role.OPERATOR
    assert calls[0].parameters["bastion:caller"] == {
        "roleAlias": alias, "thingName": device.name,
        "certificateId": device.certificate_id}


def test_an_auditor_alias_reads_and_is_refused_changes(provider: Provider,
                                                       unique: Unique) -> None:
    alias = unique("reader")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=AUDITOR_ROLE)
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    credentials = provider.credentials(device, alias)
    iot = provider.temporary(credentials)
    assert iot.describe_thing(thingName=device.name)["thingName"] == device.name
    with pytest.raises(ClientError) as refused:
        iot.create_thing(thingName=unique("forbidden"))
    assert _error(refused) == ("AccessDeniedException", 403)
    denied = [r for r in provider.trail.records
              if r.access_key_id == credentials["accessKeyId"] and r.operation == "CreateThing"]
    assert [r.outcome for r in denied] == ["denied"]


def test_the_thing_name_header_is_optional(provider: Provider, unique: Unique) -> None:
    alias = unique("nothing")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=AUDITOR_ROLE)
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    status, _, body = provider.ask(provider.context_of(device), alias)
    assert status == 200, body
    iot = provider.temporary(body["credentials"])
    assert "things" in iot.list_things(maxResults=1)


# -- refusals at the credentials endpoint ------------------------------------------------


def test_no_client_certificate_ends_in_the_handshake(provider: Provider) -> None:
    context = client_ssl_context(provider.datadir.ca_cert_path.read_bytes())
    with pytest.raises((ssl.SSLError, ConnectionError)):
        provider.ask(context, "any")


def test_a_certificate_from_another_ca_ends_in_the_handshake(provider: Provider,
                                                            tmp_path: Path) -> None:
    stranger = trustme.CA().issue_cert("stranger")
    cert, key = tmp_path / "stranger.cert.pem", tmp_path / "stranger.key.pem"
    stranger.cert_chain_pems[0].write_to_path(str(cert))
    stranger.private_key_pem.write_to_path(str(key))
    context = client_ssl_context(provider.datadir.ca_cert_path.read_bytes(), cert, key)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        provider.ask(context, "any")


def test_an_inactive_certificate_is_refused(provider: Provider, unique: Unique) -> None:
    alias = unique("inactive")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=AUDITOR_ROLE)
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    provider.iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    status, headers, body = provider.ask(provider.context_of(device), alias, device.name)
    assert (status, body) == (403, {"message": "Certificate is invalid on this endpoint"})
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    provider.iot.update_certificate(certificateId=device.certificate_id, newStatus="REVOKED")
    status, _, body = provider.ask(provider.context_of(device), alias, device.name)
    assert (status, body) == (403, {"message": "Certificate is invalid on this endpoint"})


def test_a_thing_the_certificate_is_not_attached_to(provider: Provider,
                                                   unique: Unique) -> None:
    alias = unique("thing")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=AUDITOR_ROLE)
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    stranger = unique("other-thing")
    provider.iot.create_thing(thingName=stranger)
    for thing in (stranger, unique("no-such-thing"), "bad name!"):
        status, headers, body = provider.ask(provider.context_of(device), alias, thing)
        assert (status, body) == (403, {"message": "Invalid thing name passed"}), thing
        assert headers["x-amzn-errortype"] == "AccessDeniedException"


def test_a_policy_without_assume_role(provider: Provider, unique: Unique) -> None:
    alias = unique("guarded")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=OPERATOR_ROLE)
    connect_only = _policy({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"})
    device = provider.device(unique("dev"), connect_only)
    status, _, body = provider.ask(provider.context_of(device), alias, device.name)
    assert (status, body) == (403, {"message": "Access Denied"})
    # A policy for another alias grants nothing here; a Deny beats an Allow.
    other = provider.device(unique("dev"), _policy(_assume(alias + "-other")))
    status, _, body = provider.ask(provider.context_of(other), alias, other.name)
    assert (status, body) == (403, {"message": "Access Denied"})
    denied = provider.device(unique("dev"), _policy(
        _assume("*"), {**_assume(alias), "Effect": "Deny"}))
    status, _, body = provider.ask(provider.context_of(denied), alias, denied.name)
    assert (status, body) == (403, {"message": "Access Denied"})
    refused = [r for r in provider.trail.records
               if r.operation == "AssumeRoleWithCertificate"
               and r.parameters.get("certificateId") == device.certificate_id]
    assert [(r.outcome, r.error_code, r.http_status) for r in refused] == [
        ("denied", "AccessDeniedException", 403)]


def test_an_unknown_alias(provider: Provider, unique: Unique) -> None:
    device = provider.device(unique("dev"), _policy(_assume("*")))
    status, headers, body = provider.ask(provider.context_of(device), unique("nope"),
                                         device.name)
    assert (status, body) == (404, {"message": "Role alias does not exist"})
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
    status, _, _ = provider.ask(provider.context_of(device), "x", path="/role-aliases/x")
    assert status == 404
    status, _, _ = provider.ask(provider.context_of(device), "x", method="POST")
    assert status == 405


def test_an_alias_pointing_at_admin_is_never_assumed(provider: Provider,
                                                    unique: Unique) -> None:
    alias = unique("admin")
    with pytest.raises(ClientError) as refused:
        provider.iot.create_role_alias(roleAlias=alias, roleArn=ADMIN_ROLE)
    assert _error(refused) == ("InvalidRequestException", 400)
    # Written behind the API's back (a database edited by hand): still refused.
    now = provider.clock.now()
    with provider.running.app.plane.store.transaction() as uow:
        uow.role_aliases.insert(RoleAliasRow(alias, ADMIN_ROLE, 3600, now, now))
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    status, _, body = provider.ask(provider.context_of(device), alias, device.name)
    assert (status, body) == (400, {
        "message": "Unable to assume the role, or the role to assume does not exist"})


# -- the temporary credentials at the API ------------------------------------------------


def test_credentials_expire(provider: Provider, unique: Unique) -> None:
    alias = unique("short")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=AUDITOR_ROLE,
                                   credentialDurationSeconds=900)
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    credentials = provider.credentials(device, alias)
    iot = provider.temporary(credentials)
    iot.describe_thing(thingName=device.name)
    provider.clock.advance(timedelta(seconds=899))
    iot.describe_thing(thingName=device.name)
    provider.clock.advance(timedelta(seconds=1))
    with pytest.raises(ClientError) as refused:
        iot.describe_thing(thingName=device.name)
    assert _error(refused) == ("ExpiredTokenException", 403)
    assert refused.value.response["Error"]["Message"] == (
        "The security token included in the request is expired")
    # Fresh credentials work again.
    iot = provider.temporary(provider.credentials(device, alias))
    iot.describe_thing(thingName=device.name)


def test_deactivating_the_certificate_stops_its_credentials(provider: Provider,
                                                           unique: Unique) -> None:
    alias = unique("revoked")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=AUDITOR_ROLE)
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    iot = provider.temporary(provider.credentials(device, alias))
    iot.describe_thing(thingName=device.name)
    provider.iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    with pytest.raises(ClientError) as refused:
        iot.describe_thing(thingName=device.name)
    assert _error(refused) == ("UnrecognizedClientException", 403)
    provider.iot.update_certificate(certificateId=device.certificate_id, newStatus="ACTIVE")
    iot.describe_thing(thingName=device.name)


def test_a_tampered_or_borrowed_token_is_refused(provider: Provider, unique: Unique) -> None:
    alias = unique("tamper")
    provider.iot.create_role_alias(roleAlias=alias, roleArn=AUDITOR_ROLE)
    device = provider.device(unique("dev"), _policy(_assume(alias)))
    mine = provider.credentials(device, alias)
    theirs = provider.credentials(device, alias)
    token = mine["sessionToken"]
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    cases = {
        "flipped": {**mine, "sessionToken": flipped},
        "truncated": {**mine, "sessionToken": token[:-8]},
        "garbage": {**mine, "sessionToken": "not base64 at all!"},
        "another key's token": {**mine, "sessionToken": theirs["sessionToken"]},
        "another key's secret": {**mine, "secretAccessKey": theirs["secretAccessKey"]},
    }
    for what, credentials in cases.items():
        with pytest.raises(ClientError) as refused:
            provider.temporary(credentials).describe_thing(thingName=device.name)
        expected = (("InvalidSignatureException", 403) if what == "another key's secret"
                    else ("UnrecognizedClientException", 403))
        assert _error(refused) == expected, what
    # A temporary key id without its token is an unknown key.
    with pytest.raises(ClientError) as refused:
        provider.client("iot", (mine["accessKeyId"], mine["secretAccessKey"])).list_things()
    assert _error(refused) == ("UnrecognizedClientException", 403)
    # A long-lived key with a token is refused too: the token does not open for it.
    with pytest.raises(ClientError) as refused:
        provider.client("iot", KEYS["admin"], token).list_things()
    assert _error(refused) == ("UnrecognizedClientException", 403)
