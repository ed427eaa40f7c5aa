"""The log writer's Firehose path on moto: S3 notifications of staged objects become one append to the event log."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator.eventlog import CURRENT_KEY
from functions.log_writer.staged import split_records, staged_objects
from tests.conftest import fresh_import
from tests.notification_doubles import create_idempotency_table
from tests.probe import REGION
from tests.samples import load_event

LOG_BUCKET = "correlator-logs-test"
STAGING_BUCKET = "correlator-log-staging-test"
TABLE = "correlator-idempotency-test"
STAGING_QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:correlator-LogStagingQueue"
SAMPLE = json.loads(load_event("sqs/log-delivery")["Records"][0]["body"])


def record(index: int, rule: str = "log-everything") -> str:
    """One Firehose record: the log rule's delivery of event ``index`` (what the rule's InputTransformer makes)."""
    message = json.loads(json.dumps(SAMPLE))
    message["rule"]["name"] = rule
    message["event"]["detail"]["id"] = f"evt{index:08d}"
    message["event"]["detail"]["object"] = f"orders/{index}"
    return json.dumps(message, separators=(",", ":"))


@pytest.fixture
def world(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The log and staging buckets, the ledger's table, the log's dead-letter queue; the writer's environment."""
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (LOG_BUCKET, STAGING_BUCKET):
        s3.create_bucket(Bucket=bucket)
    create_idempotency_table(TABLE)
    sqs = boto3.client("sqs", region_name=REGION)
    dead_letters = sqs.create_queue(QueueName="correlator-LogDeadLetterQueue")["QueueUrl"]
    for name, value in {
        "LOG_BUCKET_NAME": LOG_BUCKET,
        "IDEMPOTENCY_TABLE_NAME": TABLE,
        "LOG_STAGING_QUEUE_ARN": STAGING_QUEUE_ARN,
        "LOG_DEAD_LETTER_QUEUE_URL": dead_letters,
        "POWERTOOLS_SERVICE_NAME": "log-writer",
    }.items():
        monkeypatch.setenv(name, value)
    return {"s3": s3, "sqs": sqs, "dead_letters": dead_letters}


@pytest.fixture
def writer(world: dict[str, Any]) -> ModuleType:
    return fresh_import("functions.log_writer.app")


def stage(s3: Any, key: str, records: list[str], delimiter: str = "\n") -> str:
    s3.put_object(Bucket=STAGING_BUCKET, Key=key, Body="".join(item + delimiter for item in records).encode())
    return key


def notification(*keys: str, message_id: str = "m-1", receives: int = 1) -> dict[str, Any]:
    """An SQS record of the staging queue carrying S3's notification of ``keys`` (keys form-encoded, as S3 does)."""
    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": STAGING_BUCKET}, "object": {"key": key.replace(" ", "+"), "size": 1}},
            }
            for key in keys
        ]
    }
    return {
        "messageId": message_id,
        "receiptHandle": "r",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receives)},
        "eventSource": "aws:sqs",
        "eventSourceARN": STAGING_QUEUE_ARN,
    }


def invoke(writer: ModuleType, context: LambdaContext, *records: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = writer.lambda_handler({"Records": list(records)}, context)
    return response


def log_objects(s3: Any) -> list[str]:
    text = s3.get_object(Bucket=LOG_BUCKET, Key=CURRENT_KEY)["Body"].read().decode()
    return [line.split(",")[7].strip('"') for line in text.splitlines()]


def staged_keys(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=STAGING_BUCKET).get("Contents", [])]


def test_objects_of_records_become_one_line_each_and_are_deleted(
    writer: ModuleType, world: dict[str, Any], lambda_context: LambdaContext
) -> None:
    s3 = world["s3"]
    first = stage(s3, "staged/2026/12/02/01/log-1-a b", [record(index) for index in range(5)])
    second = stage(s3, "staged/2026/12/02/01/log-1-c", [record(index) for index in range(5, 8)], delimiter="")
    response = invoke(writer, lambda_context, notification(first), notification(second, message_id="m-2"))
    assert response == {"batchItemFailures": []}
    assert log_objects(s3) == [f"orders/{index}" for index in range(8)]
    assert staged_keys(s3) == []


def test_duplicates_across_objects_and_redelivered_notifications_are_written_once(
    writer: ModuleType, world: dict[str, Any], lambda_context: LambdaContext
) -> None:
    s3 = world["s3"]
    first = stage(s3, "staged/a", [record(1), record(2)])
    retried = stage(s3, "staged/b", [record(2), record(3), record(2, rule="errors-to-log")])
    # the same object named by two messages of one batch (S3 delivers notifications at least once)
    invoke(writer, lambda_context, notification(first), notification(retried, first, message_id="m-2"))
    assert log_objects(s3) == ["orders/1", "orders/2", "orders/3", "orders/2"]  # the second rule's line stays
    # a writer died after appending, before deleting: the notification comes again, the object is still there
    stage(s3, "staged/a", [record(1), record(2)])
    response = invoke(writer, lambda_context, notification(first, receives=2))
    assert response == {"batchItemFailures": []}
    assert log_objects(s3) == ["orders/1", "orders/2", "orders/3", "orders/2"]
    assert staged_keys(s3) == []
    # and once more after the object is gone
    invoke(writer, lambda_context, notification(first, receives=3))
    assert len(log_objects(s3)) == 4


def test_bad_records_go_to_the_dead_letter_queue_and_the_rest_is_written(
    writer: ModuleType, world: dict[str, Any], lambda_context: LambdaContext
) -> None:
    s3, sqs = world["s3"], world["sqs"]
    not_json = '{"rule": {"name": "log-everything"}, "event": {tru'
    not_a_delivery = json.dumps({"rule": {"name": "x", "action": "email"}, "event": {"detail": {"type": "a"}}})
    key = stage(s3, "staged/bad", [record(1), not_json, "[1, 2]", not_a_delivery, record(2)])
    response = invoke(writer, lambda_context, notification(key))
    assert response == {"batchItemFailures": []}
    assert log_objects(s3) == ["orders/1", "orders/2"]
    received = sqs.receive_message(QueueUrl=world["dead_letters"], MaxNumberOfMessages=10)["Messages"]
    assert sorted(message["Body"] for message in received) == sorted([not_json, "[1, 2]", not_a_delivery])


def test_a_message_that_is_not_an_s3_notification_fails_alone(
    writer: ModuleType, world: dict[str, Any], lambda_context: LambdaContext
) -> None:
    s3 = world["s3"]
    key = stage(s3, "staged/ok", [record(1)])
    bad = {**notification(key, message_id="bad"), "body": '{"Records": "nope"}'}
    test_event = {**notification(key, message_id="test"), "body": json.dumps({"Event": "s3:TestEvent"})}
    response = invoke(writer, lambda_context, notification(key), bad, test_event)
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert log_objects(s3) == ["orders/1"]


def test_the_log_queue_still_works_beside_the_staging_queue(
    writer: ModuleType, world: dict[str, Any], lambda_context: LambdaContext
) -> None:
    response = invoke(writer, lambda_context, load_event("sqs/log-delivery")["Records"][0])
    assert response == {"batchItemFailures": []}
    assert log_objects(world["s3"]) == ["orders/1001"]


def test_split_records_reads_delimited_and_concatenated_json_and_isolates_garbage() -> None:
    text = '{"a": 1}\n{"b": [2]}{"c": "}{"}\n  oops {\n{"d": 4}\n'
    assert list(split_records(text)) == [
        ({"a": 1}, '{"a": 1}'),
        ({"b": [2]}, '{"b": [2]}'),
        ({"c": "}{"}, '{"c": "}{"}'),
        (None, "oops {"),
        ({"d": 4}, '{"d": 4}'),
    ]


@pytest.mark.parametrize("body", ["[]", '{"Records": []}', '{"Records": [{"eventName": "ObjectCreated:Put"}]}', "x"])
def test_staged_objects_refuses_what_is_not_a_notification(body: str) -> None:
    with pytest.raises(ValueError):
        staged_objects(body)


def test_staged_objects_ignores_other_events_and_decodes_keys() -> None:
    body = json.dumps(
        {
            "Records": [
                {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}},
                {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "a+b%2Fc"}}},
            ]
        }
    )
    assert [(item.bucket, item.key) for item in staged_objects(body)] == [("b", "a b/c")]
