"""Delivery policies through the real relay and flusher functions on moto: exact counts, redelivery, digests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.policy_pipeline import Pipeline, pipeline, run_storm, storm_rule
from tests.probe import BusProbe
from tests.relay_doubles import RecordingServer, running


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with running(RecordingServer()) as started:
        yield started


@pytest.fixture
def pipe(bus_probe: BusProbe, server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with pipeline(bus_probe, server, monkeypatch) as built:
        yield built


def test_a_throttled_rule_relays_n_and_digests_the_rest_once_each_even_when_redelivered(pipe: Pipeline) -> None:
    # GIVEN the storm rule (5 per minute, the excess digested)
    rule = storm_rule(pipe.server.url("/hooks/storm"))

    # WHEN 12 events arrive, and EventBridge redelivers each of them once
    first = [pipe.deliver(rule, n, type="storm.error") for n in range(12)]
    again = [pipe.deliver(rule, n, type="storm.error") for n in range(12)]

    # THEN 5 were relayed at once, 7 throttled into the digest; the redeliveries changed nothing
    assert [result["results"][0]["status"] for result in first] == ["delivered"] * 5 + ["throttled"] * 7
    assert all(result["results"][0]["replayed"] for result in again)
    assert len(pipe.server.requests) == 5
    events = pipe.internal_events()
    assert [detail["type"] for detail in events].count("policy.throttled") == 7
    throttled = next(detail for detail in events if detail["type"] == "policy.throttled")
    assert throttled["info"] == "digest"
    assert throttled["payload"]["rule"] == "storm"
    assert throttled["system_id"] == "rule/storm"

    # WHEN the group is due: the flusher sends one digest, through the relay
    assert pipe.flush_due() == 1

    # THEN one policy.flushed event counting 7, and the relay posted it (the group in its payload)
    [flushed] = [detail for detail in pipe.internal_events() if detail["type"] == "policy.flushed"]
    assert (flushed["info"], flushed["system_id"]) == ("7", "rule/storm")
    assert len(pipe.server.requests) == 6
    posted = json.loads(pipe.server.requests[-1].body)
    assert posted["type"] == "policy.flushed"
    assert posted["payload"]["group"]["count"] == 7
    assert [member["id"] for member in posted["payload"]["group"]["events"]] == [f"storm-{n:06d}" for n in range(5, 12)]
    assert "config" not in json.dumps(posted)  # the rule's config (URLs, recipients) never travels on the bus
    # AND a redelivered flush message sends nothing more
    assert pipe.flush_due() == 0
    assert len(pipe.server.requests) == 6


def test_a_dedup_rule_relays_each_key_once_per_window(pipe: Pipeline) -> None:
    rule: dict[str, Any] = {**storm_rule(pipe.server.url()), "policy": {"dedup": {"key": ["object"], "window": "10m"}}}
    outcomes = [
        pipe.deliver(rule, n, type="storm.error", object=f"orders/{n % 3}")["results"][0]["status"] for n in range(9)
    ]
    assert outcomes == ["delivered"] * 3 + ["deduplicated"] * 6
    assert len(pipe.server.requests) == 3


@pytest.mark.slow
def test_a_storm_of_racing_events_is_counted_exactly(pipe: Pipeline) -> None:
    # GIVEN / WHEN 100 matching events from 4 racing invocations, within one throttle window
    # (10,000 events end to end on the local stack, counted in the event log: python -m bench.storm)
    figures = run_storm(pipe, 100, threads=4)

    # THEN 5 relayed at once + 1 digest; every event accounted for, exactly once
    assert figures.outcomes == {"delivered": 5, "throttled": 95}
    assert (figures.digests, figures.digested) == (1, 95)
    assert figures.posts == 6
    assert figures.types["relay"] == 6  # 5 events and the digest
    assert figures.types["policy.throttled"] == 95
