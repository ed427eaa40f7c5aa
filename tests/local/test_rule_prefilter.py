"""Delivery skips rules whose pattern pins source/detail-type to other strings: same deliveries as without."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_compat
from local.event_pattern import EventPattern
from tests.local.eventbridge.cases import CASES

RULES: dict[str, dict[str, Any]] = {
    "exact": {"source": ["app"], "detail-type": ["created"]},
    "two-sources": {"source": ["app", "other"]},
    "prefix": {"source": [{"prefix": "ap"}]},
    "prefix-type": {"source": ["app", "other"], "detail-type": [{"prefix": "cre"}, {"suffix": "eted"}]},
    "anything-but": {"source": [{"anything-but": "app"}]},
    "or": {"$or": [{"source": ["other"]}, {"detail-type": ["created"]}]},
    "no-source": {"detail": {"n": [1]}},
    "mixed": {"source": ["app", {"prefix": "ot"}]},
    "wildcard-type": {"detail-type": [{"wildcard": "cre*"}]},
}
EVENTS = [
    {"Source": source, "DetailType": kind, "Detail": json.dumps({"n": n})}
    for source in ("app", "other", "apx", "zzz")
    for kind in ("created", "deleted")
    for n in (1, 2)
]


def _prefiltered(case: Any) -> bool:
    """Delivery prefilters only events with string source and detail-type (every PutEvents entry)."""
    return case.expected is True and all(isinstance(case.event.get(key), str) for key in ("source", "detail-type"))


@pytest.mark.parametrize(
    "case", [case for case in CASES if _prefiltered(case)], ids=lambda case: f"{case.source} {case.pattern_text}"
)
def test_the_prefilter_never_skips_a_rule_that_matches(case: Any) -> None:
    # GIVEN a conformance case whose event matches its pattern
    event = case.event
    source, kind = event["source"], event["detail-type"]
    pattern = EventPattern(case.pattern_text)
    assert pattern.matches(event)

    # THEN the prefilter lets it through
    assert pattern.may_match(source, kind)


@pytest.fixture
def bus() -> Iterator[tuple[Any, Any, dict[str, str]]]:
    moto_compat.apply()
    with mock_aws():
        events, sqs = boto3.client("events", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        urls = {}
        for name, pattern in RULES.items():
            urls[name] = url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events.put_rule(Name=name, EventPattern=json.dumps(pattern))
            events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
        yield events, sqs, urls


def delivered(events: Any, sqs: Any, urls: dict[str, str]) -> dict[str, list[tuple[str, str, int]]]:
    for start in range(0, len(EVENTS), 10):
        events.put_events(Entries=EVENTS[start : start + 10])
    received: dict[str, list[tuple[str, str, int]]] = {}
    for name, url in urls.items():
        bodies = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(message["Body"])
                bodies.append((body["source"], body["detail-type"], body["detail"]["n"]))
        received[name] = sorted(bodies)
    return received


def test_each_target_receives_the_same_events_with_and_without_the_prefilter(
    bus: tuple[Any, Any, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # WHEN the same events are put with the prefilter, then with every rule matched in full
    with_prefilter = delivered(*bus)
    with monkeypatch.context() as patch:
        patch.setattr(EventPattern, "may_match", lambda self, source, kind: True)
        without = delivered(*bus)

    # THEN every target received the same events, and the prefilter did skip rules
    assert with_prefilter == without
    assert with_prefilter["exact"] == [("app", "created", 1), ("app", "created", 2)]
    assert len(with_prefilter["no-source"]) == 8
    assert not EventPattern(json.dumps(RULES["exact"])).may_match("other", "created")
    assert not EventPattern(json.dumps(RULES["prefix-type"])).may_match("app", "updated")
    assert EventPattern(json.dumps(RULES["prefix-type"])).may_match("app", "deleted")
    assert EventPattern(json.dumps(RULES["or"])).may_match("zzz", "created")


def test_the_prefilter_keeps_a_bounded_number_of_answers_and_each_stays_right() -> None:
    from local.event_pattern import ADMITTED_KEPT

    # GIVEN a pattern pinning the source to a prefix
    pattern = EventPattern(json.dumps({"source": [{"prefix": "app"}]}))

    # WHEN it is asked about more (source, detail-type) pairs than it keeps, each twice
    sources = [f"app.{n}" if n % 2 else f"other.{n}" for n in range(ADMITTED_KEPT + 10)]
    first = [pattern.may_match(source, "t") for source in sources]
    again = [pattern.may_match(source, "t") for source in sources]

    # THEN every answer, kept or computed again, is the pin's, and no more than ADMITTED_KEPT are kept
    assert first == again == [source.startswith("app") for source in sources]
    assert len(pattern.__dict__["_admitted"]) <= ADMITTED_KEPT
