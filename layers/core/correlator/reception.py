"""Event reception: what ``POST /events`` accepts, and how a submission becomes published events."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic_core import SchemaSerializer, SchemaValidator

from correlator.api import Caller, caller_of, is_exact_path, json_object_body, lowercase_headers, raw_json_body
from correlator.envelope import MAX_ENTRY_BYTES, SOURCE_EXTERNAL, Envelope, entry_size
from correlator.errors import CorrelatorError, PayloadTooLargeError, PublishFailedError
from correlator.eventfields import format_time, is_batch, new_event_ids, parse_time
from correlator.submission_schema import BATCH_SCHEMA, EVENT_SCHEMA

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from correlator.event import EventSubmission
    from correlator.publisher import EventPublisher, PublishOutcome

# Below Lambda's 6 MB synchronous payload limit, leaving room for the proxy envelope.
MAX_BODY_BYTES = 5 * 1024 * 1024


# The fields of one submission by name, as the compiled validator returns them (an ``EventSubmission``'s
# ``__dict__`` holds the same).
SubmissionFields = dict[str, Any]


# json.dumps(..., ensure_ascii=False, separators=(",", ":")) without building an encoder per call.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# Built once: pydantic-core's validators of a batch and of one event and the serialiser of one event, from the
# schemas compiled from the models the resolver's route validates with (``correlator.reception_models``).
_validate_event = SchemaValidator(EVENT_SCHEMA).validate_python
_validate_batch = SchemaValidator(BATCH_SCHEMA).validate_python
_submission_json = SchemaSerializer(EVENT_SCHEMA).to_json
# What entry_size counts in every stamped entry besides its DetailType and Detail: Source and Time.
_STAMPED_ENTRY_BYTES = entry_size({"Source": SOURCE_EXTERNAL, "Time": datetime.now(UTC)})


@dataclass(slots=True)  # not frozen: built per request, and a frozen dataclass costs ~3x to build
class PlainRequest:
    """A ``POST /events`` request with nothing to refuse so far: its submissions and its caller."""

    submissions: list[SubmissionFields]
    caller: Caller


def plain_request(event: Mapping[str, Any]) -> PlainRequest | None:
    """The submissions and caller of a REST proxy event for ``POST /events`` that passes every check.

    None for anything else (another route, base64, a body or header the API refuses): the resolver
    answers those, with the API's error bodies. The checks are the resolver's own (the exact path,
    the request-body gate: media type, size, strict UTF-8 JSON within ``correlator.jsonbody``'s
    limits, an object; then ``Submission``, compiled, and the chain headers), so a request either path
    accepts is one both accept; this path only skips the resolver's per-request machinery, and pydantic.
    Each submission comes as its fields by name (``SubmissionFields``).
    """
    if event.get("httpMethod") != "POST" or event.get("resource") != "/events" or event.get("isBase64Encoded"):
        return None
    if not is_exact_path(event.get("path") or "/"):
        return None
    headers = lowercase_headers(event)
    try:
        _, parsed = json_object_body(
            raw_json_body(headers.get("content-type"), event.get("body"), False, MAX_BODY_BYTES)
        )
        submissions = _validate_batch(parsed)["events"] if is_batch(parsed) else [_validate_event(parsed)]
        caller = caller_of(event, headers)
    except (CorrelatorError, ValueError):  # pydantic-core's ValidationError is a ValueError
        return None
    return PlainRequest(submissions, caller)


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


def stamp_submissions(
    submissions: Sequence[EventSubmission | SubmissionFields],
    caller: Caller,
    bus_name: str,
    *,
    now: datetime | None = None,
) -> list[Envelope]:
    """Stamp every submission as an external event for ``bus_name``; refuse the lot if any is over 256 KB.

    Each entry's ``Detail`` is ``stamp_event(...).to_detail()`` (a test holds them equal) without an
    ``Event`` per submission, the reception's per-event cost: the submission's own JSON (pydantic-core)
    with the server's fields, serialised once per request, added after its last field. Every event
    of the request gets the same reception time (when none is given).
    """
    # ',"external":true,...}' and ',"time":"...",' + that: the fields every event of this request shares,
    # as _COMPACT_JSON writes the dict {"external", "request_key", "hops", "subject", "via"} (absent ones left out).
    shared = f',"external":true,"request_key":{_COMPACT_JSON.encode(caller.request_key)},"hops":{int(caller.hops)}'
    if caller.subject is not None:
        shared += f',"subject":{_COMPACT_JSON.encode(caller.subject)}'
    if caller.via:
        shared += f',"via":[{",".join(_COMPACT_JSON.encode(hop) for hop in caller.via)}]'
    shared += "}"
    received_at: datetime | None = None  # read once, for the first event that carries no time
    shared_with_time = shared
    envelopes = []
    for submission, event_id in zip(submissions, new_event_ids(len(submissions)), strict=True):
        submitted = submission if type(submission) is dict else submission.__dict__  # its fields by name
        time = submitted["time"]
        if time is None:
            if received_at is None:
                received_at = parse_time(now or datetime.now(UTC))
                shared_with_time = f',"time":"{format_time(received_at)}"{shared}'
            time, fields = received_at, shared_with_time
        else:
            fields = shared
        own = _submission_json(submitted, exclude_none=True, by_alias=True).decode()  # '{"type":...}', never empty
        detail = f'{own[:-1]},"id":"{event_id}"{fields}'  # event_id: URL-safe characters, nothing to escape
        entry: PutEventsRequestEntryTypeDef = {
            "Source": SOURCE_EXTERNAL,
            "DetailType": submitted["type"],
            "Detail": detail,
            "Time": time,
            "EventBusName": bus_name,
        }
        # entry_size(entry), knowing the fields: a Time, an ASCII Source and DetailType (its pattern), no Resources
        detail_bytes = len(detail) if detail.isascii() else len(detail.encode())
        size = _STAMPED_ENTRY_BYTES + len(submitted["type"]) + detail_bytes
        envelopes.append(Envelope(event_id, entry, size))
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


def accepted_body(outcomes: list[PublishOutcome]) -> str:
    """The ``ReceptionResponse`` of events all accepted, as the resolver serialises it (compact, ASCII).

    Written without an encoder pass: every field is a known ASCII string (ids are base64url).
    """
    results = ",".join([f'{{"id":"{outcome.event_id}","status":"accepted"}}' for outcome in outcomes])
    return f'{{"results":[{results}]}}'


def result_of(outcome: PublishOutcome) -> dict[str, Any]:
    result: dict[str, Any] = {"id": outcome.event_id, "status": outcome.status}
    if outcome.error_code:
        result["error_code"] = outcome.error_code
    return result
