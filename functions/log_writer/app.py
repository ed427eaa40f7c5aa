"""Log writer: consumes the log queue and appends one event-log line per delivery to S3."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.action import QueueRunner
from correlator.appender import S3Appender
from correlator.eventlog import EventLog, LogLineFormat
from correlator.ledger import append_ledger
from correlator.logs import function_logger
from correlator.tracing import PATCH_MODULES
from functions.log_writer.logwriter import LogAction

logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
runner = QueueRunner(
    LogAction(
        EventLog(S3Appender(aws.client("s3"), os.environ["LOG_BUCKET_NAME"]), ledger=append_ledger("log-writer")),
        LogLineFormat.from_env(os.environ),
    ),
    metrics=metrics,  # no emitter: the log action emits no result events (it is the record)
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # One append per batch, exactly once under redelivery; if it fails, the whole batch is retried.
    return runner.handle(event)
