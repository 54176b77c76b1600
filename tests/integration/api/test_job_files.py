"""Jobs with files served by Bastion: a firmware and a job document uploaded with
``bastion files upload``, a job created with boto3 from the document (``documentSource``)
whose placeholder Bastion turns into a presigned URL, the device fetching the job over
MQTT and over ``iot-jobs-data`` and downloading the firmware over HTTPS — and the URLs
that must be refused: expired (the file service's clock is moved), tampered, unsigned,
another file's."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bastion.api import MemoryTrail, Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.cli._app import app as cli
from bastion.config import ApiConfig, Config, MQTTConfig
from bastion.datadir import init_data_dir
from support.clients import Client
from support.clock import ManualClock
from support.running import RunningBastion

from .conftest import ACCOUNT, KEYS, REGION, ApiBastion, device_through_api

FIRMWARE = os.urandom(200_000)
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ota-download"


@dataclass
class FilesBastion:
    api: ApiBastion
    clock: ManualClock

    def download(self, url: str) -> tuple[int, bytes, dict[str, str]]:
        """GET ``url`` over HTTPS (Bastion's CA): status, body, headers (lower-case)."""
        context = ssl.create_default_context(cafile=str(self.api.datadir.ca_cert_path))
        try:
            with urllib.request.urlopen(url, context=context, timeout=10) as answer:
                return answer.status, answer.read(), _headers(answer.headers.items())
        except urllib.error.HTTPError as error:
            return error.code, error.read(), _headers(error.headers.items())


def _headers(items: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in items}


@pytest.fixture(scope="module")
def bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilesBastion]:
    datadir = init_data_dir(tmp_path_factory.mktemp("files") / "data")
    clock = ManualClock()
    trail = MemoryTrail()
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(host="127.0.0.1", port=0))
    running = RunningBastion(config, datadir, credentials=StaticCredentials(
        {key_id: (secret, Role(role)) for role, (key_id, secret) in KEYS.items()}),
        trail=trail, clock=clock)
    running.start()
    try:
        api = running.app.api
        assert api is not None
        yield FilesBastion(ApiBastion(running, trail, api.url, datadir,
                                      str(datadir.ca_cert_path)), clock)
    finally:
        running.stop()


def upload(bastion: FilesBastion, path: Path, name: str) -> str:
    """``bastion files upload`` on the running Bastion's data directory; the printed URL."""
    result = CliRunner().invoke(cli, ["files", "upload", str(path), "--name", name,
                                      "--data-dir", str(bastion.api.datadir.path)])
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.endswith(f"/_bastion/files/{name}") and url.startswith("https://")
    return url


def _request(device: Client, topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    device.publish(topic, json.dumps(payload), qos=1)
    [answer] = device.expect()
    assert answer.topic == topic + "/accepted", answer.payload
    return dict(json.loads(answer.payload))


def test_ota_with_presigned_urls(bastion: FilesBastion, tmp_path: Path) -> None:
    api = bastion.api
    iot, jobs_data = api.client(), api.client("iot-jobs-data")
    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(FIRMWARE)
    upload(bastion, firmware, "fw-2.0.bin")
    digest = hashlib.sha256(FIRMWARE).hexdigest()
    document = {"operation": "ota", "sha256": digest,
                "url": "${aws:iot:s3-presigned-url:s3://firmware-bucket/fw-2.0.bin}"}
    job_file = tmp_path / "ota.json"
    job_file.write_text(json.dumps(document))
    source = upload(bastion, job_file, "ota-2.0.json")

    thing = "ota-device"
    files = device_through_api(api, iot, thing, tmp_path / "device")
    device = Client(files, api.mqtt_port).connect()
    try:
        device.subscribe(f"$aws/things/{thing}/jobs/notify-next", qos=1)
        iot.create_job(jobId="ota-2-0", documentSource=source,
                       targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"],
                       presignedUrlConfig={"roleArn": ROLE, "expiresInSec": 60})
        described = iot.describe_job(jobId="ota-2-0")
        assert described["documentSource"] == source
        assert described["job"]["presignedUrlConfig"] == {"roleArn": ROLE, "expiresInSec": 60}
        # The operator sees the document as stored, placeholder included.
        assert json.loads(iot.get_job_document(jobId="ota-2-0")["document"]) == document

        [notified] = device.expect()
        next_url = json.loads(notified.payload)["execution"]["jobDocument"]["url"]
        started = _request(device, f"$aws/things/{thing}/jobs/start-next", {})
        execution_document = started["execution"]["jobDocument"]
        url = execution_document["url"]
        assert execution_document["sha256"] == digest
        assert url.startswith(f"{api.url}/_bastion/files/fw-2.0.bin?X-Bastion-Expires=")
        got = _request(device, f"$aws/things/{thing}/jobs/ota-2-0/get", {})
        assert got["execution"]["jobDocument"]["url"].startswith(f"{api.url}/_bastion/files/")
    finally:
        device.disconnect()

    for fetched in (url, next_url):
        status, body, headers = bastion.download(fetched)
        assert status == 200 and body == FIRMWARE
        assert headers["x-bastion-sha256"] == digest

    # Tampered: the signature, the expiry, the file.
    signature = url.rsplit("=", 1)[1]
    forged = url[:-len(signature)] + ("0" if signature[0] != "0" else "1") + signature[1:]
    later = url.replace("X-Bastion-Expires=", "X-Bastion-Expires=9")
    for bad in (forged, later, url.replace("fw-2.0.bin", "ota-2.0.json"),
                url.split("?")[0]):
        status, _, headers = bastion.download(bad)
        assert (status, headers["x-amzn-errortype"]) == (403, "AccessDeniedException"), bad

    # A genuine URL for a file that does not exist.
    assert api.running.app.services.files is not None
    status, _, headers = bastion.download(
        api.running.app.services.files.presigned_url("none.bin", 60))
    assert (status, headers["x-amzn-errortype"]) == (404, "ResourceNotFoundException")

    # Expired: 60 s later the URL is refused; a fresh fetch gives a new one that works.
    bastion.clock.advance(timedelta(seconds=61))
    status, body, _ = bastion.download(url)
    assert status == 403 and b"expired" in body
    fresh = jobs_data.describe_job_execution(thingName=thing, jobId="ota-2-0",
                                             includeJobDocument=True)["execution"]
    fresh_url = json.loads(fresh["jobDocument"])["url"]
    assert fresh_url != url
    status, body, _ = bastion.download(fresh_url)
    assert status == 200 and body == FIRMWARE

    # The downloads are in the trail, refusals as denied.
    downloads = [r for r in api.trail.records if r.operation == "DownloadFile"]
    assert {r.outcome for r in downloads} >= {"allowed", "denied"}


def test_upload_refuses_to_replace_without_overwrite(bastion: FilesBastion,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"one")
    upload(bastion, path, "notes.txt")
    path.write_bytes(b"two")
    again = ["files", "upload", str(path), "--data-dir", str(bastion.api.datadir.path)]
    refused = CliRunner().invoke(cli, again)
    assert refused.exit_code == 2 and "exists" in refused.output
    assert CliRunner().invoke(cli, [*again, "--overwrite"]).exit_code == 0
    assert bastion.api.running.app.services.files is not None
    assert bastion.api.running.app.services.files.read("notes.txt") == b"two"


def test_refused_document_sources(bastion: FilesBastion) -> None:
    iot = bastion.api.client()
    iot.create_thing(thingName="refusals")
    target = [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/refusals"]
    with pytest.raises(iot.exceptions.InvalidRequestException, match="does not exist"):
        iot.create_job(jobId="no-file", targets=target, documentSource="s3://b/absent.json")
    with pytest.raises(iot.exceptions.InvalidRequestException, match="does not exist"):
        iot.create_job(jobId="no-firmware", targets=target, document=json.dumps(
            {"url": "${aws:iot:s3-presigned-url:s3://b/absent.bin}"}))
    with pytest.raises(iot.exceptions.InvalidRequestException, match="not a Bastion file"):
        iot.create_job(jobId="elsewhere", targets=target,  # https:// elsewhere is fetched
                       documentSource="ftp://example.com/job.json")
    with pytest.raises(iot.exceptions.InvalidRequestException, match="not both"):
        iot.create_job(jobId="both", targets=target, document="{}",
                       documentSource="s3://b/absent.json")
