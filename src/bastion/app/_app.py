"""The running Bastion: the composition root.

Theory of operation
-------------------
:class:`App` only wires. :meth:`App.start` opens the store, builds every service once
(:func:`bastion.services.build_services`), plugs the registry into the broker (the
:class:`~bastion.enforcement.RegistryGate` authenticates and authorizes; the
:class:`~bastion.enforcement.SecurityEventBridge` applies security events from the bus to
live sessions), hands the services to the front doors (the reserved-topic handlers, the
REST API) and runs the long-lived components under one :class:`~bastion.lifecycle.Lifecycle`,
in this order:

    store · trail digests · sessions · cluster · connection journal · fleet index ·
    alert dispatcher · jobs scheduler · audit scheduler · rotation keeper · threat watch ·
    detect loop · fleet detect (cluster) · provisioning hooks · rules · IoT logs ·
    device trust · domain routing (SNI) · MQTT listeners · credentials provider · REST API
    (with the web console on its port)

:meth:`App.stop` stops them in reverse: the API first, then the listeners (every client
is disconnected, so the journal still records the disconnects), the schedulers, and the
store last.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from ..api import ApiServer, CallCounts, CredentialSource, PresignedUrlAuthenticator, TrailSink
from ..broker import (
    Broker,
    ClientConnected,
    ClientDisconnected,
    DurableSessionDirectory,
    Message,
    Session,
)
from ..clock import Clock, SystemClock
from ..cluster import ClusterNode, FleetDetect
from ..config import Config
from ..console import BrokerFleet, ConsoleApplication
from ..controlplane import ControlPlane, database_url
from ..credentials import CredentialsProvider, CredentialsServer
from ..datadir import DataDir
from ..defender.audit import AuditScheduler
from ..enforcement import ConnectionJournal, RegistryGate, SecurityEventBridge
from ..events import InProcessBus
from ..index import IndexKeeper
from ..iotlogs import IoTLogs
from ..jobs import JobScheduler
from ..lifecycle import Component, ComponentFailed, Lifecycle
from ..metrics import FleetCollector, MetricsEndpoint, MetricSources
from ..pki import DEFAULT_ALPN_PROTOCOLS
from ..reserved import (
    FirstConnectionRegistration,
    JobsTopics,
    ProvisioningTopics,
    ShadowTopics,
    StreamsTopics,
)
from ..reserved.defender import DefenderMetricsTopics, DetectLoop
from ..reserved.rules import BasicIngestTopics, BrokerRepublisher, RulesTap
from ..rotation import RotationKeeper
from ..rules import RulesProcess
from ..services import Services, build_services
from ..store import Store
from ..threats import ThreatService, ThreatWatch
from ..trail import TrailDigestKeeper
from ._domains import DomainRouting
from ._listeners import Listeners
from ._model import BoundListener
from ._sessions import DurableSessions
from ._trust import DeviceTrust

log = logging.getLogger("bastion")
C = TypeVar("C", bound=Component)

DEFAULT_MIN_REPORT_PERIOD = 300.0
"""AWS's shortest interval between two Device Defender metrics reports of one thing."""


class _Closing(Component):
    """Calls ``close`` when the lifecycle stops (the store, the provisioning hooks)."""

    def __init__(self, name: str, close: Callable[[], None]) -> None:
        self.name = name
        self._close = close

    async def stop(self) -> None:
        await asyncio.to_thread(self._close)


class App:
    """A running Bastion (see the module docstring).

    :param clock: the time the services judge by (tests move one by hand).
    :param alert_sleep: waits between alert delivery attempts (tests skip the waiting).
    :param credentials: the API's access keys (default: the store's); tests plug their own.
    :param trail: where the API records each call (default: the store's trail).
    """

    def __init__(self, config: Config, datadir: DataDir, *,
                 clock: Clock | None = None,
                 alert_sleep: Callable[[float], Awaitable[None]] | None = None,
                 credentials: CredentialSource | None = None,
                 trail: TrailSink | None = None) -> None:
        self.config = config
        self.datadir = datadir
        self.bus = InProcessBus()
        self.broker = Broker(limits=config.limits, bus=self.bus,
                             directory=DurableSessionDirectory if config.sessions.durable
                             else None)
        self._credentials = credentials
        self._trail = trail
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._alert_sleep = alert_sleep
        self._services: Services | None = None
        self._lifecycle: Lifecycle | None = None
        self._listeners: Listeners | None = None
        self._bridge: SecurityEventBridge | None = None
        self._handlers: list[ShadowTopics | JobsTopics] = []
        self.journal: ConnectionJournal | None = None
        self.detect: DetectLoop | None = None
        self.iot_logs: IoTLogs | None = None
        """AWS IoT logs (None: ``[iot_logs] enabled = false``)."""
        self.rules: RulesProcess | None = None
        self.threat_watch: ThreatWatch | None = None
        self.api: ApiServer | None = None
        self.console: ConsoleApplication | None = None
        """The web console, on the API's port (None: API or console disabled)."""
        self.credentials: CredentialsServer | None = None
        self.domains: DomainRouting | None = None
        """Server names by SNI on the MQTT listeners (domain configurations)."""
        self.metrics: MetricsEndpoint | None = None
        """Serves ``GET /metrics`` on the API's port (None: API or metrics disabled)."""
        self._store_ping: asyncio.Task[None] | None = None

    # -- what tests and the CLI look at -------------------------------------------------

    @property
    def services(self) -> Services:
        """Every domain service of this instance.

        :raises RuntimeError: not started.
        """
        if self._services is None:
            raise RuntimeError("the app is not started")
        return self._services

    @property
    def plane(self) -> ControlPlane:
        """The registry services; changes made through them reach live sessions at once."""
        return self.services.plane

    @property
    def listeners(self) -> list[BoundListener]:
        return [] if self._listeners is None else list(self._listeners.bound)

    @property
    def components(self) -> tuple[Component, ...]:
        """What runs, in start order."""
        return () if self._lifecycle is None else self._lifecycle.components

    def component(self, kind: type[C]) -> C:
        """The running component of type ``kind``.

        :raises LookupError: none runs.
        """
        for component in self.components:
            if isinstance(component, kind):
                return component
        raise LookupError(f"no {kind.__name__} runs")

    @property
    def api_port(self) -> int:
        """:raises RuntimeError: the API is not running."""
        if self.api is None:
            raise RuntimeError("the API is not running")
        return self.api.port

    def port(self, name: str = "mqtts") -> int:
        for listener in self.listeners:
            if listener.name == name:
                return listener.port
        raise KeyError(name)

    async def readiness(self) -> dict[str, str]:
        """What ``/_bastion/health/ready`` reports: whether this node can take a new device
        now. Each check is "ok" or why not: the database answers (within 2 s), the
        listeners are up, and in a cluster the node reaches NATS and holds its lease."""
        checks: dict[str, str] = {}
        store = self.services.plane.store
        if self._store_ping is None or self._store_ping.done():
            self._store_ping = asyncio.get_running_loop().create_task(
                asyncio.to_thread(store.ping))
        try:
            await asyncio.wait_for(asyncio.shield(self._store_ping), 2.0)
            checks["database"] = "ok"
        except TimeoutError:
            checks["database"] = "no answer within 2 s"
        except Exception as exc:  # noqa: BLE001 - the reason is the answer
            checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["mqtt"] = "ok" if self.listeners else "not listening"
        for component in self.components:
            if isinstance(component, ClusterNode):
                checks["cluster"] = ("NATS unreachable" if not component.connected else
                                     "lease not renewed; devices sent elsewhere"
                                     if component.fenced else "ok")
        return checks

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Build everything and start every component.

        :raises OSError: a port is in use.
        :raises bastion.store.StoreError: the database cannot be opened or migrated.
        """
        loop = asyncio.get_running_loop()
        self.bus.bind(loop)
        store = await asyncio.to_thread(Store.open, database_url(self.config, self.datadir))
        try:
            services = await asyncio.to_thread(
                build_services, self.config, self.datadir, store, self.bus,
                send=self._send, clock=self._clock, alert_sleep=self._alert_sleep)
        except BaseException:
            store.close()
            raise
        self._services = services
        self._lifecycle = Lifecycle(self._wire(services))
        await self._lifecycle.start()

    async def stop(self) -> None:
        if self._lifecycle is not None:
            await self._lifecycle.stop()
        for handler in self._handlers:
            handler.close()
        self._handlers.clear()
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None

    async def wait(self) -> ComponentFailed | None:
        """Until the components stop; the failure that stopped them, if one did."""
        if self._lifecycle is None:
            raise RuntimeError("the app is not started")
        return await self._lifecycle.wait()

    # -- wiring -------------------------------------------------------------------------

    def _wire(self, services: Services) -> list[Component]:
        """Plug the services into the front doors; the components to run, in order."""
        config, broker, bus = self.config, self.broker, self.bus
        plane = services.plane
        gate = RegistryGate(plane.identity, plane.account)
        broker.authenticator = gate
        broker.authorizer = gate
        self._bridge = SecurityEventBridge(broker, gate, bus)
        shadow = ShadowTopics(broker, services.shadow, bus, clock=self._clock)
        jobs = JobsTopics(broker, services.jobs, bus, clock=self._clock)
        self._handlers = [shadow, jobs]
        broker.reserved_handlers.extend(
            [shadow, jobs, ProvisioningTopics(broker, services.provisioning,
                                              rotation=services.rotation.service),
             StreamsTopics(services.streams)])
        gate.first_sight = FirstConnectionRegistration(broker, services.provisioning)
        # In a cluster each node closes at start only the rows it left open: its node id.
        self.journal = ConnectionJournal(
            plane.store, bus, node=config.cluster.node if config.cluster.nats_url else None)
        components: list[Component] = [_Closing("store", plane.store.close)]
        if services.digests is not None:
            # Stops after everything that writes to the trail: its last digest has it all.
            components.append(TrailDigestKeeper(services.digests))
        sessions = None
        if config.sessions.durable:
            sessions = DurableSessions(broker, plane.store, config.sessions)
            components.append(sessions)
        if config.cluster.nats_url:
            bridge = self._bridge
            components.append(ClusterNode(broker, config.cluster,
                                          sessions.records if sessions else None, bus,
                                          resync=lambda: self._resync(bridge)))
        components += [
            self.journal,
            self._index_keeper(services),
            services.alerts,
            JobScheduler(services.jobs, bus),
        ]
        if services.audit is not None:
            components.append(AuditScheduler(services.audit.audit, self._clock))
        if config.rotation.enabled:
            components.append(self._rotation_keeper(services))
        if services.threats is not None:
            components.append(self._threat_watch(services.threats, services))
        if services.detect is not None:
            detect = services.detect
            self.detect = DetectLoop(broker, detect.service, bus,
                                     interval=config.detect.interval, clock=self._clock)
            reports = DefenderMetricsTopics(
                broker, detect.service, clock=self._clock,
                min_period=min(DEFAULT_MIN_REPORT_PERIOD, config.detect.interval))
            broker.reserved_handlers.append(reports)
            components.append(self.detect)
            if config.cluster.nats_url:  # one evaluator for the fleet
                components.append(FleetDetect(self.detect, reports, config.cluster,
                                              interval=config.detect.interval,
                                              clock=self._clock))
        components.append(_Closing("provisioning-hooks", services.provisioning.close))
        if config.rules.enabled:
            self.rules = self._rules_engine(services)
            components.append(self.rules)
        if config.iot_logs.enabled:
            self.iot_logs = IoTLogs(
                broker, bus, services.logging_options, plane.registry, plane.account,
                config.iot_logs, Path(config.iot_logs.file) if config.iot_logs.file
                else self.datadir.log_dir / "aws-iot.jsonl", clock=self._clock)
            components.append(self.iot_logs)
            if services.threats is not None:  # refused connects feed threat detection
                self.iot_logs.on_error(services.threats.device_error)
        trust = DeviceTrust(self.datadir, plane, bus, broker.spawn)
        presigned = PresignedUrlAuthenticator(
            plane.account.region, self._credentials or services.access,
            services.temporary_credentials, self._clock)
        self.domains = DomainRouting(services.domains, trust, bus, broker.spawn,
                                     alpn_protocols=DEFAULT_ALPN_PROTOCOLS,
                                     session_tickets=config.mqtt.tls_session_tickets,
                                     drop=self._drop_by_tls)
        self._listeners = Listeners(broker, config.mqtt, trust, presigned, self.domains)
        components += [trust, self.domains, self._listeners]
        if config.credentials.enabled:
            provider = CredentialsProvider(gate, plane.role_aliases,
                                           services.temporary_credentials)
            self.credentials = CredentialsServer(
                host=config.credentials.host, port=config.credentials.port,
                context=lambda: trust.server_context(alpn_protocols=None),
                provider=provider, trail=self._trail or services.trail,
                request_timeout=config.credentials.request_timeout)
            components.append(self.credentials)
        if config.api.enabled:
            calls: CallCounts = Counter()
            if config.metrics.enabled:
                self.metrics = self._metrics_endpoint(services, calls)
            credentials = self._credentials or services.access
            trail = self._trail or services.trail
            if config.console.enabled:
                self.console = ConsoleApplication(
                    config.console, services=services, live=BrokerFleet(broker),
                    credentials=credentials, trail=trail, clock=self._clock,
                    body_timeout=config.api.body_timeout)
            self.api = ApiServer(config.api, services=services, broker=broker,
                                 credentials=credentials, trail=trail,
                                 readiness=self.readiness, metrics=self.metrics, calls=calls,
                                 console=self.console)
            components.append(self.api)
        return components

    def _drop_by_tls(self, pick: Callable[[object], bool], reason: str) -> int:
        """Drop the sessions whose live connection's TLS object ``pick`` chooses (the
        domain routing's: a domain disabled or deleted)."""
        def chosen(session: Session) -> bool:
            # The broker's connections (MQTTConnection) keep their transport; a Link
            # without one (tests driving the broker in memory) has no TLS to pick by.
            transport = getattr(session.connection, "transport", None)
            tls = transport.get_extra_info("ssl_object") if transport is not None else None
            return tls is not None and pick(tls)
        return self.broker.drop_sessions(chosen, reason)

    def _index_keeper(self, services: Services) -> IndexKeeper:
        """The fleet index's keeper; the index is told of every connection and
        disconnection (services do not import the broker, so its events are forwarded)."""
        index = services.index
        self.bus.subscribe(ClientConnected, lambda event: index.connection_changed(
            event.client_id, True, event.timestamp))
        self.bus.subscribe(ClientDisconnected, lambda event: index.connection_changed(
            event.client_id, False, event.timestamp, event.reason.value))
        return IndexKeeper(index, self.bus)

    def _rotation_keeper(self, services: Services) -> RotationKeeper:
        """The rotation keeper, told of every connection (services do not import the
        broker, so its events are forwarded here)."""
        keeper = RotationKeeper(services.rotation.service, self.bus,
                                sweep=services.rotation.sweep)
        self.bus.subscribe(ClientConnected,
                           lambda event: keeper.certificate_connected(event.certificate_id))
        return keeper

    def _threat_watch(self, threats: ThreatService, services: Services) -> ThreatWatch:
        """Threat detection's component, told of every device connection (services do
        not import the broker, so its events are forwarded here)."""
        self.bus.subscribe(ClientConnected, lambda event: threats.device_connected(
            certificate_id=event.certificate_id, session_id=event.session_id,
            client_id=event.client_id, source_ip=event.source_ip))
        self.bus.subscribe(ClientDisconnected, lambda event: threats.device_disconnected(
            certificate_id=event.certificate_id, session_id=event.session_id))
        minutes = self.config.threats.verify_trail_minutes

        def verify_trail() -> tuple[bool, str | None, int | None]:
            result = services.trail.verify()
            return result.ok, result.reason, result.first_broken_sequence

        self.threat_watch = ThreatWatch(
            threats, verify_trail=verify_trail if minutes > 0 else None,
            verify_interval=max(minutes, 1 / 60) * 60)
        return self.threat_watch

    def _metrics_endpoint(self, services: Services, calls: CallCounts) -> MetricsEndpoint:
        """``GET /metrics`` over this node's counters (its token is read when the API
        starts)."""
        config = self.config
        clustered = bool(config.cluster.nats_url)
        sources = MetricSources(
            self.broker, rules=self.rules,
            detect=services.detect.service if services.detect is not None else None,
            api_calls=calls, node=config.cluster.node if clustered else None,
            cluster=config.cluster.name if clustered else None,
            audit=services.audit.audit if services.audit is not None else None,
            store=services.plane.store)
        token_path = (Path(config.metrics.token_file) if config.metrics.token_file
                      else self.datadir.metrics_token_path)
        return MetricsEndpoint(token_path, FleetCollector(sources))

    def _rules_engine(self, services: Services) -> RulesProcess:
        """The rules engine, tapped into the broker (it starts before the listeners)."""
        config, broker = self.config, self.broker
        log_dir = (Path(config.rules.log_dir) if config.rules.log_dir
                   else self.datadir.path / "rules" / "logs")
        republisher = BrokerRepublisher(broker, asyncio.get_running_loop())
        settings = config.rules
        if not settings.nats_url and config.cluster.nats_url:
            settings = dataclasses.replace(settings, nats_url=config.cluster.nats_url)
        engine = RulesProcess(services.rules, self.bus, settings, clock=self._clock,
                              log_dir=log_dir, republisher=republisher)
        tap = RulesTap(engine)
        republisher.tap = tap
        broker.taps.append(tap)
        broker.reserved_handlers.append(BasicIngestTopics())
        if config.api.enabled:
            services.rules.enable_url = self._enable_url
        return engine

    def _resync(self, bridge: SecurityEventBridge) -> None:
        """NATS is back after this node was cut off from the cluster: catch up on the
        changes whose events it may have missed (live sessions against the registry, the
        rules and destinations, the served domains from the store)."""
        bridge.resync()
        if self.rules is not None:
            self.rules.resync()
        if self.domains is not None:
            self.broker.spawn(self.domains.reload())

    def _enable_url(self, token: str) -> str:
        """A destination confirmation's ``enableUrl`` (the API's ConfirmTopicRuleDestination
        path; callers confirm with SigV4, as the operation requires)."""
        base = self.api.url if self.api is not None else ""
        return f"{base}/confirmdestination/{token}"

    def _send(self, topic: str, payload: bytes, qos: int) -> None:
        """Publish a message from Bastion itself (alerts to MQTT targets)."""
        self.broker.publish(Message(topic, payload, qos, False))


def run(config: Config, datadir: DataDir, on_ready: Callable[[App], None]) -> int:
    """Serve until SIGINT/SIGTERM or a component fails, on uvloop when available.
    Returns the process exit status (non-zero when a component failed)."""
    import signal

    async def main() -> int:
        app = App(config, datadir)
        await app.start()
        on_ready(app)
        loop = asyncio.get_running_loop()
        requested = asyncio.Event()

        def on_signal() -> None:
            log.info("shutting down")
            requested.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        stopped = loop.create_task(app.wait())
        signalled = loop.create_task(requested.wait())
        await asyncio.wait((stopped, signalled), return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        await app.stop()
        failure = await stopped
        return 1 if failure is not None else 0

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(main())
    return uvloop.run(main())
