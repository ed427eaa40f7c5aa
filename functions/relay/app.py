"""Relay: POST an event to a URL, submit it to another Correlator, or put it on another bus.

Invoked asynchronously by EventBridge with the delivery ``{"rule", "event"}``; idempotent on
(rule name, event id). A raised ``RelayRetryLater`` hands the delivery to Lambda's retries and
finally to the action failure queue.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from correlator import aws
from correlator.delivery import parse_delivery
from correlator.idempotency import OncePerKey
from correlator.internal import counted_emitter
from correlator.logs import adopt_core_logs
from correlator.publisher import EventPublisher
from correlator.relay import IDEMPOTENCY_KEY_PREFIX, Relay, RelayRetryLater, SecretReader, run_once
from correlator.relay_policy import RelaySettings

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()
settings = RelaySettings.from_env(os.environ)
events: EventBridgeClient = aws.client("events")


@cache
def _events_in(region: str) -> EventBridgeClient:
    # relay.bus may target a bus in another region: PutEvents must go to that region's endpoint.
    if region == events.meta.region_name:
        return events
    client: EventBridgeClient = aws.client("events", Config(region_name=region))
    return client


once = OncePerKey(os.environ["IDEMPOTENCY_TABLE_NAME"], key_prefix=IDEMPOTENCY_KEY_PREFIX)
relay_once = run_once(
    Relay(
        settings,
        counted_emitter(EventPublisher(events, os.environ["EVENT_BUS_NAME"]), metrics),
        secrets=SecretReader(SecretsProvider(boto3_client=aws.client("secretsmanager")), settings.secret_prefix),
        events_client_for=_events_in,
    ),
    once,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register_lambda_context(context)
    delivery = parse_delivery(event)
    logger.append_keys(rule=delivery.rule.name, action=delivery.action, event_id=delivery.event.id)
    try:
        result = relay_once(delivery, lambda: context.get_remaining_time_in_millis() / 1000)
    except RelayRetryLater:
        metrics.add_metric(name="RelaysRetried", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=f"Relays{result['outcome'].capitalize()}", unit=MetricUnit.Count, value=1)
    return result
