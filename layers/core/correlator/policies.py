"""Delivery policies: when a matching event should *not* turn into a notification right away.

A rule's ``policy`` (next to ``config``) combines, in this order of evaluation:

- ``mute`` / ``active``: time intervals (Alertmanager's ``time_intervals`` shape: ``weekdays``,
  ``times``, ``days_of_month``, ``months``, with a ``location`` time zone). A delivery inside a
  ``mute`` interval, or outside every ``active`` interval, is dropped or held until the window
  ends (``when_muted``).
- ``dedup``: a delivery whose key (event fields, default ``type`` + ``object``) was delivered
  within ``window`` is suppressed.
- ``throttle``: at most ``limit`` deliveries per ``window``, per rule or per ``key``; the excess
  is dropped or folded into the next digest (``excess``).
- ``group``: Alertmanager-style grouping — deliveries with the same ``group_by`` values are
  collected and sent as one digest after ``group_wait``, then at most one per ``group_interval``;
  a group quiet for ``repeat_interval`` after its last digest starts afresh. With a ``throttle``,
  only the excess is grouped (``excess: digest``).

This module is pure (models, keys, time windows); ``correlator.policy_state`` keeps the state in
DynamoDB and decides.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from correlator.schedules import validate_timezone

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# What a key may name: an event field, or a payload field (``payload.service``).
_FIELD_RE = (
    r"^(?:id|type|level|kind|object|info|summary|system_id|dataset|subject|schema|request_key"
    r"|payload\.[A-Za-z0-9_-]{1,64})$"
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
MAX_DIGEST_EVENTS = 100
MAX_HOLD_DAYS = 400


def parse_duration(value: str | int) -> int:
    """Seconds in ``value``: an int, or ``1d2h3m4s`` parts as Alertmanager writes them (``30s``, ``10m``, ``4h``)."""
    if isinstance(value, int):
        return value
    match = _DURATION_RE.fullmatch(value.strip()) if value.strip() else None
    if match is None:
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 10m, 1h30m, 1d)")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _duration(low: int, high: int) -> Any:
    def check(value: str | int) -> int:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise ValueError(f"must be between {low} s and {high} s")
        return seconds

    return check


Field_ = Annotated[str, StringConstraints(pattern=_FIELD_RE)]
Duration = Annotated[str | int, Field(description="seconds, or 30s / 10m / 1h30m / 1d")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ThrottlePolicy(_Model):
    limit: Annotated[int, Field(ge=1, le=10_000)]
    window: Duration
    key: list[Field_] = Field(default_factory=list, max_length=5)
    excess: Literal["drop", "digest"] = "drop"

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | int) -> int:
        return _duration(1, 7 * 86_400)(value)  # type: ignore[no-any-return]


class DedupPolicy(_Model):
    key: list[Field_] = Field(default_factory=lambda: ["type", "object"], min_length=1, max_length=5)
    window: Duration

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | int) -> int:
        return _duration(1, 30 * 86_400)(value)  # type: ignore[no-any-return]


class GroupPolicy(_Model):
    group_by: list[Field_] = Field(default_factory=list, max_length=5)
    group_wait: Duration = 30
    group_interval: Duration = 300
    repeat_interval: Duration = 14_400
    limit: Annotated[int, Field(ge=1, le=MAX_DIGEST_EVENTS)] = 20

    @field_validator("group_wait", "group_interval", "repeat_interval")
    @classmethod
    def _durations(cls, value: str | int) -> int:
        return _duration(0, 7 * 86_400)(value)  # type: ignore[no-any-return]

    @model_validator(mode="after")
    def _order(self) -> GroupPolicy:
        if int(self.repeat_interval) < int(self.group_interval):
            raise ValueError("repeat_interval must be at least group_interval")
        return self


class TimeRange(_Model):
    start_time: Annotated[str, StringConstraints(pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$")]
    end_time: Annotated[str, StringConstraints(pattern=r"^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$")]

    @model_validator(mode="after")
    def _order(self) -> TimeRange:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time (split a range that crosses midnight in two)")
        return self

    def minutes(self) -> tuple[int, int]:
        (sh, sm), (eh, em) = (map(int, t.split(":")) for t in (self.start_time, self.end_time))
        return sh * 60 + sm, eh * 60 + em


def _ranges(items: Sequence[str], names: Sequence[str], high: int, what: str) -> list[tuple[int, int]]:
    """``["monday:friday", "sunday"]`` / ``["1:5", "-1"]`` as inclusive number ranges (names count from 1).

    Only ``days_of_month`` takes negative numbers (``-1`` is the last day of the month).
    """
    ranges = []
    for item in items:
        parts = item.lower().split(":")
        if len(parts) > 2:
            raise ValueError(f"{what}: {item!r} is not a value or a start:end range")
        numbers = []
        for part in parts:
            if part in names:
                numbers.append(names.index(part) + 1)
                continue
            number = int(part) if re.fullmatch(r"-?\d{1,2}", part) else 0
            if not (1 <= number <= high or (what == "days_of_month" and -high <= number <= -1)):
                raise ValueError(f"{what}: {part!r} is not valid")
            numbers.append(number)
        ranges.append((numbers[0], numbers[-1]))
    return ranges


class TimeInterval(_Model):
    """One Alertmanager time interval; every given field must hold (absent = any)."""

    weekdays: list[str] | None = Field(default=None, min_length=1, max_length=7)
    times: list[TimeRange] | None = Field(default=None, min_length=1, max_length=10)
    days_of_month: list[str] | None = Field(default=None, min_length=1, max_length=31)
    months: list[str] | None = Field(default=None, min_length=1, max_length=12)
    location: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        return validate_timezone(value)

    @model_validator(mode="after")
    def _fields(self) -> TimeInterval:
        _ranges(self.weekdays or [], WEEKDAYS, 7, "weekdays")
        _ranges(self.days_of_month or [], (), 31, "days_of_month")
        _ranges(self.months or [], MONTHS, 12, "months")
        return self

    def contains(self, moment: datetime) -> bool:
        """True when ``moment`` (aware) falls in this interval, read in its ``location``."""
        local = moment.astimezone(ZoneInfo(self.location))
        return self._day_matches(local) and self._time_matches(local)

    def _day_matches(self, local: datetime) -> bool:
        if self.weekdays and not _in(local.isoweekday(), _ranges(self.weekdays, WEEKDAYS, 7, "weekdays")):
            return False
        if self.months and not _in(local.month, _ranges(self.months, MONTHS, 12, "months")):
            return False
        if self.days_of_month:
            last = ((local.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
            spans = [
                (start if start > 0 else last + start + 1, end if end > 0 else last + end + 1)
                for start, end in _ranges(self.days_of_month, (), 31, "days_of_month")
            ]
            if not _in(local.day, spans):
                return False
        return True

    def _time_matches(self, local: datetime) -> bool:
        if not self.times:
            return True
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in (span.minutes() for span in self.times))


def _in(value: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start <= value <= end for start, end in spans)


class DeliveryPolicy(_Model):
    """A rule's ``policy``: see the module docstring."""

    throttle: ThrottlePolicy | None = None
    dedup: DedupPolicy | None = None
    group: GroupPolicy | None = None
    mute: list[TimeInterval] | None = Field(default=None, min_length=1, max_length=10)
    active: list[TimeInterval] | None = Field(default=None, min_length=1, max_length=10)
    when_muted: Literal["drop", "hold"] = "drop"

    @model_validator(mode="after")
    def _something(self) -> DeliveryPolicy:
        if not any((self.throttle, self.dedup, self.group, self.mute, self.active)):
            raise ValueError("give at least one of throttle, dedup, group, mute, active")
        return self

    def muted(self, moment: datetime) -> bool:
        """True when deliveries are muted at ``moment``: inside a mute interval or outside every active one."""
        if self.mute and any(interval.contains(moment) for interval in self.mute):
            return True
        return bool(self.active) and not any(interval.contains(moment) for interval in self.active or [])

    def unmuted_at(self, moment: datetime) -> datetime | None:
        """The first minute at or after ``moment`` that is not muted; ``None`` if none within ~a year."""
        candidate = moment.replace(second=0, microsecond=0)
        if candidate < moment:
            candidate += timedelta(minutes=1)
        end = moment + timedelta(days=MAX_HOLD_DAYS)
        while candidate < end:
            if not self.muted(candidate):
                return candidate
            candidate += timedelta(minutes=1)
        return None


def field_value(detail: Mapping[str, Any], name: str) -> str:
    """A key part: the event field (or ``payload.<name>``) as text; absent is empty."""
    if name.startswith("payload."):
        value = (detail.get("payload") or {}).get(name.removeprefix("payload."))
    else:
        value = detail.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def key_of(detail: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, dict[str, str]]:
    """A stable short key for the values of ``fields`` in ``detail``, and the values themselves (labels)."""
    labels = {name: field_value(detail, name) for name in fields}
    digest = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:32]
    return digest, labels
