"""Replays from the bus's archive and dead-letter queues: found from the stack, driven through AWS APIs."""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from correlator_cli.target import Target, TargetError

REPLAY_DONE = ("COMPLETED", "FAILED", "CANCELLED")
MOVE_DONE = ("COMPLETED", "FAILED", "CANCELLED")
Progress = Callable[[float, str], None]


# -- replay ----------------------------------------------------------------------------------
def archive_arn(target: Target) -> str:
    """The archive of the stack's bus (the template declares exactly one)."""
    archives = target.client("events").list_archives(EventSourceArn=target.bus_arn).get("Archives", [])
    if not archives:
        raise TargetError(f"the bus {target.bus_name} has no archive")
    name = sorted(archive["ArchiveName"] for archive in archives)[0]
    return str(target.client("events").describe_archive(ArchiveName=name)["ArchiveArn"])


def rule_arns(target: Target, pattern: str) -> list[str]:
    """ARNs of the bus's rules whose names match the shell pattern ``pattern``."""
    paginator = target.client("events").get_paginator("list_rules")
    return [
        rule["Arn"]
        for page in paginator.paginate(EventBusName=target.bus_name)
        for rule in page.get("Rules", [])
        if fnmatch.fnmatchcase(rule["Name"], pattern)
    ]


def start_replay(target: Target, since: datetime, until: datetime, pattern: str | None, name: str) -> dict[str, Any]:
    """Start replaying the archive's events of [since, until) to the bus (only to rules matching ``pattern``)."""
    destination: dict[str, Any] = {"Arn": target.bus_arn}
    if pattern:
        arns = rule_arns(target, pattern)
        if not arns:
            raise TargetError(f"no rule on {target.bus_name} matches {pattern!r}")
        destination["FilterArns"] = arns
    response = target.client("events").start_replay(
        ReplayName=name,
        Description=f"correlator replay {since.isoformat()} .. {until.isoformat()}",
        EventSourceArn=archive_arn(target),
        EventStartTime=since,
        EventEndTime=until,
        Destination=destination,
    )
    return {"name": name, "arn": response.get("ReplayArn"), "state": response.get("State"), "destination": destination}


def wait_for_replay(
    target: Target, name: str, progress: Progress, *, interval: float = 5.0, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Poll the replay until it ends; ``progress(fraction, state)`` on every poll. Returns the last description."""
    events = target.client("events")
    while True:
        replay = events.describe_replay(ReplayName=name)
        state = str(replay.get("State", ""))
        start, end = replay.get("EventStartTime"), replay.get("EventEndTime")
        last = replay.get("EventLastReplayedTime")
        fraction = 0.0
        if state == "COMPLETED":
            fraction = 1.0
        elif start and end and last and end > start:
            fraction = min(1.0, max(0.0, (last - start).total_seconds() / (end - start).total_seconds()))
        progress(fraction, state)
        if state in REPLAY_DONE:
            return {
                "name": name,
                "state": state,
                "reason": replay.get("StateReason"),
                "last_replayed": last.isoformat() if isinstance(last, datetime) else last,
            }
        sleep(interval)


# -- dead-letter queues ----------------------------------------------------------------------
@dataclass
class DeadLetterQueue:
    name: str
    url: str
    arn: str
    depth: int
    sources: list[str] = field(default_factory=list)  # ARNs of the queues that redrive into it
    sample: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "arn": self.arn,
            "depth": self.depth,
            "sources": self.sources,
            "sample": self.sample,
        }


def _is_dead_letter_name(name: str) -> bool:
    return "DeadLetter" in name or "FailureQueue" in name or name.lower().endswith(("-dlq", "dlq"))


def dead_letter_queues(target: Target, *, sample: bool = True) -> list[DeadLetterQueue]:
    """Every dead-letter queue of the stack: depth, the queues that redrive into it, and a sample's error context."""
    sqs = target.client("sqs")
    attributes: dict[str, dict[str, str]] = {}
    for name, url in target.queue_urls.items():
        attributes[name] = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy", "ApproximateNumberOfMessages"]
        ).get("Attributes", {})
    sources: dict[str, list[str]] = {}
    for values in attributes.values():
        if values.get("RedrivePolicy"):
            dead = json.loads(values["RedrivePolicy"]).get("deadLetterTargetArn", "")
            sources.setdefault(dead, []).append(values["QueueArn"])
    queues = []
    for name, values in attributes.items():
        arn = values.get("QueueArn", "")
        if arn not in sources and not _is_dead_letter_name(name):
            continue
        queue = DeadLetterQueue(
            name,
            target.queue_urls[name],
            arn,
            int(values.get("ApproximateNumberOfMessages", "0")),
            sources.get(arn, []),
        )
        if sample and queue.depth:
            queue.sample = peek(sqs, queue.url)
        queues.append(queue)
    return queues


def peek(sqs: Any, url: str) -> dict[str, Any] | None:
    """One message's error context, left on the queue (visibility timeout 0)."""
    messages = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=1,
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not messages:
        return None
    return error_context(messages[0])


def error_context(message: dict[str, Any]) -> dict[str, Any]:
    """What a dead letter says about its failure, whichever service put it there."""
    context: dict[str, Any] = {
        "message_id": message.get("MessageId"),
        "receive_count": message.get("Attributes", {}).get("ApproximateReceiveCount"),
        "sent": message.get("Attributes", {}).get("SentTimestamp"),
    }
    # EventBridge target DLQ: the error in message attributes.
    for key, value in message.get("MessageAttributes", {}).items():
        if key in (
            "ERROR_CODE",
            "ERROR_MESSAGE",
            "RULE_ARN",
            "TARGET_ARN",
            "EXHAUSTED_RETRY_CONDITION",
            "RETRY_ATTEMPTS",
        ):
            context[key.lower()] = value.get("StringValue")
    body = message.get("Body", "")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("requestContext"), dict):  # Lambda on-failure destination
        payload = data.get("responsePayload") or {}
        context.update(
            condition=data["requestContext"].get("condition"),
            function=data["requestContext"].get("functionArn"),
            error_type=payload.get("errorType") if isinstance(payload, dict) else None,
            error_message=payload.get("errorMessage") if isinstance(payload, dict) else None,
        )
    elif isinstance(data, dict):
        detail = data.get("detail") if isinstance(data.get("detail"), dict) else data.get("event", {}).get("detail")
        if isinstance(detail, dict):
            context.update(
                event_type=detail.get("type"), event_id=detail.get("id"), request_key=detail.get("request_key")
            )
    context["body"] = body[:300]
    return {key: value for key, value in context.items() if value is not None}


def redrive(
    target: Target,
    queue: DeadLetterQueue,
    progress: Progress,
    *,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Move the queue's messages back to the queue they came from (an SQS message move task)."""
    if not queue.sources:
        raise TargetError(
            f"{queue.name} is not the dead-letter queue of an SQS queue (its messages come from EventBridge or "
            "Lambda): replay the events instead (correlator replay)"
        )
    sqs = target.client("sqs")
    if target.is_local:
        return _move_locally(sqs, queue, progress)
    handle = sqs.start_message_move_task(SourceArn=queue.arn)["TaskHandle"]
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=queue.arn, MaxResults=10).get("Results", [])
        task = next((item for item in tasks if item.get("TaskHandle") == handle), tasks[0] if tasks else {})
        status = str(task.get("Status", "RUNNING"))
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        total = int(task.get("ApproximateNumberOfMessagesToMove") or queue.depth or 1)
        progress(1.0 if status == "COMPLETED" else min(1.0, moved / total), status)
        if status in MOVE_DONE:
            return {"queue": queue.name, "status": status, "moved": moved, "reason": task.get("FailureReason")}
        sleep(interval)


def _move_locally(sqs: Any, queue: DeadLetterQueue, progress: Progress) -> dict[str, Any]:
    # moto has no StartMessageMoveTask: locally the CLI moves the messages itself, as the task would.
    destination = sqs.get_queue_url(QueueName=queue.sources[0].rsplit(":", 1)[-1])["QueueUrl"]
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        entries = [
            {
                "Id": str(index),
                "MessageBody": message["Body"],
                "MessageAttributes": message.get("MessageAttributes", {}),
            }
            for index, message in enumerate(messages)
        ]
        sqs.send_message_batch(QueueUrl=destination, Entries=entries)
        sqs.delete_message_batch(
            QueueUrl=queue.url,
            Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(messages)],
        )
        moved += len(messages)
        progress(min(1.0, moved / max(queue.depth, 1)), "RUNNING")
    progress(1.0, "COMPLETED")
    return {"queue": queue.name, "status": "COMPLETED", "moved": moved, "reason": None}
