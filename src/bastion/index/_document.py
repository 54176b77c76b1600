"""What the index knows of a thing, and the searchable fields made from it.

A :class:`ThingRecord` gathers a thing's registry data, its live shadows and its latest
connection. :func:`thing_fields` flattens it, under an :class:`IndexingConfiguration`,
into ``field name → values``; every field may hold several values (``thingGroupNames``,
a shadow array). The field names are AWS's:

* registry: ``thingName``, ``thingId``, ``thingTypeName``, ``thingGroupNames``,
  ``attributes.<name>``, ``registry.version``;
* the classic shadow (``REGISTRY_AND_SHADOW``): ``shadow.reported.<path>``,
  ``shadow.desired.<path>``, ``shadow.delta.<path>``, ``shadow.version``,
  ``shadow.hasDelta``; a named shadow listed in the filter: the same under
  ``shadow.name.<shadowName>.``;
* connectivity (``STATUS``): ``connectivity.connected``, ``connectivity.timestamp``
  (epoch milliseconds), ``connectivity.disconnectReason``.

Nested shadow objects become dotted paths; an array gives its elements to one field.
:func:`thing_document` is the same record as SearchIndex answers it (botocore's
``ThingDocument``: the shadow as a JSON string).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ._config import IndexingConfiguration

Value: TypeAlias = str | int | float | bool
FieldValue: TypeAlias = Value | tuple[Value, ...]
"""A field's value, or its values: most fields hold one, kept bare (a one-element tuple
per field per thing would be a tenth of the index's memory)."""
Fields: TypeAlias = dict[str, FieldValue]


def values_of(held: FieldValue) -> tuple[Value, ...]:
    """Every value a field holds."""
    return held if isinstance(held, tuple) else (held,)


@dataclass(frozen=True, slots=True)
class Connectivity:
    """The latest connection: ``timestamp`` in epoch milliseconds."""

    connected: bool
    timestamp: int | None = None
    disconnect_reason: str | None = None


NEVER_CONNECTED = Connectivity(False)


@dataclass(frozen=True, slots=True)
class ShadowRecord:
    """A live shadow: ``state`` holds ``desired`` and/or ``reported``."""

    version: int
    state: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ThingRecord:
    """A thing as indexed. ``shadows`` is keyed by shadow name (``""``: classic)."""

    thing_name: str
    thing_id: str
    thing_type_name: str | None
    attributes: Mapping[str, str]
    groups: tuple[str, ...]
    version: int
    shadows: Mapping[str, ShadowRecord] = field(default_factory=dict)
    connectivity: Connectivity = NEVER_CONNECTED


def thing_fields(record: ThingRecord, config: IndexingConfiguration) -> Fields:
    """The searchable fields of ``record`` under ``config`` (see the module docstring)."""
    fields: Fields = {
        "thingName": record.thing_name,
        "thingId": record.thing_id,
        "registry.version": record.version,
    }
    if record.thing_type_name is not None:
        fields["thingTypeName"] = record.thing_type_name
    if record.groups:
        fields["thingGroupNames"] = record.groups
    for key, value in record.attributes.items():
        fields[sys.intern(f"attributes.{key}")] = value  # one copy of each name
    if config.shadow_on:
        classic = record.shadows.get("")
        if classic is not None:
            _shadow_fields(fields, "shadow", classic)
        for name in config.indexed_shadow_names:
            named = record.shadows.get(name)
            if named is not None:
                _shadow_fields(fields, f"shadow.name.{name}", named)
    if config.connectivity_on:
        connectivity = record.connectivity
        fields["connectivity.connected"] = connectivity.connected
        if connectivity.timestamp is not None:
            fields["connectivity.timestamp"] = connectivity.timestamp
        if connectivity.disconnect_reason is not None:
            fields["connectivity.disconnectReason"] = connectivity.disconnect_reason
    return fields


def _shadow_fields(fields: Fields, prefix: str, shadow: ShadowRecord) -> None:
    desired = shadow.state.get("desired")
    reported = shadow.state.get("reported")
    delta = shadow_delta(desired, reported)
    for section, content in (("reported", reported), ("desired", desired),
                             ("delta", delta)):
        if isinstance(content, Mapping):
            for path, value in _flatten(content, f"{prefix}.{section}"):
                held = fields.get(path)
                fields[path] = value if held is None else (*values_of(held), value)
    fields[sys.intern(f"{prefix}.version")] = shadow.version
    fields[sys.intern(f"{prefix}.hasDelta")] = bool(delta)


def _flatten(content: Any, path: str) -> Iterator[tuple[str, Value]]:
    if isinstance(content, Mapping):
        for key, value in content.items():
            yield from _flatten(value, sys.intern(f"{path}.{key}"))
    elif isinstance(content, list):
        for item in content:
            yield from _flatten(item, path)
    elif isinstance(content, str | int | float | bool):
        yield path, content


def shadow_delta(desired: Any, reported: Any) -> dict[str, Any]:
    """What of ``desired`` differs from ``reported`` (a shadow's ``delta``)."""
    if not isinstance(desired, Mapping):
        return {}
    delta: dict[str, Any] = {}
    for key, wanted in desired.items():
        have = reported.get(key) if isinstance(reported, Mapping) else None
        if isinstance(wanted, Mapping) and isinstance(have, Mapping):
            inner = shadow_delta(wanted, have)
            if inner:
                delta[key] = inner
        elif wanted != have:
            delta[key] = wanted
    return delta


def thing_document(record: ThingRecord, config: IndexingConfiguration) -> dict[str, Any]:
    """``record`` as SearchIndex answers it (botocore's ``ThingDocument``)."""
    document: dict[str, Any] = {
        "thingName": record.thing_name,
        "thingId": record.thing_id,
        "thingGroupNames": list(record.groups),
        "attributes": dict(record.attributes),
    }
    if record.thing_type_name is not None:
        document["thingTypeName"] = record.thing_type_name
    if config.shadow_on:
        shadow = _shadow_json(record, config)
        if shadow is not None:
            document["shadow"] = shadow
    if config.connectivity_on:
        connectivity: dict[str, Any] = {"connected": record.connectivity.connected}
        if record.connectivity.timestamp is not None:
            connectivity["timestamp"] = record.connectivity.timestamp
        if record.connectivity.disconnect_reason is not None:
            connectivity["disconnectReason"] = record.connectivity.disconnect_reason
        document["connectivity"] = connectivity
    return document


def _shadow_json(record: ThingRecord, config: IndexingConfiguration) -> str | None:
    def section(shadow: ShadowRecord) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("desired", "reported"):
            if key in shadow.state:
                out[key] = shadow.state[key]
        delta = shadow_delta(shadow.state.get("desired"), shadow.state.get("reported"))
        if delta:
            out["delta"] = delta
        out["version"] = shadow.version
        out["hasDelta"] = bool(delta)
        return out

    found: dict[str, Any] = {}
    classic = record.shadows.get("")
    if classic is not None:
        found.update(section(classic))
    named = {name: section(record.shadows[name])
             for name in sorted(config.indexed_shadow_names) if name in record.shadows}
    if named:
        found["name"] = named
    return json.dumps(found, separators=(",", ":")) if found else None
