"""``GET /metrics`` on the API's HTTPS port, scraped as Prometheus does (bearer token from
the data directory's owner-only file) and parsed with ``prometheus_client``'s own text
parser: the counters move with real MQTT traffic, rules and API calls. Without the token,
with another one, or with SigV4 instead, the answer is 401 and nothing of the fleet, and
the refusal is trailed."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from bastion.api import MemoryTrail
from bastion.config import ApiConfig, Config, MetricsConfig, MQTTConfig
from bastion.datadir import init_data_dir
from bastion.metrics import ScrapeTokenError, new_token
from support.clients import Client, DeviceFiles, read_until_closed, tls_socket, wait_for
from support.running import RunningBastion

from .conftest import KEYS, REGION, ApiBastion, device_through_api

DOCS = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
CLUSTER_ONLY = {"bastion_node_info"}


@dataclass(frozen=True)
class Scraped:
    status: int
    headers: dict[str, str]
    body: bytes

    def families(self) -> dict[str, Metric]:
        assert self.status == 200, self.body
        return {family.name: family
                for family in text_string_to_metric_families(self.body.decode())}

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` with exactly ``labels`` (0 when absent)."""
        for family in self.families().values():
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0


def scrape(api: ApiBastion, authorization: str | None, *, path: str = "/metrics",
           headers: dict[str, str] | None = None) -> Scraped:
    """One HTTPS GET, as a scraper sends it."""
    host, port = api.url.removeprefix("https://").rsplit(":", 1)
    assert isinstance(api.verify, str)
    context = ssl.create_default_context(cafile=api.verify)
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    sent = dict(headers or {})
    if authorization is not None:
        sent["Authorization"] = authorization
    try:
        connection.request("GET", path, headers=sent)
        response = connection.getresponse()
        return Scraped(response.status, {k.lower(): v for k, v in response.getheaders()},
                       response.read())
    finally:
        connection.close()


def token_of(api: ApiBastion) -> str:
    return api.datadir.metrics_token_path.read_text().strip()


def bearer(api: ApiBastion) -> str:
    return f"Bearer {token_of(api)}"


# -- the token ---------------------------------------------------------------------------


def test_the_token_is_created_owner_only_on_first_start(api_bastion: ApiBastion) -> None:
    path = api_bastion.datadir.metrics_token_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token_of(api_bastion)) >= 32


# -- counters move with real traffic -----------------------------------------------------


def test_messages_and_connections_move_the_broker_counters(
        api_bastion: ApiBastion, iot: Any, unique: Callable[[str], str],
        tmp_path: Path) -> None:
    name = unique("metered")
    device = device_through_api(api_bastion, iot, name, tmp_path)
    before = scrape(api_bastion, bearer(api_bastion))
    assert before.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    client = Client(device, api_bastion.mqtt_port, client_id=name).connect()
    try:
        published = 7
        for n in range(published):
            client.publish(f"{name}/reading", str(n), qos=1)  # waits for the PUBACK
        after = scrape(api_bastion, bearer(api_bastion))
        assert (after.value("bastion_mqtt_messages_in_total")
                - before.value("bastion_mqtt_messages_in_total")) == published
        assert (after.value("bastion_mqtt_connections_opened_total")
                - before.value("bastion_mqtt_connections_opened_total")) == 1
        assert after.value("bastion_mqtt_connections") >= 1
        assert after.value("bastion_build_info", version="0.1.0") == 1
    finally:
        client.disconnect()


def test_a_matched_rule_moves_its_counters(api_bastion: ApiBastion, iot: Any,
                                            unique: Callable[[str], str],
                                            tmp_path: Path) -> None:
    name = unique("ruled")
    rule = name.replace("-", "_")
    device = device_through_api(api_bastion, iot, name, tmp_path)
    iot.create_topic_rule(ruleName=rule, topicRulePayload={
        "sql": f"SELECT n FROM '{name}/in' WHERE n > 0",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{"republish": {"roleArn": "arn:aws:iam::123456789012:role/r",
                                   "topic": f"{name}/out", "qos": 0}}]})
    client = Client(device, api_bastion.mqtt_port, client_id=name).connect()
    try:
        def matched() -> float:
            return scrape(api_bastion, bearer(api_bastion)).value(
                "bastion_rule_matched_total", rule=rule)

        # The engine learns of the new rule (and may start its process) a moment after
        # the API answered: publish until the first match is counted.
        deadline = time.monotonic() + 20
        while matched() < 1:
            assert time.monotonic() < deadline, "the rule never matched"
            client.publish(f"{name}/in", json.dumps({"n": 1}), qos=1)
            time.sleep(0.2)
        time.sleep(0.5)  # what was in flight is counted (the child reports 4x a second)
        before = scrape(api_bastion, bearer(api_bastion))
        for n in (1, 2, 0, 3):  # n = 0 reaches the engine but not the WHERE clause
            client.publish(f"{name}/in", json.dumps({"n": n}), qos=1)

        def moved() -> bool:
            now = scrape(api_bastion, bearer(api_bastion))
            return (now.value("bastion_rule_actions_succeeded_total", rule=rule)
                    - before.value("bastion_rule_actions_succeeded_total", rule=rule)) >= 3
        deadline = time.monotonic() + 10
        while not moved():
            assert time.monotonic() < deadline, "the rule's actions were never counted"
            time.sleep(0.1)
        time.sleep(0.5)  # nothing more arrives: the deltas are exact
        after = scrape(api_bastion, bearer(api_bastion))

        def delta(metric: str, **labels: str) -> float:
            return after.value(metric, **labels) - before.value(metric, **labels)

        assert delta("bastion_rule_matched_total", rule=rule) == 3
        assert delta("bastion_rule_actions_succeeded_total", rule=rule) == 3
        assert delta("bastion_rule_actions_failed_total", rule=rule) == 0
        assert delta("bastion_rules_messages_offered_total") == 4
        assert delta("bastion_rules_messages_evaluated_total") == 4
    finally:
        client.disconnect()
        iot.delete_topic_rule(ruleName=rule)


def test_api_calls_are_counted_by_operation_and_outcome(api_bastion: ApiBastion,
                                                         iot: Any) -> None:
    allowed = {"service": "iot", "operation": "ListThings", "outcome": "allowed",
               "code": "200"}
    denied = {"service": "iot", "operation": "CreateThing", "outcome": "denied",
              "code": "403"}
    before = scrape(api_bastion, bearer(api_bastion))
    iot.list_things()
    iot.list_things()
    with pytest.raises(api_bastion.client(role="auditor").exceptions.ClientError):
        api_bastion.client(role="auditor").create_thing(thingName="not-by-an-auditor")
    after = scrape(api_bastion, bearer(api_bastion))
    assert (after.value("bastion_api_requests_total", **allowed)
            - before.value("bastion_api_requests_total", **allowed)) == 2
    assert (after.value("bastion_api_requests_total", **denied)
            - before.value("bastion_api_requests_total", **denied)) == 1


def _deltas(api: ApiBastion, before: Scraped) -> Callable[..., float]:
    after = scrape(api, bearer(api))

    def delta(metric: str, **labels: str) -> float:
        return after.value(metric, **labels) - before.value(metric, **labels)

    return delta


def test_messages_and_bytes_by_direction_and_qos(api_bastion: ApiBastion, iot: Any,
                                                 unique: Callable[[str], str],
                                                 tmp_path: Path) -> None:
    name = unique("directed")
    device = device_through_api(api_bastion, iot, name, tmp_path)
    client = Client(device, api_bastion.mqtt_port, client_id=name).connect()
    try:
        client.subscribe(f"{name}/echo", qos=1)
        before = scrape(api_bastion, bearer(api_bastion))
        for payload in ("a" * 10, "b" * 20, "c" * 30):
            client.publish(f"{name}/echo", payload, qos=1)
        for payload in ("d" * 5, "e" * 7):
            client.publish(f"{name}/echo", payload, qos=0)
        client.expect(5)  # every delivery made: the counters are final
        delta = _deltas(api_bastion, before)
        assert delta("bastion_mqtt_messages_total", direction="in", qos="1") == 3
        assert delta("bastion_mqtt_messages_total", direction="in", qos="0") == 2
        assert delta("bastion_mqtt_messages_total", direction="out", qos="1") == 3
        assert delta("bastion_mqtt_messages_total", direction="out", qos="0") == 2
        assert delta("bastion_mqtt_messages_total", direction="in", qos="2") == 0
        assert delta("bastion_mqtt_payload_bytes_total", direction="in") == 72
        assert delta("bastion_mqtt_payload_bytes_total", direction="out") == 72
    finally:
        client.disconnect()


def test_queue_depth_and_qos0_drops_of_an_offline_session(
        api_bastion: ApiBastion, iot: Any, unique: Callable[[str], str],
        tmp_path: Path) -> None:
    name = unique("offline")
    device = device_through_api(api_bastion, iot, name, tmp_path)
    absent = Client(device, api_bastion.mqtt_port, client_id=f"{name}-sub", clean=False)
    absent.connect()
    absent.subscribe(f"{name}/q1", qos=1)
    absent.subscribe(f"{name}/q0", qos=0)
    absent.disconnect()
    publisher = Client(device, api_bastion.mqtt_port, client_id=f"{name}-pub").connect()
    try:
        before = scrape(api_bastion, bearer(api_bastion))
        for n in range(4):
            publisher.publish(f"{name}/q1", str(n), qos=1)
        for n in range(3):
            publisher.publish(f"{name}/q0", str(n), qos=1)  # delivered at QoS 0: dropped
        delta = _deltas(api_bastion, before)
        assert delta("bastion_mqtt_queued_messages") == 4
        assert delta("bastion_mqtt_queued_bytes") == 4
        assert delta("bastion_mqtt_messages_dropped_total", reason="qos0_not_written") == 3
        back = Client(device, api_bastion.mqtt_port, client_id=f"{name}-sub", clean=False)
        back.connect()
        try:
            back.expect(4)
            wait_for(lambda: scrape(api_bastion, bearer(api_bastion)).value(
                "bastion_mqtt_queued_messages") == before.value(
                "bastion_mqtt_queued_messages"), 10, "the queue drained")
        finally:
            back.disconnect()
    finally:
        publisher.disconnect()


def test_tls_handshake_failures_by_reason(api_bastion: ApiBastion, tmp_path: Path) -> None:
    import trustme

    stranger = trustme.CA().issue_cert("stranger")
    cert, key = tmp_path / "stranger.cert.pem", tmp_path / "stranger.key.pem"
    stranger.cert_chain_pems[0].write_to_path(str(cert))
    stranger.private_key_pem.write_to_path(str(key))
    unknown = DeviceFiles("stranger", cert, key, api_bastion.datadir.ca_cert_path)
    before = scrape(api_bastion, bearer(api_bastion))

    def attempt(device: DeviceFiles | None) -> None:
        try:
            sock = tls_socket(device, api_bastion.mqtt_port, ca=api_bastion.datadir.ca_cert_path)
        except (ssl.SSLError, OSError):
            return  # refused during the handshake (TLS 1.2)
        with sock:  # TLS 1.3: the server's refusal comes with the first read
            read_until_closed(sock)

    attempt(unknown)
    attempt(None)

    def counted() -> bool:
        now = scrape(api_bastion, bearer(api_bastion))
        return all(now.value("bastion_tls_handshake_failures_total", reason=reason)
                   - before.value("bastion_tls_handshake_failures_total", reason=reason) == 1
                   for reason in ("unknown_ca", "peer_did_not_return_a_certificate"))

    wait_for(counted, 10, "both failed handshakes counted by reason")


def test_detect_evaluation_and_violations_are_counted(
        api_bastion: ApiBastion, iot: Any, unique: Callable[[str], str],
        tmp_path: Path) -> None:
    thing = unique("watched")
    device = device_through_api(api_bastion, iot, thing, tmp_path)
    group = unique("watchers")
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    profile = unique("sp")
    iot.create_security_profile(securityProfileName=profile, behaviors=[{
        "name": "ports", "metric": "aws:listening-tcp-ports",
        "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443]}}}])
    group_arn = iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
    iot.attach_security_profile(securityProfileName=profile,
                                securityProfileTargetArn=group_arn)
    before = scrape(api_bastion, bearer(api_bastion))
    client = Client(device, api_bastion.mqtt_port, client_id=thing).connect()
    try:
        topic = f"$aws/things/{thing}/defender/metrics/json"
        client.subscribe(topic + "/accepted", qos=1)
        client.publish(topic, json.dumps({
            "header": {"report_id": 1, "version": "1.0"},
            "metrics": {"listening_tcp_ports": {"ports": [{"port": 443}, {"port": 23}]}}}),
            qos=1)
        client.expect()

        def alarmed() -> bool:
            now = scrape(api_bastion, bearer(api_bastion))
            return (now.value("bastion_detect_violation_events_total", type="in-alarm")
                    - before.value("bastion_detect_violation_events_total", type="in-alarm")
                    ) >= 1  # the server is shared: other tests' devices may alarm too
        wait_for(alarmed, 10, "the in-alarm event counted")
        delta = _deltas(api_bastion, before)
        assert delta("bastion_detect_evaluation_seconds_count") >= 1
        assert delta("bastion_detect_evaluation_seconds_sum") > 0
        assert delta("bastion_detect_datapoints_total") >= 1
        assert delta("bastion_detect_active_violations") >= 1
    finally:
        client.disconnect()
        iot.detach_security_profile(securityProfileName=profile,
                                    securityProfileTargetArn=group_arn)
        iot.delete_security_profile(securityProfileName=profile)


def test_audit_runs_and_store_transactions_are_counted(api_bastion: ApiBastion,
                                                       iot: Any) -> None:
    before = scrape(api_bastion, bearer(api_bastion))
    iot.update_account_audit_configuration(auditCheckConfigurations={
        "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": {"enabled": True}})
    task = iot.start_on_demand_audit_task(
        targetCheckNames=["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"])["taskId"]
    wait_for(lambda: iot.describe_audit_task(taskId=task)["taskStatus"] == "COMPLETED",
             30, "the audit")
    completed = {"type": "ON_DEMAND_AUDIT_TASK", "status": "COMPLETED"}
    wait_for(lambda: scrape(api_bastion, bearer(api_bastion)).value(
        "bastion_audit_runs_total", **completed) - before.value(
        "bastion_audit_runs_total", **completed) == 1, 10, "the audit run counted")
    delta = _deltas(api_bastion, before)
    assert delta("bastion_store_transaction_seconds_count", kind="write") >= 2
    assert delta("bastion_store_transaction_seconds_sum", kind="write") > 0
    assert delta("bastion_store_transaction_seconds_count", kind="read") >= 1


def test_every_documented_metric_is_served_and_every_served_one_documented(
        api_bastion: ApiBastion) -> None:
    documented = set(re.findall(r"^\| `(bastion_[a-z_]+)`", DOCS.read_text(), re.MULTILINE))
    served = set()
    for family in scrape(api_bastion, bearer(api_bastion)).families().values():
        served.add(f"{family.name}_total" if family.type == "counter" else family.name)
    assert served == documented - CLUSTER_ONLY


# -- refused without the token -----------------------------------------------------------


def _refused_without_leaking(answer: Scraped) -> None:
    assert answer.status == 401
    assert answer.headers["www-authenticate"].startswith('Bearer realm="bastion-metrics"')
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.body.decode()
    assert text.startswith("401 Unauthorized: ")
    assert "bastion_" not in text and "metered" not in text


def test_no_token_is_401_and_shows_nothing(api_bastion: ApiBastion) -> None:
    answer = scrape(api_bastion, None)
    _refused_without_leaking(answer)
    assert "no bearer token" in answer.body.decode()
    assert "error=" not in answer.headers["www-authenticate"]


@pytest.mark.parametrize("authorization", [
    pytest.param("Bearer " + "A" * 43, id="another-token"),
    pytest.param("Bearer ", id="empty-token"),
    pytest.param("Bearer", id="scheme-only"),
    pytest.param("TOKEN", id="token-without-scheme"),
    pytest.param("Basic TOKEN", id="token-as-basic"),
    pytest.param("Bearer TOKENx", id="token-with-a-suffix"),
    pytest.param("Bearer TOKEN[:-1]", id="token-without-its-last-character"),
])
def test_a_wrong_token_is_401_and_shows_nothing(api_bastion: ApiBastion,
                                                authorization: str) -> None:
    token = token_of(api_bastion)
    authorization = (authorization.replace("TOKEN[:-1]", token[:-1])
                     .replace("TOKEN", token))
    answer = scrape(api_bastion, authorization)
    _refused_without_leaking(answer)
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_the_token_in_the_query_string_is_not_accepted(api_bastion: ApiBastion) -> None:
    answer = scrape(api_bastion, None,
                    path=f"/metrics?access_token={token_of(api_bastion)}")
    _refused_without_leaking(answer)


def test_an_admin_sigv4_signature_is_no_scrape_token(api_bastion: ApiBastion) -> None:
    """The API's keys do not open the metrics: only the scrape token does."""
    request = AWSRequest(method="GET", url=f"{api_bastion.url}/metrics")
    SigV4Auth(Credentials(*KEYS["admin"]), "iot", REGION).add_auth(request)
    answer = scrape(api_bastion, request.headers["Authorization"],
                    headers={"X-Amz-Date": request.headers["X-Amz-Date"]})
    _refused_without_leaking(answer)


def test_a_refused_scrape_is_trailed_without_the_token(api_bastion: ApiBastion) -> None:
    wrong = "Bearer " + new_token()
    scrape(api_bastion, wrong)
    record = api_bastion.trail.records[-1]
    assert (record.service, record.operation, record.outcome, record.http_status,
            record.error_code) == ("bastion", "ScrapeMetrics", "denied", 401,
                                   "UnauthorizedException")
    assert wrong.split()[1] not in repr(record.parameters)
    served_before = len(api_bastion.trail.records)
    assert scrape(api_bastion, bearer(api_bastion)).status == 200
    assert len(api_bastion.trail.records) == served_before  # a served scrape is not


# -- configuration -----------------------------------------------------------------------


def _config(**metrics: Any) -> Config:
    return Config(mqtt=MQTTConfig(host="127.0.0.1", port=0),
                  api=ApiConfig(host="127.0.0.1", port=0), metrics=MetricsConfig(**metrics))


def test_a_token_file_others_can_read_is_refused_at_start(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    exposed = tmp_path / "exposed.token"
    exposed.write_text(new_token())
    exposed.chmod(0o644)
    running = RunningBastion(_config(token_file=str(exposed)), datadir, trail=MemoryTrail())
    with pytest.raises(ScrapeTokenError, match="chmod 600"):
        running.start()
    running.stop()


def test_a_configured_token_file_is_the_one_used(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    shared = tmp_path / "shared.token"
    token = new_token()
    shared.write_text(token + "\n")
    shared.chmod(0o600)
    running = RunningBastion(_config(token_file=str(shared)), datadir,
                             trail=MemoryTrail()).start()
    try:
        api = running.app.api
        assert api is not None
        served = ApiBastion(running, MemoryTrail(), api.url, datadir,
                            str(datadir.ca_cert_path))
        assert scrape(served, f"Bearer {token}").status == 200
        assert not datadir.metrics_token_path.exists()
    finally:
        running.stop()


def test_metrics_disabled_leaves_the_path_to_sigv4(tmp_path: Path) -> None:
    datadir = init_data_dir(tmp_path / "data")
    running = RunningBastion(_config(enabled=False), datadir, trail=MemoryTrail()).start()
    try:
        api = running.app.api
        assert api is not None and running.app.metrics is None
        served = ApiBastion(running, MemoryTrail(), api.url, datadir,
                            str(datadir.ca_cert_path))
        answer = scrape(served, "Bearer " + new_token())
        assert answer.status == 403 and b"bastion_" not in answer.body
        assert not datadir.metrics_token_path.exists()
    finally:
        running.stop()
