"""Joining the writing transactions of a block: how a record commits with the change it
describes.

Theory of operation: :meth:`Store.join_writes` marks a block with a
:class:`CommitParticipant`. Every *writing* transaction that the *same thread* opens on
the *same store* while the block runs calls ``participant.before_commit(uow)`` as its last
work, inside the transaction, and ``participant.after_commit()`` once the commit has
succeeded. So what the participant writes commits with the block's change, or neither
does: a crash before the commit loses both, and a participant that raises rolls the
change back with it (the exception propagates out of the ``transaction()`` block).

Nothing else is joined: read-only transactions; other threads, even those that inherit
the block's context (an event handler scheduled on the loop from inside the block, a
worker the block hands work to); other stores; and anything after the block has ended —
a context copied inside it keeps the mark, but the mark is dead by then. Blocks nest:
the innermost participant is the one called.

The participant decides what to do in each transaction (the trail appends one record in
the first one and nothing after it: :meth:`bastion.trail.Trail.record_with_change`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._store import Store, UnitOfWork


class CommitParticipant(Protocol):
    """What joins the writing transactions of a :meth:`Store.join_writes` block."""

    def before_commit(self, uow: UnitOfWork) -> None:
        """The transaction's last work, just before its commit. Raising rolls the
        transaction back; the exception reaches whoever opened it."""
        ...

    def after_commit(self) -> None:
        """The transaction whose ``before_commit`` last ran has committed. Must not
        raise (the change is already durable)."""
        ...


@dataclass(slots=True)
class _Joined:
    store: Store
    participant: CommitParticipant
    thread: int = field(default_factory=threading.get_ident)
    open: bool = True


_joined: ContextVar[_Joined | None] = ContextVar("bastion_store_joined", default=None)


@contextmanager
def joining(store: Store, participant: CommitParticipant) -> Iterator[None]:
    """The block of :meth:`Store.join_writes` (see the module docstring)."""
    mark = _Joined(store, participant)
    token = _joined.set(mark)
    try:
        yield
    finally:
        mark.open = False
        _joined.reset(token)


def participant_of(store: Store) -> CommitParticipant | None:
    """The participant a writing transaction on ``store``, opened now on this thread,
    must call; ``None`` when it is not in such a block."""
    mark = _joined.get()
    if (mark is None or not mark.open or mark.store is not store
            or mark.thread != threading.get_ident()):
        return None
    return mark.participant
