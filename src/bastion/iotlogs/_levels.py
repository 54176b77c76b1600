"""Which log level applies to a client: AWS IoT logging v2's default and log targets.

Theory of operation
-------------------
Pure: values in, a level out. :func:`level_table` turns the stored options (v2's
``defaultLogLevel`` and ``disableAllLogs``, the ``SetV2LoggingLevel`` targets, or v1's
``logLevel``) and the thing-group tree into a :class:`LevelTable`; the table answers
:meth:`LevelTable.level_for` with dictionary lookups only, so the broker can ask it on
the event loop at every CONNECT.

The rules (AWS IoT "Configure AWS IoT logging", resource-specific logging):

* ``disableAllLogs`` silences everything, targets included;
* the default is the ``DEFAULT`` target's level, else ``defaultLogLevel`` (v2), else v1's
  ``logLevel``, else Bastion's configured default;
* a resource-specific target that applies to the client overrides the default:
  ``CLIENT_ID`` (the MQTT client id), ``SOURCE_IP`` (its address), ``PRINCIPAL_ID`` (its
  certificate id) and ``THING_GROUP`` (the thing named by the client id is in the group,
  directly or through a child group; a level set on a child group overrides its
  parent's for the things under the child);
* when several targets apply, the most verbose of their levels wins.

Levels are integers (``LOG_DEBUG`` 10 … ``LOG_ERROR`` 40, ``LOG_DISABLED`` 100): smaller
is more verbose, and an entry of level ``L`` is written when ``L >= level``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bastion.broker import LOG_DEBUG, LOG_DISABLED, LOG_ERROR, LOG_INFO, LOG_WARN

LEVELS: Final[Mapping[str, int]] = {
    "DEBUG": LOG_DEBUG,
    "INFO": LOG_INFO,
    "WARN": LOG_WARN,
    "WARNING": LOG_WARN,
    "ERROR": LOG_ERROR,
    "DISABLED": LOG_DISABLED,
}
NAMES: Final[Mapping[int, str]] = {
    LOG_DEBUG: "DEBUG", LOG_INFO: "INFO", LOG_WARN: "WARN", LOG_ERROR: "ERROR",
    LOG_DISABLED: "DISABLED",
}


def parse_level(name: object, default: int = LOG_ERROR) -> int:
    """The integer of a level name (``default`` for anything else)."""
    return LEVELS.get(name, default) if isinstance(name, str) else default


@dataclass(frozen=True, slots=True)
class LevelTable:
    """The levels in force, ready for lookups.

    :ivar things: thing name → level its thing groups give it (already resolved).
    """

    default: int = LOG_ERROR
    disabled: bool = False
    client_ids: Mapping[str, int] = field(default_factory=dict)
    source_ips: Mapping[str, int] = field(default_factory=dict)
    principals: Mapping[str, int] = field(default_factory=dict)
    things: Mapping[str, int] = field(default_factory=dict)

    def level_for(self, client_id: str, source_ip: str, principal_id: str) -> int:
        """The level of a client (see the module docstring)."""
        if self.disabled:
            return LOG_DISABLED
        found = LOG_DISABLED + 1
        for table, key in ((self.client_ids, client_id), (self.source_ips, source_ip),
                           (self.principals, principal_id), (self.things, client_id)):
            if table:
                level = table.get(key)
                if level is not None and level < found:
                    found = level
        return self.default if found > LOG_DISABLED else found

    @property
    def quietest(self) -> int:
        """The most verbose level any client can get (``LOG_DISABLED``: nobody logs)."""
        if self.disabled:
            return LOG_DISABLED
        return min([self.default, *self.client_ids.values(), *self.source_ips.values(),
                    *self.principals.values(), *self.things.values()])


def group_levels(targets: Mapping[str, int], ancestors: Mapping[str, tuple[str, ...]],
                 members: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """The level each thing gets from its thing groups.

    :param targets: group → level (the ``THING_GROUP`` targets).
    :param ancestors: group → its ancestors, root first (every group that has members).
    :param members: group → the things directly in it.
    :returns: thing → the most verbose, over the groups it is directly in, of the level of
        the nearest group (itself or an ancestor) that is a target.
    """
    nearest: dict[str, int | None] = {}
    for group in members:
        level: int | None = targets.get(group)
        if level is None:
            for ancestor in reversed(ancestors.get(group, ())):
                level = targets.get(ancestor)
                if level is not None:
                    break
        nearest[group] = level
    things: dict[str, int] = {}
    for group, names in members.items():
        level = nearest[group]
        if level is None:
            continue
        for thing in names:
            current = things.get(thing)
            if current is None or level < current:
                things[thing] = level
    return things


def level_table(v1: Mapping[str, Any] | None, v2: Mapping[str, Any] | None,
                targets: Iterable[Mapping[str, Any]], *, fallback: int,
                things: Mapping[str, int] | None = None) -> LevelTable:
    """The table for the stored options.

    :param v1: SetLoggingOptions' payload, or ``None``.
    :param v2: SetV2LoggingOptions' options, or ``None``.
    :param targets: the SetV2LoggingLevel entries (``targetType``, ``targetName``,
        ``logLevel``); ignored without ``v2`` (AWS refuses them then).
    :param fallback: the default when neither v1 nor v2 is set.
    :param things: :func:`group_levels` of the ``THING_GROUP`` targets.
    """
    if v2 is None:
        default = parse_level(v1.get("logLevel"), LOG_ERROR) if v1 is not None else fallback
        return LevelTable(default=default)
    if v2.get("disableAllLogs"):
        return LevelTable(disabled=True)
    default = parse_level(v2.get("defaultLogLevel"), LOG_ERROR)
    by_type: dict[str, dict[str, int]] = {"CLIENT_ID": {}, "SOURCE_IP": {}, "PRINCIPAL_ID": {}}
    for entry in targets:
        kind = entry.get("targetType")
        level = parse_level(entry.get("logLevel"), LOG_ERROR)
        if kind == "DEFAULT":
            default = level
        elif kind in by_type and entry.get("targetName"):
            by_type[str(kind)][str(entry["targetName"])] = level
    return LevelTable(default=default, client_ids=by_type["CLIENT_ID"],
                      source_ips=by_type["SOURCE_IP"], principals=by_type["PRINCIPAL_ID"],
                      things=dict(things or {}))


def thing_group_targets(targets: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """group → level of the ``THING_GROUP`` entries."""
    return {str(entry["targetName"]): parse_level(entry.get("logLevel"), LOG_ERROR)
            for entry in targets
            if entry.get("targetType") == "THING_GROUP" and entry.get("targetName")}
