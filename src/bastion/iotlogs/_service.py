"""AWS IoT logs of the broker: who connected, published, subscribed, was denied.

Theory of operation
-------------------
:class:`IoTLogs` is a component of the node. It keeps a :class:`~._levels.LevelTable`
built in a worker thread from the stored logging options (``SetV2LoggingOptions``,
``SetV2LoggingLevel`` …, or v1's) and, for ``THING_GROUP`` targets, the thing-group tree
and its members. The table is rebuilt when the options change through this process
(:meth:`bastion.logging_options.LoggingOptions.on_change`), when a thing joins or leaves a
group or a group is deleted, and every ``refresh_seconds`` (changes another node made);
each rebuild re-applies the levels to every live session.

Entries come from two places, both on the broker's event loop:

* the broker's events on the bus — :class:`~bastion.broker.ClientConnected` (``Connect``,
  INFO; it also gives the session its level, :meth:`~bastion.broker.Session.set_log`),
  :class:`~bastion.broker.ClientDisconnected` (``Disconnect``, INFO),
  :class:`~bastion.broker.Subscribed` and :class:`~bastion.broker.Unsubscribed`
  (``Subscribe``, ``Unsubscribe``, INFO),
  :class:`~bastion.broker.ConnectRefused` (``Connect`` failure, ERROR) and
  :class:`~bastion.broker.AuthorizationDenied` (``Publish-In``/``Subscribe``/
  ``Publish-Out`` failure, ERROR, ``reason`` ``AUTHORIZATION_FAILURE``);
* the jobs topics' :class:`~bastion.reserved.JobsRequestServed` (``UpdateJobExecution``
  with the execution's new status, ``StartNextPendingJobExecution`` …: DEBUG when
  accepted, ERROR when rejected) and the rules engine's
  :class:`~bastion.rules.RuleActionFailed` (``RuleExecution`` failure, ERROR), at the
  level of the client that published the message or made the request;
* the message path, as the session's :class:`~bastion.broker.MessageLog`: the broker
  calls :meth:`IoTLogs.publish_in` / :meth:`IoTLogs.publish_out` only when the session's
  level is INFO or more verbose (one integer comparison per message otherwise).

An entry is built only once its level passed the client's, then handed to the
:class:`~._writer.EntryWriter` (a bounded queue drained by a thread: no file I/O on the
loop). Each ERROR entry is also given, as a dict, to every listener registered with
:meth:`IoTLogs.on_error` (the threat detector's plug point), on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bastion.account import Account
from bastion.broker import (
    LOG_DEBUG,
    LOG_DISABLED,
    LOG_ERROR,
    LOG_INFO,
    NO_MESSAGE_LOG,
    AuthorizationDenied,
    Broker,
    ClientConnected,
    ClientDisconnected,
    ConnectRefused,
    DisconnectReason,
    Session,
    Subscribed,
    Unsubscribed,
)
from bastion.clock import Clock, SystemClock
from bastion.config import IoTLogsConfig
from bastion.events import EventBus
from bastion.lifecycle import Component
from bastion.logging_options import LoggingOptions
from bastion.registry import (
    RegistryError,
    RegistryService,
    ThingGroupDeleted,
    ThingGroupMembershipChanged,
)
from bastion.reserved import JobsRequestServed
from bastion.rules import RuleActionFailed

from ._entries import AUTHORIZATION_FAILURE, EVENT_OF_ACTION, FAILURE, SUCCESS, entry
from ._levels import (
    LevelTable,
    group_levels,
    level_table,
    parse_level,
    thing_group_targets,
)
from ._writer import EntryWriter

log = logging.getLogger("bastion.iotlogs")

ErrorListener = Callable[[dict[str, Any]], None]
"""Called with each ERROR entry written (a dict of AWS's fields), on the event loop;
must not block (hand the work to a task or a thread)."""


def _thing_name(session: Session) -> str | None:
    name = getattr(session.permissions, "thing_name", None)
    return name if isinstance(name, str) else None


class IoTLogs(Component):
    """See the module docstring.

    :param path: the JSON-lines file.
    :param clock: the entries' timestamps (its epoch seconds).
    """

    name = "iot-logs"

    def __init__(self, broker: Broker, bus: EventBus, options: LoggingOptions,
                 registry: RegistryService, account: Account, config: IoTLogsConfig,
                 path: Path, *, clock: Clock | None = None) -> None:
        self._broker = broker
        self._bus = bus
        self._options = options
        self._registry = registry
        self._account_id = account.account_id
        self._config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._fallback = parse_level(config.default_level)
        self.table = LevelTable(default=self._fallback)
        self._group_targets = False
        self.writer = EntryWriter(path, max_bytes=config.max_bytes,
                                  files_kept=config.files_kept, queue_size=config.queue_size,
                                  syslog=config.syslog_address,
                                  syslog_facility=config.syslog_facility)
        self._error_listeners: tuple[ErrorListener, ...] = ()
        self._unsubscribe: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # -- the threat detector's plug point ------------------------------------------------

    def on_error(self, listener: ErrorListener) -> Callable[[], None]:
        """Give ``listener`` every ERROR entry from now on; returns how to stop."""
        self._error_listeners = (*self._error_listeners, listener)

        def stop() -> None:
            self._error_listeners = tuple(x for x in self._error_listeners
                                          if x is not listener)
        return stop

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await asyncio.to_thread(self.writer.start)
        self.table = await asyncio.to_thread(self.read_table)
        bus = self._bus
        self._unsubscribe = [
            bus.subscribe(ClientConnected, self._connected),
            bus.subscribe(ClientDisconnected, self._disconnected),
            bus.subscribe(ConnectRefused, self._refused),
            bus.subscribe(AuthorizationDenied, self._denied),
            bus.subscribe(Subscribed, self._subscribed),
            bus.subscribe(Unsubscribed, self._subscribed),
            bus.subscribe(JobsRequestServed, self._jobs_request),
            bus.subscribe(RuleActionFailed, self._rule_failed),
            bus.subscribe(ThingGroupMembershipChanged, self._groups_changed),
            bus.subscribe(ThingGroupDeleted, self._groups_changed),
            self._options.on_change(self._options_changed),
        ]
        self.apply_levels()

    async def run(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._config.refresh_seconds)
            wake.clear()
            try:
                self.table = await asyncio.to_thread(self.read_table)
            except Exception:
                log.exception("IoT logs: reading the log levels failed; keeping the "
                              "current ones")
                continue
            self.apply_levels()

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        for session in self._broker.sessions.values():
            session.set_log(LOG_DISABLED, NO_MESSAGE_LOG)
        await asyncio.to_thread(self.writer.stop)

    # -- levels -----------------------------------------------------------------------------

    def read_table(self) -> LevelTable:
        """The levels in force, read from the store and the registry (a worker thread)."""
        state = self._options.state()
        targets = state.levels if state.v2 is not None else ()
        groups = thing_group_targets(targets)
        self._group_targets = bool(groups)
        things = self._things_of(groups) if groups and state.v2 is not None else {}
        return level_table(state.v1, state.v2, targets, fallback=self._fallback,
                           things=things)

    def _things_of(self, targets: dict[str, int]) -> dict[str, int]:
        """thing → level, for the things in the target groups and their descendants."""
        registry = self._registry
        members: dict[str, list[str]] = {}
        ancestors: dict[str, tuple[str, ...]] = {}
        for target in targets:
            try:
                below = _all(functools.partial(_groups_under, registry, target))
            except RegistryError:
                continue  # the group is gone (its log level stays until deleted)
            for name in [target, *below]:
                if name in members:
                    continue
                try:
                    described = registry.describe_thing_group(name)
                    members[name] = _all(functools.partial(_things_in, registry, name))
                except RegistryError:
                    continue
                ancestors[name] = tuple(g.group_name
                                        for g in described.root_to_parent_thing_groups)
        return group_levels(targets, ancestors, members)

    def apply_levels(self) -> None:
        """Give every live session its level under the current table (on the loop)."""
        table = self.table
        for session in self._broker.sessions.values():
            if session.connection is not None:
                principal = session.principal
                session.set_log(table.level_for(session.client_id, principal.source_ip,
                                                principal.certificate_id), self)

    def _options_changed(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def _groups_changed(self, event: object) -> None:
        if self._group_targets and self._wake is not None:
            self._wake.set()

    # -- entries ------------------------------------------------------------------------

    def _emit(self, level: str, item: dict[str, Any]) -> None:
        if level == "ERROR":
            for listener in self._error_listeners:
                try:
                    listener(dict(item))
                except Exception:
                    log.exception("IoT logs: an error listener failed")
        self.writer.put(item)

    def _session_fields(self, session: Session) -> dict[str, Any]:
        principal = session.principal
        return {"protocol": "MQTT", "clientId": session.client_id,
                "principalId": principal.certificate_id, "thingName": _thing_name(session),
                "sourceIp": principal.source_ip, "sourcePort": principal.source_port}

    def _live(self, client_id: str, session_id: str | None = None) -> Session | None:
        session = self._broker.sessions.get(client_id)
        if session is None or (session_id is not None and session.session_id != session_id):
            return None
        return session

    def publish_in(self, session: object, topic: str, qos: int) -> None:
        assert isinstance(session, Session)
        self._emit("INFO", entry(self._clock.time(), "INFO", self._account_id, SUCCESS,
                                 "Publish-In", topicName=topic,
                                 **self._session_fields(session)))

    def publish_out(self, session: object, topic: str, qos: int) -> None:
        assert isinstance(session, Session)
        self._emit("INFO", entry(self._clock.time(), "INFO", self._account_id, SUCCESS,
                                 "Publish-Out", topicName=topic,
                                 **self._session_fields(session)))

    def _connected(self, event: ClientConnected) -> None:
        session = self._live(event.client_id, event.session_id)
        if session is None:
            return
        level = self.table.level_for(event.client_id, event.source_ip, event.certificate_id)
        session.set_log(level, self)
        if level <= LOG_INFO:
            self._emit("INFO", entry(event.timestamp, "INFO", self._account_id, SUCCESS,
                                     "Connect", **self._session_fields(session)))

    def _disconnected(self, event: ClientDisconnected) -> None:
        session = self._live(event.client_id, event.session_id)
        if session is None or session.log_level > LOG_INFO:
            return
        self._emit("INFO", entry(event.timestamp, "INFO", self._account_id, SUCCESS,
                                 "Disconnect", **self._session_fields(session),
                                 disconnectReason=event.reason.value))

    def _subscribed(self, event: Subscribed | Unsubscribed) -> None:
        session = self._live(event.client_id, event.session_id)
        if session is None or session.log_level > LOG_INFO:
            return
        fields = self._session_fields(session)
        kind = "Subscribe" if isinstance(event, Subscribed) else "Unsubscribe"
        for topic_filter in event.topic_filters:
            self._emit("INFO", entry(event.timestamp, "INFO", self._account_id, SUCCESS,
                                     kind, topicName=topic_filter, **fields))

    def _refused(self, event: ConnectRefused) -> None:
        level = self.table.level_for(event.client_id, event.source_ip, event.certificate_id)
        if level > LOG_ERROR:
            return
        if event.kind is DisconnectReason.AUTH_ERROR:
            reason = (AUTHORIZATION_FAILURE if event.reason == "iot:Connect denied"
                      else "AUTHENTICATION_FAILURE")
        else:
            reason = event.kind.value
        self._emit("ERROR", entry(event.timestamp, "ERROR", self._account_id, FAILURE,
                                  "Connect", protocol="MQTT", clientId=event.client_id,
                                  principalId=event.certificate_id, sourceIp=event.source_ip,
                                  sourcePort=event.source_port or None, reason=reason,
                                  details=event.reason))

    def _client(self, client_id: str | None, principal_id: str | None
                ) -> tuple[int, dict[str, Any]]:
        """The level and the fields of a client that may have gone meanwhile."""
        session = self._live(client_id) if client_id else None
        if session is not None:
            return session.log_level, self._session_fields(session)
        return (self.table.level_for(client_id or "", "", principal_id or ""),
                {"clientId": client_id or "N/A", "principalId": principal_id})

    def _jobs_request(self, event: JobsRequestServed) -> None:
        level, fields = self._client(event.client_id, None)
        failed = event.error_code is not None
        if level > (LOG_ERROR if failed else LOG_DEBUG):
            return
        details = (f"The destination status is {event.status}. " if event.status else "") + (
            f"The request status is {event.error_code}: {event.error_message}" if failed
            else "The request status is SUCCESS.")
        name = "ERROR" if failed else "DEBUG"
        fields["protocol"] = "MQTT"
        self._emit(name, entry(event.timestamp, name, self._account_id,
                               FAILURE if failed else SUCCESS, event.event_type, **fields,
                               jobId=event.job_id, topicName=event.topic,
                               clientToken=event.client_token, reason=event.error_code,
                               details=details))

    def _rule_failed(self, event: RuleActionFailed) -> None:
        level, fields = self._client(event.client_id, event.principal)
        if level > LOG_ERROR:
            return
        self._emit("ERROR", entry(event.timestamp, "ERROR", self._account_id, FAILURE,
                                  "RuleExecution", clientId=fields.get("clientId"),
                                  topicName=event.topic, ruleName=event.rule_name,
                                  ruleAction=event.action,
                                  resources={"resource": event.resource},
                                  principalId=fields.get("principalId"),
                                  reason="RuleExecutionFailure", details=event.error))

    def _denied(self, event: AuthorizationDenied) -> None:
        if event.action == "iot:Connect":
            return  # the ConnectRefused that follows is the entry
        session = self._live(event.client_id)
        if session is not None:
            level = session.log_level
            fields = self._session_fields(session)
        else:
            level = self.table.level_for(event.client_id, "", event.certificate_id)
            fields = {"protocol": "MQTT", "clientId": event.client_id,
                      "principalId": event.certificate_id}
        if level > LOG_ERROR:
            return
        self._emit("ERROR", entry(event.timestamp, "ERROR", self._account_id, FAILURE,
                                  EVENT_OF_ACTION.get(event.action, event.action),
                                  topicName=event.resource, **fields,
                                  reason=AUTHORIZATION_FAILURE,
                                  details=f"Authorization Failure ({event.action})"))


def _groups_under(registry: RegistryService, group: str,
                  token: str | None) -> tuple[list[str], str | None]:
    page, next_token = registry.list_thing_groups(parent_group=group, recursive=True,
                                                  next_token=token)
    return [g.group_name for g in page], next_token


def _things_in(registry: RegistryService, group: str,
               token: str | None) -> tuple[list[str], str | None]:
    return registry.list_things_in_thing_group(group, next_token=token)


def _all(page: Callable[[str | None], tuple[list[Any], str | None]]) -> list[Any]:
    """Every item of a paginated registry listing."""
    items: list[Any] = []
    token: str | None = None
    while True:
        found, token = page(token)
        items.extend(found)
        if not token:
            return items
