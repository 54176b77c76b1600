"""ML Detect's fleet events with real devices: when half of a peer group changes
together during a job (a firmware rollout), no device gets a violation; one fleet event
reaches the profile's alert target, naming the job in progress."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from support.clients import Client, DeviceFiles

from .conftest import Detect, Webhook

ML = {"mlDetectionConfig": {"confidenceLevel": "LOW"}, "consecutiveDatapointsToAlarm": 1,
      "consecutiveDatapointsToClear": 1}


def test_a_rollout_is_one_fleet_event_annotated_with_its_job(
        detect: Detect, webhook: Webhook, ca_file: str,
        make_device: Callable[..., DeviceFiles]) -> None:
    registry = detect.app.plane.registry
    kind = f"meter-{uuid.uuid4().hex[:6]}"
    registry.create_thing_type(kind)
    devices = [make_device() for _ in range(10)]
    for device in devices:
        registry.update_thing(device.name, thing_type_name=kind,
                              attributes={"firmware": "7.0"})
    group = detect.group(*devices)
    targets = detect.app.services.alerts.targets
    hook = f"fleet-{uuid.uuid4().hex[:6]}"
    targets.create_webhook(hook, webhook.url, ca_file=ca_file)
    detect.profile(group, {"name": "msgs", "metric": "aws:num-messages-sent",
                           "criteria": ML},
                   alert_targets={"SNS": {"alertTargetArn": targets.arn(hook),
                                          "roleArn": "arn:aws:iam::123456789012:role/x"}})
    clients = [Client(d, detect.running.port, client_id=d.name).connect() for d in devices]
    try:
        def traffic(boosted: int) -> None:
            for i, client in enumerate(clients):
                count = 60 if i < boosted else 5 + i % 2
                for _ in range(count):
                    client.publish(f"meter/{i}", b"kWh", qos=1)

        for _ in range(4):
            traffic(0)
            assert detect.tick() == []
        job_id = f"firmware-8-{uuid.uuid4().hex[:6]}"
        detect.app.services.jobs.create_job(
            job_id, targets=[registry.describe_thing(d.name).thing_arn for d in devices[:5]],
            document='{"operation":"firmware-update","version":"8.0"}')
        traffic(5)  # half the group, now on the new firmware, sends 12x more
        assert detect.tick() == []
        assert webhook.arrived.wait(10)
        text = json.dumps(webhook.received[0].document)
        assert "fleet event" in text and job_id in text and kind in text
        event = detect.service.learning.fleet_events[-1]
        assert event.jobs == (job_id,) and event.abnormal >= 5 and event.devices == 10
        # the moved devices learned their new level: nothing follows
        traffic(5)
        assert detect.tick() == []
    finally:
        for client in clients:
            client.disconnect()
