"""The shadow service over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from bastion.shadow import (
    InvalidShadowRequestError,
    ShadowDeleted,
    ShadowError,
    ShadowNotFoundError,
    ShadowService,
    ShadowTooLargeError,
    ShadowUpdated,
    ShadowVersionConflictError,
)
from bastion.store import Store
from support.clock import ManualClock


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def load(payload: bytes | None) -> Any:
    assert payload is not None
    return json.loads(payload)


def current(shadows: ShadowService, thing: str, name: str | None = None) -> Any:
    return load(shadows.get(thing, name).payload)


def test_update_creates_then_versions_increment(shadows: ShadowService, clock: ManualClock,
                                                events: list[object]) -> None:
    created = shadows.update("dev1", None, body({"state": {"desired": {"color": "red"}},
                                                 "clientToken": "c1"}))
    assert created.version == 1
    assert load(created.accepted) == {
        "state": {"desired": {"color": "red"}},
        "metadata": {"desired": {"color": {"timestamp": int(clock.time())}}},
        "version": 1, "timestamp": int(clock.time()), "clientToken": "c1",
    }
    assert load(created.delta)["state"] == {"color": "red"}
    assert "previous" not in load(created.documents)
    assert events == [created]
    assert [topic for topic, _ in created.messages()] == [
        "$aws/things/dev1/shadow/update/accepted", "$aws/things/dev1/shadow/update/delta",
        "$aws/things/dev1/shadow/update/documents"]
    clock.advance(timedelta(seconds=10))
    reported = shadows.update("dev1", None, body({"state": {"reported": {"color": "red"}}}))
    assert reported.version == 2
    assert reported.delta is None  # in sync: no delta message
    assert [topic for topic, _ in reported.messages()][-1].endswith("/update/documents")
    documents = load(reported.documents)
    assert documents["previous"]["version"] == 1 and documents["current"]["version"] == 2
    assert documents["current"]["state"] == {"desired": {"color": "red"},
                                             "reported": {"color": "red"}}
    got = current(shadows, "dev1")
    assert got["version"] == 2 and "delta" not in got["state"]
    assert got["metadata"]["reported"]["color"]["timestamp"] == int(clock.time())
    assert got["metadata"]["desired"]["color"]["timestamp"] == int(clock.time()) - 10


def test_optimistic_locking(shadows: ShadowService, events: list[object]) -> None:
    shadows.update("dev1", None, body({"state": {"reported": {"a": 1}}}))
    assert shadows.update("dev1", None, body({"state": {"reported": {"a": 2}},
                                              "version": 1})).version == 2
    events.clear()
    with pytest.raises(ShadowVersionConflictError) as caught:
        shadows.update("dev1", None, body({"state": {"reported": {"a": 3}}, "version": 1,
                                           "clientToken": "stale"}))
    error = caught.value
    assert (error.http_status, error.message, error.aws_error_type) == (
        409, "Version conflict", "ConflictException")
    assert error.client_token == "stale" and error.timestamp is not None
    assert events == []  # nothing changed, nothing announced
    assert current(shadows, "dev1")["state"] == {"reported": {"a": 2}}
    # A shadow that does not exist yet is at version 0.
    with pytest.raises(ShadowVersionConflictError):
        shadows.update("new", None, body({"state": {}, "version": 3}))
    assert shadows.update("new", None, body({"state": {}, "version": 0})).version == 1


def test_get_of_missing_shadows(shadows: ShadowService) -> None:
    with pytest.raises(ShadowNotFoundError) as caught:
        shadows.get("nobody", None, b'{"clientToken": "g1"}')
    assert caught.value.document() == {
        "code": 404, "message": "No shadow exists with name: 'nobody'",
        "timestamp": caught.value.timestamp, "clientToken": "g1"}
    with pytest.raises(ShadowNotFoundError, match="No shadow exists with name: 'lamp'"):
        shadows.get("nobody", "lamp")


def test_get_shows_the_delta_and_echoes_the_token(shadows: ShadowService) -> None:
    shadows.update("dev1", None, body({"state": {"desired": {"a": 1, "b": 2},
                                                 "reported": {"a": 1, "b": 3, "c": 4}}}))
    got = load(shadows.get("dev1", None, b'{"clientToken": "t"}').payload)
    assert got["state"]["delta"] == {"b": 2}
    assert got["clientToken"] == "t"


def test_delete_keeps_the_version_sequence(shadows: ShadowService, clock: ManualClock,
                                           events: list[object]) -> None:
    with pytest.raises(ShadowNotFoundError):
        shadows.delete("dev1")
    for value in range(3):
        shadows.update("dev1", None, body({"state": {"reported": {"v": value}}}))
    events.clear()
    deleted = shadows.delete("dev1", None, b'{"clientToken": "d"}')
    assert load(deleted.accepted) == {"version": 3, "timestamp": int(clock.time()),
                                      "clientToken": "d"}
    assert events == [deleted] and isinstance(deleted, ShadowDeleted)
    assert deleted.messages() == (("$aws/things/dev1/shadow/delete/accepted",
                                   deleted.accepted),)
    with pytest.raises(ShadowNotFoundError):
        shadows.get("dev1")
    with pytest.raises(ShadowNotFoundError):
        shadows.delete("dev1")
    # Re-created within 48 hours: the version continues, and the state starts afresh.
    with pytest.raises(ShadowVersionConflictError):
        shadows.update("dev1", None, body({"state": {}, "version": 0}))
    again = shadows.update("dev1", None, body({"state": {"reported": {"x": 1}},
                                               "version": 3}))
    assert again.version == 4
    assert "previous" not in load(again.documents)
    assert current(shadows, "dev1")["state"] == {"reported": {"x": 1}}


def test_a_shadow_deleted_long_ago_starts_again(shadows: ShadowService, store: Store,
                                                clock: ManualClock) -> None:
    shadows.update("dev1", None, body({"state": {"reported": {"x": 1}}}))
    shadows.update("dev1", None, body({"state": {"reported": {"x": 2}}}))
    shadows.delete("dev1")
    clock.advance(timedelta(hours=49))
    assert shadows.update("dev1", None, body({"state": {}})).version == 1
    shadows.update("dev2", None, body({"state": {}}))
    shadows.delete("dev2")
    assert shadows.forget_old_tombstones() == 0  # dev2 was deleted just now
    clock.advance(timedelta(hours=49))
    assert shadows.forget_old_tombstones() == 1
    with store.transaction(readonly=True) as uow:
        assert uow.shadows.get("dev2", "") is None


def test_null_state_empties_but_keeps_the_shadow(shadows: ShadowService) -> None:
    shadows.update("dev1", None, body({"state": {"desired": {"a": 1}, "reported": {"a": 2}}}))
    emptied = shadows.update("dev1", None, body({"state": {"desired": None,
                                                           "reported": None}}))
    assert emptied.version == 2 and emptied.delta is None
    got = current(shadows, "dev1")
    assert (got["state"], got["metadata"], got["version"]) == ({}, {}, 2)
    assert shadows.update("dev1", None, body({"state": None})).version == 3


def test_the_resulting_state_is_size_limited(shadows: ShadowService,
                                             events: list[object]) -> None:
    half = "x" * 5000
    shadows.update("dev1", None, body({"state": {"desired": {"a": half}}}))
    events.clear()
    with pytest.raises(ShadowTooLargeError) as caught:
        shadows.update("dev1", None, body({"state": {"reported": {"b": half}},
                                           "clientToken": "big"}))
    assert (caught.value.http_status, caught.value.message, caught.value.client_token) == (
        413, "The payload exceeds the maximum size allowed", "big")
    assert events == []
    assert current(shadows, "dev1")["version"] == 1
    # Removing members makes room again.
    assert shadows.update("dev1", None, body({"state": {"desired": None,
                                                        "reported": {"b": half}}})).version == 2


def test_refusals_echo_the_client_token(shadows: ShadowService) -> None:
    with pytest.raises(InvalidShadowRequestError) as caught:
        shadows.update("bad name", None, body({"state": {}, "clientToken": "n"}))
    assert (caught.value.message, caught.value.client_token) == ("Invalid thing name", "n")
    with pytest.raises(InvalidShadowRequestError) as caught:
        shadows.get("dev1", "bad/name", b'{"clientToken": "g"}')
    assert caught.value.client_token == "g"
    with pytest.raises(ShadowError) as caught:
        shadows.update("dev1", None, b'{"clientToken": "m"}')
    assert caught.value.document()["clientToken"] == "m"


def test_classic_and_named_shadows_are_separate(shadows: ShadowService) -> None:
    shadows.update("dev1", None, body({"state": {"reported": {"who": "classic"}}}))
    shadows.update("dev1", "lamp", body({"state": {"reported": {"who": "lamp"}}}))
    shadows.update("dev2", "lamp", body({"state": {"reported": {"who": "other"}}}))
    named = shadows.update("dev1", "lamp", body({"state": {"desired": {"on": True}}}))
    assert named.version == 2
    assert named.messages()[0][0] == "$aws/things/dev1/shadow/name/lamp/update/accepted"
    assert current(shadows, "dev1")["state"]["reported"] == {"who": "classic"}
    assert current(shadows, "dev1", "lamp")["state"]["reported"] == {"who": "lamp"}
    assert current(shadows, "dev2", "lamp")["version"] == 1
    shadows.delete("dev1", "lamp")
    assert current(shadows, "dev1")["version"] == 1


def test_list_named_shadows(shadows: ShadowService, clock: ManualClock) -> None:
    assert shadows.list_named_shadows("dev1").results == ()
    shadows.update("dev1", None, body({"state": {}}))  # the classic shadow is not listed
    for name in ("c", "a", "$pkg", "b", "gone"):
        shadows.update("dev1", name, body({"state": {}}))
    shadows.update("dev2", "z", body({"state": {}}))
    shadows.delete("dev1", "gone")
    first = shadows.list_named_shadows("dev1", page_size=2)
    assert first.results == ("$pkg", "a") and first.next_token
    assert first.timestamp == int(clock.time())
    second = shadows.list_named_shadows("dev1", page_size=2, next_token=first.next_token)
    assert second.results == ("b", "c") and second.next_token is None
    assert shadows.list_named_shadows("dev1").results == ("$pkg", "a", "b", "c")
    with pytest.raises(InvalidShadowRequestError, match="Invalid nextToken"):
        shadows.list_named_shadows("dev1", next_token="garbage")
    with pytest.raises(InvalidShadowRequestError, match="Invalid nextToken"):
        shadows.list_named_shadows("dev2", next_token=first.next_token)  # another listing
    for size in (0, 101):
        with pytest.raises(InvalidShadowRequestError, match="pageSize"):
            shadows.list_named_shadows("dev1", page_size=size)


def test_no_registered_thing_is_needed(shadows: ShadowService) -> None:
    """As in AWS IoT, shadows are keyed by thing name; the registry is not consulted."""
    assert shadows.update("never-registered", None, body({"state": {}})).version == 1


def test_a_failing_event_sink_does_not_undo_the_change(store: Store,
                                                       clock: ManualClock) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("sink down")

    shadows = ShadowService(store, publish=broken, clock=clock)
    assert shadows.update("dev1", None, body({"state": {}})).version == 1
    assert current(shadows, "dev1")["version"] == 1


def test_concurrent_updates_lose_nothing(store: Store) -> None:
    shadows = ShadowService(store)
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for step in range(5):
                shadows.update("busy", None, body({"state": {"reported": {
                    f"w{index}": step}}}))
        except Exception as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    got = current(shadows, "busy")
    assert got["version"] == 30
    assert got["state"]["reported"] == {f"w{i}": 4 for i in range(6)}


def test_concurrent_versioned_updates_have_one_winner(store: Store) -> None:
    shadows = ShadowService(store)
    shadows.update("race", None, body({"state": {}}))
    outcomes: list[object] = []
    barrier = threading.Barrier(4)

    def writer(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            outcomes.append(shadows.update("race", None, body({
                "state": {"reported": {"by": index}}, "version": 1})))
        except ShadowVersionConflictError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [o for o in outcomes if isinstance(o, ShadowUpdated)]
    assert len(outcomes) == 4 and len(winners) == 1
    assert current(shadows, "race")["version"] == 2


def test_constructor_checks(store: Store) -> None:
    with pytest.raises(TypeError):
        ShadowService("sqlite://")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ShadowService(store, publish=5)  # type: ignore[arg-type]
