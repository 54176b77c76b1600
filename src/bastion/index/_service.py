"""FleetIndex: the fleet-indexing service — configuration, the in-memory thing index,
SearchIndex, the aggregations, and the live membership of dynamic thing groups.

Theory of operation
-------------------
Each node keeps the whole ``AWS_Things`` index in memory: a :class:`ThingRecord` per
thing and an :class:`~bastion.index._postings.InvertedIndex` over their fields.

* **Build.** When thing indexing is turned on, at start, and after any configuration
  change, :meth:`FleetIndex.rebuild` reads the fleet from the store in four bulk queries
  (things with attributes and groups, live shadows, latest connections, dynamic groups)
  and swaps the new index in. Meanwhile the index is ``BUILDING`` (``REBUILDING`` after a
  configuration change) and queries answer ``IndexNotReadyException``.
* **Follow.** The index subscribes to the bus. Registry events (thing created, updated,
  deleted, group membership changed, group deleted) name the things to read back from
  the store; shadow events carry the new state, and the composition root forwards the
  broker's connect/disconnect events (:meth:`connection_changed`). Handlers only note the
  change (they run on the event loop and must not block); :meth:`flush` applies what is
  noted — the :class:`~bastion.index.IndexKeeper` calls it in a worker thread within
  tens of milliseconds of an event, and every query calls it first, so a query sees
  every change whose event was delivered before it.
* **Query.** A query is parsed (:mod:`._query`), its fields checked against the
  configuration (:mod:`._fields`), and answered by set algebra on the postings; a page is
  the smallest names after the page token, in name order.
* **Dynamic groups.** After each flush, every changed thing is matched against every
  dynamic group's query (:func:`~bastion.index._match.matches`, one thing at a time); a
  thing that starts or stops matching is added to or removed from the group in the
  store through :attr:`FleetIndex.membership_writer` — the registry, which publishes
  ``ThingGroupMembershipChanged``. That event re-binds the thing's live MQTT sessions
  (policies attached to the group start or stop applying) and comes back here to update
  ``thingGroupNames``. A dynamic group's query is matched against the thing's *static*
  groups only, so no query can chase its own membership.

The thing-group index (``AWS_ThingGroups``, :mod:`._answers`) is small and read from the
store at each query. Locking: ``_lock`` guards the records, the postings and the dynamic
queries; ``_pending_lock`` the noted changes; ``_flush_lock`` makes a flush and the
membership writes it causes one step; ``_config_lock`` serializes configuration changes.
Store writes happen outside ``_lock``.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from bastion.events import EventBus
from bastion.registry import (
    ThingCreated,
    ThingDeleted,
    ThingGroupDeleted,
    ThingGroupMembershipChanged,
    ThingUpdated,
)
from bastion.shadow import ShadowDeleted, ShadowUpdated
from bastion.store import (
    IndexedThingRow,
    LatestConnectionRow,
    ShadowStateRow,
    Store,
    ThingGroupRow,
)

from ._aggregate import (
    DEFAULT_MAX_BUCKETS,
    DEFAULT_PERCENTS,
    Statistics,
    buckets,
    percentiles,
    statistics,
)
from ._answers import (
    group_documents,
    make_token,
    numbers_of,
    page_size,
    read_token,
    value_key,
)
from ._config import SETTINGS_KEY, IndexingConfiguration, updated
from ._document import (
    NEVER_CONNECTED,
    Connectivity,
    Fields,
    ShadowRecord,
    ThingRecord,
    thing_document,
    thing_fields,
    values_of,
)
from ._errors import (
    IndexNotFoundError,
    IndexNotReadyError,
    InvalidAggregationError,
    InvalidIndexRequestError,
    InvalidQueryError,
)
from ._events import ThingConnectivityChanged, ThingShadowChanged
from ._fields import THING_GROUPS, THINGS, check_group_field, check_query_fields, check_thing_field
from ._match import matches
from ._postings import InvertedIndex
from ._query import Query, leaves, parse_query

log = logging.getLogger("bastion.index")

QUERY_VERSION: Final = "2017-09-30"

MembershipWriter = Callable[[str, Iterable[str], Iterable[str]], Iterable[str]]
"""``(group, things to add, things to remove)``: writes a dynamic group's membership and
returns the things whose membership changed (a thing already in 10 groups is not added)."""


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """DescribeIndex's answer."""

    index_name: str
    index_status: str
    schema: str


@dataclass(frozen=True, slots=True)
class SearchPage:
    """SearchIndex's answer: ``things`` or ``thing_groups`` as botocore's documents."""

    things: list[dict[str, Any]] = field(default_factory=list)
    thing_groups: list[dict[str, Any]] = field(default_factory=list)
    next_token: str | None = None


@dataclass(slots=True)
class _Pending:
    registry: set[str] = field(default_factory=set)
    shadows: dict[tuple[str, str], tuple[int, bytes] | None] = field(default_factory=dict)
    """``(version, /update/documents)`` of a changed shadow (parsed by the flush, not on
    the event loop), ``None`` for a deleted one."""
    connections: dict[str, Connectivity] = field(default_factory=dict)
    shadows_elsewhere: set[str] = field(default_factory=set)
    """Things whose shadows changed through another node: read back from the store."""

    def __bool__(self) -> bool:
        return bool(self.registry or self.shadows or self.connections
                    or self.shadows_elsewhere)


class FleetIndex:
    """The fleet index of one node (see the module docstring).

    :param store: where the fleet and the configuration are read.
    :param membership_writer: applies dynamic-group membership changes (the registry's
        :meth:`~bastion.registry.RegistryService.set_dynamic_members`); without one,
        dynamic groups are not maintained.
    """

    def __init__(self, store: Store, *, membership_writer: MembershipWriter | None = None
                 ) -> None:
        self._store = store
        self.membership_writer = membership_writer
        self._lock = threading.RLock()
        self._pending_lock = threading.Lock()
        self._build_lock = threading.Lock()
        # One flush at a time, its dynamic-group writes included: a query that flushes
        # while the keeper does waits for it, then sees what those writes changed.
        self._flush_lock = threading.RLock()
        self._config_lock = threading.Lock()
        self._records: dict[str, ThingRecord] = {}
        self._index = InvertedIndex()
        self._dynamic: dict[str, Query] = {}
        self._pending = _Pending()
        self._status = "ACTIVE"
        self._generation = 0
        self._wake: Callable[[], None] = lambda: None
        self._publish: Callable[[object], None] = lambda event: None
        self._origin = uuid.uuid4().hex
        with store.transaction(readonly=True) as uow:
            stored = uow.settings.get(SETTINGS_KEY)
        self._config = (IndexingConfiguration() if stored is None
                        else IndexingConfiguration.from_json(stored))
        if self._config.things_on:
            self._status = "BUILDING"

    # -- configuration ------------------------------------------------------------------

    @property
    def configuration(self) -> IndexingConfiguration:
        return self._config

    @property
    def ready(self) -> bool:
        return self._status == "ACTIVE"

    def update_configuration(self, *, things: Mapping[str, Any] | None = None,
                             groups: Mapping[str, Any] | None = None,
                             now: datetime | None = None) -> IndexingConfiguration:
        """UpdateIndexingConfiguration: store the new configuration; the thing index is
        rebuilt by the keeper (``REBUILDING`` until then) when what it holds changed.

        :raises InvalidIndexRequestError: a bad mode or combination, or thing indexing
            turned off while dynamic thing groups exist.
        """
        with self._config_lock:
            config = updated(self._config, things=None if things is None else dict(things),
                             groups=None if groups is None else dict(groups))
            with self._store.transaction() as uow:
                if not config.things_on and uow.thing_groups.dynamic_groups():
                    raise InvalidIndexRequestError(
                        "Thing indexing cannot be turned off while dynamic thing groups "
                        "exist")
                uow.settings.put(SETTINGS_KEY, config.to_json(), now or datetime.now(UTC))
            self._apply_configuration(config)
        return config

    def _apply_configuration(self, config: IndexingConfiguration) -> None:
        """Use ``config`` from now on; a change of what the thing index holds starts a
        (re)build."""
        with self._lock:
            before, self._config = self._config, config
            changed = replace(before, thing_group_indexing_mode=config.thing_group_indexing_mode,
                              group_custom_fields=config.group_custom_fields) != config
            if changed:
                self._generation += 1
                if config.things_on:
                    self._status = "BUILDING" if not before.things_on else "REBUILDING"
                else:
                    self._records, self._index, self._status = {}, InvertedIndex(), "ACTIVE"
        if changed and config.things_on:
            self._wake()

    def describe_index(self, index_name: str) -> IndexStatus:
        """DescribeIndex.

        :raises IndexNotFoundError: no such index, or its indexing is off.
        """
        self._require_index(index_name)
        if index_name == THINGS:
            return IndexStatus(THINGS, self._status, self._config.schema)
        return IndexStatus(THING_GROUPS, "ACTIVE", "REGISTRY")

    def list_indices(self) -> list[str]:
        """ListIndices: the indices that are on."""
        found = []
        if self._config.things_on:
            found.append(THINGS)
        if self._config.groups_on:
            found.append(THING_GROUPS)
        return found

    def _require_index(self, index_name: str) -> None:
        on = {THINGS: self._config.things_on, THING_GROUPS: self._config.groups_on}
        if not on.get(index_name, False):
            raise IndexNotFoundError(
                f"Index {index_name} does not exist. Please enable index by calling "
                "UpdateIndexingConfiguration")

    # -- feeding ------------------------------------------------------------------------

    def subscribe(self, bus: EventBus, wake: Callable[[], None]) -> Callable[[], None]:
        """Follow the registry and shadow events of ``bus``; ``wake`` is called (on the
        bus's thread) whenever a change is noted. Returns a function that unsubscribes."""
        self._wake = wake
        self._publish = bus.publish
        stops = [
            bus.subscribe(ThingShadowChanged, self._shadow_elsewhere),
            bus.subscribe(ThingConnectivityChanged, self._connectivity_elsewhere),
            bus.subscribe(ThingCreated, lambda e: self._note_thing(e.thing_name)),
            bus.subscribe(ThingUpdated, lambda e: self._note_thing(e.thing_name)),
            bus.subscribe(ThingDeleted, lambda e: self._note_thing(e.thing_name)),
            bus.subscribe(ThingGroupMembershipChanged,
                          lambda e: self._note_thing(e.thing_name)),
            bus.subscribe(ThingGroupDeleted, self._group_deleted),
            bus.subscribe(ShadowUpdated, self._shadow_updated),
            bus.subscribe(ShadowDeleted, self._shadow_deleted),
        ]

        def unsubscribe() -> None:
            for stop in stops:
                stop()
        return unsubscribe

    def connection_changed(self, client_id: str, connected: bool, timestamp: float,
                           reason: str | None = None) -> None:
        """A client connected or disconnected (``timestamp`` in epoch seconds); it counts
        for the thing of the same name. Safe from any thread; never blocks."""
        state = Connectivity(connected, int(timestamp * 1000), None if connected else reason)
        self._note_connectivity(client_id, state)
        self._publish(ThingConnectivityChanged(self._origin, client_id, connected,
                                               int(timestamp * 1000),
                                               state.disconnect_reason or ""))

    def _connectivity_elsewhere(self, event: ThingConnectivityChanged) -> None:
        if event.origin != self._origin:
            self._note_connectivity(event.client_id, Connectivity(
                event.connected, event.timestamp, event.reason or None))

    def _shadow_elsewhere(self, event: ThingShadowChanged) -> None:
        if event.origin != self._origin:
            with self._pending_lock:
                self._pending.shadows_elsewhere.add(event.thing_name)
            self._wake()

    def _note_connectivity(self, client_id: str, state: Connectivity) -> None:
        with self._pending_lock:
            noted = self._pending.connections.get(client_id)
            if noted is None or (noted.timestamp or 0) <= (state.timestamp or 0):
                self._pending.connections[client_id] = state
        self._wake()

    def _note_thing(self, name: str) -> None:
        with self._pending_lock:
            self._pending.registry.add(name)
        self._wake()

    def _group_deleted(self, event: ThingGroupDeleted) -> None:
        with self._pending_lock:
            self._pending.registry.update(event.thing_names)
        self._wake()

    def _shadow_updated(self, event: ShadowUpdated) -> None:
        key = (event.thing_name, event.shadow_name or "")
        with self._pending_lock:
            noted = self._pending.shadows.get(key)
            if noted is None or noted[0] <= event.version:
                self._pending.shadows[key] = (event.version, event.documents)
        self._wake()
        self._publish(ThingShadowChanged(self._origin, *key))

    def _shadow_deleted(self, event: ShadowDeleted) -> None:
        key = (event.thing_name, event.shadow_name or "")
        with self._pending_lock:
            self._pending.shadows[key] = None
        self._wake()
        self._publish(ThingShadowChanged(self._origin, *key))

    @property
    def needs_build(self) -> bool:
        return self._status != "ACTIVE" and self._config.things_on

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def rebuild(self) -> None:
        """Read the whole fleet from the store and swap the new index in (blocking; the
        keeper runs it in a worker thread)."""
        with self._build_lock:
            generation = self._generation
            config = self._config
            if not config.things_on:
                return
            with self._pending_lock:  # what happens from now on is applied afterwards
                self._pending.registry.clear()
            with self._store.transaction(readonly=True) as uow:
                things = uow.index_sources.things()
                shadows = uow.index_sources.shadows()
                connections = uow.index_sources.latest_connections()
                dynamic = uow.thing_groups.dynamic_groups()
            by_thing = _shadows(shadows, _kept_shadows(config))
            records = {row.name: _record(row, by_thing.get(row.name, {}),
                                         connections.get(row.name)) for row in things}
            del things, shadows, by_thing, connections  # the rows go before the postings come
            index = InvertedIndex()
            for name, record in records.items():
                index.put(name, thing_fields(record, config))
            queries = _queries(dynamic)
            with self._lock:
                if generation != self._generation:
                    return  # the configuration changed meanwhile: the next build wins
                self._records, self._index, self._dynamic = records, index, queries
                self._status = "ACTIVE"
            log.info("index: %d things indexed", len(records))
        self.flush()
        for group in list(queries):
            self.reconcile_group(group)

    def flush(self) -> None:
        """Apply the noted changes (blocking: registry changes are read from the store),
        then bring the dynamic groups of the changed things up to date."""
        if not self.ready:
            return
        with self._flush_lock:
            self._flush()

    def _flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, _Pending()
        if not pending:
            return
        parsed: dict[tuple[str, str], ShadowRecord | None] = {}
        for key, noted in pending.shadows.items():
            if noted is None:
                parsed[key] = None
                continue
            record = _shadow_record(noted[1])
            if record is None:  # read the thing's shadows back instead
                log.warning("index: unreadable shadow documents of %s", key[0])
                pending.shadows_elsewhere.add(key[0])
            else:
                parsed[key] = record
        kept = _kept_shadows(self._config)
        changed: set[str] = set()
        fresh: dict[str, IndexedThingRow] = {}
        extra_shadows: dict[str, dict[str, ShadowRecord]] = {}
        extra_connections: dict[str, LatestConnectionRow] = {}
        elsewhere: dict[str, dict[str, ShadowRecord]] = {}
        if pending.registry or pending.shadows_elsewhere:
            with self._store.transaction(readonly=True) as uow:
                fresh = {row.name: row for row in uow.index_sources.things(pending.registry)}
                unknown = [n for n in fresh if n not in self._records]
                if unknown:
                    extra_shadows = _shadows(uow.index_sources.shadows(unknown), kept)
                    extra_connections = uow.index_sources.latest_connections(unknown)
                if pending.shadows_elsewhere:
                    elsewhere = {name: {} for name in pending.shadows_elsewhere}
                    elsewhere.update(_shadows(uow.index_sources.shadows(elsewhere), kept))
        with self._lock:
            config = self._config
            for name in pending.registry:
                thing_row = fresh.get(name)
                current = self._records.get(name)
                if thing_row is None:
                    if current is not None:
                        del self._records[name]
                        self._index.remove(name)
                    continue
                if current is None:
                    current = _record(thing_row, extra_shadows.get(name, {}),
                                      extra_connections.get(name))
                else:
                    current = replace(current, thing_id=thing_row.thing_id,
                                      thing_type_name=thing_row.thing_type_name,
                                      attributes=thing_row.attributes, groups=thing_row.groups,
                                      version=thing_row.version)
                self._records[name] = current
                changed.add(name)
            for name, shadows_now in elsewhere.items():
                current = self._records.get(name)
                if current is not None:
                    self._records[name] = replace(current, shadows=shadows_now)
                    changed.add(name)
            for (name, shadow_name), shadow in parsed.items():
                current = self._records.get(name)
                if current is None or shadow_name not in kept:
                    continue
                shadows = dict(current.shadows)
                if shadow is None:
                    shadows.pop(shadow_name, None)
                else:
                    old = shadows.get(shadow_name)
                    if old is not None and old.version > shadow.version:
                        continue
                    shadows[shadow_name] = shadow
                self._records[name] = replace(current, shadows=shadows)
                changed.add(name)
            for name, connectivity in pending.connections.items():
                current = self._records.get(name)
                if current is None:
                    continue
                old_time = current.connectivity.timestamp
                if old_time is not None and connectivity.timestamp is not None and (
                        connectivity.timestamp < old_time):
                    continue
                self._records[name] = replace(current, connectivity=connectivity)
                changed.add(name)
            for name in changed:
                self._index.put(name, thing_fields(self._records[name], config))
        if changed:
            self._reconcile_things(changed)

    # -- dynamic groups -----------------------------------------------------------------

    def set_dynamic_group(self, group: str, query: Query) -> None:
        """Maintain ``group``'s members from ``query`` from now on, starting with all of
        them (blocking: writes the membership)."""
        with self._flush_lock:  # not interleaved with refresh_dynamic_groups
            with self._lock:
                self._dynamic[group] = query
            self.reconcile_group(group)

    def refresh(self) -> None:
        """Re-read what another node may have changed (blocking): the configuration, and
        the dynamic groups — reconciling those whose query is new here."""
        with self._config_lock, self._store.transaction(readonly=True) as uow:
            stored = uow.settings.get(SETTINGS_KEY)
            if stored is not None:
                config = IndexingConfiguration.from_json(stored)
                if config != self._config:
                    self._apply_configuration(config)
        self.refresh_dynamic_groups()

    def refresh_dynamic_groups(self) -> None:
        """Re-read the dynamic groups from the store (those another node created, updated
        or deleted) and reconcile the ones whose query is new here (blocking)."""
        if not self.ready:
            return
        with self._flush_lock:  # a local create or delete lands before or after, not amid
            with self._store.transaction(readonly=True) as uow:
                queries = _queries(uow.thing_groups.dynamic_groups())
            with self._lock:
                changed = [g for g, q in queries.items() if self._dynamic.get(g) != q]
                self._dynamic = queries
            for group in changed:
                self.reconcile_group(group)

    def drop_dynamic_group(self, group: str) -> None:
        """Stop maintaining ``group`` (it was deleted)."""
        with self._flush_lock, self._lock:
            self._dynamic.pop(group, None)

    def reconcile_group(self, group: str) -> None:
        """Bring every thing's membership of ``group`` in line with its query."""
        with self._flush_lock:
            self.flush()
            self._reconcile_group(group)

    def _reconcile_group(self, group: str) -> None:
        with self._lock:
            query = self._dynamic.get(group)
            if query is None or self.membership_writer is None:
                return
            dynamic = frozenset(self._dynamic)
            if any(leaf.field in (None, "thingGroupNames") for leaf in leaves(query)):
                # it may name groups: match each thing against its static groups only
                wanted = {name for name in self._records
                          if matches(query, _static_view(self._index.fields_of(name) or {},
                                                         dynamic))}
            else:  # the postings answer it exactly, in milliseconds
                wanted = set(self._index.evaluate(query))
            have = {name for name, record in self._records.items() if group in record.groups}
            add, remove = sorted(wanted - have), sorted(have - wanted)
        if add or remove:
            self._write_members(self.membership_writer, group, add, remove)

    def _write_members(self, writer: MembershipWriter, group: str, add: list[str],
                       remove: list[str]) -> None:
        """Write a membership change and note its things, so that the next flush (the one
        a query makes first, at the latest) reads their groups back."""
        with self._flush_lock:
            changed = list(writer(group, add, remove))
            if changed:
                with self._pending_lock:
                    self._pending.registry.update(changed)
                self._wake()

    def _reconcile_things(self, names: Iterable[str]) -> None:
        writer = self.membership_writer
        if writer is None:
            return
        changes: dict[str, tuple[list[str], list[str]]] = {}
        with self._lock:
            if not self._dynamic:
                return
            dynamic = frozenset(self._dynamic)
            for name in names:
                record = self._records.get(name)
                fields = self._index.fields_of(name)
                if record is None or fields is None:
                    continue
                view = _static_view(fields, dynamic)
                for group, query in self._dynamic.items():
                    want = matches(query, view)
                    have = group in record.groups
                    if want != have:
                        add, remove = changes.setdefault(group, ([], []))
                        (add if want else remove).append(name)
        for group, (add, remove) in changes.items():
            try:
                self._write_members(writer, group, add, remove)
            except Exception:  # one group's failure must not stop the rest
                log.exception("index: updating dynamic group %s failed", group)

    # -- queries ------------------------------------------------------------------------

    def parse(self, query_string: str, index_name: str | None = None,
              query_version: str | None = None) -> Query:
        """Parse and check a query for ``index_name`` (default ``AWS_Things``).

        :raises IndexNotFoundError: no such index, or its indexing is off.
        :raises InvalidQueryError: the query is not valid for that index.
        :raises InvalidIndexRequestError: an unknown query version.
        """
        name = index_name or THINGS
        self._require_index(name)
        if query_version not in (None, QUERY_VERSION):
            raise InvalidIndexRequestError(
                f"Query version {query_version} is not supported; use {QUERY_VERSION}")
        query = parse_query(query_string)
        check_query_fields(query, name, self._config)
        return query

    def search(self, query_string: str, *, index_name: str | None = None,
               max_results: int | None = None, next_token: str | None = None,
               query_version: str | None = None) -> SearchPage:
        """SearchIndex: a page of the things (or thing groups) that match, by name.

        :raises IndexNotFoundError: no such index, or its indexing is off.
        :raises IndexNotReadyError: the thing index is being built.
        :raises InvalidQueryError: the query is not valid.
        :raises InvalidIndexRequestError: a bad ``next_token`` or ``max_results``.
        """
        name = index_name or THINGS
        query = self.parse(query_string, name, query_version)
        limit = page_size(max_results)
        after = read_token(next_token, query_string)
        if name == THING_GROUPS:
            groups = [g for g in group_documents(self._store) if matches(query, g[1])]
            chosen = [g for g in groups if after is None or g[0]["thingGroupName"] > after]
            page = chosen[:limit + 1]
            token = (make_token(page[limit - 1][0]["thingGroupName"], query_string)
                     if len(page) > limit else None)
            return SearchPage(thing_groups=[g[0] for g in page[:limit]], next_token=token)
        self._require_ready()
        self.flush()
        with self._lock:
            names = self._index.evaluate(query)
            candidates = names if after is None else (n for n in names if n > after)
            chosen_names = heapq.nsmallest(limit + 1, candidates)
            config = self._config
            documents = [thing_document(self._records[n], config)
                         for n in chosen_names[:limit]]
        token = (make_token(chosen_names[limit - 1], query_string)
                 if len(chosen_names) > limit else None)
        return SearchPage(things=documents, next_token=token)

    def _require_ready(self) -> None:
        if not self.ready:
            raise IndexNotReadyError(f"Index {THINGS} is not ready; it is being built")

    def _matched(self, query_string: str, index_name: str | None,
                 query_version: str | None, aggregation_field: str | None
                 ) -> list[Fields]:
        """The fields of every match, after checking ``aggregation_field``."""
        name = index_name or THINGS
        query = self.parse(query_string, name, query_version)
        if aggregation_field is not None:
            try:
                if name == THINGS:
                    check_thing_field(aggregation_field, self._config)
                else:
                    check_group_field(aggregation_field)
            except InvalidQueryError as error:
                raise InvalidAggregationError(error.message) from None
        if name == THING_GROUPS:
            return [g[1] for g in group_documents(self._store) if matches(query, g[1])]
        self._require_ready()
        self.flush()
        with self._lock:
            return [self._index.fields_of(n) or {} for n in self._index.evaluate(query)]

    def statistics(self, query_string: str, *, index_name: str | None = None,
                   aggregation_field: str | None = None,
                   query_version: str | None = None) -> Statistics:
        """GetStatistics: the count of matches, and with a numeric ``aggregation_field``
        the statistics of its values.

        :raises InvalidAggregationError: the field is not indexed or holds no numbers.
        :raises (as :meth:`search`)
        """
        matched = self._matched(query_string, index_name, query_version, aggregation_field)
        if aggregation_field is None:
            return Statistics(len(matched))
        return statistics(numbers_of(matched, aggregation_field))

    def cardinality(self, query_string: str, *, index_name: str | None = None,
                    aggregation_field: str | None = None,
                    query_version: str | None = None) -> int:
        """GetCardinality: how many distinct values ``aggregation_field`` has among the
        matches (without a field: how many matches)."""
        matched = self._matched(query_string, index_name, query_version, aggregation_field)
        if aggregation_field is None:
            return len(matched)
        return len({value_key(v) for fields in matched
                    for v in values_of(fields.get(aggregation_field, ()))})

    def percentiles(self, query_string: str, *, aggregation_field: str | None,
                    index_name: str | None = None, percents: Iterable[float] | None = None,
                    query_version: str | None = None) -> list[tuple[float, float]]:
        """GetPercentiles of a numeric field over the matches.

        :raises InvalidAggregationError: no field, or a field without numbers.
        """
        if aggregation_field is None:
            raise InvalidAggregationError("GetPercentiles needs an aggregationField")
        matched = self._matched(query_string, index_name, query_version, aggregation_field)
        wanted = tuple(percents) if percents else DEFAULT_PERCENTS
        return percentiles(numbers_of(matched, aggregation_field), wanted)

    def buckets(self, query_string: str, *, aggregation_field: str,
                max_buckets: int | None = None, index_name: str | None = None,
                query_version: str | None = None) -> tuple[int, list[tuple[str, int]]]:
        """GetBucketsAggregation (terms): the number of matches, and the most frequent
        values of ``aggregation_field`` with their counts."""
        matched = self._matched(query_string, index_name, query_version, aggregation_field)
        keys = (value_key(v) for fields in matched
                for v in values_of(fields.get(aggregation_field, ())))
        return len(matched), buckets(keys, max_buckets or DEFAULT_MAX_BUCKETS)

# -- helpers ------------------------------------------------------------------------------


def _state(text: str) -> dict[str, Any] | None:
    try:
        state = json.loads(text)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def _shadow_record(documents: bytes) -> ShadowRecord | None:
    """The shadow after an update, from its ``/update/documents`` message."""
    try:
        current = json.loads(documents)["current"]
        return ShadowRecord(int(current["version"]), dict(current.get("state") or {}))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _kept_shadows(config: IndexingConfiguration) -> frozenset[str]:
    """The shadows a record keeps: the classic one (``""``) and the named ones indexed;
    none without shadow indexing (a configuration change rebuilds the records)."""
    return frozenset({"", *config.indexed_shadow_names}) if config.shadow_on else frozenset()


def _shadows(rows: Iterable[ShadowStateRow], kept: frozenset[str]
             ) -> dict[str, dict[str, ShadowRecord]]:
    """The live shadows in ``kept``, by thing and shadow name."""
    found: dict[str, dict[str, ShadowRecord]] = {}
    for row in rows:
        if row.shadow_name not in kept:
            continue
        state = _state(row.state)
        if state is not None:
            found.setdefault(row.thing_name, {})[row.shadow_name] = ShadowRecord(row.version,
                                                                                  state)
    return found


def _record(row: IndexedThingRow, shadows: Mapping[str, ShadowRecord],
            connection: LatestConnectionRow | None) -> ThingRecord:
    connectivity = NEVER_CONNECTED
    if connection is not None:
        connectivity = Connectivity(connection.connected,
                                    int(connection.timestamp.timestamp() * 1000),
                                    connection.reason)
    return ThingRecord(row.name, row.thing_id, row.thing_type_name, row.attributes,
                       row.groups, row.version, dict(shadows), connectivity)


def _queries(rows: Iterable[ThingGroupRow]) -> dict[str, Query]:
    found: dict[str, Query] = {}
    for row in rows:
        if row.query_string is None:
            continue
        try:
            found[row.name] = parse_query(row.query_string)
        except InvalidQueryError as error:  # stored before a stricter parser
            log.error("index: dynamic group %s has a query we cannot read: %s",
                      row.name, error.message)
    return found


def _static_view(fields: Fields, dynamic: frozenset[str]) -> Fields:
    held = fields.get("thingGroupNames")
    groups = () if held is None else values_of(held)
    if not dynamic.intersection(groups):
        return fields
    view = dict(fields)
    view["thingGroupNames"] = tuple(g for g in groups if g not in dynamic)
    return view
