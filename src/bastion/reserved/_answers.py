"""Answers that go to the requesting client alone (fleet provisioning, streams).

AWS IoT delivers some services' answers only to the connection that asked: nobody else
sees them, even when subscribed to the same topic. The client must still be subscribed
to the answer's topic and be allowed ``iot:Receive`` on it.
"""

from __future__ import annotations

import logging

from bastion.broker import Action, Message, Session
from bastion.mqtt import parse_shared_subscription, topic_matches

log = logging.getLogger("bastion.reserved")


def answer_requester(session: Session, topic: str, payload: bytes, max_qos: int) -> bool:
    """Deliver ``payload`` on ``topic`` to ``session`` alone, at the highest QoS of its
    matching subscriptions (at most ``max_qos``); ``False``: not allowed to receive it,
    or not subscribed (the answer is dropped)."""
    if not session.allowed(Action.RECEIVE, topic):
        log.info("client %r: iot:Receive denied on %r; answer dropped", session.client_id,
                 topic)
        return False
    qos: int | None = None
    sub_ids: list[int] = []
    for topic_filter, options in session.subscriptions.items():
        if parse_shared_subscription(topic_filter) is None and topic_matches(topic_filter,
                                                                             topic):
            qos = max(qos or 0, options.qos)
            if options.subscription_id:
                sub_ids.append(options.subscription_id)
    if qos is None:
        log.info("client %r is not subscribed to %r; answer dropped", session.client_id,
                 topic)
        return False
    delivery = min(qos, max_qos)
    session.deliver(Message(topic, payload, delivery, False), delivery, False, tuple(sub_ids))
    return True
