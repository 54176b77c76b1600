"""A real Bastion with its REST API and IoT logs (a file, and syslog to a UDP receiver on
loopback), boto3 pointed at it, and devices registered through the API."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from bastion.api import MemoryTrail, Role, StaticCredentials
from bastion.broker import BrokerLimits
from bastion.config import ApiConfig, Config, IoTLogsConfig, MQTTConfig
from bastion.datadir import init_data_dir
from bastion.iotlogs import IoTLogs
from support.clients import DeviceFiles, wait_for
from support.running import RunningBastion

KEY = ("AKIAADMIN0000000001", "admin-secret/abcdefghijklmnopqrstuvwxyz01")
NO_RETRIES = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                        read_timeout=10)
ROLE_ARN = "arn:aws:iam::123456789012:role/iot-logging"
DEVICE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/*"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": ["arn:aws:iot:*:*:topic/allowed/*", "arn:aws:iot:*:*:topic/$aws/things/*"]},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": "arn:aws:iot:*:*:topicfilter/allowed/*"},
]})


class SyslogReceiver:
    """A UDP socket on loopback that keeps every datagram (a syslog server)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@dataclass
class Logged:
    """The running Bastion, boto3, its log file and what syslog and the ERROR listener
    received."""

    running: RunningBastion
    iot: Any
    path: Path
    syslog: SyslogReceiver
    errors: list[dict[str, Any]] = field(default_factory=list)
    out: Path = Path()

    @property
    def logs(self) -> IoTLogs:
        logs = self.running.app.iot_logs
        assert logs is not None
        return logs

    def entries(self) -> list[dict[str, Any]]:
        """Every entry written so far (after the writer caught up)."""
        assert self.logs.writer.flush()
        rotated = sorted(self.path.parent.glob(self.path.name + ".*"),
                         key=lambda p: -int(p.suffix[1:]))
        files = [*rotated, self.path] if self.path.exists() else rotated
        return [json.loads(line) for f in files for line in f.read_text().splitlines()
                if line]

    def device(self, prefix: str = "dev") -> DeviceFiles:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        iot = self.iot
        iot.create_thing(thingName=name)
        created = iot.create_keys_and_certificate(setAsActive=True)
        iot.attach_thing_principal(thingName=name, principal=created["certificateArn"])
        iot.create_policy(policyName=f"{name}-policy", policyDocument=DEVICE_POLICY)
        iot.attach_policy(policyName=f"{name}-policy", target=created["certificateArn"])
        cert, key = self.out / f"{name}.cert.pem", self.out / f"{name}.key.pem"
        cert.write_text(created["certificatePem"])
        key.write_text(created["keyPair"]["PrivateKey"])
        key.chmod(0o600)
        return DeviceFiles(name, cert, key, self.running.datadir.ca_cert_path,
                           created["certificateId"], created["certificateArn"])

    def wait_levels(self, predicate: Any, what: str) -> None:
        """Until the log levels the API set are in force (read back in the background)."""
        wait_for(lambda: predicate(self.logs.table), 10.0, what)


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Logged]:
    datadir = init_data_dir(tmp_path / "data")
    syslog = SyslogReceiver()
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                    limits=BrokerLimits(connect_timeout=1.5, tls_handshake_timeout=1.5),
                    api=ApiConfig(host="127.0.0.1", port=0),
                    # Small files: every test's entries span rotated files too.
                    iot_logs=IoTLogsConfig(syslog_address=syslog.address, max_bytes=2048,
                                           files_kept=100))
    running = RunningBastion(config, datadir, credentials=StaticCredentials(
        {KEY[0]: (KEY[1], Role("admin"))}), trail=MemoryTrail()).start()
    try:
        api = running.app.api
        assert api is not None
        iot = boto3.client("iot", endpoint_url=api.url, region_name="us-east-1",
                           aws_access_key_id=KEY[0], aws_secret_access_key=KEY[1],
                           verify=str(datadir.ca_cert_path), config=NO_RETRIES)
        out = tmp_path / "devices"
        out.mkdir()
        result = Logged(running, iot, datadir.log_dir / "aws-iot.jsonl", syslog, out=out)
        running.call(lambda: result.logs.on_error(result.errors.append))
        yield result
    finally:
        running.stop()
        syslog.close()
