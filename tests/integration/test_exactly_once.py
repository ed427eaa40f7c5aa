"""Exactly once under redelivery: the log and CSV writers crash or fail at every AWS call, SQS redelivers.

For every case (a step by a fault), the batch is delivered with the fault, redelivered as SQS would
until it is acknowledged, then delivered once more (a crash after the work, before the
acknowledgement); every line or row must end up written exactly once. The figures (cases, lost,
duplicated) are printed: ``pytest -s tests/integration/test_exactly_once.py``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from moto import mock_aws

from correlator.eventlog import ARCHIVE_PREFIX, CURRENT_KEY, GENERATION_META, SETTINGS_KEY, LogSettings
from functions.log_writer.logwriter import render_log_message
from local import moto_compat
from tests.conftest import fresh_import
from tests.faults import CRASHES, ERRORS, Fault, Tally, deliver_until_done, redeliver_all
from tests.notification_doubles import create_idempotency_table
from tests.probe import REGION, create_bus_probe
from tests.samples import load_event

LOG_BUCKET = "correlator-logs-exactly-once"
DATA_BUCKET = "correlator-data-exactly-once"
TABLE = "correlator-idempotency-exactly-once"
FILLER = '2026-11-22T14:52:00.000Z,[INFO ],"Req_0000","true",null,null,"filler",null,null\n'
MODES = (*CRASHES, *ERRORS)
ROTATION_UNIT = 16 * 1024


def filler_lines(size: int) -> int:
    return size // len(FILLER) + 1


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto with the two buckets, the idempotency table and the bus; the writers' environment."""
    with mock_aws():
        moto_compat.apply()
        create_bus_probe()
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (LOG_BUCKET, DATA_BUCKET):
            s3.create_bucket(Bucket=bucket)
        create_idempotency_table(TABLE)
        for name, value in {
            "LOG_BUCKET_NAME": LOG_BUCKET,
            "DATA_BUCKET_NAME": DATA_BUCKET,
            "IDEMPOTENCY_TABLE_NAME": TABLE,
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }.items():
            monkeypatch.setenv(name, value)
        yield s3


def reset(s3: Any) -> None:
    """Empty both buckets and the table between cases."""
    for bucket in (LOG_BUCKET, DATA_BUCKET):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for item in dynamodb.scan(TableName=TABLE)["Items"]:
        dynamodb.delete_item(TableName=TABLE, Key={"id": item["id"]})


def run_cases(
    tally: Tally,
    s3: Any,
    handler: Callable[[dict[str, Any]], Any],
    clients: list[Any],
    batch: dict[str, Any],
    seed: Callable[[], None],
    written: Callable[[], dict[str, int]],
) -> Tally:
    """Every step by every fault, plus the fault-free run; ``written`` counts each expected item."""

    def case(name: str, fault: Fault) -> None:
        # Exactly once when the batch is acknowledged, and still after one more delivery of all of it.
        reset(s3)
        seed()
        deliver_until_done(handler, batch, fault, clients)
        acknowledged = written()
        redeliver_all(handler, batch)
        again = written()
        # lost if missing at either point, duplicated if doubled at either
        both = {item: 0 if 0 in (seen, again[item]) else max(seen, again[item]) for item, seen in acknowledged.items()}
        tally.count(name, both)

    probe = Fault(at=0, mode="crash-before")  # never fires at 0: it only counts the steps
    case("no fault", probe)
    steps = len(probe.calls)
    for at in range(1, steps + 1):
        service = probe.calls[at - 1].split(".")[0]
        for mode in (mode for mode in MODES if mode in CRASHES or mode.startswith(service + "-")):
            case(f"{mode} at step {at} ({probe.calls[at - 1]})", Fault(at=at, mode=mode))
    print(f"\n{tally} ({steps} steps)")
    return tally


# ---- the log writer ----


def log_items(s3: Any, expected: list[str], seeded_filler: int) -> dict[str, int]:
    """How many times each expected line (and the seeded filler, as one item) is in the current file and archives."""
    text = s3.get_object(Bucket=LOG_BUCKET, Key=CURRENT_KEY)["Body"].read().decode()
    for item in s3.list_objects_v2(Bucket=LOG_BUCKET, Prefix=ARCHIVE_PREFIX).get("Contents", []):
        body = s3.get_object(Bucket=LOG_BUCKET, Key=item["Key"])["Body"].read()
        text += gzip.decompress(body).decode()
    counts = {line: text.count(line) for line in expected}  # a line may hold line breaks of its own
    if seeded_filler:
        filler = text.count(FILLER)
        counts["filler"] = 1 if filler == seeded_filler else (0 if filler < seeded_filler else 2)
    return counts


@pytest.mark.parametrize(
    ("scenario", "seed_bytes", "rotation_mb"),
    [("new file", 0, None), ("append and rotate", ROTATION_UNIT, 1), ("server-side copy", 5 * 1024 * 1024 + 1, None)],
)
def test_the_log_writer_appends_every_line_exactly_once(
    world: Any,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
    seed_bytes: int,
    rotation_mb: int | None,
) -> None:
    # GIVEN the log writer, a batch of three deliveries and a current log of seed_bytes; "1 MB" of rotation
    # size is ROTATION_UNIT bytes here: the same threshold crossed by the same steps, with little data per step
    monkeypatch.setattr(LogSettings, "rotation_bytes", property(lambda self: self.rotation_size_mb * ROTATION_UNIT))
    writer: ModuleType = fresh_import("functions.log_writer.app")
    batch = load_event("sqs/log-delivery")
    log = writer.runner.action.log
    expected = [render_log_message(record["body"], writer.runner.action.line_format) for record in batch["Records"]]
    filler = filler_lines(seed_bytes) if seed_bytes else 0

    def seed() -> None:
        if filler:
            world.put_object(
                Bucket=LOG_BUCKET, Key=CURRENT_KEY, Body=(FILLER * filler).encode(), Metadata={GENERATION_META: "1"}
            )
        if rotation_mb:
            world.put_object(
                Bucket=LOG_BUCKET, Key=SETTINGS_KEY, Body=json.dumps({"rotation_size_mb": 1, "generations": 12})
            )

    # WHEN it crashes or fails at every step and SQS redelivers
    tally = run_cases(
        Tally(f"log writer, {scenario}"),
        world,
        lambda event: writer.lambda_handler(event, lambda_context),
        [log.s3, log.ledger.dynamodb],
        batch,
        seed,
        lambda: log_items(world, expected, filler),
    )

    # THEN every line is there exactly once, in every case
    assert (tally.lost, tally.duplicated) == (0, 0), "\n".join(tally.failures)
    if rotation_mb:
        assert world.list_objects_v2(Bucket=LOG_BUCKET, Prefix=ARCHIVE_PREFIX)["KeyCount"] >= 1


STAGING_BUCKET = "correlator-log-staging-exactly-once"
STAGING_QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:correlator-log-staging"


def test_the_log_writer_appends_every_staged_record_exactly_once(
    world: Any, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the log writer on the Firehose path: two staged objects (the second repeats a record of the first)
    monkeypatch.setenv("LOG_STAGING_QUEUE_ARN", STAGING_QUEUE_ARN)
    world.create_bucket(Bucket=STAGING_BUCKET)
    writer: ModuleType = fresh_import("functions.log_writer.app")
    log = writer.action.log
    bodies = [record["body"] for record in load_event("sqs/log-delivery")["Records"]]
    objects = {"staged/a": bodies[:2], "staged/b": [bodies[1], *bodies[2:]]}
    expected = [render_log_message(body, writer.action.line_format) for body in bodies]
    notifications = {
        "Records": [
            {
                "messageId": f"n-{key}",
                "eventSourceARN": STAGING_QUEUE_ARN,
                "attributes": {"ApproximateReceiveCount": "1"},
                "body": json.dumps(
                    {
                        "Records": [
                            {
                                "eventName": "ObjectCreated:Put",
                                "s3": {"bucket": {"name": STAGING_BUCKET}, "object": {"key": key}},
                            }
                        ]
                    }
                ),
            }
            for key in objects
        ]
    }

    def seed() -> None:  # Firehose wrote them (again: the writer deleted them in the previous case)
        for key, records in objects.items():
            world.put_object(Bucket=STAGING_BUCKET, Key=key, Body="".join(f"{body}\n" for body in records).encode())

    # WHEN it crashes or fails at every step and SQS redelivers the notifications
    tally = run_cases(
        Tally("log writer, staged objects"),
        world,
        lambda event: writer.lambda_handler(event, lambda_context),
        [log.s3, log.ledger.dynamodb],
        notifications,
        seed,
        lambda: log_items(world, expected, 0),
    )

    # THEN every line is there exactly once, in every case
    assert len(expected) == 3
    assert (tally.lost, tally.duplicated) == (0, 0), "\n".join(tally.failures)


# ---- the csv writer ----


def csv_items(s3: Any, order_ids: list[str]) -> dict[str, int]:
    """How many rows of each order id the data bucket's CSV files hold."""
    seen: Counter[str] = Counter()
    for item in s3.list_objects_v2(Bucket=DATA_BUCKET).get("Contents", []):
        text = s3.get_object(Bucket=DATA_BUCKET, Key=item["Key"])["Body"].read().decode()
        records = list(csv.reader(io.StringIO(text, newline="")))
        column = records[0].index("order_id")
        seen.update(record[column] for record in records[1:])
    return {order_id: seen[order_id] for order_id in order_ids}


def test_the_csv_writer_appends_every_row_exactly_once(world: Any, lambda_context: LambdaContext) -> None:
    # GIVEN the csv writer and a batch: two sales rows to one file, a third to another day's, and a standard event
    writer: ModuleType = fresh_import("functions.csv_writer.app")
    action = writer.runner.action
    batch = load_event("sqs/csv-delivery")
    third = json.loads(batch["Records"][0]["body"])
    third["event"]["detail"].update(id="Tz9aB2cD3eF4gH5iJ6kL7m", time="2026-11-23T09:00:00.000Z")
    third["event"]["detail"]["payload"]["order_id"] = 3003
    batch["Records"].append({**batch["Records"][0], "messageId": "third-row", "body": json.dumps(third)})
    order_ids = [
        str(json.loads(record["body"])["event"]["detail"]["payload"]["order_id"])
        for record in batch["Records"]
        if json.loads(record["body"])["event"]["detail"].get("kind") == "dataset"
    ]

    # WHEN it crashes or fails at every step (S3, the ledger, the result events) and SQS redelivers
    tally = run_cases(
        Tally("csv writer"),
        world,
        lambda event: writer.lambda_handler(event, lambda_context),
        [action.appender.s3, action.ledger.dynamodb, writer.runner._report.emitter._publisher._client],
        batch,
        lambda: None,
        lambda: csv_items(world, order_ids),
    )

    # THEN every row is there exactly once, in every case
    assert len(order_ids) == 3
    assert (tally.lost, tally.duplicated) == (0, 0), "\n".join(tally.failures)


# ---- POST /events: EventBridge partial failures and throttling ----


class FlakyBus:
    """The reception's events client, whose PutEvents fails as planned: ``plan[n]`` fails these entry
    positions of call n (``"all"``: the whole call is throttled); the other entries reach the (moto) bus."""

    def __init__(self, client: Any, plan: dict[int, set[int] | str]) -> None:
        self.client = client
        self.plan = plan
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        failing = self.plan.get(self.calls, set())
        if failing == "all":
            response: Any = {
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            raise ClientError(response, "PutEvents")
        passing = [entry for position, entry in enumerate(Entries) if position not in failing]
        accepted = iter(self.client.put_events(Entries=passing)["Entries"] if passing else [])
        results = [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
            if position in failing
            else next(accepted)
            for position in range(len(Entries))
        ]
        return {"FailedEntryCount": len(failing), "Entries": results}


@pytest.mark.parametrize(
    ("case", "plan"),
    [
        ("entries throttled, then accepted", {1: {0, 3}, 2: {1}}),
        ("entries throttled on every attempt", {1: {2}, 2: {0}, 3: {0}, 4: {0}}),
        ("whole call throttled", {1: "all"}),
        ("no fault", {}),
    ],
)
def test_post_events_publishes_each_event_exactly_once_under_eventbridge_faults(
    monkeypatch: pytest.MonkeyPatch, lambda_context: LambdaContext, case: str, plan: dict[int, Any]
) -> None:
    # GIVEN the reception function before a bus whose PutEvents fails as planned
    with mock_aws():
        probe = create_bus_probe()
        reception: ModuleType = fresh_import("functions.reception.app")
        reception.publisher._sleep = lambda seconds: None
        reception.publisher._client = FlakyBus(reception.publisher._client, plan)
        events = [{"type": "order.created", "object": f"orders/{n}"} for n in range(5)]

        # WHEN a client posts a batch, and resends exactly the events a 503 reports failed (as documented)
        pending, answers = events, []
        for _ in range(3):
            request = load_event("apigw/post-event-single")
            request["body"] = json.dumps({"events": pending})
            response = reception.lambda_handler(request, lambda_context)
            answers.append(response["statusCode"])
            if response["statusCode"] == 200:
                break
            results = json.loads(response["body"])["results"]
            pending = [event for event, result in zip(pending, results, strict=True) if result["status"] == "failed"]

        # THEN every event is on the bus exactly once, and each answer was 200 or 503
        published = Counter(detail["object"] for detail in probe.drain_details())
        tally = Tally(f"POST /events, {case}")
        tally.count(case, {event["object"]: published[event["object"]] for event in events})
        print(f"\n{tally} (answers {answers})")
        assert (tally.lost, tally.duplicated) == (0, 0), (published, answers)
        assert set(answers) <= {200, 503}
