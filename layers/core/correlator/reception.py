"""Event reception: what ``POST /events`` accepts, and how a submission becomes published events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from correlator.api import Caller
from correlator.envelope import MAX_ENTRY_BYTES, Envelope, wrap
from correlator.errors import PayloadTooLargeError, PublishFailedError
from correlator.event import EventSubmission, stamp_event
from correlator.publisher import EventPublisher, PublishOutcome

MAX_EVENTS_PER_REQUEST = 100
# Below Lambda's 6 MB synchronous payload limit, leaving room for the proxy envelope.
MAX_BODY_BYTES = 5 * 1024 * 1024


class EventBatch(BaseModel):
    """A batch submission: ``{"events": [...]}`` with 1 to 100 events."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventSubmission], Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)]

    def __repr__(self) -> str:
        # Kept short: Powertools formats route arguments into a debug message on every request.
        return f"EventBatch(<{len(self.events)} events>)"


def _submission_tag(value: Any) -> str | None:
    if isinstance(value, EventBatch) or (isinstance(value, dict) and "events" in value):
        return "batch"
    if isinstance(value, dict | EventSubmission):
        return "event"
    return None


Submission = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[EventSubmission, Tag("event")],
    Discriminator(_submission_tag),
]


class EventResult(BaseModel):
    id: str
    status: Literal["accepted"]


class ReceptionResponse(BaseModel):
    """``200``: every event was accepted, in submission order."""

    results: list[EventResult]


def submissions_of(submission: EventBatch | EventSubmission) -> list[EventSubmission]:
    return submission.events if isinstance(submission, EventBatch) else [submission]


def locate(loc: tuple[Any, ...]) -> dict[str, Any]:
    """Map a validation error location to ``{"index", "field"}`` (index 0 for a single event)."""
    if loc[:1] == ("batch",):
        loc = loc[1:]
        if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            return {"index": loc[1], "field": ".".join(str(part) for part in loc[2:]) or "event"}
        return {"index": None, "field": ".".join(str(part) for part in loc) or "body"}
    if loc[:1] == ("event",):
        loc = loc[1:]
    return {"index": 0, "field": ".".join(str(part) for part in loc) or "event"}


def stamp_submissions(submissions: list[EventSubmission], caller: Caller, bus_name: str) -> list[Envelope]:
    """Stamp every submission as an external event for ``bus_name``; refuse the lot if any is over 256 KB."""
    envelopes = [
        wrap(
            stamp_event(
                submission,
                external=True,
                subject=caller.subject,
                request_key=caller.request_key,
                hops=caller.hops,
                via=caller.via,
            ),
            bus_name,
        )
        for submission in submissions
    ]
    oversized = [
        {
            "index": index,
            "field": "event",
            "message": f"{envelope.size} bytes once stamped; the limit is {MAX_ENTRY_BYTES}",
        }
        for index, envelope in enumerate(envelopes)
        if envelope.size > MAX_ENTRY_BYTES
    ]
    if oversized:
        raise PayloadTooLargeError(f"{len(oversized)} event(s) exceed the 256 KB EventBridge entry limit", oversized)
    return envelopes


def publish_or_raise(envelopes: list[Envelope], publisher: EventPublisher) -> list[PublishOutcome]:
    """Publish ``envelopes``; raise ``PublishFailedError`` listing every entry when any failed."""
    outcomes = publisher.publish_envelopes(envelopes)
    failed = [(index, outcome) for index, outcome in enumerate(outcomes) if not outcome.accepted]
    if failed:
        raise PublishFailedError(
            f"{len(failed)} of {len(outcomes)} events could not be published; resend those with status failed",
            details=[
                {
                    "index": index,
                    "id": outcome.event_id,
                    "error_code": outcome.error_code,
                    "message": outcome.error_message,
                }
                for index, outcome in failed
            ],
            results=[result_of(outcome) for outcome in outcomes],
        )
    return outcomes


def result_of(outcome: PublishOutcome) -> dict[str, Any]:
    result: dict[str, Any] = {"id": outcome.event_id, "status": outcome.status}
    if outcome.error_code:
        result["error_code"] = outcome.error_code
    return result
