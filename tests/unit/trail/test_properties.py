"""Properties of redaction and of the record encoding (Hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bastion.pki import Keystore
from bastion.trail import (
    GENESIS_HASH,
    KEYED_FORMAT,
    UNKEYED_FORMAT,
    Problem,
    TrailKeys,
    TrailRecord,
    canonical_json,
    compute_hash,
    record_from_json,
    redact,
    verify_chain,
)

KEYS = TrailKeys.from_keystore(Keystore.generate())
CANARY = "CANARY-7f3a"
SECRET_KEYS = ["privateKey", "SecretAccessKey", "password", "sessionToken", "keyPair",
               "Authorization", "sasl.plain.password"]

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).filter(
    lambda name: CANARY not in name)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(max_size=20), st.binary(max_size=20),
                    st.datetimes(timezones=st.just(UTC)))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=4)), max_leaves=20)


@st.composite
def with_secrets(draw: st.DrawFn) -> dict[str, Any]:
    """A parameter dict with a canary under a secret-named key somewhere inside."""
    params = draw(st.dictionaries(names, values, max_size=5))
    secret: Any = draw(st.sampled_from([CANARY, CANARY.encode(), [CANARY], {"x": CANARY}]))
    key = draw(st.sampled_from(SECRET_KEYS))
    path = draw(st.lists(names, max_size=3))
    target = params
    for step in path:
        if not isinstance(target.get(step), dict):
            target[step] = {}
        target = target[step]
    target[key] = secret
    assert CANARY in repr(params)
    return params


@given(with_secrets(), st.sampled_from(["iot", "iot-data", "bastion"]),
       st.sampled_from(["CreateThing", "Publish", "CreateAccessKey"]))
def test_redaction_is_json_safe_and_never_keeps_a_secret(params: dict[str, Any], service: str,
                                                         operation: str) -> None:
    out = redact(service, operation, params)
    text = canonical_json(out)  # sorted, ASCII, no NaN: raises if not JSON-safe
    assert CANARY not in text
    assert json.loads(text) == out


records = st.builds(
    dict,
    access_key_id=st.text(max_size=30), role=st.one_of(st.none(), st.sampled_from(
        ["admin", "operator", "auditor"])), source_ip=st.text(max_size=20),
    service=st.text(max_size=10), operation=st.text(max_size=20),
    parameters=st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3),
    outcome=st.sampled_from(["allowed", "denied", "error"]),
    error_code=st.one_of(st.none(), st.text(max_size=10)),
    http_status=st.integers(100, 599),
    time=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(UTC)),
)


@given(st.lists(records, min_size=1, max_size=5), st.integers(0, 5))
def test_exported_records_round_trip_and_verify(fields: list[dict[str, Any]],
                                                unkeyed: int) -> None:
    """The first ``unkeyed`` records predate the keyed trail, the rest are keyed."""
    chain: list[TrailRecord] = []
    previous = GENESIS_HASH
    for sequence, item in enumerate(fields, 1):
        values = dict(item, parameters=canonical_json(item["parameters"]),
                      time=item["time"].replace(microsecond=item["time"].microsecond
                                                // 1000 * 1000))
        keys = None if sequence <= unkeyed else KEYS
        digest = compute_hash(sequence=sequence, previous_hash=previous, keys=keys, **values)
        chain.append(TrailRecord(sequence=sequence, previous_hash=previous, hash=digest,
                                 format=UNKEYED_FORMAT if keys is None else KEYED_FORMAT,
                                 **values))
        previous = digest
    exported = [json.loads(json.dumps(record.to_json())) for record in chain]
    assert [record_from_json(line) for line in exported] == chain
    assert verify_chain(chain, keys=KEYS).ok
    if len(chain) > unkeyed:  # a keyed record needs this installation's key
        other = verify_chain(chain, keys=TrailKeys.from_keystore(Keystore.generate()))
        assert (other.ok, other.first_broken_sequence) == (False, unkeyed + 1)
        assert verify_chain(chain, keys=None).problem is Problem.KEY_UNAVAILABLE
