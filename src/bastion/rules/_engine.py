"""The rules engine: runs the enabled topic rules on the messages the broker accepted.

Theory of operation
-------------------
The broker's message path only *offers* a message (:meth:`RulesEngine.wants`, then
:meth:`RulesEngine.offer`), on the event loop, and never waits: ``wants`` is a dictionary
lookup per topic (the rules whose FROM filter matches it, cached until the rules change),
and ``offer`` puts the message in a bounded queue. A full queue drops the message, counts
it and logs (at most once a minute): the broker is never held back by rules.

One evaluation thread takes messages from the queue, evaluates each matching rule (the
statement compiled when the rule was loaded, :mod:`._compile`), delivers the local
actions of a matched rule itself (republish, log file: cheaper than a thread hand-off) and
hands the others (and a local one that failed) to a small pool of delivery threads. A
delivery is tried up to ``attempts`` times, waiting ``backoff``
(doubled each time, at most ``max_backoff``) between tries, unless the failure says
retrying cannot help; when it still fails, the rule's error action gets AWS's error
message (``ruleName``, ``topic``, ``clientId``, ``base64OriginalPayload``, ``failures``).
Deliveries waiting for a thread are bounded too (``queue_size``): past that they are
dropped and counted like messages.

Basic Ingest: a message on ``$aws/rules/<rule>/<topic>`` goes to that rule only (its
FROM clause is not consulted), with ``topic()`` seeing ``<topic>``; the broker routes it
to no subscriber (``bastion.reserved.rules``).

The working set is every enabled rule in the store, compiled; it is reloaded (in a
worker thread) whenever the bus carries :class:`~._service.TopicRuleChanged`, and the
list of enabled destinations whenever it carries
:class:`~._service.TopicRuleDestinationChanged`. A republished message is offered to
the rules again like any other, except to the rule that republished it.

Counters per rule (``matched``, ``actions_succeeded``, ``actions_failed``,
``error_actions_succeeded``, ``error_actions_failed``) and for the engine (``offered``,
``evaluated``, ``dropped``) are plain integers (:meth:`RulesEngine.counters`,
:func:`summary`).

Every delivery that still fails after its attempts is announced on the engine's bus as
a :class:`RuleActionFailed` (one per message it carried): AWS IoT logs it as a failed
``RuleExecution`` (``bastion.iotlogs``). In the child process the announcement travels
back to the node, which publishes it on the node's bus.

A node runs this engine in a child process (:mod:`._process`); tests run it directly.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.clock import Clock, SystemClock
from bastion.config import RulesConfig
from bastion.events import EventBus
from bastion.lifecycle import Component
from bastion.mqtt import topic_matches

from ._actions import (
    ActionSpec,
    HttpSpec,
    LogFileSpec,
    ObjectSpec,
    RepublishSpec,
    SqlKeyedSpec,
    SqlTableSpec,
    StreamSpec,
    describe_resource,
)
from ._batching import Batch, HttpBatcher
from ._evaluate import MessageContext, RuleOutput
from ._service import CompiledRule, RuleService, TopicRuleChanged, TopicRuleDestinationChanged
from ._sinks import (
    ActionFailed,
    HttpDeliveries,
    LogFiles,
    NatsStreams,
    ObjectStores,
    Republisher,
    SqlTables,
    republish,
)
from ._values import NO_MQTT_PROPERTIES, MqttProperties

log = logging.getLogger("bastion.rules")

BASIC_INGEST_PREFIX = "$aws/rules/"
DROP_LOG_INTERVAL = 60.0
_TOPIC_CACHE_LIMIT = 10000
PropertyFields = tuple[int | None, str | None, str | None, bytes | None,
                       tuple[tuple[str, str], ...]]
"""The fields of a :class:`MqttProperties`, in order."""
_STOP: Any = object()
_LOCAL_ACTIONS = (RepublishSpec, LogFileSpec)
"""Actions that only hand a message to the broker or append a line to a file: delivered
by the evaluation thread itself (a thread hand-off costs more than they do)."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message the broker accepted, as the engine keeps it.

    :ivar rule_name: Basic Ingest: the one rule it is for (``topic`` without the prefix).
    :ivar republished_by: the rule whose republish action published it, if one did.
    """

    topic: str
    payload: bytes
    client_id: str | None
    principal: str | None
    timestamp_ms: int
    rule_name: str | None = None
    republished_by: str | None = None
    properties: MqttProperties = NO_MQTT_PROPERTIES


@dataclass(slots=True)
class RuleCounters:
    matched: int = 0
    actions_succeeded: int = 0
    actions_failed: int = 0
    error_actions_succeeded: int = 0
    error_actions_failed: int = 0


@dataclass(slots=True)
class EngineCounters:
    offered: int = 0
    evaluated: int = 0
    dropped: int = 0
    evaluation_errors: int = 0
    rules: dict[str, RuleCounters] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleActionFailed:
    """A rule's action failed for a message (after its retries).

    :ivar action: AWS's name of the action (``RepublishAction``, ``HttpAction`` …).
    :ivar resource: what it writes to (a topic, URL, table …).
    """

    rule_name: str
    action: str
    resource: str
    topic: str
    client_id: str | None
    principal: str | None
    error: str
    timestamp: float


def summary(stats: EngineCounters) -> str:
    """An engine's counters in one line (a node logs it when it stops)."""
    rules = list(stats.rules.values())
    return (f"offered {stats.offered}, evaluated {stats.evaluated}, dropped {stats.dropped}, "
            f"evaluation errors {stats.evaluation_errors}; matched "
            f"{sum(r.matched for r in rules)}, actions succeeded "
            f"{sum(r.actions_succeeded for r in rules)}, failed "
            f"{sum(r.actions_failed for r in rules)}")


@dataclass(slots=True)
class _WorkingSet:
    """The enabled rules and, per topic, those whose FROM filter matches it. Replaced
    whole on a reload, so a lookup racing a reload caches into the set it read from."""

    rules: dict[str, CompiledRule] = field(default_factory=dict)
    by_topic: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)

    def match(self, topic: str) -> tuple[CompiledRule, ...]:
        found = self.by_topic.get(topic)
        if found is not None:
            return found
        target = basic_ingest_target(topic)
        if target is not None:
            rule = self.rules.get(target[0])
            found = () if rule is None else (rule,)
        else:
            found = tuple(rule for rule in self.rules.values()
                          if rule.statement.topic_filter is not None
                          and topic_matches(rule.statement.topic_filter, topic))
        cache = self.by_topic
        if len(cache) >= _TOPIC_CACHE_LIMIT:
            cache.clear()
        cache[topic] = found
        return found


def basic_ingest_target(topic: str) -> tuple[str, str] | None:
    """``$aws/rules/<rule>/<rest>`` → ``(rule, rest)``; ``None`` for another topic."""
    if not topic.startswith(BASIC_INGEST_PREFIX):
        return None
    rest = topic[len(BASIC_INGEST_PREFIX):]
    rule, _, inner = rest.partition("/")
    if not rule or not inner:
        return None
    return rule, inner


class RulesEngine(Component):
    """See the module docstring.

    :param republisher: hands a republished message to the broker (thread-safe).
    :param log_dir: where the cloudwatchLogs action writes.
    :param sleep: waits between delivery attempts (tests shorten it); returns early, and
        False, when the engine stops.
    """

    name = "rules"

    def __init__(self, service: RuleService, bus: EventBus, config: RulesConfig, *,
                 republisher: Republisher, log_dir: Path, clock: Clock | None = None,
                 delivery_threads: int = 4) -> None:
        self._service = service
        self._bus = bus
        self._config = config
        self._clock = clock or SystemClock()
        self._republisher = republisher
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, config.queue_size))
        self._pending = threading.BoundedSemaphore(max(1, config.queue_size))
        self._working = _WorkingSet()
        self._enabled_urls: frozenset[str] = frozenset()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._delivery_threads = delivery_threads
        self._dropped_logged = 0.0
        self._unsubscribe: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = EngineCounters()
        self.files = LogFiles(log_dir, max_bytes=config.log_max_bytes,
                              kept=config.log_files_kept)
        self.tables = SqlTables(config.sql_url, timeout=config.action_timeout)
        self.streams = NatsStreams(config.nats_url, timeout=config.action_timeout,
                                   loop=lambda: self._loop)
        self.objects = ObjectStores(config.s3_endpoint_url, region=config.s3_region,
                                    timeout=config.action_timeout)
        self.batches = HttpBatcher(self._send_batch)
        self.http = HttpDeliveries(lambda: self._enabled_urls, timeout=config.action_timeout,
                                   cafile=config.http_cafile or None)

    @property
    def service(self) -> RuleService:
        return self._service

    # -- the message path (event loop) ----------------------------------------------------

    def wants(self, topic: str) -> bool:
        """Whether any enabled rule takes messages on ``topic`` (cheap; cached)."""
        working = self._working
        if not working.rules:
            return False
        return bool(working.match(topic))

    def offer(self, message: IncomingMessage) -> bool:
        """Queue ``message`` for the rules; False (counted, logged) when the queue is full.
        Never blocks."""
        self.stats.offered += 1
        try:
            self._queue.put_nowait(message)
            return True
        except queue.Full:
            self._dropped("message queue full")
            return False

    def _dropped(self, why: str) -> None:
        self.stats.dropped += 1
        now = time.monotonic()
        if now - self._dropped_logged >= DROP_LOG_INTERVAL:
            self._dropped_logged = now
            log.warning("rules: %s; dropping (%d dropped so far); see [rules] queue_size",
                        why, self.stats.dropped)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._reload_rules)
        await asyncio.to_thread(self._reload_destinations)
        self._unsubscribe = [
            self._bus.subscribe(TopicRuleChanged, self._on_rule_changed),
            self._bus.subscribe(TopicRuleDestinationChanged, self._on_destination_changed),
        ]
        self._pool = ThreadPoolExecutor(self._delivery_threads,
                                        thread_name_prefix="rules-action")
        self._thread = threading.Thread(target=self._evaluate_forever, name="rules-evaluate",
                                        daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        for batch in self.batches.close():  # sent before the pool stops, not lost
            self._send_batch(batch)
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                pass
            await asyncio.to_thread(thread.join, 5.0)
        pool = self._pool
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)
        await asyncio.to_thread(self.tables.close)
        self.files.close()
        await self.streams.aclose()

    # -- the working set ------------------------------------------------------------------

    def _on_rule_changed(self, event: TopicRuleChanged) -> None:
        asyncio.get_running_loop().run_in_executor(None, self._reload_rules)

    def _on_destination_changed(self, event: TopicRuleDestinationChanged) -> None:
        asyncio.get_running_loop().run_in_executor(None, self._reload_destinations)

    def _reload_rules(self) -> None:
        try:
            compiled = self._service.compiled_rules()
        except Exception as error:  # noqa: BLE001 - keep the rules we have
            log.error("rules: cannot reload the rules, keeping the current ones: %s", error)
            return
        working = _WorkingSet({rule.name: rule for rule in compiled if not rule.disabled})
        self._working = working
        log.info("rules: %d enabled rule(s)", len(working.rules))

    def _reload_destinations(self) -> None:
        try:
            self._enabled_urls = frozenset(self._service.enabled_destination_urls())
        except Exception as error:  # noqa: BLE001 - keep the list we have
            log.error("rules: cannot reload the destinations: %s", error)

    def reload(self) -> None:
        """Read the rules and destinations again now (blocking; tests and the CLI)."""
        self._reload_rules()
        self._reload_destinations()

    def enabled_rules(self) -> frozenset[str]:
        """The names of the rules running now (after the last reload)."""
        return frozenset(self._working.rules)

    def enabled_destinations(self) -> frozenset[str]:
        """The confirmation URLs the http action may deliver under now."""
        return self._enabled_urls

    def counters(self, rule_name: str) -> RuleCounters:
        return self.stats.rules.setdefault(rule_name, RuleCounters())

    # -- evaluation (its own thread) ------------------------------------------------------

    def _evaluate_forever(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or self._stopping.is_set():
                return
            try:
                self._evaluate(item)
                self.stats.evaluated += 1
            except Exception:
                self.stats.evaluation_errors += 1
                log.exception("rules: evaluating a message on %r failed", item.topic)

    def _evaluate(self, message: IncomingMessage) -> None:
        topic = message.topic
        rules = self._working.match(topic)
        target = basic_ingest_target(topic)
        if target is not None:
            topic = target[1]
        contexts: dict[bool, MessageContext] = {}  # the payload is read once per version
        for rule in rules:
            if rule.name == message.republished_by:
                continue
            ctx = contexts.get(rule.whole_decimals_are_ints)
            if ctx is None:
                ctx = contexts[rule.whole_decimals_are_ints] = MessageContext(
                    topic, message.payload, message.client_id, message.principal,
                    message.timestamp_ms, rule.whole_decimals_are_ints, message.properties)
            output = rule.compiled.evaluate(ctx)
            if output is None:
                continue
            self.counters(rule.name).matched += 1
            for index, spec in enumerate(rule.actions):
                if isinstance(spec, HttpSpec) and spec.batch is not None \
                        and self.batches.add(rule, index, spec, output, ctx, message):
                    continue
                self._submit(rule, spec, output, ctx, message)

    def _submit(self, rule: CompiledRule, spec: ActionSpec, output: RuleOutput,
                ctx: MessageContext, message: IncomingMessage) -> None:
        """Deliver a local action (republish, log file) here, at once; hand the others, and
        a local one that failed (its retries wait), to the action threads."""
        if isinstance(spec, _LOCAL_ACTIONS):
            try:
                self._run(spec, output, ctx, rule.name)
            except ActionFailed as error:
                failure = str(error)
                tried = self._config.attempts if not error.retry else 1
            except Exception as error:
                log.exception("rules: %s of rule %s raised", spec.name, rule.name)
                failure, tried = f"{type(error).__name__}: {error}", self._config.attempts
            else:
                self.counters(rule.name).actions_succeeded += 1
                return
            self._to_pool(self._deliver_with_retries, rule, spec, output, ctx, message,
                          tried, failure)
            return
        self._to_pool(self._deliver_with_retries, rule, spec, output, ctx, message)

    def _to_pool(self, work: Callable[..., None], *args: Any) -> None:
        """Hand ``work`` to the action threads, unless stopping or too much waits already
        (then it is dropped and counted); ``work`` releases its pending slot when done."""
        pool = self._pool
        if pool is None or self._stopping.is_set():
            return
        if not self._pending.acquire(blocking=False):
            self._dropped("too many actions waiting")
            return
        try:
            pool.submit(work, *args)
        except RuntimeError:  # the pool is shutting down
            self._pending.release()

    # -- delivery (the pool's threads) -------------------------------------------------------

    def _run(self, spec: ActionSpec, output: RuleOutput, ctx: MessageContext,
             rule_name: str) -> None:
        if isinstance(spec, RepublishSpec):
            republish(spec, output, ctx, rule_name, self._republisher)
        elif isinstance(spec, LogFileSpec):
            self.files.deliver(spec, output, ctx, rule_name)
        elif isinstance(spec, SqlTableSpec):
            self.tables.deliver(spec, output, ctx, rule_name)
        elif isinstance(spec, SqlKeyedSpec):
            self.tables.deliver_keyed(spec, output, ctx, rule_name)
        elif isinstance(spec, HttpSpec):
            self.http.deliver(spec, output, ctx, rule_name)
        elif isinstance(spec, StreamSpec):
            self.streams.deliver(spec, output, ctx, rule_name)
        elif isinstance(spec, ObjectSpec):
            self.objects.deliver(spec, output, ctx, rule_name)
        else:  # pragma: no cover - parse_action builds only these
            raise ActionFailed(f"unknown action {spec!r}", retry=False)

    def _attempts(self, run: Callable[[], None], what: str, rule_name: str, *,
                  tried: int = 0, failure: str = "not attempted") -> str | None:
        """Run a delivery with retries; None on success, else the last failure. ``tried``
        attempts were made already (the last one failed with ``failure``)."""
        config = self._config
        wait = config.backoff_seconds
        attempts = max(1, config.attempts)
        if tried:
            if tried >= attempts or self._stopping.wait(wait):
                return failure
            wait = min(wait * 2, config.max_backoff_seconds)
        for attempt in range(tried + 1, attempts + 1):
            try:
                run()
                return None
            except ActionFailed as error:
                failure = str(error)
                if not error.retry or attempt >= attempts:
                    break
            except Exception as error:
                log.exception("rules: %s of rule %s raised", what, rule_name)
                failure = f"{type(error).__name__}: {error}"
                break
            if self._stopping.wait(wait):
                break
            wait = min(wait * 2, config.max_backoff_seconds)
        return failure

    def _deliver_with_retries(self, rule: CompiledRule, spec: ActionSpec,
                              output: RuleOutput, ctx: MessageContext,
                              message: IncomingMessage, tried: int = 0,
                              failure: str = "not attempted") -> None:
        try:
            outcome = self._attempts(lambda: self._run(spec, output, ctx, rule.name),
                                     spec.name, rule.name, tried=tried, failure=failure)
            self._settle(rule, spec, [(ctx, message)], outcome)
        finally:
            self._pending.release()

    def _send_batch(self, batch: Batch) -> None:
        self._to_pool(self._deliver_batch, batch)

    def _deliver_batch(self, batch: Batch) -> None:
        try:
            body = batch.body()
            failure = self._attempts(
                lambda: self.http.post(batch.spec, batch.url, batch.headers, body),
                batch.spec.name, batch.rule.name)
            self._settle(batch.rule, batch.spec,
                         [(ctx, message) for _, ctx, message in batch.entries], failure)
        finally:
            self._pending.release()

    def _settle(self, rule: CompiledRule, spec: ActionSpec,
                deliveries: list[tuple[MessageContext, IncomingMessage]],
                failure: str | None) -> None:
        """Count a delivery (of one result or a batch); on failure run the error action
        for each message it carried."""
        counters = self.counters(rule.name)
        if failure is None:
            counters.actions_succeeded += len(deliveries)
            return
        counters.actions_failed += len(deliveries)
        resource = describe_resource(spec)
        log.warning("rules: rule %s: %s to %s failed: %s", rule.name, spec.name,
                    resource, failure)
        now = self._clock.time()
        for ctx, message in deliveries:
            self._bus.publish(RuleActionFailed(rule.name, spec.name, resource, ctx.topic,
                                               message.client_id, message.principal,
                                               failure, now))
        error_action = rule.error_action
        if error_action is None:
            return
        for ctx, message in deliveries:
            error_output = RuleOutput({
                "ruleName": rule.name,
                "topic": ctx.topic,
                "cloudwatchTraceId": str(uuid.uuid4()),
                "clientId": message.client_id or "n/a",
                "base64OriginalPayload": base64.b64encode(message.payload).decode("ascii"),
                "failures": [{"failedAction": spec.name,
                              "failedResource": describe_resource(spec),
                              "errorMessage": failure}],
            })
            error_failure = self._attempts(
                functools.partial(self._run, error_action, error_output, ctx, rule.name),
                error_action.name, rule.name)
            if error_failure is None:
                counters.error_actions_succeeded += 1
            else:
                counters.error_actions_failed += 1
                log.error("rules: rule %s: the error action %s failed too: %s", rule.name,
                          error_action.name, error_failure)

