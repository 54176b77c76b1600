"""Alert delivery to real receivers: a signed HTTPS webhook, e-mail over SMTP with
STARTTLS, an MQTT publish; retries with backoff and a dead letter after the last try."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest

from bastion.account import Account
from bastion.alerts import (
    AlertDispatcher,
    AlertTargetService,
    InvalidTargetError,
    RetryPolicy,
    TargetKind,
    new_alert,
    verify_signature,
)
from bastion.pki import Keystore
from bastion.store import Store

from .conftest import Mailbox, Webhook

POLICY = RetryPolicy(attempts=4, initial=timedelta(seconds=2), multiplier=2.0,
                     maximum=timedelta(seconds=5))


def _targets(store: Store, keystore: Keystore) -> AlertTargetService:
    return AlertTargetService(store, sealer=keystore, account=Account("us-east-1",
                                                                      "123456789012"))


class Waits:
    """The dispatcher's sleep: records the backoff instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _deliver(dispatcher: AlertDispatcher, target: str, **body: object):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        await dispatcher.start()
        try:
            return await dispatcher.deliver(target, new_alert("test", "Subject line", body))
        finally:
            await dispatcher.stop()
    return asyncio.run(run())


def test_webhook_is_signed_with_the_targets_key(alert_store: Store, keystore: Keystore,
                                                webhook: Webhook, ca_file: str) -> None:
    targets = _targets(alert_store, keystore)
    created = targets.create_webhook("ops-hook", webhook.url, ca_file=ca_file)
    assert created.signing_key and created.target.has_secret
    assert created.target.arn == "arn:aws:sns:us-east-1:123456789012:ops-hook"
    # The key is stored sealed only.
    with alert_store.transaction(readonly=True) as uow:
        row = uow.alert_targets.get("ops-hook")
    assert row is not None and row.sealed_secret is not None
    assert created.signing_key.encode() not in row.sealed_secret
    outcome = _deliver(AlertDispatcher(targets, policy=POLICY, sleep=Waits()), "ops-hook",
                       finding="f-1")
    assert (outcome.delivered, outcome.attempts) == (True, 1)
    (request,) = webhook.received
    assert request.path == "/hooks/bastion"
    assert request.document["message"] == {"finding": "f-1"}
    assert request.document["subject"] == "Subject line"
    key = created.signing_key.encode()
    stamp = request.headers["x-bastion-timestamp"]
    assert verify_signature(key, request.headers["x-bastion-signature"], stamp, request.body,
                            now=int(time.time()))
    # Tampering, another key, or a stale timestamp all fail.
    assert not verify_signature(key, request.headers["x-bastion-signature"], stamp,
                                request.body + b" ", now=int(time.time()))
    assert not verify_signature(b"another key", request.headers["x-bastion-signature"], stamp,
                                request.body, now=int(time.time()))
    assert not verify_signature(key, request.headers["x-bastion-signature"], stamp,
                                request.body, now=int(stamp) + 3600)
    assert request.headers["x-bastion-delivery"] == request.document["alertId"]


def test_webhook_retries_with_backoff(alert_store: Store, keystore: Keystore,
                                      webhook: Webhook, ca_file: str) -> None:
    targets = _targets(alert_store, keystore)
    targets.create_webhook("flaky", webhook.url, ca_file=ca_file)
    webhook.statuses = [500, 503, 429]
    waits = Waits()
    outcome = _deliver(AlertDispatcher(targets, policy=POLICY, sleep=waits), "flaky")
    assert (outcome.delivered, outcome.attempts) == (True, 4)
    assert waits.delays == [2.0, 4.0, 5.0]  # exponential, capped at the maximum
    assert len(webhook.received) == 4
    assert len({r.headers["x-bastion-delivery"] for r in webhook.received}) == 1
    assert targets.dead_letters()[0] == []


def test_dead_letter_after_the_last_attempt(alert_store: Store, keystore: Keystore,
                                            webhook: Webhook, ca_file: str) -> None:
    targets = _targets(alert_store, keystore)
    targets.create_webhook("down", webhook.url, ca_file=ca_file)
    webhook.statuses = [500] * 10
    waits = Waits()
    outcome = _deliver(AlertDispatcher(targets, policy=POLICY, sleep=waits), "down",
                       task="t-9")
    assert (outcome.delivered, outcome.attempts) == (False, 4)
    assert waits.delays == [2.0, 4.0, 5.0]
    letters, _ = targets.dead_letters(target_name="down")
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.kind, letter.attempts, letter.subject) == (TargetKind.WEBHOOK, 4,
                                                              "Subject line")
    assert "HTTP 500" in letter.last_error
    assert letter.document["message"] == {"task": "t-9"}


def test_client_errors_and_untrusted_receivers(alert_store: Store, keystore: Keystore,
                                               webhook: Webhook, ca_file: str) -> None:
    targets = _targets(alert_store, keystore)
    targets.create_webhook("rejects", webhook.url, ca_file=ca_file)
    webhook.statuses = [403]
    waits = Waits()
    outcome = _deliver(AlertDispatcher(targets, policy=POLICY, sleep=waits), "rejects")
    assert (outcome.delivered, outcome.attempts, waits.delays) == (False, 1, [])
    # Without the receiver's CA, TLS verification fails: retried, then dead-lettered;
    # the receiver never sees the body.
    targets.create_webhook("untrusted", webhook.url)
    before = len(webhook.received)
    outcome = _deliver(AlertDispatcher(targets, policy=POLICY, sleep=Waits()), "untrusted")
    assert (outcome.delivered, outcome.attempts) == (False, 4)
    assert "certificate" in outcome.errors[-1].lower()
    assert len(webhook.received) == before
    with pytest.raises(InvalidTargetError):
        targets.create_webhook("clear", webhook.url.replace("https", "http"))


def test_email_over_starttls(alert_store: Store, keystore: Keystore, smtp_server: Mailbox,
                             ca_file: str) -> None:
    targets = _targets(alert_store, keystore)
    targets.create_email("oncall", host="127.0.0.1", port=smtp_server.port,
                         sender="bastion@example.com",
                         recipients=["oncall@example.com", "sec@example.com"],
                         username="bastion", password="smtp-secret", ca_file=ca_file)
    outcome = _deliver(AlertDispatcher(targets, policy=POLICY, sleep=Waits()), "oncall",
                       finding="f-2")
    assert outcome.delivered
    assert smtp_server.logins == ["bastion"]
    (message,) = smtp_server.messages
    assert message["Subject"] == "Subject line"
    assert smtp_server.envelopes == [("bastion@example.com",
                                      ["oncall@example.com", "sec@example.com"])]
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    document = json.loads(text.split("\n", 2)[2])
    assert document["message"] == {"finding": "f-2"}


def test_email_refuses_a_server_without_starttls(alert_store: Store, keystore: Keystore,
                                                 plain_smtp_server: Mailbox) -> None:
    targets = _targets(alert_store, keystore)
    targets.create_email("legacy", host="127.0.0.1", port=plain_smtp_server.port,
                         sender="bastion@example.com", recipients=["ops@example.com"])
    waits = Waits()
    outcome = _deliver(AlertDispatcher(targets, policy=POLICY, sleep=waits), "legacy")
    assert (outcome.delivered, outcome.attempts, waits.delays) == (False, 1, [])
    assert "STARTTLS" in outcome.errors[0]
    assert plain_smtp_server.messages == []
    assert targets.dead_letters(target_name="legacy")[0][0].kind is TargetKind.EMAIL


def test_mqtt_target_publishes_the_alert(alert_store: Store, keystore: Keystore) -> None:
    targets = _targets(alert_store, keystore)
    targets.create_mqtt("alerts-topic", "bastion/alerts", qos=1)
    published: list[tuple[str, bytes, int]] = []
    dispatcher = AlertDispatcher(targets, policy=POLICY, sleep=Waits(),
                                 mqtt=lambda t, p, q: published.append((t, p, q)))
    assert _deliver(dispatcher, "alerts-topic", n=1).delivered
    ((topic, payload, qos),) = published
    assert (topic, qos) == ("bastion/alerts", 1)
    assert json.loads(payload)["message"] == {"n": 1}
    # Disabled targets are skipped, unknown ones reported.
    targets.set_enabled("alerts-topic", False)
    assert not _deliver(dispatcher, "alerts-topic").delivered
    assert _deliver(dispatcher, "nope").errors == ("no such target",)
    with pytest.raises(InvalidTargetError):
        targets.create_mqtt("wild", "bastion/#")
