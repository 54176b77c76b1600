"""The rotation job document: what the device reads, and how Bastion recognizes it.

::

    {"operation": "rotate-certificate",
     "rotationId": "<uuid>",
     "certificateId": "<the certificate being replaced>",
     "csrTopic": "$aws/certificates/create-from-csr/json"}

The device generates a new key pair (it never leaves the device), publishes a CSR on
``csrTopic`` (or its ``cbor`` sibling) with the connection of the certificate named by
``certificateId``, stores what ``…/accepted`` returns, reconnects with it and reports the
execution ``SUCCEEDED`` (see ``docs/rotation.md``).
"""

from __future__ import annotations

import json
from typing import Any, Final

OPERATION: Final = "rotate-certificate"
CSR_TOPIC: Final = "$aws/certificates/create-from-csr/json"


def rotation_document(*, rotation_id: str, certificate_id: str) -> str:
    """The job document of one rotation (canonical JSON)."""
    return json.dumps({"operation": OPERATION, "rotationId": rotation_id,
                       "certificateId": certificate_id, "csrTopic": CSR_TOPIC},
                      separators=(",", ":"), sort_keys=True)


def is_rotation_document(document: str | None) -> bool:
    """Whether a job document asks for a certificate rotation."""
    if not document:
        return False
    try:
        data: Any = json.loads(document)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("operation") == OPERATION
