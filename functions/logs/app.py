"""The event-log admin API (IAM): list, get (presigned redirect), delete archives, settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator import aws
from correlator import logdownloads as downloads
from correlator.api import register_error_handlers
from correlator.appender import S3Appender
from correlator.audit import RouteKey, resolve_and_audit
from correlator.bootstrap import load_settings
from correlator.errors import BadRequestError, NotFoundError
from correlator.eventlog import (
    CURRENT_NAME,
    EventLog,
    LogListing,
    LogSettings,
    LogSettingsReplacement,
)
from correlator.internal import bus_emitter
from correlator.logs import function_logger
from correlator.tracing import PATCH_MODULES

EVENT_TYPES: dict[RouteKey, str] = {
    ("GET", "/logs"): "log.list",
    ("GET", "/logs/current/default.log"): "log.get",
    ("GET", "/logs/archive/{name}"): "log.get",
    ("DELETE", "/logs/current/default.log"): "log.delete",
    ("DELETE", "/logs/archive/{name}"): "log.delete",
    ("GET", "/logs/settings"): "log.settings.get",
    ("PUT", "/logs/settings"): "log.settings.update",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    log_bucket_name: str


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)


register_error_handlers(app)
event_log = EventLog(S3Appender(aws.client("s3"), settings.log_bucket_name))


emitter = bus_emitter(metrics)
# No length limit here: a malformed name of any length is 404 (archive_key), not a 422.
ArchiveName = Annotated[str, Path(description="An archive name: default.log.{epoch_ms}")]


@app.get("/logs", summary="List the current log and the archives (uncompressed sizes)")
def list_logs() -> LogListing:
    return event_log.listing()


@app.get(
    "/logs/current/default.log",
    summary="Download the current log",
    responses={
        302: {"description": "Redirect to a presigned S3 URL"},
        200: {
            "description": "Empty: no log yet",
            "content": {"text/csv": {"schema": {"type": "string", "maxLength": 0}}},
        },
    },
)
def get_current_log() -> Response[str | None]:
    return downloads.current_log(event_log)


@app.get(
    "/logs/archive/<name>",
    summary="Download an archive (gzip, Content-Encoding: gzip)",
    responses={302: {"description": "Redirect to a presigned S3 URL"}, 404: {"description": "No such archive"}},
)
def get_archive(name: ArchiveName) -> Response[None]:
    return downloads.redirect(event_log, _existing_archive(name))


@app.delete(
    "/logs/archive/<name>",
    summary="Delete an archive",
    responses={204: {"description": "Deleted"}, 404: {"description": "No such archive"}},
)
def delete_archive(name: ArchiveName) -> Response[None]:
    try:
        deleted = event_log.delete_archive(name)
    except ValueError:
        deleted = False
    if not deleted:
        raise NotFoundError(f"no archive named {name[:80]!r}")
    logger.info("archive deleted", archive=name)  # "name" is a reserved LogRecord attribute
    return Response(status_code=204)


@app.delete(
    "/logs/current/default.log",
    summary="Refused: the current log cannot be deleted",
    responses={400: {"description": "Always: delete archives instead"}},
)
def delete_current_log() -> Response[None]:
    raise BadRequestError(f"the current log ({CURRENT_NAME}) cannot be deleted; delete archives instead")


@app.get("/logs/settings", summary="Rotation settings")
def get_settings() -> LogSettings:
    return event_log.settings()


@app.put(
    "/logs/settings",
    summary="Replace both rotation settings (the writer applies them on its next batch)",
    responses={
        200: {"description": "The settings now in force"},
        422: {"description": "A field is missing, out of range or unknown: PUT replaces both"},
    },
)
def put_settings(settings: Annotated[LogSettingsReplacement, Body()]) -> LogSettings:
    event_log.save_settings(settings)
    # Fewer generations take effect now, not at the next rotation.
    pruned = event_log.prune(settings.generations)
    logger.info("settings updated", pruned=pruned, **settings.model_dump())
    return settings


def _existing_archive(name: str) -> str:
    return downloads.existing_archive(event_log, name, lambda shown: NotFoundError(f"no archive named {shown!r}"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_and_audit(app, event, context, emitter, EVENT_TYPES)
