"""Files served by Bastion: firmware and job documents uploaded by the operator
(``bastion files upload``, ``PUT /_bastion/files/<name>``), downloaded by devices through
presigned URLs on the API port (``GET /_bastion/files/<name>?X-Bastion-Expires=…&
X-Bastion-Signature=…``); and files devices upload for a job execution (device logs)
through single-use presigned URLs (``PUT /_bastion/uploads/…``, :mod:`._uploads`).

* :class:`FileService` — uploads, the presigned URLs, serving a download; and, for
  :mod:`bastion.jobs`, job documents from a file (``documentSource``) and the
  replacement of ``${aws:iot:s3-presigned-url:…}`` placeholders.
* :class:`RemoteDocumentFetcher` — ``documentSource`` documents from other HTTPS servers
  (https only, no private addresses unless allowed, bounded; :mod:`._remote`).
* :class:`UrlSigner` — the HMAC-SHA256 URL signature (:mod:`._signing`, the dangerous
  corner).
* :func:`file_name_of`, :func:`replace_placeholders` — which file a URL designates, and
  the placeholder syntax.
* Errors: :class:`FilesError` (``aws_error_type``, ``http_status``: the wire-error contract,
  :class:`bastion.errors.ServiceError`) and its subclasses.
"""

from __future__ import annotations

from ._errors import (
    FilesError,
    FileTooLargeError,
    InvalidFileError,
    SignatureRejectedError,
    UnknownFileError,
    UploadUsedError,
)
from ._placeholders import (
    FILES_PATH,
    PLACEHOLDER,
    file_name_of,
    is_file_name,
    placeholder_urls,
    replace_placeholders,
)
from ._remote import RemoteDocumentFetcher
from ._service import DEFAULT_EXPIRES_IN, SIGNING_KEY_SECRET, FileService, check_file_name
from ._signing import EXPIRES_PARAM, SIGNATURE_PARAM, UrlSigner
from ._uploads import (
    MAX_BYTES_PARAM,
    UPLOADS_PATH,
    FileWriter,
    UploadTarget,
    upload_file_name,
)

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "EXPIRES_PARAM",
    "FILES_PATH",
    "MAX_BYTES_PARAM",
    "PLACEHOLDER",
    "SIGNATURE_PARAM",
    "SIGNING_KEY_SECRET",
    "UPLOADS_PATH",
    "FileService",
    "FileTooLargeError",
    "FileWriter",
    "FilesError",
    "InvalidFileError",
    "RemoteDocumentFetcher",
    "SignatureRejectedError",
    "UnknownFileError",
    "UploadTarget",
    "UploadUsedError",
    "UrlSigner",
    "check_file_name",
    "file_name_of",
    "is_file_name",
    "placeholder_urls",
    "replace_placeholders",
    "upload_file_name",
]
