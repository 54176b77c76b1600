"""Shadow documents: merge, null removal, metadata, delta and the messages (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.shadow import (
    EMPTY_STATE,
    ShadowState,
    compute_delta,
    delete_accepted,
    delta_message,
    documents_message,
    get_accepted,
    json_equal,
    merge_state,
    metadata_of,
    update_accepted,
)

T0, T1 = 1_700_000_000, 1_700_000_100


def ts(value: int = T0) -> dict[str, int]:
    return {"timestamp": value}


# -- merge ------------------------------------------------------------------------------

MERGES = [
    pytest.param({}, {"a": 1}, {"a": 1}, id="add"),
    pytest.param({"a": 1}, {"a": 2}, {"a": 2}, id="replace-value"),
    pytest.param({"a": 1, "b": 2}, {"a": None}, {"b": 2}, id="null-removes"),
    pytest.param({"a": 1}, {"zz": None}, {"a": 1}, id="null-of-missing-is-noop"),
    pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}, {"a": {"x": 1, "y": 3}},
                 id="objects-merge"),
    pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"x": None}}, {"a": {"y": 2}},
                 id="nested-null-removes"),
    pytest.param({"a": [1, 2, 3]}, {"a": [9]}, {"a": [9]}, id="arrays-replaced-whole"),
    pytest.param({"a": 1}, {"a": {"x": 1}}, {"a": {"x": 1}}, id="object-replaces-value"),
    pytest.param({"a": {"x": 1}}, {"a": 5}, {"a": 5}, id="value-replaces-object"),
    pytest.param({}, {"a": {"x": None, "y": 1}}, {"a": {"y": 1}}, id="new-object-nulls-dropped"),
    pytest.param({}, {"a": {"x": None}}, {}, id="new-object-of-nulls-vanishes"),
    pytest.param({}, {"a": {}}, {"a": {}}, id="explicit-empty-object-kept"),
    pytest.param({"a": "x"}, {"a": False}, {"a": False}, id="false-is-a-value"),
    pytest.param({"a": 1}, {"a": 0}, {"a": 0}, id="zero-is-a-value"),
]


@pytest.mark.parametrize(("before", "patch", "after"), MERGES)
def test_merge_table(before: dict[str, Any], patch: dict[str, Any],
                     after: dict[str, Any]) -> None:
    current = merge_state(EMPTY_STATE, {"reported": before}, T0) if before else EMPTY_STATE
    merged = merge_state(current, {"reported": patch}, T1)
    assert (merged.reported or {}) == after
    # The metadata mirrors the state exactly.
    assert shape(merged.reported) == shape(merged.reported_metadata)


def shape(value: Any) -> Any:
    """The structure of a state or metadata tree: leaves and leaf metadata both → 0."""
    if isinstance(value, dict) and set(value) != {"timestamp"}:
        return {key: shape(child) for key, child in value.items()}
    if isinstance(value, list):
        return [shape(child) for child in value]
    return 0


def test_sections_are_removed_by_null_and_when_empty() -> None:
    state = merge_state(EMPTY_STATE, {"desired": {"a": 1}, "reported": {"b": 2}}, T0)
    removed = merge_state(state, {"desired": None}, T1)
    assert removed.desired is None and removed.desired_metadata is None
    assert removed.reported == {"b": 2}
    emptied = merge_state(removed, {"reported": {"b": None}}, T1)
    assert emptied.is_empty and emptied.reported_metadata is None
    assert emptied.state_document() == {} and emptied.metadata_document() == {}


def test_state_null_clears_everything() -> None:
    state = merge_state(EMPTY_STATE, {"desired": {"a": 1}, "reported": {"b": 2}}, T0)
    assert merge_state(state, None, T1) == EMPTY_STATE


def test_merge_does_not_modify_its_inputs() -> None:
    patch = {"reported": {"a": {"x": [1, 2]}}}
    state = merge_state(EMPTY_STATE, patch, T0)
    frozen = json.dumps([state.reported, state.reported_metadata], sort_keys=True)
    merge_state(state, {"reported": {"a": {"x": None, "y": 1}}}, T1)
    assert json.dumps([state.reported, state.reported_metadata], sort_keys=True) == frozen
    assert patch == {"reported": {"a": {"x": [1, 2]}}}


# -- metadata -------------------------------------------------------------------------

def test_metadata_stamps_only_what_the_update_touched() -> None:
    state = merge_state(EMPTY_STATE, {"reported": {"a": 1, "n": {"x": 1, "y": 2}}}, T0)
    state = merge_state(state, {"reported": {"n": {"y": 3}}}, T1)
    assert state.reported_metadata == {"a": ts(T0), "n": {"x": ts(T0), "y": ts(T1)}}


def test_metadata_of_arrays_is_per_element() -> None:
    assert metadata_of([1, {"a": 2}, [3]], T0) == [ts(), {"a": ts()}, [ts()]]
    state = merge_state(EMPTY_STATE, {"desired": {"list": ["a", "b"]}}, T0)
    assert state.desired_metadata == {"list": [ts(), ts()]}


def test_metadata_follows_type_changes() -> None:
    state = merge_state(EMPTY_STATE, {"reported": {"a": {"timestamp": 5}}}, T0)
    assert state.reported_metadata == {"a": {"timestamp": ts()}}  # a member named timestamp
    state = merge_state(state, {"reported": {"a": 7}}, T1)
    assert state.reported_metadata == {"a": ts(T1)}
    state = merge_state(state, {"reported": {"a": {"b": 1}}}, T1)
    assert state.reported_metadata == {"a": {"b": ts(T1)}}


# -- delta ----------------------------------------------------------------------------

DELTAS = [
    pytest.param({"a": 1}, None, {"a": 1}, id="no-reported"),
    pytest.param(None, {"a": 1}, None, id="no-desired"),
    pytest.param({"a": 1}, {"a": 1}, None, id="equal"),
    pytest.param({"a": 1}, {"a": 2}, {"a": 1}, id="different-value"),
    pytest.param({"a": 1}, {"b": 1}, {"a": 1}, id="missing-in-reported"),
    pytest.param({"a": 1}, {"a": 1, "b": 2}, None, id="reported-only-ignored"),
    pytest.param({"n": {"x": 1, "y": 2}}, {"n": {"x": 1, "y": 3}}, {"n": {"y": 2}},
                 id="nested-difference-only"),
    pytest.param({"n": {"x": 1}}, {"n": 5}, {"n": {"x": 1}}, id="object-vs-value"),
    pytest.param({"l": [1, 2]}, {"l": [1, 2]}, None, id="equal-arrays"),
    pytest.param({"l": [1, 2]}, {"l": [2, 1]}, {"l": [1, 2]}, id="arrays-whole"),
    pytest.param({"a": 1}, {"a": 1.0}, None, id="numbers-by-value"),
    pytest.param({"a": True}, {"a": 1}, {"a": True}, id="true-is-not-one"),
    pytest.param({"a": "1"}, {"a": 1}, {"a": "1"}, id="string-is-not-number"),
    pytest.param({"n": {}}, {"n": {"x": 1}}, None, id="empty-object-asks-nothing"),
]


@pytest.mark.parametrize(("desired", "reported", "delta"), DELTAS)
def test_delta_table(desired: dict[str, Any] | None, reported: dict[str, Any] | None,
                     delta: dict[str, Any] | None) -> None:
    assert compute_delta(desired, reported) == delta


def test_json_equal() -> None:
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal(False, 0)
    assert not json_equal(None, 0)
    assert not json_equal({"a": 1}, {"a": 1, "b": 1})
    assert not json_equal([1], [1, 1])


# -- messages -------------------------------------------------------------------------

def test_get_accepted_has_state_delta_metadata_version_timestamp_token() -> None:
    state = merge_state(EMPTY_STATE, {"desired": {"c": "red"}, "reported": {"c": "blue"}}, T0)
    assert get_accepted(state, 3, T1, "tok") == {
        "state": {"desired": {"c": "red"}, "reported": {"c": "blue"}, "delta": {"c": "red"}},
        "metadata": {"desired": {"c": ts()}, "reported": {"c": ts()}},
        "version": 3,
        "timestamp": T1,
        "clientToken": "tok",
    }
    in_sync = merge_state(state, {"reported": {"c": "red"}}, T1)
    assert "delta" not in get_accepted(in_sync, 4, T1, None)["state"]
    assert "clientToken" not in get_accepted(in_sync, 4, T1, None)


def test_update_accepted_echoes_the_request_with_its_metadata() -> None:
    patch = {"desired": {"a": None, "b": {"c": 1}}, "reported": None}
    assert update_accepted(patch, 7, T0, None) == {
        "state": {"desired": {"a": None, "b": {"c": 1}}, "reported": None},
        "metadata": {"desired": {"a": ts(), "b": {"c": ts()}}, "reported": ts()},
        "version": 7,
        "timestamp": T0,
    }
    assert update_accepted(None, 2, T0, "t")["state"] is None


def test_delta_message_carries_the_delta_metadata() -> None:
    state = merge_state(EMPTY_STATE, {"desired": {"a": 1, "n": {"x": 1, "y": 2}},
                                      "reported": {"a": 1, "n": {"x": 0, "y": 2}}}, T0)
    state = merge_state(state, {"desired": {"n": {"x": 2}}}, T1)
    assert delta_message(state, 2, T1, "t") == {
        "version": 2, "timestamp": T1, "state": {"n": {"x": 2}},
        "metadata": {"n": {"x": ts(T1)}}, "clientToken": "t",
    }
    in_sync = merge_state(state, {"reported": {"n": {"x": 2}}}, T1)
    assert delta_message(in_sync, 3, T1, None) is None


def test_documents_message() -> None:
    before = merge_state(EMPTY_STATE, {"desired": {"a": 1}}, T0)
    after = merge_state(before, {"reported": {"a": 1}}, T1)
    message = documents_message((before, 1), after, 2, T1, "t")
    assert message == {
        "previous": {"state": {"desired": {"a": 1}}, "metadata": {"desired": {"a": ts()}},
                     "version": 1},
        "current": {"state": {"desired": {"a": 1}, "reported": {"a": 1}},
                    "metadata": {"desired": {"a": ts()}, "reported": {"a": ts(T1)}},
                    "version": 2},
        "timestamp": T1,
        "clientToken": "t",
    }
    assert "previous" not in documents_message(None, before, 1, T0, None)


def test_delete_accepted() -> None:
    assert delete_accepted(4, T0, None) == {"version": 4, "timestamp": T0}
    assert delete_accepted(4, T0, "x")["clientToken"] == "x"


# -- properties -----------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "color", "n"])
SCALARS = st.one_of(st.booleans(), st.integers(-5, 5), st.floats(-2, 2, allow_nan=False),
                    st.text(max_size=3))
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(KEYS, children, max_size=3)),
    max_leaves=8,
)
SECTION = st.dictionaries(KEYS, VALUES, max_size=4)
PATCH_VALUES = st.recursive(
    st.one_of(st.none(), SCALARS),
    lambda children: st.one_of(st.lists(SCALARS, max_size=3),
                               st.dictionaries(KEYS, children, max_size=3)),
    max_leaves=8,
)
PATCH = st.dictionaries(KEYS, PATCH_VALUES, max_size=4)


def leaves(patch: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every member the patch sets (value, array or null), with its path."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for key, value in patch.items():
        if isinstance(value, dict):
            found.extend(leaves(value, (*path, key)))
        else:
            found.append(((*path, key), value))
    return found


MISSING = object()


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return MISSING
        document = document[key]
    return document


@settings(max_examples=300, deadline=None)
@given(SECTION)
def test_delta_of_a_document_against_itself_is_empty(section: dict[str, Any]) -> None:
    assert compute_delta(section, section) is None
    assert compute_delta(section, json.loads(json.dumps(section))) is None


@settings(max_examples=300, deadline=None)
@given(SECTION, PATCH)
def test_update_then_read_gives_the_merged_state(section: dict[str, Any],
                                                 patch: dict[str, Any]) -> None:
    before = merge_state(EMPTY_STATE, {"reported": section}, T0)
    after = merge_state(before, {"reported": patch}, T1)
    merged = after.reported or {}
    for path, value in leaves(patch):
        if value is None:
            assert lookup(merged, path) is MISSING  # null removes
        else:
            assert json_equal(lookup(merged, path), value)  # values and arrays replace
    for key, value in (before.reported or {}).items():
        if key not in patch:
            assert merged[key] == value  # untouched members stay
    assert merge_state(after, {"reported": patch}, T1) == after  # idempotent
    assert shape(after.reported) == shape(after.reported_metadata)
    # Reading it back (what get answers) shows the same state.
    document = get_accepted(after, 2, T1, None)
    assert document["state"].get("reported", {}) == (after.reported or {})


@settings(max_examples=300, deadline=None)
@given(SECTION, SECTION)
def test_reporting_the_delta_resolves_it(desired: dict[str, Any],
                                         reported: dict[str, Any]) -> None:
    state = merge_state(EMPTY_STATE, {"desired": desired, "reported": reported}, T0)
    delta = compute_delta(state.desired, state.reported)
    if delta is None:
        return
    # Reporting exactly what the delta asks for makes desired and reported agree.
    synced = merge_state(state, {"reported": delta}, T1)
    assert compute_delta(synced.desired, synced.reported) is None


def test_state_document_sections() -> None:
    state = ShadowState(desired={"a": 1}, desired_metadata={"a": ts()})
    assert state.state_document() == {"desired": {"a": 1}}
    assert state.metadata_document() == {"desired": {"a": ts()}}
    assert state.size == len('{"a":1}')
