"""EventBridge Scheduler's expressions (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local.schedule_expressions import ScheduleExpressionError, Timing, parse_expression

UTC_TIMING = Timing.of("UTC")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fires(
    expression: str, after: datetime, timing: Timing = UTC_TIMING, count: int = 3, created: datetime | None = None
) -> list[datetime]:
    parsed = parse_expression(expression, created=created or after)
    times: list[datetime] = []
    moment: datetime | None = after
    while moment is not None and len(times) < count:
        moment = parsed.next_after(moment, timing)
        if moment is not None:
            times.append(moment)
    return times


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # every 15 minutes
        ("cron(0/15 * * * ? *)", utc(2026, 12, 1, 10, 7), [utc(2026, 12, 1, 10, 15), utc(2026, 12, 1, 10, 30)]),
        # 10:15 every day
        ("cron(15 10 * * ? *)", utc(2026, 12, 1, 10, 15), [utc(2026, 12, 2, 10, 15), utc(2026, 12, 3, 10, 15)]),
        # 18:00 Monday to Friday (days of the week count from SUN=1)
        ("cron(0 18 ? * MON-FRI *)", utc(2026, 12, 4, 19), [utc(2026, 12, 7, 18), utc(2026, 12, 8, 18)]),
        ("cron(0 18 ? * 2-6 *)", utc(2026, 12, 4, 19), [utc(2026, 12, 7, 18), utc(2026, 12, 8, 18)]),
        # 08:00 on the first day of every month
        ("cron(0 8 1 * ? *)", utc(2026, 12, 1, 9), [utc(2027, 1, 1, 8), utc(2027, 2, 1, 8)]),
        # the last day of the month
        ("cron(0 0 L * ? *)", utc(2027, 1, 31, 1), [utc(2027, 2, 28), utc(2027, 3, 31)]),
        # the weekday nearest the 1st (1 May 2027 is a Saturday: Monday 3rd, not April)
        ("cron(0 9 1W * ? 2027)", utc(2027, 4, 15), [utc(2027, 5, 3, 9), utc(2027, 6, 1, 9)]),
        # the second Tuesday of the month
        ("cron(30 12 ? * 3#2 *)", utc(2026, 12, 1), [utc(2026, 12, 8, 12, 30), utc(2027, 1, 12, 12, 30)]),
        # the last Friday of the month
        ("cron(0 17 ? * 6L *)", utc(2026, 12, 1), [utc(2026, 12, 25, 17), utc(2027, 1, 29, 17)]),
        # only in 2027, in JAN and JUL
        ("cron(0 0 1 JAN,JUL ? 2027)", utc(2026, 12, 1), [utc(2027, 1, 1), utc(2027, 7, 1)]),
    ],
)
def test_cron_fires_as_aws_cron_reads(expression: str, after: datetime, expected: list[datetime]) -> None:
    assert fires(expression, after, count=len(expected)) == expected


def test_cron_is_evaluated_in_the_schedules_time_zone() -> None:
    # GIVEN 09:00 every day in New York, which is UTC-5 in winter and UTC-4 in summer
    timing = Timing.of("America/New_York")

    # WHEN / THEN 14:00 UTC in winter, 13:00 UTC once daylight saving time starts (8 March 2026)
    assert fires("cron(0 9 * * ? *)", utc(2026, 3, 6, 15), timing) == [
        utc(2026, 3, 7, 14),
        utc(2026, 3, 8, 13),
        utc(2026, 3, 9, 13),
    ]


def test_a_time_skipped_by_daylight_saving_runs_with_the_clock() -> None:
    # GIVEN 02:30 every day in New York; 02:30 does not exist on 8 March 2026
    timing = Timing.of("America/New_York")

    # WHEN / THEN that day it runs at 03:30 EDT (07:30 UTC)
    assert fires("cron(30 2 * * ? *)", utc(2026, 3, 7, 12), timing, 2) == [
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 9, 6, 30),
    ]


def test_at_is_a_wall_clock_time_of_the_time_zone_and_fires_once() -> None:
    # GIVEN / WHEN / THEN 12:00 in Kolkata (UTC+05:30) is 06:30 UTC, once
    assert fires("at(2026-12-24T12:00:00)", utc(2026, 12, 1), Timing.of("Asia/Kolkata")) == [utc(2026, 12, 24, 6, 30)]
    assert fires("at(2026-12-24T12:00:00)", utc(2026, 12, 25)) == []


def test_rate_starts_at_creation_or_at_start_date_and_stops_after_end_date() -> None:
    created = datetime(2026, 12, 1, 10, 0, 7, tzinfo=UTC)
    # no StartDate: at once, then every period
    assert fires("rate(5 minutes)", created - timedelta(microseconds=1), created=created) == [
        created,
        created + timedelta(minutes=5),
        created + timedelta(minutes=10),
    ]
    # a StartDate: from there; an EndDate: nothing after it
    timing = Timing.of("UTC", start=utc(2026, 12, 2), end=utc(2026, 12, 2, 2, 30))
    assert fires("rate(1 hour)", created, timing, 10) == [utc(2026, 12, 2), utc(2026, 12, 2, 1), utc(2026, 12, 2, 2)]
    assert fires("rate(1 day)", created, Timing.of("UTC", start=utc(2026, 11, 30)), 2) == [
        utc(2026, 12, 2),
        utc(2026, 12, 3),
    ]


def test_cron_respects_start_and_end_dates() -> None:
    timing = Timing.of("UTC", start=utc(2026, 12, 3), end=utc(2026, 12, 5))
    assert fires("cron(0 12 * * ? *)", utc(2026, 12, 1), timing, 10) == [
        utc(2026, 12, 3, 12),
        utc(2026, 12, 4, 12),
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 12 * * * *)",  # both day fields given
        "cron(0 12 ? * ? *)",  # neither
        "cron(0 12 * * ?)",  # five fields
        "cron(60 12 * * ? *)",  # minute out of range
        "cron(0 12 ? * 8 *)",  # day of week out of range (1-7)
        "cron(0 12 ? * 3#6 *)",
        "cron(0 12 32W * ? *)",
        "rate(0 minutes)",
        "rate(5 seconds)",
        "rate(five minutes)",
        "at(2026-12-24 12:00:00)",
        "at(2026-02-30T12:00:00)",
        "every(5 minutes)",
    ],
)
def test_an_expression_scheduler_refuses_is_refused(expression: str) -> None:
    with pytest.raises(ScheduleExpressionError):
        parse_expression(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ScheduleExpressionError):
        Timing.of("Mars/Olympus_Mons")
