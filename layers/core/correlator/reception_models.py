"""What ``POST /events`` accepts and answers, as pydantic models: the resolver's route and the OpenAPI document.

Requests the API accepts are validated without them, by ``correlator.reception``'s compiled schemas
(generated from these models by ``tools.coreschema``); every refusal goes through the resolver,
which validates with these and writes the error bodies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from correlator.event import EventSubmission
from correlator.eventfields import MAX_EVENTS_PER_REQUEST, is_batch


class EventBatch(BaseModel):
    """A batch submission: ``{"events": [...]}`` with 1 to 100 events."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventSubmission], Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)]

    def __repr__(self) -> str:
        # Kept short: Powertools formats route arguments into a debug message on every request.
        return f"EventBatch(<{len(self.events)} events>)"


def _submission_tag(value: Any) -> str | None:
    if isinstance(value, EventBatch) or (isinstance(value, dict) and is_batch(value)):
        return "batch"
    if isinstance(value, dict | EventSubmission):
        return "event"
    return None


Submission = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[EventSubmission, Tag("event")],
    Discriminator(_submission_tag),
]


class EventResult(BaseModel):
    model_config = ConfigDict(defer_build=True)  # only the resolver's route (and OpenAPI) need these two

    id: str
    status: Literal["accepted"]


class ReceptionResponse(BaseModel):
    """``200``: every event was accepted, in submission order."""

    model_config = ConfigDict(defer_build=True)

    results: list[EventResult]


def submissions_of(submission: EventBatch | EventSubmission) -> list[EventSubmission]:
    return submission.events if isinstance(submission, EventBatch) else [submission]
