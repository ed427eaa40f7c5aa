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

    # THEN the burst is accepted and the rest are throttled (a slow machine may refill one token meanwhile)
    statuses = [response.status for response in together]
    assert statuses.count(200) in (2, 3), statuses
    assert statuses.count(429) == 6 - statuses.count(200), statuses
    throttled = next(response for response in together if response.status == 429)
    assert json.loads(throttled.body) == {"message": "Too Many Requests"}
    assert throttled.headers["x-amzn-ErrorType"] == "TooManyRequestsException"

    # WHEN requests keep coming, each after the bucket refilled
    later: list[Response] = []
    while len(later) < 3 and (not later or later[-1].status == 200):
        time.sleep(1.2)
        later.append(post(limited))

    # THEN exactly 3 requests were accepted in all (the quota of the day), then "Limit Exceeded"
    assert statuses.count(200) + [response.status for response in later].count(200) == 3
    exceeded = later[-1]
    assert exceeded.status == 429
    assert json.loads(exceeded.body) == {"message": "Limit Exceeded"}
    assert exceeded.headers["x-amzn-ErrorType"] == "LimitExceededException"
