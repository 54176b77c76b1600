"""OTA updates: signed files delivered to devices by jobs, over presigned HTTPS.

* :class:`OtaService` — CreateOTAUpdate, GetOTAUpdate, ListOTAUpdates, DeleteOTAUpdate.
* :func:`ota_job_document` — the ``afr_ota`` job document (the pure core), and
  :class:`OtaFile`, one file of it.
* Errors: :class:`OtaError` (``aws_error_type``, ``http_status``) and its subclasses.
"""

from __future__ import annotations

from ._document import AUTH_SCHEME, CERTIFICATE_KEY, SIGNATURE_KEY, OtaFile, ota_job_document
from ._errors import (
    InvalidRequestError,
    OtaError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from ._service import JOB_PREFIX, OtaService, OtaUpdate

__all__ = [
    "AUTH_SCHEME",
    "CERTIFICATE_KEY",
    "JOB_PREFIX",
    "SIGNATURE_KEY",
    "InvalidRequestError",
    "OtaError",
    "OtaFile",
    "OtaService",
    "OtaUpdate",
    "ResourceAlreadyExistsError",
    "ResourceNotFoundError",
    "ota_job_document",
]
