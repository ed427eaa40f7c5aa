"""Log writer: consumes the log queue and appends one event-log line per delivery to S3."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.action import QueueRunner
from correlator.appender import S3Appender
from correlator.eventlog import EventLog, LogLineFormat
from correlator.internal import counted_emitter
from correlator.logs import adopt_core_logs
from correlator.publisher import EventPublisher
from functions.log_writer.logwriter import LogAction

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()
runner = QueueRunner(
    LogAction(
        EventLog(S3Appender(aws.client("s3"), os.environ["LOG_BUCKET_NAME"])),
        LogLineFormat.from_env(os.environ),
    ),
    emitter=counted_emitter(EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"]), metrics),
    metrics=metrics,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # One append per batch; if it fails, the whole batch is retried: nothing was written.
    return runner.handle(event)
