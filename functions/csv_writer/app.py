"""CSV writer: consumes the csv queue and appends one row per dataset event to files in the data bucket."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.appender import S3Appender
from correlator.csvfiles import INVALID_KEY, SKIPPED, UNREADABLE_HEADER, WRITTEN, CsvWriter
from correlator.internal import counted_emitter
from correlator.logs import adopt_core_logs
from correlator.publisher import EventPublisher

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


writer = CsvWriter(
    S3Appender(aws.client("s3"), os.environ["DATA_BUCKET_NAME"]),
    counted_emitter(EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"]), metrics),
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event["Records"]
    # One append per file for the whole batch; every delivery gets its result event.
    report = writer.write_batch([(record["messageId"], record["body"]) for record in records])

    for name, value in (
        ("CsvRowsWritten", report.count(WRITTEN)),
        ("CsvRowsSkipped", report.count(SKIPPED)),
        ("CsvRowsRejected", report.count(INVALID_KEY) + report.count(UNREADABLE_HEADER)),
        ("CsvCellsDropped", report.dropped_cells),
        ("CsvRecordsFailed", len(report.failures)),
    ):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("csv batch", files=report.files, rows=report.count(WRITTEN), failed=len(report.failures))

    def hand_back_failures(record: SQSRecord) -> None:
        failure = report.failures.get(record.message_id)
        if failure is not None:
            raise failure

    # Deliveries that could not be parsed or appended fail alone (SQS retries them, then the DLQ).
    with processor(records=records, handler=hand_back_failures):
        processor.process()
    return processor.response()
