"""The minimum period between a thing's metrics reports, with a real device (paho over
mutual TLS) and a hand-moved clock: reports sent every period with ordinary jitter are all
accepted; one sent far too early is refused with the time from which the next is
accepted; and the traffic a refused report carried still reaches the windowed sums."""

from __future__ import annotations

import json
import re

from support.clients import Client, wait_for

from .conftest import INTERVAL, Detect

JITTER = (-0.02, 0.02, -0.015, -0.02, 0.01, -0.02, 0.0, -0.019, 0.02, -0.02, -0.02, 0.005)
"""Offsets of each report from the period (±2 %): a device agent's timer on a busy host."""


def _report(rid: int, bytes_out: int, ports: tuple[int, ...] = (443,)) -> str:
    return json.dumps({
        "header": {"report_id": rid, "version": "1.0"},
        "metrics": {"listening_tcp_ports": {"ports": [{"port": p} for p in ports],
                                            "total": len(ports)},
                    "network_stats": {"bytes_in": 100, "bytes_out": bytes_out,
                                      "packets_in": 1, "packets_out": 2}}})


def _bytes_out(detect: Detect, thing: str, since: float) -> list[int]:
    values = detect.service.list_metric_values(thing, "aws:all-bytes-out", since - 1,
                                               detect.clock.time() + 1)
    return [v.count for _, v in values]


class Reporter:
    """A device sending metrics reports and reading the replies."""

    def __init__(self, detect: Detect) -> None:
        self.device = detect.make_device()
        # Keep-alive runs on the hand-moved clock: long enough for the clock's moves.
        self.client = Client(self.device, detect.running.port, client_id=self.device.name,
                             keepalive=3600).connect()
        self.topic = f"$aws/things/{self.device.name}/defender/metrics/json"
        self.client.subscribe(self.topic + "/+", qos=1)

    def send(self, rid: int, bytes_out: int) -> tuple[str, dict[str, object]]:
        """(``accepted`` | ``rejected``, the reply's body)."""
        self.client.publish(self.topic, _report(rid, bytes_out), qos=1)
        reply = self.client.expect()[0]
        body = json.loads(reply.payload)
        assert body["reportId"] == rid
        return reply.topic.rsplit("/", 1)[1], body


def test_reports_every_period_with_jitter_are_all_accepted(detect: Detect) -> None:
    reporter = Reporter(detect)
    try:
        assert reporter.send(1, 10)[0] == "accepted"
        for rid, jitter in enumerate(JITTER, 2):
            detect.clock.advance(INTERVAL * (1 + jitter))
            outcome, body = reporter.send(rid, 10)
            assert outcome == "accepted", (jitter, body)
    finally:
        reporter.client.disconnect()


def test_an_early_report_is_refused_with_its_retry_time_and_its_traffic_counted(
        detect: Detect) -> None:
    reporter = Reporter(detect)
    name = reporter.device.name
    group = detect.group(reporter.device)
    # Normal: less than 4,500 bytes out over 600 s. The device sends 1,000 + 1,000 +
    # 1,500 (refused, too early) + 1,000 = 4,500: only the refused report's bytes make it
    # abnormal.
    detect.profile(group, {"name": "bytes-out", "metric": "aws:all-bytes-out",
                           "criteria": {"comparisonOperator": "less-than",
                                        "value": {"count": 4500}, "durationSeconds": 600}})
    try:
        first_at = detect.clock.time()
        assert reporter.send(1, 1000)[0] == "accepted"
        detect.clock.advance(INTERVAL)
        assert reporter.send(2, 1000)[0] == "accepted"
        accepted_at = detect.clock.time()

        detect.clock.advance(INTERVAL / 2)
        outcome, body = reporter.send(3, 1500)
        assert outcome == "rejected"
        details = body["statusDetails"]
        assert isinstance(details, dict) and details["ErrorCode"] == "Throttled"
        found = re.search(r"retry after (\d+) \(epoch ms\)", details["ErrorMessage"])
        assert found, details
        retry_ms = int(found.group(1))
        assert retry_ms == round((accepted_at + 0.9 * INTERVAL) * 1000)

        # Just before the retry time: still refused (and held once, not twice: the same
        # report id replaces what was held for it).
        detect.clock.advance(retry_ms / 1000 - 0.5 - detect.clock.time())
        assert reporter.send(3, 1500)[0] == "rejected"
        detect.clock.advance(retry_ms / 1000 - detect.clock.time())
        assert reporter.send(4, 1000)[0] == "accepted"

        # Reports are ingested after the reply: wait for the last one's datapoint.
        wait_for(lambda: _bytes_out(detect, name, first_at) == [1000, 1000, 2500],
                 what="the held bytes in the next accepted report")
        wait_for(lambda: detect.service.list_active_violations(thing_name=name),
                 what="the windowed sum's alarm")
        (active,) = detect.service.list_active_violations(thing_name=name)
        assert active.last_violation_value.count == 4500
    finally:
        reporter.client.disconnect()


def test_a_refused_report_resent_is_counted_once(detect: Detect) -> None:
    reporter = Reporter(detect)
    name = reporter.device.name
    try:
        first_at = detect.clock.time()
        assert reporter.send(1, 1000)[0] == "accepted"
        detect.clock.advance(INTERVAL / 3)
        assert reporter.send(2, 700)[0] == "rejected"
        detect.clock.advance(INTERVAL / 3)
        assert reporter.send(3, 300)[0] == "rejected"
        detect.clock.advance(INTERVAL)
        assert reporter.send(2, 700)[0] == "accepted"  # the device retried report 2
        # Report 2 once, with report 3's held bytes added.
        wait_for(lambda: len(_bytes_out(detect, name, first_at)) == 2, what="report 2")
        assert _bytes_out(detect, name, first_at) == [1000, 1000]
    finally:
        reporter.client.disconnect()
