"""The Firehose log path: staged S3 objects of log records, named by S3 notifications, appended to the event log.

With ``EventLogDelivery=Firehose`` the log-everything rule sends each event to a Firehose stream that
buffers the records (the rule's ``{"rule": ..., "event": ...}`` JSON, newline-delimited) into objects
in the staging bucket; S3 notifies the staging queue of each object, and this runner:

1. reads the objects the batch's notifications name (an object named twice is read once);
2. parses each object's records (newline-delimited or simply concatenated JSON objects) as log
   deliveries; a record that is not one goes to the log's dead-letter queue, as a bad log-queue
   message does after its retries, and is counted (``LogRecordsInvalid``);
3. appends the lines of all objects in one append through the same ledger as the log queue's
   batches, carrying the objects' ids (``s3:<bucket>/<key>``): a notification delivered again (SQS
   redelivery, or S3's own at-least-once delivery) whose object was appended is not appended again;
   a record that occurs twice in the batch (Firehose or EventBridge retries) is written once
   (``LogRecordsDuplicate``);
4. rotates if due, then deletes the objects (the staging bucket's lifecycle expiry is the backstop).

Any S3 or ledger failure fails the whole batch: SQS redelivers it and the ledger makes that exact.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures
from botocore.exceptions import ClientError

from correlator.action import check_delivery
from correlator.appender import is_missing
from correlator.configs import ActionConfig
from correlator.delivery import Delivery
from correlator.internal import MetricsRecorder
from functions.log_writer.logwriter import ALREADY_WRITTEN, WRITTEN, LogAction, log_line, parse_log_delivery

logger = logging.getLogger(__name__)

INVALID = "invalid"
DUPLICATE = "duplicate"
METRICS = {
    **LogAction.spec.metrics,
    ALREADY_WRITTEN: "LogObjectsAlreadyWritten",  # staged objects, where the log queue counts lines
    DUPLICATE: "LogRecordsDuplicate",
}
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"
_DELETE_BATCH = 1000  # DeleteObjects' limit
_SAMPLE = 200  # characters of a bad record quoted in the log


@dataclass(frozen=True, slots=True)
class StagedObject:
    """One object Firehose wrote to the staging bucket."""

    bucket: str
    key: str

    @property
    def ledger_id(self) -> str:
        return f"s3:{self.bucket}/{self.key}"


def staged_objects(body: str) -> list[StagedObject]:
    """The objects an S3 event notification names; ``[]`` for S3's test event; ``ValueError`` for anything else."""
    message: Any = json.loads(body)
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records") if isinstance(message, dict) else None
    if not isinstance(records, list) or not records:
        raise ValueError("not an S3 event notification")
    objects = []
    for record in records:
        try:
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                continue
            s3 = record["s3"]
            # S3 writes keys form-encoded in notifications (a space as '+').
            objects.append(StagedObject(str(s3["bucket"]["name"]), unquote_plus(str(s3["object"]["key"]))))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not an S3 event notification record: {error}") from None
    return objects


def split_records(text: str) -> Iterator[tuple[Any, str]]:
    """Each record of a staged object: ``(value, text)``; ``value`` is ``None`` for a record that is not JSON.

    Records are JSON objects one after another, with or without whitespace (Firehose's newline
    delimiter) between them. Text that does not parse is one bad record up to the next newline.
    """
    index, end = 0, len(text)
    while True:
        while index < end and text[index] in _WHITESPACE:
            index += 1
        if index >= end:
            return
        try:
            value, stop = _DECODER.raw_decode(text, index)
        except ValueError:
            stop = text.find("\n", index)
            stop = end if stop < 0 else stop
            yield None, text[index:stop]
        else:
            yield value, text[index:stop]
        index = stop


class DeadLetters:
    """Sends records that are not log deliveries to the log's dead-letter queue (when one is configured)."""

    def __init__(self, sqs: Any, queue_url: str | None) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def send(self, records: Sequence[tuple[StagedObject, str]]) -> None:
        for staged, record in records:
            logger.error(
                "not a log delivery; sent to the dead-letter queue",
                extra={"object": staged.key, "record": record[:_SAMPLE], "dead_letter_queue": self.queue_url},
            )
            if self.queue_url:
                self.sqs.send_message(
                    QueueUrl=self.queue_url,
                    MessageBody=record,
                    MessageAttributes={"staged_object": {"DataType": "String", "StringValue": staged.ledger_id}},
                )


@dataclass(slots=True)
class _Parsed:
    lines: list[str]
    invalid: list[tuple[StagedObject, str]]
    duplicates: int


class StagedLogRunner:
    """Runs the log action for an SQS batch of S3 notifications of staged objects (see the module docstring)."""

    def __init__(self, action: LogAction, s3: Any, dead_letters: DeadLetters, *, metrics: MetricsRecorder) -> None:
        self.action = action
        self.s3 = s3
        self.dead_letters = dead_letters
        self.metrics = metrics

    def handle(self, event: Mapping[str, Any]) -> PartialItemFailureResponse:
        failures: list[PartialItemFailures] = []
        objects: dict[str, StagedObject] = {}
        for record in event["Records"]:
            try:
                found = staged_objects(record["body"])
            except ValueError as error:
                logger.error("not an S3 notification: %s", error, extra={"message_id": record["messageId"]})
                failures.append({"itemIdentifier": record["messageId"]})
                continue
            for staged in found:
                objects.setdefault(staged.ledger_id, staged)
        # Always asked, not only on redelivery: S3 may notify an object twice in two messages.
        written = self.action.log.already_appended(list(objects))
        pending = {ledger_id: staged for ledger_id, staged in objects.items() if ledger_id not in written}
        texts = {ledger_id: text for ledger_id, staged in pending.items() if (text := self._read(staged)) is not None}
        parsed = self._parse(pending, texts)
        self.dead_letters.send(parsed.invalid)
        counts = {ALREADY_WRITTEN: len(written), WRITTEN: len(parsed.lines), INVALID: len(parsed.invalid)}
        counts[DUPLICATE] = parsed.duplicates
        counts.update(self.action.write(parsed.lines, list(texts) if parsed.lines else [], recovering=bool(written)))
        self._delete(list(objects.values()))
        self._count(counts)
        return {"batchItemFailures": failures}

    def _read(self, staged: StagedObject) -> str | None:
        try:
            body = self.s3.get_object(Bucket=staged.bucket, Key=staged.key)["Body"].read()
        except ClientError as error:
            if is_missing(error):  # deleted after its append (by a writer whose acknowledgement was lost)
                logger.warning("staged object already gone", extra={"object": staged.key})
                return None
            raise
        return bytes(body).decode("utf-8", errors="replace")

    def _parse(self, pending: Mapping[str, StagedObject], texts: Mapping[str, str]) -> _Parsed:
        parsed = _Parsed([], [], 0)
        seen: set[tuple[str, str]] = set()
        for ledger_id, text in texts.items():
            staged = pending[ledger_id]
            for value, raw in split_records(text):
                try:
                    if not isinstance(value, dict):
                        raise ValueError("not a JSON object")
                    delivery: Delivery[ActionConfig] = parse_log_delivery(value)
                    check_delivery(LogAction.spec, delivery)
                except ValueError:  # pydantic's ValidationError included
                    parsed.invalid.append((staged, raw))
                    continue
                identity = (delivery.rule.name, delivery.event.id)
                if identity in seen:
                    parsed.duplicates += 1
                    continue
                seen.add(identity)
                parsed.lines.append(log_line(delivery, self.action.line_format))
        return parsed

    def _delete(self, objects: Sequence[StagedObject]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for staged in objects:
            by_bucket.setdefault(staged.bucket, []).append(staged.key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), _DELETE_BATCH):
                chunk = keys[start : start + _DELETE_BATCH]
                response = self.s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
                )
                for error in response.get("Errors", []):  # the lifecycle expiry removes it later
                    logger.warning("staged object not deleted", extra={"object": error.get("Key"), "error": error})

    def _count(self, counts: Mapping[str, int]) -> None:
        for status, value in counts.items():
            name = METRICS.get(status)
            if name and value:
                self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
