"""Values the shadow service returns and the domain events it publishes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._topics import (
    delete_accepted_topic,
    update_accepted_topic,
    update_delta_topic,
    update_documents_topic,
)


def encode_document(document: Any) -> bytes:
    """A shadow message's bytes: compact UTF-8 JSON, as AWS sends them."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class ShadowReply:
    """A get's answer: the ``/get/accepted`` document, as bytes ready to send."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class ShadowUpdated:
    """A shadow was created or updated (published after the change is committed).

    The service answers an update with this value too: ``accepted`` is the
    ``/update/accepted`` document (UpdateThingShadow's response), ``delta`` the
    ``/update/delta`` document when ``desired`` and ``reported`` differ, ``documents``
    the ``/update/documents`` document. AWS sends all three to MQTT subscribers whichever
    door the update came through.

    :ivar shadow_name: ``None`` for the classic shadow.
    """

    thing_name: str
    shadow_name: str | None
    version: int
    accepted: bytes
    delta: bytes | None
    documents: bytes

    def messages(self) -> tuple[tuple[str, bytes], ...]:
        """``(topic, payload)`` of the MQTT messages announcing the change, in order."""
        thing, name = self.thing_name, self.shadow_name
        found = [(update_accepted_topic(thing, name), self.accepted)]
        if self.delta is not None:
            found.append((update_delta_topic(thing, name), self.delta))
        found.append((update_documents_topic(thing, name), self.documents))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class ShadowDeleted:
    """A shadow was deleted; ``accepted`` is the ``/delete/accepted`` document
    (DeleteThingShadow's response), sent to MQTT subscribers whichever door it came
    through. ``version`` is the deleted document's version."""

    thing_name: str
    shadow_name: str | None
    version: int
    accepted: bytes

    def messages(self) -> tuple[tuple[str, bytes], ...]:
        return ((delete_accepted_topic(self.thing_name, self.shadow_name), self.accepted),)


@dataclass(frozen=True, slots=True)
class NamedShadowPage:
    """A page of ListNamedShadowsForThing.

    :ivar timestamp: when the page was read (epoch seconds).
    """

    results: tuple[str, ...]
    next_token: str | None
    timestamp: int
