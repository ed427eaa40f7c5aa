"""SMS action: renders a rule's Mako body for the event and sends it with Twilio, once per recipient.

EventBridge invokes it asynchronously with ``{"rule", "event"}``. Without ``TWILIO_SECRET_NAME``
it is a dry run: the message is logged and the result event says ``dry-run``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.delivery import parse_delivery
from correlator.internal import counted_emitter
from correlator.logs import adopt_core_logs
from correlator.notification import OncePerKey
from correlator.publisher import EventPublisher
from correlator.sms import SmsAction, TwilioSender
from correlator.templating import TemplateRenderer

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
METRIC_NAMES = {"sent": "SmsSent", "failed": "SmsFailed", "dry-run": "SmsDryRuns"}

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()


secret_name = os.environ.get("TWILIO_SECRET_NAME", "")
# No secret configured: a dry run (the message is logged, nothing is sent).
sender = (
    TwilioSender(secret_name, secrets=SecretsProvider(boto3_client=aws.client("secretsmanager")), log=logger)
    if secret_name
    else None
)
once = OncePerKey(os.environ["IDEMPOTENCY_TABLE_NAME"], key_prefix="sms")
action = SmsAction(
    renderer=TemplateRenderer(TEMPLATES_DIR),
    emitter=counted_emitter(EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"]), metrics),
    once=once,
    sender=sender,
    log=logger,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register_lambda_context(context)
    delivery = parse_delivery(event)
    logger.append_keys(rule=delivery.rule.name, event_id=delivery.event.id, request_key=delivery.event.request_key)
    outcomes = action.handle(delivery)
    for result, replayed in outcomes:
        name = "DuplicateDeliveries" if replayed else METRIC_NAMES[result["status"]]
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return {"results": [{**result, "replayed": replayed} for result, replayed in outcomes]}
