"""The OTA job document: AWS's ``afr_ota`` shape, built from the files of an OTA update.

Pure: values in, the document text out. For each file (``fileid`` is its index, and its
file id in the stream)::

    {"afr_ota": {"protocols": ["MQTT", "HTTP"], "streamname": "<streamId>", "files": [{
        "filepath": "<fileName>", "filesize": 123456, "fileid": 0,
        "certfile": "<where the device keeps the signing certificate>",
        "fileType": 0,                                  (when given)
        "update_data_url": "${aws:iot:s3-presigned-url:s3://<bucket>/<file>}",
        "auth_scheme": "aws.s3.presigned",
        "sig-sha256-ecdsa": "<base64 DER ECDSA P-256 signature of the file>",
        "x-bastion-certificate": "<the signing certificate, PEM>",
        "x-bastion-signing-job-arn": "arn:aws:signer:<region>:<account>:/signing-jobs/<id>",
        "x-bastion-signing-profile-version-arn": "arn:aws:signer:…:/signing-profiles/<n>/<v>",
        "x-bastion-signed-at": "2026-12-08T01:02:03.456789+00:00"}]}}

``streamname`` is there when the files go over MQTT (the stream's id, AWS's key);
``update_data_url`` and ``auth_scheme`` when they go over HTTPS.

``update_data_url`` holds the jobs' presigned-URL placeholder: Bastion replaces it with a
presigned HTTPS download URL of the file when the device fetches its job (as AWS does
with S3), so the stored document names the file and only the targeted device ever sees a
URL. ``x-bastion-certificate`` is Bastion's addition: the signing certificate, so that a
device need not have it installed beforehand — which is safe because the device checks it
against the code-signing CA it *pins* and trusts nothing the job says about trust. AWS
devices, which read the certificate from ``certfile``, ignore the key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

SIGNATURE_KEY: Final = "sig-sha256-ecdsa"
CERTIFICATE_KEY: Final = "x-bastion-certificate"
SIGNING_JOB_KEY: Final = "x-bastion-signing-job-arn"
PROFILE_VERSION_KEY: Final = "x-bastion-signing-profile-version-arn"
SIGNED_AT_KEY: Final = "x-bastion-signed-at"
AUTH_SCHEME: Final = "aws.s3.presigned"
HTTP: Final = "HTTP"
MQTT: Final = "MQTT"


@dataclass(frozen=True, slots=True)
class OtaFile:
    """One file of an OTA job document."""

    file_name: str
    file_size: int
    bucket: str
    key: str
    signature: bytes = field(repr=False)
    certificate_pem: str
    certificate_path: str
    file_type: int | None = None
    signing_job_arn: str | None = None
    profile_version_arn: str | None = None
    signed_at: datetime | None = None


def ota_job_document(files: Sequence[OtaFile], *, protocols: Sequence[str] = (HTTP,),
                     stream_id: str | None = None) -> str:
    """The job document delivering ``files`` over ``protocols`` (see the module
    docstring); MQTT needs the ``stream_id`` whose file ids are the files' indexes.

    :raises ValueError: no files; no protocol, an unknown one, or MQTT without a stream.
    """
    if not files:
        raise ValueError("an OTA job document needs at least one file")
    if not protocols or not set(protocols) <= {HTTP, MQTT}:
        raise ValueError(f"protocols must be {MQTT} and/or {HTTP}, not {list(protocols)}")
    if (MQTT in protocols) != (stream_id is not None):
        raise ValueError("a stream id goes with MQTT, and only with it")
    entries: list[dict[str, Any]] = []
    for index, item in enumerate(files):
        entry: dict[str, Any] = {
            "filepath": item.file_name,
            "filesize": item.file_size,
            "fileid": index,
            "certfile": item.certificate_path,
        }
        if item.file_type is not None:
            entry["fileType"] = item.file_type
        if HTTP in protocols:
            entry["update_data_url"] = \
                f"${{aws:iot:s3-presigned-url:s3://{item.bucket}/{item.key}}}"
            entry["auth_scheme"] = AUTH_SCHEME
        entry[SIGNATURE_KEY] = base64.b64encode(item.signature).decode("ascii")
        entry[CERTIFICATE_KEY] = item.certificate_pem
        if item.signing_job_arn is not None and item.profile_version_arn is not None \
                and item.signed_at is not None:
            entry[SIGNING_JOB_KEY] = item.signing_job_arn
            entry[PROFILE_VERSION_KEY] = item.profile_version_arn
            entry[SIGNED_AT_KEY] = item.signed_at.astimezone(UTC).isoformat()
        entries.append(entry)
    ota: dict[str, Any] = {"protocols": list(dict.fromkeys(protocols))}
    if stream_id is not None:
        ota["streamname"] = stream_id
    ota["files"] = entries
    return json.dumps({"afr_ota": ota}, separators=(",", ":"))
