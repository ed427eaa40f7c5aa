"""The Correlator event: one model for external (client) and internal (system) events.

``EventSubmission`` is what a client may send; ``Event`` is the stamped event that travels on
the bus (EventBridge ``detail``), in SQS bodies and into the event log. JSON keys are snake_case.
"""

from __future__ import annotations

import binascii
import json
import os
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_serializer,
    field_validator,
)
from pydantic_core import PydanticSerializationError

MAX_TEXT_CHARS = 51_200
MAX_SUMMARY_CHARS = 1_024
MAX_SCHEMA_CHARS = 1_024
MAX_SYSTEM_ID_CHARS = 256
MAX_SUBJECT_CHARS = 2_048
MAX_VIA_HOPS = 32
MAX_URL_CHARS = 2_048
MAX_TIME_CHARS = 64

TYPE_PATTERN = r"^[A-Za-z0-9._:+-]{1,128}$"
DATASET_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
EVENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REQUEST_KEY_PATTERN = r"^[A-Za-z0-9_-]{0,128}$"
_REQUEST_KEY_RE = re.compile(REQUEST_KEY_PATTERN)
# RFC 3339 date-time (not every ISO 8601 form fromisoformat takes): fraction kept to microseconds.
_RFC3339_RE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6})[0-9]*)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class Level(StrEnum):
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


LEVEL_ALIASES: dict[str, Level] = {
    "info": Level.INFO,
    "informational": Level.INFO,
    "notice": Level.INFO,
    "warn": Level.WARN,
    "warning": Level.WARN,
    "error": Level.ERROR,
}


class Kind(StrEnum):
    STANDARD = "standard"
    DATASET = "dataset"


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
EventType = Annotated[str, StringConstraints(pattern=TYPE_PATTERN)]
DatasetId = Annotated[str, StringConstraints(pattern=DATASET_PATTERN)]
_DATASET_SCALARS = (str, int, float, bool, type(None))


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``: ``2026-11-22T14:52:39.778Z`` (always a four-digit year)."""
    # Not strftime("%Y"): glibc writes year 199 as "199", which nothing parses back; isoformat writes "0199"
    # and truncates the fraction to milliseconds. In UTC it ends "+00:00".
    if value.tzinfo is not UTC:  # parse_time's times are already
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_time(value: Any) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset; return it in UTC, truncated to ms.

    Only times that ``format_time`` writes back and this function reads back identically are
    accepted: at most ``MAX_TIME_CHARS`` characters, and years 0001-9999 once converted to UTC.
    """
    if isinstance(value, str) and len(value) > MAX_TIME_CHARS:
        raise ValueError(f"must be at most {MAX_TIME_CHARS} characters")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and (match := _RFC3339_RE.fullmatch(value)):
        base, fraction, offset = match.groups()
        # milliseconds kept, as below: the text says so already
        millis = "." + fraction[:3].ljust(6, "0") if fraction else ""
        utc = offset in "Zz"
        iso = f"{base.upper().replace(' ', 'T')}{millis}{'+00:00' if utc else offset}"
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            raise ValueError("must be an RFC 3339 timestamp, e.g. 2026-11-22T14:52:39.778Z") from None
        if utc:  # in UTC (the singleton fromisoformat gives) and truncated: nothing left to do
            return parsed
    else:
        raise ValueError("must be an RFC 3339 timestamp with a UTC offset or Z, e.g. 2026-11-22T14:52:39.778Z")
    if parsed.tzinfo is None:
        raise ValueError("must carry a UTC offset or Z")
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall between years 0001 and 9999 once converted to UTC") from None
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def new_event_id() -> str:
    """A URL-safe unique event id (22 characters: 128 random bits, base64url)."""
    return secrets.token_urlsafe(16)


_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64 to base64url


def new_event_ids(count: int) -> list[str]:
    """``count`` ids like ``new_event_id``'s, from one read of the system's randomness."""
    random = os.urandom(16 * count)  # what secrets.token_bytes reads, without its two wrappers
    return [
        binascii.b2a_base64(random[start : start + 16], newline=False)[:22].translate(_URLSAFE).decode("ascii")
        for start in range(0, 16 * count, 16)
    ]


def new_request_key() -> str:
    """A default request key, Personium style: ``{4}_{18}`` of a base64url UUID."""
    raw = new_event_id()
    return f"{raw[:4]}_{raw[4:]}"


def is_valid_request_key(value: str) -> bool:
    """True when ``value`` is a valid request key (``[A-Za-z0-9_-]{0,128}``)."""
    return _REQUEST_KEY_RE.fullmatch(value) is not None


# The cross-field rule of ``_dataset_iff_kind_dataset`` and ``_dataset_row``, for the OpenAPI document:
# a dataset event (kind "dataset", any case) needs its dataset and a non-empty payload of flat values; any
# other event has no dataset.
_DATASET_KIND_SCHEMA: dict[str, Any] = {
    "if": {"properties": {"kind": {"pattern": "^[Dd][Aa][Tt][Aa][Ss][Ee][Tt]$"}}, "required": ["kind"]},
    "then": {
        "required": ["dataset", "payload"],
        "properties": {
            "dataset": {"type": "string"},
            "payload": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"anyOf": [{"type": kind} for kind in ("string", "number", "boolean", "null")]},
            },
        },
    },
    "else": {"properties": {"dataset": {"type": "null"}}},
}


class EventSubmission(BaseModel):
    """The fields a client may submit; anything else is refused (422)."""

    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=False,
        validate_by_alias=True,
        serialize_by_alias=True,
        json_schema_extra=_DATASET_KIND_SCHEMA,
    )

    type: EventType
    level: Level = Level.INFO
    kind: Kind = Kind.STANDARD
    time: datetime | None = None
    object: Text | None = None
    info: Text | None = None
    summary: Annotated[str, StringConstraints(max_length=MAX_SUMMARY_CHARS)] | None = None
    description: Text | None = None
    system_id: Annotated[str, StringConstraints(max_length=MAX_SYSTEM_ID_CHARS)] | None = None
    dataset: DatasetId | None = Field(default=None, validate_default=True)
    payload: dict[str, Any] | None = Field(default=None, validate_default=True)
    schema_: Annotated[str, StringConstraints(max_length=MAX_SCHEMA_CHARS)] | None = Field(default=None, alias="schema")

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Level:
        level = LEVEL_ALIASES.get(value.lower()) if isinstance(value, str) else None
        if level is None:
            raise ValueError("must be INFO, WARN or ERROR (aliases: informational, notice, warning)")
        return level

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Kind:
        if isinstance(value, str) and value.lower() in ("standard", "dataset"):
            return Kind(value.lower())
        raise ValueError("must be standard or dataset")

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> datetime | None:
        return None if value is None else parse_time(value)

    @field_serializer("time")
    def _serialize_time(self, value: datetime | None) -> str | None:
        return None if value is None else format_time(value)

    @field_validator("dataset", mode="after")
    @classmethod
    def _dataset_iff_kind_dataset(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind is Kind.DATASET and value is None:
            raise ValueError("required when kind is dataset")
        if kind is Kind.STANDARD and value is not None:
            raise ValueError("only allowed when kind is dataset")
        return value

    @field_validator("payload", mode="after")
    @classmethod
    def _dataset_row(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if info.data.get("kind") is Kind.DATASET:
            if not value:
                raise ValueError("a dataset event needs a non-empty payload (its row)")
            nested = sorted(key for key, item in value.items() if not isinstance(item, _DATASET_SCALARS))
            if nested:
                raise ValueError(f"dataset row values must be flat scalars, not objects or lists: {', '.join(nested)}")
        return value


class Event(EventSubmission):
    """A stamped event, as published on the bus and consumed by every action."""

    # Built on first use: the reception publishes events without ever validating or dumping one.
    model_config = ConfigDict(defer_build=True)

    id: Annotated[str, StringConstraints(pattern=EVENT_ID_PATTERN)]
    time: datetime
    external: bool
    subject: Annotated[str, StringConstraints(max_length=MAX_SUBJECT_CHARS)] | None = None
    request_key: Annotated[str, StringConstraints(pattern=REQUEST_KEY_PATTERN)] | None = None
    hops: Annotated[int, Field(ge=0)] = 0
    via: (
        Annotated[
            list[Annotated[str, StringConstraints(max_length=MAX_URL_CHARS)]],
            Field(max_length=MAX_VIA_HOPS),
        ]
        | None
    ) = None

    @field_serializer("time")
    def _serialize_time(self, value: datetime | None) -> str | None:
        return None if value is None else format_time(value)

    def to_detail(self) -> dict[str, Any]:
        """The JSON object published as the EventBridge ``detail`` (absent fields omitted)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_detail_json(self) -> str:
        """``to_detail`` as compact JSON (non-ASCII kept), serialised by pydantic-core in one pass."""
        try:
            return self.model_dump_json(exclude_none=True)
        except PydanticSerializationError:  # e.g. a lone surrogate: let json say what it makes of it
            return json.dumps(self.to_detail(), ensure_ascii=False, separators=(",", ":"))


def stamp_event(
    submission: EventSubmission,
    *,
    external: bool,
    subject: str | None,
    request_key: str,
    hops: int = 0,
    via: list[str] | None = None,
    now: datetime | None = None,
) -> Event:
    """Turn a validated submission into an ``Event``: id, time (unless given), caller, chain fields."""
    fields = dict(submission.__dict__)  # the fields by name (extra="forbid": nothing else), without iterating
    if fields["time"] is None:
        fields["time"] = parse_time(now or datetime.now(UTC))
    # The submission is already validated and the server fields are ours: skip re-validation.
    return Event.model_construct(
        **fields,
        id=new_event_id(),
        external=external,
        subject=subject,
        request_key=request_key,
        hops=hops,
        via=via or None,
    )


class FollowUp(TypedDict):
    """The chain fields of an event caused by another (``stamp_event``'s keywords)."""

    subject: str | None
    request_key: str
    hops: int
    via: list[str] | None


def follow_up(trigger: Event) -> FollowUp:
    """What an event caused by ``trigger`` carries: its subject, request key (or a new one) and via, ``hops`` + 1.

    Result events and the events scripts emit follow their trigger this way, so everything one
    request caused shares its request key and the stack's MaxHops bounds every chain.
    """
    request_key = trigger.request_key if trigger.request_key is not None else new_request_key()
    return FollowUp(subject=trigger.subject, request_key=request_key, hops=trigger.hops + 1, via=trigger.via)
