"""Alert delivery: Bastion's notification targets, shared by Defender audit and detect.

* :class:`AlertTargetService` — webhook (HTTPS POST signed with HMAC-SHA256), e-mail
  (SMTP with STARTTLS) and MQTT (a topic on Bastion's own broker) targets, their secrets
  sealed at rest, and the dead letters of alerts that could not be delivered;
* :class:`AlertDispatcher` — delivery with retries and exponential backoff
  (:class:`RetryPolicy`), a dead letter after the last attempt; the broker's publish
  function is injected by the app (services do not import the broker);
* :class:`ArnNotifier` — notifications addressed by SNS-style ARN
  (``arn:aws:sns:<region>:<account>:<target>``), as AWS-shaped configuration names them;
* :func:`signature` / :func:`verify_signature` — the webhook signature, for receivers.
"""

from __future__ import annotations

from ._dispatcher import AlertDispatcher, ArnNotifier, MqttPublish, new_alert
from ._errors import (
    AlertTargetError,
    DeliveryError,
    InvalidTargetError,
    TargetExistsError,
    TargetNotFoundError,
)
from ._model import (
    Alert,
    AlertTarget,
    DeadLetter,
    DeliveryOutcome,
    EmailSettings,
    MqttSettings,
    RetryPolicy,
    TargetKind,
    WebhookSettings,
)
from ._signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    verify_signature,
)
from ._targets import AlertTargetService, CreatedTarget, Sealer

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Alert",
    "AlertDispatcher",
    "AlertTarget",
    "AlertTargetError",
    "AlertTargetService",
    "ArnNotifier",
    "CreatedTarget",
    "DeadLetter",
    "DeliveryError",
    "DeliveryOutcome",
    "EmailSettings",
    "InvalidTargetError",
    "MqttPublish",
    "MqttSettings",
    "RetryPolicy",
    "Sealer",
    "TargetExistsError",
    "TargetKind",
    "TargetNotFoundError",
    "WebhookSettings",
    "new_alert",
    "signature",
    "verify_signature",
]
