"""Which field names a query may use, per index and configuration.

A query naming a field the index does not hold (``shadow.*`` with registry-only
indexing, ``connectivity.*`` without connectivity indexing, a named shadow not in the
filter, or a name no index has) is refused with ``InvalidQueryException`` rather than
silently matching nothing: a caller learns at once that the configuration, not the
fleet, is why nothing comes back.
"""

from __future__ import annotations

import re
from typing import Final

from ._config import IndexingConfiguration
from ._errors import InvalidQueryError
from ._query import Query, leaves

THINGS: Final = "AWS_Things"
THING_GROUPS: Final = "AWS_ThingGroups"

_REGISTRY: Final = frozenset({"thingName", "thingId", "thingTypeName", "thingGroupNames",
                              "registry.version"})
_CONNECTIVITY: Final = frozenset({"connectivity.connected", "connectivity.timestamp",
                                  "connectivity.disconnectReason"})
_GROUP_FIELDS: Final = frozenset({"thingGroupName", "thingGroupId", "thingGroupDescription",
                                  "parentGroupNames"})
_SHADOW_PART: Final = re.compile(r"(reported|desired|delta)\.[^.].*|version|hasDelta")
_NAMED: Final = re.compile(r"shadow\.name\.([a-zA-Z0-9:_-]+)\.(.+)")


def check_thing_field(field: str, config: IndexingConfiguration) -> None:
    """:raises InvalidQueryError: ``AWS_Things`` under ``config`` has no such field."""
    if field in _REGISTRY or (field.startswith("attributes.") and len(field) > 11):
        return
    if field in _CONNECTIVITY:
        if not config.connectivity_on:
            raise InvalidQueryError(
                f"{field} is not indexed: thingConnectivityIndexingMode is OFF")
        return
    if field.startswith("shadow."):
        if not config.shadow_on:
            raise InvalidQueryError(
                f"{field} is not indexed: thingIndexingMode is not REGISTRY_AND_SHADOW")
        named = _NAMED.fullmatch(field)
        if named is not None:
            if named.group(1) not in config.indexed_shadow_names:
                raise InvalidQueryError(
                    f"{field} is not indexed: the named shadow {named.group(1)} is not in "
                    "the indexing filter")
            part = named.group(2)
        else:
            part = field[len("shadow."):]
        if _SHADOW_PART.fullmatch(part):
            return
    raise InvalidQueryError(f"Unknown field {field} in index {THINGS}")


def check_group_field(field: str) -> None:
    """:raises InvalidQueryError: ``AWS_ThingGroups`` has no such field."""
    if field in _GROUP_FIELDS or (field.startswith("attributes.") and len(field) > 11):
        return
    raise InvalidQueryError(f"Unknown field {field} in index {THING_GROUPS}")


def check_query_fields(query: Query, index_name: str, config: IndexingConfiguration) -> None:
    """:raises InvalidQueryError: a term names a field the index does not hold."""
    for leaf in leaves(query):
        if leaf.field is None:
            continue
        if index_name == THINGS:
            check_thing_field(leaf.field, config)
        else:
            check_group_field(leaf.field)
