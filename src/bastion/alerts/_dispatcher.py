"""Delivering alerts: attempts, backoff, dead letters.

Theory of operation
-------------------
:meth:`AlertDispatcher.submit` may be called from any thread (audit runs in a worker
thread); it hops onto the dispatcher's event loop and starts one delivery task per
(target, alert). A delivery reads the target (disabled targets are skipped), then tries:
webhooks and e-mail in a worker thread (blocking sockets), MQTT by calling the broker's
publish function on the loop. A failure that may pass (network, 5xx, 429, SMTP 4xx) is
retried after the policy's backoff — waited with the injected ``sleep``, so tests move
time by hand — until the last attempt, after which the alert is written as a *dead
letter* with the last error. A failure that cannot pass (a 4xx other than 408/425/429,
no STARTTLS, a refused login) goes to the dead letters at once.

:meth:`AlertDispatcher.idle` waits until every delivery submitted so far has ended;
:meth:`AlertDispatcher.stop` lets running deliveries finish their current attempt, then
cancels the rest (their alerts are dead-lettered as "canceled at shutdown").
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from bastion.clock import Clock, SystemClock
from bastion.lifecycle import Component

from ._errors import DeliveryError, TargetNotFoundError
from ._model import (
    Alert,
    AlertTarget,
    DeadLetter,
    DeliveryOutcome,
    EmailSettings,
    MqttSettings,
    RetryPolicy,
    WebhookSettings,
)
from ._signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from ._targets import AlertTargetService
from ._transports import post_webhook, send_email

log = logging.getLogger("bastion.alerts")

MqttPublish = Callable[[str, bytes, int], None]
"""Publish ``(topic, payload, qos)`` on Bastion's broker; called on the event loop."""
Sleep = Callable[[float], Awaitable[None]]
WebhookPost = Callable[[WebhookSettings, bytes, dict[str, str]], int]
EmailSend = Callable[[EmailSettings, str | None, str, str], None]


def new_alert(kind: str, subject: str, body: Mapping[str, Any],
              now: datetime | None = None) -> Alert:
    """A new alert, dated ``now`` (default: the system clock's)."""
    return Alert(str(uuid.uuid4()), kind, subject, body,
                 now if now is not None else SystemClock().now())


class AlertDispatcher(Component):
    """Delivers alerts to targets with retries (see the module docstring).

    :param mqtt: the broker's publish function (MQTT targets fail without it).
    :param sleep: waits between attempts (default: the clock's :meth:`~Clock.sleep`).
    :param clock: the time of dead letters and signature timestamps, and the default
        waiting between attempts.
    :param post, send: the webhook and SMTP transports (tests may wrap them).
    """

    name = "alert-dispatcher"

    def __init__(self, targets: AlertTargetService, *, mqtt: MqttPublish | None = None,
                 policy: RetryPolicy | None = None, sleep: Sleep | None = None,
                 clock: Clock | None = None,
                 post: WebhookPost = post_webhook,
                 send: EmailSend = send_email) -> None:
        self._targets = targets
        self.mqtt = mqtt
        self.policy = policy or RetryPolicy()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._sleep: Sleep = sleep if sleep is not None else self._clock.sleep
        self._post = post
        self._send = send
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[DeliveryOutcome]] = set()
        self.outcomes: list[DeliveryOutcome] = []

    @property
    def clock(self) -> Clock:
        """The clock alerts are dated and retried by."""
        return self._clock

    @property
    def targets(self) -> AlertTargetService:
        return self._targets

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None

    def submit(self, target_name: str, alert: Alert) -> None:
        """Queue ``alert`` for ``target_name`` (any thread; never blocks).

        :raises RuntimeError: the dispatcher is not started.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("the alert dispatcher is not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._spawn(target_name, alert)
        else:
            loop.call_soon_threadsafe(self._spawn, target_name, alert)

    def _spawn(self, target_name: str, alert: Alert) -> None:
        task = asyncio.get_running_loop().create_task(self.deliver(target_name, alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every delivery submitted so far has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def deliver(self, target_name: str, alert: Alert) -> DeliveryOutcome:
        """Deliver one alert, retrying; dead-letter it after the last failure."""
        try:
            target = await asyncio.to_thread(self._targets.get, target_name)
        except TargetNotFoundError:
            log.warning("alert %s: target %s does not exist", alert.alert_id, target_name)
            return self._done(DeliveryOutcome(target_name, alert.alert_id, False, 0,
                                              ("no such target",)))
        if not target.enabled:
            return self._done(DeliveryOutcome(target_name, alert.alert_id, False, 0,
                                              ("target disabled",)))
        first = self._clock.now()
        errors: list[str] = []
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    await self._attempt(target, alert)
                    log.info("alert %s delivered to %s (attempt %d)", alert.alert_id,
                             target.name, attempt)
                    return self._done(DeliveryOutcome(target.name, alert.alert_id, True,
                                                      attempt, tuple(errors)))
                except DeliveryError as error:
                    errors.append(error.message)
                    log.warning("alert %s to %s: attempt %d failed: %s", alert.alert_id,
                                target.name, attempt, error.message)
                    if not error.retryable or attempt >= self.policy.attempts:
                        break
                await self._sleep(self.policy.delay(attempt).total_seconds())
        except asyncio.CancelledError:
            errors.append("canceled at shutdown")
        await asyncio.shield(asyncio.to_thread(self._dead_letter, target, alert, attempt,
                                               errors, first))
        return self._done(DeliveryOutcome(target.name, alert.alert_id, False, attempt,
                                          tuple(errors)))

    def _done(self, outcome: DeliveryOutcome) -> DeliveryOutcome:
        self.outcomes.append(outcome)
        return outcome

    def _dead_letter(self, target: AlertTarget, alert: Alert, attempts: int,
                     errors: list[str], first: datetime) -> None:
        self._targets.record_dead_letter(DeadLetter(
            str(uuid.uuid4()), target.name, target.kind, alert.subject, alert.document(),
            attempts, errors[-1] if errors else "unknown", first, self._clock.now()))
        log.error("alert %s to %s given up after %d attempt(s): %s", alert.alert_id,
                  target.name, attempts, errors[-1] if errors else "")

    async def _attempt(self, target: AlertTarget, alert: Alert) -> None:
        settings = target.settings
        if isinstance(settings, MqttSettings):
            if self.mqtt is None:
                raise DeliveryError("no broker to publish on", retryable=True)
            self.mqtt(settings.topic, alert.payload(), settings.qos)
            return
        secret = await asyncio.to_thread(self._targets.secret_of, target.name)
        if isinstance(settings, WebhookSettings):
            body = alert.payload()
            stamp = int(self._clock.time())
            headers = {TIMESTAMP_HEADER: str(stamp), DELIVERY_HEADER: alert.alert_id}
            if secret:
                headers[SIGNATURE_HEADER] = signature(secret.encode("utf-8"), stamp, body)
            await asyncio.to_thread(self._post, settings, body, headers)
            return
        text = _email_text(alert)
        await asyncio.to_thread(self._send, settings, secret, alert.subject, text)


def _email_text(alert: Alert) -> str:
    return (f"{alert.subject}\n\n"
            + json.dumps(alert.document(), indent=2, sort_keys=True, default=str) + "\n")


class ArnNotifier:
    """Notifications addressed by SNS-style target ARN (what audit configuration and
    PUBLISH_FINDING_TO_SNS carry), delivered by a dispatcher.

    :param kind: the alerts' ``kind`` (e.g. ``audit``).
    """

    def __init__(self, dispatcher: AlertDispatcher, kind: str) -> None:
        self._dispatcher = dispatcher
        self._kind = kind

    def target_exists(self, target_arn: str) -> bool:
        name = self._dispatcher.targets.name_of(target_arn)
        return name is not None and self._dispatcher.targets.exists(name)

    def notify(self, target_arn: str, subject: str, message: Mapping[str, Any]) -> None:
        name = self._dispatcher.targets.name_of(target_arn)
        if name is None:
            raise LookupError(f"{target_arn} is not a Bastion alert target")
        self._dispatcher.submit(name, new_alert(self._kind, subject, message,
                                                 self._dispatcher.clock.now()))
