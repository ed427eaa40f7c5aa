"""SMS action: renders a rule's Mako body for the event and sends it with Twilio, once per recipient.

EventBridge invokes it asynchronously with ``{"rule", "event"}``. Without ``TWILIO_SECRET_NAME``
it is a dry run: the message is logged and the result event says ``dry-run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.bootstrap import action_runner, load_settings
from correlator.intent import IntentRecords
from correlator.logs import function_logger
from correlator.tracing import PATCH_MODULES_WITH_REQUESTS
from functions.sms.sms import SmsAction, TwilioSender
from functions.templating.templating import TemplateRenderer

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    idempotency_table_name: str
    twilio_secret_name: str = ""  # none: a dry run
    feedback_url: str | None = None


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES_WITH_REQUESTS)
metrics = Metrics()


secret_name = settings.twilio_secret_name
# No secret configured: a dry run (the message is logged, nothing is sent).
sender = (
    TwilioSender(secret_name, secrets=SecretsProvider(boto3_client=aws.client("secretsmanager")))
    if secret_name
    else None
)
action = SmsAction(renderer=TemplateRenderer(TEMPLATES_DIR), sender=sender, feedback_url=settings.feedback_url)
runner = action_runner(
    action,
    logger=logger,
    metrics=metrics,
    # The intent is recorded before Twilio is called; an attempt that finds one asks Twilio what it has.
    steps=[IntentRecords(settings.idempotency_table_name, action="sms", reconcile=action.reconcile)],
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runner.handle(event, context)
