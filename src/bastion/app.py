"""Composition root: builds the broker and its listeners from a config and a data directory.

Nothing else wires services together. ``bastion serve`` calls :func:`run`; tests use
:class:`App` directly inside their own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from ._defender_root import DefenderRuntime  # [defender audit]
from ._detect_root import DetectRuntime  # [detect]
from .access import AccessKeyService
from .api import ApiServer, CredentialSource, TrailSink
from .broker import Broker, ListenerConfig, bound_port, start_listener
from .clock import Clock
from .config import Config
from .controlplane import ControlPlane, open_control_plane
from .datadir import DataDir, server_ssl_context_for
from .enforcement import ConnectionJournal, RegistryGate, SecurityEventBridge
from .files import FileService  # [files]
from .provisioning import HttpHookClient, ProvisioningService
from .registry import (
    CaCertificateRegistered,
    CaCertificateStatus,
    CaCertificateStatusChanged,
)
from .reserved import FirstConnectionRegistration, JobsTopics, ProvisioningTopics, ShadowTopics
from .trail import Trail

log = logging.getLogger("bastion")


@dataclass(frozen=True, slots=True)
class BoundListener:
    name: str
    host: str
    port: int
    tls: bool


class App:
    """A running Bastion: the broker plus its listeners."""

    def __init__(self, config: Config, datadir: DataDir) -> None:
        self.config = config
        self.datadir = datadir
        self.broker = Broker(limits=config.limits)
        self.listeners: list[BoundListener] = []
        self._servers: list[asyncio.Server] = []
        self._tls: ssl.SSLContext | None = None
        self._plane: ControlPlane | None = None
        self._bridge: SecurityEventBridge | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.journal: ConnectionJournal | None = None
        self._jobs: JobsTopics | None = None  # [jobs]
        # [files] uploaded files and presigned URLs; tests may set the clock before start()
        self.files: FileService | None = None
        self.files_clock: Clock | None = None
        self.provisioning: ProvisioningService | None = None  # [provisioning]
        # -- [defender audit] audit, mitigation, alerts; tests may set the clock and the
        # wait between alert attempts before start() --
        self.defender: DefenderRuntime | None = None
        self.audit_clock: Clock | None = None
        self.alert_sleep: Callable[[float], Awaitable[None]] | None = None
        # -- end [defender audit] --
        # -- [detect] Device Defender detect; tests may set the clock --
        self.detect: DetectRuntime | None = None
        self.detect_clock: Clock | None = None
        # -- end [detect] --
        # -- [api] the REST API (bastion.api); set the two plug points before start() --
        self.api: ApiServer | None = None
        self.api_credentials: CredentialSource | None = None
        self.api_trail: TrailSink | None = None
        # -- end [api] --

    @property
    def plane(self) -> ControlPlane:
        """The control-plane services (registry, identity, policies) of this instance.
        Changes made through them reach live sessions at once."""
        if self._plane is None:
            raise RuntimeError("the app is not started")
        return self._plane

    def _registry_event(self, event: object) -> None:
        """The registry's event sink (any thread): live sessions, then the TLS trust."""
        if self._bridge is not None:
            self._bridge.publish(event)
        if self._jobs is not None:  # [jobs] continuous jobs follow group membership
            self._jobs.registry_event(event)
        if self.detect is not None:  # [detect] profile targets follow group membership
            self.detect.registry_event(event)
        if self._loop is not None and isinstance(
                event, (CaCertificateRegistered, CaCertificateStatusChanged)):
            self._loop.call_soon_threadsafe(self._trust_changed, event)

    def _trust_changed(self, event: CaCertificateRegistered | CaCertificateStatusChanged
                       ) -> None:
        status = event.status if isinstance(event, CaCertificateRegistered) else event.new
        # Before start() finishes, every ACTIVE CA is collected by _active_ca_pems anyway.
        if status is CaCertificateStatus.ACTIVE and self._tls is not None:
            self.broker.spawn(self._trust_ca(event.ca_certificate_id))

    async def _trust_ca(self, ca_certificate_id: str) -> None:
        """Add a newly ACTIVE CA to the live TLS context (new handshakes see it at once).
        A CA that later leaves ACTIVE stays in the TLS store, but its devices are refused
        at CONNECT and dropped live: the registry is the authority, TLS only a first gate."""
        record = await asyncio.to_thread(self.plane.identity.describe_ca_certificate,
                                         ca_certificate_id)
        if self._tls is not None and record.status is CaCertificateStatus.ACTIVE:
            self._tls.load_verify_locations(cadata=record.certificate_pem)
            log.info("now trusting CA %s for device certificates", ca_certificate_id)

    async def _active_ca_pems(self) -> list[str]:
        def collect() -> list[str]:
            pems: list[str] = []
            token: str | None = None
            while True:
                page, token = self.plane.identity.list_ca_certificates(next_token=token)
                pems.extend(r.certificate_pem for r in page
                            if r.status is CaCertificateStatus.ACTIVE)
                if not token:
                    return pems
        return await asyncio.to_thread(collect)

    async def start(self) -> None:
        """Open the control plane, plug it into the broker, bind every listener.

        :raises OSError: a port is in use.
        """
        mqtt = self.config.mqtt
        self._loop = asyncio.get_running_loop()
        self._plane = await asyncio.to_thread(open_control_plane, self.config, self.datadir,
                                              self._registry_event)
        gate = RegistryGate(self._plane.identity, self._plane.account)
        self.broker.authenticator = gate
        self.broker.authorizer = gate
        self._bridge = SecurityEventBridge(self.broker, gate, self._loop)
        # reserved topics
        self.broker.reserved_handlers.append(ShadowTopics(self.broker, self._plane.store))
        self.files = await asyncio.to_thread(self._open_files)  # [files]
        self._jobs = JobsTopics(self.broker, self._plane.store, self._plane.registry,
                                documents=self.files)
        self.broker.reserved_handlers.append(self._jobs)
        # [provisioning] fleet provisioning topics; JITP/JITR on a first connection
        provisioning = self.config.provisioning
        self.provisioning = ProvisioningService(
            self._plane.store, registry=self._plane.registry, identity=self._plane.identity,
            policies=self._plane.policies, account=self._plane.account,
            hook_client=HttpHookClient(cafile=provisioning.hook_cafile or None),
            hook_timeout=provisioning.hook_timeout,
            claim_lifetime=timedelta(seconds=provisioning.claim_lifetime))
        self.broker.reserved_handlers.append(ProvisioningTopics(self.broker, self.provisioning))
        gate.first_sight = FirstConnectionRegistration(self.broker, self.provisioning)
        self.journal = ConnectionJournal(self._plane.store, self.broker.bus)
        await self.journal.start()
        # -- [defender audit] --
        self.defender = DefenderRuntime(self.config, self.datadir, self._plane, self.broker,
                                        clock=self.audit_clock, alert_sleep=self.alert_sleep,
                                        api=lambda: self.api)
        await self.defender.start()
        # -- end [defender audit] --
        # -- [detect] --
        if self.config.detect.enabled:
            defender = self.defender
            self.detect = DetectRuntime(
                self._plane, self.broker, interval=self.config.detect.interval,
                clock=self.detect_clock, alerts=lambda: defender.alerts,
                invalidate_after=self.config.detect.invalidate_after)
            await self.detect.start()
        # -- end [detect] --
        self._tls = server_ssl_context_for(self.datadir,
                                           extra_trusted_ca_pems=await self._active_ca_pems(),
                                           session_tickets=mqtt.tls_session_tickets)
        wanted = [ListenerConfig("mqtts", mqtt.host, mqtt.port, self._tls)]
        if mqtt.alpn_port:
            wanted.append(ListenerConfig("mqtts-alpn", mqtt.host, mqtt.alpn_port, self._tls))
        if mqtt.plaintext_port:
            log.warning("plaintext MQTT listener enabled on %s:%d (no client authentication)",
                        mqtt.plaintext_host, mqtt.plaintext_port)
            wanted.append(ListenerConfig("mqtt-plaintext", mqtt.plaintext_host,
                                         mqtt.plaintext_port, None))
        try:
            for listener in wanted:
                server = await start_listener(self.broker, listener)
                self._servers.append(server)
                self.listeners.append(BoundListener(listener.name, listener.host,
                                                    bound_port(server), listener.tls is not None))
            # -- [api] the REST API, in this loop --
            if self.config.api.enabled:
                # Access keys and the hash-chained trail live in the store; tests may plug
                # in their own before start().
                if self.api_credentials is None:
                    self.api_credentials = AccessKeyService(self._plane.store,
                                                            self.datadir.open_keystore())
                if self.api_trail is None:
                    self.api_trail = Trail(self._plane.store)
                self.api = ApiServer(self.config.api, plane=self._plane, broker=self.broker,
                                     datadir=self.datadir, credentials=self.api_credentials,
                                     trail=self.api_trail, publish=self._registry_event,
                                     files=self.files)
                await self.api.start()
                self.files.base_url = self.api.public_url  # [files] presigned URLs name it
            # -- end [api] --
        except BaseException:
            await self.stop()
            raise

    def _open_files(self) -> FileService:  # [files]
        """The file service, its URL-signing key loaded (created on the first start)."""
        files = FileService.from_datadir(self.plane.store, self.datadir,
                                         clock=self.files_clock)
        files.signer()
        return files

    @property
    def api_port(self) -> int:
        """The bound port of the REST API.

        :raises RuntimeError: the API is not running.
        """
        if self.api is None:
            raise RuntimeError("the API is not running")
        return self.api.port

    def port(self, name: str = "mqtts") -> int:
        for listener in self.listeners:
            if listener.name == name:
                return listener.port
        raise KeyError(name)

    async def stop(self) -> None:
        if self.api is not None:  # [api]
            await self.api.stop()
        for server in self._servers:
            server.close()
        await self.broker.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self.journal is not None:
            await self.journal.stop()
        if self.provisioning is not None:  # [provisioning]
            self.provisioning.close()
        if self.detect is not None:  # [detect]
            await self.detect.stop()
        if self.defender is not None:  # [defender audit]
            await self.defender.stop()
        if self._plane is not None:
            self._plane.close()


def run(config: Config, datadir: DataDir, on_ready: Callable[[App], None]) -> None:
    """Run until SIGINT/SIGTERM, on uvloop when available."""

    async def main() -> None:
        app = App(config, datadir)
        await app.start()
        on_ready(app)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            await app.stop()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(main())
    else:
        uvloop.run(main())
