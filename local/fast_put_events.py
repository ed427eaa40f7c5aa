"""EventBridge ``PutEvents`` served by moto's backend without moto's Flask/werkzeug dispatch.

Every accepted POST of the stack's API sends its events with PutEvents (up to 10 entries a call),
so the moto server answers several PutEvents per POST. Through moto's own path each one builds a
Flask request, runs moto's ``BaseResponse.setup_class`` (URL parsing, query-string decoding,
header copies, account lookup), dispatches by name and renders the answer: 2-3 ms of this
process's CPU for a call whose backend work (validate, give ids, queue for delivery) is a fraction
of that, under the one GIL shared with the event deliverer and the pollers.

``install()`` puts a short path in front of moto's WSGI application for the well-formed case only:
a JSON ``AWSEvents.PutEvents`` (uncompressed) whose ``Entries`` is a list of 1-10 objects naming
only existing buses (or none). That path calls the same backend method moto's handler calls
(``EventsBackend.put_events``, with ``local.moto_throughput``'s changes), resolves the region and
account exactly as moto's ``BaseResponse`` does, and answers the bytes moto answers: the same JSON
body, status and headers (moto's ``server``, ``x-amzn-requestid``, its ``text/html`` content type,
and the CORS header moto's server adds). Anything else (malformed JSON, no or too many entries, a
bus that does not exist, a compressed body, IAM authorisation turned on) goes, unchanged, through
moto's full path, which gives its own validation errors. The bus check happens before anything is
accepted, so a fallback never accepts an event twice.

``serve_directly`` is the mechanism, shared with ``local.fast_batch_write`` (the log writer's ledger
writes); the helpers after ``put_events`` resolve a request as moto's ``BaseResponse`` does.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
from collections.abc import Callable
from typing import Any

from local.priority import PRIORITY

TARGET = "AWSEvents.PutEvents"
_installed = False


def install() -> None:
    """Serve well-formed PutEvents calls to moto's server directly (idempotent; inside the state gate
    when called before ``local.state.install_gate``). Every other call gives way to them first."""
    global _installed
    if _installed:
        return
    serve_directly(
        TARGET,
        lambda environ, body: put_events(environ, body),  # looked up at each call (tests replace it)
        around=PRIORITY.foreground,  # queued work waits meanwhile (local.priority)
        otherwise=PRIORITY.give_way,  # any other call: after the PutEvents calls under way
    )
    _installed = True


Answer = tuple[str, list[tuple[str, str]], bytes]  # status, headers, body


def serve_directly(
    target: str,
    answer: Callable[[dict[str, Any], bytes], Answer | None],
    *,
    around: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    otherwise: Callable[[], None] = lambda: None,
) -> None:
    """Put a short path for JSON-protocol ``target`` calls in front of moto's WSGI application: ``answer``
    gives moto's answer, or None to leave the call to moto's path (the body is handed back to it).
    ``around`` is entered while ``answer`` runs; ``otherwise`` is called before every other request."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__

    @functools.wraps(original)
    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET") == target and environ.get("REQUEST_METHOD") == "POST":
            with around():
                body = read_body(environ)
                answered = answer(environ, body)
            if answered is not None:
                status, headers, payload = answered
                start_response(status, headers)
                return [payload]
            environ["wsgi.input"] = io.BytesIO(body)  # moto's path reads the body again
        else:
            otherwise()
        return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = call  # type: ignore[method-assign]


def read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    data: bytes = stream.read(length) if length else stream.read()
    return data


def put_events(environ: dict[str, Any], body: bytes) -> Answer | None:
    """moto's answer to this PutEvents call, or None when moto's own path must answer it."""
    from moto.events.models import events_backends
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    if not plain_request(environ):
        return None
    try:
        entries = json.loads(body)["Entries"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
        return None
    if not all(isinstance(entry, dict) and isinstance(entry.get("EventBusName", ""), str) for entry in entries):
        return None
    region, access_key = region_and_access_key(environ)
    account = account_of(environ, access_key)
    backend = events_backends[account][region]
    for name in {entry.get("EventBusName") for entry in entries}:
        if backend._normalize_event_bus_arn(name) not in backend.event_buses:
            return None  # moto answers ResourceNotFoundException (and accepts the entries before that one)
    count_request(account, access_key, "events", region)
    accepted = backend.put_events(entries)
    payload = json.dumps(
        {"FailedEntryCount": len([entry for entry in accepted if "ErrorCode" in entry]), "Entries": accepted}
    ).encode()
    headers = [
        ("server", "amazon.com"),
        ("x-amzn-requestid", gen_amzn_requestid_long()),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(payload))),
        ("Access-Control-Allow-Origin", "*"),
    ]
    return "200 OK", headers, payload


def plain_request(environ: dict[str, Any]) -> bool:
    """Whether a short path may answer: not compressed, no parameters in the URL, moto not authorising (IAM)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    if environ.get("HTTP_CONTENT_ENCODING") or environ.get("QUERY_STRING"):
        return False
    return ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT


def count_request(account: str, access_key: str, service: str, region: str) -> None:
    """What moto's path records of a request it serves while authorisation is off."""
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.models import mark_account_as_visited

    ActionAuthenticatorMixin.request_count += 1
    mark_account_as_visited(account_id=account, access_key=access_key, service=service, region=region)


def region_and_access_key(environ: dict[str, Any]) -> tuple[str, str]:
    """``BaseResponse.get_region_from_url`` and ``get_access_key``, on the WSGI environ."""
    from moto.core.responses import BaseResponse

    authorization = environ.get("HTTP_AUTHORIZATION", "")
    url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}{environ.get('PATH_INFO', '')}"
    url_match = BaseResponse.region_regex.search(url)
    agent_match = BaseResponse.region_from_useragent_regex.search(environ.get("HTTP_USER_AGENT", ""))
    if url_match:
        region = url_match.group(1)
    elif agent_match:
        region = agent_match.group(1)
    elif "AWS4" in authorization:
        region = authorization.split(",")[0].split("/")[2]
    else:
        region = BaseResponse.default_region
    key_match = BaseResponse.access_key_regex.search(authorization) if authorization else None
    return region, key_match.group(1) if key_match else "AKIAEXAMPLE"


def account_of(environ: dict[str, Any], access_key: str) -> str:
    """``BaseResponse.get_current_account``."""
    from moto.iam.models import get_account_id_from

    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if "HTTP_X_MOTO_ACCOUNT_ID" in environ:
        return str(environ["HTTP_X_MOTO_ACCOUNT_ID"])
    return str(get_account_id_from(access_key))
