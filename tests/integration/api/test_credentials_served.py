"""``bastion serve`` with the credentials provider on: its banner names the endpoint, the
``aws`` CLI makes the role alias, a device fetches credentials with its certificate, and
boto3 signs with them; the real, hash-chained trail records both with the device."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from bastion.access import AccessKeyService, Role
from bastion.pki import client_ssl_context
from bastion.store import Store
from bastion.trail import export
from support.served import ServedBastion

from .conftest import ACCOUNT, NO_RETRIES, REGION
from .test_cli import AWS

_BANNER = re.compile(r"^\s+credentials\s+https://127\.0\.0\.1:(\d+)/role-aliases/<alias>/"
                     r"credentials$", re.MULTILINE)


@pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")
def test_served_credentials_provider(tmp_path: Path) -> None:
    assert AWS is not None
    server = ServedBastion(tmp_path, settings={
        "credentials": {"enabled": True, "host": "127.0.0.1", "port": 0},
        "audit": {"enabled": False}, "detect": {"enabled": False}})
    database = f"sqlite:///{server.datadir.db_path}"
    with Store.open(database) as store:
        key_id, secret = AccessKeyService(store, server.datadir.open_keystore()
                                          ).create_access_key(Role.OPERATOR, "credentials test")
    (device,) = server.devices("pump-7")  # its policy allows iot:*
    server.start()
    try:
        banner = (tmp_path / "serve-1.out").read_text()
        found = _BANNER.search(banner)
        assert found, banner
        port = int(found.group(1))
        ca = str(server.data / "ca" / "root-ca.cert.pem")
        env = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
               "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp_path / "none"),
               "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
               "AWS_MAX_ATTEMPTS": "1", "PATH": "/usr/bin:/bin"}
        made = subprocess.run(
            [AWS, "iot", "create-role-alias", "--role-alias", "pump-logs", "--role-arn",
             f"arn:aws:iam::{ACCOUNT}:role/bastion-auditor", "--credential-duration-seconds",
             "900", "--endpoint-url", server.url, "--ca-bundle", ca, "--output", "json"],
            capture_output=True, text=True, env=env, timeout=60, check=False)
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["roleAliasArn"] == (
            f"arn:aws:iot:{REGION}:{ACCOUNT}:rolealias/pump-logs")

        context = client_ssl_context(server.datadir.ca_cert_path.read_bytes(), device.cert,
                                     device.key)
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context,
                                                 timeout=10)
        connection.request("GET", "/role-aliases/pump-logs/credentials",
                           headers={"x-amzn-iot-thingname": "pump-7"})
        answer = connection.getresponse()
        assert answer.status == 200
        credentials = json.loads(answer.read())["credentials"]
        connection.close()

        iot: Any = boto3.client(
            "iot", endpoint_url=server.url, region_name=REGION, verify=ca,
            aws_access_key_id=credentials["accessKeyId"],
            aws_secret_access_key=credentials["secretAccessKey"],
            aws_session_token=credentials["sessionToken"], config=NO_RETRIES)
        assert iot.describe_thing(thingName="pump-7")["thingName"] == "pump-7"
    finally:
        assert server.stop() == 0
    with Store.open(database) as store:
        records = [r for r in export(store)
                   if r["access_key_id"] == credentials["accessKeyId"]]
    assert [(r["operation"], r["outcome"]) for r in records] == [
        ("AssumeRoleWithCertificate", "allowed"), ("DescribeThing", "allowed")]
    assert records[0]["parameters"] == {"roleAlias": "pump-logs", "thingName": "pump-7",
                                        "certificateId": device.certificate_id}
    assert records[1]["role"] == "auditor"
    assert records[1]["parameters"]["bastion:caller"] == {
        "roleAlias": "pump-logs", "thingName": "pump-7",
        "certificateId": device.certificate_id}
