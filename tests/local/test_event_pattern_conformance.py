"""The EventBridge pattern conformance suite, run against the local stack's matcher.

Every case of ``tests/local/eventbridge/cases.py`` (each citing the EventBridge docs or
aws/event-ruler) is judged three ways, as a rule on the local stack meets it:
the engine moto routes events with (``moto.events.models.EventPattern``, replaced by
``local.event_pattern`` in ``local.moto_compat``), ``TestEventPattern`` (the rules API's dry run),
and ``PutRule`` + ``PutEvents`` (delivery to an SQS target). An invalid pattern is refused by
``PutRule`` and ``TestEventPattern`` with InvalidEventPatternException, and no rule is left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.events.exceptions import InvalidEventPatternException
from moto.events.models import EventPattern

from tests.local.eventbridge.cases import CASES, INVALID, QUAMINA_EXPLODER, Case

REGION = "us-east-1"
BUS = "conformance"


def case_id(case: Case) -> str:
    return f"{CASES.index(case):03d}-{case.source.split('#')[-1][:40]}"


def test_the_suite_has_at_least_100_cited_cases() -> None:
    assert len(CASES) >= 100
    assert all(case.source.startswith(("DOC:", "RULER:")) for case in CASES)
    assert {True, False, INVALID} == {case.expected for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_matcher_agrees_with_eventbridge(case: Case) -> None:
    # GIVEN a pattern / WHEN moto's (patched) engine loads it and meets the event
    if case.expected == INVALID:
        # THEN an invalid pattern is refused
        with pytest.raises(InvalidEventPatternException):
            EventPattern.load(case.pattern_text)
        return
    # THEN it matches exactly when EventBridge would
    assert EventPattern.load(case.pattern_text).matches_event(case.event) is case.expected  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def events() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("events", region_name=REGION)
        client.create_event_bus(Name=BUS)
        yield client


def bus_event(case: Case) -> dict[str, Any]:
    """The case's event with the envelope fields TestEventPattern wants (the case's own fields win)."""
    envelope = {
        "id": "1",
        "account": "123456789012",
        "source": "conformance",
        "detail-type": "Conformance",
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {},
    }
    return {**envelope, **case.event}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_dry_run_and_put_rule_agree(events: Any, case: Case) -> None:
    # GIVEN / WHEN the pattern is tried with TestEventPattern and PutRule
    if case.expected == INVALID:
        # THEN both refuse it, and no rule is created
        with pytest.raises(ClientError) as dry_run:
            events.test_event_pattern(EventPattern=case.pattern_text, Event=json.dumps(bus_event(case)))
        with pytest.raises(ClientError) as put:
            events.put_rule(Name="invalid", EventBusName=BUS, EventPattern=case.pattern_text)
        assert dry_run.value.response["Error"]["Code"] == "InvalidEventPatternException"
        assert put.value.response["Error"]["Code"] == "InvalidEventPatternException"
        assert [
            rule["Name"] for rule in events.list_rules(EventBusName=BUS)["Rules"] if rule["Name"] == "invalid"
        ] == []
        return
    # THEN the dry run answers as EventBridge would
    result = events.test_event_pattern(EventPattern=case.pattern_text, Event=json.dumps(bus_event(case)))
    assert result["Result"] is case.expected


DELIVERY_CASES = [case for case in CASES if case.expected != INVALID]


@pytest.fixture(scope="module")
def sqs(events: Any) -> Any:
    return boto3.client("sqs", region_name=REGION)


@pytest.mark.parametrize("case", DELIVERY_CASES, ids=case_id)
def test_delivery_follows_the_pattern(events: Any, sqs: Any, case: Case) -> None:
    # GIVEN a rule with the case's pattern (applied to detail) sending to a queue of its own
    name = f"case-{CASES.index(case)}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [name], "detail": json.loads(case.pattern_text)}
    events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])

    # WHEN the case's event is published as the detail of an event
    response = events.put_events(
        Entries=[{"EventBusName": BUS, "Source": name, "DetailType": "t", "Detail": json.dumps(case.event)}]
    )

    # THEN it is delivered exactly when the pattern matches
    assert response["FailedEntryCount"] == 0
    delivered = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(delivered) == (1 if case.expected else 0)
    events.remove_targets(Rule=name, EventBusName=BUS, Ids=["q"])
    events.delete_rule(Name=name, EventBusName=BUS)


def test_a_schedule_only_rule_receives_no_event(events: Any, sqs: Any) -> None:
    # GIVEN a scheduled rule (no pattern) on the default bus with a queue target
    url = sqs.create_queue(QueueName="timer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="timer", ScheduleExpression="rate(5 minutes)")
    events.put_targets(Rule="timer", Targets=[{"Id": "q", "Arn": arn}])

    # WHEN an event is published on that bus
    events.put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}"}])

    # THEN the timer rule does not receive it (EventBridge matches events to pattern rules only)
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_a_rule_with_its_compiled_pattern_survives_pickling(events: Any) -> None:
    # GIVEN a rule on the bus (the local stack pickles moto's state to keep it across restarts)
    import pickle

    from moto.events.models import events_backends

    pattern = {"detail": {"items": {"sku": [{"prefix": "A-"}]}, "ip": [{"cidr": "10.0.0.0/8"}]}}
    events.put_rule(Name="pickled", EventBusName=BUS, EventPattern=json.dumps(pattern))
    rule = events_backends["123456789012"][REGION].event_buses[BUS].rules["pickled"]

    # WHEN it is pickled and loaded again
    copy = pickle.loads(pickle.dumps(rule))

    # THEN its pattern still matches as before
    event = {"detail": {"items": [{"sku": "B-1"}, {"sku": "A-2"}], "ip": "10.1.2.3"}}
    assert copy.event_pattern.matches_event(event) is True
    assert copy.event_pattern.matches_event({"detail": {"items": [{"sku": "B-1"}], "ip": "10.1.2.3"}}) is False
    events.delete_rule(Name="pickled", EventBusName=BUS)


@pytest.mark.parametrize(
    ("expected", "values"),
    [  # MachineComplexityEvaluatorTest.java: the figure each test asserts for these wildcard values
        (1, ["*"]),
        (3, ["*aa"]),
        (4, ["a*bbb"]),
        (5, ["a*b*bb"]),
        (4, ["*abc", "*abcde"]),
        (7, ["a*aaa", "aa*aa"]),
        (6, ["ab*cd", "ab*wx", "ab*yz"]),
        (7, ["*ab*b*b*"]),
        (10, ["F*eatureFeature", "Fe*atureFeature", "Fea*tureFeature"]),
        (11, ["a*a*a*a*a*a*"]),
        (17, ["*a*a*a*a*a*a*a*a*"]),
        (45, QUAMINA_EXPLODER),
    ],
)
def test_wildcard_complexity_is_event_rulers(expected: int, values: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import local.event_pattern as patterns

    monkeypatch.setattr(patterns, "MAX_COMPLEXITY", 1000)
    rules = patterns.compile_pattern(json.dumps({"field": [{"wildcard": value} for value in values]}))
    assert patterns.complexity(rules) == expected
