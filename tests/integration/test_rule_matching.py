"""What compiled rules match, judged by moto's EventBridge pattern engine, and one rule firing end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto.events.models import EventPattern

from correlator.compiler import event_pattern
from correlator.delivery import parse_delivery
from correlator.envelope import source_of
from correlator.event import Event, EventSubmission, stamp_event
from correlator.publisher import EventPublisher
from correlator.rules import Rule
from correlator.rulestore import RuleStore
from tests.integration.rules_fixtures import RuleTargets, create_rule_targets
from tests.probe import BUS_NAME, REGION, BusProbe

MAX_HOPS = 3
NOW = datetime(2026, 11, 22, 14, 52, 39, 778_000, tzinfo=UTC)


def event_of(*, external: bool = True, subject: str | None = None, hops: int = 0, **fields: Any) -> Event:
    """A stamped event; ``fields`` as a client submits them (type defaults to order.created)."""
    submission = EventSubmission.model_validate({"type": "order.created", **fields})
    return stamp_event(submission, external=external, subject=subject, request_key="Req_1001", hops=hops, now=NOW)


def on_the_bus(event: Event) -> dict[str, Any]:
    """``event`` as EventBridge hands it to rules."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": event.type,
        "source": source_of(event),
        "account": "123456789012",
        "time": "2026-11-22T14:52:39Z",
        "region": REGION,
        "resources": [],
        "detail": event.to_detail(),
    }


def matches(rule: dict[str, Any], event: Event, max_hops: int = MAX_HOPS) -> bool:
    """Does the compiled pattern of ``rule`` match ``event`` in moto's engine?"""
    pattern = event_pattern(Rule.model_validate({"name": "r1", "action": "log", **rule}), max_hops)
    engine = EventPattern.load(json.dumps(pattern))
    return bool(engine.matches_event(on_the_bus(event)))  # type: ignore[arg-type]


def sales_row(**fields: Any) -> Event:
    return event_of(kind="dataset", dataset="sales", payload={"total": 42.5}, **fields)


# ---- one match field at a time ----


@pytest.mark.parametrize(
    ("rule", "event", "expected"),
    [
        # type: a prefix
        ({"match": {"type": "order."}}, event_of(type="order.created"), True),
        ({"match": {"type": "order."}}, event_of(type="order."), True),
        ({"match": {"type": "order."}}, event_of(type="order"), False),
        ({"match": {"type": "order."}}, event_of(type="orders.created"), False),
        ({"match": {"type": "order."}}, event_of(type="reorder.created"), False),
        ({"match": {"type": "order.created"}}, event_of(type="order.created.v2"), True),
        # type with a leading ".": a suffix
        ({"match": {"type": ".created"}}, event_of(type="order.created"), True),
        ({"match": {"type": ".created"}}, event_of(type="invoice.created"), True),
        ({"match": {"type": ".created"}}, event_of(type="order.created.v2"), False),
        ({"match": {"type": ".created"}}, event_of(type="created"), False),
        ({"match": {"type": ".created"}}, event_of(type="order.recreated"), False),
        # object and info: prefixes
        ({"match": {"object": "orders/"}}, event_of(object="orders/1001"), True),
        ({"match": {"object": "orders/"}}, event_of(object="order/1001"), False),
        ({"match": {"object": "orders/"}}, event_of(object="all-orders/1001"), False),
        ({"match": {"object": "orders/"}}, event_of(), False),
        ({"match": {"info": "payment"}}, event_of(info="payment declined"), True),
        ({"match": {"info": "payment"}}, event_of(info="no payment"), False),
        ({"match": {"info": "payment"}}, event_of(), False),
        # subject and schema: exact
        ({"match": {"subject": "k7ab2cd9ef"}}, event_of(subject="k7ab2cd9ef"), True),
        ({"match": {"subject": "k7ab2cd9ef"}}, event_of(subject="k7ab2cd9ef0"), False),
        ({"match": {"subject": "k7ab2cd9ef"}}, event_of(subject="k7ab2cd9e"), False),
        ({"match": {"subject": "k7ab2cd9ef"}}, event_of(), False),
        ({"match": {"schema": "https://orders.example.com/"}}, event_of(schema="https://orders.example.com/"), True),
        ({"match": {"schema": "https://orders.example.com/"}}, event_of(schema="https://orders.example.com"), False),
        ({"match": {"schema": "https://orders.example.com/"}}, event_of(schema="https://orders.example.com/v2"), False),
        # level: any of the list
        ({"match": {"level": ["WARN", "ERROR"]}}, event_of(level="WARN"), True),
        ({"match": {"level": ["WARN", "ERROR"]}}, event_of(level="error"), True),
        ({"match": {"level": ["WARN", "ERROR"]}}, event_of(level="INFO"), False),
        ({"match": {"level": ["WARN", "ERROR"]}}, event_of(), False),
        ({"match": {"level": ["info"]}}, event_of(), True),
        # kind and dataset: exact
        ({"match": {"kind": "dataset"}}, sales_row(), True),
        ({"match": {"kind": "dataset"}}, event_of(), False),
        ({"match": {"kind": "standard"}}, event_of(), True),
        ({"match": {"kind": "standard"}}, sales_row(), False),
        ({"match": {"dataset": "sales"}}, sales_row(), True),
        ({"match": {"dataset": "sales-eu"}}, sales_row(), False),
        ({"match": {"dataset": "sale"}}, sales_row(), False),
        ({"match": {"dataset": "sales"}}, event_of(), False),
        # external: true, false or absent (both)
        ({"match": {"external": True}}, event_of(external=True), True),
        ({"match": {"external": True}}, event_of(external=False), False),
        ({"match": {"external": False}}, event_of(external=False), True),
        ({"match": {"external": False}}, event_of(external=True), False),
        ({"match": {}}, event_of(external=True), True),
        ({"match": {}}, event_of(external=False), True),
        # the extra pattern
        ({"pattern": {"payload": {"currency": ["EUR"]}}}, event_of(payload={"currency": "EUR"}), True),
        ({"pattern": {"payload": {"currency": ["EUR"]}}}, event_of(payload={"currency": "USD"}), False),
        ({"pattern": {"payload": {"currency": ["EUR"]}}}, event_of(), False),
    ],
)
def test_one_match_field(rule: dict[str, Any], event: Event, expected: bool) -> None:
    # GIVEN a compiled rule and an event on the bus / WHEN moto matches them / THEN
    assert matches(rule, event) is expected


# ---- the hop guard ----


@pytest.mark.parametrize(("hops", "expected"), [(0, True), (MAX_HOPS - 1, True), (MAX_HOPS, False), (50, False)])
def test_the_hop_guard_stops_events_at_max_hops(hops: int, expected: bool) -> None:
    # GIVEN / WHEN / THEN
    assert matches({"match": {}}, event_of(hops=hops)) is expected
    assert matches({"match": {"external": False, "type": "log"}}, event_of(type="log", external=False, hops=hops)) is (
        expected
    )


@pytest.mark.parametrize("max_hops", [1, 5])
def test_the_hop_guard_follows_the_deployment(max_hops: int) -> None:
    # GIVEN / WHEN / THEN
    assert matches({}, event_of(hops=max_hops - 1), max_hops) is True
    assert matches({}, event_of(hops=max_hops), max_hops) is False


# ---- every field together ----

EVERYTHING: dict[str, Any] = {
    "match": {
        "external": True,
        "type": "order.",
        "object": "orders/",
        "info": "payment",
        "subject": "k7ab2cd9ef",
        "schema": "https://orders.example.com/",
        "level": ["ERROR"],
    },
    "pattern": {"payload": {"currency": ["EUR"]}},
}
MATCHING: dict[str, Any] = {
    "type": "order.failed",
    "object": "orders/1001",
    "info": "payment declined",
    "subject": "k7ab2cd9ef",
    "schema": "https://orders.example.com/",
    "level": "ERROR",
    "payload": {"currency": "EUR"},
}


def test_an_event_meeting_every_condition_matches() -> None:
    # GIVEN / WHEN / THEN
    assert matches(EVERYTHING, event_of(**MATCHING)) is True


@pytest.mark.parametrize(
    "change",
    [
        {"external": False},
        {"type": "invoice.failed"},
        {"object": "invoices/1"},
        {"info": "ok"},
        {"subject": "other"},
        {"schema": "https://other.example.com/"},
        {"level": "WARN"},
        {"payload": {"currency": "USD"}},
        {"hops": MAX_HOPS},
    ],
)
def test_missing_any_one_condition_does_not_match(change: dict[str, Any]) -> None:
    # GIVEN / WHEN / THEN
    assert matches(EVERYTHING, event_of(**{**MATCHING, **change})) is False


# ---- timer rules ----


def test_a_timer_rule_matches_only_its_own_schedule_events() -> None:
    # GIVEN
    rule = {"match": {"type": "timer.periodic", "object": "5"}}
    tick: dict[str, Any] = {"type": "timer.periodic", "object": "5", "external": False}

    # WHEN / THEN the rule's name is "r1"
    assert matches(rule, event_of(**tick, system_id="rule/r1")) is True
    assert matches(rule, event_of(**tick, system_id="rule/r2")) is False
    assert matches(rule, event_of(**tick)) is False
    assert matches(rule, event_of(**{**tick, "external": True}, system_id="rule/r1")) is False
    assert matches(rule, event_of(**{**tick, "type": "timer.periodical"}, system_id="rule/r1")) is False
    assert matches(rule, event_of(**tick, system_id="rule/r1", hops=MAX_HOPS)) is False


# ---- end to end on moto: a rule on the bus delivers {"rule", "event"} to its queue ----


@pytest.fixture
def targets(bus_probe: BusProbe) -> RuleTargets:
    return create_rule_targets()


def test_a_rule_on_the_bus_delivers_the_rule_and_the_matching_event_only(
    bus_probe: BusProbe, targets: RuleTargets
) -> None:
    # GIVEN a rule stored on the bus, its target being the log queue
    events = boto3.client("events", region_name=REGION)
    rule = Rule.model_validate(
        {
            "name": "orders-errors",
            "description": "Errors of <orders>",
            "match": {"external": True, "type": "order.", "level": ["ERROR"]},
            "action": "log.error",
        }
    )
    RuleStore(events, targets.deployment(MAX_HOPS)).create(rule)
    matching = event_of(type="order.failed", level="ERROR", object="orders/1001", subject="k7ab2cd9ef")
    other = event_of(type="order.failed", level="WARN", object="orders/1002")

    # WHEN
    outcomes = EventPublisher(events, BUS_NAME).publish([matching, other])

    # THEN
    assert [outcome.status for outcome in outcomes] == ["accepted", "accepted"]
    [body] = targets.log_queue.drain()
    assert set(body) == {"rule", "event"}
    assert body["rule"] == rule.to_json()
    assert body["event"]["source"] == "correlator.external"
    assert body["event"]["detail-type"] == "order.failed"
    assert body["event"]["detail"] == matching.to_detail()
    delivery = parse_delivery(json.dumps(body))
    assert delivery.rule == rule
    assert delivery.event == matching
    assert delivery.action == "log.error"
    assert delivery.idempotency_key == f"orders-errors#{matching.id}"
    assert len(bus_probe.drain()) == 2
    assert targets.dead_letters.drain() == []


def test_a_rule_on_the_bus_ignores_events_at_the_hop_limit(bus_probe: BusProbe, targets: RuleTargets) -> None:
    # GIVEN
    events = boto3.client("events", region_name=REGION)
    rule = Rule.model_validate({"name": "everything", "action": "log"})
    RuleStore(events, targets.deployment(MAX_HOPS)).create(rule)
    below, at_limit = event_of(hops=MAX_HOPS - 1), event_of(hops=MAX_HOPS)

    # WHEN
    EventPublisher(events, BUS_NAME).publish([below, at_limit])

    # THEN
    delivered = [parse_delivery(body).event for body in targets.log_queue.drain()]
    assert delivered == [below]
