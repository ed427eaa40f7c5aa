"""The reception's stamping and its resolver bypass: same events, same refusals as the resolver's route.

``stamp_submissions`` builds each entry's ``Detail`` from one serialisation of the whole request;
it must be exactly what ``stamp_event(...).to_detail()`` would publish. ``plain_request`` lets a
request skip the resolver only when the resolver would accept it too.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from correlator.api import Caller
from correlator.envelope import to_entry
from correlator.event import EventSubmission, stamp_event
from correlator.reception import MAX_BODY_BYTES, plain_request, stamp_submissions
from tests.samples import load_event

NOW = datetime(2026, 11, 22, 14, 52, 39, 778_123, tzinfo=UTC)
SUBMISSIONS = [
    {"type": "order.created"},
    {"type": "order.paid", "level": "warning", "time": "2026-11-22T15:52:39.1+01:00", "object": "orders/1"},
    {"type": "sale", "kind": "DATASET", "dataset": "sales", "payload": {"amount": 12.5, "sku": "Å-1", "n": None}},
    {
        "type": "x",
        "info": "é€😀 \u2028",
        "summary": "s",
        "description": "d",
        "system_id": "sys",
        "schema": "https://a/",
    },
    {"type": "y", "payload": {"nested": {"list": [1, 2.5, True, None, "z"]}, "big": 10**30}},
]
CALLERS = [
    Caller(subject="k7ab2cd9ef", request_key="Req_1001", hops=0, via=None),
    Caller(subject=None, request_key="", hops=2, via=["https://a.example/", "https://b.example/"]),
]


@pytest.mark.parametrize("caller", CALLERS, ids=["api-key", "relayed"])
def test_each_detail_is_what_stamp_event_publishes(caller: Caller) -> None:
    # GIVEN
    submissions = [EventSubmission.model_validate(body) for body in SUBMISSIONS]

    # WHEN
    envelopes = stamp_submissions(submissions, caller, "bus", now=NOW)

    # THEN entry by entry, the one an Event stamped alone (with this id) would give
    for submission, envelope in zip(submissions, envelopes, strict=True):
        event = stamp_event(
            submission,
            external=True,
            subject=caller.subject,
            request_key=caller.request_key,
            hops=caller.hops,
            via=caller.via,
            now=NOW,
        ).model_copy(update={"id": envelope.event_id})
        expected = to_entry(event, "bus")
        assert json.loads(envelope.entry["Detail"]) == event.to_detail()
        assert {**envelope.entry, "Detail": None} == {**expected, "Detail": None}
        assert (
            envelope.size
            == len(envelope.entry["Detail"].encode()) + len("correlator.external") + len(submission.type) + 14
        )


def test_events_of_one_request_get_distinct_well_formed_ids() -> None:
    submissions = [EventSubmission(type="t")] * 50
    envelopes = stamp_submissions(submissions, CALLERS[0], "bus")
    assert len({envelope.event_id for envelope in envelopes}) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", envelope.event_id) for envelope in envelopes)


# ---- which requests skip the resolver ----


def test_a_valid_request_skips_the_resolver() -> None:
    # GIVEN
    request = load_event("apigw/post-events-batch")

    # WHEN
    plain = plain_request(request)

    # THEN
    assert plain is not None
    assert len(plain.submissions) == 3
    assert plain.caller.request_key == "Req_1001"


def _with(request: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**request, **changes}


def _headers(request: dict[str, Any], **headers: str) -> dict[str, Any]:
    return {**request, "headers": {**request["headers"], **headers}}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: _with(r, httpMethod="GET"), id="another method"),
        pytest.param(lambda r: _with(r, resource="/rules"), id="another route"),
        pytest.param(lambda r: _with(r, isBase64Encoded=True), id="base64 body"),
        pytest.param(lambda r: _headers(r, **{"content-type": "text/plain"}), id="not JSON"),
        pytest.param(lambda r: _with(r, body=json.dumps({"type": "a", "info": "x" * MAX_BODY_BYTES})), id="too large"),
        pytest.param(lambda r: _with(r, body="{"), id="malformed JSON"),
        pytest.param(lambda r: _with(r, body="[]"), id="an array"),
        pytest.param(lambda r: _with(r, body="null"), id="null"),
        pytest.param(lambda r: _with(r, body=None), id="no body"),
        pytest.param(lambda r: _with(r, body='{"events": []}'), id="empty batch"),
        pytest.param(lambda r: _with(r, body='{"type": "a", "payload": {"x": NaN}}'), id="NaN"),
        pytest.param(lambda r: _with(r, body='{"type": "a", "payload": ' + "[" * 40 + "]" * 40 + "}"), id="too deep"),
        pytest.param(lambda r: _with(r, body='{"type": "a", "payload": {"n": 1' + "0" * 25 + "}}"), id="huge integer"),
        pytest.param(lambda r: _with(r, path="/events/"), id="trailing slash"),
        pytest.param(lambda r: _with(r, body='{"type": "a", "level": "LOUD"}'), id="invalid event"),
        pytest.param(lambda r: _with(r, body='{"type": "a", "unknown": 1}'), id="unknown field"),
        pytest.param(lambda r: _headers(r, **{"X-Request-Key": "bad key!"}), id="bad request key"),
        pytest.param(lambda r: _headers(r, **{"x-rule-chain": "-1"}), id="bad rule chain"),
        pytest.param(lambda r: _headers(r, **{"X-Via": "ftp://a"}), id="bad via"),
    ],
)
def test_anything_the_api_refuses_goes_to_the_resolver(change: Any) -> None:
    # GIVEN a valid request, changed in one way the API refuses (or serves elsewhere)
    request = change(load_event("apigw/post-event-single"))

    # THEN the resolver answers it, with the API's error body
    assert plain_request(request) is None
