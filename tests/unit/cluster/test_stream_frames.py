"""The cluster's batches: frames packed and unpacked give back every message, in order,
whatever the split; a PUBLISH's topic is read without decoding the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.broker import Message, encode_message
from bastion.clock import SystemClock
from bastion.cluster._stream import BATCH_BYTES, frame, pack, peek_topic, unpack

topics = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                 blacklist_characters="+#\x00"),
                          min_size=0, max_size=20), min_size=1, max_size=5).map(
    "/".join).filter(bool)


@given(st.lists(st.tuples(st.text(max_size=30), st.binary(max_size=3000)), max_size=40))
def test_frames_come_back_in_order(items: list[tuple[str, bytes]]) -> None:
    batches = pack([frame(origin, data) for origin, data in items])
    assert [one for batch in batches for one in unpack(batch)] == items


def test_a_batch_stays_under_its_size_unless_one_message_is_bigger() -> None:
    frames = [frame("c", b"x" * 100_000) for _ in range(12)] + [frame("c", b"y" * 700_000)]
    batches = pack(frames)
    assert all(len(b) <= BATCH_BYTES for b in batches[:-1])
    assert len(batches[-1]) > BATCH_BYTES  # the big one, alone
    assert sum(len(list(unpack(b))) for b in batches) == 13


def test_a_cut_batch_is_refused() -> None:
    whole = frame("client", b"payload")
    with pytest.raises(ValueError):
        list(unpack(whole[:-1]))


@given(topics, st.binary(max_size=70_000), st.sampled_from([0, 1, 2]))
def test_the_topic_is_read_without_decoding(topic: str, payload: bytes, qos: int) -> None:
    data = encode_message(Message(topic, payload, qos, False), SystemClock())
    assert peek_topic(data) == topic


def test_a_truncated_publish_has_no_topic() -> None:
    assert peek_topic(b"\x32") is None
    assert peek_topic(b"\x32\x80") is None
