"""POST /events: validate, stamp and publish client events to the Correlator bus.

Every request that passes the API's checks is served without the resolver and without pydantic: its
body is validated by pydantic-core with the schemas compiled from the models (``correlator.reception``).
The resolver (Powertools' event handler with OpenAPI validation, and pydantic's models: together more
than half of this function's cold start) is built on the first request it must answer — any refusal —
and serves the API's error bodies and the OpenAPI document.
"""

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.api import (
    Caller,
    caller_from,
    json_body_or_none,
    json_proxy_response,
    proxy_response,
    register_error_handlers,
)
from correlator.bootstrap import load_settings
from correlator.errors import CorrelatorError, PayloadTooLargeError, PublishFailedError
from correlator.logs import function_logger
from correlator.publisher import EventPublisher, PublishOutcome
from correlator.reception import (
    MAX_BODY_BYTES,
    accepted_body,
    locate,
    plain_request,
    publish_or_raise,
    result_of,
    stamp_submissions,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from correlator.event import EventSubmission
    from correlator.reception import SubmissionFields


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    event_bus_name: str


settings = load_settings(Settings)
logger = function_logger()
metrics = Metrics()
publisher = EventPublisher(aws.client("events"), settings.event_bus_name)


@functools.cache
def resolver() -> "APIGatewayRestResolver":
    """The REST resolver with the ``POST /events`` route and the API's error handlers (built once)."""
    # This module does not postpone annotations, so the route's are evaluated here, where Body is in scope.
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.event_handler.openapi.params import Body

    from correlator.reception_models import ReceptionResponse, Submission, submissions_of

    app = APIGatewayRestResolver(enable_validation=True)

    def count_rejected(error: CorrelatorError) -> None:
        if isinstance(error, PublishFailedError):
            return
        body = json_body_or_none(app.current_event)
        events = body.get("events") if isinstance(body, dict) else None
        rejected = len(events) if isinstance(events, list) and events else 1
        metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=rejected)
        logger.info("request rejected", status=error.status, code=error.code, events=rejected)

    register_error_handlers(app, max_body_bytes=MAX_BODY_BYTES, locate=locate, on_error=count_rejected)

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
        outcomes = accept(submissions_of(submission), caller_from(app.current_event))
        return ReceptionResponse.model_validate({"results": [result_of(outcome) for outcome in outcomes]})

    return app


def __getattr__(name: str) -> Any:
    # ``app``, as every API function names its resolver (the OpenAPI generator and tests read it).
    if name == "app":
        return resolver()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def accept(submissions: "Sequence[EventSubmission | SubmissionFields]", caller: Caller) -> list[PublishOutcome]:
    """Stamp and publish; every event accepted, or ``PublishFailedError`` when some entries failed."""
    events = stamp_submissions(submissions, caller, publisher.bus_name)
    try:
        outcomes = publish_or_raise(events, publisher)
    except PublishFailedError as error:
        failed = sum(1 for result in error.results if result["status"] == "failed")
        metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=failed)
        metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(events) - failed)
        logger.warning("publish failed", failed=failed, total=len(events), request_key=caller.request_key)
        raise
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(events))
    # Debug, not info: EventsAccepted counts them, and a line per request would cost more CPU than the
    # rest of a single-event request and ~$0.20 per million requests of CloudWatch Logs ingestion.
    logger.debug("events accepted", count=len(events), request_key=caller.request_key, subject=caller.subject)
    return outcomes


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # What correlation_id_path=API_GATEWAY_REST selects, without a JMESPath search per request.
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    # A request with nothing to refuse skips the resolver's per-request work; it answers everything else.
    request = plain_request(event)
    if request is None:
        return resolver().resolve(event, context)
    try:
        return json_proxy_response(200, accepted_body(accept(request.submissions, request.caller)))
    except PayloadTooLargeError:  # refused before anything was published: the resolver says why
        return resolver().resolve(event, context)
    except PublishFailedError as error:
        return proxy_response(error.status, error.to_body())
