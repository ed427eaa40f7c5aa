"""POST /__event on moto: Personium's event reception, its headers and errors, onto the same bus."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from tests.conftest import BucketFor, fresh_import
from tests.probe import BusProbe
from tests.samples import load_event, with_headers

PERSONIUM_MODULE = "functions.personium.app"
API_KEY_ID = "k7ab2cd9ef"
GENERATED_KEY = re.compile(r"^[A-Za-z0-9_-]{4}_[A-Za-z0-9_-]{18}$")


@dataclass
class HttpResponse:
    status: int
    text: str
    headers: dict[str, str]

    @property
    def body(self) -> Any:
        return json.loads(self.text)


Send = Callable[..., HttpResponse]


@pytest.fixture
def personium(s3_bucket: BucketFor) -> ModuleType:
    # The function also serves /__log, so it names the log bucket at import, as on Lambda.
    s3_bucket("correlator-test-log", env="LOG_BUCKET_NAME")
    return fresh_import(PERSONIUM_MODULE)


@pytest.fixture
def send(personium: ModuleType, lambda_context: LambdaContext, bus_probe: BusProbe) -> Send:
    """Send the sample ``POST /__event`` with another body, method or headers (``_`` for ``-`` in names)."""

    def invoke(body: Any = None, *, method: str = "POST", **headers: str | None) -> HttpResponse:
        request = load_event("apigw/personium-post-event")
        request["httpMethod"] = request["requestContext"]["httpMethod"] = method
        if body is not None:
            request["body"] = body if isinstance(body, str) else json.dumps(body)
        response = personium.lambda_handler(with_headers(request, **headers), lambda_context)
        answered = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
        answered.update(response.get("headers") or {})
        return HttpResponse(response["statusCode"], response.get("body") or "", answered)

    return invoke


def assert_personium_error(response: HttpResponse, status: int, code: str, message: str) -> None:
    assert response.status == status, response.text
    assert response.body == {"code": code, "message": {"lang": "en", "value": message}}


# ---- accepted ----


def test_an_event_is_accepted_with_an_empty_200_and_published_as_external(send: Send, bus_probe: BusProbe) -> None:
    # WHEN the sample of Personium's reference is posted (X-Personium-RequestKey: testRequestKey)
    response = send()

    # THEN 200, empty body, Personium's headers
    assert response.status == 200, response.text
    assert response.text == ""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Personium-Version"] == "1.8.3"
    # AND the event is on the bus as POST /events would put it
    [delivered] = bus_probe.drain()
    assert delivered["source"] == "correlator.external"
    assert delivered["detail-type"] == "authSchema"
    detail = delivered["detail"]
    assert detail["id"] == response.headers["X-Personium-EventId"]
    assert {key: value for key, value in detail.items() if key not in ("id", "time")} == {
        "type": "authSchema",
        "object": "https://cell1.unit1.example/box1/service_name/token_keeper",
        "info": "[XXXX2033] Success schema authorization.",
        "level": "INFO",
        "kind": "standard",
        "external": True,
        "subject": API_KEY_ID,
        "request_key": "testRequestKey",
        "hops": 0,
    }


def test_unknown_keys_are_ignored_and_object_and_info_are_optional(send: Send, bus_probe: BusProbe) -> None:
    # WHEN only Type is given, with keys Personium does not know (and ignores)
    response = send({"Type": "TypeData", "level": "ERROR", "colour": "red", "Object": None})

    # THEN it is accepted; the unknown keys are dropped
    assert response.status == 200, response.text
    [delivered] = bus_probe.drain()
    assert delivered["detail"]["type"] == "TypeData"
    assert "object" not in delivered["detail"]
    assert "info" not in delivered["detail"]
    assert delivered["detail"]["level"] == "INFO"


@pytest.mark.parametrize("request_key", ["", "abcdefghij12345_-xyz", "a" * 128])
def test_valid_request_keys_are_kept_even_empty(send: Send, bus_probe: BusProbe, request_key: str) -> None:
    # personium-core EventTest: an empty key and "abcdefghij12345_-xyz" are accepted
    response = send(X_Personium_RequestKey=request_key)
    assert response.status == 200, response.text
    assert bus_probe.drain()[0]["detail"]["request_key"] == request_key


def test_without_a_request_key_one_is_generated(send: Send, bus_probe: BusProbe) -> None:
    response = send(X_Personium_RequestKey=None)
    assert response.status == 200, response.text
    assert GENERATED_KEY.fullmatch(bus_probe.drain()[0]["detail"]["request_key"])


def test_rule_chain_and_via_are_carried(send: Send, bus_probe: BusProbe) -> None:
    # WHEN a relayed Personium event arrives with its chain headers
    response = send(
        X_Personium_RuleChain="2",
        X_Personium_Via="https://cell1.unit1.example/,https://cell2.unit1.example/",
        X_Personium_EventId="AbCdEfGhIjKlMnOpQrStUv",
    )

    # THEN hops and via are the chain's; the event id stays the server's (see the compatibility page)
    assert response.status == 200, response.text
    detail = bus_probe.drain()[0]["detail"]
    assert detail["hops"] == 2
    assert detail["via"] == ["https://cell1.unit1.example/", "https://cell2.unit1.example/"]
    assert detail["id"] != "AbCdEfGhIjKlMnOpQrStUv"


def test_a_rule_chain_that_is_not_a_number_lets_no_rule_fire(send: Send, bus_probe: BusProbe) -> None:
    # Personium evaluates no rule for a non-numeric RuleChain; a depth beyond every MaxHops does the same
    response = send(X_Personium_RuleChain="abc")
    assert response.status == 200, response.text
    assert bus_probe.drain()[0]["detail"]["hops"] == 999_999


def test_method_override_is_honoured(send: Send) -> None:
    # Personium's X-HTTP-Method-Override: POST carrying PROPFIND is a PROPFIND
    response = send(X_HTTP_Method_Override="PROPFIND")
    assert_personium_error(response, 501, "PR501-MC-0001", "Method not implemented.")


# ---- refused: Personium's codes, nothing published ----


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ("{Type: x", "PR400-CM-0004", "JSON parse error. [request body is not valid JSON]."),
        ("", "PR400-CM-0004", "JSON parse error. [request body must be a JSON object]."),
        ("[]", "PR400-CM-0004", "JSON parse error. [request body must be a JSON object]."),
        ('"Type"', "PR400-CM-0004", "JSON parse error. [request body must be a JSON object]."),
        ({"Type": 1}, "PR400-EV-0004", "[Type] field format error."),
        ({"Type": "a", "Object": {"x": 1}}, "PR400-EV-0004", "[Object] field format error."),
        ({"Type": "a", "Info": ["x"]}, "PR400-EV-0004", "[Info] field format error."),
        ({"Type": "a", "Info": True}, "PR400-EV-0004", "[Info] field format error."),
        ({"Type": "a", "Object": "x" * 51_201}, "PR400-EV-0004", "[Object] field format error."),
        ({"Type": "a", "Info": "x" * 51_201}, "PR400-EV-0004", "[Info] field format error."),
        # Correlator's type rules (the EventBridge detail type and what rules match): mapped
        ({"Object": "o"}, "PR400-EV-0003", "[Type] is required."),
        ({"Type": None}, "PR400-EV-0003", "[Type] is required."),
        ({"Type": '"POST,'}, "PR400-EV-0004", "[Type] field format error."),
        ({"Type": ""}, "PR400-EV-0004", "[Type] field format error."),
        ({"Type": "a" * 129}, "PR400-EV-0004", "[Type] field format error."),
    ],
)
def test_bad_bodies_get_personiums_error(send: Send, bus_probe: BusProbe, body: Any, code: str, message: str) -> None:
    response = send(body)
    assert_personium_error(response, 400, code, message)
    assert bus_probe.drain() == []


def test_the_longest_fields_personium_allows_are_accepted(send: Send, bus_probe: BusProbe) -> None:
    response = send({"Type": "a", "Object": "o" * 51_200, "Info": "i" * 51_200})
    assert response.status == 200, response.text
    assert len(bus_probe.drain()[0]["detail"]["object"]) == 51_200


@pytest.mark.parametrize("request_key", ["abc#123", "a" * 129, "has space"])
def test_a_bad_request_key_is_pr400_ev_0002(send: Send, bus_probe: BusProbe, request_key: str) -> None:
    # personium-core EventTest: "abc#123" → 400 PR400-EV-0002, checked before the body
    response = send("", X_Personium_RequestKey=request_key)
    assert_personium_error(response, 400, "PR400-EV-0002", "Request header is invalid [X-Personium-RequestKey].")
    assert bus_probe.drain() == []


def test_a_bad_via_is_refused_in_personiums_shape(send: Send, bus_probe: BusProbe) -> None:
    response = send(X_Personium_Via="javascript:alert(1)")
    assert response.status == 400
    assert response.body["message"] == {"lang": "en", "value": "Request header is invalid [X-Personium-Via]."}
    assert bus_probe.drain() == []


def test_a_body_that_is_not_json_media_type_is_415(send: Send, bus_probe: BusProbe) -> None:
    response = send(Content_Type="text/plain")
    assert_personium_error(response, 415, "PR415-MC-0001", "Unsupported media type.")
    assert bus_probe.drain() == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405(send: Send, bus_probe: BusProbe, method: str) -> None:
    # personium-core EventTest: GET, DELETE and PUT on __event → 405
    response = send("", method=method)
    assert_personium_error(response, 405, "PR405-MC-0001", "Method not allowed.")
    assert bus_probe.drain() == []


@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH"])
def test_log_settings_methods_are_501(send: Send, method: str) -> None:
    # personium-core EventTest: PROPFIND and PROPPATCH on __event → 501
    response = send("", method=method)
    assert_personium_error(response, 501, "PR501-MC-0001", "Method not implemented.")


def test_a_failed_publish_is_503_and_says_so(
    send: Send, personium: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the bus refuses the entry
    def refuse(envelopes: Any) -> Any:
        from correlator.publisher import PublishOutcome

        return [PublishOutcome(event_id=envelopes[0].event_id, status="failed", error_code="InternalFailure")]

    monkeypatch.setattr(personium.publisher, "publish_envelopes", refuse)

    # WHEN / THEN
    assert_personium_error(send(), 503, "PR503-SV-0002", "Server connection error.")
