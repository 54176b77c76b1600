"""``bastion baseline apply|check`` in real subprocesses on a real data directory: apply
on a fresh one, then every control PASSes; each control turned off by hand makes
exactly that control FAIL; apply again restores it and changes nothing more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bastion.baseline import CONTROLS, Baseline
from bastion.baseline._controls import ML_PROFILE, SCHEDULED_AUDIT
from bastion.config import load_config
from bastion.controlplane import database_url
from bastion.datadir import DataDir
from bastion.events import InProcessBus
from bastion.jobs import UPLOAD_LOGS_TEMPLATE
from bastion.services import build_services
from bastion.store import Store

BASTION = [sys.executable, "-m", "bastion"]
WEBHOOK = "https://127.0.0.1:9/alerts"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BASTION_"))}
    env["COLUMNS"] = "200"
    return subprocess.run([*BASTION, *args], capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def _check(data: Path) -> tuple[int, dict[str, str]]:
    result = _run("baseline", "check", "--data-dir", str(data), "--json")
    rows = json.loads(result.stdout)
    return result.returncode, {row["control"]: row["status"] for row in rows}


@contextmanager
def _opened(data: Path) -> Iterator[Baseline]:
    datadir = DataDir(data)
    store = Store.open(database_url(load_config(datadir.config_path), datadir))
    try:
        services = build_services(load_config(datadir.config_path), datadir, store,
                                  InProcessBus(), send=lambda topic, payload, qos: None)
        yield Baseline(services, datadir.config_path)
    finally:
        store.close()


def _without_check(name: str) -> Callable[[Baseline], None]:
    def off(b: Baseline) -> None:
        audit = b.services.audit
        assert audit is not None
        scheduled = audit.audit.describe_scheduled_audit(SCHEDULED_AUDIT)
        audit.audit.update_scheduled_audit(SCHEDULED_AUDIT, target_check_names=[
            c for c in scheduled.check_names if c != name])
        audit.audit.update_account_audit_configuration(
            check_configurations={name: {"enabled": False}})
    return off


def _detect(b: Baseline) -> Any:
    detect = b.services.detect
    assert detect is not None
    detect.service.load()
    return detect.service


def _audit(b: Baseline) -> Any:
    audit = b.services.audit
    assert audit is not None
    return audit.audit


def _delete_template(b: Baseline) -> None:
    """Replace the template by one without an upload URL (a missing one is made again
    whenever the services are built, so deleting it alone breaks nothing)."""
    b.services.jobs.delete_job_template(UPLOAD_LOGS_TEMPLATE)
    b.services.jobs.create_job_template(UPLOAD_LOGS_TEMPLATE,
                                        document='{"operation": "nothing"}',
                                        description="an impostor")


BREAK: dict[str, Callable[[Baseline], None]] = {
    "AISB#1": _without_check("DEVICE_CERTIFICATE_SHARED_CHECK"),
    "AISB#2": _without_check("IOT_POLICY_OVERLY_PERMISSIVE_CHECK"),
    "AISB#3": lambda b: b.services.logging_options.set_v2({"disableAllLogs": True}),
    "AISB#4": lambda b: _audit(b).delete_scheduled_audit(SCHEDULED_AUDIT),
    "AISB#5": lambda b: _detect(b).detach(ML_PROFILE, _detect(b).target_arn("all/things")),
    "AISB#6": lambda b: b.set_config("rotation", {"start_jobs": False}) and None,
    "AISB#7": lambda b: _audit(b).update_account_audit_configuration(
        notification_targets={"SNS": {"targetArn": None, "roleArn": None,
                                      "enabled": False}}),
    "AISB#8": lambda b: b.set_config("trail", {"digest_dir": ""}) and None,
    "AISB#9": lambda b: b.set_config("threats", {"enabled": False}) and None,
    "AISB#10": lambda b: _delete_template(b),
    "AISB#11": lambda b: _detect(b).delete_custom_metric("bastion_baseline_example"),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("baseline") / "data"
    assert _run("init", "--data-dir", str(path)).returncode == 0
    return path


def test_every_control_can_be_broken_by_hand() -> None:
    assert set(BREAK) == {c.id for c in CONTROLS}


def test_a_fresh_data_directory_fails_then_apply_passes_everything(data: Path) -> None:
    code, statuses = _check(data)
    assert code == 1 and "FAIL" in statuses.values()
    applied = _run("baseline", "apply", "--data-dir", str(data), "--alert-webhook", WEBHOOK)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "AISB#5: security profile bastion-baseline-ml" in applied.stdout
    code, statuses = _check(data)
    assert code == 0 and set(statuses.values()) == {"PASS"}, statuses
    again = _run("baseline", "apply", "--data-dir", str(data))
    assert again.returncode == 0
    assert "AISB#" not in again.stdout.split("┏")[0]  # nothing left to change


def _statuses(baseline: Baseline) -> dict[str, str]:
    return {c.id: "PASS" if c.check(baseline).passed else "FAIL" for c in CONTROLS}


@pytest.mark.parametrize("control", [c.id for c in CONTROLS])
def test_a_control_turned_off_by_hand_is_exactly_that_fail(data: Path, control: str) -> None:
    """In process (the subprocess runs above cover the CLI): apply, break one control by
    hand, check, apply again."""
    with _opened(data) as baseline:
        baseline.options.webhook_url = WEBHOOK
        for each in CONTROLS:
            each.apply(baseline)
        assert set(_statuses(baseline).values()) == {"PASS"}
        BREAK[control](baseline)
    with _opened(data) as baseline:  # as a new command would see it
        statuses = _statuses(baseline)
        assert {c for c, s in statuses.items() if s == "FAIL"} == {control}
        for each in CONTROLS:
            each.apply(baseline)
    with _opened(data) as baseline:
        assert set(_statuses(baseline).values()) == {"PASS"}
