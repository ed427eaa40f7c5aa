"""local.moto_throughput: moto's standard queues with indexed receive/delete keep SQS's behaviour (in-process moto)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def receive(sqs: Any, url: str, count: int = 10, visibility: int | None = None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"QueueUrl": url, "MaxNumberOfMessages": count, "AttributeNames": ["All"]}
    if visibility is not None:
        kwargs["VisibilityTimeout"] = visibility
    return list(sqs.receive_message(**kwargs).get("Messages", []))


def test_messages_come_out_in_order_once_until_deleted_or_made_visible(sqs: Any) -> None:
    # GIVEN a standard queue with 15 messages
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for number in range(15):
        sqs.send_message(QueueUrl=url, MessageBody=str(number))

    # (counted exactly at once, as moto always did)
    counted = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert counted["ApproximateNumberOfMessages"] == "15"

    # WHEN they are received in pages of 10 (visibility 30 s)
    first, second, third = receive(sqs, url), receive(sqs, url), receive(sqs, url)

    # THEN each comes once, oldest first, and nothing more while they are in flight
    assert [m["Body"] for m in first + second] == [str(n) for n in range(15)]
    assert third == []
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "15",
    )

    # AND a deleted message is gone, deleting it again is fine, a made-up handle is refused
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="made-up")

    # AND a message made visible again comes back at once, with its receive count up
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[1]["ReceiptHandle"], VisibilityTimeout=0)
    [again] = receive(sqs, url)
    assert (again["Body"], again["Attributes"]["ApproximateReceiveCount"]) == ("1", "2")


def test_a_message_received_too_often_moves_to_the_dead_letter_queue(sqs: Any) -> None:
    # GIVEN a queue whose redrive policy allows 2 receives
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName="q", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")

    # WHEN it is received twice without being deleted
    for _ in range(2):
        assert [m["Body"] for m in receive(sqs, url, visibility=0)] == ["poison"]

    # THEN the third receive finds nothing and the message is on the dead-letter queue
    assert receive(sqs, url) == []
    assert [m["Body"] for m in receive(sqs, dlq)] == ["poison"]


def test_concurrent_receivers_never_get_the_same_message(sqs: Any) -> None:
    # GIVEN 200 messages
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for start in range(0, 200, 10):
        entries = [{"Id": str(n), "MessageBody": str(start + n)} for n in range(10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    bodies: list[str] = []
    lock = threading.Lock()

    def drain() -> None:
        while messages := receive(sqs, url):
            with lock:
                bodies.extend(m["Body"] for m in messages)

    # WHEN 8 threads receive at once
    threads = [threading.Thread(target=drain) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every message was received exactly once
    assert sorted(bodies, key=int) == [str(n) for n in range(200)]


def test_a_long_poll_returns_as_soon_as_a_message_arrives(sqs: Any) -> None:
    # GIVEN an empty queue and a receiver in a 20 s long poll
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    got: list[dict[str, Any]] = []
    poller = threading.Thread(target=lambda: got.append(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)))
    poller.start()

    # WHEN a message is sent
    sqs.send_message(QueueUrl=url, MessageBody="hello")

    # THEN the poll ends with it (well before its 20 s)
    poller.join(10)
    assert not poller.is_alive()
    assert [m["Body"] for m in got[0].get("Messages", [])] == ["hello"]


def test_fifo_queues_keep_motos_behaviour(sqs: Any) -> None:
    # GIVEN a FIFO queue (message groups and deduplication stay moto's)
    url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for number in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(number), MessageGroupId="g", MessageDeduplicationId=str(number))

    # WHEN they are received
    messages = receive(sqs, url)

    # THEN they come in order
    assert [m["Body"] for m in messages] == ["0", "1", "2"]


def test_put_events_delivers_each_event_to_every_matching_rule_and_refuses_bad_entries(sqs: Any) -> None:
    # GIVEN a bus with two rules that match and one that does not, each with a queue target
    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name="bus")
    queues = {}
    for name, source in (("a", "app"), ("b", "app"), ("c", "other")):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName="bus", EventPattern=json.dumps({"source": [source]}))
        events.put_targets(Rule=name, EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
        queues[name] = url

    # WHEN one good entry and three bad ones are put
    good = {"Source": "app", "DetailType": "t", "Detail": '{"n": 1}', "EventBusName": "bus", "Resources": ["r"]}
    response = events.put_events(
        Entries=[
            good,
            {"Source": "app", "DetailType": "t", "Detail": "{not json", "EventBusName": "bus"},
            {"DetailType": "t", "Detail": "{}", "EventBusName": "bus"},
            {"Source": "app", "Detail": "{}", "EventBusName": "bus"},
        ]
    )

    # THEN the bad ones get moto's (EventBridge's) error codes, and the good one reaches the two matching
    # rules' queues as one event (same id), whole
    codes = [entry.get("ErrorCode") for entry in response["Entries"]]
    assert codes == [None, "MalformedDetail", "InvalidArgument", "InvalidArgument"]
    delivered = {name: [json.loads(m["Body"]) for m in receive(sqs, url)] for name, url in queues.items()}
    assert [len(delivered[name]) for name in "abc"] == [1, 1, 0]
    first, second = delivered["a"][0], delivered["b"][0]
    assert first == second
    assert first["id"] == response["Entries"][0]["EventId"]
    assert (first["source"], first["detail-type"], first["detail"], first["resources"]) == ("app", "t", {"n": 1}, ["r"])
    assert (first["region"], first["version"]) == ("us-east-1", "0")


def test_put_events_answers_before_delivery_and_the_deliverer_delivers_what_was_accepted(sqs: Any) -> None:
    from moto.events.models import events_backends

    from local import moto_throughput
    from local.async_events import PENDING, AsyncEvents

    # GIVEN a bus whose rule sends to a queue, and PutEvents handing accepted events to the deliverer
    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name="bus")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="r", EventBusName="bus", EventPattern=json.dumps({"source": ["app"]}))
    events.put_targets(Rule="r", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
    deliverer = AsyncEvents()
    moto_throughput.deliver_with(deliverer.accept)
    try:
        # WHEN two events are put before the deliverer runs
        entries = [
            {"Source": "app", "DetailType": "t", "Detail": json.dumps({"n": n}), "EventBusName": "bus"} for n in (1, 2)
        ]
        ids = [entry["EventId"] for entry in events.put_events(Entries=entries)["Entries"]]

        # THEN PutEvents answered with their ids, and they wait on the backend (saved with moto's state)
        backend = events_backends["123456789012"]["us-east-1"]
        assert [message["id"] for _, message in backend.__dict__[PENDING]] == ids
        assert receive(sqs, url) == []

        # AND once the deliverer runs, each reaches the queue once, whole
        deliverer.start()
        delivered = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
        delivered += receive(sqs, url)
        assert sorted(json.loads(m["Body"])["id"] for m in delivered) == sorted(ids)
        assert deliverer.pending == 0
    finally:
        deliverer.stop(5)
        moto_throughput.deliver_with(None)


def test_input_transformers_read_plain_paths_directly_and_others_with_jsonpath() -> None:
    from moto.events.utils import EventTemplateParser

    event: Any = {"id": "e", "ingestion-time": 1.5, "detail": {"n": 3, "name": "x", "items": [{"k": "a"}, {"k": "b"}]}}
    paths = {"n": "$.detail.n", "name": "$.detail.name", "second": "$.detail.items[1].k", "none": "$.detail.gone"}
    template = '{"n": <n>, "name": "<name>", "second": "<second>", "none": "<none>", "whole": <aws.events.event.json>}'

    result = EventTemplateParser.parse(input_template=template, input_paths_map=paths, event=event)

    assert result == {"n": 3, "name": "x", "second": "b", "none": "<none>", "whole": event}


@pytest.mark.parametrize(
    "template",
    [
        '{"rule": {"name": "log"}, "event": <aws.events.event.json>}',  # the event log rule's target
        '{"archive-arn": "a", "event": <aws.events.event.json>, "ingestion-time": <aws.events.event.ingestion-time>}',
        '{"twice": [<aws.events.event.json>, {"again": <aws.events.event.json>}], "id": "<id>"}',
        '{"quoted": "<aws.events.event.json>"}',  # inside a string: moto's text substitution, whatever it makes
        "{<aws.events.event.json>: 1}",  # as a key: moto's text substitution, whatever it makes
    ],
)
def test_a_template_holding_the_whole_event_gives_what_motos_text_substitution_gives(template: str) -> None:
    from moto.events.utils import EventTemplateParser

    # GIVEN an event as the deliverer hands it to a rule
    event: Any = {
        "version": "0",
        "id": "e-1",
        "detail-type": "t",
        "source": "app",
        "time": 1764662400.5,
        "resources": ["r"],
        "detail": {"n": 3, "nested": {"list": [1, "two", None, True]}, "text": 'quote " and \\ slash'},
        "ingestion-time": 1764662400.5,
    }
    substituted = template.replace("<aws.events.event.json>", json.dumps(event)).replace(
        "<aws.events.event.ingestion-time>", "1764662400.5"
    )

    # WHEN the template is applied
    try:
        expected: Any = json.loads(substituted.replace("<id>", "e-1"))
    except ValueError as error:
        expected = type(error)
    try:
        result: Any = EventTemplateParser.parse(input_template=template, input_paths_map={"id": "$.id"}, event=event)
    except ValueError as error:
        result = type(error)

    # THEN it is what substituting the event's JSON text and parsing it gives (moto's way), and the event is unchanged
    assert result == expected
    assert event["detail"]["nested"]["list"] == [1, "two", None, True]


def test_an_archive_target_evaluates_only_the_paths_its_template_uses() -> None:
    from moto.events.utils import EventTemplateParser

    # GIVEN an event whose detail cannot be serialised (so evaluating the default "<detail>" path would fail)
    event: Any = {"id": "e", "ingestion-time": 1.5, "detail": {"unserialisable": object()}}
    template = '{"archive-arn": "arn:a", "ingestion-time": <aws.events.event.ingestion-time>}'

    # WHEN an archive's transformer (an empty InputPathsMap: moto falls back to the eight default paths) is applied
    result = EventTemplateParser.parse(input_template=template, input_paths_map={}, event=event)

    # THEN only what the template holds was evaluated
    assert result == {"archive-arn": "arn:a", "ingestion-time": 1.5}
