"""local.fast_put_events: PutEvents served without moto's Flask dispatch answers the bytes moto answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from local import fast_put_events, moto_compat
from tests.local.short_paths import answer

AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/eu-west-1/events/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
VALID = {"Source": "s", "DetailType": "d", "Detail": json.dumps({"n": 1})}


@pytest.fixture
def server() -> Iterator[Client]:
    """moto's server application (no socket) with the short path installed, and a queue behind a rule."""
    moto_compat.apply()
    fast_put_events.install()
    with mock_aws():
        events = boto3.client("events", region_name="eu-west-1")
        events.create_event_bus(Name="other")
        yield Client(DomainDispatcherApplication(create_backend_app))


def post(client: Client, body: bytes, *, slim: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """The answer (status, headers, body) with the short path on or off."""
    return answer(
        client,
        body,
        target="AWSEvents.PutEvents",
        content_type="application/x-amz-json-1.1",
        authorization=AUTHORIZATION,
        short_path=None if slim else (fast_put_events, "put_events"),
        monkeypatch=monkeypatch,
    )


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([VALID], id="one"),
        pytest.param([VALID, {**VALID, "EventBusName": "other"}] * 5, id="ten, two buses"),
        pytest.param([VALID, {"Source": "s", "DetailType": "d"}, {**VALID, "Detail": "[1"}], id="refused entries"),
    ],
)
def test_the_short_path_answers_what_moto_answers(
    server: Client, monkeypatch: pytest.MonkeyPatch, entries: list[dict[str, Any]]
) -> None:
    # WHEN the same PutEvents goes through moto's path, then the short path
    body = json.dumps({"Entries": entries}).encode()
    through_moto = post(server, body, slim=False, monkeypatch=monkeypatch)
    direct = post(server, body, slim=True, monkeypatch=monkeypatch)

    # THEN the answers are byte-equal, each accepted entry has an id and each refused one moto's error
    assert direct == through_moto
    answer = json.loads(direct[2])
    assert answer["FailedEntryCount"] == sum(1 for entry in entries if entry.get("Detail", "[").startswith("["))
    assert all(("EventId" in entry) != ("ErrorCode" in entry) for entry in answer["Entries"])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="malformed JSON"),
        pytest.param(b"{}", id="no entries"),
        pytest.param(json.dumps({"Entries": [VALID] * 11}).encode(), id="eleven entries"),
        pytest.param(json.dumps({"Entries": [VALID, {**VALID, "EventBusName": "nope"}]}).encode(), id="unknown bus"),
        pytest.param(json.dumps({"Entries": ["not an object"]}).encode(), id="entry not an object"),
    ],
)
def test_requests_the_short_path_does_not_take_get_moto_s_own_answer(
    server: Client, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    # GIVEN a queue receiving every event of the default bus
    sqs = boto3.client("sqs", region_name="eu-west-1")
    url = sqs.create_queue(QueueName="all")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name="eu-west-1")
    events.put_rule(Name="all", EventPattern=json.dumps({"source": ["s"]}))
    events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn}])

    def delivered() -> int:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    # WHEN the same bad request goes through moto's path, then with the short path installed
    through_moto = post(server, body, slim=False, monkeypatch=monkeypatch)
    by_moto = delivered()
    direct = post(server, body, slim=True, monkeypatch=monkeypatch)

    # THEN both give moto's answer (its error) and deliver the same: nothing, or (moto accepts the
    # entries before an unknown bus) that one entry, once
    assert direct == through_moto
    assert direct[0] != "200 OK"
    assert delivered() == by_moto == (1 if b"nope" in body else 0)
