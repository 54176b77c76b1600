"""``Store.join_writes``: a participant's writes commit with each writing transaction of
its block, or not at all; nothing else is joined (read-only transactions, other threads
even with the block's context, other stores, a context that outlives the block)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bastion.store import Store, UnitOfWork

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


class Participant:
    """Writes ``joined-<n>`` = the transaction's own key in each joined transaction."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.joined = 0
        self.committed = 0

    def before_commit(self, uow: UnitOfWork) -> None:
        self.joined += 1
        if self.fail:
            raise RuntimeError("the participant refuses")
        uow.settings.put(f"joined-{self.joined}", "with the change", NOW)

    def after_commit(self) -> None:
        self.committed += 1


def change(store: Store, key: str) -> None:
    with store.transaction() as uow:
        uow.settings.put(key, "the change", NOW)


def settings(store: Store) -> dict[str, str]:
    """The settings these tests write, those that exist."""
    with store.transaction(readonly=True) as uow:
        found = {key: uow.settings.get(key) for key in ("a", "b", "joined-1", "joined-2")}
    return {key: value for key, value in found.items() if value is not None}


def test_each_writing_transaction_of_the_block_is_joined(store: Store) -> None:
    participant = Participant()
    with store.join_writes(participant):
        change(store, "a")
        assert (participant.joined, participant.committed) == (1, 1)
        change(store, "b")
    assert (participant.joined, participant.committed) == (2, 2)
    assert settings(store) == {"a": "the change", "b": "the change",
                               "joined-1": "with the change", "joined-2": "with the change"}


def test_a_change_that_raises_calls_nothing_and_keeps_nothing(store: Store) -> None:
    participant = Participant()
    with (store.join_writes(participant), pytest.raises(ValueError),
          store.transaction() as uow):
        uow.settings.put("a", "the change", NOW)
        raise ValueError("the change is refused")
    assert (participant.joined, participant.committed) == (0, 0)
    assert settings(store) == {}


def test_a_participant_that_raises_rolls_the_change_back(store: Store) -> None:
    participant = Participant(fail=True)
    with store.join_writes(participant), pytest.raises(RuntimeError, match="refuses"):
        change(store, "a")
    assert (participant.joined, participant.committed) == (1, 0)
    assert settings(store) == {}


def test_read_only_transactions_are_not_joined(store: Store) -> None:
    participant = Participant()
    with store.join_writes(participant), store.transaction(readonly=True) as uow:
        uow.settings.get("a")
    assert (participant.joined, participant.committed) == (0, 0)


def _in_thread(work: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors


def test_another_thread_is_not_joined_even_with_the_blocks_context(store: Store) -> None:
    participant = Participant()
    with store.join_writes(participant):
        context = contextvars.copy_context()  # as asyncio hands it to a callback
        _in_thread(lambda: context.run(change, store, "a"))
    assert (participant.joined, participant.committed) == (0, 0)
    assert settings(store) == {"a": "the change"}


def test_a_context_copied_in_the_block_is_dead_after_it(store: Store) -> None:
    participant = Participant()
    with store.join_writes(participant):
        context = contextvars.copy_context()
    context.run(change, store, "a")
    assert (participant.joined, participant.committed) == (0, 0)


def test_another_store_is_not_joined(store: Store) -> None:
    participant = Participant()
    other = Store(store.engine)  # the same database through another Store
    with store.join_writes(participant):
        change(other, "a")
    assert (participant.joined, participant.committed) == (0, 0)


def test_the_innermost_block_is_joined(store: Store) -> None:
    outer, inner = Participant(), Participant()
    with store.join_writes(outer):
        with store.join_writes(inner):
            change(store, "a")
        change(store, "b")
    assert (outer.joined, inner.joined) == (1, 1)


def test_a_participant_must_have_both_hooks(store: Store) -> None:
    with pytest.raises(TypeError):
        store.join_writes(object())  # type: ignore[arg-type]
