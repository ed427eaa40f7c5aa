"""EventBridge Scheduler's schedule expressions: ``at(...)``, ``rate(...)`` and AWS's six-field ``cron(...)``.

Each parsed expression answers ``next_after(after)``: the first time, strictly after ``after``,
at which the schedule fires (an aware UTC datetime), or ``None`` when it never fires again.
Times are evaluated in the schedule's ``ScheduleExpressionTimezone`` and bounded by its
``StartDate``/``EndDate`` (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html).

A small parser of AWS's cron rather than a general cron library: AWS cron has six fields
(minutes hours day-of-month month day-of-week year), numbers days of the week 1-7 from Sunday,
requires ``?`` in one of the two day fields, and has ``L``, ``W`` and ``#``. croniter, the
well-kept Python option, reads a sixth field as seconds, numbers Sunday 0 and has no ``W`` or
``?``: translating into it would be as long as this parser and easier to get wrong.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["At", "Cron", "Rate", "ScheduleExpressionError", "Timing", "parse_expression"]

MONTHS = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86_400, "days": 86_400}
SEARCH_YEARS = 8  # how far ahead a cron expression is searched (leap days, 29 Feb on a Monday...)


class ScheduleExpressionError(ValueError):
    """The expression is not one EventBridge Scheduler accepts."""


@dataclass(frozen=True)
class Timing:
    """Where and within what dates a schedule's expression is evaluated."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(cls, timezone: str | None, start: datetime | None = None, end: datetime | None = None) -> Timing:
        try:
            zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleExpressionError(f"unknown ScheduleExpressionTimezone {timezone!r}") from None
        return cls(zone, start, end)

    def within(self, when: datetime | None) -> datetime | None:
        if when is None or (self.end is not None and when > self.end):
            return None
        return when


def _wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time of ``zone`` as UTC: a time skipped by a DST change moves forward with the
    clock (02:30 on a spring-forward night runs at 03:30), a repeated one runs the first time."""
    return wall.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class At:
    """``at(yyyy-mm-ddThh:mm:ss)``: once, at that wall-clock time of the schedule's time zone."""

    wall: datetime

    def next_after(self, after: datetime, timing: Timing) -> datetime | None:
        when = _wall_to_utc(self.wall, timing.zone)  # StartDate/EndDate do not apply to one-time schedules
        return when if when > after else None


@dataclass(frozen=True)
class Rate:
    """``rate(value unit)``: every ``seconds``, from StartDate or else from the schedule's creation."""

    seconds: int
    anchor: datetime | None = None  # the creation time when there is no StartDate

    def next_after(self, after: datetime, timing: Timing) -> datetime | None:
        anchor = timing.start or self.anchor or after
        if after < anchor:
            return timing.within(anchor)
        periods = int((after - anchor).total_seconds() // self.seconds) + 1
        return timing.within(anchor + timedelta(seconds=periods * self.seconds))


def _numbers(text: str, low: int, high: int, names: dict[str, int] | None = None) -> int:
    value = (names or {}).get(text.upper()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise ScheduleExpressionError(f"{text!r} is not between {low} and {high}")
    return value


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """``*``, ``a``, ``a-b``, ``a/n``, ``*/n``, ``a-b/n`` and comma lists of those."""
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = _numbers(step_text, 1, high) if slash else 1
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, last_text = base.split("-", 1)
            first, last = _numbers(first_text, low, high, names), _numbers(last_text, low, high, names)
        else:
            first = _numbers(base, low, high, names)
            last = high if slash else first
        if first > last:
            raise ScheduleExpressionError(f"{part!r}: the range runs backwards")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """``cron(minutes hours day-of-month month day-of-week year)``, AWS's flavour."""

    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    days: str  # the day-of-month field ("?" when day-of-week is used)
    weekdays: str  # the day-of-week field ("?" when day-of-month is used)

    @classmethod
    def parse(cls, fields: str) -> Cron:
        parts = fields.split()
        if len(parts) != 6:
            raise ScheduleExpressionError(
                "a cron expression has six fields: minutes hours day-of-month month day-of-week year"
            )
        minutes, hours, days, months, weekdays, years = parts
        if (days == "?") == (weekdays == "?"):
            raise ScheduleExpressionError("one (and only one) of day-of-month and day-of-week must be '?'")
        cron = cls(
            _field(minutes, 0, 59),
            _field(hours, 0, 23),
            _field(months, 1, 12, MONTHS),
            _field(years, 1970, 2199),
            days.upper(),
            weekdays.upper(),
        )
        cron._check_day_fields()
        return cron

    def _check_day_fields(self) -> None:
        self.day_matches(date(2024, 2, 29))  # raises ScheduleExpressionError on a malformed day field

    def day_matches(self, day: date) -> bool:
        if self.days != "?":
            return _day_of_month_matches(self.days, day)
        return _day_of_week_matches(self.weekdays, day)

    def next_after(self, after: datetime, timing: Timing) -> datetime | None:
        if timing.start is not None and after < timing.start:
            after = timing.start - timedelta(microseconds=1)
        wall_after = after.astimezone(timing.zone).replace(tzinfo=None)
        day = wall_after.date()
        for _ in range(366 * SEARCH_YEARS):
            if day.year in self.years and day.month in self.months and self.day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        wall = datetime(day.year, day.month, day.day, hour, minute)
                        when = _wall_to_utc(wall, timing.zone)
                        if when > after:
                            return timing.within(when)
            if day.year > max(self.years):
                return None
            day += timedelta(days=1)
        return None


def _last_day(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _day_of_month_matches(text: str, day: date) -> bool:
    if text == "L":
        return day.day == _last_day(day)
    if text == "LW":  # the last weekday of the month
        last = date(day.year, day.month, _last_day(day))
        while last.weekday() >= 5:
            last -= timedelta(days=1)
        return day == last
    if text.endswith("W"):  # the weekday nearest to that day, within the month
        target = date(day.year, day.month, min(_numbers(text[:-1], 1, 31), _last_day(day)))
        if target.weekday() == 5:
            target = target - timedelta(days=1) if target.day > 1 else target + timedelta(days=2)
        elif target.weekday() == 6:
            target = target + timedelta(days=1) if target.day < _last_day(day) else target - timedelta(days=2)
        return day == target
    return day.day in _field(text, 1, 31)


def _aws_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # Monday is 2, Sunday is 1


def _day_of_week_matches(text: str, day: date) -> bool:
    if "#" in text:  # the nth such weekday of the month
        weekday_text, nth_text = text.split("#", 1)
        weekday, nth = _numbers(weekday_text, 1, 7, WEEKDAYS), _numbers(nth_text, 1, 5)
        return _aws_weekday(day) == weekday and (day.day - 1) // 7 + 1 == nth
    if text.endswith("L") and text != "L":  # the last such weekday of the month
        weekday = _numbers(text[:-1], 1, 7, WEEKDAYS)
        return _aws_weekday(day) == weekday and day.day + 7 > _last_day(day)
    if text == "L":
        return _aws_weekday(day) == 7  # "L" alone: the last day of the week, Saturday
    return _aws_weekday(day) in _field(text, 1, 7, WEEKDAYS)


_EXPRESSION = re.compile(r"^(at|rate|cron)\((.*)\)$")
_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def parse_expression(expression: str, created: datetime | None = None) -> At | Rate | Cron:
    """Parse a ScheduleExpression; ``created`` anchors a rate without StartDate."""
    found = _EXPRESSION.match(expression.strip())
    if found is None:
        raise ScheduleExpressionError(f"{expression!r} is not at(...), rate(...) or cron(...)")
    kind, body = found.group(1), found.group(2).strip()
    if kind == "at":
        if not _AT.match(body):
            raise ScheduleExpressionError(f"at({body}): expected yyyy-mm-ddThh:mm:ss")
        try:
            return At(datetime.strptime(body, "%Y-%m-%dT%H:%M:%S"))
        except ValueError as error:
            raise ScheduleExpressionError(f"at({body}): {error}") from None
    if kind == "rate":
        value, _, unit = body.partition(" ")
        if not value.isdigit() or int(value) < 1 or unit.strip() not in RATE_UNITS:
            raise ScheduleExpressionError(f"rate({body}): expected a positive number and minute(s), hour(s) or day(s)")
        return Rate(int(value) * RATE_UNITS[unit.strip()], created)
    return Cron.parse(body)
