"""Which Bastion file a URL designates, and the presigned-URL placeholders of job
documents.

A job document may hold ``${aws:iot:s3-presigned-url:<url>}`` anywhere in its text (AWS
IoT Jobs' syntax). Bastion replaces each placeholder whose URL designates a Bastion file
with a presigned download URL when a device fetches the document; the stored document
keeps its placeholders. URLs designating a file ``<name>``:

* ``https://<any host>/_bastion/files/<name>`` (``http://`` too) — what ``bastion files
  upload`` prints;
* ``s3://<any bucket>/<name>``;
* ``https://s3.amazonaws.com/<bucket>/<name>``, ``https://s3.<region>.amazonaws.com/
  <bucket>/<name>`` and ``https://<bucket>.s3[.<region>].amazonaws.com/<name>`` — S3 URLs as
  AWS's examples write them, so that documents written for AWS run unchanged.

A name is ``[A-Za-z0-9][A-Za-z0-9._-]{0,254}``: no directories.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

PLACEHOLDER: Final = re.compile(r"\$\{aws:iot:s3-presigned-url:(?P<url>[^}\s\"\\]+)\}")
FILE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
FILES_PATH: Final = "/_bastion/files/"


def is_file_name(value: object) -> bool:
    return isinstance(value, str) and FILE_NAME.fullmatch(value) is not None


def file_name_of(url: str) -> str | None:
    """The name of the Bastion file ``url`` designates (see the module docstring), or
    ``None``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.query or parts.fragment:
        return None
    host = (parts.hostname or "").lower()
    key: str | None = None
    if parts.scheme == "s3" and host:
        key = parts.path[1:]
    elif parts.scheme in ("https", "http") and parts.path.startswith(FILES_PATH):
        key = parts.path[len(FILES_PATH):]
    elif parts.scheme == "https" and host.endswith(".amazonaws.com"):
        labels = host.split(".")
        if labels[0] == "s3":  # path style: /<bucket>/<key>
            bucket, _, rest = parts.path[1:].partition("/")
            key = rest if bucket else None
        elif "s3" in labels[1:-2]:  # virtual-hosted style: <bucket>.s3…/<key>
            key = parts.path[1:]
    return key if key is not None and is_file_name(key) else None


def placeholder_urls(document: str) -> list[str]:
    """The URLs of the presigned-URL placeholders in ``document``, in order."""
    return [match.group("url") for match in PLACEHOLDER.finditer(document)]


def replace_placeholders(document: str, presign: Callable[[str], str | None]) -> str:
    """``document`` with each placeholder replaced by ``presign(name)`` of the file its URL
    designates; placeholders designating no Bastion file, or for which ``presign`` returns
    ``None``, are left as they are."""
    def replace(match: re.Match[str]) -> str:
        name = file_name_of(match.group("url"))
        if name is None:
            return match.group(0)
        signed = presign(name)
        return match.group(0) if signed is None else signed
    return PLACEHOLDER.sub(replace, document)
