"""The loop guard on moto: a rule that matches its own action's results stops by itself after MaxHops."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from correlator.delivery import Delivery, emit_result, parse_delivery
from correlator.internal import InternalEventEmitter
from correlator.publisher import EventPublisher
from correlator.rules import Rule
from correlator.rulestore import RuleStore
from tests.integration.rules_fixtures import RuleTargets, create_rule_targets
from tests.probe import BUS_NAME, REGION, BusProbe

# Far more than any guard allows: a broken guard fails the test instead of looping (or fanning out) forever.
MAX_ROUNDS = 10
MAX_DELIVERIES = 50


@pytest.fixture
def targets(bus_probe: BusProbe) -> RuleTargets:
    return create_rule_targets()


def run_chain(targets: RuleTargets, emitter: InternalEventEmitter) -> list[Delivery[Any]]:
    """Act as the action: take each delivery from the queue and emit its result (hops + 1) on the bus."""
    deliveries: list[Delivery[Any]] = []
    for _ in range(MAX_ROUNDS):
        received = [parse_delivery(body) for body in targets.log_queue.drain()]
        if not received:
            return deliveries
        deliveries.extend(received)
        if len(deliveries) > MAX_DELIVERIES:
            break
        for delivery in received:
            emit_result(emitter, delivery, object="logs/current/default.log", info="written")
    pytest.fail(f"the chain did not stop: {len(deliveries)} deliveries, hops {[d.event.hops for d in deliveries]}")


@pytest.mark.parametrize("max_hops", [1, 3, 5])
def test_a_rule_fed_by_its_own_results_stops_after_max_hops(
    bus_probe: BusProbe, targets: RuleTargets, max_hops: int
) -> None:
    # GIVEN a rule matching internal "log" events whose action's results are internal "log" events
    events = boto3.client("events", region_name=REGION)
    rule = Rule.model_validate(
        {"name": "log-the-log", "match": {"external": False, "type": "log"}, "action": "log", "config": {}}
    )
    RuleStore(events, targets.deployment(max_hops)).create(rule)
    emitter = InternalEventEmitter(EventPublisher(events, BUS_NAME))

    # WHEN one internal event (hops 0) starts the chain
    first = emitter.emit("log", object="seed", info="start", request_key="Req_1001")
    deliveries = run_chain(targets, emitter)

    # THEN exactly max_hops deliveries, hops 0..max_hops-1, each the previous one's result
    assert [delivery.event.hops for delivery in deliveries] == list(range(max_hops))
    assert deliveries[0].event.id == first.id
    assert all(delivery.rule == rule for delivery in deliveries)
    assert all(delivery.event.request_key == "Req_1001" for delivery in deliveries)
    assert all(delivery.event.system_id == "rule/log-the-log" for delivery in deliveries[1:])
    # AND the last result did reach the bus: the guard in the pattern, not a lost event, ended the chain
    published = bus_probe.drain_details()
    assert [detail["hops"] for detail in published] == list(range(max_hops + 1))
    assert all(detail["type"] == "log" and detail["external"] is False for detail in published)
    assert targets.log_queue.drain() == []
    assert targets.dead_letters.drain() == []


def test_a_chain_started_below_the_limit_uses_only_the_hops_left(bus_probe: BusProbe, targets: RuleTargets) -> None:
    # GIVEN the same rule, MaxHops 3
    events = boto3.client("events", region_name=REGION)
    rule = Rule.model_validate({"name": "log-the-log", "match": {"external": False, "type": "log"}, "action": "log"})
    RuleStore(events, targets.deployment(3)).create(rule)
    emitter = InternalEventEmitter(EventPublisher(events, BUS_NAME))

    # WHEN the first event already carries hops 2 (e.g. relayed from another deployment)
    emitter.emit("log", object="relayed", info="start", hops=2)
    deliveries = run_chain(targets, emitter)

    # THEN one delivery, and its result (hops 3) matches nothing
    assert [delivery.event.hops for delivery in deliveries] == [2]
    assert [detail["hops"] for detail in bus_probe.drain_details()] == [2, 3]


def test_two_rules_feeding_each_other_also_stop(bus_probe: BusProbe, targets: RuleTargets) -> None:
    # GIVEN two rules on every internal log event: each result is seen by both rules
    events = boto3.client("events", region_name=REGION)
    store = RuleStore(events, targets.deployment(3))
    for name in ("first-echo", "second-echo"):
        store.create(Rule.model_validate({"name": name, "match": {"external": False, "type": "log"}, "action": "log"}))
    emitter = InternalEventEmitter(EventPublisher(events, BUS_NAME))

    # WHEN
    emitter.emit("log", object="seed", info="start")
    deliveries = run_chain(targets, emitter)

    # THEN the chain fans out (2, 4, 8 deliveries per hop) but still ends at hops 2
    hops = sorted(delivery.event.hops for delivery in deliveries)
    assert hops == [0] * 2 + [1] * 4 + [2] * 8
