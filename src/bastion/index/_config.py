"""The fleet-indexing configuration (UpdateIndexingConfiguration /
GetIndexingConfiguration): what goes into ``AWS_Things`` and ``AWS_ThingGroups``.

Rules kept here, as AWS answers them with ``InvalidRequestException``:

* ``thingConnectivityIndexingMode`` ``STATUS`` and ``namedShadowIndexingMode`` ``ON``
  need thing indexing on (``thingIndexingMode`` not ``OFF``);
* named shadows are indexed only with ``REGISTRY_AND_SHADOW`` and ``ON``, and only those
  listed in ``filter.namedShadowNames`` (at most :data:`MAX_NAMED_SHADOWS`);
* ``deviceDefenderIndexingMode`` ``VIOLATIONS`` is refused: Bastion does not index
  Device Defender data (a request cannot turn on what would not work).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Final

from ._errors import InvalidIndexRequestError

MAX_NAMED_SHADOWS: Final = 10
SETTINGS_KEY: Final = "fleet_indexing"


class ThingIndexingMode(enum.StrEnum):
    OFF = "OFF"
    REGISTRY = "REGISTRY"
    REGISTRY_AND_SHADOW = "REGISTRY_AND_SHADOW"


class ConnectivityIndexingMode(enum.StrEnum):
    OFF = "OFF"
    STATUS = "STATUS"


class SwitchMode(enum.StrEnum):
    """``namedShadowIndexingMode`` and ``thingGroupIndexingMode``."""

    OFF = "OFF"
    ON = "ON"


@dataclass(frozen=True, slots=True)
class CustomField:
    """A field declared in ``customFields``: kept and answered back as given."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class IndexingConfiguration:
    """The whole configuration; the default has every index off, as a new AWS account."""

    thing_indexing_mode: ThingIndexingMode = ThingIndexingMode.OFF
    connectivity_mode: ConnectivityIndexingMode = ConnectivityIndexingMode.OFF
    named_shadow_mode: SwitchMode = SwitchMode.OFF
    named_shadow_names: tuple[str, ...] = ()
    thing_custom_fields: tuple[CustomField, ...] = field(default=())
    thing_group_indexing_mode: SwitchMode = SwitchMode.OFF
    group_custom_fields: tuple[CustomField, ...] = field(default=())

    @property
    def things_on(self) -> bool:
        return self.thing_indexing_mode is not ThingIndexingMode.OFF

    @property
    def groups_on(self) -> bool:
        return self.thing_group_indexing_mode is SwitchMode.ON

    @property
    def shadow_on(self) -> bool:
        return self.thing_indexing_mode is ThingIndexingMode.REGISTRY_AND_SHADOW

    @property
    def connectivity_on(self) -> bool:
        return self.connectivity_mode is ConnectivityIndexingMode.STATUS

    @property
    def indexed_shadow_names(self) -> frozenset[str]:
        """The named shadows whose content is indexed."""
        if not self.shadow_on or self.named_shadow_mode is not SwitchMode.ON:
            return frozenset()
        return frozenset(self.named_shadow_names)

    @property
    def schema(self) -> str:
        """DescribeIndex's ``schema`` of ``AWS_Things``."""
        parts = ["REGISTRY"]
        if self.shadow_on:
            parts.append("SHADOW")
        if self.connectivity_on:
            parts.append("CONNECTIVITY_STATUS")
        if self.named_shadow_mode is SwitchMode.ON and self.shadow_on:
            return "MULTI_INDEXING_MODE"
        return "_AND_".join(parts)

    def to_json(self) -> str:
        return json.dumps({
            "thingIndexingMode": self.thing_indexing_mode.value,
            "thingConnectivityIndexingMode": self.connectivity_mode.value,
            "namedShadowIndexingMode": self.named_shadow_mode.value,
            "namedShadowNames": list(self.named_shadow_names),
            "thingCustomFields": [[f.name, f.type] for f in self.thing_custom_fields],
            "thingGroupIndexingMode": self.thing_group_indexing_mode.value,
            "groupCustomFields": [[f.name, f.type] for f in self.group_custom_fields],
        })

    @classmethod
    def from_json(cls, text: str) -> IndexingConfiguration:
        """:raises ValueError: not a configuration :meth:`to_json` wrote."""
        data = json.loads(text)
        return cls(
            ThingIndexingMode(data["thingIndexingMode"]),
            ConnectivityIndexingMode(data["thingConnectivityIndexingMode"]),
            SwitchMode(data["namedShadowIndexingMode"]),
            tuple(data["namedShadowNames"]),
            tuple(CustomField(n, t) for n, t in data["thingCustomFields"]),
            SwitchMode(data["thingGroupIndexingMode"]),
            tuple(CustomField(n, t) for n, t in data["groupCustomFields"]),
        )


def _enum(kind: type[enum.StrEnum], value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidIndexRequestError(
            f"{what} must be one of {allowed}, not {value!r}") from None


def _custom_fields(fields: Any) -> tuple[CustomField, ...]:
    return tuple(CustomField(str(f.get("name", "")), str(f.get("type", "String")))
                 for f in fields or ())


def updated(current: IndexingConfiguration, *, things: dict[str, Any] | None,
            groups: dict[str, Any] | None) -> IndexingConfiguration:
    """``current`` with the parts of an UpdateIndexingConfiguration request applied (a part
    left out keeps its current value, as in AWS).

    :raises InvalidIndexRequestError: a mode is unknown, or the combination breaks a rule
        of the module docstring.
    """
    result = current
    if things is not None:
        mode = _enum(ThingIndexingMode, things.get("thingIndexingMode"), "thingIndexingMode")
        connectivity = _enum(ConnectivityIndexingMode,
                             things.get("thingConnectivityIndexingMode", "OFF"),
                             "thingConnectivityIndexingMode")
        named = _enum(SwitchMode, things.get("namedShadowIndexingMode", "OFF"),
                      "namedShadowIndexingMode")
        if things.get("deviceDefenderIndexingMode", "OFF") != "OFF":
            raise InvalidIndexRequestError(
                "deviceDefenderIndexingMode VIOLATIONS is not supported by this server")
        names = tuple((things.get("filter") or {}).get("namedShadowNames") or ())
        if len(names) > MAX_NAMED_SHADOWS:
            raise InvalidIndexRequestError(
                f"At most {MAX_NAMED_SHADOWS} named shadows can be indexed")
        if mode is ThingIndexingMode.OFF and (
                connectivity is ConnectivityIndexingMode.STATUS or named is SwitchMode.ON):
            raise InvalidIndexRequestError(
                "Connectivity and named shadow indexing need thingIndexingMode REGISTRY "
                "or REGISTRY_AND_SHADOW")
        if named is SwitchMode.ON and mode is not ThingIndexingMode.REGISTRY_AND_SHADOW:
            raise InvalidIndexRequestError(
                "namedShadowIndexingMode ON needs thingIndexingMode REGISTRY_AND_SHADOW")
        result = IndexingConfiguration(
            mode, connectivity, named, names if named is SwitchMode.ON else (),
            _custom_fields(things.get("customFields")),
            result.thing_group_indexing_mode, result.group_custom_fields)
    if groups is not None:
        group_mode = _enum(SwitchMode, groups.get("thingGroupIndexingMode"),
                           "thingGroupIndexingMode")
        result = IndexingConfiguration(
            result.thing_indexing_mode, result.connectivity_mode, result.named_shadow_mode,
            result.named_shadow_names, result.thing_custom_fields, group_mode,
            _custom_fields(groups.get("customFields")))
    return result
