"""HTTP plumbing shared by every API function: error bodies, caller context, request guards.

Errors are mapped to HTTP here, once: a ``CorrelatorError`` becomes its status and the JSON
``{"code", "message", "details"}``; Powertools' request validation errors become 400 (not JSON,
not an object) or 422 (schema violations, each naming its field).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from correlator.errors import (
    BadRequestError,
    CorrelatorError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from correlator.eventfields import (
    MAX_SUBJECT_CHARS,
    MAX_URL_CHARS,
    MAX_VIA_HOPS,
    is_valid_request_key,
    new_request_key,
)
from correlator.jsonbody import decode_utf8, parse_json_object

if TYPE_CHECKING:
    # Imported where they are used: the reception serves valid requests without Powertools' event handler,
    # whose import is a third of its cold start.
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
    from aws_lambda_powertools.event_handler.types import EventHandlerInstance
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

JSON_MEDIA_TYPE = "application/json"
# What the resolver serialises responses with (json.dumps, compact, ASCII), built once.
_RESPONSE_JSON = json.JSONEncoder(separators=(",", ":"))

REQUEST_KEY_HEADERS = ("X-Request-Key", "X-Personium-RequestKey")
RULE_CHAIN_HEADER = "X-Rule-Chain"
VIA_HEADER = "X-Via"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # admin bodies (rules, settings) are small
# Pydantic error types that mean "the body is not a JSON object" rather than a bad field.
_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type", "union_tag_not_found"})


@dataclass(slots=True)  # not frozen: built per request, and a frozen dataclass costs ~3x to build
class Caller:
    """Who made a request and the chain context it carries (from headers and the request context)."""

    subject: str | None
    request_key: str
    hops: int
    via: list[str] | None


def error_response(error: CorrelatorError) -> Response[dict[str, Any]]:
    """The HTTP response for ``error``."""
    from aws_lambda_powertools.event_handler import Response

    return Response(status_code=error.status, content_type=JSON_MEDIA_TYPE, body=error.to_body())


def header(event: APIGatewayProxyEvent, name: str) -> str | None:
    """A request header, case-insensitively."""
    return event.headers.get(name) if event.headers else None


def lowercase_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The headers of a raw proxy event, keyed by lower-case name (header names are case-insensitive)."""
    return {name.lower(): value for name, value in (event.get("headers") or {}).items()}


def subject_of(request_context: Mapping[str, Any]) -> str | None:
    """The authenticated caller: the API key id or IAM principal (REST API), or the JWT's ``sub`` (HTTP API).

    The HTTP API's JWT authorizer puts the token's claims under ``authorizer.claims`` in the 1.0 payload
    (``authorizer.jwt.claims`` in 2.0); API Gateway has verified the token before the function runs.
    """
    identity = request_context.get("identity") or {}
    subject = identity.get("apiKeyId") or identity.get("userArn") or identity.get("caller")
    if not subject:
        authorizer = request_context.get("authorizer") or {}
        claims = authorizer.get("claims") or (authorizer.get("jwt") or {}).get("claims") or {}
        subject = claims.get("sub") if isinstance(claims, Mapping) else None
    return subject[:MAX_SUBJECT_CHARS] if isinstance(subject, str) and subject else None


def caller_from(event: APIGatewayProxyEvent) -> Caller:
    """Extract the caller and chain headers; raise ``BadRequestError`` for invalid headers."""
    return caller_of(event.raw_event)


def caller_of(event: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Caller:
    """``caller_from`` for a raw proxy event (``headers``: its ``lowercase_headers``, when already at hand)."""
    headers = lowercase_headers(event) if headers is None else headers
    return Caller(
        subject=subject_of(event.get("requestContext") or {}),
        request_key=_request_key(headers),
        hops=_hops(headers),
        via=_via(headers),
    )


def _request_key(headers: Mapping[str, str]) -> str:
    for name in REQUEST_KEY_HEADERS:
        value = headers.get(name.lower())
        if value is not None:
            if not is_valid_request_key(value):
                raise BadRequestError(
                    f"{name} must match [A-Za-z0-9_-]{{0,128}}", [{"field": name, "message": "invalid request key"}]
                )
            return value
    return new_request_key()


def _hops(headers: Mapping[str, str]) -> int:
    value = headers.get(RULE_CHAIN_HEADER.lower())
    if value is None:
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        raise BadRequestError(
            f"{RULE_CHAIN_HEADER} must be a non-negative integer",
            [{"field": RULE_CHAIN_HEADER, "message": "not a non-negative integer"}],
        )
    return int(value)


def _via(headers: Mapping[str, str]) -> list[str] | None:
    value = headers.get(VIA_HEADER.lower())
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


def require_json_body(event: APIGatewayProxyEvent, max_bytes: int) -> bytes:
    """The raw body, once its media type (415) and size (413) are acceptable."""
    return raw_json_body(header(event, "Content-Type"), event.body, bool(event.is_base64_encoded), max_bytes)


def raw_json_body(content_type: str | None, body: str | None, is_base64: bool, max_bytes: int) -> bytes:
    """``require_json_body`` on the parts of a raw proxy event."""
    # Exactly what Powertools' validation parses as JSON (case-sensitive; no +json types): anything else would
    # come back as a confusing 422 "unsupported content type" (or crash its multipart parser).
    content_type, _, parameters = (content_type or "").partition(";")
    content_type = content_type.strip()
    charset = _charset(parameters)
    if (content_type and content_type != "application/json") or charset not in (None, "utf-8"):
        refused = content_type if charset in (None, "utf-8") else f"{content_type}; charset={charset}"
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, not {refused[:100]}",
            [{"field": "Content-Type", "message": "unsupported media type"}],
        )
    body = body or ""
    if is_base64:
        if len(body) * 3 // 4 > max_bytes + 2:
            raise _too_large(len(body) * 3 // 4, max_bytes)
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            raise BadRequestError("request body is not valid base64") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise _too_large(len(raw), max_bytes)
    return raw


def _charset(parameters: str) -> str | None:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _too_large(size: int, max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request body is {size} bytes; the limit is {max_bytes}",
        [{"field": "body", "message": f"over {max_bytes} bytes"}],
    )


def check_json_request(event: APIGatewayProxyEvent, max_bytes: int) -> None:
    """The request-body gate: for a request that carries a body, application/json (415), at most
    ``max_bytes`` (413), strict UTF-8 JSON within the limits of ``correlator.jsonbody`` (400/422), an
    object (400). The parsed body is kept on the event, so validation reads exactly what was checked.
    """
    if event.http_method not in BODY_METHODS:
        return
    text, parsed = json_object_body(require_json_body(event, max_bytes))
    # Powertools reads both through functools.cached_property: seed them with what was checked.
    event.__dict__["decoded_body"] = text
    event.__dict__["json_body"] = parsed


def json_object_body(raw: bytes) -> tuple[str, dict[str, Any]]:
    """The body's text and its JSON object, through ``correlator.jsonbody``'s limits (400/422)."""
    text = decode_utf8(raw)
    if not text or text.isspace():  # without copying the body
        raise BadRequestError("request body must be a JSON object")
    return text, parse_json_object(text)


def is_exact_path(path: str) -> bool:
    """False for a trailing ``/`` or any character outside printable ASCII (see ``check_exact_path``)."""
    # printable ASCII but the space: "!" to "~"
    return not (len(path) > 1 and path.endswith("/")) and path.isascii() and path.isprintable() and " " not in path


def check_exact_path(event: APIGatewayProxyEvent) -> None:
    """Refuse (404) a path that only matches a route loosely: a trailing ``/``, or any character outside
    printable ASCII (Powertools' ``$`` also matches before a trailing newline, so ``…%0A`` acted on ``…``).
    Every path parameter of the API has an ASCII grammar.
    """
    if not is_exact_path(event.path or "/"):
        raise NotFoundError("no such resource")


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
    json_bodies: bool = True,
) -> None:
    """Install the request-body gate and the handlers that turn errors into the API's JSON error bodies.

    ``json_bodies=False`` (a route that takes another media type, e.g. Twilio's form posts) installs only
    the error handlers.

    Every request with a body goes through ``check_json_request`` before Powertools' validation
    (which would crash on some bodies, and takes a JSON array's first item as the body) and before
    any route: a body of the wrong media type, size or shape is refused as such, not as a schema
    violation.
    """
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
    from aws_lambda_powertools.event_handler.openapi.exceptions import (
        RequestUnsupportedContentType,
        RequestValidationError,
    )

    class GatedRequestValidation(OpenAPIRequestValidationMiddleware):
        """Powertools' request validation, behind the request-body gate (it runs before any user middleware)."""

        def handler(self, app: EventHandlerInstance, next_middleware: NextMiddleware) -> Response[Any]:
            event = cast("APIGatewayProxyEvent", app.current_event)
            check_exact_path(event)
            check_json_request(event, max_body_bytes)
            return super().handler(app, next_middleware)

    # Powertools runs request validation before every user middleware: the gate takes its place.
    if json_bodies:
        app._request_validation_middleware = GatedRequestValidation()  # type: ignore[no-untyped-call]

    def respond(error: CorrelatorError) -> Response[dict[str, Any]]:
        if on_error is not None:
            on_error(error)
        return error_response(error)

    @app.exception_handler(CorrelatorError)
    def _correlator_error(error: CorrelatorError) -> Response[dict[str, Any]]:
        return respond(error)

    @app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
    def _validation_error(error: RequestValidationError | RequestUnsupportedContentType) -> Response[dict[str, Any]]:
        return respond(validation_error(error.errors(), locate))

    @app.not_found
    def _no_route(error: Exception) -> Response[dict[str, Any]]:
        # Powertools' own 404 body ({"statusCode", "message"}) is not the API's error body.
        return respond(NotFoundError("no such resource"))


def proxy_response(status: int, body: Any) -> dict[str, Any]:
    """A JSON proxy response, exactly as the REST resolver serialises one (for paths that skip it)."""
    return json_proxy_response(status, _RESPONSE_JSON.encode(body))


def json_proxy_response(status: int, body: str) -> dict[str, Any]:
    """``proxy_response`` of a body already serialised as the resolver would (compact, ASCII)."""
    return {
        "statusCode": status,
        "body": body,
        "isBase64Encoded": False,
        "multiValueHeaders": {"Content-Type": [JSON_MEDIA_TYPE]},
    }


def json_body_or_none(event: APIGatewayProxyEvent) -> Any:
    """The body as the request-body gate parsed it, or None when it refused it (for metrics and diagnostics)."""
    return event.__dict__.get("json_body")
