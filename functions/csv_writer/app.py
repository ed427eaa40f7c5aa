"""CSV writer: consumes the csv queue and appends one row per dataset event to files in the data bucket."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.action import QueueRunner
from correlator.appender import S3Appender
from correlator.csvfiles import CsvAction
from correlator.internal import bus_emitter
from correlator.ledger import append_ledger
from correlator.logs import function_logger
from correlator.tracing import PATCH_MODULES

logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()


runner = QueueRunner(
    CsvAction(S3Appender(aws.client("s3"), os.environ["DATA_BUCKET_NAME"]), ledger=append_ledger("csv-writer")),
    emitter=bus_emitter(metrics),
    metrics=metrics,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # One append per file for the whole batch; every delivery gets its result event.
    return runner.handle(event)
