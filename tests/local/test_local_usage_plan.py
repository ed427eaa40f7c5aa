"""The running stack enforces the template's usage plan on POST /events with API Gateway's 429 answers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.local.conftest import LocalStack, Response, start_stack, stop_stack

pytestmark = pytest.mark.slow

HEADERS = {"content-type": "application/json", "x-api-key": "local-dev-key"}


@pytest.fixture(scope="module")
def limited() -> Iterator[LocalStack]:
    """A stack whose usage plan allows 1 request per second, bursts of 2, and 3 requests a day."""
    running = start_stack(
        {
            "CORRELATOR_PARAM_ApiRateLimit": "1",
            "CORRELATOR_PARAM_ApiBurstLimit": "2",
            "CORRELATOR_PARAM_ApiQuotaPerDay": "3",
        }
    )
    yield running
    stop_stack(running)


def post(stack: LocalStack) -> Response:
    return stack.request("POST", "/events", json.dumps({"type": "order.created"}), HEADERS)


def test_throttle_then_quota_answer_429_like_api_gateway(limited: LocalStack) -> None:
    # GIVEN a fresh key under the plan
    # WHEN 6 requests arrive together
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda _: post(limited), range(6)))

    # THEN the burst of 2 is accepted and the rest are throttled
    assert sorted(response.status for response in together) == [200, 200, 429, 429, 429, 429]
    throttled = next(response for response in together if response.status == 429)
    assert json.loads(throttled.body) == {"message": "Too Many Requests"}
    assert throttled.headers["x-amzn-ErrorType"] == "TooManyRequestsException"

    # WHEN a request comes after the bucket refilled, and another one after that
    time.sleep(1.2)
    third = post(limited)
    time.sleep(1.2)
    fourth = post(limited)

    # THEN the third is accepted, and the fourth is over the quota of 3 a day
    assert third.status == 200, third.body
    assert fourth.status == 429
    assert json.loads(fourth.body) == {"message": "Limit Exceeded"}
    assert fourth.headers["x-amzn-ErrorType"] == "LimitExceededException"
