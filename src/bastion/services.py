"""Every domain service of one Bastion, built in one place.

:func:`build_services` is the only code that constructs a service for a running Bastion.
The result, :class:`Services`, is one typed directory handed to every front door: the
broker's reserved-topic handlers, the REST API, and the console to come. A front door
never constructs a service and never finds one by walking another front door. The CLI's
offline commands use :func:`bastion.controlplane.open_control_plane`, the registry part
of the same wiring.

Services publish their state changes on the bus they are given (see
:mod:`bastion.events`); they never call a front door. What a service needs from the
message path (alerts to MQTT targets, Detect's metrics export) it gets as ``send``, a
thread-safe function that publishes one message from Bastion itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from .access import AccessKeyService, TemporaryCredentialService
from .account import Account
from .alerts import (
    AlertDispatcher,
    AlertTargetService,
    ArnNotifier,
    RetryPolicy,
    new_alert,
)
from .clock import Clock, SystemClock
from .config import Config
from .controlplane import ControlPlane, control_plane, registry_services
from .datadir import DataDir
from .defender.audit import AuditMitigationService, AuditService, CrlRegistry, WeakKeyLists
from .defender.detect import (
    DetectMitigationTasks,
    DetectService,
    StoreRecords,
    thing_membership,
    thing_peer,
)
from .defender.mitigation import MitigationActionService, RegistryEffects, ViolationResponse
from .domains import DomainService
from .events import EventBus, EventSink
from .files import FileService, RemoteDocumentFetcher
from .index import DynamicThingGroups, FleetIndex
from .jobs import JobsError, JobService, ensure_builtin_templates
from .logging_options import LoggingOptions
from .ota import OtaService, StreamService
from .pki import Keystore
from .provisioning import HttpHookClient, ProvisioningService
from .registry import CertificateAuthority
from .rotation import (
    AWS_AUDIT_DEFAULTS,
    FleetPolicy,
    FleetSweep,
    RotationPolicies,
    RotationService,
    RotationSettings,
)
from .rules import RuleService, confirmation_sender
from .shadow import ShadowService
from .signing import SigningService
from .store import Store
from .threats import DetectorSettings, Finding, ThreatService
from .trail import (
    DigestSink,
    DirectorySink,
    S3Sink,
    Trail,
    TrailDigester,
    TrailError,
    TrailKeys,
    signing_key,
    write_public_key,
)

log = logging.getLogger("bastion")

Send = Callable[[str, bytes, int], None]
"""Publish ``(topic, payload, qos)`` from Bastion itself; safe from any thread."""


@dataclass(frozen=True, slots=True)
class RegionalServices:
    """The services whose ARNs name one region: the registry (:attr:`plane`) and the
    services that name or check ARNs of their own or of the registry's resources (a job's
    targets, a rule's destinations, a provisioning template, a stream, a mitigation
    action)."""

    plane: ControlPlane
    jobs: JobService
    rules: RuleService
    provisioning: ProvisioningService
    streams: StreamService
    mitigation_actions: MitigationActionService


RegionalFactory = Callable[[ControlPlane], RegionalServices]


class Regions:
    """The services per region over one store (the REST API's emulator mode: as in AWS,
    the SigV4 scope's region names the ARNs and is the region a request's ARNs must name;
    the data is shared). Built on first use per region, then kept; thread-safe.

    Only the configured region's services run background work (job timers and rollouts,
    rule actions): those act on the shared store, so executions and rules made through
    another region's services are served by them too.
    """

    def __init__(self, plane: ControlPlane, datadir: DataDir, publish: EventSink, *,
                 default: RegionalServices | None = None,
                 factory: RegionalFactory | None = None) -> None:
        self._plane = plane
        self._datadir = datadir
        self._publish = publish
        self._lock = threading.Lock()
        self._authority: CertificateAuthority | None = None
        self._planes: dict[str, ControlPlane] = {plane.account.region: plane}
        self._factory = factory
        self._services: dict[str, RegionalServices] = (
            {} if default is None else {plane.account.region: default})

    def services_for(self, region: str) -> RegionalServices:
        """Every regional service whose ARNs name ``region``.

        :raises ValueError: ``region`` is not an AWS region name.
        :raises LookupError: no factory was given (only the registry is per region).
        """
        plane = self.plane_for(region)
        with self._lock:
            found = self._services.get(region)
            if found is not None:
                return found
            if self._factory is None:
                raise LookupError("no regional services but the registry")
            made = self._factory(plane)
            self._services[region] = made
            return made

    def plane_for(self, region: str) -> ControlPlane:
        """The registry services whose ARNs name ``region``.

        :raises ValueError: ``region`` is not an AWS region name.
        """
        with self._lock:
            found = self._planes.get(region)
            if found is not None:
                return found
            account = Account(region, self._plane.account.account_id)
            if self._authority is None:
                self._authority = CertificateAuthority.from_datadir(self._datadir)
            plane = control_plane(self._plane.store, account, self._authority, self._publish)
            self._planes[region] = plane
            return plane


@dataclass(frozen=True, slots=True)
class DetectServices:
    service: DetectService
    tasks: DetectMitigationTasks
    response: ViolationResponse


@dataclass(frozen=True, slots=True)
class AuditServices:
    audit: AuditService
    mitigation: AuditMitigationService
    actions: MitigationActionService


@dataclass(frozen=True, slots=True)
class RotationServices:
    service: RotationService
    sweep: FleetSweep


@dataclass(frozen=True, slots=True)
class Services:
    """The directory of one Bastion's services.

    ``audit`` and ``detect`` are ``None`` when the configuration turns them off.
    """

    config: Config
    datadir: DataDir
    bus: EventBus
    clock: Clock
    plane: ControlPlane
    regions: Regions
    access: AccessKeyService
    temporary_credentials: TemporaryCredentialService
    trail: Trail
    files: FileService
    shadow: ShadowService
    jobs: JobService
    provisioning: ProvisioningService
    alert_targets: AlertTargetService
    alerts: AlertDispatcher
    mitigation_actions: MitigationActionService
    logging_options: LoggingOptions
    audit: AuditServices | None
    detect: DetectServices | None
    rules: RuleService
    rotation: RotationServices
    signing: SigningService
    ota: OtaService
    index: FleetIndex
    dynamic_groups: DynamicThingGroups
    streams: StreamService
    domains: DomainService
    threats: ThreatService | None = None
    digests: TrailDigester | None = None
    """Signs and delivers the trail's digests (``None``: no ``[trail]`` sink)."""

    @property
    def store(self) -> Store:
        return self.plane.store


def build_services(config: Config, datadir: DataDir, store: Store, bus: EventBus, *,
                   send: Send, clock: Clock | None = None,
                   alert_sleep: Callable[[float], Awaitable[None]] | None = None
                   ) -> Services:
    """Build every service over ``store``, publishing on ``bus``.

    Constructs objects only: nothing here starts a task or binds a socket; the
    long-running parts are components the composition root runs.

    :param clock: the time the domain services judge by (schedules, timers, expiries,
        detect windows); tests pass a hand-moved one. Request signatures and the trail
        always use the system's time.
    :param alert_sleep: waits between alert delivery attempts (tests skip the waiting).
    :raises bastion.store.StoreError: the store cannot be read.
    """
    clock = clock if clock is not None else SystemClock()
    plane = registry_services(config, datadir, store, bus.publish)
    account = plane.account
    keystore = datadir.open_keystore()
    trail_keys = TrailKeys.from_keystore(keystore)
    trail = Trail(store, trail_keys)
    try:
        if trail.seal():
            log.info("trail: the chain head is sealed (keyed records from now on)")
    except TrailError as error:  # logged by the trail; `bastion trail verify` says more
        log.error("trail: %s; until it is repaired, API calls that change nothing are "
                  "answered but not recorded, and changes are refused", error)
    files = FileService.from_datadir(store, datadir, clock=clock)
    files.remote_documents = RemoteDocumentFetcher(
        timeout=config.jobs.document_source_timeout,
        max_bytes=config.jobs.document_source_max_bytes,
        cafile=config.jobs.document_source_cafile,
        networks=config.jobs.document_source_networks)
    files.signer()  # the URL-signing key, created on the first start
    provisioning_config = config.provisioning
    provisioning = ProvisioningService(
        store, registry=plane.registry, identity=plane.identity, policies=plane.policies,
        account=account,
        hook_client=HttpHookClient(cafile=provisioning_config.hook_cafile or None),
        hook_timeout=provisioning_config.hook_timeout,
        claim_lifetime=timedelta(seconds=provisioning_config.claim_lifetime))
    alerts_config = config.alerts
    alert_targets = AlertTargetService(store, sealer=keystore, account=account)
    alerts = AlertDispatcher(
        alert_targets, mqtt=send,
        policy=RetryPolicy(alerts_config.attempts,
                           timedelta(seconds=alerts_config.backoff_seconds), 2.0,
                           timedelta(seconds=alerts_config.max_backoff_seconds)),
        sleep=alert_sleep)
    logging_options = LoggingOptions(store, fallback_level=config.log.level)
    logging_options.load()
    mitigation_actions = MitigationActionService(store, account=account, clock=clock)
    audit: AuditServices | None = None
    if config.audit.enabled:
        notifier = ArnNotifier(alerts, "audit")
        crls = CrlRegistry(store, clock=clock, refresh_interval=timedelta(
            minutes=config.audit.crl_refresh_minutes))
        weak_dir = (Path(config.audit.weak_keys_dir) if config.audit.weak_keys_dir
                    else datadir.path / "audit" / "weak-keys")
        key_lists = WeakKeyLists.from_directory(weak_dir)
        if len(key_lists):
            log.info("audit: %d compromised keys loaded from %s", len(key_lists), weak_dir)
        audit_service = AuditService(store, account=account, crls=crls, logging=logging_options,
                                     key_lists=key_lists, notifier=notifier, clock=clock)
        effects = RegistryEffects(store, identity=plane.identity, registry=plane.registry,
                                  policies=plane.policies, logging=logging_options,
                                  notifier=notifier)
        audit = AuditServices(audit_service, AuditMitigationService(
            store, account=account, actions=mitigation_actions, effects=effects,
            executor=audit_service.executor, clock=clock), mitigation_actions)
    detect: DetectServices | None = None
    if config.detect.enabled:
        response = ViolationResponse(
            actions=mitigation_actions, trail=trail, alerts=alerts,
            effects=RegistryEffects(store, identity=plane.identity, registry=plane.registry,
                                    policies=plane.policies, logging=logging_options,
                                    notifier=None))
        registry = plane.registry
        detect_service = DetectService(
            membership=lambda thing: thing_membership(registry, thing),
            account=account,
            on_event=response.on_violation,
            invalidate_after=config.detect.invalidate_after,
            records=StoreRecords(store), statistics_ttl=config.detect.interval,
            clock=clock, peer=lambda thing: thing_peer(registry, thing),
            interval=config.detect.interval, ml_training=config.detect.ml_training)
        tasks = DetectMitigationTasks(detect_service, response.apply_task_action,
                                      action_exists=response.action_exists,
                                      run=_on_worker_thread)
        detect_service.mitigation_tasks = tasks
        detect = DetectServices(detect_service, tasks, response)
    rules = RuleService(store, account=account, clock=clock, publish=bus.publish,
                        confirm=confirmation_sender(cafile=config.rules.http_cafile or None,
                                                    timeout=config.rules.action_timeout))
    jobs = JobService(store, plane.registry, clock, bus.publish, documents=files)
    ensure_builtin_templates(jobs)

    def regional(region_plane: ControlPlane) -> RegionalServices:
        """Another region's services over the same store, bus, clock and files."""
        region_account = region_plane.account
        regional_rules = RuleService(
            store, account=region_account, clock=clock, publish=bus.publish,
            confirm=lambda request: rules.confirm(request) if rules.confirm else None,
            enable_url=lambda token: rules.enable_url(token))
        return RegionalServices(
            plane=region_plane,
            jobs=JobService(store, region_plane.registry, clock, bus.publish, documents=files),
            rules=regional_rules,
            provisioning=ProvisioningService(
                store, registry=region_plane.registry, identity=region_plane.identity,
                policies=region_plane.policies, account=region_account,
                hook_client=HttpHookClient(cafile=provisioning_config.hook_cafile or None),
                hook_timeout=provisioning_config.hook_timeout,
                claim_lifetime=timedelta(seconds=provisioning_config.claim_lifetime)),
            streams=StreamService(store, files=files, account=region_account, clock=clock),
            mitigation_actions=MitigationActionService(store, account=region_account,
                                                       clock=clock))
  # bastion-upload-logs, made on the first start
    if detect is not None:
        detect.service.jobs_in_progress = lambda things: _jobs_in_progress(jobs, things)
        detect.service.on_fleet_event = detect.response.on_fleet_event
    rotation = _rotation(config, store, plane, jobs, trail, alerts, audit, clock)
    signing = SigningService(store, keystore, files, account=account, clock=clock,
                             ca_certificate_path=datadir.ca_dir / "code-signing-ca.cert.pem")
    streams = StreamService(store, files=files, account=account, clock=clock)
    index = FleetIndex(store, membership_writer=plane.registry.set_dynamic_members)
    return Services(
        config=config, datadir=datadir, bus=bus, clock=clock, plane=plane,
        regions=Regions(plane, datadir, bus.publish, factory=regional,
                        default=RegionalServices(plane, jobs, rules, provisioning, streams,
                                                 mitigation_actions)),
        access=AccessKeyService(store, keystore),
        temporary_credentials=TemporaryCredentialService(
            keystore, certificate_active=_certificate_active(plane), clock=clock),
        trail=trail, files=files,
        shadow=ShadowService(store, publish=bus.publish, clock=clock),
        jobs=jobs, provisioning=provisioning, alert_targets=alert_targets, alerts=alerts,
        mitigation_actions=mitigation_actions, logging_options=logging_options,
        audit=audit, detect=detect, rules=rules, rotation=rotation, signing=signing,
        ota=OtaService(store, jobs=jobs, signing=signing, files=files, streams=streams,
                       account=account, clock=clock),
        index=index, dynamic_groups=DynamicThingGroups(index),
        streams=streams,
        domains=DomainService(store, keystore, account=account, publish=bus.publish,
                              clock=clock, default_domain_name=config.api.public_host),
        threats=_threats(config, store, account, files, alerts, clock),
        digests=_trail_digests(config, datadir, store, keystore, trail_keys))


def _threats(config: Config, store: Store, account: Account, files: FileService,
             alerts: AlertDispatcher, clock: Clock) -> ThreatService | None:
    """Threat detection (``[threats]``), its new findings alerted to its targets."""
    settings = config.threats
    if not settings.enabled:
        return None

    def alert(finding: Finding, document: dict[str, Any]) -> None:
        subject = (f"Threat finding: {finding.kind.title} ({finding.type}, severity "
                   f"{finding.severity:g})")
        for name in settings.alert_targets:
            alerts.submit(name, new_alert("threats", subject, document))

    return ThreatService(store, account=account, clock=clock, read_file=files.read,
                         alert=alert, settings=DetectorSettings(
                             burst_failures=settings.burst_failures,
                             burst_window=settings.burst_window_seconds,
                             block_seconds=settings.block_seconds,
                             learn_calls=settings.learn_calls,
                             concurrent_seconds=settings.concurrent_seconds,
                             mass_certificates=settings.mass_certificates,
                             mass_window=settings.mass_window_seconds,
                             clone_addresses=settings.clone_addresses,
                             clone_window=settings.clone_window_seconds))


def _trail_digests(config: Config, datadir: DataDir, store: Store, keystore: Keystore,
                   trail_keys: TrailKeys) -> TrailDigester | None:
    """The trail's digester over the configured sinks; the signing key is made on the
    first start of a data directory without one, and its public key (re)written beside
    the data. Digests use the system's time, as the trail does."""
    wall = SystemClock()
    key = signing_key(store, keystore, wall.now())
    write_public_key(datadir.trail_digest_public_key_path, key.public_key())
    settings = config.trail
    if not settings.enabled:
        return None
    sinks: list[DigestSink] = []
    if settings.digest_dir:
        sinks.append(DirectorySink(datadir.path / settings.digest_dir))
    if settings.digest_s3_bucket:
        sinks.append(S3Sink(settings.digest_s3_bucket, prefix=settings.digest_s3_prefix,
                            endpoint_url=settings.digest_s3_endpoint_url,
                            region=settings.digest_s3_region,
                            retention_days=settings.digest_retention_days, now=wall.now))
    return TrailDigester(store, key, trail_keys, sinks, node=config.cluster.node,
                         interval=timedelta(minutes=settings.digest_interval_minutes),
                         clock=wall)


def _rotation(config: Config, store: Store, plane: ControlPlane, jobs: JobService,
              trail: Trail, alerts: AlertDispatcher, audit: AuditServices | None,
              clock: Clock) -> RotationServices:
    """Certificate rotation over the fleet default of ``[rotation]``; the audit's
    certificate checks report against its policies."""
    settings = config.rotation
    fleet = FleetPolicy(settings.max_age_days, settings.rotate_before_expiry_days,
                        settings.deactivate_after_hours, settings.revoke_after_hours,
                        settings.start_jobs, settings.alert_targets)
    audit_service = audit.audit if audit is not None else None

    def thresholds() -> tuple[int, int]:
        if audit_service is None:
            return AWS_AUDIT_DEFAULTS
        checks = audit_service.describe_account_audit_configuration().checks
        age = checks["DEVICE_CERTIFICATE_AGE_CHECK"].configuration
        expiry = checks["DEVICE_CERTIFICATE_EXPIRING_CHECK"].configuration
        return (int(age.get("CERT_AGE_THRESHOLD_IN_DAYS", AWS_AUDIT_DEFAULTS[0])),
                int(expiry.get("CERT_EXPIRATION_THRESHOLD_IN_DAYS", AWS_AUDIT_DEFAULTS[1])))

    policies = RotationPolicies(store, fleet, audit_thresholds=thresholds, clock=clock)
    if audit_service is not None:
        audit_service.certificate_limits = policies.certificate_limits
    service = RotationService(
        store, registry=plane.registry, identity=plane.identity, policies=plane.policies,
        jobs=jobs, rotation_policies=policies, trail=trail, account=plane.account,
        settings=RotationSettings(timedelta(hours=settings.min_interval_hours),
                                  settings.job_timeout_minutes), clock=clock)
    sweep = FleetSweep(service, alerts=alerts,
                       interval=timedelta(hours=settings.sweep_interval_hours))
    return RotationServices(service, sweep)


def _certificate_active(plane: ControlPlane) -> Callable[[str], bool]:
    """Whether a device certificate may still use its temporary credentials: the rule
    CONNECT applies (:attr:`bastion.registry.PrincipalRecord.may_connect`), read from the
    registry at each call."""
    identity = plane.identity

    def active(certificate_id: str) -> bool:
        record = identity.resolve_principal(certificate_id)
        return record is not None and record.may_connect

    return active


def _on_worker_thread(job: Callable[[], None]) -> None:
    threading.Thread(target=job, name="detect-mitigation-task", daemon=True).start()


def _jobs_in_progress(jobs: JobService, things: Sequence[str]) -> list[str]:
    """Ids of the jobs queued or in progress on ``things`` (a fleet event's annotation)."""
    found: set[str] = set()
    for thing in things:
        for status in ("QUEUED", "IN_PROGRESS"):
            try:
                executions, _ = jobs.list_job_executions_for_thing(thing, status=status)
            except JobsError:  # a thing deleted meanwhile has no jobs
                executions = []
            found.update(execution.job_id for execution in executions)
    return sorted(found)
