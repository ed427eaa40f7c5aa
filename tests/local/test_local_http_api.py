"""The local HTTP API front door: routes from the template, JWTs as API Gateway checks them, payload 2.0 (no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from local.api import Route
from local.functions import LocalFunction
from local.http_api import HttpApiGateway, HttpRoute, event_v2, http_response_v2, http_routes_of
from local.jwt_issuer import LocalIssuer, Unauthorized
from local.template import Template
from tests.local.test_local_api import SETTINGS, StubFunction

REPO_ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://issuer.example"
PARAMETERS = {"CORRELATOR_PARAM_HttpApiJwtIssuer": ISSUER, "CORRELATOR_PARAM_HttpApiJwtAudience": "a1,a2"}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer(tmp_path_factory.mktemp("issuer"), ISSUER)


def test_the_templates_http_api_becomes_a_jwt_route_to_the_reception() -> None:
    # GIVEN template.yaml with the HTTP API option on; WHEN its routes are read
    template = Template.load(REPO_ROOT / "template.yaml", PARAMETERS)
    functions = [LocalFunction(template, logical_id) for logical_id in ("ReceptionFunction", "RulesFunction")]
    for function in functions:
        template.attributes[function.logical_id] = function.attributes
    [route] = http_routes_of(template, functions)

    # THEN POST /events goes to the reception in the integration's payload format, under the issuer and stage throttle
    assert (route.route.method, route.route.path, route.route.function.logical_id) == (
        "POST",
        "/events",
        "ReceptionFunction",
    )
    assert (route.payload_version, route.issuer, route.audiences) == ("1.0", ISSUER, ("a1", "a2"))
    assert route.throttle is not None
    assert (route.throttle.rate, route.throttle.burst) == (100.0, 200)


def test_without_the_option_there_is_no_http_api() -> None:
    template = Template.load(REPO_ROOT / "template.yaml", {})
    function = LocalFunction(template, "ReceptionFunction")
    assert http_routes_of(template, [function]) == []


def test_a_token_is_checked_as_api_gateways_jwt_authorizer_does(issuer: LocalIssuer, tmp_path: Path) -> None:
    # aud wins; without aud, client_id is the audience; issuer and expiry are checked; only the issuer's key
    assert issuer.verify(issuer.mint("c", "a2"), ["a1", "a2"])["sub"] == "c"
    assert issuer.verify(issuer.mint("c", None, client_id="a1"), ["a1"])["client_id"] == "a1"
    refused = {
        "the token does not have a valid audience": issuer.mint("c", "other", client_id="a1"),
        "the token has expired": issuer.mint("c", "a1", ttl=-5),
        "the token does not have a valid issuer": LocalIssuer(issuer.path.parent, "https://other.example").mint(
            "c", "a1"
        ),
        "the token's signing key is not in the issuer's JWKS": LocalIssuer(tmp_path, ISSUER).mint("c", "a1"),
        "the token is not a valid JWT": "not-a-jwt",
    }
    for reason, token in refused.items():
        with pytest.raises(Unauthorized, match=reason):
            issuer.verify(token, ["a1"])
    # AND the key stays in the state directory: a restarted stack accepts tokens minted before
    again = LocalIssuer(issuer.path.parent, ISSUER)
    assert again.kid == issuer.kid
    assert again.verify(issuer.mint("c", "a1"), ["a1"])["sub"] == "c"


def gateway(issuer: LocalIssuer, function: StubFunction, version: str) -> HttpApiGateway:
    route = Route("POST", "/events", cast("LocalFunction", function), api_id="api", stage="$default")
    return HttpApiGateway([HttpRoute(route, version, ISSUER, ("a1",))], SETTINGS, issuer)


def test_a_payload_2_request_reaches_the_function_with_the_jwt_claims(issuer: LocalIssuer) -> None:
    # GIVEN a 2.0 route whose function answers with a plain JSON value
    function = StubFunction({"accepted": 1})
    token = issuer.mint("orders", "a1")

    # WHEN a request with a bearer token, a query and cookies comes
    status, _headers, body = gateway(issuer, function, "2.0").handle(
        "POST",
        "/events?a=1&a=2",
        [("Authorization", f"Bearer {token}"), ("Cookie", "x=1; y=2"), ("Content-Type", "application/json")],
        b'{"type": "t"}',
        "10.0.0.9",
    )

    # THEN the function gets API Gateway's 2.0 event, and a non-proxy result is 200 JSON
    [event] = function.events
    assert (event["version"], event["routeKey"], event["rawPath"], event["rawQueryString"]) == (
        "2.0",
        "POST /events",
        "/events",
        "a=1&a=2",
    )
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert event["cookies"] == ["x=1", "y=2"]
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.9"
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "orders"
    assert (event["body"], event["isBase64Encoded"], event["headers"]["content-type"]) == (
        '{"type": "t"}',
        False,
        "application/json",
    )
    assert (status, json.loads(body)) == (200, {"accepted": 1})


@pytest.mark.parametrize(
    ("function", "method", "path", "status", "message"),
    [
        (StubFunction({"statusCode": 200, "body": "{}"}), "GET", "/events", 404, "Not Found"),
        (StubFunction(RuntimeError()), "POST", "/events", 500, "Internal Server Error"),
        (StubFunction({"no": "statusCode"}), "POST", "/events", 500, "Internal Server Error"),
    ],
)
def test_the_http_api_answers_like_api_gateway_when_there_is_no_handler_result(
    issuer: LocalIssuer, function: StubFunction, method: str, path: str, status: int, message: str
) -> None:
    from local.workers import InvocationError

    if isinstance(function.result, RuntimeError):
        function.result = InvocationError("Runtime.ExitError", "crashed")
    headers = [("Authorization", f"Bearer {issuer.mint('c', 'a1')}")]
    code, _headers, body = gateway(issuer, function, "1.0").handle(method, path, headers, b"{}", "127.0.0.1")
    assert (code, json.loads(body)) == (status, {"message": message})


def test_a_payload_2_proxy_result_keeps_status_headers_and_cookies() -> None:
    result: dict[str, Any] = {"statusCode": 201, "headers": {"X-A": "1"}, "cookies": ["s=1"], "body": "made"}
    assert http_response_v2(result) == (201, [("X-A", "1"), ("Set-Cookie", "s=1")], b"made")


def test_the_jwks_is_served_for_the_local_issuers_key(issuer: LocalIssuer) -> None:
    status, _headers, body = gateway(issuer, StubFunction(), "2.0").handle(
        "GET", "/.well-known/jwks.json", [], b"", "127.0.0.1"
    )
    assert status == 200
    [key] = json.loads(body)["keys"]
    assert (key["kid"], key["alg"], key["kty"]) == (issuer.kid, "RS256", "RSA")
    assert "d" not in key  # the public half only


def test_event_v2_without_a_body_or_authorizer() -> None:
    route = HttpRoute(Route("GET", "/x", cast("LocalFunction", StubFunction())), "2.0", None)
    event = event_v2(
        route, {}, method="GET", target="/x", headers=[], body=b"", client_ip="1.2.3.4", claims=None, settings=SETTINGS
    )
    assert "body" not in event
    assert "authorizer" not in event["requestContext"]


def test_the_http_api_port_only_matters_when_the_template_has_an_http_api() -> None:
    from local.settings import Settings

    # the REST API may take 3001 (the HTTP API's default port) when the option is off
    settings = Settings.from_environ({"CORRELATOR_PORT": "3001", "CORRELATOR_MOTO_PORT": "5100"})
    assert (settings.port, settings.http_api_port) == (3001, 3001)
    assert Settings.from_environ({"CORRELATOR_HTTP_API_PORT": "3002"}).http_api_url == "http://127.0.0.1:3002"
