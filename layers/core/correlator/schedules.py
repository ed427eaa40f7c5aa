"""Timer schedules: EventBridge Scheduler cron expressions and time zones, checked before AWS sees them.

``validate_cron`` accepts exactly the ``cron(minutes hours day-of-month month day-of-week year)``
syntax that EventBridge Scheduler documents: ``, - * /`` in every field, ``?`` in day-of-month or
day-of-week (exactly one of them), ``L`` and ``W`` in day-of-month, ``L`` and ``#`` in
day-of-week, month and weekday names. ``validate_timezone`` accepts IANA names (``Europe/Berlin``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CRON_RE = re.compile(r"^cron\((?P<fields>[^()]*)\)$")
_ZONE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]{0,30}(?:/[A-Za-z0-9_+-]{1,30}){0,2}$")
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_WEEKDAYS = {name: number for number, name in enumerate(_WEEKDAY_NAMES, 1)}


@dataclass(frozen=True, slots=True)
class CronField:
    name: str
    low: int
    high: int
    names: dict[str, int]


CRON_FIELDS = (
    CronField("minutes", 0, 59, {}),
    CronField("hours", 0, 23, {}),
    CronField("day-of-month", 1, 31, {}),
    CronField("month", 1, 12, _MONTHS),
    CronField("day-of-week", 1, 7, _WEEKDAYS),
    CronField("year", 1970, 2199, {}),
)
DAY_OF_MONTH, DAY_OF_WEEK = CRON_FIELDS[2], CRON_FIELDS[4]


def is_cron(expression: str) -> bool:
    """True when ``expression`` is written as ``cron(...)`` (valid or not)."""
    return expression.startswith("cron(")


def validate_cron(expression: str) -> str:
    """``expression`` when it is a valid Scheduler cron expression; ``ValueError`` saying what is wrong."""
    match = CRON_RE.fullmatch(expression)
    if match is None:
        raise ValueError("a cron expression is cron(minutes hours day-of-month month day-of-week year)")
    fields = match.group("fields").split()
    if len(fields) != len(CRON_FIELDS):
        raise ValueError(f"cron takes 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}")
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
    for field, text in zip(CRON_FIELDS, fields, strict=True):
        for item in text.split(","):
            if not _valid_item(field, item):
                raise ValueError(f"cron {field.name} field: {item!r} is not valid (allowed {field.low}-{field.high})")
        if "?" in text and text != "?":
            raise ValueError(f"cron {field.name} field: '?' stands alone")
    return expression


def _valid_item(field: CronField, item: str) -> bool:
    if item == "?":
        return field in (DAY_OF_MONTH, DAY_OF_WEEK)
    if field is DAY_OF_MONTH and (item == "L" or re.fullmatch(r"L-\d{1,2}", item) or item.endswith("W")):
        number = item[:-1] if item.endswith("W") else item[2:] or "1"
        return _value(field, number) is not None
    if field is DAY_OF_WEEK and "#" in item:
        day, _, nth = item.partition("#")
        return _value(field, day) is not None and nth in {"1", "2", "3", "4", "5"}
    if field is DAY_OF_WEEK and item.endswith("L") and len(item) > 1:
        return _value(field, item[:-1]) is not None
    if field is DAY_OF_WEEK and item == "L":
        return True
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and 1 <= int(step) <= field.high):
        return False
    if base == "*":
        return True
    low, dash, high = base.partition("-")
    first = _value(field, low)
    if not dash:
        return first is not None
    last = _value(field, high)
    return first is not None and last is not None


def _value(field: CronField, text: str) -> int | None:
    number = field.names.get(text.upper()) if field.names else None
    if number is None and text.isascii() and text.isdigit():
        number = int(text)
    return number if number is not None and field.low <= number <= field.high else None


def validate_timezone(name: str) -> str:
    """``name`` when it is an IANA time zone (``Europe/Berlin``, ``UTC``); ``ValueError`` otherwise."""
    if not _ZONE_NAME_RE.fullmatch(name):
        raise ValueError(f"{name[:64]!r} is not an IANA time zone name (e.g. Europe/Berlin, UTC)")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from None
    return name
