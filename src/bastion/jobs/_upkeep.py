"""What happens to jobs without anybody asking: timeouts, rollout, continuous targets.

* :meth:`Upkeep.run_due` — executions whose step or in-progress timer ran out become
  ``TIMED_OUT`` (then the abort criteria and completion of their jobs are checked), and
  jobs with a rollout queue release what their rate allows now. Returns when it next
  has work, so the scheduler (:mod:`._scheduler`) can sleep until then.
* :meth:`Upkeep.on_registry_event` — a thing joining a thing group gets an execution of
  every CONTINUOUS job in progress that targets the group or one of its ancestors
  (unless it has one: a ``REMOVED`` execution is followed by a new one); a thing leaving
  the targets of such a job loses its ``QUEUED`` execution (``REMOVED``) and its place in
  the rollout queue. A deleted thing's executions are deleted with it (the store
  cascades); snapshot jobs it leaves with only final executions complete.
"""

from __future__ import annotations

from datetime import datetime

from bastion.registry import ThingDeleted, ThingGroupDeleted, ThingGroupMembershipChanged
from bastion.store import JobRow, UnitOfWork

from ._base import THING, THING_GROUP, _Change
from ._lifecycle import ExecutionLifecycle
from ._model import ExecutionStatus, JobStatus, TargetSelection
from ._rollout import next_window
from ._states import Actor

_IN_PROGRESS = frozenset({ExecutionStatus.IN_PROGRESS.value})
_ACTIVE = frozenset({JobStatus.IN_PROGRESS.value})


class Upkeep(ExecutionLifecycle):
    __slots__ = ()

    def run_due(self) -> datetime | None:
        """Time out what is due and release what the rollout rates allow, at the service
        clock's now. Returns the earliest time at which more work is due (``None``: none
        known; events may bring some)."""
        with self._read() as uow:
            idle = not uow.jobs.with_queue() and not uow.job_executions.due(self.now(),
                                                                          _IN_PROGRESS)
            if idle:  # the common case: no writing transaction
                return uow.job_executions.next_deadline(_IN_PROGRESS)
        with self._change() as change:
            uow = change.uow
            touched: set[str] = set()
            for row in uow.job_executions.due(change.now, _IN_PROGRESS):
                self._transition(change, row, ExecutionStatus.TIMED_OUT, Actor.TIMER)
                touched.add(row.job_id)
            for job_id in sorted(touched):
                self._after_final(change, job_id)
            wake: list[datetime] = []
            for job_id in uow.jobs.with_queue():
                job = uow.jobs.get(job_id, for_update=True)
                if job is None:
                    continue
                if job.status != JobStatus.IN_PROGRESS.value:
                    uow.jobs.clear_queue(job_id)
                    continue
                job = self._release_queued(change, job)
                if uow.jobs.queue_length(job_id):
                    wake.append(next_window(job.rollout_window_start, change.now))
            deadline = uow.job_executions.next_deadline(_IN_PROGRESS)
            if deadline is not None:
                wake.append(deadline)
        return min(wake) if wake else None

    def on_registry_event(self, event: object) -> None:
        """Apply a registry event to continuous jobs (see the module docstring); other
        events are ignored. Call it after the registry committed (from any thread)."""
        if isinstance(event, ThingGroupMembershipChanged):
            with self._change() as change:
                if event.added:
                    self._thing_joined(change, event.thing_name, event.group_name)
                else:
                    self._thing_left(change, event.thing_name)
        elif isinstance(event, ThingGroupDeleted):
            with self._change() as change:
                for thing in event.thing_names:
                    if change.uow.things.get(thing) is not None:
                        self._thing_left(change, thing)
        elif isinstance(event, ThingDeleted):
            with self._change() as change:
                for job in change.uow.jobs.with_status(
                        _ACTIVE, target_selection=TargetSelection.SNAPSHOT.value):
                    self._complete_if_done(change, job)

    def _continuous_jobs(self, uow: UnitOfWork, groups: set[str]) -> list[JobRow]:
        return uow.jobs.targeting(THING_GROUP, groups,
                                  target_selection=TargetSelection.CONTINUOUS.value,
                                  statuses=_ACTIVE)

    def _thing_joined(self, change: _Change, thing: str, group: str) -> None:
        uow = change.uow
        if uow.things.get(thing) is None:
            return
        for job in self._continuous_jobs(uow, uow.thing_groups.with_ancestors([group])):
            latest = uow.job_executions.get(job.job_id, thing)
            if latest is not None and latest.status != ExecutionStatus.REMOVED.value:
                continue
            if uow.jobs.is_queued(job.job_id, thing):
                continue
            self._release(change, job, [thing])

    def _thing_left(self, change: _Change, thing: str) -> None:
        """``thing`` left a group (or its group was deleted): every continuous job in
        progress that waits for it (a QUEUED execution, or a place in the rollout queue)
        and no longer targets it — by name or through its remaining groups — lets it go."""
        uow = change.uow
        waiting = {row.job_id for row in uow.job_executions.of_thing(
            thing, {ExecutionStatus.QUEUED.value})}
        waiting.update(uow.jobs.queued_for(thing))
        for job_id in sorted(waiting):
            job = uow.jobs.get(job_id)
            if (job is None or job.status != JobStatus.IN_PROGRESS.value
                    or job.target_selection != TargetSelection.CONTINUOUS.value
                    or self._still_targeted(uow, job_id, thing)):
                continue
            uow.jobs.unqueue(job_id, thing)
            latest = uow.job_executions.get(job_id, thing, for_update=True)
            if latest is not None and latest.status == ExecutionStatus.QUEUED.value:
                self._transition(change, latest, ExecutionStatus.REMOVED, Actor.TARGETING)

    def _still_targeted(self, uow: UnitOfWork, job_id: str, thing: str) -> bool:
        targets = uow.jobs.targets(job_id)
        if any(t.target_type == THING and t.target_name == thing for t in targets):
            return True
        groups = {t.target_name for t in targets if t.target_type == THING_GROUP}
        return bool(groups & uow.thing_groups.with_ancestors(uow.thing_groups.groups_of(thing)))
