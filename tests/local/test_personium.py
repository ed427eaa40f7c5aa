"""Personium's APIs on the local stack, over HTTP, as a Personium client calls them."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.local.conftest import LocalStack, wait_for

pytestmark = pytest.mark.slow

DEV_KEY = {"x-api-key": "local-dev-key"}
ADMIN_KEY = {"x-api-key": "local-admin-key"}
JSON = {"content-type": "application/json"}
BATCH_WAIT_SECONDS = 30


def current_log_lines(stack: LocalStack, needle: str, count: int = 1) -> list[str]:
    def lines() -> list[str]:
        response = stack.request("GET", "/logs/current/default.log", headers=ADMIN_KEY)
        found = [line for line in response.body.decode("utf-8").splitlines() if needle in line]
        return found if len(found) >= count else []

    found: list[str] = wait_for(lines, BATCH_WAIT_SECONDS, f"no log line with {needle}:\n{stack.logs()[-3000:]}")
    return found


# ---- /__event ----


def test_an_event_posted_to___event_reaches_the_log(stack: LocalStack) -> None:
    # GIVEN Personium's escaping case of EventTest, with a type Correlator accepts
    request_key = f"testRequestKey{uuid.uuid4().hex[:8]}"
    body = {"Type": "POST.test", "Object": 'Object""Data', "Info": 'resultData"'}

    # WHEN posted to /__event with Personium's request-key header and the API key of POST /events
    response = stack.request(
        "POST", "/__event", json.dumps(body), {**JSON, **DEV_KEY, "X-Personium-RequestKey": request_key}
    )

    # THEN 200 with an empty body and Personium's headers
    assert response.status == 200, response.body
    assert response.body == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Personium-Version"] == "1.8.3"
    # AND the log-everything rule writes Personium's line for it
    [line] = current_log_lines(stack, f'"{request_key}"')
    assert line.endswith(
        f'"{request_key}","true",null,"local-dev-key-id","POST.test","Object""""Data","resultData"""'
    ), line


def test___event_needs_the_api_key(stack: LocalStack) -> None:
    response = stack.request("POST", "/__event", json.dumps({"Type": "a"}), JSON)
    assert response.status == 403


@pytest.mark.parametrize(
    ("method", "headers", "body", "status", "code"),
    [
        ("POST", {"X-Personium-RequestKey": "abc#123"}, "", 400, "PR400-EV-0002"),
        ("POST", {}, "{", 400, "PR400-CM-0004"),
        ("POST", {}, '{"Type": 1}', 400, "PR400-EV-0004"),
        ("GET", {}, None, 405, "PR405-MC-0001"),
        ("PUT", {}, None, 405, "PR405-MC-0001"),
        ("DELETE", {}, None, 405, "PR405-MC-0001"),
        ("PROPFIND", {}, None, 501, "PR501-MC-0001"),
        ("PROPPATCH", {}, None, 501, "PR501-MC-0001"),
    ],
)
def test___event_answers_personiums_errors(
    stack: LocalStack, method: str, headers: dict[str, str], body: str | None, status: int, code: str
) -> None:
    response = stack.request(method, "/__event", body, {**JSON, **DEV_KEY, **headers})
    assert response.status == status, response.body
    answer = response.json()
    assert answer["code"] == code
    assert answer["message"]["lang"] == "en"
