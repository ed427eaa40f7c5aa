"""HTTP plumbing shared by every API function: error bodies, caller context, request guards.

Errors are mapped to HTTP here, once: a ``CorrelatorError`` becomes its status and the JSON
``{"code", "message", "details"}``; Powertools' request validation errors become 400 (not JSON,
not an object) or 422 (schema violations, each naming its field).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from correlator.errors import (
    BadRequestError,
    CorrelatorError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from correlator.event import (
    MAX_SUBJECT_CHARS,
    MAX_URL_CHARS,
    MAX_VIA_HOPS,
    is_valid_request_key,
    new_request_key,
)

REQUEST_KEY_HEADERS = ("X-Request-Key", "X-Personium-RequestKey")
RULE_CHAIN_HEADER = "X-Rule-Chain"
VIA_HEADER = "X-Via"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # admin bodies (rules, settings) are small
# Pydantic error types that mean "the body is not a JSON object" rather than a bad field.
_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type", "union_tag_not_found"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request and the chain context it carries (from headers and the request context)."""

    subject: str | None
    request_key: str
    hops: int
    via: list[str] | None


def error_response(error: CorrelatorError) -> Response[dict[str, Any]]:
    """The HTTP response for ``error``."""
    return Response(status_code=error.status, content_type=content_types.APPLICATION_JSON, body=error.to_body())


def header(event: APIGatewayProxyEvent, name: str) -> str | None:
    """A request header, case-insensitively."""
    return event.headers.get(name) if event.headers else None


def caller_from(event: APIGatewayProxyEvent) -> Caller:
    """Extract the caller and chain headers; raise ``BadRequestError`` for invalid headers."""
    identity = event.request_context.identity
    subject = identity.api_key_id or identity.user_arn or identity.caller
    headers: Mapping[str, str] = event.headers or {}  # a case-insensitive copy, built on each access
    return Caller(
        subject=subject[:MAX_SUBJECT_CHARS] if subject else None,
        request_key=_request_key(headers),
        hops=_hops(headers),
        via=_via(headers),
    )


def _request_key(headers: Mapping[str, str]) -> str:
    for name in REQUEST_KEY_HEADERS:
        value = headers.get(name)
        if value is not None:
            if not is_valid_request_key(value):
                raise BadRequestError(
                    f"{name} must match [A-Za-z0-9_-]{{0,128}}", [{"field": name, "message": "invalid request key"}]
                )
            return value
    return new_request_key()


def _hops(headers: Mapping[str, str]) -> int:
    value = headers.get(RULE_CHAIN_HEADER)
    if value is None:
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        raise BadRequestError(
            f"{RULE_CHAIN_HEADER} must be a non-negative integer",
            [{"field": RULE_CHAIN_HEADER, "message": "not a non-negative integer"}],
        )
    return int(value)


def _via(headers: Mapping[str, str]) -> list[str] | None:
    value = headers.get(VIA_HEADER)
    if not value:
        return None
    hops = [item.strip() for item in value.split(",") if item.strip()]
    invalid = [
        item
        for item in hops
        if len(item) > MAX_URL_CHARS or urlsplit(item).scheme not in ("http", "https") or not urlsplit(item).netloc
    ]
    if invalid or len(hops) > MAX_VIA_HOPS:
        raise BadRequestError(
            f"{VIA_HEADER} must be a comma-separated list of at most {MAX_VIA_HOPS} http(s) URLs",
            [{"field": VIA_HEADER, "message": "invalid deployment URL list"}],
        )
    return hops


def require_json_body(event: APIGatewayProxyEvent, max_bytes: int) -> None:
    """Refuse a body that is not declared as JSON (415) or is larger than ``max_bytes`` (413)."""
    # Exactly what Powertools' validation parses as JSON (case-sensitive; no +json types): anything else would
    # come back as a confusing 422 "unsupported content type".
    content_type = (header(event, "Content-Type") or "").split(";")[0].strip()
    if content_type and content_type != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, not {content_type[:100]}",
            [{"field": "Content-Type", "message": "unsupported media type"}],
        )
    body = event.body or ""
    size = len(body) * 3 // 4 if event.is_base64_encoded else len(body.encode("utf-8"))
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"request body is {size} bytes; the limit is {max_bytes}",
            [{"field": "body", "message": f"over {max_bytes} bytes"}],
        )


def require_json_object(event: APIGatewayProxyEvent) -> None:
    """Refuse a body that is not a JSON object (400).

    Powertools' validation would take the first item of a JSON array as the body (dropping the rest)
    and reports ``null`` or an empty body as a missing field.
    """
    try:
        body = event.json_body
    except (ValueError, TypeError):
        raise BadRequestError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequestError("request body must be a JSON object")


def check_json_request(event: APIGatewayProxyEvent, max_bytes: int) -> None:
    """For a request that carries a body: JSON media type (415), at most ``max_bytes`` (413), an object (400)."""
    if event.http_method in BODY_METHODS:
        require_json_body(event, max_bytes)
        require_json_object(event)


def validation_error(
    errors: Sequence[Any], locate: Callable[[tuple[Any, ...]], dict[str, Any]] | None = None
) -> CorrelatorError:
    """Map Powertools/pydantic validation errors to a 400 (not a JSON object) or a 422 with details."""
    if any(error.get("type") == "json_invalid" for error in errors):
        return BadRequestError("request body is not valid JSON")
    if any(error.get("type") in _NOT_AN_OBJECT and tuple(error.get("loc", ())) == ("body",) for error in errors):
        return BadRequestError("request body must be a JSON object")
    details = []
    for error in errors:
        loc = tuple(part for part in error.get("loc", ()) if part != "body")
        where = locate(loc) if locate else {"field": ".".join(str(part) for part in loc) or "body"}
        details.append({**where, "message": error.get("msg", "invalid"), "type": error.get("type", "invalid")})
    noun = "error" if len(details) == 1 else "errors"
    return ValidationFailedError(f"request body failed validation ({len(details)} {noun})", details)


def register_error_handlers(
    app: APIGatewayRestResolver,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    locate: Callable[[tuple[Any, ...]], dict[str, Any]] | None = None,
    on_error: Callable[[CorrelatorError], None] | None = None,
) -> None:
    """Install the request body check and the handlers that turn errors into the API's JSON error bodies.

    Every request with a body goes through ``check_json_request``: before validation errors are
    reported (a body of the wrong media type or size is refused as such, 415/413, not as a schema
    violation), and before every route (Powertools' validation lets a JSON array through as its
    first item).
    """

    def check_body(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        check_json_request(app.current_event, max_body_bytes)
        return next_middleware(app)

    app.use([check_body])

    def respond(error: CorrelatorError) -> Response[dict[str, Any]]:
        if on_error is not None:
            on_error(error)
        return error_response(error)

    @app.exception_handler(CorrelatorError)
    def _correlator_error(error: CorrelatorError) -> Response[dict[str, Any]]:
        return respond(error)

    @app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
    def _validation_error(error: RequestValidationError | RequestUnsupportedContentType) -> Response[dict[str, Any]]:
        try:
            check_json_request(app.current_event, max_body_bytes)
        except CorrelatorError as refused:
            return respond(refused)
        return respond(validation_error(error.errors(), locate))

    @app.not_found
    def _no_route(error: Exception) -> Response[dict[str, Any]]:
        # Powertools' own 404 body ({"statusCode", "message"}) is not the API's error body.
        return respond(NotFoundError("no such resource"))


def json_body_or_none(event: APIGatewayProxyEvent) -> Any:
    """The parsed JSON body, or None when it does not parse (for metrics and diagnostics only)."""
    try:
        return json.loads(event.decoded_body or "null")
    except (ValueError, TypeError):
        return None
