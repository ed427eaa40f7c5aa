"""Personium's APIs on Correlator: event reception at /__event, the event log at /__log, in Personium's shapes.

The same bus, rules and checks as Correlator's own routes; what differs is the shape of bodies,
headers and errors (docs/personium-compatibility.md).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator import logdownloads as downloads
from correlator.appender import S3Appender
from correlator.audit import RouteKey, resolve_and_audit
from correlator.bootstrap import load_settings
from correlator.eventlog import EventLog
from correlator.internal import bus_emitter
from correlator.logs import function_logger
from correlator.personium import (
    EVENT_ID_HEADER,
    PersoniumError,
    caller_of,
    event_submission,
    override_method,
    personium_error,
    personium_request_gate,
    personium_responses,
    public_base_url,
    register_personium_error_handlers,
    success_headers,
)
from correlator.personium_log import (
    COLLECTIONS,
    XML_CONTENT_TYPE,
    Collection,
    DavEntry,
    check_depth,
    check_propfind_body,
    collection_entry,
    log_files,
    log_name_is_valid,
    multistatus,
)
from correlator.publisher import EventPublisher
from correlator.reception import MAX_BODY_BYTES, publish_or_raise, stamp_submissions
from correlator.tracing import PATCH_MODULES


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    event_bus_name: str
    log_bucket_name: str


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
app = APIGatewayRestResolver()
publisher = EventPublisher(aws.client("events"), settings.event_bus_name)
event_log = EventLog(S3Appender(aws.client("s3"), settings.log_bucket_name))
emitter = bus_emitter(metrics, publisher)
# The internal event of every log call, as for Correlator's /logs routes (POST /__event emits none, as POST /events).
EVENT_TYPES: dict[RouteKey, str] = {
    ("GET", "/__log/current/default.log"): "log.get",
    ("GET", "/__log/archive/{name}"): "log.get",
    ("DELETE", "/__log/current/default.log"): "log.delete",
    ("DELETE", "/__log/archive/{name}"): "log.delete",
    ("PROPFIND", "/__log/current"): "log.list",
    ("PROPFIND", "/__log/archive"): "log.list",
    ("PROPFIND", "/__log/current/default.log"): "log.list",
    ("PROPFIND", "/__log/archive/{name}"): "log.list",
}
# Methods Personium answers 405 on the log paths (GET and DELETE of files and PROPFIND are routed below).
_OTHER_METHODS = ["PUT", "POST", "PATCH", "PROPPATCH", "MKCOL"]
OTHER_LOG_METHODS: dict[str, list[str]] = {
    "/__log/current": ["GET", "DELETE", *_OTHER_METHODS],
    "/__log/archive": ["GET", "DELETE", *_OTHER_METHODS],
    "/__log/current/default.log": _OTHER_METHODS,
    "/__log/archive/<name>": _OTHER_METHODS,
}


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


# ---- /__log ----


def _existing_archive(name: str) -> str:
    return downloads.existing_archive(event_log, name, lambda shown: personium_error("PR404-DV-0001", shown))


@app.get(
    "/__log/current/default.log",
    summary="Personium: download the current event log",
    responses=personium_responses(
        {302: "Redirect to a presigned S3 URL (text/csv)", 200: "Empty text/csv: no log yet"}
    ),
)
def get_current_log() -> Response[str | None]:
    return downloads.current_log(event_log)


@app.get(
    "/__log/archive/<name>",
    summary="Personium: download an archived event log",
    responses=personium_responses(
        {302: "Redirect to a presigned S3 URL (text/csv, Content-Encoding: gzip)", 404: "PR404-DV-0001"}
    ),
)
def get_archive(name: str) -> Response[None]:
    return downloads.redirect(event_log, _existing_archive(name))


@app.delete(
    "/__log/archive/<name>",
    summary="Personium: delete an archived event log",
    responses=personium_responses({204: "Deleted", 404: "PR404-DV-0001"}),
)
def delete_archive(name: str) -> Response[None]:
    if not event_log.delete_archive(_existing_archive(name).rsplit("/", 1)[1]):
        raise personium_error("PR404-DV-0001", name)
    logger.info("archive deleted", archive=name)
    return Response(status_code=204)


@app.delete(
    "/__log/current/default.log",
    summary="Personium: refused, the current log cannot be deleted",
    responses=personium_responses({400: "PR400-EV-0005"}),
)
def delete_current_log() -> Response[None]:
    raise personium_error("PR400-EV-0005")


@app.route("/__log/<collection>", method="PROPFIND", include_in_schema=False)
def propfind_collection(collection: str) -> Response[str]:
    if collection not in COLLECTIONS:
        raise personium_error("PR404-MC-0001")
    depth = check_depth(app.current_event.headers.get("Depth"))
    check_propfind_body(_body_bytes())
    base_url = public_base_url(app.current_event)
    files = log_files(event_log, _collection(collection), base_url)
    entries = [collection_entry(_collection(collection), files, base_url, datetime.now(UTC))]
    return _multistatus(entries + files if depth == "1" else entries)


@app.route("/__log/<collection>/<name>", method="PROPFIND", include_in_schema=False)
def propfind_file(collection: str, name: str) -> Response[str]:
    if collection not in COLLECTIONS:
        raise personium_error("PR404-MC-0001")
    check_propfind_body(_body_bytes())
    check_depth(app.current_event.headers.get("Depth"))
    if not log_name_is_valid(_collection(collection), name):
        raise personium_error("PR404-DV-0001", name[:80])
    files = log_files(event_log, _collection(collection), public_base_url(app.current_event))
    found = [entry for entry in files if entry.href.rsplit("/", 1)[1] == name]
    if not found:
        raise personium_error("PR404-DV-0001", name)
    return _multistatus(found)


for _path, _methods in OTHER_LOG_METHODS.items():

    @app.route(_path, method=_methods, include_in_schema=False)
    def other_log_method(**_: str) -> Response[None]:
        raise personium_error("PR405-MC-0001")


def _collection(name: str) -> Collection:
    return "current" if name == "current" else "archive"


def _body_bytes() -> bytes:
    event = app.current_event
    return base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode("utf-8")


def _multistatus(entries: list[DavEntry]) -> Response[str]:
    return Response(status_code=207, content_type=XML_CONTENT_TYPE, body=multistatus(entries))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_and_audit(app, override_method(event), context, emitter, EVENT_TYPES)
