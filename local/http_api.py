"""The template's HTTP API (``AWS::ApiGatewayV2``) served like API Gateway's HTTP API, JWT authorizer included.

``make run`` serves it on its own port (``CORRELATOR_HTTP_API_PORT``, 3001) when the template has
one — for Correlator, when ``CORRELATOR_PARAM_HttpApiJwtIssuer`` is set — next to the REST API,
which stays as it is. Each ``AWS::ApiGatewayV2::Route`` with a Lambda proxy integration is a route
(``RouteKey`` ``METHOD /path``, ``$default``); the function gets the integration's
``PayloadFormatVersion`` (1.0 or 2.0) event; a JWT route takes ``Authorization: Bearer <token>``
checked against the local issuer (``local.jwt_issuer``, whose JWKS this server publishes at
``/.well-known/jwks.json``); the stage's ``DefaultRouteSettings`` throttle applies per route.
API Gateway's own answers are kept: 401 ``Unauthorized`` (with ``www-authenticate``), 404
``Not Found``, 429 ``Too Many Requests``, 500 ``Internal Server Error`` when the function fails
or is throttled.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.api import (
    BadGatewayError,
    Headers,
    RequestGateway,
    Route,
    Router,
    header_value,
    http_response,
    is_utf8,
    proxy_event,
)
from local.functions import LocalFunction
from local.jwt_issuer import LocalIssuer, Unauthorized
from local.settings import Settings
from local.template import Template, as_text
from local.throttle import Limiter, UsagePlan
from local.workers import InvocationError

log = logging.getLogger("local.http_api")

JWKS_PATH = "/.well-known/jwks.json"
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)\}")


@dataclass(frozen=True, slots=True)
class HttpRoute:
    route: Route  # method, path, function, api id, stage "$default"
    payload_version: str  # "1.0" or "2.0"
    issuer: str | None  # a JWT route: the authorizer's issuer
    audiences: tuple[str, ...] = ()
    throttle: UsagePlan | None = None


def _logical_id(node: Any) -> str | None:
    """The logical id a ``!Ref X``, ``!GetAtt X.Arn`` or ``!Sub ...${X}`` points at."""
    if isinstance(node, dict):
        if "Ref" in node:
            return str(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Fn::Sub" in node:
            text = node["Fn::Sub"]
            found = _REFERENCE.search(text if isinstance(text, str) else str(text[0]))
            return found.group(1) if found else None
    return None


def http_routes_of(template: Template, functions: Iterable[LocalFunction]) -> list[HttpRoute]:
    """The template's HTTP API routes with a Lambda proxy integration to one of ``functions``."""
    by_id = {function.logical_id: function for function in functions}
    stages = {
        _logical_id(template.properties(stage).get("ApiId")): template.resolved_property(
            stage, "DefaultRouteSettings", {}
        )
        for stage in template.of_type("AWS::ApiGatewayV2::Stage")
    }
    routes = []
    for route_id in template.of_type("AWS::ApiGatewayV2::Route"):
        raw = template.properties(route_id)
        integration = _logical_id(raw.get("Target"))
        if integration is None or integration not in template.resources:
            continue
        function = by_id.get(_logical_id(template.properties(integration).get("IntegrationUri")) or "")
        if function is None:
            log.warning("HTTP API route %s: its integration is not a function of the template", route_id)
            continue
        method, _, path = as_text(template.resolve(raw["RouteKey"])).partition(" ")
        api = _logical_id(raw.get("ApiId")) or "http-api"
        issuer: str | None = None
        audiences: tuple[str, ...] = ()
        if str(template.resolve(raw.get("AuthorizationType", "NONE"))) == "JWT":
            authorizer = _logical_id(raw.get("AuthorizerId")) or ""
            configuration = template.resolved_property(authorizer, "JwtConfiguration", {})
            issuer = as_text(configuration.get("Issuer", ""))
            audiences = tuple(str(item) for item in configuration.get("Audience") or [] if str(item))
        settings = stages.get(api) or {}
        rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
        throttle = (
            UsagePlan(float(rate) if rate is not None else None, int(burst) if burst is not None else None)
            if rate is not None or burst is not None
            else None
        )
        version = str(template.resolved_property(integration, "PayloadFormatVersion", "2.0"))
        routes.append(
            HttpRoute(
                Route(method=method.upper(), path=path, function=function, api_id=api, stage="$default"),
                version,
                issuer,
                audiences,
                throttle,
            )
        )
    return routes


def _message(status: int, message: str, extra: Iterable[tuple[str, str]] = ()) -> tuple[int, Headers, bytes]:
    headers: Headers = [("Content-Type", "application/json"), *extra]
    return status, headers, json.dumps({"message": message}, separators=(",", ":")).encode()


def _bearer(headers: Headers) -> str | None:
    value = header_value(headers, "authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else (value.strip() or None)


def _string_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them to the function: every value as text."""
    return {
        key: value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        for key, value in claims.items()
    }


def event_v2(
    http_route: HttpRoute,
    parameters: Mapping[str, str],
    *,
    method: str,
    target: str,
    headers: Headers,
    body: bytes,
    client_ip: str,
    claims: Mapping[str, Any] | None,
    settings: Settings,
) -> dict[str, Any]:
    """The HTTP API payload format 2.0 event of a request."""
    url = urlsplit(target)
    joined: dict[str, list[str]] = {}
    for key, value in headers:
        joined.setdefault(key.lower(), []).append(value)
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    cookies = [part.strip() for value in joined.pop("cookie", []) for part in value.split(";") if part.strip()]
    text = is_utf8(body)
    now = datetime.now(UTC)
    route = http_route.route
    context: dict[str, Any] = {
        "accountId": settings.account_id,
        "apiId": route.api_id,
        "domainName": f"{settings.host}:{settings.http_api_port}",
        "domainPrefix": settings.host,
        "http": {
            "method": method,
            "path": unquote(url.path) or "/",
            "protocol": "HTTP/1.1",
            "sourceIp": client_ip,
            "userAgent": header_value(headers, "user-agent") or "",
        },
        "requestId": uuid.uuid4().hex[:16],
        "routeKey": f"{route.method} {route.path}",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": _string_claims(claims), "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{route.method} {route.path}",
        "rawPath": url.path or "/",
        "rawQueryString": url.query,
        "headers": {key: ",".join(values) for key, values in joined.items()},
        "requestContext": context,
        "isBase64Encoded": bool(body) and not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in query.items()}
    if parameters:
        event["pathParameters"] = dict(parameters)
    if body:
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode("ascii")
    return event


def event_v1(
    http_route: HttpRoute,
    parameters: Mapping[str, str],
    *,
    method: str,
    target: str,
    headers: Headers,
    body: bytes,
    client_ip: str,
    claims: Mapping[str, Any] | None,
    settings: Settings,
) -> dict[str, Any]:
    """The HTTP API payload format 1.0 event: the REST proxy shape, with ``version`` and the JWT's claims."""
    identity: dict[str, Any] = {"sourceIp": client_ip, "userAgent": header_value(headers, "user-agent")}
    event = proxy_event(
        http_route.route,
        parameters,
        method=method,
        target=target,
        headers=headers,
        body=body,
        identity=identity,
        settings=settings,
    )
    event["version"] = "1.0"
    event["requestContext"]["path"] = event["path"]
    event["requestContext"]["domainName"] = f"{settings.host}:{settings.http_api_port}"
    if claims is not None:
        event["requestContext"]["authorizer"] = {"claims": _string_claims(claims), "scopes": None}
    return event


def http_response_v2(result: Any) -> tuple[int, Headers, bytes]:
    """Status, headers and body of a 2.0 result: a proxy response, or any JSON value (200, as JSON)."""
    if isinstance(result, dict) and "statusCode" in result:
        status, headers, payload = http_response(result)
        headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
        return status, headers, payload
    if isinstance(result, str):
        return 200, [("Content-Type", "application/json")], result.encode("utf-8")
    return 200, [("Content-Type", "application/json")], json.dumps(result).encode("utf-8")


class HttpApiGateway(RequestGateway):
    """Turns one request to the HTTP API into an invocation, as API Gateway's HTTP API does."""

    console_prefix = "HTTP API "

    def __init__(
        self, routes: list[HttpRoute], settings: Settings, issuer: LocalIssuer, limiter: Limiter | None = None
    ) -> None:
        self.routes = {(route.route.method, route.route.path): route for route in routes}
        self.router = Router(route.route for route in routes)
        self.settings = settings
        self.issuer = issuer
        self.limiter = limiter or Limiter()

    def request_id_header(self) -> tuple[str, str]:
        return ("apigw-requestid", uuid.uuid4().hex[:16])

    def _dispatch(
        self, method: str, target: str, headers: Headers, body: bytes, client_ip: str
    ) -> tuple[int, Headers, bytes, str]:
        if method == "GET" and urlsplit(target).path == JWKS_PATH:
            return 200, [("Content-Type", "application/json")], json.dumps(self.issuer.jwks()).encode(), "JWKS"
        found = self.router.find(method, urlsplit(target).path)
        if found is None:
            return (*_message(404, "Not Found"), "no route")
        route, parameters = found
        http_route = self.routes[(route.method, route.path)]
        claims = None
        if http_route.issuer is not None:
            token = _bearer(headers)
            try:
                if token is None:
                    raise Unauthorized("the token is missing")
                claims = self.issuer.verify(token, http_route.audiences)
            except Unauthorized as error:
                challenge = f'Bearer scope="" error="invalid_token" error_description="{error}"'
                return (*_message(401, "Unauthorized", [("www-authenticate", challenge)]), f"unauthorized: {error}")
        if http_route.throttle is not None:
            refusal = self.limiter.admit(http_route.throttle, route.api_id, f"{route.method} {route.path}")
            if refusal is not None:
                return (*_message(429, "Too Many Requests"), "throttled (route)")
        build = event_v2 if http_route.payload_version == "2.0" else event_v1
        event = build(
            http_route,
            parameters,
            method=method,
            target=target,
            headers=headers,
            body=body,
            client_ip=client_ip,
            claims=claims,
            settings=self.settings,
        )
        function = route.function
        try:
            result = function.invoke(event)
            answer = http_response_v2(result) if http_route.payload_version == "2.0" else http_response(result)
            return (*answer, function.logical_id)
        except (BadGatewayError, InvocationError) as error:  # HTTP APIs answer 500 for both, throttling too
            log.error("%s: %s", function.logical_id, error)
        return (*_message(500, "Internal Server Error"), f"{function.logical_id} failed")


def http_api_banner(settings: Settings, routes: list[HttpRoute], issuer: LocalIssuer) -> list[str]:
    """The start-up lines about the HTTP API: its routes, the local issuer and how to call it."""
    lines = [f"{settings.http_api_url}   (the HttpApiUrl output on AWS)"]
    for http_route in routes:
        route = http_route.route
        auth = "jwt" if http_route.issuer else "none"
        target = f"{route.function.logical_id} (payload {http_route.payload_version})"
        lines.append(f"{route.method:<7}{route.path}  {auth} -> {target}")
    audience = next((item for http_route in routes for item in http_route.audiences), None)
    token = issuer.mint("local-client", audience, ttl=86_400)
    lines += [
        f"JWTs: the stack stands in for {issuer.issuer} (its key in the state directory, JWKS at {JWKS_PATH});",
        "  mint one: .venv/bin/python -m local.jwt_issuer --sub <client>  (sub = the events' subject)",
        f"  TOKEN={token}",
        f'  curl -s {settings.http_api_url}/events -H "Authorization: Bearer $TOKEN" '
        '-H \'Content-Type: application/json\' -d \'{"type": "order.created", "object": "A-1"}\'',
    ]
    return lines
