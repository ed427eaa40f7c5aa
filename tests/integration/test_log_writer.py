"""The log writer on moto: an SQS batch of log deliveries becomes one append to the event log."""

from __future__ import annotations

import gzip
import json
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from correlator.appender import MIN_PART_BYTES
from correlator.eventlog import ARCHIVE_PREFIX, CURRENT_KEY, LogSettings
from tests.conftest import BucketFor, fresh_import, handler_caller
from tests.s3_doubles import S3Spy, fail_with
from tests.samples import load_event

WRITER_MODULE = "functions.log_writer.app"
LOG_BUCKET = "correlator-logs-test"
SAMPLE_LINES = [
    '2026-11-22T14:52:39.778Z,[INFO ],"Req_1001","true","https://orders.example.com/","k7ab2cd9ef",'
    '"order.created","orders/1001","ok"\n',
    '2026-11-22T14:52:41.204Z,[ERROR],"Req_1001","false",null,"notify-ops-on-error","email","2 recipients","sent"\n',
    # Personium's format (the default): the "log" action writes at INFO whatever the event's level.
    '2026-11-22T14:52:42.005Z,[INFO ],"Req_1002","true",null,"k7ab2cd9ef","stock.low",'
    '"sku ""A-17"", bin 4","3 left\nreorder"\n',
]


@pytest.fixture
def s3(s3_bucket: BucketFor) -> Any:
    """The log bucket, and the writer's environment pointing at it."""
    return s3_bucket(LOG_BUCKET, env="LOG_BUCKET_NAME", service="log-writer")


@pytest.fixture
def writer(s3: Any) -> ModuleType:
    """``functions.log_writer.app`` imported afresh inside moto (it builds its S3 client at import)."""
    return fresh_import(WRITER_MODULE)


@pytest.fixture
def invoke(writer: ModuleType, lambda_context: LambdaContext) -> Any:
    return handler_caller(writer, lambda_context)


def current_log(s3: Any) -> str:
    return str(s3.get_object(Bucket=LOG_BUCKET, Key=CURRENT_KEY)["Body"].read().decode("utf-8"))


def archives(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=LOG_BUCKET, Prefix=ARCHIVE_PREFIX).get("Contents", [])
    return [item["Key"] for item in listed]


def metrics(output: str) -> dict[str, Any]:
    """The metric values Powertools flushed (EMF lines on stdout)."""
    values: dict[str, Any] = {}
    for line in output.splitlines():
        if '"_aws"' in line:
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values[definition["Name"]] = blob[definition["Name"]]
    return values


def batch_with_body(index: int, body: str) -> dict[str, Any]:
    event = load_event("sqs/log-delivery")
    event["Records"][index]["body"] = body
    return event


def filler(size: int) -> str:
    line = '2026-11-22T14:52:00.000Z,[INFO ],"Req_0000","true",null,null,"filler",null,null\n'
    return line * (size // len(line) + 1)


def test_a_batch_becomes_its_lines_in_order(invoke, s3):
    # WHEN the sample batch of 3 deliveries is consumed
    response = invoke(load_event("sqs/log-delivery"))

    # THEN nothing failed and the current log holds exactly the 3 lines, in order
    assert response == {"batchItemFailures": []}
    assert current_log(s3) == "".join(SAMPLE_LINES)
    head = s3.head_object(Bucket=LOG_BUCKET, Key=CURRENT_KEY)
    assert head["ContentType"] == "text/csv"
    assert head["Metadata"]["generation"].isdigit()


def test_the_correlator_line_format_is_a_setting(s3, lambda_context, monkeypatch):
    # GIVEN the writer deployed with LogLineFormat=correlator
    monkeypatch.setenv("LOG_LINE_FORMAT", "correlator")
    writer = fresh_import(WRITER_MODULE)

    # WHEN the sample batch is consumed
    writer.lambda_handler(load_event("sqs/log-delivery"), lambda_context)

    # THEN "log" keeps the event's own level (WARN), everything else is the same
    assert current_log(s3) == "".join(SAMPLE_LINES[:2]) + SAMPLE_LINES[2].replace("[INFO ]", "[WARN ]")


def test_an_unknown_line_format_stops_the_writer_at_import(s3, monkeypatch):
    # GIVEN a misconfigured format name
    monkeypatch.setenv("LOG_LINE_FORMAT", "csv")

    # WHEN / THEN the function refuses to start rather than writing lines in a format nobody chose
    with pytest.raises(ValueError, match="LOG_LINE_FORMAT"):
        fresh_import(WRITER_MODULE)


def test_the_whole_batch_is_one_append(invoke, writer, s3, monkeypatch):
    # GIVEN the writer's S3 calls are spied on
    spy = S3Spy(s3)
    monkeypatch.setattr(writer.runner.action.log.appender, "s3", spy)

    # WHEN a batch is consumed after a first one
    invoke(load_event("sqs/log-delivery"))
    invoke(load_event("sqs/log-delivery"))

    # THEN each batch was a single write and the lines follow each other
    assert spy.calls["put_object"] == 2
    assert current_log(s3) == "".join(SAMPLE_LINES) * 2


def test_a_malformed_record_fails_alone(invoke, s3, capsys):
    # GIVEN a batch whose second delivery is not JSON
    event = batch_with_body(1, '{"rule": {"action": "log"}, "event": ')
    failed_id = event["Records"][1]["messageId"]

    # WHEN it is consumed
    response = invoke(event)

    # THEN only that record is reported back, and the other two are written, in order
    assert response == {"batchItemFailures": [{"itemIdentifier": failed_id}]}
    assert current_log(s3) == SAMPLE_LINES[0] + SAMPLE_LINES[2]
    assert metrics(capsys.readouterr().out) == {"LogRecordsInvalid": [1.0], "LogLinesWritten": [2.0]}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"rule": {"action": "email"}, "event": {"detail": {}}}),
        json.dumps({"rule": {"action": "log"}, "event": {"detail": {"type": "x"}}}),
    ],
    ids=["not-a-log-action", "invalid-detail"],
)
def test_an_invalid_delivery_fails_alone(invoke, s3, body: str):
    # GIVEN a batch whose first delivery is JSON but not a valid log delivery
    event = batch_with_body(0, body)

    # WHEN it is consumed
    response = invoke(event)

    # THEN it is reported and the others are written
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert current_log(s3) == SAMPLE_LINES[1] + SAMPLE_LINES[2]


def test_a_batch_of_only_malformed_records_writes_nothing(invoke, s3):
    # GIVEN a batch where no record renders
    event = load_event("sqs/log-delivery")
    for record in event["Records"]:
        record["body"] = "not json"

    # WHEN it is consumed
    # THEN the whole batch fails (Powertools' default when every record failed) and nothing is written
    with pytest.raises(BatchProcessingError):
        invoke(event)
    assert "Contents" not in s3.list_objects_v2(Bucket=LOG_BUCKET)


def test_new_settings_are_honoured_from_the_next_batch(invoke, writer, s3):
    # GIVEN a current log just over 1 MiB, and a first batch under the default settings (50 MB)
    prefix = filler(1024 * 1024)
    writer.runner.action.log.append(prefix)
    invoke(load_event("sqs/log-delivery"))
    assert archives(s3) == []

    # WHEN the settings change to 1 MB between two batches
    writer.runner.action.log.save_settings(LogSettings(rotation_size_mb=1, generations=2))
    response = invoke(load_event("sqs/log-delivery"))

    # THEN the next batch is appended and then the log rotates
    assert response == {"batchItemFailures": []}
    [archive] = archives(s3)
    archived = gzip.decompress(s3.get_object(Bucket=LOG_BUCKET, Key=archive)["Body"].read()).decode()
    assert archived == prefix + "".join(SAMPLE_LINES) * 2
    assert current_log(s3) == ""
    # AND the batch after it goes to the new current file
    invoke(load_event("sqs/log-delivery"))
    assert current_log(s3) == "".join(SAMPLE_LINES)


@pytest.mark.parametrize(
    ("operation", "size"),
    [("put_object", 1000), ("complete_multipart_upload", MIN_PART_BYTES + 1000)],
    ids=["rewrite", "multipart-copy"],
)
def test_an_s3_failure_fails_the_whole_batch_and_writes_nothing(
    invoke, writer, s3, monkeypatch, operation: str, size: int
):
    # GIVEN a current log, and S3 failing the write of the next append
    writer.runner.action.log.append(filler(size))
    before = current_log(s3)
    spy = S3Spy(s3)
    spy.before[operation] = fail_with("InternalError", 500, operation)
    monkeypatch.setattr(writer.runner.action.log.appender, "s3", spy)

    # WHEN a batch is consumed
    with pytest.raises(ClientError):
        invoke(load_event("sqs/log-delivery"))

    # THEN the handler raised (SQS retries the whole batch) and the log is exactly as it was
    assert current_log(s3) == before
    assert not s3.list_multipart_uploads(Bucket=LOG_BUCKET).get("Uploads")


def test_a_missing_bucket_fails_the_whole_batch(invoke, s3):
    # GIVEN the log bucket is gone
    s3.delete_bucket(Bucket=LOG_BUCKET)

    # WHEN a batch is consumed
    # THEN the handler raises, so that SQS retries the batch
    with pytest.raises(ClientError) as raised:
        invoke(load_event("sqs/log-delivery"))
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"


def test_a_failed_rotation_keeps_the_lines_and_is_retried_by_the_next_batch(invoke, writer, s3, monkeypatch, capsys):
    # GIVEN a log over 1 MiB, and S3 failing the creation of the archive once
    writer.runner.action.log.save_settings(LogSettings(rotation_size_mb=1))
    prefix = filler(1024 * 1024)
    writer.runner.action.log.append(prefix)
    spy = S3Spy(s3)
    spy.once(
        "put_object",
        fail_with("SlowDown", 503, "PutObject"),
        when=lambda kwargs: kwargs["Key"].startswith(ARCHIVE_PREFIX),
    )
    monkeypatch.setattr(writer.runner.action.log.appender, "s3", spy)

    # WHEN a batch is consumed
    response = invoke(load_event("sqs/log-delivery"))

    # THEN the batch succeeds with its lines written, the rotation failure only counted
    assert response == {"batchItemFailures": []}
    assert archives(s3) == []
    assert current_log(s3) == prefix + "".join(SAMPLE_LINES)
    assert metrics(capsys.readouterr().out)["LogRotationFailed"] == [1.0]

    # WHEN the next batch is consumed
    invoke(load_event("sqs/log-delivery"))

    # THEN it rotates, and the archive holds everything once
    [archive] = archives(s3)
    archived = gzip.decompress(s3.get_object(Bucket=LOG_BUCKET, Key=archive)["Body"].read()).decode()
    assert archived == prefix + "".join(SAMPLE_LINES) * 2
    assert current_log(s3) == ""
    assert metrics(capsys.readouterr().out)["LogRotations"] == [1.0]
