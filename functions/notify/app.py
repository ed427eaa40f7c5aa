"""Notify action: a rule's notification to chat, paging and push services through Apprise.

EventBridge invokes it asynchronously with ``{"rule", "event"}`` (the policy flusher with a digest);
each service (a Secrets Manager secret holding Apprise URLs) is notified once per delivery, behind
the SSRF guard, and reported with a result event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.bootstrap import action_runner, load_settings
from correlator.logs import function_logger
from correlator.secrets import SecretReader
from correlator.ssrf import AllowList
from correlator.tracing import PATCH_MODULES_WITH_REQUESTS
from functions.notify.notify import Notifier, NotifyAction


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    notify_secret_prefix: str = "correlator/notify/"  # noqa: S105 - a name prefix, not a secret
    notify_allowed_hosts: str = ""


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES_WITH_REQUESTS)
metrics = Metrics()

notifier = Notifier(
    secrets=SecretReader(
        SecretsProvider(boto3_client=aws.client("secretsmanager")),
        prefix=settings.notify_secret_prefix,
    ),
    allowed=AllowList.parse(settings.notify_allowed_hosts),
)
runner = action_runner(NotifyAction(notifier), logger=logger, metrics=metrics)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runner.handle(event, context)
