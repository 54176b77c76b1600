"""AWS IoT's log entries, as dictionaries in the field order of AWS's examples.

Every entry has the common attributes (``timestamp`` as ``YYYY-MM-DD HH:MM:SS.mmm`` UTC,
``logLevel``, ``traceId``, ``accountId``, ``status`` ``Success``/``Failure``,
``eventType``), then the event's own (``protocol``, ``topicName``, ``clientId``,
``principalId``, ``thingName``, ``sourceIp``, ``sourcePort``, ``reason``, ``details`` …).
Fields without a value are left out.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Final

SUCCESS: Final = "Success"
FAILURE: Final = "Failure"

AUTHORIZATION_FAILURE: Final = "AUTHORIZATION_FAILURE"
"""``reason`` of an action a policy denied (``details``: ``Authorization Failure``)."""

EVENT_OF_ACTION: Final = {
    "iot:Connect": "Connect",
    "iot:Publish": "Publish-In",
    "iot:RetainPublish": "Publish-In",
    "iot:Subscribe": "Subscribe",
    "iot:Receive": "Publish-Out",
}
"""The entry's ``eventType`` for an action that was denied."""


def timestamp(epoch: float) -> str:
    """``2017-08-10 15:37:23.476`` (UTC, milliseconds), as AWS writes it."""
    seconds = int(epoch)
    millis = int((epoch - seconds) * 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}"


def entry(epoch: float, level: str, account_id: str, status: str, event_type: str,
          **fields: Any) -> dict[str, Any]:
    """One log entry: the common attributes, then ``fields`` without the ``None`` ones."""
    built: dict[str, Any] = {
        "timestamp": timestamp(epoch),
        "logLevel": level,
        "traceId": str(uuid.uuid4()),
        "accountId": account_id,
        "status": status,
        "eventType": event_type,
    }
    for key, value in fields.items():
        if value is not None and value != "":
            built[key] = value
    return built
