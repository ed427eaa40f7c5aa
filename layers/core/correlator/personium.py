"""Personium compatibility: its error body, its event-reception body and headers.

Personium clients talk to ``/__event``, ``/__log/...`` and ``/__ctl/Rule`` (``docs/personium-compatibility.md``).
Requests there pass the same checks as Correlator's own routes (``correlator.api``); what differs is
the shape of what goes in and out, mapped here: Personium's body ``{"Type", "Object", "Info"}``,
its ``X-Personium-*`` headers, and its error body ``{"code": "PR400-EV-0004", "message": {"lang": "en",
"value": "[Type] field format error."}}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel, Field

from correlator.api import (
    REQUEST_KEY_HEADERS,
    RULE_CHAIN_HEADER,
    VIA_HEADER,
    Caller,
    caller_from,
    check_json_request,
)
from correlator.errors import (
    BadRequestError,
    CorrelatorError,
    PayloadTooLargeError,
    PublishFailedError,
    UnsupportedMediaTypeError,
)
from correlator.event import MAX_TEXT_CHARS, TYPE_PATTERN, EventSubmission

# The Personium release whose APIs these routes follow (sent as X-Personium-Version).
PERSONIUM_VERSION = "1.8.3"
REQUEST_KEY_HEADER = "X-Personium-RequestKey"
EVENT_ID_HEADER = "X-Personium-EventId"
PERSONIUM_RULE_CHAIN_HEADER = "X-Personium-RuleChain"
PERSONIUM_VIA_HEADER = "X-Personium-Via"
METHOD_OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-Override")
# A RuleChain that is not a number: Personium evaluates no rule; a depth no rule accepts does the same.
NO_RULES_HOPS = 999_999
EVENT_FIELDS = ("Type", "Object", "Info")
_TYPE_RE = re.compile(TYPE_PATTERN)

# Personium's messages (personium-core personium-messages.properties), by code.
MESSAGES: dict[str, str] = {
    "PR400-CM-0004": "JSON parse error. [{0}].",
    "PR400-EV-0002": "Request header is invalid [X-Personium-RequestKey].",
    "PR400-EV-0003": "[{0}] is required.",
    "PR400-EV-0004": "[{0}] field format error.",
    "PR400-EV-0005": "Cannot delete current eventLog file.",
    "PR400-DV-0001": "XML parse error.",
    "PR400-DV-0002": "XML content error.",
    "PR400-DV-0003": "Invalid depth header value:[{0}].",
    "PR400-OD-0004": "OData EntityKey Parse error.",
    "PR400-OD-0006": "request body format error. field [{0}]",
    "PR400-OD-0009": "[{0}] is required.",
    "PR400-OD-0029": "Query value [{0}]=[{1}] is invalid.",
    "PR400-OD-0042": "Operation is not supported: {0}",
    "PR403-DV-0001": "Infinite depth is not supported.",
    "PR404-DV-0001": "Resource not found. [{0}].",
    "PR404-OD-0002": "No such entity.",
    "PR404-MC-0001": "URI is not recognized.",
    "PR405-MC-0001": "Method not allowed.",
    "PR409-OD-0003": "The entity already exists.",
    "PR412-OD-0002": "ETag does not match.",
    "PR415-MC-0001": "Unsupported media type.",
    "PR501-MC-0001": "Method not implemented.",
    "PR501-MC-0002": "Not implemented. [{0}].",
    "PR503-SV-0002": "Server connection error.",
}


class PersoniumMessage(BaseModel):
    lang: Literal["en"]
    value: str


class PersoniumErrorBody(BaseModel):
    """Personium's error body: ``{"code": "PR400-EV-0004", "message": {"lang": "en", "value": "..."}}``."""

    code: str = Field(
        description="Personium's code (PR{status}-{area}-{nnnn}), or Correlator's where Personium has none"
    )
    message: PersoniumMessage


def personium_responses(descriptions: Mapping[int, str]) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a Personium route: each error status answers a ``PersoniumErrorBody``."""
    responses: dict[int, OpenAPIResponse] = {}
    for status, text in descriptions.items():
        responses[status] = {"description": text}
        if status >= 400:
            responses[status]["content"] = {"application/json": {"model": PersoniumErrorBody}}
    return responses


class PersoniumError(CorrelatorError):
    """An error answered in Personium's shape; the HTTP status is the one in the code (``PR404-...`` → 404)."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "personium"

    def __init__(self, personium_code: str, message: str) -> None:
        super().__init__(message)
        self.personium_code = personium_code

    def to_body(self) -> dict[str, Any]:
        """``{"code": "PR400-EV-0004", "message": {"lang": "en", "value": "..."}}``."""
        return {"code": self.personium_code, "message": {"lang": "en", "value": self.message}}


_BY_STATUS: dict[int, type[PersoniumError]] = {}


def _error_class(status: int) -> type[PersoniumError]:
    if status not in _BY_STATUS:
        _BY_STATUS[status] = type(f"PersoniumError{status}", (PersoniumError,), {"status": status})
    return _BY_STATUS[status]


def personium_error(code: str, *params: object) -> PersoniumError:
    """Personium's error ``code`` with its message, ``{0}``... filled from ``params``."""
    return _error_class(int(code[2:5]))(code, MESSAGES[code].format(*params))


def correlator_error_in_personium_shape(status: int, code: str, message: str) -> PersoniumError:
    """An error Personium has no code for, in Personium's shape with Correlator's ``code``."""
    return _error_class(status)(code, message)


def as_personium_error(error: CorrelatorError) -> PersoniumError:
    """The Personium answer for an error raised by the shared request checks or the publisher."""
    if isinstance(error, PersoniumError):
        return error
    fields = {str(detail.get("field")) for detail in error.details}
    if isinstance(error, BadRequestError):
        if fields & set(REQUEST_KEY_HEADERS):
            return personium_error("PR400-EV-0002")
        if fields & {RULE_CHAIN_HEADER, VIA_HEADER}:
            header = PERSONIUM_VIA_HEADER if VIA_HEADER in fields else PERSONIUM_RULE_CHAIN_HEADER
            return correlator_error_in_personium_shape(400, error.code, f"Request header is invalid [{header}].")
        return personium_error("PR400-CM-0004", error.message)
    if isinstance(error, UnsupportedMediaTypeError):
        return personium_error("PR415-MC-0001")
    if isinstance(error, PublishFailedError):
        return personium_error("PR503-SV-0002")
    if isinstance(error, PayloadTooLargeError):
        return correlator_error_in_personium_shape(413, error.code, error.message)
    return correlator_error_in_personium_shape(error.status, error.code, error.message)


def personium_request_gate(max_body_bytes: int) -> Callable[[APIGatewayRestResolver, NextMiddleware], Response[Any]]:
    """The route middleware of Personium routes that take a body: headers first, as Personium's container
    filter does (``X-Personium-RequestKey``...), then the shared body check (``check_json_request``)."""

    def gate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        caller_of(app.current_event.raw_event)
        check_json_request(app.current_event, max_body_bytes)
        return next_middleware(app)

    return gate


def caller_of(event: dict[str, Any]) -> Caller:
    """The caller of a Personium request: ``caller_from`` with Personium's chain headers (``correlator_headers``)."""
    return caller_from(APIGatewayProxyEvent(correlator_headers(event)))


def register_personium_error_handlers(
    app: APIGatewayRestResolver, *, on_error: Callable[[PersoniumError], None] | None = None
) -> None:
    """Every error in Personium's shape; an unknown path is ``PR404-MC-0001``."""

    def answer(error: CorrelatorError) -> Response[dict[str, Any]]:
        refused = as_personium_error(error)
        if on_error is not None:
            on_error(refused)
        return Response(status_code=refused.status, content_type=content_types.APPLICATION_JSON, body=refused.to_body())

    @app.exception_handler(CorrelatorError)
    def _personium_error(error: CorrelatorError) -> Response[dict[str, Any]]:
        return answer(error)

    @app.not_found
    def _no_route(error: Exception) -> Response[dict[str, Any]]:
        return answer(personium_error("PR404-MC-0001"))


def override_method(event: dict[str, Any]) -> dict[str, Any]:
    """Honour ``X-HTTP-Method-Override`` / ``X-Override`` on POST, as Personium does (PROPFIND over POST)."""
    if str(event.get("httpMethod", "")).upper() != "POST":
        return event
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    for name in METHOD_OVERRIDE_HEADERS:
        value = headers.get(name.lower())
        if value and value.strip().isalpha():
            return {**event, "httpMethod": value.strip().upper()}
    return event


def event_submission(body: Any) -> EventSubmission:
    """A Correlator submission from Personium's body ``{"Type", "Object", "Info"}`` (unknown keys ignored).

    Personium's checks (a string or null, at most 51200 characters: PR400-EV-0004), then Correlator's
    on the type, which is the EventBridge detail type and what rules match: required (PR400-EV-0003)
    and 1-128 characters of ``[A-Za-z0-9._:+-]`` (PR400-EV-0004).
    """
    if not isinstance(body, dict):
        raise personium_error("PR400-CM-0004", "the body is not a JSON object")
    values: dict[str, str | None] = {}
    for field in EVENT_FIELDS:
        value = body.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT_CHARS):
            raise personium_error("PR400-EV-0004", field)
        values[field] = value
    event_type = values["Type"]
    if event_type is None:
        raise personium_error("PR400-EV-0003", "Type")
    if not _TYPE_RE.fullmatch(event_type):
        raise personium_error("PR400-EV-0004", "Type")
    return EventSubmission.model_validate({"type": event_type, "object": values["Object"], "info": values["Info"]})


def correlator_headers(event: dict[str, Any]) -> dict[str, Any]:
    """The proxy event with Personium's chain headers under Correlator's names, for ``caller_from``.

    ``X-Personium-RuleChain`` becomes ``X-Rule-Chain`` (a value that is not a number: no rule fires,
    as in Personium), ``X-Personium-Via`` becomes ``X-Via``. ``X-Personium-RequestKey`` is read by
    ``caller_from`` itself.
    """
    headers: dict[str, str] = dict(event.get("headers") or {})
    lowered = {name.lower(): name for name in headers}
    rule_chain = headers.get(lowered.get(PERSONIUM_RULE_CHAIN_HEADER.lower(), ""))
    if rule_chain is not None:
        value = rule_chain.strip()
        headers[RULE_CHAIN_HEADER] = (
            value if value.isascii() and value.isdigit() and len(value) <= 6 else str(NO_RULES_HOPS)
        )
    via = headers.get(lowered.get(PERSONIUM_VIA_HEADER.lower(), ""))
    if via is not None:
        headers[VIA_HEADER] = via
    return {**event, "headers": headers}


def success_headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers of every Personium success answer."""
    return {"Access-Control-Allow-Origin": "*", "X-Personium-Version": PERSONIUM_VERSION, **(extra or {})}


def public_base_url(event: APIGatewayProxyEvent) -> str:
    """The URL the client called, up to the API's root: ``https://{host}/{stage}`` on an execute-api host.

    From ``Host``, ``X-Forwarded-Proto`` and ``requestContext.path``. Where the API is served without
    the stage in the URL (a custom domain mapped at its root, ``sam local``, the local stack) the stage
    is left out.
    """
    headers = event.headers
    host = headers.get("Host") or "localhost"
    # API Gateway always sets X-Forwarded-Proto (https); without it (sam local, the local stack) it is http.
    proto = headers.get("X-Forwarded-Proto") or "http"
    context = event.request_context
    context_path = context.path or event.path
    prefix = context_path[: -len(event.path)] if context_path.endswith(event.path) else ""
    if ".execute-api." not in host and prefix == f"/{context.stage}":
        prefix = ""
    return f"{'https' if proto == 'https' else 'http'}://{host}{prefix}"
