"""Email action: renders a rule's Mako templates for the event and sends them with SES, once.

EventBridge invokes it asynchronously with ``{"rule", "event"}``; the runner (``correlator.action``)
sends once per delivery, reports the result event, and raises ``RetryLater`` for a transient failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.bootstrap import action_runner, load_settings
from correlator.logs import function_logger
from correlator.tracing import PATCH_MODULES
from functions.email.mail import EmailAction
from functions.templating.templating import TemplateRenderer

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    sender_email: str
    ses_configuration_set: str | None = None


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()


ses = aws.client("sesv2")
runner = action_runner(
    EmailAction(
        ses=ses,
        renderer=TemplateRenderer(TEMPLATES_DIR),
        default_sender=settings.sender_email,
        configuration_set=settings.ses_configuration_set,
    ),
    logger=logger,
    metrics=metrics,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runner.handle(event, context)
