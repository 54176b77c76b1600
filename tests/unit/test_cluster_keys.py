"""Session registry keys: every client id maps to a key NATS accepts, and back."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bastion.cluster import client_of, session_key

NATS_KEY = re.compile(r"[-/_=.A-Za-z0-9]+")


@given(st.text(min_size=1, max_size=128).filter(lambda s: "\x00" not in s))
def test_every_client_id_round_trips_through_a_valid_key(client_id: str) -> None:
    key = session_key(client_id)
    assert NATS_KEY.fullmatch(key) and not key.endswith(".")
    assert client_of(key) == client_id


def test_distinct_client_ids_get_distinct_keys() -> None:
    ids = ["a", "A", "a.b", "a/b", "a b", "ä", "", "=", "-_"]
    keys = [session_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
