"""HTTP -> handler: the template's Api routes served like API Gateway REST with Lambda proxy integration.

Routes are served at the root (no stage prefix), as ``sam local start-api`` does. Authentication
stands in for API Gateway's: ``ApiKeyRequired`` routes take ``x-api-key: <api key>``; routes under
an authorizer (``DefaultAuthorizer: AWS_IAM`` unless overridden by ``Authorizer: NONE``) take
``x-api-key: <admin key>`` in place of a SigV4 signature. API Gateway's own answers are kept:
403 ``Forbidden`` for a missing or wrong key, 403 ``Missing Authentication Token`` for an unknown
path or method, 429 when an API key route is over its usage plan's throttle or quota
(``local.throttle``), 502 ``Internal server error`` when the handler fails, 500 ``Internal server
error`` when Lambda refuses the invocation (the function is throttled past its reserved
concurrency: https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
"""

from __future__ import annotations

import abc
import base64
import contextlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.functions import LocalFunction
from local.lines import event_count, tone
from local.priority import InFlight
from local.settings import API_KEY_ID, Settings
from local.template import Template
from local.throttle import Limiter, UsagePlan
from local.workers import InvocationError, Throttled

log = logging.getLogger("local.api")

IMPLICIT_API = "ServerlessRestApi"  # SAM's API for Api events without RestApiId
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
Headers = list[tuple[str, str]]


class Auth(StrEnum):
    NONE = "none"
    API_KEY = "api key"
    IAM = "iam"


class RequestTooLargeError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Route:
    method: str  # GET, POST ... or ANY
    path: str  # the resource path template, e.g. /rules/{name}
    function: LocalFunction
    auth: Auth = Auth.NONE
    api_id: str = "local"
    stage: str = "Prod"
    stage_variables: Mapping[str, str] | None = None
    binary_types: tuple[str, ...] = ()
    usage_plan: UsagePlan | None = None  # for API key routes: their API's throttle and quota
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(split_path(self.path)))

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """The path parameters when ``segments`` (decoded) match this route's path, else None."""
        parameters: dict[str, str] = {}
        for index, part in enumerate(self.segments):
            if part.startswith("{") and part.endswith("+}"):
                rest = segments[index:]
                if not rest:
                    return None
                parameters[part[1:-2]] = "/".join(rest)
                return parameters
            if index >= len(segments):
                return None
            if part.startswith("{") and part.endswith("}"):
                parameters[part[1:-1]] = segments[index]
            elif part != segments[index]:
                return None
        return parameters if len(self.segments) == len(segments) else None

    @property
    def specificity(self) -> tuple[int, ...]:
        """Lower sorts first: literal segments beat ``{param}``, which beats ``{proxy+}``."""
        return tuple(2 if part.endswith("+}") else 1 if part.startswith("{") else 0 for part in self.segments)


def split_path(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


class Router:
    """Finds the route of a request as API Gateway does: the most specific resource, then the method."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(routes, key=lambda route: (route.specificity, route.path, route.method))

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        segments = [unquote(part) for part in split_path(path)]
        for route in self.routes:
            parameters = route.match(segments)
            if parameters is None:
                continue
            same_resource = [candidate for candidate in self.routes if candidate.path == route.path]
            for wanted in (method.upper(), "ANY"):
                for candidate in same_resource:
                    if candidate.method == wanted:
                        return candidate, parameters
            return None
        return None


def routes_of(template: Template, functions: Iterable[LocalFunction]) -> list[Route]:
    """Every Api event of the template's functions as a Route (auth from the event and its Api)."""
    routes = []
    for function in functions:
        for event in function.triggers.api:
            if event.api:
                api = {
                    key: template.resolved_property(event.api, key)
                    for key in ("Auth", "StageName", "Variables", "BinaryMediaTypes")
                }
                api_id = str(template.attributes.get(event.api, {}).get("Ref", event.api))
            else:
                api = template.resolve((template.body.get("Globals") or {}).get("Api") or {})
                api_id = "implicit"
            api_auth = api.get("Auth") or {}
            authorizer = event.auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
            key_required = event.auth.get("ApiKeyRequired", api_auth.get("ApiKeyRequired", False))
            auth = Auth.IAM if authorizer not in (None, "NONE") else Auth.API_KEY if key_required else Auth.NONE
            if authorizer not in (None, "NONE", "AWS_IAM"):
                log.warning("%s %s: authorizer %s is replaced by the admin key", event.method, event.path, authorizer)
            routes.append(
                Route(
                    method=event.method,
                    path=event.path,
                    function=function,
                    auth=auth,
                    api_id=api_id,
                    stage=str(api.get("StageName") or "Prod"),
                    stage_variables=api.get("Variables") or None,
                    binary_types=tuple(str(kind).replace("~1", "/") for kind in api.get("BinaryMediaTypes") or []),
                    usage_plan=UsagePlan.from_sam_auth(api_auth) if auth is Auth.API_KEY else None,
                )
            )
    return routes


def _blank_identity(source_ip: str, user_agent: str | None) -> dict[str, Any]:
    keys = ("cognitoIdentityPoolId", "cognitoIdentityId", "cognitoAuthenticationType", "cognitoAuthenticationProvider")
    return {
        **dict.fromkeys(keys),
        "apiKey": None,
        "apiKeyId": None,
        "accessKey": None,
        "accountId": None,
        "caller": None,
        "principalOrgId": None,
        "sourceIp": source_ip,
        "user": None,
        "userAgent": user_agent,
        "userArn": None,
    }


def header_value(headers: Headers, name: str) -> str | None:
    """The last value of a header, case-insensitively (as API Gateway's ``headers`` keeps it)."""
    found = None
    for key, value in headers:
        if key.lower() == name.lower():
            found = value
    return found


def authorize(route: Route, headers: Headers, settings: Settings, identity: dict[str, Any]) -> bool:
    """Check the request's key for ``route``; on success fill ``identity`` as API Gateway would."""
    if route.auth is Auth.NONE:
        return True
    given = (header_value(headers, "x-api-key") or "").encode()
    if route.auth is Auth.IAM:
        if not hmac.compare_digest(given, settings.admin_key.encode()):
            return False
        identity.update(userArn=settings.admin_arn, caller=settings.admin_arn, accountId=settings.account_id)
        return True
    if not hmac.compare_digest(given, settings.api_key.encode()):
        return False
    identity.update(apiKey=settings.api_key, apiKeyId=API_KEY_ID)
    return True


def _is_text(content_type: str | None, route: Route, body: bytes) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    for binary in route.binary_types:
        if binary == "*/*" or binary == kind or (binary.endswith("/*") and kind.startswith(binary[:-1])):
            return False
    return is_utf8(body)


def is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def proxy_event(
    route: Route,
    parameters: Mapping[str, str],
    *,
    method: str,
    target: str,
    headers: Headers,
    body: bytes,
    identity: Mapping[str, Any],
    settings: Settings,
) -> dict[str, Any]:
    """The API Gateway REST (v1) proxy event of a request."""
    url = urlsplit(target)
    path = unquote(url.path) or "/"
    query = parse_qsl(url.query, keep_blank_values=True)
    multi_headers: dict[str, list[str]] = {}
    for key, value in headers:
        multi_headers.setdefault(key, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for key, value in query:
        multi_query.setdefault(key, []).append(value)
    text = _is_text(header_value(headers, "content-type"), route, body)
    now = datetime.now(UTC)
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": {key: values[-1] for key, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(parameters) or None,
        "stageVariables": dict(route.stage_variables) if route.stage_variables else None,
        "requestContext": {
            "resourceId": route.path,
            "resourcePath": route.path,
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{route.stage}{path}",
            "accountId": settings.account_id,
            "protocol": "HTTP/1.1",
            "stage": route.stage,
            "domainPrefix": settings.host,
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": dict(identity),
            "domainName": f"{settings.host}:{settings.port}",
            "apiId": route.api_id,
        },
        "body": (body.decode("utf-8") if text else base64.b64encode(body).decode("ascii")) if body else None,
        "isBase64Encoded": bool(body) and not text,
    }


class BadGatewayError(Exception):
    pass


def http_response(result: Any) -> tuple[int, Headers, bytes]:
    """Status, headers and body of a Lambda proxy result (raises BadGatewayError when malformed)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        raise BadGatewayError(f"the handler returned {type(result).__name__}, not a proxy response")
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        raise BadGatewayError(f"invalid statusCode {result['statusCode']!r}") from None
    headers: Headers = []
    multi = result.get("multiValueHeaders") or {}
    for key, values in multi.items():
        headers += [(str(key), str(value)) for value in (values if isinstance(values, list) else [values])]
    seen = {key.lower() for key in multi}
    headers += [
        (str(key), str(value)) for key, value in (result.get("headers") or {}).items() if key.lower() not in seen
    ]
    body = result.get("body")
    if body is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    else:
        payload = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    return status, headers, payload


def _message(status: int, message: str, error_type: str | None = None) -> tuple[int, Headers, bytes]:
    headers: Headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return status, headers, json.dumps({"message": message}, separators=(",", ":")).encode()


class RequestGateway(abc.ABC):
    """What the HTTP server hands each request to: a front door (``Gateway``, ``local.http_api.HttpApiGateway``).

    ``handle`` times the dispatch, writes the request's console line and adds the request id header.
    """

    console_prefix = ""  # what the console line starts with, naming the front door

    def handle(
        self, method: str, target: str, headers: Headers, body: bytes, client_ip: str
    ) -> tuple[int, Headers, bytes]:
        started = time.monotonic()
        status, response_headers, payload, label = self._dispatch(method, target, headers, body, client_ip)
        elapsed = (time.monotonic() - started) * 1000
        log.info(
            "%s%s %s %d %.0f ms%s  %s",
            self.console_prefix,
            method,
            urlsplit(target).path,
            status,
            elapsed,
            event_count(payload),
            label,
            extra=tone(status),
        )
        return status, [*response_headers, self.request_id_header()], payload

    @abc.abstractmethod
    def _dispatch(
        self, method: str, target: str, headers: Headers, body: bytes, client_ip: str
    ) -> tuple[int, Headers, bytes, str]:
        """(status, headers, body, what the console line says about the outcome)."""

    def request_id_header(self) -> tuple[str, str]:
        return ("x-amzn-RequestId", str(uuid.uuid4()))


class Gateway(RequestGateway):
    """Turns one HTTP request into a handler invocation and its result into the HTTP response."""

    def __init__(self, router: Router, settings: Settings, limiter: Limiter | None = None) -> None:
        self.router = router
        self.settings = settings
        self.limiter = limiter or Limiter()

    def _dispatch(
        self, method: str, target: str, headers: Headers, body: bytes, client_ip: str
    ) -> tuple[int, Headers, bytes, str]:
        found = self.router.find(method, urlsplit(target).path)
        if found is None:
            return (*_message(403, "Missing Authentication Token", "MissingAuthenticationTokenException"), "no route")
        route, parameters = found
        identity = _blank_identity(client_ip, header_value(headers, "user-agent"))
        if not authorize(route, headers, self.settings, identity):
            return (*_message(403, "Forbidden", "ForbiddenException"), f"forbidden: needs the {route.auth} key")
        if route.usage_plan is not None:
            refusal = self.limiter.admit(route.usage_plan, route.api_id, str(identity["apiKeyId"]))
            if refusal is not None:
                return (*_message(429, refusal.message, refusal.error_type), f"refused: {refusal.message}")
        event = proxy_event(
            route,
            parameters,
            method=method,
            target=target,
            headers=headers,
            body=body,
            identity=identity,
            settings=self.settings,
        )
        try:
            return (*http_response(route.function.invoke(event)), route.function.logical_id)
        except Throttled as error:  # Lambda rejected the invocation: API Gateway answers 500, not 429
            log.warning("%s: throttled (%s)", route.function.logical_id, error)
            return (*_message(500, "Internal server error"), f"{route.function.logical_id} throttled")
        except (BadGatewayError, InvocationError) as error:
            log.error("%s: %s", route.function.logical_id, error)
        return (*_message(502, "Internal server error"), f"{route.function.logical_id} failed")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiHttpServer

    def _serve(self) -> None:
        headers: Headers = list(self.headers.items())
        try:
            body = self._read_body()
        except RequestTooLargeError:
            self.close_connection = True
            status, response_headers, payload = _message(413, "Request Too Long")
        except ValueError:
            self.close_connection = True
            status, response_headers, payload = _message(400, "Bad Request")
        else:
            with self.server.in_flight():
                status, response_headers, payload = self.server.gateway.handle(
                    self.command, self.path, headers, body, self.client_address[0]
                )
        self.send_response(status)
        for key, value in response_headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BYTES:
                    raise RequestTooLargeError
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            raise RequestTooLargeError
        return self.rfile.read(length) if length > 0 else b""

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY...) is routed too, as API Gateway does (no route: 403), not a 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged by the Gateway, one line each."""


class ApiHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once are queued, not reset (socketserver's default: 5)

    def __init__(self, gateway: RequestGateway, settings: Settings, port: int | None = None) -> None:
        self.gateway = gateway
        super().__init__((settings.host, settings.port if port is None else port), _RequestHandler)
        self._thread: threading.Thread | None = None
        self._requests = InFlight()

    def in_flight(self) -> contextlib.AbstractContextManager[None]:
        """One request under way (``stop`` lets them finish)."""
        return self._requests.call()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="api", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Accept no more requests; let the ones under way finish (up to ``timeout``)."""
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(5)
        if not self._requests.wait_until_none(timeout):
            log.warning("%d API requests still running at shutdown", self._requests.count)
