"""POST /events: validate, stamp and publish client events to the Correlator bus."""

from __future__ import annotations

import os
from typing import Annotated, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.api import (
    caller_from,
    json_body_or_none,
    register_error_handlers,
)
from correlator.errors import CorrelatorError, PublishFailedError
from correlator.logs import function_logger
from correlator.publisher import EventPublisher
from correlator.reception import (
    MAX_BODY_BYTES,
    ReceptionResponse,
    Submission,
    locate,
    publish_or_raise,
    result_of,
    stamp_submissions,
    submissions_of,
)

logger = function_logger()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)
publisher = EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"])


def _count_rejected(error: CorrelatorError) -> None:
    if isinstance(error, PublishFailedError):
        return
    body = json_body_or_none(app.current_event)
    events = body.get("events") if isinstance(body, dict) else None
    rejected = len(events) if isinstance(events, list) and events else 1
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=rejected)
    logger.info("request rejected", status=error.status, code=error.code, events=rejected)


register_error_handlers(app, max_body_bytes=MAX_BODY_BYTES, locate=locate, on_error=_count_rejected)


@app.post(
    "/events",
    summary="Submit one event or a batch of up to 100",
    responses={
        200: {"description": "Every event was accepted"},
        400: {"description": "Malformed JSON, a body that is not an object, or an invalid header"},
        413: {"description": "The body or one event is over its size limit"},
        415: {"description": "The body is not application/json"},
        422: {"description": "Schema violation; details name each event index and field"},
        503: {"description": "Some events could not be published; results give each entry's status"},
    },
)
def post_events(submission: Annotated[Submission, Body()]) -> ReceptionResponse:
    caller = caller_from(app.current_event)
    events = stamp_submissions(submissions_of(submission), caller, publisher.bus_name)
    try:
        outcomes = publish_or_raise(events, publisher)
    except PublishFailedError as error:
        failed = sum(1 for result in error.results if result["status"] == "failed")
        metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=failed)
        metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(events) - failed)
        logger.warning("publish failed", failed=failed, total=len(events), request_key=caller.request_key)
        raise
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(events))
    logger.info("events accepted", count=len(events), request_key=caller.request_key, subject=caller.subject)
    return ReceptionResponse.model_validate({"results": [result_of(outcome) for outcome in outcomes]})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
