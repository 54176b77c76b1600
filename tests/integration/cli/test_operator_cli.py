"""The operator commands (``bastion things|certs|policies|test-authorization``) and the
``aws`` CLI against a running Bastion whose API uses real access keys and the real trail:
roles enforced, every call (allowed or denied) chained in the trail, secrets redacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bastion.access import AccessKeyService, Role
from bastion.config import ApiConfig, Config, MQTTConfig
from bastion.datadir import DataDir, init_data_dir
from bastion.store import Store
from bastion.trail import Trail, TrailKeys, export, verify
from support.clients import Client, DeviceFiles, wait_for
from support.running import RunningBastion

BASTION = [sys.executable, "-m", "bastion"]


@dataclass(frozen=True)
class Server:
    data: Path
    url: str
    keys: dict[Role, tuple[str, str]]
    store: Store
    mqtt_port: int

    def env(self, role: Role, **extra: str) -> dict[str, str]:
        key_id, secret = self.keys[role]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BASTION_"))}
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret,
                   BASTION_API_URL=self.url, BASTION_DATA_DIR=str(self.data), COLUMNS="200")
        env.update(extra)
        return env

    def run(self, role: Role, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=60,
                              env=self.env(role), check=False)

    def trail(self) -> list[dict[str, Any]]:
        return list(export(self.store))

    def trail_keys(self) -> TrailKeys:
        return TrailKeys.from_keystore(DataDir(self.data).open_keystore())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("operator") / "data"
    datadir = init_data_dir(data)
    store = Store.for_sqlite_file(datadir.db_path)
    access = AccessKeyService(store, datadir.open_keystore())
    keys = {role: access.create_access_key(role, role.value) for role in Role}
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    api=ApiConfig(host="127.0.0.1", port=0))
    running = RunningBastion(config, DataDir(data), credentials=access, trail=Trail(store, TrailKeys.from_keystore(datadir.open_keystore())))
    running.start()
    try:
        assert running.app.api is not None
        yield Server(data, running.app.api.url, keys, store, running.port)
    finally:
        running.stop()
        store.close()


def test_things_lifecycle(server: Server) -> None:
    created = server.run(Role.OPERATOR, "things", "create", "pump-1", "--attr", "site=north")
    assert created.returncode == 0, created.stderr
    assert "arn:aws:iot:" in created.stdout
    listed = server.run(Role.AUDITOR, "things", "list")
    assert listed.returncode == 0, listed.stderr
    assert "pump-1" in listed.stdout and "site=north" in listed.stdout
    as_json = json.loads(server.run(Role.AUDITOR, "things", "list", "--json").stdout)
    assert [t["thingName"] for t in as_json] == ["pump-1"]
    described = server.run(Role.AUDITOR, "things", "describe", "pump-1", "--json")
    assert json.loads(described.stdout)["attributes"] == {"site": "north"}
    deleted = server.run(Role.OPERATOR, "things", "delete", "pump-1", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    missing = server.run(Role.AUDITOR, "things", "describe", "pump-1")
    assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stderr


def test_things_list_shows_who_is_connected(server: Server, tmp_path: Path) -> None:
    """The Connected column: the device of ``meter-on`` (client id = thing name) is
    connected, ``meter-off`` never was."""
    for name in ("meter-on", "meter-off"):
        made = server.run(Role.ADMIN, "device", "create", name, "--out", str(tmp_path))
        assert made.returncode == 0, made.stderr
    device = DeviceFiles("meter-on", tmp_path / "meter-on.cert.pem",
                         tmp_path / "meter-on.key.pem", tmp_path / "root-ca.pem")
    client = Client(device, server.mqtt_port, client_id="meter-on").connect()
    try:
        def journaled() -> bool:
            with server.store.transaction(readonly=True) as uow:
                row = uow.connections.latest_of_client("meter-on")
            return row is not None and row.disconnected_at is None

        wait_for(journaled, 10, "the connection's journal row")
        listed = server.run(Role.AUDITOR, "things", "list")
        assert listed.returncode == 0, listed.stderr
        assert "Connected" in listed.stdout
        rows = {line.split()[1]: line for line in listed.stdout.splitlines()
                if line.startswith("│") and "meter-" in line}
        assert " yes " in rows["meter-on"] and " no " in rows["meter-off"]
        as_json = {t["thingName"]: t["connected"] for t in json.loads(
            server.run(Role.AUDITOR, "things", "list", "--json").stdout)}
        assert as_json["meter-on"] is True and as_json["meter-off"] is False
    finally:
        client.disconnect()


def test_a_denied_call_is_403_and_recorded(server: Server) -> None:
    before = len(server.trail())
    denied = server.run(Role.AUDITOR, "things", "create", "not-allowed")
    assert denied.returncode == 1
    assert "AccessDeniedException" in denied.stderr
    records = server.trail()[before:]
    assert [(r["operation"], r["role"], r["outcome"], r["error_code"], r["http_status"])
            for r in records] == [
        ("CreateThing", "auditor", "denied", "AccessDeniedException", 403)]
    assert records[0]["access_key_id"] == server.keys[Role.AUDITOR][0]
    assert records[0]["parameters"]["thingName"] == "not-allowed"
    unknown = subprocess.run(
        [*BASTION, "things", "list"], capture_output=True, text=True, timeout=60, check=False,
        env=server.env(Role.AUDITOR, AWS_ACCESS_KEY_ID="AKIAUNKNOWNUNKNOWN00"))
    assert unknown.returncode == 1
    last = server.trail()[-1]
    assert (last["access_key_id"], last["role"], last["outcome"]) == (
        "AKIAUNKNOWNUNKNOWN00", None, "denied")
    assert verify(server.store, server.trail_keys()).ok


def _csr(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _boto_iot(server: Server, role: Role) -> Any:
    import boto3

    key_id, secret = server.keys[role]
    return boto3.client("iot", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        verify=str(server.data / "ca" / "root-ca.cert.pem"))


def test_certificates_policies_and_test_authorization(server: Server, tmp_path: Path) -> None:
    iot = _boto_iot(server, Role.OPERATOR)
    csr = _csr("meter-7")
    cert = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=True)
    cert_id = cert["certificateId"]
    # The CSR never reached the trail, only its fingerprint.
    record = [r for r in server.trail() if r["operation"] == "CreateCertificateFromCsr"][-1]
    assert record["outcome"] == "allowed"
    assert record["parameters"]["certificateSigningRequest"].startswith("[CSR: ")
    assert csr.splitlines()[1] not in json.dumps(server.trail())

    listed = server.run(Role.AUDITOR, "certs", "list")
    assert listed.returncode == 0 and cert_id in listed.stdout
    document = tmp_path / "policy.json"
    document.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish",
         "Resource": "arn:aws:iot:us-east-1:123456789012:topic/meters/*"}]}))
    made = server.run(Role.OPERATOR, "policies", "create", "meters", "--file", str(document))
    assert made.returncode == 0, made.stderr
    assert "meters" in server.run(Role.AUDITOR, "policies", "list").stdout
    shown = server.run(Role.AUDITOR, "policies", "get", "meters")
    assert shown.returncode == 0 and "iot:Publish" in shown.stdout
    attached = server.run(Role.OPERATOR, "policies", "attach", "meters", "--target", cert_id)
    assert attached.returncode == 0, attached.stderr

    allowed = server.run(Role.AUDITOR, "test-authorization", "--cert-id", cert_id,
                         "--action", "iot:Publish", "--resource", "topic/meters/7")
    assert allowed.returncode == 0, allowed.stderr + allowed.stdout
    assert "ALLOWED" in allowed.stdout and "meters" in allowed.stdout
    refused = server.run(Role.AUDITOR, "test-authorization", "--cert-id", cert_id,
                         "--action", "iot:Publish", "--resource", "topic/other")
    assert refused.returncode == 1 and "DENY" in refused.stdout

    described = server.run(Role.AUDITOR, "certs", "describe", cert_id, "--json")
    assert json.loads(described.stdout)["policies"] == ["meters"]
    assert server.run(Role.OPERATOR, "certs", "deactivate", cert_id).returncode == 0
    assert iot.describe_certificate(certificateId=cert_id)[
        "certificateDescription"]["status"] == "INACTIVE"
    assert server.run(Role.OPERATOR, "certs", "revoke", cert_id).returncode == 0
    assert iot.describe_certificate(certificateId=cert_id)[
        "certificateDescription"]["status"] == "REVOKED"
    detached = server.run(Role.OPERATOR, "policies", "detach", "meters", "--target", cert_id)
    assert detached.returncode == 0, detached.stderr
    assert verify(server.store, server.trail_keys()).ok


def test_no_endpoint_means_no_call(server: Server, tmp_path: Path) -> None:
    """Without an endpoint the CLI refuses rather than fall back to AWS itself."""
    env = server.env(Role.AUDITOR)
    del env["BASTION_API_URL"]
    env["BASTION_DATA_DIR"] = str(tmp_path / "elsewhere")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-config")
    result = subprocess.run([*BASTION, "things", "list"], capture_output=True, text=True,
                            timeout=60, env=env, check=False)
    assert result.returncode == 1 and "no API endpoint" in result.stderr


def test_aws_cli_with_the_printed_profile(server: Server, tmp_path: Path) -> None:
    """`bastion aws-profile`, pasted into ~/.aws, is all `aws iot list-things` needs."""
    pytest.importorskip("awscli")
    printed = server.run(Role.ADMIN, "aws-profile", "--endpoint-url", server.url,
                         "--role", "auditor")
    assert printed.returncode == 0, printed.stderr
    config, _, rest = printed.stdout.partition("# ~/.aws/credentials\n")
    (tmp_path / "config").write_text(config)
    (tmp_path / "credentials").write_text(rest.split("\n# Then:")[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BASTION_"))}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    server.run(Role.OPERATOR, "things", "create", "cli-visible")
    listed = subprocess.run([sys.executable, "-m", "awscli", "--profile", "bastion", "iot",
                             "list-things"], capture_output=True, text=True, timeout=60,
                            env=env, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "cli-visible" in [t["thingName"] for t in json.loads(listed.stdout)["things"]]
    # The auditor key of that profile cannot change anything.
    denied = subprocess.run([sys.executable, "-m", "awscli", "--profile", "bastion", "iot",
                             "create-thing", "--thing-name", "nope"], capture_output=True,
                            text=True, timeout=60, env=env, check=False)
    assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr
