"""Delivery policy decisions on moto's DynamoDB: exact counts, redelivery, races, groups and their flushes."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from correlator.policies import DeliveryPolicy
from correlator.policy_state import Clock, PolicyState
from tests.integration.policy_pipeline import create_policy_table
from tests.probe import REGION

TABLE = "correlator-test-policy"
RULE = "page-on-call"
# 2026-11-23 is a Monday; 10:00 UTC.
MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()


@dataclass
class FakeClock(Clock):
    at: float = MONDAY_10_UTC
    slept: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.now = lambda: self.at
        self.sleep = self.slept.append


@dataclass
class Flushes:
    """What the state sent to the flush queue: (message, delay)."""

    sent: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, message: dict[str, Any], delay: int) -> None:
        with self.lock:
            self.sent.append((message, delay))


@dataclass
class Stack:
    state: PolicyState
    clock: FakeClock
    flushes: Flushes

    def decide(self, policy: dict[str, Any], number: int, **fields: Any) -> str:
        detail = {"id": f"evt-{number}", "type": "order.failed", "object": "orders/1", "level": "ERROR", **fields}
        return self.state.decide(RULE, DeliveryPolicy.model_validate(policy), detail).outcome


@pytest.fixture
def stack(aws: None) -> Stack:
    create_policy_table(TABLE)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    clock, flushes = FakeClock(), Flushes()
    return Stack(PolicyState(dynamodb, TABLE, flushes, clock), clock, flushes)


THROTTLE_5_PER_MINUTE = {"throttle": {"limit": 5, "window": "1m"}}


# ---- throttle ----


def test_a_throttle_lets_n_per_window_through_and_drops_the_rest(stack: Stack) -> None:
    # GIVEN / WHEN 12 events in one minute, then one in the next
    outcomes = [stack.decide(THROTTLE_5_PER_MINUTE, n) for n in range(12)]
    stack.clock.at += 60
    later = stack.decide(THROTTLE_5_PER_MINUTE, 12)

    # THEN
    assert outcomes == ["deliver"] * 5 + ["throttled"] * 7
    assert later == "deliver"


def test_a_throttle_key_counts_per_value(stack: Stack) -> None:
    policy = {"throttle": {"limit": 1, "window": "10m", "key": ["system_id"]}}
    outcomes = [stack.decide(policy, n, system_id=f"svc-{n % 3}") for n in range(6)]
    assert outcomes == ["deliver"] * 3 + ["throttled"] * 3


def test_a_redelivered_event_gets_its_decision_back_and_is_never_counted_twice(stack: Stack) -> None:
    # GIVEN 5 deliveries (the limit) decided
    assert [stack.decide(THROTTLE_5_PER_MINUTE, n) for n in range(5)] == ["deliver"] * 5

    # WHEN each is redelivered, twice
    replays = [stack.decide(THROTTLE_5_PER_MINUTE, n) for n in range(5) for _ in range(2)]

    # THEN the same decision, and the counter still says 5: the next new event is throttled
    assert replays == ["deliver"] * 10
    assert stack.decide(THROTTLE_5_PER_MINUTE, 5) == "throttled"
    assert stack.decide(THROTTLE_5_PER_MINUTE, 5) == "throttled"  # a throttled redelivery stays throttled


def test_racing_invocations_never_exceed_the_limit(stack: Stack) -> None:
    # GIVEN 8 threads deciding 40 distinct events against one throttle of 5
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(start: int) -> None:
        for n in range(start, 40, 8):
            outcome = stack.decide(THROTTLE_5_PER_MINUTE, n)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(start,)) for start in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN exactly 5 went through
    assert Counter(outcomes) == {"deliver": 5, "throttled": 35}


# ---- dedup ----


def test_dedup_suppresses_the_same_key_within_the_window(stack: Stack) -> None:
    policy = {"dedup": {"window": "5m"}}
    first = [stack.decide(policy, 1), stack.decide(policy, 2), stack.decide(policy, 3, object="orders/2")]
    stack.clock.at += 301
    assert first == ["deliver", "deduplicated", "deliver"]
    assert stack.decide(policy, 4) == "deliver"


# ---- group ----


def test_a_group_collects_events_and_one_flush_per_generation_returns_them_all(stack: Stack) -> None:
    # GIVEN a group per object, 30 s wait
    policy = {"group": {"group_by": ["object"], "group_wait": "30s", "group_interval": "5m", "limit": 3}}
    outcomes = [stack.decide(policy, n, object=f"orders/{n % 2}") for n in range(7)]

    # THEN every event is grouped and each group asked for one flush, 30 s later
    assert outcomes == ["grouped"] * 7
    assert [delay for _, delay in stack.flushes.sent] == [30, 30]

    # WHEN the flush message arrives early, it is sent again for the rest of the wait
    early = stack.flushes.sent[0][0]
    stack.clock.at += 10
    assert stack.state.flush(early) is None
    assert stack.flushes.sent[-1] == (early, 20)

    # WHEN it is due
    stack.clock.at += 20
    digest = stack.state.flush(early)

    # THEN the digest: the group's labels, count, first/last time, and its first 3 events listed
    assert digest is not None
    assert digest["labels"] == {"object": "orders/0"}
    assert (digest["count"], digest["truncated"]) == (4, True)
    assert [member["id"] for member in digest["events"]] == ["evt-0", "evt-2", "evt-4"]
    assert digest["first"] == digest["last"] == "2026-11-23T10:00:00.000Z"
    # AND a redelivered flush message returns the outbox until it is marked published, then nothing
    assert stack.state.flush(early) == digest
    stack.state.flushed(str(early["pk"]))
    assert stack.state.flush(early) is None


def test_joining_a_group_whose_flush_is_claimed_writes_only_the_decision(stack: Stack) -> None:
    # GIVEN a group opened by a first event (which claimed its flush)
    policy = {"group": {"group_wait": "30s"}}
    stack.decide(policy, 0)
    calls: list[str] = []
    stack.state.dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name), unique_id="count-calls"
    )

    # WHEN 3 more events join it
    assert [stack.decide(policy, n) for n in range(1, 4)] == ["grouped"] * 3

    # THEN each took one transaction and one read: no conditional claim bound to fail, no second flush
    assert calls == ["TransactWriteItems", "GetItem"] * 3
    assert len(stack.flushes.sent) == 1


def test_after_a_digest_the_next_one_waits_for_group_interval(stack: Stack) -> None:
    policy = {"group": {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "1h"}}
    stack.decide(policy, 1)
    stack.clock.at += 30
    [(message, _)] = stack.flushes.sent
    assert stack.state.flush(message) is not None

    # WHEN another event comes 10 s after the digest
    stack.clock.at += 10
    assert stack.decide(policy, 2) == "grouped"

    # THEN its digest is due group_interval after the last one (290 s from now), not group_wait
    assert stack.flushes.sent[-1][1] == 290
    assert stack.flushes.sent[-1][0]["gen"] == 1


def test_racing_invocations_never_lose_a_group_member(stack: Stack) -> None:
    policy = {"group": {"group_wait": "1m", "limit": 100}}

    def worker(start: int) -> None:
        for n in range(start, 60, 6):
            assert stack.decide(policy, n) == "grouped"

    threads = [threading.Thread(target=worker, args=(start,)) for start in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN one flush was asked for, and its digest has all 60 events
    [(message, _)] = stack.flushes.sent
    stack.clock.at += 60
    digest = stack.state.flush(message)
    assert digest is not None
    assert digest["count"] == 60
    assert sorted(member["id"] for member in digest["events"]) == sorted(f"evt-{n}" for n in range(60))


def test_throttled_excess_is_folded_into_the_next_digest(stack: Stack) -> None:
    policy = {"throttle": {"limit": 2, "window": "1m", "excess": "digest"}, "group": {"group_wait": "1m"}}
    outcomes = [stack.decide(policy, n) for n in range(5)]
    assert outcomes == ["deliver", "deliver", "throttled", "throttled", "throttled"]
    [(message, delay)] = stack.flushes.sent
    stack.clock.at += delay
    digest = stack.state.flush(message)
    assert digest is not None
    assert digest["count"] == 3


# ---- mute / active ----


def test_muted_deliveries_are_dropped_or_held_until_the_window_ends(stack: Stack) -> None:
    # GIVEN Monday 10:00 UTC = 11:00 in Berlin, inside a 09:00-12:00 Berlin mute window
    mute = [
        {
            "weekdays": ["monday:friday"],
            "times": [{"start_time": "09:00", "end_time": "12:00"}],
            "location": "Europe/Berlin",
        }
    ]

    # WHEN / THEN dropped by default, held when asked
    assert stack.decide({"mute": mute}, 1) == "muted"
    assert stack.decide({"mute": mute, "when_muted": "hold"}, 2) == "held"
    [(message, delay)] = stack.flushes.sent
    assert delay == 3600  # until 12:00 Berlin = 11:00 UTC
    stack.clock.at += 3600
    digest = stack.state.flush(message)
    assert digest is not None
    assert [member["id"] for member in digest["events"]] == ["evt-2"]


def test_active_intervals_mute_everything_outside_them(stack: Stack) -> None:
    active = [{"weekdays": ["saturday", "sunday"], "location": "Europe/Berlin"}]
    assert stack.decide({"active": active}, 1) == "muted"
    stack.clock.at += 5 * 86_400  # Saturday
    assert stack.decide({"active": active}, 2) == "deliver"
