"""Bastion's configuration: ``config.toml`` in the data directory, overridden by CLI flags."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .account import Account
from .broker import BrokerLimits, ProxyTrust


class ConfigError(ValueError):
    """The configuration file is unreadable or holds an unknown key or a wrong type."""


@dataclass(frozen=True, slots=True)
class MQTTConfig:
    host: str = "0.0.0.0"
    port: int = 8883
    alpn_port: int = 0        # a second TLS listener (e.g. 443) for SDKs sending ALPN
    # MQTT over WebSocket Secure (docs/websockets.md): wss://host:port/mqtt, SigV4-presigned
    # (service iotdevicegateway) or a client certificate. 0: off; AWS IoT uses 443.
    websocket_port: int = 0
    plaintext_port: int = 0   # 0: no plaintext listener; only for an explicit opt-in
    plaintext_host: str = "127.0.0.1"
    tls_session_tickets: int = 0  # TLS 1.3 tickets per handshake; 0: no resumption
    # Behind a TCP load balancer (docs/broker.md): the TLS listeners take connections only
    # from proxy_trusted (addresses or CIDR blocks), each starting with a PROXY v2 header.
    proxy_protocol: bool = False
    proxy_trusted: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.proxy_trusted, tuple | list):
            raise TypeError("proxy_trusted must be a list of strings, not "
                            f"{type(self.proxy_trusted).__name__}")
        object.__setattr__(self, "proxy_trusted", tuple(self.proxy_trusted))
        ProxyTrust.parse(self.proxy_trusted)  # ValueError/TypeError for a bad entry
        if self.proxy_protocol and not self.proxy_trusted:
            raise ValueError("proxy_protocol needs proxy_trusted: the load balancers' "
                             "addresses (no other client could connect)")


@dataclass(frozen=True, slots=True)
class LogConfig:
    """[log]: Bastion's own log, on stderr and in a rotating file."""

    level: str = "INFO"
    file: str = "logs/bastion.log"  # relative: to the data directory; empty: stderr only
    max_bytes: int = 10 << 20       # the file is rotated past this size
    files_kept: int = 5             # rotated files kept (bastion.log.1 …)

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self.files_kept < 0:
            raise ValueError("files_kept must be 0 or more")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    database_url: str = ""    # empty: SQLite file bastion.db in the data directory


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    """[sessions]: what MQTT state outlives a crash."""

    durable: bool = True       # persistent sessions and retained messages in the store
    synchronous: str = "normal"  # SQLite: "normal" survives kill -9; "full" power loss too

    def __post_init__(self) -> None:
        if self.synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be \"normal\" or \"full\", "
                             f"not {self.synchronous!r}")


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """[cluster]: several nodes serving one fleet (docs/cluster.md)."""

    nats_url: str = ""   # empty: a single node; e.g. "nats://10.0.0.5:4222" (JetStream on)
    node_id: str = ""    # this node's stable id; empty: the host name
    name: str = "bastion"  # the cluster's name: its NATS subjects and buckets start with it
    stream_max_age: float = 86400.0   # seconds the message stream keeps a QoS >= 1 or
    #                                   retained message (replayed by a node that restarts
    #                                   or adopts a session within that time)
    stream_max_bytes: int = 1 << 30   # the stream's size cap; the oldest go first
    lease: float = 15.0  # seconds a silent node keeps its sessions before another takes
    #                      them (it gives them up itself after two thirds); the same on
    #                      every node

    def __post_init__(self) -> None:
        if not 3.0 <= self.lease <= 300.0:
            raise ValueError(f"lease must be between 3 and 300 seconds, not {self.lease}")
        for key, value in (("name", self.name), ("node_id", self.node_id)):
            if value and not _NATS_TOKEN.fullmatch(value):
                raise ValueError(f"{key} may hold only letters, digits, '-' and '_', "
                                 f"not {value!r}")

    @property
    def node(self) -> str:
        """``node_id``, or the host name made into a NATS token."""
        import socket

        return self.node_id or re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())


_NATS_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


# -- The AWS-compatible REST API (bastion.api) -----------------------------------------
@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The REST front door for boto3 / the aws CLI (``iot``, ``iot-data``, ``iot-jobs-data``)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8443          # 0: any free port (printed at start)
    plaintext: bool = False   # plain HTTP: only with a loopback host
    public_host: str = ""     # DescribeEndpoint's answer; empty: the host the client used
    emulator: bool = False    # any SigV4 key accepted, POST /_bastion/reset; loopback only
    header_timeout: float = 10.0   # seconds from a request's first byte (or the connection's
    #                                start) to its last header; then the connection is cut
    body_timeout: float = 30.0     # seconds to receive a declared body: 408, then closed
    max_connections_per_source: int = 64  # open connections from one address; the next: 429


# -- Prometheus metrics (bastion.metrics), served on the API's port ------------------------
@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``GET /metrics`` on the API's HTTPS port, for a scraper holding the bearer token
    (docs/metrics.md). Never anonymous: the token is created on first start."""

    enabled: bool = True
    token_file: str = ""   # the bearer token (owner-only); empty: <data dir>/metrics.token


# -- The web console (bastion.console), served under /console/ on the API's port ----------
@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """[console]: the web console (docs/console.md). Sessions live in this process's
    memory: a restart signs everyone out, and behind a load balancer a node knows only the
    sessions it opened (pin the console to one node)."""

    enabled: bool = True
    idle_timeout: float = 900.0        # seconds without a request before a session ends
    absolute_timeout: float = 28800.0  # seconds after sign-in that a session ends anyway
    sign_in_attempts: int = 10         # sign-in attempts one address may make per window
    sign_in_window: float = 300.0      # seconds of that window

    def __post_init__(self) -> None:
        if not 0 < self.idle_timeout <= self.absolute_timeout:
            raise ValueError("idle_timeout must be positive and at most absolute_timeout")
        if not 0 < self.absolute_timeout <= 7 * 86400:
            raise ValueError("absolute_timeout must be positive and at most 7 days")
        if self.sign_in_attempts < 1 or self.sign_in_window <= 0:
            raise ValueError("sign_in_attempts must be at least 1 and sign_in_window "
                             "positive")


# -- The credentials provider (bastion.credentials) -------------------------------------
@dataclass(frozen=True, slots=True)
class CredentialsConfig:
    """Devices get temporary credentials for a role alias here, over mutual TLS with their
    certificate (``GET /role-aliases/<alias>/credentials``). Off unless asked for."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = 8444             # 0: any free port (printed at start)
    request_timeout: float = 10.0  # seconds from the handshake to a whole request


# -- Fleet provisioning, JITP/JITR (bastion.provisioning) ------------------------------
@dataclass(frozen=True, slots=True)
class ProvisioningConfig:
    """Zero-touch provisioning."""

    hook_timeout: float = 5.0   # seconds a pre-provisioning hook has to answer (then: deny)
    hook_cafile: str = ""       # CA bundle for https:// hooks; empty: the system's
    claim_lifetime: int = 300   # seconds a CreateProvisioningClaim certificate is valid


# -- Device Defender audit and alert delivery ------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Device Defender audit (bastion.defender.audit)."""

    enabled: bool = True
    weak_keys_dir: str = ""        # compromised-key lists; empty: <data dir>/audit/weak-keys
    crl_refresh_minutes: int = 60  # CRL sources are fetched again at least this often


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Alert delivery (bastion.alerts): attempts per alert and the backoff between them."""

    attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 300.0


# -- certificate rotation (bastion.rotation) --------------------------------------------
@dataclass(frozen=True, slots=True)
class RotationConfig:
    """Certificate rotation: the fleet default policy and the rules of rotation jobs.
    Per-thing-group policies are set with ``bastion rotation policy set``."""

    enabled: bool = True             # the sweep and the graces run
    sweep_interval_hours: float = 24.0
    max_age_days: int = 0            # 0: the audit's CERT_AGE_THRESHOLD_IN_DAYS (AWS: 365)
    rotate_before_expiry_days: int = 0  # 0: the audit's CERT_EXPIRATION_THRESHOLD_IN_DAYS
    deactivate_after_hours: int = 168   # grace before the old certificate is deactivated
    revoke_after_hours: int = 720       # … and revoked (counted from the confirmation)
    start_jobs: bool = False         # the sweep starts rotation jobs (else: alerts only)
    alert_targets: tuple[str, ...] = ()  # alert targets told of due certificates
    min_interval_hours: int = 720    # a thing gets at most one rotation certificate per this
    job_timeout_minutes: int = 60    # in-progress timeout of rotation job executions

    def __post_init__(self) -> None:
        if self.sweep_interval_hours <= 0:
            raise ValueError("sweep_interval_hours must be positive")
        for name in ("max_age_days", "rotate_before_expiry_days", "deactivate_after_hours",
                     "revoke_after_hours", "min_interval_hours"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.revoke_after_hours < self.deactivate_after_hours:
            raise ValueError("revoke_after_hours must not be less than deactivate_after_hours")
        if not 1 <= self.job_timeout_minutes <= 10080:
            raise ValueError("job_timeout_minutes must be from 1 to 10080")


# -- Device Defender detect ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DetectConfig:
    """Device Defender detect (bastion.defender.detect)."""

    enabled: bool = True
    interval: float = 300.0             # seconds between evaluations (and the minimum
    #                                     period between a thing's metrics reports)
    invalidate_after: float = 172800.0  # a silent device's alarms become alarm-invalidated
    ml_training: str = "fast"   # ML behaviors' models: "fast" (active after three
    #                             intervals) or "aws" (AWS's rule: 14 days and 25,000
    #                             datapoints; ML on set metrics refused as AWS does)

    def __post_init__(self) -> None:
        if self.ml_training not in ("fast", "aws"):
            raise ValueError('ml_training must be "fast" or "aws"')


# -- the rules engine --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RulesConfig:
    """The rules engine (bastion.rules): its queue, retries, and where actions write."""

    enabled: bool = True
    queue_size: int = 10000        # matched messages waiting for evaluation; more: dropped
    attempts: int = 3              # tries of one action before its rule's error action
    backoff_seconds: float = 0.5   # the first wait between two tries (doubled each time)
    max_backoff_seconds: float = 30.0
    action_timeout: float = 10.0   # seconds one HTTP or SQL action may take
    sql_url: str = ""              # the dynamoDBv2 action's database; empty: the action fails
    log_dir: str = ""              # the cloudwatchLogs action's files; empty: <data>/rules/logs
    log_max_bytes: int = 10 << 20  # a log file is rotated past this size
    log_files_kept: int = 5        # rotated files kept per log group
    nats_url: str = ""             # the kinesis action's NATS (JetStream); empty: the cluster's
    s3_endpoint_url: str = ""      # the s3 action's object store; empty: AWS's S3 itself
    s3_region: str = "us-east-1"   # (credentials: boto3's usual chain, never this file)
    http_cafile: str = ""          # CA bundle for https:// actions and confirmations; empty:
    #                                the system's


# -- threat detection ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ThreatsConfig:
    """Threat detection on operator and device activity (bastion.threats)."""

    enabled: bool = True
    alert_targets: tuple[str, ...] = ()  # alert targets told of each new finding
    burst_failures: int = 20         # failed API authentications from one address …
    burst_window_seconds: float = 60.0   # … within this long are a burst
    block_seconds: float = 900.0     # a bursting address is refused this long (0: never)
    learn_calls: int = 20            # calls before a key's new address is a finding
    concurrent_seconds: float = 60.0  # one key from two addresses within this: a finding
    mass_certificates: int = 50      # certificate creations or revocations …
    mass_window_seconds: float = 600.0   # … within this long are "mass"
    clone_addresses: int = 3         # distinct addresses of one device certificate …
    clone_window_seconds: float = 3600.0  # … within this long are a clone
    verify_trail_minutes: float = 60.0    # how often the trail is verified (0: never)


# -- AWS IoT logs (bastion.iotlogs) -------------------------------------------------------
_IOT_LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "DISABLED")


@dataclass(frozen=True, slots=True)
class IoTLogsConfig:
    """[iot_logs]: AWS IoT's log entries (Connect, Publish-In, …) as JSON lines."""

    enabled: bool = True
    default_level: str = "ERROR"   # until SetV2LoggingOptions/SetLoggingOptions say otherwise
    file: str = ""                 # empty: <data>/logs/aws-iot.jsonl
    max_bytes: int = 10 << 20      # the file is rotated past this size
    files_kept: int = 5            # rotated files kept (aws-iot.jsonl.1 …)
    syslog_address: str = ""       # "host:port" (UDP) or a socket path; empty: no syslog
    syslog_facility: str = "user"
    queue_size: int = 10000        # entries waiting for the writer; more: dropped, counted
    refresh_seconds: float = 30.0  # levels re-read from the store (changes made elsewhere)

    def __post_init__(self) -> None:
        if self.default_level not in _IOT_LOG_LEVELS:
            raise ValueError("default_level must be one of " + ", ".join(_IOT_LOG_LEVELS))
        if self.max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1024")
        if self.files_kept < 1:
            raise ValueError("files_kept must be at least 1")
        if self.queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if self.refresh_seconds <= 0:
            raise ValueError("refresh_seconds must be positive")
        if self.syslog_address and ":" not in self.syslog_address \
                and not self.syslog_address.startswith("/"):
            raise ValueError('syslog_address must be "host:port" or a socket path')


# -- the trail's signed digests (bastion.trail, docs/trail.md) ------------------------------
@dataclass(frozen=True, slots=True)
class TrailConfig:
    """[trail]: signed digests of the trail and where they are delivered (AISB#8)."""

    digest_interval_minutes: float = 60.0  # a digest of the new records this often (and
    #                                        on a clean stop)
    digest_dir: str = "trail-digests"    # an append-only local directory (relative: in
    #                                      the data directory); empty: none
    digest_s3_bucket: str = ""           # an S3-compatible bucket too; empty: none
    digest_s3_prefix: str = "bastion/trail-digests/"
    digest_s3_endpoint_url: str = ""     # empty: AWS's S3 itself (credentials: boto3's
    #                                      usual chain, never this file)
    digest_s3_region: str = "us-east-1"
    digest_retention_days: int = 365     # S3 Object Lock (COMPLIANCE) retention, when the
    #                                      bucket has Object Lock enabled

    def __post_init__(self) -> None:
        if not self.digest_interval_minutes > 0:
            raise ValueError("digest_interval_minutes must be positive")
        if self.digest_retention_days < 1:
            raise ValueError("digest_retention_days must be at least 1")
        if self.digest_s3_prefix.startswith("/"):
            raise ValueError("digest_s3_prefix must not start with '/'")

    @property
    def enabled(self) -> bool:
        """Whether digests are made (a sink is configured)."""
        return bool(self.digest_dir or self.digest_s3_bucket)


@dataclass(frozen=True, slots=True)
class JobsConfig:
    """Jobs (bastion.jobs): where ``documentSource`` documents may be fetched from."""

    document_source_timeout: float = 10.0      # seconds for one fetch, all included
    document_source_max_bytes: int = 32768     # AWS's job document limit
    document_source_cafile: str = ""           # CA bundle for https:// sources; empty: system
    document_source_networks: tuple[str, ...] = ()  # private CIDRs that may be fetched from

    def __post_init__(self) -> None:
        if not self.document_source_timeout > 0:
            raise ValueError("document_source_timeout must be positive")
        if self.document_source_max_bytes < 1:
            raise ValueError("document_source_max_bytes must be at least 1")
        for network in self.document_source_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"document_source_networks: {network!r} is not a CIDR "
                                 "network") from None


@dataclass(frozen=True, slots=True)
class Config:
    mqtt: MQTTConfig = field(default_factory=MQTTConfig)
    limits: BrokerLimits = field(default_factory=BrokerLimits)
    log: LogConfig = field(default_factory=LogConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    account: Account = field(default_factory=Account)  # [account]: every ARN's region and account
    api: ApiConfig = field(default_factory=ApiConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    credentials: CredentialsConfig = field(default_factory=CredentialsConfig)
    provisioning: ProvisioningConfig = field(default_factory=ProvisioningConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    rotation: RotationConfig = field(default_factory=RotationConfig)
    threats: ThreatsConfig = field(default_factory=ThreatsConfig)
    iot_logs: IoTLogsConfig = field(default_factory=IoTLogsConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)


    trail: TrailConfig = field(default_factory=TrailConfig)


_SECTIONS: dict[str, type[Any]] = {
    "mqtt": MQTTConfig, "limits": BrokerLimits, "log": LogConfig, "store": StoreConfig,
    "sessions": SessionsConfig, "cluster": ClusterConfig,
    "account": Account, "api": ApiConfig, "metrics": MetricsConfig,
    "console": ConsoleConfig,
    "credentials": CredentialsConfig,
    "provisioning": ProvisioningConfig,
    "audit": AuditConfig, "alerts": AlertsConfig,
    "detect": DetectConfig, "rules": RulesConfig, "rotation": RotationConfig,
    "threats": ThreatsConfig,
    "iot_logs": IoTLogsConfig,
    "jobs": JobsConfig,


    "trail": TrailConfig,
}


def _section(name: str, cls: type[Any], values: object) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {name}.{key}")
        expected = type(getattr(defaults, key))
        if expected is tuple:  # every tuple field is a list of strings in TOML
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name}.{key} must be a list of strings")
            value = tuple(value)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            raise ConfigError(
                f"{name}.{key} must be {expected.__name__}, not {type(value).__name__}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a value the section itself refuses (e.g. [account])
        raise ConfigError(f"[{name}] {exc}") from None


def load_config(path: Path) -> Config:
    """Read ``path``; a missing file means all defaults.

    :raises ConfigError: unreadable TOML, unknown section or key, or a wrong value type.
    """
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    parts: dict[str, Any] = {}
    for name, values in data.items():
        cls = _SECTIONS.get(name)
        if cls is None:
            raise ConfigError(f"{path}: unknown section [{name}]")
        parts[name] = _section(name, cls, values)
    return Config(**parts)


def with_overrides(config: Config, **mqtt: Any) -> Config:
    """Apply CLI overrides for the [mqtt] section (``None`` values are ignored)."""
    changes = {k: v for k, v in mqtt.items() if v is not None}
    return replace(config, mqtt=replace(config.mqtt, **changes)) if changes else config
