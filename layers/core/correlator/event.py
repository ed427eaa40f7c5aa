"""The Correlator event: one model for external (client) and internal (system) events.

``EventSubmission`` is what a client may send; ``Event`` is the stamped event that travels on
the bus (EventBridge ``detail``), in SQS bodies and into the event log. JSON keys are snake_case.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, TypedDict

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StringConstraints
from pydantic_core import PydanticSerializationError

from correlator.eventfields import (
    DATASET_PATTERN,
    EVENT_ID_PATTERN,
    LEVEL_ALIASES,
    MAX_SCHEMA_CHARS,
    MAX_SUBJECT_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_SYSTEM_ID_CHARS,
    MAX_TEXT_CHARS,
    MAX_TIME_CHARS,
    MAX_URL_CHARS,
    MAX_VIA_HOPS,
    REQUEST_KEY_PATTERN,
    TYPE_PATTERN,
    Kind,
    Level,
    dataset_iff_kind_dataset,
    dataset_row,
    format_time,
    format_time_or_none,
    is_valid_request_key,
    kind_of,
    level_of,
    new_event_id,
    new_event_ids,
    new_request_key,
    parse_time,
    time_or_none,
)

# What ``correlator.eventfields`` defines, importable from here as before.
__all__ = [
    "DATASET_PATTERN",
    "EVENT_ID_PATTERN",
    "LEVEL_ALIASES",
    "MAX_SCHEMA_CHARS",
    "MAX_SUBJECT_CHARS",
    "MAX_SUMMARY_CHARS",
    "MAX_SYSTEM_ID_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_TIME_CHARS",
    "MAX_URL_CHARS",
    "MAX_VIA_HOPS",
    "REQUEST_KEY_PATTERN",
    "TYPE_PATTERN",
    "Event",
    "EventSubmission",
    "FollowUp",
    "Kind",
    "Level",
    "follow_up",
    "format_time",
    "is_valid_request_key",
    "new_event_id",
    "new_event_ids",
    "new_request_key",
    "parse_time",
    "stamp_event",
]

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
EventType = Annotated[str, StringConstraints(pattern=TYPE_PATTERN)]
DatasetId = Annotated[str, StringConstraints(pattern=DATASET_PATTERN)]


# The cross-field rule of ``dataset_iff_kind_dataset`` and ``dataset_row``, for the OpenAPI document:
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
    level: Annotated[Level, BeforeValidator(level_of)] = Level.INFO
    kind: Annotated[Kind, BeforeValidator(kind_of)] = Kind.STANDARD
    time: Annotated[datetime | None, BeforeValidator(time_or_none), PlainSerializer(format_time_or_none)] = None
    object: Text | None = None
    info: Text | None = None
    summary: Annotated[str, StringConstraints(max_length=MAX_SUMMARY_CHARS)] | None = None
    description: Text | None = None
    system_id: Annotated[str, StringConstraints(max_length=MAX_SYSTEM_ID_CHARS)] | None = None
    dataset: Annotated[DatasetId | None, AfterValidator(dataset_iff_kind_dataset)] = Field(
        default=None, validate_default=True
    )
    payload: Annotated[dict[str, Any] | None, AfterValidator(dataset_row)] = Field(default=None, validate_default=True)
    schema_: Annotated[str, StringConstraints(max_length=MAX_SCHEMA_CHARS)] | None = Field(default=None, alias="schema")


class Event(EventSubmission):
    """A stamped event, as published on the bus and consumed by every action."""

    # Built on first use: the reception publishes events without ever validating or dumping one.
    model_config = ConfigDict(defer_build=True)

    id: Annotated[str, StringConstraints(pattern=EVENT_ID_PATTERN)]
    time: Annotated[datetime, BeforeValidator(time_or_none), PlainSerializer(format_time)]  # now required
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
