"""Fleet indexing: the ``AWS_Things`` and ``AWS_ThingGroups`` indices, their query
language, aggregations, and the membership of dynamic thing groups.

* :func:`parse_query` — the query language (a pure core, :mod:`._query`);
* :func:`matches` — the reference evaluator of a query against one thing's fields;
* :class:`FleetIndex` — the service: configuration, the in-memory index fed by the bus,
  SearchIndex and the aggregations, dynamic-group membership;
* :class:`IndexKeeper` — the component that builds the index and applies changes;
* :class:`DynamicThingGroups` — CreateDynamicThingGroup and friends.

``docs/indexing.md`` says what is indexed, what the language supports, and how fast.
"""

from __future__ import annotations

from ._aggregate import Statistics
from ._config import IndexingConfiguration
from ._document import Connectivity, ShadowRecord, ThingRecord, thing_document, thing_fields
from ._dynamic import DynamicThingGroups
from ._errors import (
    FleetIndexError,
    IndexNotFoundError,
    IndexNotReadyError,
    InvalidAggregationError,
    InvalidIndexRequestError,
    InvalidQueryError,
)
from ._events import ThingConnectivityChanged, ThingShadowChanged
from ._fields import THING_GROUPS, THINGS
from ._keeper import IndexKeeper
from ._match import matches
from ._postings import InvertedIndex
from ._query import And, Not, Or, Query, Range, Term, Wildcard, parse_query
from ._service import QUERY_VERSION, FleetIndex, IndexStatus, SearchPage

__all__ = [
    "QUERY_VERSION",
    "THINGS",
    "THING_GROUPS",
    "And",
    "Connectivity",
    "DynamicThingGroups",
    "FleetIndex",
    "FleetIndexError",
    "IndexKeeper",
    "IndexNotFoundError",
    "IndexNotReadyError",
    "IndexStatus",
    "IndexingConfiguration",
    "InvalidAggregationError",
    "InvalidIndexRequestError",
    "InvalidQueryError",
    "InvertedIndex",
    "Not",
    "Or",
    "Query",
    "Range",
    "SearchPage",
    "ShadowRecord",
    "Statistics",
    "Term",
    "ThingConnectivityChanged",
    "ThingRecord",
    "ThingShadowChanged",
    "Wildcard",
    "matches",
    "parse_query",
    "thing_document",
    "thing_fields",
]
