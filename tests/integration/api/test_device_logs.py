"""Device logs on demand and the files REST API, against a running Bastion.

A job from the ``bastion-upload-logs`` template reaches a device (AWS's device SDK,
``examples/upload_logs.py``'s own code) with a presigned upload URL for its execution
alone; the device PUTs its logs; the file is stored, linked to the job execution and
listed with the thing. Refused: the same URL again (single use), more bytes than the
URL allows (declared or streamed), an expired URL, a URL whose limit was changed. The
operator's ``PUT``/``GET``/``DELETE /_bastion/files`` are SigV4 calls: ``admin`` and
``operator`` write, ``auditor`` only lists; an uploaded body must be the one whose
SHA-256 was signed."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import ssl
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bastion.account import Account
from bastion.controlplane import device_policy_document
from bastion.files import MAX_BYTES_PARAM, UPLOADS_PATH, FileService
from support.clients import Client, DeviceFiles
from support.examples import load_example

from .conftest import ACCOUNT, KEYS, REGION, ApiBastion, device_through_api
from .test_ota import execution_of, thing_arn

LEAST_PRIVILEGE = device_policy_document(Account(REGION, ACCOUNT))
TEMPLATE_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/bastion-upload-logs"


example = load_example("upload_logs.py")


def https(api: ApiBastion, method: str, url: str, body: bytes | None = None,
          headers: dict[str, str] | None = None, *, chunked: bool = False
          ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request to the API's port: (status, JSON body, headers)."""
    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=str(api.datadir.ca_cert_path))
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context,
                                             timeout=20)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=iter([body]) if chunked and body else body,
                           headers=headers or {}, encode_chunked=chunked)
        answer = connection.getresponse()
        raw = answer.read()
        return answer.status, json.loads(raw) if raw else {}, {
            key.lower(): value for key, value in answer.getheaders()}
    finally:
        connection.close()


def signed(api: ApiBastion, method: str, path: str, body: bytes = b"", role: str = "admin",
           query: str = "", payload_sha256: str | None = None
           ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A SigV4 request (service ``iot``) to a files path, signing the body's SHA-256."""
    key_id, secret = KEYS[role]
    url = f"{api.url}{path}" + (f"?{query}" if query else "")
    digest = payload_sha256 or hashlib.sha256(body).hexdigest()
    request = AWSRequest(method=method, url=url, data=body,
                         headers={"x-amz-content-sha256": digest})
    SigV4Auth(Credentials(key_id, secret), "iot", REGION).add_auth(request)
    return https(api, method, url, body if method == "PUT" else None, dict(request.headers))


def device_job_document(api: ApiBastion, device: DeviceFiles, job_id: str) -> dict[str, Any]:
    """The job's document as the device gets it (its own upload URL in it)."""
    client = Client(device, api.mqtt_port, client_id=device.name).connect()
    try:
        client.subscribe(f"$aws/things/{device.name}/jobs/{job_id}/get/+", qos=1)
        client.publish(f"$aws/things/{device.name}/jobs/{job_id}/get", "{}", qos=1)
        [answer] = client.expect()
        assert answer.topic.endswith("/accepted"), answer.payload
        document: dict[str, Any] = json.loads(answer.payload)["execution"]["jobDocument"]
        return document
    finally:
        client.disconnect()


def run_device(api: ApiBastion, device: DeviceFiles, log_file: Path) -> int:
    code: int = example.main([
        "--endpoint", "localhost", "--port", str(api.mqtt_port), "--thing", device.name,
        "--cert", str(device.cert), "--key", str(device.key),
        "--root-ca", str(api.datadir.ca_cert_path), "--log-file", str(log_file),
        "--timeout", "10"])
    return code


def files_service(api: ApiBastion) -> FileService:
    return api.running.app.services.files


def test_a_device_uploads_its_logs_on_demand(api_bastion: ApiBastion,
                                            unique: Callable[[str], str],
                                            tmp_path: Path) -> None:
    api = api_bastion
    iot = api.client()
    templates = [t["jobTemplateId"] for t in iot.list_job_templates()["jobTemplates"]]
    assert "bastion-upload-logs" in templates
    thing = unique("logger")
    device = device_through_api(api, iot, thing, tmp_path / "device", LEAST_PRIVILEGE)
    job_id = unique("logs")
    iot.create_job(jobId=job_id, targets=[thing_arn(thing)], jobTemplateArn=TEMPLATE_ARN)
    # The stored document holds the placeholder; the device's copy, its own URL.
    stored = json.loads(iot.get_job_document(jobId=job_id)["document"])
    assert stored["uploadUrl"].startswith("${bastion:upload-url")
    url = device_job_document(api, device, job_id)["uploadUrl"]
    assert url.startswith(f"{api.url}{UPLOADS_PATH}{job_id}/{thing}/1?")

    logs = tmp_path / "device.log"
    logs.write_bytes(b"boot ok\n" * 5000 + os.urandom(1000))
    assert run_device(api, device, logs) == 0
    execution = execution_of(api, job_id, thing)
    assert execution["status"] == "SUCCEEDED"
    name = execution["statusDetails"]["detailsMap"]["uploaded"]
    assert (api.datadir.path / "files" / name).read_bytes() == logs.read_bytes()

    # Listed with the thing, linked to the job execution; the auditor may list.
    status, listed, _ = signed(api, "GET", "/_bastion/files", role="auditor",
                               query=urllib.parse.urlencode({"thingName": thing}))
    assert status == 200
    assert listed["files"] == [{
        "name": name, "size": logs.stat().st_size,
        "sha256": hashlib.sha256(logs.read_bytes()).hexdigest(),
        "lastModifiedDate": listed["files"][0]["lastModifiedDate"],
        "thingName": thing, "jobId": job_id, "executionNumber": 1}]

    # The same URL again: refused, and the file is unchanged.
    status, body, headers = https(api, "PUT", url, b"replayed")
    assert (status, headers.get("x-amzn-errortype")) == (403, "AccessDeniedException"), body
    assert (api.datadir.path / "files" / name).read_bytes() == logs.read_bytes()


def test_uploads_past_the_limit_are_refused(api_bastion: ApiBastion,
                                           unique: Callable[[str], str],
                                           tmp_path: Path) -> None:
    api = api_bastion
    iot = api.client()
    thing = unique("big")
    device = device_through_api(api, iot, thing, tmp_path / "device", LEAST_PRIVILEGE)
    job_id = unique("small")
    iot.create_job(jobId=job_id, targets=[thing_arn(thing)], document=json.dumps(
        {"operation": "upload-logs", "uploadUrl": "${bastion:upload-url:1024}",
         "maxBytes": 1024}))
    url = device_job_document(api, device, job_id)["uploadUrl"]
    assert f"{MAX_BYTES_PARAM}=1024" in url
    # Declared too long: refused before the body is read.
    status, _, headers = https(api, "PUT", url, b"x" * 1025)
    assert (status, headers.get("x-amzn-errortype")) == (
        413, "RequestEntityTooLargeException")
    # Sent without a length (chunked): stopped at the limit.
    status, _, _ = https(api, "PUT", url, b"x" * 5000, chunked=True)
    assert status == 413
    status, listed, _ = signed(api, "GET", "/_bastion/files",
                               query=urllib.parse.urlencode({"thingName": thing}))
    assert (status, listed) == (200, {"files": []})
    # Within the limit, the same URL still works: a refused upload does not use it.
    status, stored, _ = https(api, "PUT", url, b"x" * 1024)
    assert status == 200 and stored["size"] == 1024


def test_expired_altered_and_finished_upload_urls_are_refused(
        api_bastion: ApiBastion, unique: Callable[[str], str]) -> None:
    api = api_bastion
    iot = api.client()
    files = files_service(api)
    thing, job_id = unique("late"), unique("late")
    iot.create_thing(thingName=thing)
    iot.create_job(jobId=job_id, targets=[thing_arn(thing)], jobTemplateArn=TEMPLATE_ARN)
    path = f"{UPLOADS_PATH}{job_id}/{thing}/1"
    # Bastion's own signature, over a time already past.
    expired = files.signer().sign(f"{api.url}{path}", datetime.now(UTC) - timedelta(seconds=5),
                                  method="PUT", limits={MAX_BYTES_PARAM: "1024"})
    status, _, headers = https(api, "PUT", expired, b"late logs")
    assert (status, headers.get("x-amzn-errortype")) == (403, "AccessDeniedException")
    good = files.upload_url(job_id, thing, 1, max_bytes=16, expires_in_sec=600)
    for altered in (good.replace(f"{MAX_BYTES_PARAM}=16", f"{MAX_BYTES_PARAM}=99999"),
                    good.replace(f"/{thing}/1?", f"/{thing}/2?"),
                    good.replace(UPLOADS_PATH, "/_bastion/files/")):
        status, _, _ = https(api, "PUT", altered, b"logs")
        assert status == 403, altered
    # A download URL is no upload URL (signed for GET).
    download = files.presigned_url("absent.bin", 600).replace("/_bastion/files/",
                                                              UPLOADS_PATH)
    assert https(api, "PUT", download, b"x")[0] == 403
    # A URL Bastion signed, for an execution that does not exist.
    stray = files.upload_url(unique("nojob"), thing, 1, max_bytes=16, expires_in_sec=600)
    assert https(api, "PUT", stray, b"x")[0] == 403
    # The execution is canceled: its URL, still within its time, uploads nothing.
    iot.cancel_job(jobId=job_id)
    status, _, headers = https(api, "PUT", good, b"ok")
    assert (status, headers.get("x-amzn-errortype")) == (403, "AccessDeniedException")
    other_job = unique("again")
    iot.create_job(jobId=other_job, targets=[thing_arn(thing)], jobTemplateArn=TEMPLATE_ARN)
    status, _, _ = https(api, "PUT", files.upload_url(other_job, thing, 1, max_bytes=16),
                         b"ok")
    assert status == 200


def test_files_rest_api_roles_and_signed_bodies(api_bastion: ApiBastion,
                                                unique: Callable[[str], str]) -> None:
    api = api_bastion
    name = unique("rest") + ".bin"
    data = os.urandom(300_000)
    status, stored, _ = signed(api, "PUT", f"/_bastion/files/{name}", data, role="operator")
    assert (status, stored) == (200, {"name": name, "size": len(data),
                                      "sha256": hashlib.sha256(data).hexdigest()})
    assert (api.datadir.path / "files" / name).read_bytes() == data
    # Not again without overwrite; with it, yes.
    assert signed(api, "PUT", f"/_bastion/files/{name}", b"new", role="operator")[0] == 400
    assert signed(api, "PUT", f"/_bastion/files/{name}", b"new", role="admin",
                  query="overwrite=true")[0] == 200
    # The auditor reads but does not write.
    status, _, headers = signed(api, "PUT", f"/_bastion/files/{unique('a')}.bin", b"x",
                                role="auditor")
    assert (status, headers.get("x-amzn-errortype")) == (403, "AccessDeniedException")
    assert signed(api, "DELETE", f"/_bastion/files/{name}", role="auditor")[0] == 403
    status, listed, _ = signed(api, "GET", "/_bastion/files", role="auditor")
    assert status == 200 and name in [item["name"] for item in listed["files"]]
    # A body that is not the signed one is refused, and nothing is stored.
    other = unique("tampered") + ".bin"
    status, _, _ = signed(api, "PUT", f"/_bastion/files/{other}", b"evil", role="admin",
                          payload_sha256=hashlib.sha256(b"good").hexdigest())
    assert status == 403
    assert not (api.datadir.path / "files" / other).exists()
    # No SigV4 at all: refused.
    assert https(api, "PUT", f"{api.url}/_bastion/files/{other}", b"x")[0] in (400, 403)
    assert signed(api, "DELETE", f"/_bastion/files/{name}", role="operator")[0] == 200
    assert not (api.datadir.path / "files" / name).exists()
    assert signed(api, "DELETE", f"/_bastion/files/{name}", role="operator")[0] == 404
