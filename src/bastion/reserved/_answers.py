"""What request-answer services on the broker share (fleet provisioning, streams).

AWS IoT delivers some services' answers only to the connection that asked
(:func:`answer_requester`): nobody else sees them, even when subscribed to the same
topic. The client must still be subscribed to the answer's topic and be allowed
``iot:Receive`` on it. :class:`InFlight` caps the requests one client has in progress.
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


class InFlight:
    """How many requests each client has in progress, capped (runs on the loop only).

    :param limit: the most one client may have.
    """

    __slots__ = ("_counts", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._counts: dict[str, int] = {}

    def enter(self, client_id: str) -> bool:
        """Count one more request of ``client_id``; ``False`` (not counted): at the cap."""
        count = self._counts.get(client_id, 0)
        if count >= self._limit:
            return False
        self._counts[client_id] = count + 1
        return True

    def leave(self, client_id: str) -> None:
        """One request of ``client_id`` is done."""
        left = self._counts.get(client_id, 1) - 1
        if left > 0:
            self._counts[client_id] = left
        else:
            self._counts.pop(client_id, None)
