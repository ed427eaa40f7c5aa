"""Log writer: appends event-log lines to S3 from the log queue, or from objects Firehose staged (``staged``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.action import QueueRunner
from correlator.appender import S3Appender
from correlator.bootstrap import load_settings
from correlator.eventlog import EventLog, LogLineFormat
from correlator.ledger import append_ledger
from correlator.logs import function_logger
from correlator.tracing import PATCH_MODULES
from functions.log_writer.logwriter import LogAction
from functions.log_writer.staged import DeadLetters, StagedLogRunner


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    log_bucket_name: str
    # EventLogDelivery=Firehose: the queue of the staged objects' notifications, and its dead-letter queue.
    log_staging_queue_arn: str | None = None
    log_dead_letter_queue_url: str | None = None


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
s3 = aws.client("s3")
action = LogAction(
    EventLog(S3Appender(s3, settings.log_bucket_name), ledger=append_ledger("log-writer")),
    LogLineFormat.from_env(os.environ),
)
runner = QueueRunner(action, metrics=metrics)  # no emitter: the log action emits no result events (it is the record)
# EventLogDelivery=Firehose: S3 notifications of the objects Firehose staged arrive on this queue.
STAGING_QUEUE_ARN = settings.log_staging_queue_arn
staged_runner = (
    StagedLogRunner(action, s3, DeadLetters(aws.client("sqs"), settings.log_dead_letter_queue_url), metrics=metrics)
    if STAGING_QUEUE_ARN
    else None
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # One append per batch, exactly once under redelivery; if it fails, the whole batch is retried.
    records = event.get("Records") or [{}]
    if staged_runner is not None and records[0].get("eventSourceARN") == STAGING_QUEUE_ARN:
        return staged_runner.handle(event)
    return runner.handle(event)
