"""CSV writer: consumes the csv queue and appends one row per dataset event to files in the data bucket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.action import QueueRunner
from correlator.appender import S3Appender
from correlator.bootstrap import load_settings
from correlator.csvfiles import CsvAction
from correlator.internal import bus_emitter
from correlator.ledger import append_ledger
from correlator.logs import function_logger
from correlator.tracing import PATCH_MODULES


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    data_bucket_name: str


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
runner = QueueRunner(
    CsvAction(S3Appender(aws.client("s3"), settings.data_bucket_name), ledger=append_ledger("csv-writer")),
    emitter=bus_emitter(metrics),
    metrics=metrics,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # One append per file for the whole batch; every delivery gets its result event.
    return runner.handle(event)
