"""Values of alert delivery: targets, alerts, the retry policy, dead letters."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any


class TargetKind(enum.StrEnum):
    WEBHOOK = "WEBHOOK"
    EMAIL = "EMAIL"
    MQTT = "MQTT"


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """HTTPS POST of the alert as JSON, signed with HMAC-SHA256 (see :mod:`._signing`).

    :ivar ca_file: a PEM bundle to trust instead of the system's (a private receiver).
    """

    url: str
    ca_file: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """E-mail through an SMTP server, always upgraded with STARTTLS.

    :ivar username: log in with this name (the password is the target's secret).
    """

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    ca_file: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """A publish on Bastion's own broker."""

    topic: str
    qos: int = 1


Settings = WebhookSettings | EmailSettings | MqttSettings


@dataclass(frozen=True, slots=True)
class AlertTarget:
    """A named notification target.

    :ivar arn: ``arn:aws:sns:<region>:<account>:<name>`` — how AWS-shaped configuration
        (audit notification targets, PUBLISH_FINDING_TO_SNS) names it.
    :ivar has_secret: a webhook signing key or SMTP password is stored (sealed).
    """

    name: str
    arn: str
    kind: TargetKind
    settings: Settings
    enabled: bool
    has_secret: bool
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: a subject line and a JSON-able body.

    :ivar alert_id: unique; sent as ``X-Bastion-Delivery`` so receivers can de-duplicate.
    :ivar kind: what it is about, e.g. ``audit.task.completed``, ``audit.finding``.
    """

    alert_id: str
    kind: str
    subject: str
    body: Mapping[str, Any]
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", MappingProxyType(dict(self.body)))

    def document(self) -> dict[str, Any]:
        """What webhooks and MQTT receive (and what e-mails carry as text)."""
        return {"alertId": self.alert_id, "kind": self.kind, "subject": self.subject,
                "createdAt": self.created_at.isoformat(), "message": dict(self.body)}

    def payload(self) -> bytes:
        return json.dumps(self.document(), separators=(",", ":"), sort_keys=True,
                          default=str).encode("utf-8")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts per alert and the waits between them (exponential backoff).

    The wait after attempt ``n`` (1-based) is ``initial * multiplier ** (n - 1)``, at most
    ``maximum``. After ``attempts`` failures the alert becomes a dead letter.
    """

    attempts: int = 5
    initial: timedelta = timedelta(seconds=1)
    multiplier: float = 2.0
    maximum: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delay(self, attempt: int) -> timedelta:
        seconds = self.initial.total_seconds() * self.multiplier ** (attempt - 1)
        return timedelta(seconds=min(seconds, self.maximum.total_seconds()))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An alert given up on, kept for an operator to inspect or redeliver."""

    letter_id: str
    target_name: str
    kind: TargetKind
    subject: str
    document: Mapping[str, Any]
    attempts: int
    last_error: str
    first_attempt_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How a delivery ended: delivered after ``attempts``, or dead-lettered."""

    target_name: str
    alert_id: str
    delivered: bool
    attempts: int
    errors: tuple[str, ...] = field(default=())
