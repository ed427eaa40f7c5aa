"""Delivery feedback: SES notifications and Twilio status callbacks become internal events.

Two sources invoke it: the rule on the account's default bus that matches SES's email events for
mail Correlator sent (an EventBridge event), and ``POST /feedback/twilio/{origin}`` (Twilio's
status callback, authenticated by ``X-Twilio-Signature``, no API key: Twilio cannot send one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.api import register_error_handlers
from correlator.bootstrap import load_settings
from correlator.errors import ForbiddenError, NotFoundError
from correlator.feedback import email_feedback, emit_once, ses_feedback_key, ses_origin
from correlator.idempotency import OncePerKey
from correlator.internal import bus_emitter
from correlator.logs import function_logger
from correlator.secrets import SecretReader
from correlator.tracing import PATCH_MODULES
from correlator.twilio_credentials import read_credentials
from functions.feedback.twilio_status import receive_twilio_status, twilio_signed_url


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    idempotency_table_name: str
    twilio_secret_name: str = ""  # none: no Twilio account (its callback route answers 404)


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app, json_bodies=False)  # Twilio posts a form, not JSON

emitter = bus_emitter(metrics)
# SES and Twilio may deliver a notification twice: each produces its event once.
once = OncePerKey(settings.idempotency_table_name, key_prefix="feedback")
twilio_secret = settings.twilio_secret_name
secrets = SecretReader(SecretsProvider(boto3_client=aws.client("secretsmanager")))

Origin = Annotated[
    str, Path(description="The delivery the message came from: <rule>.<event id>.<hops>[.<request key>]")
]


@app.post(
    "/feedback/twilio/<origin>",
    summary="Twilio status callback (authenticated by X-Twilio-Signature)",
    responses={
        204: {"description": "Accepted (interim statuses emit nothing)"},
        403: {"description": "Bad or missing X-Twilio-Signature"},
        404: {"description": "No Twilio account configured, or a path that names no delivery"},
    },
)
def twilio_status(origin: Origin) -> Response[None]:
    if not twilio_secret:
        raise NotFoundError("no Twilio account is configured")
    request = app.current_event
    status, event = receive_twilio_status(
        url=twilio_signed_url(request.request_context.domain_name or "", request.request_context.path),
        body=request.decoded_body or "",
        signature=request.headers.get("X-Twilio-Signature"),
        origin_token=origin,
        auth_token=read_credentials(secrets, twilio_secret).auth_token.get_secret_value(),
        emitter=emitter,
        once=once,
    )
    if status == 403:
        logger.warning("twilio callback refused: bad signature")
        metrics.add_metric(name="FeedbackRefused", unit=MetricUnit.Count, value=1)
        raise ForbiddenError("X-Twilio-Signature does not verify")
    if status == 404:
        raise NotFoundError("the path names no delivery")
    if event is not None:
        logger.info("sms feedback", extra={"type": event.type, "object": event.object})
        metrics.add_metric(name="SmsFeedback", unit=MetricUnit.Count, value=1)
    return Response(status_code=204)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register_lambda_context(context)
    if "httpMethod" in event:
        return app.resolve(event, context)
    detail = event.get("detail") or {}
    if ses_origin(detail) is None:
        logger.info("ses notification ignored: not an email Correlator sent", extra={"type": event.get("detail-type")})
        return {"emitted": None}
    emitted = emit_once(once, ses_feedback_key(detail), lambda: email_feedback(detail, emitter))
    if emitted is None:
        logger.info("ses notification already handled", extra=ses_feedback_key(detail))
        return {"emitted": None}
    logger.info("email feedback", extra={"type": emitted.type, "object": emitted.object})
    metrics.add_metric(name="EmailFeedback", unit=MetricUnit.Count, value=1)
    return {"emitted": emitted.type}
