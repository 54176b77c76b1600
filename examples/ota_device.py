"""A device that installs signed OTA updates from Bastion — and refuses unsigned, tampered
or foreign ones (and, when asked, revoked ones).

What it does, once per job (AWS IoT Jobs over MQTT, mutual TLS):

1. asks for its next job (``$aws/things/<thing>/jobs/start-next``) and takes an OTA job
   (a document with ``afr_ota``);
2. for every file: downloads ``update_data_url`` (a presigned HTTPS URL Bastion put there
   for this device), checks its size, then checks the *signing certificate* — carried in
   the job as ``x-bastion-certificate`` — against the code-signing CA it **pins**
   (``--code-signing-ca``, installed with the device, never taken from the network):
   issued by that CA, valid now, a leaf, extended key usage ``codeSigning``; and finally
   the file's ``sig-sha256-ecdsa`` signature (ECDSA P-256, SHA-256) with that
   certificate's key;
3. "installs" the file (writes it to ``--install-dir``) only when all of that holds, and
   reports the job ``SUCCEEDED``; otherwise ``FAILED`` with the reason in
   ``statusDetails.reason``.

The certificate in the job is only a carrier: trust comes from the pinned CA, so a job
that brings its own certificate (or its own CA) is refused. A device may instead keep
the signing certificate at the job's ``certfile`` path; this example uses that file when
it exists and the job carries none.

Run it against ``make run`` (the data directory ``bastion-data``; a thing with a
certificate and a policy allowing the jobs topics)::

    python examples/ota_device.py --thing my-device \\
        --cert my-device.cert.pem --key my-device.key.pem \\
        --root-ca bastion-data/ca/root-ca.cert.pem \\
        --code-signing-ca bastion-data/ca/code-signing-ca.cert.pem

With ``--signing-profile NAME`` it also refuses a file signed by another profile. With
``--role-alias ALIAS --credentials-endpoint https://bastion:8444 --signer-endpoint
https://bastion:8443`` it also refuses a revoked signature: it trades its certificate for
temporary credentials (the role alias; its policy must allow
``iot:AssumeRoleWithCertificate``) and asks AWS Signer's ``GetRevocationStatus`` about
the signing job the job document names (needs ``boto3`` too).
The checks live in ``ota_verify.py`` beside it (shared with ``ota_mqtt_device.py``,
which takes the file over MQTT streams instead).

Exit status: 0 when the job succeeded, 1 when it failed, 2 when no job came.
Needs ``paho-mqtt`` (2.x) and ``cryptography``; nothing of Bastion.
"""

from __future__ import annotations

import argparse
import json
import queue
import ssl
import sys
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from ota_verify import (
    MAX_FILE_BYTES,
    Refused,
    RevocationCheck,
    add_revocation_arguments,
    install,
    ota_files,
    revocation_check_from,
    verify_file,
)
from paho.mqtt.enums import CallbackAPIVersion


def download(url: str, context: ssl.SSLContext) -> bytes:
    with urllib.request.urlopen(url, context=context, timeout=30) as answer:
        data: bytes = answer.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Refused("the file is too large")
    return data


def download_and_install(document: dict[str, Any], pinned_ca: x509.Certificate,
                         https: ssl.SSLContext, install_dir: Path,
                         signing_profile: str | None = None,
                         revocations: RevocationCheck | None = None) -> list[Path]:
    """Download and check every file, then install them all (or none)."""
    checked: list[tuple[dict[str, Any], bytes]] = []
    for entry in ota_files(document):
        url = entry.get("update_data_url")
        if "HTTP" not in document["afr_ota"].get("protocols", []) \
                or not isinstance(url, str) or not url.startswith("https://"):
            raise Refused("no HTTPS download URL")
        try:
            data = download(url, https)
        except OSError as error:
            raise Refused(f"download failed: {error}") from None
        verify_file(entry, data, pinned_ca, signing_profile, revocations)
        checked.append((entry, data))
    return install(checked, install_dir)


class JobsClient:
    """The few AWS IoT Jobs requests this device makes, over paho."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.thing = args.thing
        self.answers: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.thing)
        self.client.tls_set(ca_certs=args.root_ca, certfile=args.cert, keyfile=args.key,
                            tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_message = lambda _c, _u, message: self.answers.put(
            (message.topic, json.loads(message.payload or b"{}")))
        acknowledged: queue.Queue[int] = queue.Queue()
        self.client.on_subscribe = lambda _c, _u, mid, _codes, _p: acknowledged.put(mid)
        self.client.connect(args.endpoint, args.port)
        self.client.loop_start()
        self.base = f"$aws/things/{self.thing}/jobs"
        topics = [f"{self.base}/start-next/accepted", f"{self.base}/start-next/rejected",
                  f"{self.base}/notify-next", f"{self.base}/+/update/accepted",
                  f"{self.base}/+/update/rejected"]
        _, mid = self.client.subscribe([(topic, 1) for topic in topics])
        while acknowledged.get(timeout=args.timeout) != mid:  # subscribed before asking
            pass

    def wait(self, suffixes: tuple[str, ...], timeout: float) -> tuple[str, dict[str, Any]]:
        while True:
            topic, payload = self.answers.get(timeout=timeout)
            if topic.endswith(suffixes):
                return topic, payload

    def next_job(self, timeout: float) -> dict[str, Any] | None:
        self.client.publish(f"{self.base}/start-next", json.dumps({}), qos=1)
        try:
            topic, payload = self.wait(("start-next/accepted", "start-next/rejected"), timeout)
            if topic.endswith("accepted") and payload.get("execution"):
                return dict(payload["execution"])
            topic, payload = self.wait(("notify-next",), timeout)  # wait for one to come
        except queue.Empty:
            return None
        return self.next_job(timeout) if payload.get("execution") else None

    def report(self, job_id: str, status: str, details: dict[str, str],
               timeout: float) -> None:
        self.client.publish(f"{self.base}/{job_id}/update", json.dumps(
            {"status": status, "statusDetails": details}), qos=1)
        topic, payload = self.wait((f"{job_id}/update/accepted",
                                    f"{job_id}/update/rejected"), timeout)
        if topic.endswith("rejected"):
            raise RuntimeError(f"the job update was rejected: {payload}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="localhost")
    parser.add_argument("--port", type=int, default=8883)
    parser.add_argument("--thing", required=True)
    parser.add_argument("--cert", required=True, help="the device certificate (PEM)")
    parser.add_argument("--key", required=True, help="the device private key (PEM)")
    parser.add_argument("--root-ca", required=True,
                        help="the CA of Bastion's server certificate (MQTT and HTTPS)")
    parser.add_argument("--code-signing-ca", required=True,
                        help="the code-signing CA the device pins (PEM)")
    parser.add_argument("--signing-profile",
                        help="accept only files signed by this profile (its certificate's CN)")
    parser.add_argument("--install-dir", default="ota-installed", type=Path)
    parser.add_argument("--timeout", type=float, default=30.0)
    add_revocation_arguments(parser)
    args = parser.parse_args(argv)
    revocations = revocation_check_from(args)

    pinned_ca = x509.load_pem_x509_certificate(Path(args.code_signing_ca).read_bytes())
    https = ssl.create_default_context(cafile=args.root_ca)
    jobs = JobsClient(args)
    try:
        execution = jobs.next_job(args.timeout)
        if execution is None:
            print("no job", file=sys.stderr)
            return 2
        job_id = execution["jobId"]
        try:
            installed = download_and_install(execution.get("jobDocument") or {}, pinned_ca,
                                             https, args.install_dir, args.signing_profile,
                                             revocations)
        except Refused as refused:
            print(f"{job_id}: FAILED: {refused}", file=sys.stderr)
            jobs.report(job_id, "FAILED", {"reason": str(refused)}, args.timeout)
            return 1
        names = ", ".join(path.name for path in installed)
        print(f"{job_id}: SUCCEEDED: installed {names}")
        jobs.report(job_id, "SUCCEEDED", {"installed": names}, args.timeout)
        return 0
    finally:
        jobs.close()


if __name__ == "__main__":
    sys.exit(main())
