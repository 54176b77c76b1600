"""The AWS IoT Security Baseline's controls, each one applied and checked on a data
directory (``bastion baseline apply`` / ``check``).

Theory of operation
-------------------
A :class:`Control` has an id (``AISB#1`` … ``AISB#11``), a title, an ``apply`` that
makes the control hold and says what it changed (idempotent: a second apply changes
nothing), and a ``check`` that reads the state and returns PASS or FAIL with the evidence
that decided. Both work on a :class:`Baseline`: the services built over the data
directory's store (the same ones ``bastion serve`` runs), and its ``config.toml`` for the
settings that live there. A running ``bastion serve`` sees store changes at once (it
reads audit configuration, profiles and targets when it uses them); settings written to
``config.toml`` apply at its next start, and ``check`` says so.

What each control makes true is listed in ``docs/baseline.md``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import tomli_w

from bastion.config import Config, load_config
from bastion.defender.audit import CHECKS
from bastion.defender.detect import ML_METRICS
from bastion.jobs import UPLOAD_LOGS_TEMPLATE, JobsError, ensure_builtin_templates
from bastion.services import Services

ML_PROFILE: Final = "bastion-baseline-ml"
SCHEDULED_AUDIT: Final = "bastion-baseline-daily"
EXAMPLE_METRIC: Final = "bastion_baseline_example"
ALERT_TARGET: Final = "bastion-baseline"
ROLE_ARN: Final = "arn:aws:iam::{account}:role/bastion-baseline"
UPLOAD_URL: Final = "${bastion:upload-url"
IDENTITY_CHECKS: Final = ("CONFLICTING_CLIENT_IDS_CHECK", "DEVICE_CERTIFICATE_SHARED_CHECK",
                          "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK")
PRIVILEGE_CHECKS: Final = ("IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
                           "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK",
                           "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK")


@dataclass(slots=True)
class AlertOptions:
    """Where ``apply`` sends alerts (one of them, or an existing target)."""

    webhook_url: str | None = None
    email: str | None = None
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_sender: str = "bastion@localhost"
    ca_file: str | None = None


@dataclass(slots=True)
class Baseline:
    """What the controls work on: the services over the store and ``config.toml``."""

    services: Services
    config_path: Path
    options: AlertOptions = field(default_factory=AlertOptions)

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    def set_config(self, section: str, values: dict[str, Any]) -> bool:
        """Write ``values`` into ``[section]`` of ``config.toml``; whether it changed."""
        document = tomllib.loads(self.config_path.read_text(encoding="utf-8")) \
            if self.config_path.exists() else {}
        table = document.setdefault(section, {})
        if all(table.get(k) == v for k, v in values.items()):
            return False
        table.update(values)
        self.config_path.write_text(tomli_w.dumps(document), encoding="utf-8")
        self.config_path.chmod(0o600)
        return True

    def account_role(self) -> str:
        return ROLE_ARN.format(account=self.services.plane.account.account_id)

    def alert_target(self) -> str | None:
        """The name of the baseline's alert target, or of the first enabled one."""
        targets = self.services.alert_targets.all()
        named = [t for t in targets if t.name == ALERT_TARGET]
        enabled = named or [t for t in targets if t.enabled]
        return enabled[0].name if enabled else None


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    evidence: str


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    title: str
    apply: Callable[[Baseline], list[str]]
    check: Callable[[Baseline], Verdict]


def _audit_checks(baseline: Baseline, names: tuple[str, ...]) -> list[str]:
    audit = baseline.services.audit
    if audit is None:
        return ["audit is off in config.toml ([audit] enabled = false): not changed"]
    current = audit.audit.describe_account_audit_configuration().checks
    missing = [n for n in names if n in CHECKS and not current[n].enabled]
    if not missing:
        return []
    audit.audit.update_account_audit_configuration(
        role_arn=baseline.account_role(),
        check_configurations={n: {"enabled": True} for n in missing})
    return [f"audit checks enabled: {', '.join(missing)}"]


def _audit_verdict(baseline: Baseline, names: tuple[str, ...]) -> Verdict:
    audit = baseline.services.audit
    if audit is None:
        return Verdict(False, "audit is off ([audit] enabled = false)")
    current = audit.audit.describe_account_audit_configuration().checks
    off = [n for n in names if n in CHECKS and not current[n].enabled]
    if off:
        return Verdict(False, f"audit checks off: {', '.join(off)}")
    return Verdict(True, f"audit checks on: {', '.join(n for n in names if n in CHECKS)}")


def _apply_logging(baseline: Baseline) -> list[str]:
    done = []
    if baseline.set_config("iot_logs", {"enabled": True}):
        done.append("[iot_logs] enabled (at the next start)")
    options = baseline.services.logging_options
    state = options.state()
    if state.source != "v2" or state.disabled:
        options.enable(baseline.account_role(), "ERROR")
        done.append("IoT logging (v2 options) on at ERROR")
    return done


def _check_logging(baseline: Baseline) -> Verdict:
    if not baseline.config.iot_logs.enabled:
        return Verdict(False, "[iot_logs] enabled = false: no IoT log entries are written")
    state = baseline.services.logging_options.state()
    if state.source != "v2":
        return Verdict(False, "no v2 logging options set (SetV2LoggingOptions)")
    if state.disabled:
        return Verdict(False, f"IoT logging is {state.effective_level}")
    where = baseline.config.iot_logs.file or "logs/aws-iot.jsonl"
    return Verdict(True, f"IoT logging on at {state.effective_level}, to {where}")


def _apply_digests(baseline: Baseline) -> list[str]:
    if baseline.config.trail.enabled:
        return []
    baseline.set_config("trail", {"digest_dir": "trail-digests"})
    return ["[trail] digest_dir = trail-digests (signed digests, at the next start)"]


def _check_digests(baseline: Baseline) -> Verdict:
    trail = baseline.config.trail
    if not trail.enabled:
        return Verdict(False, "[trail] has no digest sink: the trail is not delivered")
    sinks = [s for s in (trail.digest_dir and f"directory {trail.digest_dir}",
                         trail.digest_s3_bucket and f"s3://{trail.digest_s3_bucket}") if s]
    return Verdict(True, f"signed digests every {trail.digest_interval_minutes:g} min to "
                         f"{' and '.join(sinks)}")


def _uploads(baseline: Baseline) -> bool | None:
    """Whether the job template named ``bastion-upload-logs`` gives devices an upload
    URL (``None``: there is none)."""
    try:
        template = baseline.services.jobs.describe_job_template(UPLOAD_LOGS_TEMPLATE)
    except JobsError:
        return None
    return UPLOAD_URL in (template.document or "")


def _apply_logs_template(baseline: Baseline) -> list[str]:
    done = []
    if _uploads(baseline) is False:  # the name is Bastion's: put its template back
        baseline.services.jobs.delete_job_template(UPLOAD_LOGS_TEMPLATE)
        done.append(f"job template {UPLOAD_LOGS_TEMPLATE} gave no upload URL: deleted")
    if ensure_builtin_templates(baseline.services.jobs):
        done.append(f"job template {UPLOAD_LOGS_TEMPLATE}")
    return done


def _check_logs_template(baseline: Baseline) -> Verdict:
    uploads = _uploads(baseline)
    if uploads is None:
        return Verdict(False, f"no job template {UPLOAD_LOGS_TEMPLATE}")
    if not uploads:
        return Verdict(False, f"job template {UPLOAD_LOGS_TEMPLATE} gives devices no "
                              "upload URL")
    return Verdict(True, f"job template {UPLOAD_LOGS_TEMPLATE}: devices upload their logs "
                         "on demand")


def _apply_schedule(baseline: Baseline) -> list[str]:
    audit = baseline.services.audit
    if audit is None:
        return ["audit is off in config.toml: no schedule"]
    service = audit.audit
    enabled = [n for n, c in service.describe_account_audit_configuration().checks.items()
               if c.enabled]
    existing = {s.name for s in service.list_scheduled_audits()[0]}
    if SCHEDULED_AUDIT in existing:
        current = set(service.describe_scheduled_audit(SCHEDULED_AUDIT).check_names)
        if current == set(enabled):
            return []
        service.update_scheduled_audit(SCHEDULED_AUDIT, target_check_names=enabled)
        return [f"scheduled audit {SCHEDULED_AUDIT} now runs every enabled check"]
    service.create_scheduled_audit(SCHEDULED_AUDIT, frequency="DAILY",
                                   target_check_names=enabled)
    return [f"scheduled audit {SCHEDULED_AUDIT}: daily, every enabled check"]


def _check_schedule(baseline: Baseline) -> Verdict:
    audit = baseline.services.audit
    if audit is None:
        return Verdict(False, "audit is off")
    service = audit.audit
    enabled = {n for n, c in service.describe_account_audit_configuration().checks.items()
               if c.enabled}
    for summary in service.list_scheduled_audits()[0]:
        scheduled = service.describe_scheduled_audit(summary.name)
        if scheduled.frequency.value == "DAILY" and enabled <= set(scheduled.check_names):
            return Verdict(True, f"scheduled audit {summary.name}: daily, "
                                 f"{len(enabled)} checks")
    return Verdict(False, "no daily scheduled audit runs every enabled check")


def _ml_behaviors() -> list[dict[str, Any]]:
    return [{"name": metric.split(":", 1)[1], "metric": metric,
             "criteria": {"mlDetectionConfig": {"confidenceLevel": "MEDIUM"},
                          "consecutiveDatapointsToAlarm": 1,
                          "consecutiveDatapointsToClear": 1}}
            for metric in sorted(ML_METRICS)]


def _apply_ml(baseline: Baseline) -> list[str]:
    detect = baseline.services.detect
    if detect is None:
        return ["detect is off in config.toml: no profile"]
    service = detect.service
    service.load()
    done = []
    if ML_PROFILE not in {p.name for p in service.list_security_profiles()}:
        service.create_security_profile(ML_PROFILE, behaviors=_ml_behaviors(),
                                        description="AWS IoT Security Baseline #5",
                                        now=baseline.services.clock.time())
        done.append(f"security profile {ML_PROFILE}: ML Detect on the 13 ML metrics")
    arn = service.target_arn("all/things")
    if "all/things" not in service.describe_security_profile(ML_PROFILE).targets:
        service.attach(ML_PROFILE, arn)
        done.append(f"{ML_PROFILE} attached to all things")
    return done


def _check_ml(baseline: Baseline) -> Verdict:
    detect = baseline.services.detect
    if detect is None:
        return Verdict(False, "detect is off")
    detect.service.load()
    for profile in detect.service.list_security_profiles():
        learned = [b for b in profile.behaviors if b.criteria.ml_confidence is not None]
        if learned and {"all/things", "all/registered-things"} & profile.targets:
            return Verdict(True, f"profile {profile.name}: {len(learned)} ML behaviors on "
                                 "all things")
    return Verdict(False, "no security profile with ML behaviors targets all things")


def _apply_rotation(baseline: Baseline) -> list[str]:
    if baseline.set_config("rotation", {"enabled": True, "start_jobs": True}):
        return ["[rotation] enabled, start_jobs = true (applies at the next start)"]
    return []


def _check_rotation(baseline: Baseline) -> Verdict:
    rotation = baseline.config.rotation
    if not rotation.enabled:
        return Verdict(False, "[rotation] enabled = false")
    if not rotation.start_jobs:
        return Verdict(False, "[rotation] start_jobs = false: due certificates are only "
                              "reported, never rotated")
    return Verdict(True, f"rotation jobs start for due certificates (max age "
                         f"{rotation.max_age_days or 'the audit threshold'} days)")


def _apply_alerts(baseline: Baseline) -> list[str]:
    options = baseline.options
    targets = baseline.services.alert_targets
    done = []
    if baseline.alert_target() is None:
        if options.webhook_url:
            targets.create_webhook(ALERT_TARGET, options.webhook_url, ca_file=options.ca_file)
            done.append(f"alert target {ALERT_TARGET}: webhook {options.webhook_url}")
        elif options.email:
            targets.create_email(ALERT_TARGET, host=options.smtp_host, port=options.smtp_port,
                                 sender=options.smtp_sender, recipients=[options.email],
                                 ca_file=options.ca_file)
            done.append(f"alert target {ALERT_TARGET}: e-mail to {options.email}")
        else:
            return ["no alert target: give --alert-webhook or --alert-email"]
    name = baseline.alert_target()
    assert name is not None
    arn = targets.arn(name)
    sns = {"alertTargetArn": arn, "roleArn": baseline.account_role()}
    detect = baseline.services.detect
    if detect is not None:
        detect.service.load()
        for profile in detect.service.list_security_profiles():
            if profile.name == ML_PROFILE and not profile.alert_targets:
                detect.service.update_security_profile(
                    profile.name, alert_targets={"SNS": sns},
                    now=baseline.services.clock.time())
                done.append(f"{ML_PROFILE} alerts {name}")
    audit = baseline.services.audit
    if audit is not None:
        current = audit.audit.describe_account_audit_configuration().notification_targets
        sns_target = current.get("SNS")
        if sns_target is None or not sns_target.enabled:
            audit.audit.update_account_audit_configuration(notification_targets={
                "SNS": {"targetArn": arn, "roleArn": baseline.account_role(),
                        "enabled": True}})
            done.append(f"audit findings alert {name}")
    config = baseline.config
    for section, named in (("threats", config.threats.alert_targets),
                           ("rotation", config.rotation.alert_targets)):
        if name not in named:
            baseline.set_config(section, {"alert_targets": [*named, name]})
            done.append(f"[{section}] alert_targets include {name} (at the next start)")
    return done


def _check_alerts(baseline: Baseline) -> Verdict:
    name = baseline.alert_target()
    if name is None:
        return Verdict(False, "no enabled alert target")
    missing = []
    detect = baseline.services.detect
    if detect is not None:
        detect.service.load()
        profiles = [p for p in detect.service.list_security_profiles()
                    if any(b.criteria.ml_confidence for b in p.behaviors)]
        if not profiles or not all(p.alert_targets for p in profiles):
            missing.append("ML Detect violations")
    audit = baseline.services.audit
    if audit is not None:
        sns = audit.audit.describe_account_audit_configuration().notification_targets.get(
            "SNS")
        if sns is None or not sns.enabled:
            missing.append("audit findings")
    if not baseline.config.threats.alert_targets:
        missing.append("threat findings")
    if not baseline.config.rotation.alert_targets:
        missing.append("certificates due for rotation")
    if missing:
        return Verdict(False, f"no alerts for: {', '.join(missing)}")
    return Verdict(True, f"violations, audit findings, threat findings and due "
                         f"certificates alert {name}")


def _apply_threats(baseline: Baseline) -> list[str]:
    if baseline.set_config("threats", {"enabled": True}):
        return ["[threats] enabled (at the next start)"]
    return []


def _check_threats(baseline: Baseline) -> Verdict:
    threats = baseline.config.threats
    if not threats.enabled:
        return Verdict(False, "[threats] enabled = false")
    block = f"blocks a bursting source for {threats.block_seconds:g} s" \
        if threats.block_seconds > 0 else "no automatic block"
    return Verdict(True, f"threat detection on ({block})")


def _apply_metric(baseline: Baseline) -> list[str]:
    detect = baseline.services.detect
    if detect is None:
        return ["detect is off in config.toml: no custom metric"]
    detect.service.load()
    if EXAMPLE_METRIC in detect.service.custom_metrics:
        return []
    detect.service.create_custom_metric(EXAMPLE_METRIC, "number",
                                        "Example fleet metric (baseline #11)")
    how = (f"custom metric {EXAMPLE_METRIC}: a device reports it in its metrics report "
           f'as "custom_metrics": {{"{EXAMPLE_METRIC}": [{{"number": 1}}]}}')
    return [how]


def _check_metric(baseline: Baseline) -> Verdict:
    detect = baseline.services.detect
    if detect is None:
        return Verdict(False, "detect is off")
    detect.service.load()
    names = sorted(detect.service.custom_metrics)
    if not names:
        return Verdict(False, "no custom metric")
    return Verdict(True, f"custom metrics: {', '.join(names[:5])}")


CONTROLS: Final[list[Control]] = [
    Control("AISB#1", "Unique device identities (audit: shared and conflicting identities)",
            lambda b: _audit_checks(b, IDENTITY_CHECKS),
            lambda b: _audit_verdict(b, IDENTITY_CHECKS)),
    Control("AISB#2", "Least privilege (audit: overly permissive policies and role aliases)",
            lambda b: _audit_checks(b, PRIVILEGE_CHECKS),
            lambda b: _audit_verdict(b, PRIVILEGE_CHECKS)),
    Control("AISB#3", "IoT logging on, errors at least", _apply_logging, _check_logging),
    Control("AISB#4", "A daily scheduled audit with every check", _apply_schedule,
            _check_schedule),
    Control("AISB#5", "ML Detect on all things", _apply_ml, _check_ml),
    Control("AISB#6", "Certificate rotation on a schedule", _apply_rotation,
            _check_rotation),
    Control("AISB#7", "Alerts on violations and findings", _apply_alerts, _check_alerts),
    Control("AISB#8", "The trail delivered as signed digests", _apply_digests,
            _check_digests),
    Control("AISB#9", "Threat detection on operator and device activity", _apply_threats,
            _check_threats),
    Control("AISB#10", "Device logs fetched on demand (a job template)",
            _apply_logs_template, _check_logs_template),
    Control("AISB#11", "A fleet-specific custom metric", _apply_metric, _check_metric),
]
"""The eleven controls, in order."""
