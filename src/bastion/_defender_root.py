"""The composition of Device Defender audit and alert delivery inside a running Bastion
(part of the composition root, :mod:`bastion.app`).

Builds, on the app's control plane: the alert targets and their dispatcher (MQTT alerts
published on the app's broker), the CRL registry, the operator's compromised-key lists,
the audit and mitigation services (changes go through the plane's registry services, so
the broker drops sessions of a deactivated certificate at once), and the scheduler of
scheduled audits and CRL refreshes. The services are attached to the broker, where the
REST API's audit handlers find them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from .alerts import AlertDispatcher, AlertTargetService, ArnNotifier, RetryPolicy
from .broker import Broker, Message
from .clock import Clock, SystemClock
from .config import Config
from .controlplane import ControlPlane
from .datadir import DataDir
from .defender import DefenderServices, attach_services, detach_services
from .defender.audit import (
    AuditMitigationService,
    AuditScheduler,
    AuditService,
    CrlRegistry,
    RegistryEffects,
    StoredLoggingOptions,
    WeakKeyLists,
)
from .defender.mitigation import MitigationActionService

log = logging.getLogger("bastion")


class DefenderRuntime:
    """Audit, mitigation and alerts of one app.

    :param clock: the scheduler's clock (tests move it by hand).
    :param alert_sleep: waits between delivery attempts (tests skip the waiting).
    :param api: returns the running API server, if any (its logging options are reloaded
        when a mitigation enables logging).
    """

    def __init__(self, config: Config, datadir: DataDir, plane: ControlPlane, broker: Broker,
                 *, clock: Clock | None = None,
                 alert_sleep: Callable[[float], Awaitable[None]] | None = None,
                 api: Callable[[], object] = lambda: None) -> None:
        self._config = config
        self._datadir = datadir
        self._plane = plane
        self._broker = broker
        self.clock: Clock = clock or SystemClock()
        self._alert_sleep = alert_sleep
        self._api = api
        self.alert_targets: AlertTargetService | None = None
        self.alerts: AlertDispatcher | None = None
        self.audit: AuditService | None = None
        self.mitigation: AuditMitigationService | None = None
        self.actions: MitigationActionService | None = None
        self.scheduler: AuditScheduler | None = None

    def _publish_alert(self, topic: str, payload: bytes, qos: int) -> None:
        self._broker.publish(Message(topic, payload, qos, False))

    def _logging_changed(self) -> None:
        """Reload the API's logging options after the audit changed the stored ones."""
        api = self._api()
        if api is None:
            return
        options: Any = getattr(api, "logging_options", None)
        if options is None:  # until the API exposes them: its gateway holds them
            gateway = getattr(getattr(api, "application", None), "_gateway", None)
            options = getattr(gateway, "logging_options", None)
        if options is not None and callable(getattr(options, "load", None)):
            options.load()

    async def start(self) -> None:
        plane, config = self._plane, self._config
        store, account = plane.store, plane.account
        settings = config.alerts
        self.alert_targets = AlertTargetService(
            store, sealer=self._datadir.open_keystore(), account=account)
        self.alerts = AlertDispatcher(
            self.alert_targets, mqtt=self._publish_alert,
            policy=RetryPolicy(settings.attempts, timedelta(seconds=settings.backoff_seconds),
                               2.0, timedelta(seconds=settings.max_backoff_seconds)),
            sleep=self._alert_sleep)
        await self.alerts.start()
        if not config.audit.enabled:
            return
        notifier = ArnNotifier(self.alerts, "audit")
        now = self.clock
        crls = CrlRegistry(store, clock=now,
                           refresh_interval=timedelta(minutes=config.audit.crl_refresh_minutes))
        weak_dir = (Path(config.audit.weak_keys_dir) if config.audit.weak_keys_dir
                    else self._datadir.path / "audit" / "weak-keys")
        key_lists = WeakKeyLists.from_directory(weak_dir)
        if len(key_lists):
            log.info("audit: %d compromised keys loaded from %s", len(key_lists), weak_dir)
        logging_options = StoredLoggingOptions(store, fallback_level=config.log.level,
                                               changed=self._logging_changed)
        self.audit = AuditService(store, account=account, crls=crls, logging=logging_options,
                                  key_lists=key_lists, notifier=notifier, clock=now)
        self.actions = MitigationActionService(store, account=account, clock=now)
        effects = RegistryEffects(store, identity=plane.identity, registry=plane.registry,
                                  policies=plane.policies, logging=logging_options,
                                  notifier=notifier)
        self.mitigation = AuditMitigationService(store, account=account, actions=self.actions,
                                                 effects=effects,
                                                 executor=self.audit.executor, clock=now)
        attach_services(self._broker, DefenderServices(self.audit, self.mitigation,
                                                       self.actions))
        self.scheduler = AuditScheduler(self.audit, self.clock)
        await self.scheduler.start()

    async def stop(self) -> None:
        detach_services(self._broker)
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.audit is not None:  # waits for the check running now, in a thread
            await asyncio.to_thread(self.audit.close)
        if self.alerts is not None:
            await self.alerts.stop()
