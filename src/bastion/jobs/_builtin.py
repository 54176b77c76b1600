"""The job templates every Bastion has: ``bastion-upload-logs``, device logs on demand.

A job made from ``bastion-upload-logs`` (``CreateJob`` with its ``jobTemplateArn``) asks
each targeted device for its logs::

    {"operation": "upload-logs", "uploadUrl": "${bastion:upload-url:<max bytes>}",
     "maxBytes": <max bytes>}

When the device fetches the job, ``uploadUrl`` is its own single-use, size-capped
presigned ``PUT`` URL on Bastion's file service, valid the template's
``presignedUrlConfig.expiresInSec`` (see :mod:`bastion.files`). The device PUTs its
logs there and reports the execution; the file stays linked to the execution and its
thing.
"""

from __future__ import annotations

import json
import logging
from typing import Final

from ._errors import ConflictError, ResourceNotFoundError
from ._service import JobService

log = logging.getLogger("bastion.jobs")

UPLOAD_LOGS_TEMPLATE: Final = "bastion-upload-logs"
UPLOAD_LOGS_OPERATION: Final = "upload-logs"
UPLOAD_LOGS_MAX_BYTES: Final = 8 * 1024 * 1024
UPLOAD_LOGS_EXPIRES_IN: Final = 3600


def upload_logs_document(max_bytes: int = UPLOAD_LOGS_MAX_BYTES) -> str:
    return json.dumps({"operation": UPLOAD_LOGS_OPERATION,
                       "uploadUrl": f"${{bastion:upload-url:{max_bytes}}}",
                       "maxBytes": max_bytes})


def ensure_builtin_templates(service: JobService) -> bool:
    """Create the built-in templates that are missing; whether one was created."""
    try:
        service.describe_job_template(UPLOAD_LOGS_TEMPLATE)
        return False
    except ResourceNotFoundError:
        pass
    try:
        service.create_job_template(
            UPLOAD_LOGS_TEMPLATE, document=upload_logs_document(),
            description="Bastion: each device uploads its logs (a single-use presigned URL)",
            presigned_url_config={"expiresInSec": UPLOAD_LOGS_EXPIRES_IN})
    except ConflictError:
        return False  # another node made it meanwhile
    log.info("job template %s created", UPLOAD_LOGS_TEMPLATE)
    return True
