"""A real Bastion with its REST API (HTTPS, access keys), the audit scheduler on a clock
the tests move by hand, alert delivery that does not wait between attempts, and boto3
clients; plus real receivers for notifications (:mod:`support.receivers`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from bastion.api import MemoryTrail, Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, MQTTConfig
from bastion.datadir import DataDir, init_data_dir
from bastion.defender.audit import AuditScheduler
from support.clients import DeviceFiles, wait_for
from support.clock import ManualClock
from support.receivers import Mailbox, Webhook, ca_file, smtp_server, test_ca, webhook
from support.running import RunningBastion

__all__ = ["Mailbox", "Webhook", "ca_file", "smtp_server", "test_ca", "webhook"]

REGION = "us-east-1"
ACCOUNT = "123456789012"
ADMIN = ("AKIAAUDITADMIN000001", "audit-admin-secret/abcdefghijklmnopqrstuv")
AUDITOR = ("AKIAAUDITREADER00001", "audit-reader-secret/abcdefghijklmnopqrst")
NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                        read_timeout=20)


class InstantSleep:
    """Alert backoff without waiting (the delays are recorded)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class AuditBastion:
    running: RunningBastion
    url: str
    datadir: DataDir
    clock: ManualClock
    sleeps: InstantSleep

    def client(self, service: str = "iot", key: tuple[str, str] = ADMIN) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key[0], aws_secret_access_key=key[1],
                            verify=str(self.datadir.ca_cert_path), config=NO_RETRIES)

    @property
    def defender(self) -> Any:
        services = self.running.app.services
        assert services.audit is not None
        return SimpleNamespace(audit=services.audit.audit, alert_targets=services.alert_targets,
                               alerts=services.alerts,
                               scheduler=self.running.app.component(AuditScheduler))

    def wait_task(self, iot: Any, task_id: str) -> dict[str, Any]:
        """Describe the audit task once it has finished (polls with a deadline)."""
        result: dict[str, Any] = {}

        def done() -> bool:
            result.update(iot.describe_audit_task(taskId=task_id))
            return bool(result["taskStatus"] != "IN_PROGRESS")
        wait_for(done, timeout=30, what=f"audit task {task_id}")
        return result


@pytest.fixture(scope="session")
def audit_bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditBastion]:
    datadir = init_data_dir(tmp_path_factory.mktemp("audit") / "data")
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(host="127.0.0.1", port=0))
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    sleeps = InstantSleep()
    running = RunningBastion(
        config, datadir, clock=clock, alert_sleep=sleeps, trail=MemoryTrail(),
        credentials=StaticCredentials({ADMIN[0]: (ADMIN[1], Role.ADMIN),
                                       AUDITOR[0]: (AUDITOR[1], Role.AUDITOR)}))
    running.start()
    try:
        api = running.app.api
        assert api is not None
        yield AuditBastion(running, api.url, datadir, clock, sleeps)
    finally:
        running.stop()


@pytest.fixture(scope="session")
def iot(audit_bastion: AuditBastion) -> Any:
    return audit_bastion.client()


@pytest.fixture
def unique() -> Callable[[str], str]:
    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"
    return make


def device_through_api(bastion: AuditBastion, iot: Any, name: str, out: Path,
                       policy_document: str) -> DeviceFiles:
    """A thing, keys and certificate, and a policy, with API calls only."""
    iot.create_thing(thingName=name)
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName=name, principal=created["certificateArn"])
    iot.create_policy(policyName=f"{name}-policy", policyDocument=policy_document)
    iot.attach_policy(policyName=f"{name}-policy", target=created["certificateArn"])
    out.mkdir(parents=True, exist_ok=True)
    cert, key = out / f"{name}.cert.pem", out / f"{name}.key.pem"
    cert.write_text(created["certificatePem"])
    key.write_text(created["keyPair"]["PrivateKey"])
    key.chmod(0o600)
    return DeviceFiles(name, cert, key, bastion.datadir.ca_cert_path,
                       created["certificateId"], created["certificateArn"])
