"""Log writer: consumes the log queue and appends one event-log line per delivery to S3."""

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
from correlator.eventlog import EventLog, LogLineFormat, render_log_message
from correlator.logs import adopt_core_logs

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
event_log = EventLog(S3Appender(aws.client("s3"), os.environ["LOG_BUCKET_NAME"]))
line_format = LogLineFormat.from_env(os.environ)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    lines: list[str] = []

    def render(record: SQSRecord) -> None:
        lines.append(render_log_message(record.body, line_format))

    # Records that do not render fail alone (reported back to SQS, then to the DLQ).
    with processor(records=event["Records"], handler=render):
        processor.process()
    response = processor.response()
    failed = len(response["batchItemFailures"])
    if failed:
        metrics.add_metric(name="LogRecordsInvalid", unit=MetricUnit.Count, value=failed)
    if not lines:
        return response

    # One append per batch; if it fails, the whole batch is retried: nothing was written.
    settings = event_log.settings()
    state = event_log.append("".join(lines))
    metrics.add_metric(name="LogLinesWritten", unit=MetricUnit.Count, value=len(lines))
    logger.info("appended", lines=len(lines), size=state.size)
    if state.size >= settings.rotation_bytes:
        # The lines are safe; a failed rotation is retried by the next batch (it is idempotent).
        try:
            rotated, pruned = event_log.rotate_and_prune(settings)
        except Exception:
            logger.exception("rotation failed; the next batch retries it")
            metrics.add_metric(name="LogRotationFailed", unit=MetricUnit.Count, value=1)
        else:
            logger.info("rotated", archive=rotated, pruned=pruned)
            metrics.add_metric(name="LogRotations", unit=MetricUnit.Count, value=1 if rotated else 0)
    return response
