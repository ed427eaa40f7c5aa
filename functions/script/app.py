"""Script action: runs a registered script (``scripts/``) or an allow-listed Lambda function, once per delivery."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from correlator import aws
from correlator.csvfiles import DataFiles
from correlator.delivery import parse_delivery
from correlator.idempotency import OncePerKey
from correlator.internal import counted_emitter
from correlator.logs import adopt_core_logs
from correlator.publisher import EventPublisher
from correlator.scripts import (
    OK,
    ScriptFailedError,
    ScriptRegistry,
    ScriptRunner,
    load_script_package,
    parse_function_arns,
)

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()

# The registered scripts: the package beside this file, loaded from that fixed path. In Lambda this
# module is the top-level ``app`` (the package is ``scripts``); in the tests it is
# ``functions.script.app`` (the package is ``functions.script.scripts``, the same module objects the
# tests import).
SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
registry = ScriptRegistry(load_script_package(SCRIPTS_DIR, f"{__package__}.scripts" if __package__ else "scripts"))


publisher = EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"])
data_bucket = os.environ.get("DATA_BUCKET_NAME")
runner = ScriptRunner(
    registry,
    emitter=counted_emitter(publisher, metrics),
    publisher=publisher,
    # An invocation is not idempotent: no botocore retries, and a read timeout beyond Lambda's longest run.
    lambda_client=aws.client("lambda", Config(read_timeout=900, retries={"total_max_attempts": 1})),
    allowed_functions=parse_function_arns(os.environ.get("SCRIPT_FUNCTION_ARNS", "")),
    data=DataFiles(aws.client("s3"), data_bucket) if data_bucket else None,
)
once = OncePerKey(os.environ["IDEMPOTENCY_TABLE_NAME"], key_prefix="script")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Not a delivery: raise, so that it ends in the on-failure destination after Lambda's retries.
    delivery = parse_delivery(event)
    once.register_lambda_context(context)
    logger.append_keys(rule=delivery.rule.name, event_id=delivery.event.id)
    try:
        outcome, _ = once.run(
            {"delivery": delivery.idempotency_key}, lambda: runner.execute(delivery, event, context).to_json()
        )
    except ScriptFailedError as failure:
        metrics.add_metric(name="ScriptRunsFailed", unit=MetricUnit.Count, value=1)
        logger.warning("script failed; Lambda retries it", info=failure.outcome.info)
        raise
    name = "ScriptRunsSucceeded" if outcome["info"] == OK else "ScriptRunsRejected"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    logger.info("script run", target=outcome["target"], info=outcome["info"])
    return outcome
