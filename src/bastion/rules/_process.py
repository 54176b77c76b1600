"""The rules engine in a process of its own, so that rules use a core the broker does not.

Theory of operation
-------------------
One Python process runs Python code on one core at a time. When the rules engine ran in
the broker's process, ten rules matching every message took the interpreter from the
broker's event loop for most of each second: the bench (``bench/run.py --only rules``)
measured the broker's throughput falling to 5-13 % of what it was without rules. So
:class:`RulesProcess`, the component a node runs, keeps only the cheap part on the
message path and runs the :class:`~._engine.RulesEngine` itself in a child process
(``python -c ...``, speaking pickled messages over a socket pair), started when the first
enabled rule appears (a node without rules runs none):

* **the message path** (the broker's loop): :meth:`RulesProcess.wants` is the cached
  topic lookup of the enabled rules' FROM filters (the node compiles the rules too, to
  know them); :meth:`RulesProcess.take` appends the message, as a plain tuple, to a
  list, and hands the list to a sender thread once per loop turn. The sender pickles each
  list and writes it to the socket. **Credit**: at most ``queue_size`` messages may be
  in flight, sent and not yet evaluated by the child according to its last report; past
  that, messages are dropped here, for the rules (not for subscribers), counted, before
  anything is spent on them. (Without the credit, a child behind its load spent most of
  its core reading messages only to drop them at its own queue.)
* **the child** runs the engine on the messages it reads (evaluation and actions, as in
  :mod:`._engine`), with the rules and enabled destination URLs the node ships to it
  (read from the store by the node, on start and on every
  :class:`~._service.TopicRuleChanged` / :class:`~._service.TopicRuleDestinationChanged`):
  it never opens the store itself. It sends back the republish actions' messages (the
  node publishes them on its loop), the names of the rules and destinations it runs
  after each reload, and its counters, ten times a second and when it stops.
* **failure**: a child that dies is started again ``RESTART_DELAY`` seconds later and
  gets the rules again; messages it had not evaluated are lost for the rules, as a full
  queue loses them (logged). The child ignores SIGINT and SIGTERM (sent to the whole
  group by a terminal or a service manager: the node stops it) and exits when the node's
  end of the socket closes, so a node killed with ``kill -9`` leaves no child behind.

Counters (:attr:`RulesProcess.stats`, :meth:`RulesProcess.counters`) are the child's last
report, plus the messages the node itself dropped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bastion.clock import Clock, SystemClock
from bastion.config import RulesConfig
from bastion.events import EventBus, InProcessBus
from bastion.lifecycle import Component
from bastion.store import TopicRuleRow

from ._engine import (
    DROP_LOG_INTERVAL,
    EngineCounters,
    IncomingMessage,
    PropertyFields,
    RuleActionFailed,
    RuleCounters,
    RulesEngine,
    _WorkingSet,
    summary,
)
from ._service import (
    CompiledRule,
    RuleService,
    TopicRuleChanged,
    TopicRuleDestinationChanged,
    compile_rules,
)
from ._sinks import LogFiles, Republication, Republisher
from ._values import NO_MQTT_PROPERTIES, MqttProperties

log = logging.getLogger("bastion.rules")

STATS_INTERVAL = 0.1
"""Seconds between two counter reports of the child."""
STOP_TIMEOUT = 15.0
RESTART_DELAY = 1.0
NICENESS = 10
"""How much lower the child's scheduling priority is than the node's: when the machine's
cores are all busy, the devices' traffic goes first and the rules get what is left
(and drop what they cannot evaluate, counted)."""

_Row = tuple[str, bytes, str | None, str | None, int, str | None, str | None,
             PropertyFields | None]
"""An :class:`~._engine.IncomingMessage` as it crosses the pipe."""


def _message(row: _Row) -> IncomingMessage:
    props = NO_MQTT_PROPERTIES if row[7] is None else MqttProperties(*row[7])
    return IncomingMessage(row[0], row[1], row[2], row[3], row[4], row[5], row[6], props)


# -------------------------------------------------------------------------------- the node


class RulesProcess(Component):
    """The rules engine of a node, run in a child process (see the module docstring).

    On the message path: :meth:`wants` and :meth:`take`. For the rest of the node:
    ``counters``, ``stats``, ``enabled_rules``, ``enabled_destinations``, ``files``,
    ``service``, ``resync``.
    """

    name = "rules"

    def __init__(self, service: RuleService, bus: EventBus, config: RulesConfig, *,
                 republisher: Republisher, log_dir: Path, clock: Clock | None = None) -> None:
        self._service = service
        self._bus = bus
        self._config = config
        self._republisher = republisher
        self._log_dir = log_dir
        self._clock = clock or SystemClock()
        self._working = _WorkingSet()
        self._batch: list[_Row] = []
        self._accepted = 0
        """Messages queued for the child (counted on the loop only)."""
        self._settled = 0
        """Of those, the ones the child is done with (evaluated, or dropped there) by its
        last report, or lost with a child that died: ``_accepted - _settled`` are in
        flight, and at most ``queue_size`` may be (the child's credit)."""
        self._settled_base = 0
        """``_accepted`` when the current child started (its counters start at zero)."""
        self._limit = max(1, config.queue_size)
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._sender: threading.Thread | None = None
        self._shipping = threading.RLock()
        """Held while the rules are read and sent (or a child started): one at a time."""
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._unsubscribe: list[Callable[[], None]] = []
        self._dropped = 0
        self._dropped_logged = 0.0
        self._offered = 0
        self._child_stats = EngineCounters()
        self._enabled_rules: frozenset[str] = frozenset()
        self._enabled_urls: frozenset[str] = frozenset()
        self.files = LogFiles(log_dir, max_bytes=config.log_max_bytes,
                              kept=config.log_files_kept)
        """Where the child's cloudwatchLogs action writes (for :meth:`LogFiles.path_of`)."""

    @property
    def service(self) -> RuleService:
        """The rule service the node reads the rules from."""
        return self._service

    # -- the message path (event loop) ----------------------------------------------------

    def wants(self, topic: str) -> bool:
        """Whether a rule takes messages on ``topic`` and the child can take one more
        (when it cannot, the message is counted as offered and dropped here, before the
        broker spends anything more on it)."""
        working = self._working
        if not working.rules or not working.match(topic):
            return False
        if self._accepted - self._settled >= self._limit:
            self._offered += 1
            self._drop("the rules process is behind")
            return False
        return True

    def take(self, topic: str, payload: bytes, client_id: str | None, principal: str | None,
             republished_by: str | None, properties: PropertyFields | None) -> bool:
        """Queue a message the broker accepted now for the child; False (counted) when
        too many wait. Never blocks."""
        return self._queue((topic, payload, client_id, principal,
                            int(self._clock.time() * 1000), None, republished_by, properties))

    def _queue(self, row: _Row) -> bool:
        self._offered += 1
        if self._accepted - self._settled >= self._limit:
            self._drop("the rules process is behind")
            return False
        self._accepted += 1
        batch = self._batch
        batch.append(row)
        if len(batch) == 1:
            loop = self._loop
            if loop is not None:
                loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            self._outbox.put(("messages", batch))

    def _drop(self, why: str) -> None:
        self._dropped += 1
        if self._dropped & 1023 != 1:  # the clock is read for one drop in 1024
            return
        now = time.monotonic()
        if now - self._dropped_logged >= DROP_LOG_INTERVAL:
            self._dropped_logged = now
            log.warning("rules: %s; dropping (%d dropped so far); see [rules] queue_size",
                        why, self._dropped)

    # -- counters ----------------------------------------------------------------------------

    @property
    def stats(self) -> EngineCounters:
        child = self._child_stats
        return EngineCounters(offered=self._offered, evaluated=child.evaluated,
                              dropped=self._dropped + child.dropped,
                              evaluation_errors=child.evaluation_errors, rules=child.rules)

    def counters(self, rule_name: str) -> RuleCounters:
        return self._child_stats.rules.get(rule_name) or RuleCounters()

    def enabled_rules(self) -> frozenset[str]:
        """The rules the child runs now (after its last reload)."""
        return self._enabled_rules

    def enabled_destinations(self) -> frozenset[str]:
        return self._enabled_urls

    def summary(self) -> str:
        return summary(self.stats)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = [
            self._bus.subscribe(TopicRuleChanged, self._on_rule_changed),
            self._bus.subscribe(TopicRuleDestinationChanged, self._on_destination_changed),
        ]
        self._sender = threading.Thread(target=self._send_forever, name="rules-send",
                                        daemon=True)
        self._sender.start()
        await asyncio.to_thread(self._ship_rules)

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._flush()
        self._stopping.set()
        self._outbox.put(("stop", None))
        if self._child is not None:
            await asyncio.to_thread(self._stopped.wait, STOP_TIMEOUT)
        if self._sender is not None:
            await asyncio.to_thread(self._sender.join, 2.0)
        await asyncio.to_thread(self._end_child)
        if self._child is not None:
            log.info("rules: stopped: %s", self.summary())

    def _spawn(self) -> None:
        """Start a child (``python -c``, see :func:`child_main`) on one end of a socket pair,
        and send it its settings, the rules and the destinations."""
        ours, theirs = socket.socketpair()
        fd = theirs.fileno()
        child = subprocess.Popen(
            [sys.executable, "-c", "from bastion.rules._process import child_main; child_main()",
             str(fd)], pass_fds=(fd,), stdin=subprocess.DEVNULL)
        theirs.close()
        conn = Connection(ours.detach())
        conn.send_bytes(pickle.dumps((self._config, self._log_dir,
                                      logging.getLogger().getEffectiveLevel())))
        with self._lock:
            self._child, self._conn = child, conn
            # What the previous child held is lost; the new one's counters start at zero.
            self._settled = self._settled_base = self._accepted
        threading.Thread(target=self._receive_forever, args=(conn,), name="rules-receive",
                         daemon=True).start()

    def _end_child(self) -> None:
        child = self._child
        if child is None:
            return
        try:
            child.wait(2.0)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    # -- the working set ---------------------------------------------------------------------

    def _reload_rules(self) -> list[TopicRuleRow] | None:
        """Read the rules; keep their FROM filters here; return them for the child (None,
        logged, when the store cannot be read: the current ones stay)."""
        try:
            rows = self._service.stored_rules()
        except Exception as error:  # noqa: BLE001 - keep the rules we have
            log.error("rules: cannot reload the rules, keeping the current ones: %s", error)
            return None
        self._working = _WorkingSet({rule.name: rule for rule in compile_rules(rows)
                                     if not rule.disabled})
        return rows

    def resync(self) -> None:
        """Read the rules and destinations again (on the loop; a node back from a
        partition, whose change events may have been lost)."""
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, self._ship_rules)
        loop.run_in_executor(None, self._ship_destinations)

    def _on_rule_changed(self, event: TopicRuleChanged) -> None:
        asyncio.get_running_loop().run_in_executor(None, self._ship_rules)

    def _on_destination_changed(self, event: TopicRuleDestinationChanged) -> None:
        asyncio.get_running_loop().run_in_executor(None, self._ship_destinations)

    def _ship_rules(self) -> None:
        """Send the rules to the child, starting it with the first enabled rule (a node
        without rules runs no child)."""
        with self._shipping:
            rows = self._reload_rules()
            if rows is None:
                return
            if self._child is None:
                if not self._working.rules or self._stopping.is_set():
                    return
                self._spawn()
                self._outbox.put(("rules", rows))
                self._ship_destinations()
                return
            self._outbox.put(("rules", rows))

    def _ship_destinations(self) -> None:
        with self._shipping:
            if self._child is None:
                return
            try:
                self._outbox.put(("destinations", self._service.enabled_destination_urls()))
            except Exception as error:  # noqa: BLE001 - keep the list the child has
                log.error("rules: cannot reload the destinations: %s", error)

    # -- the threads ---------------------------------------------------------------------------

    def _send_forever(self) -> None:
        while True:
            kind, body = self._outbox.get()
            with self._lock:
                conn = self._conn
            try:
                if conn is not None:
                    conn.send_bytes(pickle.dumps((kind, body), protocol=pickle.HIGHEST_PROTOCOL))
            except (OSError, ValueError):
                if kind == "messages":
                    log.warning("rules: the rules process is gone; %d message(s) lost for "
                                "the rules", len(body))
            if kind == "stop":
                return

    def _receive_forever(self, conn: Connection) -> None:
        while True:
            kind: str
            body: Any
            try:
                kind, body = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                break
            if kind == "republish":
                try:
                    self._republisher(body)
                except RuntimeError:
                    pass  # the node is stopping
            elif kind == "failed":
                self._bus.publish(body)  # a RuleActionFailed, for the node's consumers
            elif kind == "stats":
                self._child_stats = body
                self._settled = self._settled_base + (body.evaluated + body.dropped
                                                      + body.evaluation_errors)
            elif kind == "rules":
                self._enabled_rules = frozenset(body)
            elif kind == "destinations":
                self._enabled_urls = frozenset(body)
            elif kind == "stopped":
                self._child_stats = body
                break
        conn.close()
        if self._stopping.is_set():
            self._stopped.set()
            return
        child = self._child
        code = child.wait() if child is not None else None
        log.error("rules: the rules process exited (status %s); starting it again in %g s",
                  code, RESTART_DELAY)
        if self._stopping.wait(RESTART_DELAY):
            self._stopped.set()
            return
        with self._shipping:
            with self._lock:
                self._child = self._conn = None
            self._enabled_rules = frozenset()
        self._ship_rules()


# ------------------------------------------------------------------------------- the child


class _ShippedRules:
    """The rules and destinations the node last sent (what the child's engine reads)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.urls: list[str] = []

    def compiled_rules(self) -> list[CompiledRule]:
        return compile_rules(self.rows)

    def enabled_destination_urls(self) -> list[str]:
        return list(self.urls)


def child_main() -> None:
    """The rules process: reads its settings, then the node's messages, from the socket
    whose descriptor is its first argument (see :meth:`RulesProcess._spawn`)."""
    conn = Connection(int(sys.argv[1]))
    config, log_dir, level = pickle.loads(conn.recv_bytes())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Ctrl-C, or a service manager's SIGTERM to the whole group, reaches the node too,
    # which then stops this process after the rules it has taken.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(NICENESS)
    asyncio.run(_child(conn, config, log_dir))


async def _child(conn: Connection, config: RulesConfig, log_dir: Path) -> None:
    lock = threading.Lock()

    def send(kind: str, body: Any) -> None:
        data = pickle.dumps((kind, body), protocol=pickle.HIGHEST_PROTOCOL)
        with lock:
            conn.send_bytes(data)

    def republish(item: Republication) -> None:
        try:
            send("republish", item)
        except (OSError, ValueError):
            raise RuntimeError("the node is gone") from None

    def failed(event: RuleActionFailed) -> None:
        try:
            send("failed", event)
        except (OSError, ValueError):
            pass  # the node is gone

    source = _ShippedRules()
    bus = InProcessBus()  # never bound to a loop: delivers in the publisher's thread
    bus.subscribe(RuleActionFailed, failed)
    engine = RulesEngine(source, bus, config,  # type: ignore[arg-type]
                         republisher=republish, log_dir=log_dir)
    await engine.start()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def read_forever() -> None:
        offer = engine.offer
        while True:
            try:
                kind, body = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                break  # the node is gone
            if kind == "messages":
                for row in body:
                    offer(_message(row))
            elif kind == "rules":
                source.rows = body
                engine.reload()
                send("rules", sorted(engine.enabled_rules()))
            elif kind == "destinations":
                source.urls = body
                engine.reload()
                send("destinations", sorted(engine.enabled_destinations()))
            elif kind == "stop":
                break
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=read_forever, name="rules-read", daemon=True).start()
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), STATS_INTERVAL)
        except TimeoutError:
            pass
        try:
            send("stats", _snapshot(engine.stats))
        except (OSError, ValueError):
            break  # the node is gone
    await engine.stop()
    try:
        send("stopped", _snapshot(engine.stats))
    except (OSError, ValueError):
        pass


def _snapshot(stats: EngineCounters) -> EngineCounters:
    return dataclasses.replace(stats, rules={name: dataclasses.replace(counters)
                                             for name, counters in stats.rules.items()})
