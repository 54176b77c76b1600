"""The job execution state machine, as one table.

Theory of operation
-------------------
An execution starts ``QUEUED``. Who may move it, and where to:

* the **device** (UpdateJobExecution, StartNextPendingJobExecution) reports
  ``IN_PROGRESS`` (again and again, with new status details), then one of ``SUCCEEDED``,
  ``FAILED`` or ``REJECTED``; it may also report a final status straight from ``QUEUED``;
* the **timer** (step or in-progress timeout) moves ``IN_PROGRESS`` to ``TIMED_OUT``;
* the **operator** (CancelJob, CancelJobExecution, abort criteria) cancels ``QUEUED``
  executions; with ``force`` also ``IN_PROGRESS`` ones;
* **targeting** (a continuous job's thing leaving its target groups) removes ``QUEUED``
  executions (``REMOVED``).

Every other status is final: nothing moves an execution out of it. A device asking for a
status it may never set (``QUEUED``, ``CANCELED``, …) makes an invalid request; asking
for a change the table refuses makes an invalid state transition.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

from ._errors import InvalidRequestError, InvalidStateTransitionError
from ._model import ExecutionStatus, JobExecutionState


class Actor(str, Enum):
    """Who asks for a transition."""

    DEVICE = "device"
    TIMER = "timer"
    OPERATOR = "operator"
    OPERATOR_FORCE = "operator (force)"
    TARGETING = "targeting"


_Q, _P = ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS
_S, _F, _R = ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.REJECTED
_T, _C, _X = ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELED, ExecutionStatus.REMOVED
_DEVICE = frozenset({Actor.DEVICE})
_CANCEL = frozenset({Actor.OPERATOR, Actor.OPERATOR_FORCE})

TRANSITIONS: Final[Mapping[tuple[ExecutionStatus, ExecutionStatus], frozenset[Actor]]] = {
    (_Q, _P): _DEVICE,
    (_Q, _S): _DEVICE,
    (_Q, _F): _DEVICE,
    (_Q, _R): _DEVICE,
    (_Q, _C): _CANCEL,
    (_Q, _X): frozenset({Actor.TARGETING}),
    (_P, _P): _DEVICE,
    (_P, _S): _DEVICE,
    (_P, _F): _DEVICE,
    (_P, _R): _DEVICE,
    (_P, _T): frozenset({Actor.TIMER}),
    (_P, _C): frozenset({Actor.OPERATOR_FORCE}),
}
"""``(from, to) → who may make the change``; a pair not listed is refused to everyone."""

DEVICE_STATUSES: Final = frozenset({_P, _S, _F, _R})
"""The statuses a device may report."""


def allowed(current: ExecutionStatus, new: ExecutionStatus, actor: Actor) -> bool:
    """Whether ``actor`` may move an execution from ``current`` to ``new``."""
    return actor in TRANSITIONS.get((current, new), frozenset())


def device_status(value: object) -> ExecutionStatus:
    """The status a device asked for.

    :raises InvalidRequestError: not one of ``IN_PROGRESS``, ``SUCCEEDED``, ``FAILED``,
        ``REJECTED``.
    """
    try:
        status = ExecutionStatus(value)
    except ValueError:
        status = None
    if status is None or status not in DEVICE_STATUSES:
        raise InvalidRequestError(
            f"Invalid status {value!r}: a device may set IN_PROGRESS, SUCCEEDED, FAILED "
            "or REJECTED")
    return status


def check_transition(state: JobExecutionState, new: ExecutionStatus, actor: Actor) -> None:
    """:raises InvalidStateTransitionError: the table refuses the change (the error carries
        the execution's state for the MQTT rejection)."""
    if allowed(state.status, new, actor):
        return
    current = state.status
    if current.is_terminal:
        why = f"the job execution is already in the final status {current.value}"
    else:
        why = f"{current.value} cannot change to {new.value} ({actor.value})"
    raise InvalidStateTransitionError(f"Invalid state transition: {why}",
                                      execution_state=state)
