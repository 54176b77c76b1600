"""A device that uploads its logs when Bastion asks for them, with AWS's device SDK.

The operator asks with a job made from Bastion's ``bastion-upload-logs`` template::

    iot.create_job(jobId="logs-sensor-1-0412", targets=[thing_arn],
                   jobTemplateArn="arn:aws:iot:us-east-1:123456789012:jobtemplate/"
                                  "bastion-upload-logs")

What the device does:

1. takes its next job (StartNextPendingJobExecution) and checks that it is
   ``"operation": "upload-logs"``;
2. PUTs its log file to the job's ``uploadUrl`` — a presigned HTTPS URL for this job
   execution alone, good once, until it expires, for at most ``maxBytes`` (a log longer
   than that is cut to its last ``maxBytes``: the newest lines matter most);
3. reports the job ``SUCCEEDED`` with the stored file's name, or ``FAILED`` with the
   reason.

The file is then in Bastion's file service, linked to the job execution and the thing
(``GET /_bastion/files?thingName=sensor-1``).

Run it against ``make run``::

    python examples/upload_logs.py --thing sensor-1 --cert sensor-1.cert.pem \\
        --key sensor-1.key.pem --root-ca bastion-data/ca/root-ca.cert.pem \\
        --log-file /var/log/sensor.log

Exit status: 0 when the logs were uploaded, 1 when that failed, 2 when no such job came.
Needs ``awsiotsdk``; nothing of Bastion (the jobs client is ``jobs_device.py``).
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs_device import JobsDevice, add_connection_arguments

OPERATION = "upload-logs"


class UploadFailed(Exception):
    """Why the logs were not uploaded (goes into the job's ``statusDetails.reason``)."""


def read_logs(path: Path, max_bytes: int) -> bytes:
    """The log file, or its last ``max_bytes`` when it is longer."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        return handle.read()


def put(url: str, data: bytes, context: ssl.SSLContext) -> dict[str, Any]:
    """PUT ``data`` to a presigned upload URL; Bastion's answer.

    :raises UploadFailed: refused (expired, used, too large) or unreachable.
    """
    if not url.startswith("https://"):
        raise UploadFailed("the upload URL is not HTTPS")
    request = urllib.request.Request(url, data=data, method="PUT",
                                     headers={"content-type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as error:
        raise UploadFailed(f"the upload was refused: {error.code} "
                           f"{error.headers.get('x-amzn-errortype', '')}") from None
    except OSError as error:
        raise UploadFailed(f"the upload failed: {error}") from None


def upload_logs(document: dict[str, Any], log_file: Path, context: ssl.SSLContext
                ) -> dict[str, Any]:
    """Carry out an ``upload-logs`` job document."""
    if document.get("operation") != OPERATION:
        raise UploadFailed(f"not an {OPERATION} job")
    url, max_bytes = document.get("uploadUrl"), document.get("maxBytes")
    if not isinstance(url, str) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise UploadFailed("the job has no upload URL")
    try:
        data = read_logs(log_file, max_bytes)
    except OSError as error:
        raise UploadFailed(f"cannot read the logs: {error}") from None
    return put(url, data, context)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_connection_arguments(parser)
    parser.add_argument("--log-file", required=True, type=Path)
    args = parser.parse_args(argv)

    context = ssl.create_default_context(cafile=str(args.root_ca))
    device = JobsDevice.connect(args)
    try:
        execution = device.next_job()
        if execution is None:
            print("no job", file=sys.stderr)
            return 2
        job_id = execution.job_id
        try:
            stored = upload_logs(execution.job_document or {}, args.log_file, context)
        except UploadFailed as failed:
            print(f"{job_id}: FAILED: {failed}", file=sys.stderr)
            device.report(job_id, "FAILED", {"reason": str(failed)})
            return 1
        print(f"{job_id}: SUCCEEDED: uploaded {stored['name']} ({stored['size']} bytes)")
        device.report(job_id, "SUCCEEDED", {"uploaded": str(stored["name"])})
        return 0
    finally:
        device.close()


if __name__ == "__main__":
    sys.exit(main())
