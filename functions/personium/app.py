"""Personium's APIs on Correlator: event reception at /__event, in Personium's shapes.

The same bus, rules and checks as Correlator's own routes; what differs is the shape of bodies,
headers and errors (docs/personium-compatibility.md).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator.logs import adopt_core_logs
from correlator.personium import (
    EVENT_ID_HEADER,
    PersoniumError,
    caller_of,
    event_submission,
    override_method,
    personium_error,
    personium_request_gate,
    personium_responses,
    register_personium_error_handlers,
    success_headers,
)
from correlator.publisher import EventPublisher
from correlator.reception import MAX_BODY_BYTES, publish_or_raise, stamp_submissions

logger = Logger()
adopt_core_logs(logger)
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver()
publisher = EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"])


def _count_refused(error: PersoniumError) -> None:
    logger.info("request refused", status=error.status, code=error.personium_code)


register_personium_error_handlers(app, on_error=_count_refused)
gate = personium_request_gate(MAX_BODY_BYTES)


@app.post(
    "/__event",
    middlewares=[gate],
    summary="Personium event reception: one event {Type, Object, Info}",
    responses=personium_responses(
        {
            200: "Accepted (empty body); X-Personium-EventId names the event",
            400: "PR400-CM-0004 not a JSON object, PR400-EV-0002 bad request key, PR400-EV-0003/0004 bad field",
            413: "The body or the stamped event is over its size limit",
            415: "PR415-MC-0001: the body is not application/json",
            503: "PR503-SV-0002: the event could not be published; send it again",
        }
    ),
)
def post_event() -> Response[None]:
    caller = caller_of(app.current_event.raw_event)
    submission = event_submission(app.current_event.json_body)
    envelopes = stamp_submissions([submission], caller, publisher.bus_name)
    [outcome] = publish_or_raise(envelopes, publisher)
    metrics.add_metric(name="PersoniumEventsAccepted", unit=MetricUnit.Count, value=1)
    logger.info("event accepted", event_id=outcome.event_id, request_key=caller.request_key, subject=caller.subject)
    return Response(status_code=200, body=None, headers=success_headers({EVENT_ID_HEADER: outcome.event_id}))


@app.route("/__event", method=["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"], include_in_schema=False)
def other_event_method() -> Response[None]:
    raise personium_error("PR405-MC-0001")


@app.route("/__event", method=["PROPFIND", "PROPPATCH"], include_in_schema=False)
def event_log_settings() -> Response[None]:
    # Personium's never-implemented log-settings API (GET/PUT /logs/settings is Correlator's).
    raise personium_error("PR501-MC-0001")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(override_method(event), context)
