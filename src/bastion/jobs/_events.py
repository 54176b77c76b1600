"""Domain events of the jobs service, published after the commit that caused them.

They are what a device learns over MQTT without asking (``$aws/things/<thing>/jobs/notify``
and ``…/notify-next``), so unlike the registry's events they carry the values, computed in
the same transaction as the change:

* :class:`JobExecutionsChanged` — an execution joined or left the thing's pending list
  (queued, or reached a final status, or was deleted). Carries the list: at most 10
  entries, ``IN_PROGRESS`` first, then ``QUEUED``, each by queue time.
* :class:`NextJobExecutionChanged` — the head of that list (what
  ``DescribeJobExecution $next`` answers) is another execution, or there is none left.
  Carries the new head with its job document.

A change to the head's own details (status details, ``QUEUED`` → ``IN_PROGRESS``) is not
an event: the list and its head are the same executions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ._model import JobExecution

MAX_LISTED: Final = 10


@dataclass(frozen=True, slots=True)
class JobExecutionsChanged:
    thing_name: str
    in_progress: tuple[JobExecution, ...]
    queued: tuple[JobExecution, ...]
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class NextJobExecutionChanged:
    thing_name: str
    execution: JobExecution | None
    timestamp: datetime
