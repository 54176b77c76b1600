"""The composition root as a user of ``bastion serve`` meets it: what runs, in which
order, one set of services behind every door, and a shutdown that leaves nothing open."""

from __future__ import annotations

import socket
from collections.abc import Callable

from bastion.config import (
    ApiConfig,
    AuditConfig,
    Config,
    CredentialsConfig,
    DetectConfig,
    MQTTConfig,
)
from bastion.datadir import DataDir
from bastion.reserved import JobsTopics, ProvisioningTopics, ShadowTopics
from conftest import TEST_LIMITS
from support.clients import Client, DeviceFiles
from support.running import RunningBastion

EXPECTED_ORDER = ["store", "trail-digests", "sessions", "connection-journal", "fleet-index",
                  "alert-dispatcher", "jobs-scheduler", "audit-scheduler", "rotation-keeper",
                  "threat-watch", "detect", "provisioning-hooks", "rules",
                  "iot-logs", "device-trust", "domain-routing",
                  "mqtt-listeners", "credentials-provider", "api"]


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_every_component_runs_in_order_and_stops(datadir: DataDir,
                                                 make_device: Callable[..., DeviceFiles]
                                                 ) -> None:
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0), limits=TEST_LIMITS,
                    api=ApiConfig(host="127.0.0.1", port=0),
                    credentials=CredentialsConfig(enabled=True, host="127.0.0.1", port=0),
                    audit=AuditConfig(enabled=True), detect=DetectConfig(enabled=True))
    running = RunningBastion(config, datadir).start()
    try:
        app = running.app
        assert [c.name for c in app.components] == EXPECTED_ORDER
        services = app.services
        # One service behind both doors: the reserved topics hold the very objects the
        # API's handlers reach through the directory.
        handlers = app.broker.reserved_handlers
        shadow = next(h for h in handlers if isinstance(h, ShadowTopics))
        jobs = next(h for h in handlers if isinstance(h, JobsTopics))
        assert shadow.service is services.shadow and jobs.service is services.jobs
        provisioning = next(h for h in handlers if isinstance(h, ProvisioningTopics))
        assert provisioning.service is services.provisioning
        assert provisioning.rotation is services.rotation.service
        assert app.rules is not None and app.rules.service is services.rules
        assert app.api is not None and app.credentials is not None
        mqtt_port, api_port = running.port, app.api_port
        credentials_port = app.credentials.port
        device = make_device()
        client = Client(device, mqtt_port, client_id=device.name)
        client.connect()  # and stays connected through the shutdown
    finally:
        running.stop()
    # Nothing is left listening; the listeners stopped before the journal, so the journal
    # recorded the disconnect of the client the shutdown cut.
    assert _refused(mqtt_port) and _refused(api_port) and _refused(credentials_port)
    with services.store.transaction(readonly=True) as uow:
        (row,) = uow.connections.of_certificate(device.certificate_id)
    assert row.client_id == device.name
    assert row.disconnected_at is not None
    assert row.disconnect_reason == "SERVER_INITIATED_DISCONNECT"
