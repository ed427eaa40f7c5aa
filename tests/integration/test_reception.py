"""POST /events end to end on moto: the reception handler, the bus, and what a rule on the bus receives."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator.event import parse_time
from correlator.publisher import EventPublisher
from tests.probe import BUS_NAME, BusProbe
from tests.samples import HOSTILE_BODIES, HostileBody, body_of, load_event, post_events, with_raw_body

API_KEY_ID = "k7ab2cd9ef"
GENERATED_KEY = re.compile(r"^[A-Za-z0-9_-]{4}_[A-Za-z0-9_-]{18}$")
ERROR_KEYS = {"code", "message", "details"}


@dataclass
class HttpResponse:
    status: int
    body: Any
    headers: dict[str, str]


Post = Callable[[dict[str, Any]], HttpResponse]


@pytest.fixture
def post(reception: ModuleType, lambda_context: LambdaContext, bus_probe: BusProbe) -> Post:
    """Invoke the reception handler with an API Gateway request; the bus exists and is probed."""

    def invoke(request: dict[str, Any]) -> HttpResponse:
        response = reception.lambda_handler(request, lambda_context)
        return HttpResponse(response["statusCode"], json.loads(response["body"]), response.get("headers") or {})

    return invoke


def assert_error(response: HttpResponse, status: int, code: str) -> list[dict[str, Any]]:
    """Check an error response's status and body shape; return its details."""
    assert response.status == status, response.body
    assert set(response.body) == ERROR_KEYS
    assert response.body["code"] == code
    assert isinstance(response.body["message"], str)
    assert response.body["message"]
    assert isinstance(response.body["details"], list)
    return list(response.body["details"])


def where(details: list[dict[str, Any]]) -> list[tuple[Any, str, str]]:
    """``(index, field, type)`` of each 422 detail."""
    assert all({"index", "field", "message", "type"} <= set(detail) for detail in details), details
    return [(detail["index"], detail["field"], detail["type"]) for detail in details]


def server_time_window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(seconds=5), now + timedelta(seconds=5)


# ---- accepted ----


def test_a_single_event_is_stamped_and_published(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN
    request = load_event("apigw/post-event-single")
    earliest, latest = server_time_window()

    # WHEN
    response = post(request)

    # THEN
    assert response.status == 200, response.body
    [result] = response.body["results"]
    assert result["status"] == "accepted"
    [delivered] = bus_probe.drain()
    assert delivered["source"] == "correlator.external"
    assert delivered["detail-type"] == "order.created"
    detail = delivered["detail"]
    assert detail["id"] == result["id"]
    assert earliest <= parse_time(detail["time"]) <= latest
    assert delivered["time"] == detail["time"][:19] + "Z"
    assert GENERATED_KEY.fullmatch(detail["request_key"])
    assert {key: value for key, value in detail.items() if key not in ("id", "time", "request_key")} == {
        "type": "order.created",
        "level": "INFO",
        "kind": "standard",
        "object": "orders/1001",
        "info": "ok",
        "summary": "Order 1001 created",
        "system_id": "orders",
        "schema": "https://orders.example.com/",
        "payload": {"order_id": 1001, "total": 42.5, "currency": "EUR"},
        "external": True,
        "subject": API_KEY_ID,
        "hops": 0,
    }


def test_through_the_http_api_the_jwt_subject_is_the_event_subject(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN a request through the HTTP API front door: payload 1.0, lower-case headers, a verified JWT
    request = load_event("apigw/post-event-http-api")

    # WHEN
    response = post(request)

    # THEN the event is published with the token's sub as its subject, like an API key id through REST
    assert response.status == 200, response.body
    [delivered] = bus_probe.drain()
    assert delivered["detail"]["subject"] == "6p1nq2r3s4t5u6v7w8x9y0z1a2"
    assert delivered["detail"]["request_key"] == "Req_2001"
    assert delivered["detail"]["id"] == response.body["results"][0]["id"]


def test_through_the_http_api_a_bad_event_is_refused_like_through_rest(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN
    request = load_event("apigw/post-event-http-api")
    request["body"] = json.dumps({"type": "order.created", "level": "LOUD"})

    # WHEN
    response = post(request)

    # THEN
    assert where(assert_error(response, 422, "validation_error")) == [(0, "level", "value_error")]
    assert bus_probe.drain() == []


def test_the_resolver_and_its_bypass_answer_and_publish_alike(
    reception: ModuleType, lambda_context: LambdaContext, bus_probe: BusProbe
) -> None:
    # GIVEN a valid batch, which the handler serves without the resolver
    request = load_event("apigw/post-events-batch")

    # WHEN it is sent through the handler, then through the resolver itself
    bypassed = reception.lambda_handler(request, lambda_context)
    first = bus_probe.drain()
    resolved = reception.app.resolve(request, lambda_context)
    second = bus_probe.drain()

    # THEN the same response (but for the new ids) and the same events on the bus
    assert bypassed["statusCode"] == resolved["statusCode"] == 200
    assert dict(bypassed["multiValueHeaders"]) == dict(resolved["multiValueHeaders"])
    assert bypassed["isBase64Encoded"] == resolved["isBase64Encoded"]
    ids = [[result["id"] for result in json.loads(answer["body"])["results"]] for answer in (bypassed, resolved)]
    assert re.sub(r'"id":"[^"]+"', "", bypassed["body"]) == re.sub(r'"id":"[^"]+"', "", resolved["body"])

    def published(delivered: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**event, "id": None, "time": None, "detail": {**event["detail"], "id": None, "time": None}}
            for event in sorted(delivered, key=lambda event: event["detail"]["object"])
        ]

    assert sorted(event["detail"]["id"] for event in first) == sorted(ids[0])
    assert sorted(event["detail"]["id"] for event in second) == sorted(ids[1])
    assert published(first) == published(second)


def test_a_batch_is_published_in_order_with_levels_normalized(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN three events: default level, "warning" with a +01:00 time, and "ERROR"; X-Request-Key: Req_1001
    request = load_event("apigw/post-events-batch")

    # WHEN
    response = post(request)

    # THEN
    assert response.status == 200, response.body
    results = response.body["results"]
    assert [result["status"] for result in results] == ["accepted"] * 3
    delivered = {detail["id"]: detail for detail in bus_probe.drain_details()}
    assert sorted(delivered) == sorted(result["id"] for result in results)
    details = [delivered[result["id"]] for result in results]
    assert [(d["type"], d["level"], d["object"]) for d in details] == [
        ("order.created", "INFO", "orders/1002"),
        ("payment.declined", "WARN", "payments/77"),
        ("shipment.lost", "ERROR", "shipments/9"),
    ]
    assert details[1]["time"] == "2026-11-22T14:52:39.778Z"
    assert all(d["request_key"] == "Req_1001" for d in details)
    assert all((d["external"], d["subject"], d["hops"]) == (True, API_KEY_ID, 0) for d in details)


def test_a_dataset_event_keeps_its_dataset_and_row(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN
    request = load_event("apigw/post-event-dataset")

    # WHEN
    response = post(request)

    # THEN
    assert response.status == 200, response.body
    [detail] = bus_probe.drain_details()
    assert detail["id"] == response.body["results"][0]["id"]
    assert (detail["kind"], detail["dataset"]) == ("dataset", "daily-sales")
    assert detail["payload"] == body_of(request)["payload"]


def test_chain_headers_are_stamped_on_every_event(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN a relayed batch: rule-chain depth 2, two deployments on the way
    request = post_events(
        sample="post-events-batch",
        X_Request_Key="relay-7f3a",
        X_Rule_Chain="2",
        X_Via="https://a.example.com/, https://b.example.com/correlator",
    )

    # WHEN
    response = post(request)

    # THEN
    assert response.status == 200, response.body
    details = bus_probe.drain_details()
    assert len(details) == 3
    assert all(d["request_key"] == "relay-7f3a" for d in details)
    assert all(d["hops"] == 2 for d in details)
    assert all(d["via"] == ["https://a.example.com/", "https://b.example.com/correlator"] for d in details)


def test_the_personium_request_key_header_is_honoured(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN
    request = post_events(X_Personium_RequestKey="PersoniumKey_01")

    # WHEN
    response = post(request)

    # THEN
    assert response.status == 200, response.body
    [detail] = bus_probe.drain_details()
    assert detail["request_key"] == "PersoniumKey_01"


def test_json_with_a_charset_and_a_base64_body_are_accepted(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN the body base64-encoded (binary media types) and a charset parameter on the media type
    request = post_events(Content_Type="application/json; charset=utf-8")
    request["body"] = base64.b64encode(request["body"].encode()).decode()
    request["isBase64Encoded"] = True

    # WHEN
    response = post(request)

    # THEN
    assert response.status == 200, response.body
    [detail] = bus_probe.drain_details()
    assert detail["object"] == "orders/1001"


def test_a_batch_of_100_is_accepted(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN
    request = post_events({"events": [{"type": "load.test", "object": f"item/{index}"} for index in range(100)]})

    # WHEN
    response = post(request)

    # THEN
    assert response.status == 200, response.body
    assert len(response.body["results"]) == 100
    assert {d["object"] for d in bus_probe.drain_details()} == {f"item/{index}" for index in range(100)}


# ---- refused: nothing reaches the bus ----


def test_malformed_json_is_400(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN / WHEN
    response = post(post_events('{"type": "order.created",'))

    # THEN
    assert assert_error(response, 400, "bad_request") == []
    assert response.body["message"] == "request body is not valid JSON"
    assert bus_probe.drain() == []


@pytest.mark.parametrize(
    "body",
    ['[{"type": "order.created"}, {"type": "order.paid"}]', "[]", '"order.created"', "42", "null", "", None],
)
def test_a_body_that_is_not_an_object_is_400(post: Post, bus_probe: BusProbe, body: str | None) -> None:
    # GIVEN (an array must not be read as its first item, a missing body is not a missing field)
    request = post_events()
    request["body"] = body

    # WHEN
    response = post(request)

    # THEN
    assert assert_error(response, 400, "bad_request") == []
    assert response.body["message"] == "request body must be a JSON object"
    assert bus_probe.drain() == []


def test_the_invalid_sample_is_422_naming_each_index_and_field(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN index 0 valid, index 1 with a bad type, index 2 without a type
    request = load_event("apigw/post-event-invalid")

    # WHEN
    response = post(request)

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(1, "type", "string_pattern_mismatch"), (2, "type", "missing")]
    assert bus_probe.drain() == []


@pytest.mark.parametrize(("events", "error_type"), [([], "too_short"), ([{"type": "a"}] * 101, "too_long")])
def test_a_batch_of_0_or_101_events_is_422(
    post: Post, bus_probe: BusProbe, events: list[dict[str, Any]], error_type: str
) -> None:
    # GIVEN / WHEN
    response = post(post_events({"events": events}))

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(None, "events", error_type)]
    assert bus_probe.drain() == []


def test_an_unknown_key_is_422(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN / WHEN
    response = post(post_events({"type": "order.created", "colour": "red"}))

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(0, "colour", "extra_forbidden")]
    assert bus_probe.drain() == []


def test_an_unknown_key_next_to_events_is_422(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN / WHEN
    response = post(post_events({"events": [{"type": "a"}], "dry_run": True}))

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(None, "dry_run", "extra_forbidden")]
    assert bus_probe.drain() == []


@pytest.mark.parametrize("field", ["id", "external", "subject", "hops"])
def test_server_fields_in_the_body_are_422(post: Post, bus_probe: BusProbe, field: str) -> None:
    # GIVEN a client trying to set a field only the server sets
    submitted = {"type": "a", field: load_event("eventbridge/external-event")["detail"][field]}

    # WHEN
    response = post(post_events({"events": [{"type": "ok"}, submitted]}))

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(1, field, "extra_forbidden")]
    assert bus_probe.drain() == []


def test_an_invalid_level_is_422(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN / WHEN
    response = post(post_events({"events": [{"type": "a"}, {"type": "b", "level": "debug"}]}))

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(1, "level", "value_error")]
    assert bus_probe.drain() == []


def test_a_dataset_event_without_a_dataset_id_is_422(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN the dataset sample without its dataset id
    body = body_of(load_event("apigw/post-event-dataset"))
    del body["dataset"]

    # WHEN
    response = post(post_events(body))

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(0, "dataset", "value_error")]
    assert bus_probe.drain() == []


def test_a_naive_time_is_422(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN / WHEN
    response = post(post_events({"type": "a", "time": "2026-11-22T14:52:39"}))

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(0, "time", "value_error")]
    assert bus_probe.drain() == []


@pytest.mark.parametrize("hostile", HOSTILE_BODIES, ids=lambda hostile: hostile.id)
def test_the_request_body_gate_refuses_what_would_crash_or_change(
    post: Post, bus_probe: BusProbe, hostile: HostileBody
) -> None:
    # GIVEN a body that is not well-formed UTF-8 JSON within the limits (each once crashed with a 502)
    request = with_raw_body(post_events(), hostile)

    # WHEN / THEN it is refused with the documented status and error body, and nothing is published
    assert_error(post(request), hostile.status, hostile.code)
    assert bus_probe.drain() == []


@pytest.mark.parametrize(
    "time",
    [
        "0001-01-01T00:00:00+01:00",  # year 0 once in UTC: OverflowError (502) before
        "9999-12-31T23:59:59-01:00",  # year 10000 once in UTC
        "2026-11-22T14:52:39." + "1" * 45 + "Z",  # 65 characters: over the documented 64
        "２０２６-11-22T14:52:39Z",  # noqa: RUF001 - fullwidth digits are not RFC 3339 digits
    ],
)
def test_a_time_that_cannot_round_trip_is_422(post: Post, bus_probe: BusProbe, time: str) -> None:
    # GIVEN / WHEN
    response = post(post_events({"type": "a", "time": time}))

    # THEN
    details = assert_error(response, 422, "validation_error")
    assert where(details) == [(0, "time", "value_error")]
    assert bus_probe.drain() == []


@pytest.mark.parametrize(
    ("time", "stamped"),
    [
        ("0199-08-10T00:00:00Z", "0199-08-10T00:00:00.000Z"),  # was written "199-08-10T…": the log writer failed
        ("0001-01-01T00:59:59.999+00:59", "0001-01-01T00:00:59.999Z"),
        ("9999-12-31T23:59:59.9999Z", "9999-12-31T23:59:59.999Z"),
    ],
)
def test_an_accepted_time_is_stamped_with_four_digit_years(
    post: Post, bus_probe: BusProbe, time: str, stamped: str
) -> None:
    # GIVEN / WHEN
    response = post(post_events({"type": "a", "time": time}))

    # THEN the event is published with a time that reads back as the same instant
    assert response.status == 200, response.body
    [detail] = bus_probe.drain_details()
    assert detail["time"] == stamped
    assert parse_time(detail["time"]) == parse_time(time)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", '{"type": "order.created"}'),
        ("text/plain", "order.created"),
        ("application/x-www-form-urlencoded", "type=order.created&level=INFO"),
        ("application/cloudevents+json", '{"type": "order.created"}'),
    ],
)
def test_a_body_that_is_not_json_is_415(post: Post, bus_probe: BusProbe, content_type: str, body: str) -> None:
    # GIVEN / WHEN
    response = post(post_events(body, Content_Type=content_type))

    # THEN
    assert response.body == {
        "code": "unsupported_media_type",
        "message": f"Content-Type must be application/json, not {content_type}",
        "details": [{"field": "Content-Type", "message": "unsupported media type"}],
    }
    assert response.status == 415
    assert bus_probe.drain() == []


@pytest.mark.parametrize("valid_json", [True, False])
def test_a_body_over_5_mib_is_413(post: Post, bus_probe: BusProbe, valid_json: bool) -> None:
    # GIVEN a body one byte over 5 MiB (valid JSON or not: the size is refused first)
    limit = 5 * 1024 * 1024
    prefix = '{"type": "a", "payload": {"blob": "'
    body = prefix + "x" * (limit + 1 - len(prefix) - 3) + '"}}'
    if not valid_json:
        body = body[:-1] + ","
    assert len(body) == limit + 1

    # WHEN
    response = post(post_events(body))

    # THEN
    assert response.body == {
        "code": "payload_too_large",
        "message": f"request body is {limit + 1} bytes; the limit is {limit}",
        "details": [{"field": "body", "message": f"over {limit} bytes"}],
    }
    assert response.status == 413
    assert bus_probe.drain() == []


def test_an_event_over_256_kb_once_stamped_is_413(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN every field within its character limit, but 3-byte characters make the event ~300 KB
    big = {"type": "a", "object": "€" * 51_200, "info": "€" * 51_200}

    # WHEN
    response = post(post_events({"events": [{"type": "small"}, big]}))

    # THEN
    details = assert_error(response, 413, "payload_too_large")
    assert [(detail["index"], detail["field"]) for detail in details] == [(1, "event")]
    assert response.body["message"] == "1 event(s) exceed the 256 KB EventBridge entry limit"
    assert bus_probe.drain() == []


def test_a_payload_string_over_256_kb_is_413(post: Post, bus_probe: BusProbe) -> None:
    # GIVEN / WHEN
    response = post(post_events({"type": "a", "payload": {"blob": "x" * 300_000}}))

    # THEN
    details = assert_error(response, 413, "payload_too_large")
    assert [(detail["index"], detail["field"]) for detail in details] == [(0, "event")]
    assert bus_probe.drain() == []


@pytest.mark.parametrize(
    ("header", "value", "message", "detail"),
    [
        ("X-Request-Key", "not a key!", "X-Request-Key must match [A-Za-z0-9_-]{0,128}", "invalid request key"),
        ("X-Request-Key", "k" * 129, "X-Request-Key must match [A-Za-z0-9_-]{0,128}", "invalid request key"),
        ("X-Rule-Chain", "-1", "X-Rule-Chain must be a non-negative integer", "not a non-negative integer"),
        ("X-Rule-Chain", "two", "X-Rule-Chain must be a non-negative integer", "not a non-negative integer"),
        ("X-Rule-Chain", "1.5", "X-Rule-Chain must be a non-negative integer", "not a non-negative integer"),
        ("X-Rule-Chain", "1234567", "X-Rule-Chain must be a non-negative integer", "not a non-negative integer"),
        (
            "X-Via",
            "not a url",
            "X-Via must be a comma-separated list of at most 32 http(s) URLs",
            "invalid deployment URL list",
        ),
        (
            "X-Via",
            "https://a.example.com/, ftp://b.example.com/",
            "X-Via must be a comma-separated list of at most 32 http(s) URLs",
            "invalid deployment URL list",
        ),
    ],
)
def test_an_invalid_chain_header_is_400(
    post: Post, bus_probe: BusProbe, header: str, value: str, message: str, detail: str
) -> None:
    # GIVEN / WHEN
    response = post(post_events(**{header.replace("-", "_"): value}))

    # THEN
    assert response.body == {
        "code": "bad_request",
        "message": message,
        "details": [{"field": header, "message": detail}],
    }
    assert response.status == 400
    assert bus_probe.drain() == []


# ---- some entries cannot be published ----


class FlakyEventBridge:
    """Passes PutEvents to the real (moto) client, except entries whose type starts with ``flaky.``: throttled."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        passed = [entry for entry in Entries if not entry["DetailType"].startswith("flaky.")]
        forwarded = iter(self._client.put_events(Entries=passed)["Entries"] if passed else [])
        results = [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
            if entry["DetailType"].startswith("flaky.")
            else next(forwarded)
            for entry in Entries
        ]
        return {"FailedEntryCount": sum(1 for result in results if "ErrorCode" in result), "Entries": results}


def test_entries_that_keep_failing_are_503_with_each_status(
    post: Post, bus_probe: BusProbe, reception: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a bus that keeps throttling the 2nd and 4th of four events
    flaky = FlakyEventBridge(boto3.client("events", region_name="us-east-1"))
    monkeypatch.setattr(reception, "publisher", EventPublisher(flaky, BUS_NAME, sleep=lambda _: None))  # type: ignore[arg-type]
    types = ["order.created", "flaky.one", "order.paid", "flaky.two"]

    # WHEN
    response = post(post_events({"events": [{"type": event_type} for event_type in types]}))

    # THEN the client learns which to resend
    assert response.status == 503, response.body
    assert set(response.body) == {*ERROR_KEYS, "results"}
    assert response.body["code"] == "publish_failed"
    assert response.body["message"] == "2 of 4 events could not be published; resend those with status failed"
    results = response.body["results"]
    assert [(result["status"], result.get("error_code")) for result in results] == [
        ("accepted", None),
        ("failed", "ThrottlingException"),
        ("accepted", None),
        ("failed", "ThrottlingException"),
    ]
    assert [(d["index"], d["id"], d["error_code"]) for d in response.body["details"]] == [
        (1, results[1]["id"], "ThrottlingException"),
        (3, results[3]["id"], "ThrottlingException"),
    ]
    # and the accepted ones really are on the bus, retried failures are not
    delivered = {d["id"]: d["type"] for d in bus_probe.drain_details()}
    assert delivered == {results[0]["id"]: "order.created", results[2]["id"]: "order.paid"}
    assert flaky.calls == 4


def test_events_accepted_metric_is_emitted(post: Post, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN / WHEN
    response = post(load_event("apigw/post-events-batch"))

    # THEN the EMF line counts the three accepted events, and only this request's metrics
    assert response.status == 200
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [(blob["service"], blob.get("EventsAccepted")) for blob in emf] == [("reception", [3.0])]
