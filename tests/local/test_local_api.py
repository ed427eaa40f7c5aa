"""The local API Gateway stand-in: route matching, auth, proxy events and responses (no server, no moto)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, cast

import pytest

from local.api import (
    Auth,
    BadGatewayError,
    Gateway,
    Route,
    Router,
    authorize,
    http_response,
    proxy_event,
    routes_of,
)
from local.functions import LocalFunction
from local.settings import Settings
from local.template import Template, load_yaml
from local.workers import InvocationError, Throttled

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SETTINGS = Settings(
    port=3000,
    moto_port=5000,
    api_key="dev-key",
    admin_key="admin-key",
    template=FIXTURES / "template.yaml",
    stack_name="correlator",
    region="us-east-1",
)


class StubFunction:
    """Stands in for a LocalFunction: records events, answers with ``result`` (or raises it)."""

    def __init__(self, result: Any = None) -> None:
        self.logical_id = "Stub"
        self.result = result
        self.events: list[Any] = []

    def invoke(self, event: Any) -> Any:
        self.events.append(event)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def route(method: str, path: str, auth: Auth = Auth.NONE, function: Any = None) -> Route:
    return Route(method=method, path=path, function=cast("LocalFunction", function or StubFunction()), auth=auth)


ROUTER = Router(
    [
        route("POST", "/events"),
        route("GET", "/rules"),
        route("GET", "/rules/{name}"),
        route("DELETE", "/rules/{name}"),
        route("GET", "/rules/special"),
        route("ANY", "/files/{proxy+}"),
        route("GET", "/logs/archive/{name}"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "expected", "parameters"),
    [
        ("POST", "/events", "/events", {}),
        ("POST", "/events/", "/events", {}),
        ("GET", "/rules/special", "/rules/special", {}),
        ("GET", "/rules/other", "/rules/{name}", {"name": "other"}),
        ("DELETE", "/rules/a%20b", "/rules/{name}", {"name": "a b"}),
        ("PATCH", "/files/a/b/c.txt", "/files/{proxy+}", {"proxy": "a/b/c.txt"}),
        (
            "GET",
            "/logs/archive/default.log.1700000000000",
            "/logs/archive/{name}",
            {"name": "default.log.1700000000000"},
        ),
    ],
)
def test_a_request_finds_the_most_specific_route(
    method: str, path: str, expected: str, parameters: dict[str, str]
) -> None:
    # GIVEN routes with literal, {param} and {proxy+} segments
    # WHEN a request is routed
    found = ROUTER.find(method, path)

    # THEN the most specific resource wins and its parameters are decoded
    assert found is not None
    assert (found[0].path, found[1]) == (expected, parameters)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/events"),
        ("GET", "/nowhere"),
        ("GET", "/files"),
        ("GET", "/rules/a/b"),
        ("PUT", "/rules/x"),
        ("GET", "/"),
    ],
)
def test_an_unknown_path_or_method_finds_nothing(method: str, path: str) -> None:
    # GIVEN the routes
    # WHEN a request matches no resource, or a resource without that method
    # THEN no route is found (API Gateway: 403 Missing Authentication Token)
    assert ROUTER.find(method, path) is None


AUTH_TEMPLATE = """
Globals:
  Api:
    StageName: v1
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: dev
      Auth: {DefaultAuthorizer: AWS_IAM}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: handler.handle
      Events:
        Keyed:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /events, Method: post, Auth: {Authorizer: NONE, ApiKeyRequired: true}}
        Admin: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /rules, Method: get}}
        Open: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /health, Method: get, Auth: {Authorizer: NONE}}}
        Implicit: {Type: Api, Properties: {Path: /implicit, Method: any}}
"""


def test_routes_take_their_auth_from_the_event_and_its_api() -> None:
    # GIVEN an Api with DefaultAuthorizer AWS_IAM and events that override it or not
    template = Template(load_yaml(AUTH_TEMPLATE), root=FIXTURES, environ={})
    function = LocalFunction(template, "Fn")
    template.attributes.update({"Fn": function.attributes, "Api": {"Ref": "abc123"}})
    function.prepare()

    # WHEN the routes are read
    routes = {route.path: route for route in routes_of(template, [function])}

    # THEN API key, IAM and open routes are told apart, with the Api's stage (SAM's implicit API: Globals)
    assert {path: route.auth for path, route in routes.items()} == {
        "/events": Auth.API_KEY,
        "/rules": Auth.IAM,
        "/health": Auth.NONE,
        "/implicit": Auth.NONE,
    }
    assert (routes["/events"].method, routes["/events"].stage, routes["/events"].api_id) == ("POST", "dev", "abc123")
    assert (routes["/implicit"].method, routes["/implicit"].stage) == ("ANY", "v1")


@pytest.mark.parametrize(
    ("auth", "key", "allowed", "identity"),
    [
        (Auth.NONE, None, True, {"apiKey": None, "userArn": None}),
        (Auth.API_KEY, "dev-key", True, {"apiKey": "dev-key", "apiKeyId": "local-dev-key-id", "userArn": None}),
        (Auth.API_KEY, "admin-key", False, {}),
        (Auth.API_KEY, None, False, {}),
        (
            Auth.IAM,
            "admin-key",
            True,
            {
                "apiKey": None,
                "userArn": "arn:aws:iam::123456789012:user/local-admin",
                "caller": "arn:aws:iam::123456789012:user/local-admin",
            },
        ),
        (Auth.IAM, "dev-key", False, {}),
    ],
)
def test_keys_stand_in_for_api_keys_and_iam(
    auth: Auth, key: str | None, allowed: bool, identity: dict[str, Any]
) -> None:
    # GIVEN a route with an auth mode and a request with or without a key
    headers = [("X-Api-Key", key)] if key else []
    filled: dict[str, Any] = {"apiKey": None, "apiKeyId": None, "userArn": None, "caller": None}

    # WHEN it is authorized
    result = authorize(route("GET", "/x", auth), headers, SETTINGS, filled)

    # THEN only the right key passes, and the identity says who called
    assert result is allowed
    for name, value in identity.items():
        assert filled[name] == value


def test_a_proxy_event_has_api_gateway_rest_shape() -> None:
    # GIVEN a request with repeated query parameters and headers
    target = route("POST", "/rules/{name}")
    headers = [("Content-Type", "application/json"), ("X-Tag", "1"), ("X-Tag", "2")]

    # WHEN its proxy event is built
    event = proxy_event(
        target,
        {"name": "r1"},
        method="POST",
        target="/rules/r1?a=1&a=2",
        headers=headers,
        body=b'{"x": 1}',
        identity={"sourceIp": "127.0.0.1"},
        settings=SETTINGS,
    )

    # THEN it has every field a REST proxy event has
    assert event["resource"] == "/rules/{name}"
    assert (event["path"], event["httpMethod"]) == ("/rules/r1", "POST")
    assert event["headers"] == {"Content-Type": "application/json", "X-Tag": "2"}
    assert event["multiValueHeaders"]["X-Tag"] == ["1", "2"]
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["pathParameters"] == {"name": "r1"}
    assert event["stageVariables"] is None
    assert (event["body"], event["isBase64Encoded"]) == ('{"x": 1}', False)
    context = event["requestContext"]
    assert (context["path"], context["stage"], context["accountId"]) == ("/Prod/rules/r1", "Prod", "123456789012")
    assert context["identity"] == {"sourceIp": "127.0.0.1"}
    assert isinstance(context["requestTimeEpoch"], int)


def test_a_binary_body_is_base64_encoded() -> None:
    # GIVEN a body that is not UTF-8
    body = b"\xff\xfe\x00"

    # WHEN its proxy event is built
    event = proxy_event(
        route("POST", "/x"), {}, method="POST", target="/x", headers=[], body=body, identity={}, settings=SETTINGS
    )

    # THEN the body is base64 and flagged so
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body
    assert (event["queryStringParameters"], event["headers"], event["pathParameters"]) == (None, None, None)


def test_a_proxy_result_becomes_the_http_response() -> None:
    # GIVEN a handler result with single and multi-value headers and a base64 body
    result = {
        "statusCode": 302,
        "headers": {"Location": "http://x", "X-Multi": "ignored"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }

    # WHEN it is turned into an HTTP response
    status, headers, body = http_response(result)

    # THEN multi-value headers win over single ones and the body is decoded
    assert status == 302
    assert sorted(headers) == [("Location", "http://x"), ("X-Multi", "a"), ("X-Multi", "b")]
    assert body == b"\x00\x01"


@pytest.mark.parametrize("result", [None, "text", {"body": "no status"}, {"statusCode": "abc"}])
def test_a_malformed_proxy_result_is_a_bad_gateway(result: Any) -> None:
    # GIVEN a handler result that is not a proxy response
    # WHEN it is turned into an HTTP response
    # THEN it is refused
    with pytest.raises(BadGatewayError):
        http_response(result)


@pytest.mark.parametrize(
    ("function", "method", "path", "headers", "status", "message"),
    [
        (StubFunction(), "GET", "/nowhere", [], 403, "Missing Authentication Token"),
        (StubFunction(), "POST", "/events", [], 403, "Forbidden"),
        (StubFunction(), "POST", "/events", [("x-api-key", "admin-key")], 403, "Forbidden"),
        (
            StubFunction(InvocationError("Sandbox.Timedout", "Task timed out after 3.00 seconds")),
            "POST",
            "/events",
            [("x-api-key", "dev-key")],
            502,
            "Internal server error",
        ),
        (StubFunction({"nope": 1}), "POST", "/events", [("x-api-key", "dev-key")], 502, "Internal server error"),
        # Lambda throttles the function (reserved concurrency reached): API Gateway answers 500, not 429
        (StubFunction(Throttled()), "POST", "/events", [("x-api-key", "dev-key")], 500, "Internal server error"),
    ],
)
def test_the_gateway_answers_like_api_gateway_when_it_does_not_reach_a_handler_result(
    function: StubFunction, method: str, path: str, headers: list[tuple[str, str]], status: int, message: str
) -> None:
    # GIVEN a gateway with one API-key route
    gateway = Gateway(Router([route("POST", "/events", Auth.API_KEY, function)]), SETTINGS)

    # WHEN a request has no route, no or the wrong key, or the handler fails
    code, _headers, body = gateway.handle(method, path, headers, b"{}", "127.0.0.1")

    # THEN API Gateway's status and message come back
    assert (code, json.loads(body)) == (status, {"message": message})


def test_the_gateway_passes_the_handler_result_through() -> None:
    # GIVEN a route whose handler answers 201
    function = StubFunction({"statusCode": 201, "headers": {"Content-Type": "text/plain"}, "body": "made"})
    gateway = Gateway(Router([route("PUT", "/things/{id}", Auth.API_KEY, function)]), SETTINGS)

    # WHEN it is called with the key
    code, headers, body = gateway.handle("PUT", "/things/7?x=y", [("X-API-Key", "dev-key")], b"hi", "127.0.0.1")

    # THEN the handler saw the request and its answer is the response
    assert (code, body) == (201, b"made")
    assert ("Content-Type", "text/plain") in headers
    (event,) = function.events
    assert (event["pathParameters"], event["queryStringParameters"], event["body"]) == ({"id": "7"}, {"x": "y"}, "hi")
    assert event["requestContext"]["identity"]["apiKeyId"] == "local-dev-key-id"
