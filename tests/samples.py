"""Sample events from ``events/`` (the same files ``sam local invoke -e`` takes), and variations of them."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


@cache
def _read_event(name: str) -> dict[str, Any]:
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``events/<name>.json``, e.g. ``load_event("apigw/post-event-single")``."""
    return copy.deepcopy(_read_event(name))


def with_headers(event: dict[str, Any], **headers: str | None) -> dict[str, Any]:
    """Set (or, with None, remove) request headers in both header maps of an API Gateway event.

    Header names are given with ``_`` for ``-``: ``with_headers(event, X_Request_Key="k1")``.
    """
    for key, value in headers.items():
        name = key.replace("_", "-")
        for existing in [h for h in event["headers"] if h.lower() == name.lower()]:
            del event["headers"][existing]
            event["multiValueHeaders"].pop(existing, None)
        if value is not None:
            event["headers"][name] = value
            event["multiValueHeaders"][name] = [value]
    return event


def post_events(body: Any = None, *, sample: str = "post-event-single", **headers: str | None) -> dict[str, Any]:
    """An API Gateway ``POST /events`` request from a sample, with another body and/or headers.

    ``body`` is sent as is when it is a ``str`` and as JSON otherwise; None keeps the sample's body.
    """
    event = load_event(f"apigw/{sample}")
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return with_headers(event, **headers)


def body_of(event: dict[str, Any]) -> Any:
    """The parsed JSON body of an API Gateway request sample."""
    return json.loads(event["body"])


def sqs_batch(messages: list[tuple[str, str]]) -> dict[str, Any]:
    """An SQS event of ``(message id, body)`` records, shaped like ``events/sqs/csv-delivery.json``."""
    template = _read_event("sqs/csv-delivery")["Records"][0]
    return {"Records": [{**template, "messageId": message_id, "body": body} for message_id, body in messages]}
