"""Jobs through boto3 and AWS's device SDK: ``jobExecutionsRetryConfig`` (a device reports
FAILED and sees the execution come back as number 2), and ``documentSource`` naming an
HTTPS server that is not Bastion (a real local server with a certificate from a test CA)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from awsiot import iotjobs

from bastion.api import MemoryTrail, Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, JobsConfig, MQTTConfig
from bastion.datadir import init_data_dir
from bastion.pki import cert_to_pem, create_root_ca, issue_server_certificate, private_key_to_pem
from support.jobs_sdk import QOS1, SdkDevice, take, take_matching
from support.running import RunningBastion

from .conftest import KEYS, ApiBastion, device_through_api

Unique = Callable[[str], str]
DOCUMENT = '{"operation": "install", "version": "3.0.0"}'


# -- retries --------------------------------------------------------------------------------


def _report(sdk: SdkDevice, job_id: str, status: str, token: str) -> None:
    sdk.publish(sdk.client.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=sdk.thing, job_id=job_id, status=status, client_token=token), QOS1))
    accepted = take_matching(sdk.accepted, lambda r: getattr(r, "client_token", None) == token,
                             f"update {token} accepted")
    assert isinstance(accepted, iotjobs.UpdateJobExecutionResponse)


def test_failed_execution_is_retried_once(api_bastion: ApiBastion, iot: Any, unique: Unique,
                                          tmp_path: Path) -> None:
    device = device_through_api(api_bastion, iot, unique("retry-dev"), tmp_path)
    sdk = SdkDevice(device, api_bastion.mqtt_port)
    try:
        job_id = unique("retry-job")
        sdk.subscribe_all(job_id)
        iot.create_job(jobId=job_id, targets=[iot.describe_thing(
            thingName=device.name)["thingArn"]], document=DOCUMENT,
            jobExecutionsRetryConfig={"criteriaList": [
                {"failureType": "FAILED", "numberOfRetries": 1}]})
        assert iot.describe_job(jobId=job_id)["job"]["jobExecutionsRetryConfig"] == {
            "criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]}
        first = take(sdk.next_events, "notify-next")
        assert (first.execution.job_id, first.execution.execution_number) == (job_id, 1)

        _report(sdk, job_id, "FAILED", "fail-1")
        again = take_matching(sdk.next_events, lambda e: e.execution is not None,
                              "notify-next of the retry")
        assert (again.execution.job_id, again.execution.status,
                again.execution.execution_number) == (job_id, "QUEUED", 2)
        described = iot.describe_job_execution(jobId=job_id, thingName=device.name)["execution"]
        assert (described["status"], described["executionNumber"]) == ("QUEUED", 2)
        assert iot.describe_job_execution(jobId=job_id, thingName=device.name,
                                          executionNumber=1)["execution"]["status"] == "FAILED"
        summaries = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
        assert sorted((s["jobExecutionSummary"]["executionNumber"],
                       s["jobExecutionSummary"]["retryAttempt"]) for s in summaries) \
            == [(1, 0), (2, 1)]
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"

        _report(sdk, job_id, "FAILED", "fail-2")  # the one retry is used up
        described = iot.describe_job_execution(jobId=job_id, thingName=device.name)["execution"]
        assert (described["status"], described["executionNumber"]) == ("FAILED", 2)
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"
    finally:
        sdk.close()


def test_bad_retry_config_is_refused(iot: Any, unique: Unique) -> None:
    thing = iot.create_thing(thingName=unique("retry-bad"))["thingArn"]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_job(jobId=unique("bad"), targets=[thing], document=DOCUMENT,
                       jobExecutionsRetryConfig={"criteriaList": [
                           {"failureType": "ALL", "numberOfRetries": 1},
                           {"failureType": "FAILED", "numberOfRetries": 1}]})


# -- documentSource over HTTPS --------------------------------------------------------------


class _Documents(BaseHTTPRequestHandler):
    documents: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def do_GET(self) -> None:
        status, body = self.documents.get(self.path, (404, b"not found"))
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "https://example.com/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def document_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a certificate from its own CA; yields its base
    URL and the CA file."""
    import ssl

    out = tmp_path_factory.mktemp("docserver")
    ca, ca_key = create_root_ca("Document Server Test CA")
    cert, key = issue_server_certificate(
        ca, ca_key, dns_names=["localhost"], ip_addresses=[ipaddress.ip_address("127.0.0.1")])
    (out / "ca.pem").write_bytes(cert_to_pem(ca))
    (out / "server.pem").write_bytes(cert_to_pem(cert))
    (out / "server.key").write_bytes(private_key_to_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(out / "server.pem", out / "server.key")
    _Documents.documents = {
        "/jobs/install.json": (200, DOCUMENT.encode()),
        "/jobs/big.json": (200, b'{"pad": "' + b"x" * 40000 + b'"}'),
        "/jobs/not-json.json": (200, b"not a json document"),
        "/jobs/moved.json": (302, b""),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Documents)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}", out / "ca.pem"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def intranet_bastion(tmp_path_factory: pytest.TempPathFactory,
                     document_server: tuple[str, Path]) -> Iterator[ApiBastion]:
    """A Bastion allowed to fetch documents from loopback, trusting the server's CA."""
    _, cafile = document_server
    datadir = init_data_dir(tmp_path_factory.mktemp("intranet") / "data")
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(host="127.0.0.1", port=0),
                    jobs=JobsConfig(document_source_cafile=str(cafile),
                                    document_source_networks=("127.0.0.0/8", "::1/128"),
                                    document_source_timeout=5.0))
    trail = MemoryTrail()
    running = RunningBastion(config, datadir, credentials=StaticCredentials(
        {key_id: (secret, Role(role)) for role, (key_id, secret) in KEYS.items()}),
        trail=trail).start()
    try:
        api = running.app.api
        assert api is not None
        yield ApiBastion(running, trail, api.url, datadir, str(datadir.ca_cert_path))
    finally:
        running.stop()


def test_document_fetched_from_https_source_reaches_the_device(
        intranet_bastion: ApiBastion, document_server: tuple[str, Path], unique: Unique,
        tmp_path: Path) -> None:
    base, _ = document_server
    iot = intranet_bastion.client()
    device = device_through_api(intranet_bastion, iot, unique("src-dev"), tmp_path)
    sdk = SdkDevice(device, intranet_bastion.mqtt_port)
    try:
        job_id = unique("src-job")
        sdk.subscribe_all(job_id)
        iot.create_job(jobId=job_id, documentSource=f"{base}/jobs/install.json",
                       targets=[iot.describe_thing(thingName=device.name)["thingArn"]])
        assert iot.get_job_document(jobId=job_id)["document"] == DOCUMENT
        assert iot.describe_job(jobId=job_id)["documentSource"] == f"{base}/jobs/install.json"
        event = take(sdk.next_events, "notify-next")
        assert event.execution.job_document == {"operation": "install", "version": "3.0.0"}
    finally:
        sdk.close()


@pytest.mark.parametrize(("path", "words"), [
    ("/jobs/missing.json", "HTTP 404"),
    ("/jobs/moved.json", "redirects are not followed"),
    ("/jobs/big.json", "bytes"),
    ("/jobs/not-json.json", "JSON"),
], ids=["404", "redirect", "too-big", "not-json"])
def test_bad_https_sources_are_refused(intranet_bastion: ApiBastion,
                                       document_server: tuple[str, Path], unique: Unique,
                                       path: str, words: str) -> None:
    base, _ = document_server
    iot = intranet_bastion.client()
    thing = iot.create_thing(thingName=unique("src-bad"))["thingArn"]
    with pytest.raises(iot.exceptions.InvalidRequestException) as caught:
        iot.create_job(jobId=unique("bad-src"), documentSource=f"{base}{path}", targets=[thing])
    assert words in caught.value.response["Error"]["Message"]


def test_plain_http_and_private_addresses_are_refused_by_default(
        iot: Any, document_server: tuple[str, Path], unique: Unique) -> None:
    """``api_bastion`` has the default configuration: no private networks, system CAs."""
    base, _ = document_server
    thing = iot.create_thing(thingName=unique("src-default"))["thingArn"]
    cases = [
        (base.replace("https://", "http://") + "/jobs/install.json", "plain http is refused"),
        (f"{base}/jobs/install.json", "not a public address"),
        ("https://[::1]/jobs/install.json", "not a public address"),
        ("https://user:pw@example.com/jobs/x.json", "user information"),
    ]
    for url, words in cases:
        with pytest.raises(iot.exceptions.InvalidRequestException) as caught:
            iot.create_job(jobId=unique("default-src"), documentSource=url, targets=[thing])
        assert words in caught.value.response["Error"]["Message"], url


def test_untrusted_server_certificate_is_refused(
        intranet_bastion: ApiBastion, document_server: tuple[str, Path], unique: Unique,
        tmp_path: Path) -> None:
    """The server's certificate names localhost and 127.0.0.1 only: asking for it by
    another loopback name fails verification."""
    base, _ = document_server
    iot = intranet_bastion.client()
    thing = iot.create_thing(thingName=unique("src-tls"))["thingArn"]
    port = base.rsplit(":", 1)[1]
    with pytest.raises(iot.exceptions.InvalidRequestException) as caught:
        iot.create_job(jobId=unique("tls-src"), targets=[thing],
                       documentSource=f"https://127.0.0.2:{port}/jobs/install.json")
    message = caught.value.response["Error"]["Message"]
    assert "could not be fetched" in message
