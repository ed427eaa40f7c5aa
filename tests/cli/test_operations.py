"""Replay and dead-letter queues through the AWS APIs (moto in-process; botocore's Stubber where moto has no
message move tasks). A deployed stack is found by its CloudFormation name, as the CLI does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from correlator_cli import operations
from correlator_cli.target import LocalSettings, TargetError, samconfig_stack_name, stack_target

STACK_TEMPLATE = {
    "Resources": {
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "shop"}},
        "LogDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "LogQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["LogDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 3,
                }
            },
        },
        "RuleTargetDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
    },
    "Outputs": {
        "ApiUrl": {"Value": "https://abc.execute-api.us-east-1.amazonaws.com/dev/"},
        "EventBusName": {"Value": "shop"},
        "EventBusArn": {"Value": "arn:aws:events:us-east-1:123456789012:event-bus/shop"},
        "ApiKeyId": {"Value": "key-1"},
    },
}


@pytest.fixture
def deployed(aws: None) -> Any:
    """A deployed 'shop' stack (moto's CloudFormation), found by name like `correlator --stack shop`."""
    boto3.client("cloudformation").create_stack(StackName="shop", TemplateBody=json.dumps(STACK_TEMPLATE))
    return stack_target("shop", boto3.Session())


def send(target: Any, queue: str, body: str, **attributes: str) -> None:
    target.client("sqs").send_message(
        QueueUrl=target.queue_urls[queue],
        MessageBody=body,
        MessageAttributes={key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()},
    )


def by_logical(target: Any, logical: str) -> str:
    return str(next(name for name in target.queue_urls if logical in name))


def test_the_stack_is_found_by_name(deployed: Any) -> None:
    assert deployed.api_url == "https://abc.execute-api.us-east-1.amazonaws.com/dev"
    assert deployed.bus_name == "shop"
    assert len(deployed.queue_urls) == 3


def test_an_unknown_stack_is_a_clear_error(aws: None) -> None:
    with pytest.raises(TargetError, match="nope"):
        stack_target("nope", boto3.Session())


def test_samconfig_names_the_default_stack(tmp_path: Path) -> None:
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "a"\n[prod.global.parameters]\nstack_name = "b"\n'
    )
    (tmp_path / "sub").mkdir()
    assert samconfig_stack_name(tmp_path / "sub") == "a"
    assert samconfig_stack_name(tmp_path, "prod") == "b"
    assert samconfig_stack_name(tmp_path, "staging") is None


def test_dead_letter_queues_show_depth_source_and_error_context(deployed: Any) -> None:
    # GIVEN a dead letter from EventBridge (error in message attributes) and one redriven by SQS
    rule_dlq, log_dlq = by_logical(deployed, "RuleTargetDeadLetter"), by_logical(deployed, "LogDeadLetter")
    detail = {"id": "e1", "type": "order.created", "request_key": "Req_1"}
    send(deployed, rule_dlq, json.dumps({"detail": detail}), ERROR_CODE="Lambda.ServiceException", ERROR_MESSAGE="boom")
    send(deployed, log_dlq, "a log message")
    # WHEN listed
    queues = {queue.name: queue for queue in operations.dead_letter_queues(deployed)}
    # THEN both, with depth, source and the sample's error; the source queue itself is not a DLQ
    assert set(queues) == {rule_dlq, log_dlq}
    assert queues[rule_dlq].depth == 1
    assert queues[rule_dlq].sources == []
    sample = queues[rule_dlq].sample or {}
    assert sample["error_code"] == "Lambda.ServiceException"
    assert sample["error_message"] == "boom"
    assert sample["event_type"] == "order.created"
    assert sample["request_key"] == "Req_1"
    assert queues[log_dlq].sources == [
        deployed.client("sqs").get_queue_attributes(
            QueueUrl=deployed.queue_urls[by_logical(deployed, "LogQueue")], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
    ]
    # ... and peeking left the messages where they were
    assert [queue.depth for queue in operations.dead_letter_queues(deployed, sample=False)] == [1, 1]


def test_redrive_starts_a_message_move_task_and_follows_it(deployed: Any) -> None:
    log_dlq = by_logical(deployed, "LogDeadLetter")
    send(deployed, log_dlq, "m")
    queue = next(q for q in operations.dead_letter_queues(deployed) if q.name == log_dlq)
    sqs = boto3.client("sqs")
    deployed._clients["sqs"] = sqs
    with Stubber(sqs) as stub:
        stub.add_response("start_message_move_task", {"TaskHandle": "h1"}, {"SourceArn": queue.arn})
        running = {
            "TaskHandle": "h1",
            "Status": "RUNNING",
            "ApproximateNumberOfMessagesMoved": 0,
            "ApproximateNumberOfMessagesToMove": 1,
        }
        stub.add_response("list_message_move_tasks", {"Results": [running]}, {"SourceArn": queue.arn, "MaxResults": 10})
        done = {**running, "Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 1}
        stub.add_response("list_message_move_tasks", {"Results": [done]}, {"SourceArn": queue.arn, "MaxResults": 10})
        seen: list[tuple[float, str]] = []
        result = operations.redrive(deployed, queue, lambda f, s: seen.append((f, s)), sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert result == {"queue": log_dlq, "status": "COMPLETED", "moved": 1, "reason": None}
    assert seen == [(0.0, "RUNNING"), (1.0, "COMPLETED")]


def test_a_queue_without_an_sqs_source_is_not_redriven(deployed: Any) -> None:
    queue = next(q for q in operations.dead_letter_queues(deployed) if "RuleTarget" in q.name)
    with pytest.raises(TargetError, match="replay"):
        operations.redrive(deployed, queue, lambda f, s: None)


def test_locally_the_messages_are_moved_by_the_cli(deployed: Any) -> None:
    # moto has no StartMessageMoveTask: on the local stack the CLI moves the messages itself.
    log_dlq, log_queue = by_logical(deployed, "LogDeadLetter"), by_logical(deployed, "LogQueue")
    for index in range(13):
        send(deployed, log_dlq, f"m{index}", origin="x")
    queue = next(q for q in operations.dead_letter_queues(deployed) if q.name == log_dlq)
    deployed.local = LocalSettings()
    result = operations.redrive(deployed, queue, lambda f, s: None)
    assert result["moved"] == 13
    sqs = deployed.client("sqs")
    moved = []
    while batch := sqs.receive_message(
        QueueUrl=deployed.queue_urls[log_queue], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages"):
        moved += batch
        sqs.delete_message_batch(
            QueueUrl=deployed.queue_urls[log_queue],
            Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
        )
    assert sorted(m["Body"] for m in moved) == sorted(f"m{index}" for index in range(13))
    assert {m["MessageAttributes"]["origin"]["StringValue"] for m in moved} == {"x"}
    assert (
        sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


@pytest.fixture
def archived(deployed: Any) -> Any:
    """The stack's bus with an archive, two rules delivering to queues, and three archived events."""
    events, sqs = deployed.client("events"), deployed.client("sqs")
    events.create_archive(ArchiveName="shop-archive", EventSourceArn=deployed.bus_arn)
    for name in ("notify-ops", "log-all"):
        url = sqs.create_queue(QueueName=f"q-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName="shop", EventPattern=json.dumps({"source": ["correlator.external"]}))
        events.put_targets(Rule=name, EventBusName="shop", Targets=[{"Id": "action", "Arn": arn}])
    entries = [
        {"EventBusName": "shop", "Source": "correlator.external", "DetailType": "t", "Detail": json.dumps({"n": n})}
        for n in range(3)
    ]
    events.put_events(Entries=entries)
    for name in ("notify-ops", "log-all"):  # the original deliveries
        url = sqs.get_queue_url(QueueName=f"q-{name}")["QueueUrl"]
        sqs.purge_queue(QueueUrl=url)
    return deployed


def test_replay_puts_the_archived_events_back_and_reports_completion(archived: Any) -> None:
    now = datetime.now(UTC)
    started = operations.start_replay(archived, now - timedelta(hours=1), now + timedelta(minutes=1), "notify-*", "r1")
    assert started["destination"]["FilterArns"] == ["arn:aws:events:us-east-1:123456789012:rule/shop/notify-ops"]
    states: list[str] = []
    result = operations.wait_for_replay(archived, "r1", lambda f, s: states.append(s), sleep=lambda _: None)
    assert result["state"] == "COMPLETED"
    assert states[-1] == "COMPLETED"
    sqs = archived.client("sqs")
    url = sqs.get_queue_url(QueueName="q-notify-ops")["QueueUrl"]
    replayed = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["detail"]["n"] for m in replayed) == [0, 1, 2]
    # ... only to the rules the pattern names
    other = sqs.get_queue_url(QueueName="q-log-all")["QueueUrl"]
    assert sqs.receive_message(QueueUrl=other, MaxNumberOfMessages=10).get("Messages", []) == []


def test_replay_sends_only_the_events_of_its_time_window(archived: Any) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    operations.start_replay(archived, past, past + timedelta(hours=1), None, "r3")
    assert operations.wait_for_replay(archived, "r3", lambda f, s: None, sleep=lambda _: None)["state"] == "COMPLETED"
    sqs = archived.client("sqs")
    for name in ("q-notify-ops", "q-log-all"):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


def test_replay_refuses_a_pattern_that_names_no_rule(archived: Any) -> None:
    now = datetime.now(UTC)
    with pytest.raises(TargetError, match="no rule"):
        operations.start_replay(archived, now - timedelta(hours=1), now, "nothing-*", "r2")
