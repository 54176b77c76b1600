"""The message path's IoT-log plug point: a session's MessageLog is called for its
messages only while its log level is INFO or more verbose."""

from __future__ import annotations

from bastion.broker import LOG_DEBUG, LOG_DISABLED, LOG_ERROR, LOG_INFO, Session
from support.broker_pair import BrokerPair, run


class Recorder:
    """A MessageLog that keeps what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, int]] = []

    def publish_in(self, session: object, topic: str, qos: int) -> None:
        assert isinstance(session, Session)
        self.calls.append(("in", session.client_id, topic, qos))

    def publish_out(self, session: object, topic: str, qos: int) -> None:
        assert isinstance(session, Session)
        self.calls.append(("out", session.client_id, topic, qos))


def test_the_log_is_called_only_at_info_or_more_verbose() -> None:
    async def scenario(pair: BrokerPair) -> None:
        sub = await pair.connect("sub")
        await sub.subscribe("t/#", qos=1)
        pub = await pair.connect("pub")
        recorder = Recorder()
        sessions = pair.broker.sessions
        assert sessions["pub"].log_level == LOG_DISABLED  # nobody set a level: off
        for level in (LOG_DISABLED, LOG_ERROR):
            sessions["pub"].set_log(level, recorder)
            sessions["sub"].set_log(level, recorder)
            await pub.publish("t/quiet", b"x", qos=1)
            await pair.settle()
        assert recorder.calls == []
        assert len(sub.messages()) == 2

        sessions["pub"].set_log(LOG_INFO, recorder)
        sessions["sub"].set_log(LOG_DEBUG, recorder)
        await pub.publish("t/loud", b"x", qos=1)
        await pair.settle()
        assert recorder.calls == [("in", "pub", "t/loud", 1), ("out", "sub", "t/loud", 1)]

    run(scenario)
