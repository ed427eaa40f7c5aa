"""CSV writer: consumes the csv queue and appends one row per dataset event to files in the data bucket."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.action import QueueRunner
from correlator.appender import S3Appender
from correlator.csvfiles import CsvAction
from correlator.internal import counted_emitter
from correlator.logs import adopt_core_logs
from correlator.publisher import EventPublisher

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()


runner = QueueRunner(
    CsvAction(S3Appender(aws.client("s3"), os.environ["DATA_BUCKET_NAME"])),
    emitter=counted_emitter(EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"]), metrics),
    metrics=metrics,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # One append per file for the whole batch; every delivery gets its result event.
    return runner.handle(event)
