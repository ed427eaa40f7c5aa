"""Sample events from ``events/`` (the same files ``sam local invoke -e`` takes), and variations of them."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Self

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


@dataclass(frozen=True)
class HostileBody:
    """A request body the request-body gate must refuse, and how (status and error code)."""

    id: str
    body: bytes
    status: int
    code: str
    content_type: str = "application/json"


def _deep(levels: int) -> bytes:
    return b'{"type":"a","payload":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"


# Every one of these crashed a handler (502) or was accepted and changed before the request-body gate.
HOSTILE_BODIES = [
    HostileBody("multipart-without-boundary", b"x", 415, "unsupported_media_type", "multipart/form-data"),
    HostileBody(
        "multipart-with-boundary", b"--b\r\n\r\n--b--", 415, "unsupported_media_type", "multipart/form-data; boundary=b"
    ),
    HostileBody(
        "utf-16-charset",
        '{"type":"a"}'.encode("utf-16"),
        415,
        "unsupported_media_type",
        "application/json; charset=utf-16",
    ),
    HostileBody("nested-1000-levels", b"[" * 1000 + b"]" * 1000, 422, "validation_error"),
    HostileBody("object-nested-1000-levels", _deep(1000), 422, "validation_error"),
    HostileBody("object-nested-40-levels", _deep(40), 422, "validation_error"),
    HostileBody(
        "integer-over-int-string-limit", b'{"type":"a","payload":{"n":' + b"9" * 5000 + b"}}", 422, "validation_error"
    ),
    HostileBody("integer-over-64-bits", b'{"type":"a","payload":{"n":18446744073709551616}}', 422, "validation_error"),
    HostileBody("raw-bytes", b'{"type":"a\xff"}', 400, "bad_request"),
    HostileBody("cesu-8-surrogate", b'{"type":"a","info":"\xed\xa0\x80"}', 400, "bad_request"),
    HostileBody("utf-16", '{"type":"a"}'.encode("utf-16"), 400, "bad_request"),
    HostileBody("escaped-lone-surrogate", b'{"type":"a","info":"\\ud800"}', 400, "bad_request"),
    HostileBody("nan", b'{"type":"a","payload":{"x":NaN}}', 400, "bad_request"),
    HostileBody("infinity", b'{"type":"a","payload":{"x":-Infinity}}', 400, "bad_request"),
    HostileBody("float-out-of-range", b'{"type":"a","payload":{"x":1e999}}', 422, "validation_error"),
    HostileBody("empty", b"", 400, "bad_request"),
    HostileBody("array", b'[{"type":"a"}]', 400, "bad_request"),
]


def with_raw_body(event: dict[str, Any], hostile: HostileBody) -> dict[str, Any]:
    """``event`` carrying ``hostile``'s bytes as API Gateway passes them: text when UTF-8, else base64."""
    try:
        event["body"], event["isBase64Encoded"] = hostile.body.decode("utf-8"), False
    except UnicodeDecodeError:
        event["body"], event["isBase64Encoded"] = base64.b64encode(hostile.body).decode("ascii"), True
    return with_headers(event, Content_Type=hostile.content_type)


@dataclass
class HttpAnswer:
    """A Lambda proxy response as a client reads it: header names lower-cased, the last of each multi-value."""

    status: int
    body: str
    headers: dict[str, str]

    @classmethod
    def of(cls, response: dict[str, Any]) -> Self:
        headers = {name.lower(): values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
        headers.update({name.lower(): value for name, value in (response.get("headers") or {}).items()})
        return cls(response["statusCode"], response.get("body") or "", headers)

    def json(self) -> Any:
        return json.loads(self.body)
