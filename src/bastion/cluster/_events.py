"""Security events across nodes: what one node's registry publishes reaches every node.

A revocation, deactivation, policy or group change (or a topic rule change) made through
any node's API is published on that node's bus; the cluster relays it on the core NATS
subject ``<name>.ev`` to every other node, which publishes it on its own bus, where the
``SecurityEventBridge`` applies it to that node's live sessions (and its rules engine
reloads its rules). Only the event types of :data:`RELAYED` cross (a fixed list: nothing
else can be made from the wire), as JSON: ``{"type": "CertificateStatusChanged",
"fields": {...}}``.

Core NATS delivers at most once: an event sent while a node was cut off never reaches it.
The registry (in PostgreSQL) is the truth, so a node that reconnects to NATS re-checks
every live session against it instead (``ClusterNode``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import typing
from typing import Any, Final

from ..domains import ServedDomainsChanged
from ..enforcement import SECURITY_EVENTS
from ..index import ThingConnectivityChanged, ThingShadowChanged
from ..registry import CaCertificateRegistered, CertificateRegistered, ThingCreated
from ..rules import TopicRuleChanged, TopicRuleDestinationChanged

RELAYED: Final[tuple[type, ...]] = (
    *SECURITY_EVENTS, CertificateRegistered, CaCertificateRegistered,
    TopicRuleChanged, TopicRuleDestinationChanged, ThingCreated, ThingShadowChanged,
    ThingConnectivityChanged, ServedDomainsChanged)
"""The events every node must see: the security state of live sessions
(:data:`~bastion.enforcement.SECURITY_EVENTS`), the CAs and domains the listeners
serve, topic
rule changes (every node's rules engine reloads its rules), and what every node's fleet
index follows: new things, shadow and connectivity changes."""

_BY_NAME: Final = {kind.__name__: kind for kind in RELAYED}


def encode_event(event: object) -> bytes:
    """``event`` (one of :data:`RELAYED`) as JSON bytes."""
    kind = type(event)
    if kind not in RELAYED:
        raise TypeError(f"{kind.__name__} is not relayed between nodes")
    fields = {}
    for field in dataclasses.fields(event):  # type: ignore[arg-type]
        value = getattr(event, field.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        fields[field.name] = value
    return json.dumps({"type": kind.__name__, "fields": fields}).encode()


def decode_event(data: bytes) -> object:
    """The event :func:`encode_event` wrote.

    :raises ValueError: not an event of :data:`RELAYED`, or its fields do not fit.
    """
    try:
        document = json.loads(data)
        kind = _BY_NAME[document["type"]]
        raw = document["fields"]
        hints = typing.get_type_hints(kind)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(kind):
            values[field.name] = _typed(hints[field.name], raw[field.name])
        return kind(**values)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a relayed event: {exc}") from None


def _typed(hint: Any, value: Any) -> Any:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("a list of strings was expected")
        return tuple(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    raise ValueError(f"{value!r} is not a {hint}")
