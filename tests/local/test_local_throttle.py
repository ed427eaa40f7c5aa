"""Usage plans on the local API: API Gateway's token bucket (rate, burst), quota and 429 answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from local.api import Auth, Gateway, Route, Router
from local.functions import LocalFunction
from local.throttle import Limiter, UsagePlan
from tests.local.test_local_api import SETTINGS, StubFunction

KEY = [("x-api-key", "dev-key")]
OK = {"statusCode": 200, "body": "{}"}


@dataclass
class Clock:
    seconds: float = 1000.0
    day: datetime = datetime(2026, 12, 1, 12, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.seconds

    def today(self) -> datetime:
        return self.day


def gateway(plan: UsagePlan, clock: Clock, function: StubFunction | None = None) -> Gateway:
    route = Route(
        method="POST",
        path="/events",
        function=cast("LocalFunction", function or StubFunction(OK)),
        auth=Auth.API_KEY,
        usage_plan=plan,
    )
    return Gateway(Router([route]), SETTINGS, Limiter(clock.monotonic, clock.today))


def statuses(gate: Gateway, count: int) -> list[int]:
    return [gate.handle("POST", "/events", KEY, b"{}", "127.0.0.1")[0] for _ in range(count)]


def test_a_burst_passes_then_requests_are_throttled_until_tokens_refill() -> None:
    # GIVEN a plan of 2 requests per second with a burst of 3
    clock = Clock()
    function = StubFunction(OK)
    gate = gateway(UsagePlan(rate=2, burst=3), clock, function)

    # WHEN 5 requests arrive at once, then 1 s later 3 more
    first = statuses(gate, 5)
    clock.seconds += 1
    second = statuses(gate, 3)

    # THEN the burst passes, the rest get 429, and the refill admits 2 per second; throttled requests reach no handler
    assert first == [200, 200, 200, 429, 429]
    assert second == [200, 200, 429]
    assert len(function.events) == 5


def test_a_throttled_request_is_answered_as_api_gateway_answers_it() -> None:
    # GIVEN a spent bucket
    gate = gateway(UsagePlan(rate=1, burst=1), Clock())
    statuses(gate, 1)

    # WHEN
    status, headers, body = gate.handle("POST", "/events", KEY, b"{}", "127.0.0.1")

    # THEN
    assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})
    assert ("x-amzn-ErrorType", "TooManyRequestsException") in headers
    assert ("Content-Type", "application/json") in headers
    assert any(name == "x-amzn-RequestId" for name, _ in headers)


def test_the_quota_refuses_requests_until_the_next_period() -> None:
    # GIVEN a daily quota of 3
    clock = Clock()
    gate = gateway(UsagePlan(rate=100, burst=100, quota=3, period="DAY"), clock)

    # WHEN 5 requests arrive, and then 2 more the next day
    today = statuses(gate, 5)
    status, headers, body = gate.handle("POST", "/events", KEY, b"{}", "127.0.0.1")
    clock.day += timedelta(days=1)
    tomorrow = statuses(gate, 2)

    # THEN 3 pass, then "Limit Exceeded" until the day changes
    assert today == [200, 200, 200, 429, 429]
    assert (status, json.loads(body)) == (429, {"message": "Limit Exceeded"})
    assert ("x-amzn-ErrorType", "LimitExceededException") in headers
    assert tomorrow == [200, 200]


def test_a_request_without_the_key_is_forbidden_before_any_throttle() -> None:
    gate = gateway(UsagePlan(rate=1, burst=1), Clock())
    assert [gate.handle("POST", "/events", [], b"{}", "127.0.0.1")[0] for _ in range(3)] == [403, 403, 403]
    assert statuses(gate, 1) == [200]


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            {
                "UsagePlan": {
                    "CreateUsagePlan": "PER_API",
                    "Throttle": {"RateLimit": 5, "BurstLimit": 10},
                    "Quota": {"Limit": 99, "Period": "WEEK"},
                }
            },
            UsagePlan(5.0, 10, 99, "WEEK"),
        ),
        (
            {"UsagePlan": {"CreateUsagePlan": "SHARED", "Throttle": {"RateLimit": 0.5}}},
            UsagePlan(0.5, None, None, "DAY"),
        ),
        ({"UsagePlan": {"CreateUsagePlan": "NONE", "Throttle": {"RateLimit": 5}}}, None),
        ({}, None),
    ],
)
def test_the_usage_plan_comes_from_sam_auth(auth: dict[str, object], expected: UsagePlan | None) -> None:
    assert UsagePlan.from_sam_auth(auth) == expected


def test_quota_counts_survive_a_restart_through_the_state_directory(tmp_path: object) -> None:
    from pathlib import Path

    from moto import mock_aws

    from local.state import StateStore
    from local.throttle import QUOTA_EXCEEDED

    # GIVEN a stack whose key used 2 of its 3 requests today, then saved its state and stopped
    directory = Path(str(tmp_path))
    plan = UsagePlan(quota=3, period="DAY")
    clock = Clock()
    with mock_aws():
        before = Limiter(clock.monotonic, clock.today)
        assert before.admit(plan, "api", "key") is None
        assert before.admit(plan, "api", "key") is None
        StateStore(directory, "same", 5.0, extras={"usage-plans": before}).save()

        # WHEN it starts again from the state directory, and when it starts --fresh
        after = Limiter(clock.monotonic, clock.today)
        restored = StateStore(directory, "same", 5.0, extras={"usage-plans": after}).restore()
        fresh = Limiter(clock.monotonic, clock.today)

        # THEN the restored stack has one request left today; a fresh one has the whole quota
        assert restored
        assert after.admit(plan, "api", "key") is None
        assert after.admit(plan, "api", "key") == QUOTA_EXCEEDED
        assert [fresh.admit(plan, "api", "key") for _ in range(3)] == [None, None, None]
        # AND the next day the restored count starts over
        clock.day += timedelta(days=1)
        assert after.admit(plan, "api", "key") is None
