"""A device that rotates its own certificate when Bastion asks it to, with AWS's device SDK.

Run it against ``make run`` (a device made with ``bastion device create``, whose policy
also allows the CSR topics — see docs/rotation.md)::

    python examples/rotate_certificate.py --thing sensor-1 --cert devices/sensor-1.cert.pem \\
        --key devices/sensor-1.key.pem --ca bastion-data/ca/root-ca.cert.pem

and let the daily sweep start a rotation job for it (a thing group whose rotation policy
says ``--start-jobs``). What the device does, step by step:

1. connects with its current certificate (client id = thing name) and waits for a job
   whose document says ``"operation": "rotate-certificate"``;
2. starts the job execution (StartNextPendingJobExecution);
3. makes a new EC P-256 key *on the device* — it never leaves it — and publishes a CSR on
   ``$aws/certificates/create-from-csr/json`` (with ``--format cbor``: ``…/cbor``, CBOR as
   constrained devices send it; the SDK's identity client speaks JSON only, so the CBOR
   request goes over the SDK's connection with ``cbor2``); Bastion answers on
   ``…/accepted`` with the new certificate, already attached to the thing with the same
   policies, in the request's format;
4. writes the new key and certificate beside the old ones (``*.new``), disconnects, and
   connects with them; only when that works are the files swapped in (the old ones are
   kept as ``*.old`` until Bastion revokes the old certificate after its grace);
5. reports the execution ``SUCCEEDED`` over the new connection. A refusal or a failed
   reconnection is reported ``FAILED`` with the reason, over the old certificate, which
   Bastion leaves untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from awscrt import mqtt
from awsiot import iotidentity, iotjobs, mqtt_connection_builder
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

QOS1 = mqtt.QoS.AT_LEAST_ONCE
OPERATION = "rotate-certificate"
CSR_TOPIC = "$aws/certificates/create-from-csr/{}"
FORMATS = ("json", "cbor")


class Refused(Exception):
    """Bastion answered on a ``…/rejected`` topic.

    :ivar status_code: the HTTP-like status. :ivar error_code: e.g. ``Throttling``.
    """

    def __init__(self, status_code: int | None, error_code: str | None,
                 message: str | None) -> None:
        super().__init__(f"{status_code} {error_code}: {message}")
        self.status_code = status_code
        self.error_code = error_code
        self.error_message = message or ""


@dataclass(frozen=True)
class RotationJob:
    job_id: str
    certificate_id: str
    document: dict[str, Any]


def new_key_and_csr(thing_name: str) -> tuple[str, str]:
    """A new EC P-256 key and a CSR for it (PEMs). The key stays on the device."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, thing_name)]))
           .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return key_pem, csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


class RotationDevice:
    """One connection of the device (certificate and key from files), with the SDK's
    jobs and identity clients.

    :param port: Bastion's MQTT/TLS port (8883 under ``make run``).
    :param payload_format: ``json`` (the SDK's identity client) or ``cbor`` (the same
        topics under ``…/cbor``, CBOR payloads).
    :raises ValueError: another format.
    """

    def __init__(self, *, endpoint: str, port: int, thing_name: str, cert: Path, key: Path,
                 ca: Path, timeout: float = 10.0, payload_format: str = "json") -> None:
        if payload_format not in FORMATS:
            raise ValueError(f"payload_format must be one of {FORMATS}")
        self.payload_format = payload_format
        self.thing_name = thing_name
        self.timeout = timeout
        self._events: queue.Queue[Any] = queue.Queue()
        self._answers: queue.Queue[Any] = queue.Queue()
        self._connection = mqtt_connection_builder.mtls_from_path(
            endpoint=endpoint, port=port, ca_filepath=str(ca), cert_filepath=str(cert),
            pri_key_filepath=str(key), client_id=thing_name, clean_session=True,
            keep_alive_secs=30)
        self._connection.connect().result(timeout)
        self.jobs = iotjobs.IotJobsClient(self._connection)
        self.identity = iotidentity.IotIdentityClient(self._connection)
        thing = thing_name
        self._subscribe(self.jobs.subscribe_to_next_job_execution_changed_events,
                        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
                        self._events.put)
        self._subscribe(self.jobs.subscribe_to_start_next_pending_job_execution_accepted,
                        iotjobs.StartNextPendingJobExecutionSubscriptionRequest(
                            thing_name=thing), self._answers.put)
        self._subscribe(self.jobs.subscribe_to_start_next_pending_job_execution_rejected,
                        iotjobs.StartNextPendingJobExecutionSubscriptionRequest(
                            thing_name=thing), self._refused)
        if payload_format == "json":
            self._subscribe(self.identity.subscribe_to_create_certificate_from_csr_accepted,
                            iotidentity.CreateCertificateFromCsrSubscriptionRequest(),
                            self._answers.put)
            self._subscribe(self.identity.subscribe_to_create_certificate_from_csr_rejected,
                            iotidentity.CreateCertificateFromCsrSubscriptionRequest(),
                            self._refused)
        else:
            csr_topic = CSR_TOPIC.format("cbor")
            for answer in ("accepted", "rejected"):
                future, _ = self._connection.subscribe(f"{csr_topic}/{answer}", QOS1,
                                                       self._on_cbor_answer)
                future.result(timeout)

    def _on_cbor_answer(self, topic: str, payload: bytes, **_: Any) -> None:
        """An answer on ``…/create-from-csr/cbor/accepted|rejected``, as the SDK's JSON
        callbacks would get it."""
        try:
            document = cbor2.loads(payload)
        except (ValueError, cbor2.CBORDecodeError):
            document = None
        if not isinstance(document, dict):
            self._answers.put(Refused(None, "InvalidAnswer", "an answer that is not a CBOR map"))
        elif topic.endswith("/rejected"):
            self._answers.put(Refused(document.get("statusCode"), document.get("errorCode"),
                                      document.get("errorMessage")))
        else:
            self._answers.put(iotidentity.CreateCertificateFromCsrResponse.from_payload(
                document))

    def _subscribe(self, subscribe: Any, request: Any, callback: Any) -> None:
        future, _ = subscribe(request, QOS1, callback)
        future.result(self.timeout)

    def _refused(self, error: Any) -> None:
        self._answers.put(Refused(getattr(error, "status_code", None),
                                  getattr(error, "error_code", None) or getattr(error, "code", None),
                                  getattr(error, "error_message", None)
                                  or getattr(error, "message", None)))

    def _answer(self, what: str) -> Any:
        try:
            answer = self._answers.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer to {what}") from None
        if isinstance(answer, Refused):
            raise answer
        return answer

    def wait_for_rotation_job(self, timeout: float | None = None) -> RotationJob:
        """The next job announced on ``…/jobs/notify-next`` that is a rotation."""
        while True:
            try:
                event = self._events.get(timeout=timeout or self.timeout)
            except queue.Empty:
                raise TimeoutError("no rotation job announced") from None
            execution = event.execution
            document = execution.job_document if execution is not None else None
            if isinstance(document, dict) and document.get("operation") == OPERATION:
                return RotationJob(execution.job_id, str(document.get("certificateId")),
                                   document)

    def start_job(self) -> RotationJob | None:
        """StartNextPendingJobExecution: the next pending job becomes IN_PROGRESS and is
        returned if it is a rotation (``None``: nothing pending, or another job first)."""
        self.jobs.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(
                thing_name=self.thing_name, client_token=uuid.uuid4().hex,
                status_details={"step": "generating-key"}), QOS1).result(self.timeout)
        started = self._answer("StartNextPendingJobExecution")
        execution = started.execution
        document = execution.job_document if execution is not None else None
        if not isinstance(document, dict) or document.get("operation") != OPERATION:
            return None
        return RotationJob(execution.job_id, str(document.get("certificateId")), document)

    def request_certificate(self, csr_pem: str) -> tuple[str, str]:
        """CreateCertificateFromCsr: ``(certificateId, certificatePem)``.

        :raises Refused: Bastion refused (the reason is in the error).
        """
        if self.payload_format == "json":
            self.identity.publish_create_certificate_from_csr(
                iotidentity.CreateCertificateFromCsrRequest(
                    certificate_signing_request=csr_pem), QOS1).result(self.timeout)
        else:
            future, _ = self._connection.publish(
                CSR_TOPIC.format("cbor"),
                cbor2.dumps({"certificateSigningRequest": csr_pem}), QOS1)
            future.result(self.timeout)
        answer = self._answer("CreateCertificateFromCsr")
        return answer.certificate_id, answer.certificate_pem

    def report(self, job_id: str, status: str, details: dict[str, str]) -> None:
        """UpdateJobExecution (fire and forget: the answer topics are not needed here)."""
        self.jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=self.thing_name, job_id=job_id, status=status,
            status_details=details), QOS1).result(self.timeout)

    def close(self) -> None:
        self._connection.disconnect().result(self.timeout)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.chmod(mode)
    os.replace(temporary, path)


def rotate(*, endpoint: str, port: int, thing_name: str, cert: Path, key: Path, ca: Path,
           wait: float = 3600.0, payload_format: str = "json") -> str:
    """Wait for a rotation job and carry it out (see the module docstring); returns the
    new certificate's id. The certificate and key files are replaced only once a
    connection with the new ones works.

    :raises Refused: Bastion refused the CSR (the job is reported FAILED first).
    """
    device = RotationDevice(endpoint=endpoint, port=port, thing_name=thing_name, cert=cert,
                            key=key, ca=ca, payload_format=payload_format)
    try:
        job = device.start_job()
        while job is None:
            device.wait_for_rotation_job(timeout=wait)
            job = device.start_job()
        key_pem, csr_pem = new_key_and_csr(thing_name)
        try:
            certificate_id, certificate_pem = device.request_certificate(csr_pem)
        except Refused as refused:
            device.report(job.job_id, "FAILED", {"reason": refused.error_code or "refused",
                                                 "message": refused.error_message[:500]})
            raise
        new_cert, new_key = cert.with_name(cert.name + ".new"), key.with_name(key.name + ".new")
        _write(new_key, key_pem)
        _write(new_cert, certificate_pem, 0o644)
    finally:
        device.close()
    try:
        rotated = RotationDevice(endpoint=endpoint, port=port, thing_name=thing_name,
                                 cert=new_cert, key=new_key, ca=ca)
    except Exception as exc:
        fallback = RotationDevice(endpoint=endpoint, port=port, thing_name=thing_name,
                                  cert=cert, key=key, ca=ca)
        fallback.report(job.job_id, "FAILED", {"reason": "reconnect-failed",
                                               "message": str(exc)[:500]})
        fallback.close()
        raise
    try:
        rotated.report(job.job_id, "SUCCEEDED", {"certificateId": certificate_id})
    finally:
        rotated.close()
    for current, new in ((cert, new_cert), (key, new_key)):
        os.replace(current, current.with_name(current.name + ".old"))
        os.replace(new, current)
    return certificate_id


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", default="localhost")
    parser.add_argument("--port", type=int, default=8883)
    parser.add_argument("--thing", required=True, help="the thing name (client id)")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True, help="Bastion's root CA")
    parser.add_argument("--wait", type=float, default=3600.0,
                        help="seconds to wait for a rotation job")
    parser.add_argument("--format", choices=FORMATS, default="json",
                        help="the CSR topic's payload format")
    args = parser.parse_args(argv)
    try:
        new_id = rotate(endpoint=args.endpoint, port=args.port, thing_name=args.thing,
                        cert=args.cert, key=args.key, ca=args.ca, wait=args.wait,
                        payload_format=args.format)
    except Refused as refused:
        print(f"rotation refused: {refused}", file=sys.stderr)
        return 1
    print(json.dumps({"rotated": True, "certificateId": new_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
