"""When scheduled audits run: every frequency, month ends, fortnights, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.defender.audit import AuditFrequency, DayOfWeek, next_run


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("frequency", "after", "dow", "dom", "expected"), [
    (AuditFrequency.DAILY, "2026-03-10T13:00", None, None, "2026-03-11T00:00"),
    (AuditFrequency.DAILY, "2026-03-10T00:00", None, None, "2026-03-11T00:00"),
    (AuditFrequency.DAILY, "2026-03-09T23:59:59", None, None, "2026-03-10T00:00"),
    (AuditFrequency.WEEKLY, "2026-03-10T13:00", DayOfWeek.MON, None, "2026-03-16T00:00"),
    (AuditFrequency.WEEKLY, "2026-03-08T23:00", DayOfWeek.MON, None, "2026-03-09T00:00"),
    (AuditFrequency.WEEKLY, "2026-03-09T00:00", DayOfWeek.MON, None, "2026-03-16T00:00"),
    (AuditFrequency.WEEKLY, "2026-03-10T13:00", DayOfWeek.SUN, None, "2026-03-15T00:00"),
    (AuditFrequency.BIWEEKLY, "2026-03-10T13:00", DayOfWeek.FRI, None, "2026-03-13T00:00"),
    (AuditFrequency.MONTHLY, "2026-03-10T13:00", None, "1", "2026-04-01T00:00"),
    (AuditFrequency.MONTHLY, "2026-03-10T13:00", None, "15", "2026-03-15T00:00"),
    (AuditFrequency.MONTHLY, "2026-01-31T13:00", None, "31", "2026-02-28T00:00"),
    (AuditFrequency.MONTHLY, "2028-02-01T00:00", None, "30", "2028-02-29T00:00"),
    (AuditFrequency.MONTHLY, "2026-04-30T00:00", None, "LAST", "2026-05-31T00:00"),
    (AuditFrequency.MONTHLY, "2026-12-31T01:00", None, "LAST", "2027-01-31T00:00"),
], ids=lambda v: str(v))
def test_next_run(frequency: AuditFrequency, after: str, dow: DayOfWeek | None,
                  dom: str | None, expected: str) -> None:
    assert next_run(frequency, after=at(after), day_of_week=dow, day_of_month=dom) == at(expected)


def test_biweekly_counts_fortnights_from_the_previous_run() -> None:
    previous = at("2026-03-13T00:00")
    assert next_run(AuditFrequency.BIWEEKLY, after=previous, day_of_week=DayOfWeek.FRI,
                    day_of_month=None, previous=previous) == at("2026-03-27T00:00")
    # Down for three weeks: the next run is the next fortnight boundary, not a backlog.
    assert next_run(AuditFrequency.BIWEEKLY, after=at("2026-04-03T09:00"),
                    day_of_week=DayOfWeek.FRI, day_of_month=None,
                    previous=previous) == at("2026-04-10T00:00")


def test_a_missing_day_is_refused() -> None:
    with pytest.raises(ValueError):
        next_run(AuditFrequency.WEEKLY, after=at("2026-01-01T00:00"), day_of_week=None,
                 day_of_month=None)
    with pytest.raises(ValueError):
        next_run(AuditFrequency.MONTHLY, after=at("2026-01-01T00:00"), day_of_week=None,
                 day_of_month=None)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1),
                    timezones=st.just(UTC)),
       st.sampled_from(list(AuditFrequency)), st.sampled_from(list(DayOfWeek)),
       st.sampled_from([*map(str, range(1, 32)), "LAST"]))
def test_next_run_is_strictly_later_at_midnight_on_a_matching_day(
        after: datetime, frequency: AuditFrequency, dow: DayOfWeek, dom: str) -> None:
    run = next_run(frequency, after=after, day_of_week=dow, day_of_month=dom)
    assert after < run <= after + timedelta(days=31)
    assert (run.hour, run.minute, run.second) == (0, 0, 0)
    if frequency in (AuditFrequency.WEEKLY, AuditFrequency.BIWEEKLY):
        assert run.weekday() == dow.weekday and run - after <= timedelta(days=7)
    elif frequency is AuditFrequency.MONTHLY:
        last = ((run.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
        assert run.day == (last if dom == "LAST" else min(int(dom), last))
    else:
        assert run - after <= timedelta(days=1)
