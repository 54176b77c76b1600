"""When scheduled audits run (pure functions).

A scheduled audit runs at :data:`DEFAULT_RUN_AT` (UTC) on its days:

* ``DAILY`` — every day;
* ``WEEKLY`` — every ``dayOfWeek``;
* ``BIWEEKLY`` — every other ``dayOfWeek``, counting from the first one after creation;
* ``MONTHLY`` — on ``dayOfMonth`` (``"1"``–``"31"``, or ``"LAST"``); a day the month
  does not have (29–31) falls back to its last day, as in AWS.

A run that was missed while Bastion was down is started once when it comes back (its
``next_run_time`` has passed); the one after is computed from then on.

The scheduler waits with a :class:`bastion.clock.Clock`: the system's in ``bastion
serve``; tests pass a clock they move by hand.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from ._model import AuditFrequency, DayOfWeek

DEFAULT_RUN_AT: Final = time(0, 0, tzinfo=UTC)
MAX_WAIT: Final = timedelta(minutes=5)


def _at(day: date, run_at: time) -> datetime:
    return datetime.combine(day, run_at.replace(tzinfo=None), tzinfo=UTC)


def _month_day(year: int, month: int, day_of_month: str) -> date:
    last = calendar.monthrange(year, month)[1]
    day = last if day_of_month == "LAST" else min(int(day_of_month), last)
    return date(year, month, day)


def next_run(frequency: AuditFrequency, *, after: datetime, day_of_week: DayOfWeek | None,
             day_of_month: str | None, previous: datetime | None = None,
             run_at: time = DEFAULT_RUN_AT) -> datetime:
    """The first run strictly after ``after``.

    :param previous: the last scheduled run time (BIWEEKLY counts its fortnights from it).
    :raises ValueError: a day is missing for the frequency.
    """
    after = after.astimezone(UTC)
    if frequency is AuditFrequency.DAILY:
        candidate = _at(after.date(), run_at)
        return candidate if candidate > after else candidate + timedelta(days=1)
    if frequency in (AuditFrequency.WEEKLY, AuditFrequency.BIWEEKLY):
        if day_of_week is None:
            raise ValueError(f"{frequency} needs a day of the week")
        if frequency is AuditFrequency.BIWEEKLY and previous is not None:
            candidate = previous.astimezone(UTC) + timedelta(days=14)
            while candidate <= after:
                candidate += timedelta(days=14)
            return candidate
        ahead = (day_of_week.weekday - after.weekday()) % 7
        candidate = _at(after.date() + timedelta(days=ahead), run_at)
        return candidate if candidate > after else candidate + timedelta(days=7)
    if day_of_month is None:
        raise ValueError("MONTHLY needs a day of the month")
    year, month = after.year, after.month
    while True:
        candidate = _at(_month_day(year, month, day_of_month), run_at)
        if candidate > after:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
