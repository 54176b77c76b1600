"""A client whose id is not its thing's name is unregistered for detect (as in AWS): its
metrics are keyed by client id and only ``all/unregistered-things`` profiles see it."""

from __future__ import annotations

import uuid

from support.clients import Client

from .conftest import Detect

FLOOD = {"name": "msgs", "metric": "aws:num-messages-sent",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 10}}}


def test_unregistered_client_is_keyed_by_client_id(detect: Detect) -> None:
    device = detect.make_device()
    service = detect.service
    profiles = []
    for name, target in (("reg", "all/registered-things"),
                         ("unreg", "all/unregistered-things")):
        profile = f"{name}-{uuid.uuid4().hex[:6]}"
        service.create_security_profile(profile, behaviors=[FLOOD], now=detect.clock.time())
        service.attach(profile, service.target_arn(target))
        profiles.append(profile)
    client_id = f"gateway-{uuid.uuid4().hex[:6]}"
    a = Client(device, detect.running.port, client_id=client_id).connect()
    try:
        for _ in range(15):
            a.publish("telemetry/x", b"x", qos=1)
        events = detect.tick()
        assert [(e.thing_name, e.security_profile_name.split("-")[0]) for e in events] == [
            (client_id, "unreg")]
    finally:
        a.disconnect()
        for profile in profiles:  # fleet-wide profiles must not outlive the test
            service.delete_security_profile(profile)
