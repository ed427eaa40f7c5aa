"""The local stack of template.yaml over real HTTP: what POST /events accepts reaches the bus, nothing else does.

A probe (an SQS queue behind a rule on the stack's bus, created here through the moto endpoint)
sees every event put on the bus. moto delivers to SQS targets inside PutEvents, so once the API
has answered, whatever was published is already on the probe.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.local.conftest import HTTP_API_AUDIENCE, HTTP_API_ISSUER, LocalStack

pytestmark = pytest.mark.slow

BUS = "correlator"
DEV_KEY = {"x-api-key": "local-dev-key"}
ADMIN_KEY = {"x-api-key": "local-admin-key"}
JSON = {"content-type": "application/json"}
EVERY_CORRELATOR_EVENT = {"source": ["correlator.external", "correlator.internal"]}


@dataclass
class Probe:
    sqs: Any
    queue_url: str

    def drain(self, expect: int = 0, timeout: int = 10) -> list[dict[str, Any]]:
        """Every event delivered so far, oldest first; removes them from the queue. Waits (up to ``timeout``)
        for ``expect`` of them: EventBridge delivers after PutEvents has answered, locally too."""
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            wait = 1 if len(received) < expect and time.monotonic() < deadline else 0
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
            ).get("Messages", [])
            if not messages and not wait:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="module")
def module_probe(stack: LocalStack) -> Probe:
    sqs, events = stack.client("sqs"), stack.client("events")
    queue_url = sqs.create_queue(QueueName="local-test-probe")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="local-test-probe", EventBusName=BUS, EventPattern=json.dumps(EVERY_CORRELATOR_EVENT))
    events.put_targets(Rule="local-test-probe", EventBusName=BUS, Targets=[{"Id": "probe", "Arn": queue_arn}])
    return Probe(sqs, queue_url)


@pytest.fixture
def probe(module_probe: Probe) -> Probe:
    """The probe, emptied before the test."""
    module_probe.drain()
    return module_probe


def post_events(stack: LocalStack, body: Any, headers: dict[str, str] | None = None) -> Any:
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    return stack.request("POST", "/events", payload, {**JSON, **DEV_KEY} if headers is None else headers)


def assert_nothing_published(stack: LocalStack, probe: Probe) -> None:
    """Publish a sentinel event: the probe must hold that one and nothing before it."""
    response = post_events(stack, {"type": "sentinel"})
    assert response.status == 200, response.body
    assert [event["detail"]["type"] for event in probe.drain(expect=1)] == ["sentinel"]


def test_a_single_event_reaches_the_bus(stack: LocalStack, probe: Probe) -> None:
    # GIVEN one event
    event = {"type": "order.created", "object": "orders/1"}

    # WHEN it is posted with the API key
    response = post_events(stack, event)

    # THEN it is accepted with one id, and exactly that event is on the bus, stamped for the key
    assert response.status == 200, response.body
    results = response.json()["results"]
    assert [result["status"] for result in results] == ["accepted"]
    delivered = probe.drain(expect=1)
    assert len(delivered) == 1
    assert delivered[0]["source"] == "correlator.external"
    assert delivered[0]["detail-type"] == "order.created"
    detail = delivered[0]["detail"]
    assert detail["id"] == results[0]["id"]
    assert (detail["type"], detail["object"], detail["external"]) == ("order.created", "orders/1", True)
    assert detail["subject"] == "local-dev-key-id"


def test_a_batch_of_three_reaches_the_bus(stack: LocalStack, probe: Probe) -> None:
    # GIVEN a batch of three events
    batch = {"events": [{"type": "order.created", "object": f"orders/{number}"} for number in range(3)]}

    # WHEN it is posted
    response = post_events(stack, batch)

    # THEN three ids come back and exactly those three events are on the bus
    assert response.status == 200, response.body
    ids = [result["id"] for result in response.json()["results"]]
    assert len(ids) == 3
    delivered = probe.drain(expect=3)
    assert sorted(event["detail"]["id"] for event in delivered) == sorted(ids)
    assert sorted(event["detail"]["object"] for event in delivered) == ["orders/0", "orders/1", "orders/2"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        pytest.param('{"type": "order.created",', "application/json", 400, "bad_request", id="malformed-json"),
        pytest.param('{"type": "order.created"}', "text/plain", 415, "unsupported_media_type", id="text-plain"),
        pytest.param(
            json.dumps({"type": "x", "object": "o" * (5 * 1024 * 1024 + 1)}),
            "application/json",
            413,
            "payload_too_large",
            id="over-5-MiB",
        ),
    ],
)
def test_a_bad_request_is_refused_and_publishes_nothing(
    stack: LocalStack, probe: Probe, body: str, content_type: str, status: int, code: str
) -> None:
    # GIVEN a request body the API must refuse
    headers = {**DEV_KEY, "content-type": content_type}

    # WHEN it is posted
    response = post_events(stack, body, headers)

    # THEN the API answers with the status and error code, and nothing reaches the bus
    assert response.status == status, response.body
    assert response.json()["code"] == code
    assert_nothing_published(stack, probe)


def test_an_invalid_event_in_a_batch_is_reported_by_index_and_publishes_nothing(
    stack: LocalStack, probe: Probe
) -> None:
    # GIVEN a batch whose second event has no type
    batch = {"events": [{"type": "order.created"}, {"object": "orders/2"}, {"type": "order.created"}]}

    # WHEN it is posted
    response = post_events(stack, batch)

    # THEN 422 names index 1, and none of the three is published
    assert response.status == 422, response.body
    body = response.json()
    assert body["code"] == "validation_error"
    assert {detail["index"] for detail in body["details"]} == {1}
    assert_nothing_published(stack, probe)


@pytest.mark.parametrize(
    "key_headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"x-api-key": "wrong"}, id="wrong-key"),
        pytest.param(ADMIN_KEY, id="admin-key"),
    ],
)
def test_events_need_the_api_key(stack: LocalStack, probe: Probe, key_headers: dict[str, str]) -> None:
    # GIVEN a valid event but not the API key
    headers = {**JSON, **key_headers}

    # WHEN it is posted
    response = post_events(stack, {"type": "order.created"}, headers)

    # THEN API Gateway's 403 comes back and nothing is published
    assert response.status == 403
    assert response.json() == {"message": "Forbidden"}
    assert_nothing_published(stack, probe)


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("GET", "/events"), ("POST", "/events/1")])
def test_an_unknown_route_is_refused_like_api_gateway(stack: LocalStack, method: str, path: str) -> None:
    # GIVEN a path or method the template does not declare
    # WHEN it is requested, even with the key
    response = stack.request(method, path, b"{}" if method == "POST" else None, {**JSON, **DEV_KEY})

    # THEN API Gateway's "Missing Authentication Token" 403 comes back
    assert response.status == 403
    assert response.json() == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize(
    ("key_headers", "status"),
    [
        pytest.param({}, 403, id="no-key"),
        pytest.param(DEV_KEY, 403, id="api-key"),
        pytest.param(ADMIN_KEY, 200, id="admin"),
    ],
)
def test_admin_routes_take_the_admin_key_in_place_of_iam(
    stack: LocalStack, key_headers: dict[str, str], status: int
) -> None:
    # GIVEN an IAM-authenticated route (the Api's DefaultAuthorizer)
    # WHEN it is called with or without the admin key
    response = stack.request("GET", "/logs", None, key_headers)

    # THEN only the admin key gets through to the handler
    assert response.status == status, response.body
    if status == 403:
        assert response.json() == {"message": "Forbidden"}


def test_the_template_bus_exists_in_moto(stack: LocalStack) -> None:
    # GIVEN the running stack
    # WHEN moto is asked for the template's bus
    bus = stack.client("events").describe_event_bus(Name=BUS)

    # THEN it is there, under the stack's name
    assert bus["Name"] == BUS


def test_buckets_are_left_unversioned_because_moto_never_expires_old_versions(stack: LocalStack) -> None:
    # GIVEN the stack provisioned from template.yaml, whose log and data buckets are versioned on AWS
    s3 = stack.client("s3")
    names = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    # THEN no bucket is versioned locally: moto would keep a full copy of the current log per append forever
    assert names
    assert all("Status" not in s3.get_bucket_versioning(Bucket=name) for name in names)


# -- the HTTP API front door (HttpApiJwtIssuer), served by the same stack on its own port ---------------


def http_api_post(stack: LocalStack, body: Any, token: str | None) -> tuple[int, dict[str, str], Any]:
    import urllib.error
    import urllib.request

    headers = {**JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.http_api_port}/events", data=json.dumps(body).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_http_api_takes_a_jwt_from_the_local_issuer_and_stamps_its_sub(stack: LocalStack, probe: Probe) -> None:
    from local.jwt_issuer import LocalIssuer

    # GIVEN a token for client "orders-service" minted with the stack's own issuer key (its state directory)
    issuer = LocalIssuer(stack.state_dir, HTTP_API_ISSUER)
    token = issuer.mint("orders-service", HTTP_API_AUDIENCE)

    # WHEN an event is posted to the HTTP API with it
    status, _headers, body = http_api_post(stack, {"type": "order.created", "object": "orders/http"}, token)

    # THEN it is accepted, and on the bus its subject is the token's sub (as the API key id is through REST)
    assert status == 200, body
    [delivered] = probe.drain(expect=1)
    assert (delivered["detail"]["object"], delivered["detail"]["subject"]) == ("orders/http", "orders-service")


def test_the_http_api_refuses_bad_tokens_like_api_gateway_and_publishes_nothing(
    stack: LocalStack, probe: Probe
) -> None:
    from local.jwt_issuer import LocalIssuer

    # GIVEN no token, a token for another audience, an expired one and one signed by a stranger's key
    issuer = LocalIssuer(stack.state_dir, HTTP_API_ISSUER)
    import tempfile
    from pathlib import Path

    stranger = LocalIssuer(Path(tempfile.mkdtemp(prefix="stranger-")), HTTP_API_ISSUER)
    tokens = {
        "missing": None,
        "audience": issuer.mint("orders-service", "someone-else"),
        "expired": issuer.mint("orders-service", HTTP_API_AUDIENCE, ttl=-60),
        "key": stranger.mint("orders-service", HTTP_API_AUDIENCE),
    }

    # WHEN each is used
    answers = {name: http_api_post(stack, {"type": "order.created"}, token) for name, token in tokens.items()}

    # THEN each gets API Gateway's 401 and its reason in www-authenticate; nothing reached the bus
    for name, (status, headers, body) in answers.items():
        assert (status, body) == (401, {"message": "Unauthorized"}), name
        assert 'error="invalid_token"' in headers["www-authenticate"], name
    assert "valid audience" in answers["audience"][1]["www-authenticate"]
    assert "expired" in answers["expired"][1]["www-authenticate"]
    assert_nothing_published(stack, probe)


def test_the_rest_api_is_unchanged_next_to_the_http_api(stack: LocalStack) -> None:
    # GIVEN the HTTP API option on; WHEN the REST API is called with a JWT only; THEN it still wants its API key
    response = post_events(stack, {"type": "order.created"}, {**JSON, "Authorization": "Bearer x"})
    assert response.status == 403
