"""Email action: renders a rule's Mako templates for the event and sends them with SES, once.

EventBridge invokes it asynchronously with ``{"rule", "event"}``; a transient failure raises
(Lambda retries, then the on-failure destination), everything else ends in a result event.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.delivery import parse_delivery
from correlator.internal import counted_emitter
from correlator.logs import adopt_core_logs
from correlator.mail import EmailAction
from correlator.notification import OncePerKey
from correlator.publisher import EventPublisher
from correlator.templating import TemplateRenderer

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
METRIC_NAMES = {"sent": "EmailsSent", "failed": "EmailsFailed"}

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()


ses = aws.client("sesv2")
once = OncePerKey(os.environ["IDEMPOTENCY_TABLE_NAME"], key_prefix="email")
action = EmailAction(
    ses=ses,
    renderer=TemplateRenderer(TEMPLATES_DIR),
    emitter=counted_emitter(EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"]), metrics),
    once=once,
    default_sender=os.environ["SENDER_EMAIL"],
    log=logger,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register_lambda_context(context)
    delivery = parse_delivery(event)
    logger.append_keys(rule=delivery.rule.name, event_id=delivery.event.id, request_key=delivery.event.request_key)
    result, replayed = action.handle(delivery)
    if replayed:
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name=METRIC_NAMES[result["status"]], unit=MetricUnit.Count, value=1)
    return {**result, "replayed": replayed}
