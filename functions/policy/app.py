"""Policy flusher: sends each due group of a delivery policy as one digest to its rule's action.

Consumes the policy flush queue (messages delayed until a group is due); for each due group it
publishes the ``policy.flushed`` event (the group's count, first/last time, its events up to the
group's limit) and invokes the rule's action function with it, asynchronously, as a rule would.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.bootstrap import load_settings
from correlator.internal import bus_emitter
from correlator.logs import function_logger
from correlator.policy_gate import Flusher, policy_state_from_env
from correlator.tracing import PATCH_MODULES


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    action_targets: str  # JSON: rule action -> the ARN its deliveries go to
    event_bus_arn: str


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
lambda_client = aws.client("lambda")
state = policy_state_from_env(os.environ)
assert state is not None, "the flusher needs POLICY_TABLE_NAME and POLICY_FLUSH_QUEUE_URL"
events = aws.client("events")


def invoke(function_arn: str, delivery: dict[str, Any]) -> None:
    lambda_client.invoke(FunctionName=function_arn, InvocationType="Event", Payload=json.dumps(delivery).encode())


flusher = Flusher(
    state,
    bus_emitter(metrics),
    json.loads(settings.action_targets),
    invoke,
    account=settings.event_bus_arn.split(":")[4],
    region=events.meta.region_name,
)


def flush(record: SQSRecord) -> None:
    event = flusher.handle(json.loads(record.body))
    if event is not None:
        logger.info("digest sent", extra={"rule": event.system_id, "count": event.info, "group": event.object})
        metrics.add_metric(name="DigestsSent", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A message that fails alone goes back to the queue (retried, then dead-lettered).
    return process_partial_response(event=event, record_handler=flush, processor=processor, context=context)
