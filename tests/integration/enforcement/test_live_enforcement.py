"""Registry + policies enforced by the broker on real TLS connections, and changes of
security state reaching live sessions within a second."""

from __future__ import annotations

import json
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from bastion.registry import CaCertificateStatus
from support.clients import V5, V311, Client, wait_for

ARN = "arn:aws:iot:us-east-1:123456789012"
WITHIN = 1.0  # seconds a change may take to reach a live session


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resources, **extra):
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def deny(actions, resources):
    return {"Effect": "Deny", "Action": actions, "Resource": resources}


@pytest.fixture
def own_device(bastion, make_device):
    """A device with the least-privilege policy ``bastion device create`` attaches."""
    return make_device(policy=None)


@pytest.mark.parametrize("version", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_device_reaches_its_own_topics(bastion, own_device, version):
    me = own_device.name
    client = Client(own_device, bastion.port, version=version, client_id=me).connect()
    codes = client.subscribe(f"{me}/#", 1)
    assert [getattr(c, "value", c) for c in codes] == [1]
    client.publish(f"{me}/telemetry", b"21.5", qos=1)
    assert client.expect(1)[0].payload == b"21.5"
    client.disconnect()


def test_device_must_use_its_thing_name_as_client_id(bastion, own_device):
    client = Client(own_device, bastion.port, version=V5, client_id="someone-else")
    client.connect(expect_success=False)
    assert client.connack.value == 0x87  # Not authorized


def test_mqtt5_denied_subscribe_and_publish_get_0x87(bastion, own_device, make_device):
    me = own_device.name
    victim = make_device()
    watcher = Client(victim, bastion.port, version=V5).connect()
    watcher.subscribe(f"{victim.name}/#", 1)
    client = Client(own_device, bastion.port, version=V5, client_id=me).connect()
    assert [c.value for c in client.subscribe(f"{victim.name}/#", 1)] == [0x87]
    info = client.publish(f"{victim.name}/cmd", b"takeover", qos=1)
    assert client.acks[info.mid].value == 0x87
    watcher.expect_none()
    # The connection survives a denial (MQTT 5) and keeps its own rights.
    client.publish(f"{me}/ok", b"fine", qos=1)
    assert client.acks and not client.disconnected.is_set()
    client.disconnect()
    watcher.disconnect()


def test_mqtt311_denied_subscribe_gets_0x80_and_denied_publish_closes(bastion, own_device):
    me = own_device.name
    client = Client(own_device, bastion.port, version=V311, client_id=me).connect()
    assert client.subscribe("other-device/#", 1) == [128]
    client.publish("other-device/cmd", b"x", qos=1, wait=False)
    assert client.disconnected.wait(WITHIN + 1)


def test_unknown_certificate_from_trusted_ca_is_refused(bastion, datadir, tmp_path):
    from bastion.datadir import issue_device_files
    from support.clients import DeviceFiles

    files = issue_device_files(datadir, "never-registered", tmp_path)
    device = DeviceFiles("never-registered", files.cert_path, files.key_path,
                         files.root_ca_path)
    client = Client(device, bastion.port, version=V5, client_id="never-registered")
    client.connect(expect_success=False)
    assert client.connack.value == 0x87


@pytest.mark.parametrize("status", ["REVOKED", "INACTIVE"])
def test_revoking_or_deactivating_closes_the_live_session(bastion, make_device, status):
    device = make_device()
    client = Client(device, bastion.port, version=V5).connect()
    bastion.app.plane.identity.update_certificate(device.certificate_id, status)
    assert client.disconnected.wait(WITHIN), "not closed within a second"
    again = Client(device, bastion.port, version=V5)
    again.connect(expect_success=False)
    assert again.connack.value == 0x87


def test_detaching_the_policy_refuses_the_next_publish(bastion, make_device):
    plane = bastion.app.plane
    device = make_device(policy=None)
    plane.policies.create_policy("pub-only-mine", policy(
        allow("iot:Connect", "*"), allow(["iot:Publish", "iot:Subscribe", "iot:Receive"], "*")))
    plane.policies.attach_policy("pub-only-mine", device.certificate_arn)
    plane.policies.detach_policy("bastion-device-least-privilege", device.certificate_arn)
    client = Client(device, bastion.port, version=V5, client_id="free-id").connect()
    client.subscribe("anything/#", 1)
    client.publish("anything/1", b"a", qos=1)
    client.expect(1)
    plane.policies.detach_policy("pub-only-mine", device.certificate_arn)
    # Without any policy even iot:Connect is gone: the session is closed.
    assert client.disconnected.wait(WITHIN)


def test_replacing_the_default_policy_version_takes_effect_live(bastion, make_device):
    plane = bastion.app.plane
    device = make_device(policy=None)
    name = "versioned-policy"
    plane.policies.create_policy(name, policy(
        allow("iot:Connect", "*"), allow(["iot:Publish", "iot:Receive"], f"{ARN}:topic/v/*"),
        allow("iot:Subscribe", f"{ARN}:topicfilter/v/*")))
    plane.policies.attach_policy(name, device.certificate_arn)
    client = Client(device, bastion.port, version=V5, client_id="versioned").connect()
    client.subscribe("v/#", 1)
    info = client.publish("v/secret", b"1", qos=1)
    assert client.acks[info.mid].value == 0
    client.expect(1)
    plane.policies.create_policy_version(name, policy(
        allow("iot:Connect", "*"), allow(["iot:Publish", "iot:Receive"], f"{ARN}:topic/v/public"),
        allow("iot:Subscribe", f"{ARN}:topicfilter/v/*")), set_as_default=True)
    deadline = time.monotonic() + WITHIN
    while True:
        info = client.publish("v/secret", b"2", qos=1)
        if client.acks[info.mid].value == 0x87:
            break
        assert time.monotonic() < deadline, "old policy version still in force"
    # And iot:Receive now stops deliveries of v/secret while v/public flows.
    client.publish("v/public", b"ok", qos=1)
    got = client.expect(1)
    assert [m.topic for m in got] == ["v/public"]
    client.disconnect()


def test_thing_group_policy_applies_to_members_only(bastion, make_device):
    plane = bastion.app.plane
    member = make_device(policy=None)
    outsider = make_device(policy=None)
    plane.registry.create_thing_group("floor-7")
    plane.policies.create_policy("floor-7-telemetry", policy(
        allow("iot:Publish", f"{ARN}:topic/floors/7/${{iot:Connection.Thing.ThingName}}")))
    plane.policies.attach_policy("floor-7-telemetry", plane.registry.describe_thing_group(
        "floor-7").thing_group_arn)
    plane.registry.add_thing_to_thing_group(thing_group_name="floor-7",
                                            thing_name=member.name)
    inside = Client(member, bastion.port, version=V5, client_id=member.name).connect()
    outside = Client(outsider, bastion.port, version=V5, client_id=outsider.name).connect()
    ok = inside.publish(f"floors/7/{member.name}", b"t", qos=1)
    refused = outside.publish(f"floors/7/{outsider.name}", b"t", qos=1)
    assert inside.acks[ok.mid].value in (0, 0x10)
    assert outside.acks[refused.mid].value == 0x87
    # Removing the member from the group takes the right away on the live session.
    plane.registry.remove_thing_from_thing_group(thing_group_name="floor-7",
                                                 thing_name=member.name)
    deadline = time.monotonic() + WITHIN
    while inside.acks[inside.publish(f"floors/7/{member.name}", b"t", qos=1).mid].value != 0x87:
        assert time.monotonic() < deadline, "group policy still applied after removal"
    inside.disconnect()
    outside.disconnect()


def test_detaching_the_thing_removes_thing_based_rights(bastion, make_device):
    plane = bastion.app.plane
    device = make_device(policy=None)
    client = Client(device, bastion.port, version=V5, client_id=device.name).connect()
    plane.registry.detach_thing_principal(device.name, device.certificate_arn)
    # The least-privilege policy needs IsAttached for iot:Connect: the session closes.
    assert client.disconnected.wait(WITHIN)


def test_receive_deny_filters_deliveries_of_a_wildcard_subscription(bastion, make_device):
    plane = bastion.app.plane
    device = make_device(policy=None)
    plane.policies.create_policy("no-secrets", policy(
        allow("iot:*", "*"), deny("iot:Receive", f"{ARN}:topic/site/secret/*")))
    plane.policies.attach_policy("no-secrets", device.certificate_arn)
    sub = Client(device, bastion.port, version=V5, client_id="reader").connect()
    sub.subscribe("site/#", 1)
    pub = Client(make_device(), bastion.port, version=V5).connect()
    pub.publish("site/secret/plan", b"hidden", qos=1)
    pub.publish("site/public/news", b"shown", qos=1)
    (message,) = sub.expect(1)
    assert message.topic == "site/public/news"
    sub.expect_none()
    sub.disconnect()
    pub.disconnect()


def test_deactivating_the_ca_drops_its_devices(bastion, make_device, datadir):
    plane = bastion.app.plane
    device = make_device()
    client = Client(device, bastion.port, version=V5).connect()
    ca_id = plane.identity.describe_certificate(device.certificate_id).ca_certificate_id
    assert ca_id is not None
    try:
        plane.identity.update_ca_certificate(ca_id, new_status=CaCertificateStatus.INACTIVE)
        assert client.disconnected.wait(WITHIN)
        again = Client(device, bastion.port, version=V5)
        again.connect(expect_success=False)
        assert again.connack.value == 0x87
    finally:
        plane.identity.update_ca_certificate(ca_id, new_status=CaCertificateStatus.ACTIVE)


def test_lifecycle_events_have_aws_fields(bastion, make_device):
    watcher = Client(make_device(), bastion.port, version=V5).connect()
    watcher.subscribe("$aws/events/+/+/lifecycle-1", 1)
    device = make_device()
    client = Client(device, bastion.port, version=V5, client_id="lifecycle-1").connect()
    client.subscribe("lc/#", 0)
    client.disconnect()
    messages = watcher.expect(3)
    by_topic = {m.topic: json.loads(m.payload) for m in messages}
    connected = by_topic["$aws/events/presence/connected/lifecycle-1"]
    assert connected["eventType"] == "connected"
    assert connected["principalIdentifier"] == device.certificate_id
    assert connected["ipAddress"] == "127.0.0.1"
    assert {"clientId", "timestamp", "sessionIdentifier", "versionNumber"} <= connected.keys()
    subscribed = by_topic["$aws/events/subscriptions/subscribed/lifecycle-1"]
    assert subscribed["topics"] == ["lc/#"]
    disconnected = by_topic["$aws/events/presence/disconnected/lifecycle-1"]
    assert disconnected["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert disconnected["clientInitiatedDisconnect"] is True
    assert disconnected["versionNumber"] == connected["versionNumber"]
    assert disconnected["sessionIdentifier"] == connected["sessionIdentifier"]
    watcher.disconnect()


def test_shared_certificate_is_allowed_but_recorded(bastion, make_device, caplog):
    device = make_device()
    first = Client(device, bastion.port, version=V5, client_id="shared-a").connect()
    second = Client(device, bastion.port, version=V5, client_id="shared-b").connect()
    assert not first.disconnected.is_set() and not second.disconnected.is_set()
    first.disconnect()
    second.disconnect()
    journal = bastion.app.journal
    assert journal.shared_certificates_seen >= 1
    assert any("in use by several client ids at once: shared-a, shared-b" in r.getMessage()
               for r in caplog.records)

    def rows():
        bastion.run(journal.flush())
        with bastion.app.plane.store.transaction() as uow:
            return uow.connections.of_certificate(device.certificate_id)

    wait_for(lambda: len(rows()) == 2 and all(r.disconnected_at for r in rows()), 5,
             "both connections journaled and closed")
    a, b = rows()
    assert {a.client_id, b.client_id} == {"shared-a", "shared-b"}
    assert b.connected_at < a.disconnected_at  # they overlapped in time


def test_rebinding_a_connected_device_reads_its_certificate_back(bastion, make_device):
    # A connected principal no longer carries its certificate (memory per idle device):
    # re-binding it after the gate's certificate cache let go reads the certificate from
    # the registry, and certificate policy variables still resolve.
    plane = bastion.app.plane
    device = make_device(policy=None)
    common_name = x509.load_pem_x509_certificate(device.cert.read_bytes()).subject \
        .get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    name = "certificate-variable-policy"
    plane.policies.create_policy(name, policy(
        allow("iot:Connect", "*"),
        allow("iot:Publish", f"{ARN}:topic/cn/${{iot:Certificate.Subject.CommonName}}/*")))
    plane.policies.attach_policy(name, device.certificate_arn)
    client = Client(device, bastion.port, version=V5, client_id="cn-variable").connect()
    assert client.acks[client.publish(f"cn/{common_name}/a", b"1", qos=1).mid].value < 0x80
    gate = bastion.app.broker.authorizer
    bastion.call(lambda: gate._certificate_fields.clear())  # as if evicted
    plane.policies.create_policy("extra-topic", policy(allow("iot:Publish", f"{ARN}:topic/extra")))
    plane.policies.attach_policy("extra-topic", device.certificate_arn)  # re-binds live
    deadline = time.monotonic() + WITHIN
    while client.acks[client.publish("extra", b"2", qos=1).mid].value >= 0x80:
        assert time.monotonic() < deadline, "the new policy never applied"
    assert client.acks[client.publish(f"cn/{common_name}/b", b"3", qos=1).mid].value < 0x80
    assert client.acks[client.publish("cn/someone-else/b", b"4", qos=1).mid].value == 0x87
    assert bastion.call(lambda: device.certificate_id in gate._certificate_fields)
    client.disconnect()
