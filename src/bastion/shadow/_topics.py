"""The shadow service's reserved MQTT topics (AWS ``device-shadow-mqtt``).

A shadow's topics share a prefix: ``$aws/things/<thing>/shadow`` for the classic
(unnamed) shadow, ``$aws/things/<thing>/shadow/name/<shadow>`` for a named one. Requests
are published to ``<prefix>/get``, ``/update`` and ``/delete``; the service answers on
``<request>/accepted`` and ``<request>/rejected`` and announces changes on
``<prefix>/update/delta`` and ``<prefix>/update/documents``.

Pure string functions: no validation of the names themselves (the service does that, so
that a bad name is *rejected* on the request's ``/rejected`` topic rather than ignored).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

_THINGS: Final = "$aws/things/"


class ShadowOperation(enum.Enum):
    """A request a client can publish."""

    GET = "get"
    UPDATE = "update"
    DELETE = "delete"


_OPERATIONS: Final = {op.value: op for op in ShadowOperation}


def shadow_topic_prefix(thing_name: str, shadow_name: str | None = None) -> str:
    """``$aws/things/<thing>/shadow`` or ``…/shadow/name/<shadow>``."""
    prefix = f"{_THINGS}{thing_name}/shadow"
    return prefix if shadow_name is None else f"{prefix}/name/{shadow_name}"


@dataclass(frozen=True, slots=True)
class ShadowRequestTopic:
    """A parsed request topic.

    :ivar shadow_name: ``None`` for the classic shadow.
    """

    thing_name: str
    shadow_name: str | None
    operation: ShadowOperation

    @property
    def topic(self) -> str:
        return f"{shadow_topic_prefix(self.thing_name, self.shadow_name)}/{self.operation.value}"

    @property
    def accepted(self) -> str:
        return self.topic + "/accepted"

    @property
    def rejected(self) -> str:
        return self.topic + "/rejected"


def parse_request_topic(topic: str) -> ShadowRequestTopic | None:
    """The request ``topic`` names, or ``None`` when it is not a shadow request topic
    (response topics such as ``…/update/accepted`` are not requests)."""
    if not topic.startswith(_THINGS):
        return None
    levels = topic.split("/")
    if len(levels) == 5 and levels[3] == "shadow":
        operation = _OPERATIONS.get(levels[4])
        return None if operation is None else ShadowRequestTopic(levels[2], None, operation)
    if len(levels) == 7 and levels[3] == "shadow" and levels[4] == "name":
        operation = _OPERATIONS.get(levels[6])
        if operation is None:
            return None
        return ShadowRequestTopic(levels[2], levels[5], operation)
    return None


def update_accepted_topic(thing_name: str, shadow_name: str | None) -> str:
    return shadow_topic_prefix(thing_name, shadow_name) + "/update/accepted"


def update_delta_topic(thing_name: str, shadow_name: str | None) -> str:
    return shadow_topic_prefix(thing_name, shadow_name) + "/update/delta"


def update_documents_topic(thing_name: str, shadow_name: str | None) -> str:
    return shadow_topic_prefix(thing_name, shadow_name) + "/update/documents"


def delete_accepted_topic(thing_name: str, shadow_name: str | None) -> str:
    return shadow_topic_prefix(thing_name, shadow_name) + "/delete/accepted"
