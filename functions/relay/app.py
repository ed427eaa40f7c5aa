"""Relay: POST an event to a URL, submit it to another Correlator, or put it on another bus.

Invoked asynchronously by EventBridge with the delivery ``{"rule", "event"}``; idempotent on
(rule name, event id) through the runner; a retryable failure is reported, then ``RetryLater``
hands the delivery to Lambda's retries and finally to the action failure queue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from correlator import aws
from correlator.bootstrap import action_runner, load_settings
from correlator.logs import function_logger
from correlator.publisher import EventPublisher
from correlator.relay_policy import RelaySettings
from correlator.secrets import SecretReader
from correlator.tracing import PATCH_MODULES
from functions.relay.relay import RelayAction

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


@dataclass(frozen=True, slots=True)
class BusSettings:
    """The bus this function reports on (the relay policy is ``RelaySettings``)."""

    event_bus_name: str


logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
settings = RelaySettings.from_env(os.environ)
bus = load_settings(BusSettings)
events: EventBridgeClient = aws.client("events")


@cache
def _events_in(region: str) -> EventBridgeClient:
    # relay.bus may target a bus in another region: PutEvents must go to that region's endpoint.
    if region == events.meta.region_name:
        return events
    client: EventBridgeClient = aws.client("events", Config(region_name=region))
    return client


runner = action_runner(
    RelayAction(
        settings,
        secrets=SecretReader(SecretsProvider(boto3_client=aws.client("secretsmanager")), prefix=settings.secret_prefix),
        events_client_for=_events_in,
    ),
    logger=logger,
    metrics=metrics,
    publisher=EventPublisher(events, bus.event_bus_name),
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runner.handle(event, context)
