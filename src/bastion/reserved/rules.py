"""The rules engine on the broker: the tap that offers it accepted messages, Basic Ingest
(``$aws/rules/<rule>/...``), and the way republish actions reach the message path.

:class:`RulesTap` is the broker's :class:`~bastion.broker.MessageTap`: for each message
entering :meth:`Broker.publish` it asks the engine whether any rule wants the topic
(a cached lookup) and, if so, offers a copy of what the rules need; nothing else happens
on the message path. :class:`BasicIngestTopics` consumes ``$aws/rules/...`` publishes
(the tap has already offered them), so that, as in AWS IoT, no subscriber receives them.
:class:`BrokerRepublisher` schedules each republished message on the broker's loop and
tells the tap which rule published it (a rule does not fire on its own republications).
"""

from __future__ import annotations

import asyncio

from bastion.broker import Broker, Message, Session
from bastion.mqtt import NO_PROPERTIES, Properties
from bastion.rules import (
    Republication,
    RulesProcess,
    basic_ingest_target,
)


class RulesTap:
    """Offers the engine every accepted message whose topic a rule wants."""

    def __init__(self, engine: RulesProcess) -> None:
        self._engine = engine
        self.republishing: str | None = None
        """The rule whose republished message is being published (set on the loop)."""

    def accepted(self, message: Message, sender: Session | None) -> None:
        engine = self._engine
        if not engine.wants(message.topic):
            return
        props = message.properties
        engine.take(
            message.topic, message.payload, message.origin,
            sender.principal.certificate_id if sender is not None else None,
            self.republishing,
            None if props is NO_PROPERTIES else (
                props.payload_format_indicator, props.content_type, props.response_topic,
                props.correlation_data, props.user_properties))


class BasicIngestTopics:
    """``$aws/rules/<rule>/<topic>``: for the named rule only, never for subscribers."""

    def handles(self, topic: str) -> bool:
        return topic.startswith("$aws/rules/")

    def on_publish(self, broker: Broker, session: Session, message: Message) -> bool:
        return basic_ingest_target(message.topic) is not None


class BrokerRepublisher:
    """A republish action's message, handed to the broker on its loop (thread-safe)."""

    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop) -> None:
        self._broker = broker
        self._loop = loop
        self.tap: RulesTap | None = None
        """The tap to tell which rule republished (set once the tap exists)."""

    def __call__(self, item: Republication) -> None:
        """:raises RuntimeError: the loop is closed (the broker is stopping)."""
        properties = NO_PROPERTIES
        if (item.payload_format_indicator is not None or item.content_type is not None
                or item.response_topic is not None or item.correlation_data is not None
                or item.message_expiry_interval is not None or item.user_properties):
            properties = Properties(
                payload_format_indicator=item.payload_format_indicator,
                content_type=item.content_type, response_topic=item.response_topic,
                correlation_data=item.correlation_data,
                message_expiry_interval=item.message_expiry_interval,
                user_properties=item.user_properties)
        broker = self._broker
        expires_at = None
        if item.message_expiry_interval is not None:
            expires_at = broker.clock.monotonic() + item.message_expiry_interval
        message = Message(item.topic, item.payload, item.qos, False, properties, None,
                          expires_at)
        tap = self.tap

        def publish() -> None:
            if tap is None:
                broker.publish(message)
                return
            tap.republishing = item.rule_name
            try:
                broker.publish(message)
            finally:
                tap.republishing = None

        self._loop.call_soon_threadsafe(publish)
