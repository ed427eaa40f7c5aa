"""Optimistic concurrency on rules (moto): ETags, If-Match / If-None-Match, and the lease that makes
two writers of one rule take turns although EventBridge has no conditional writes."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest

from correlator.errors import ConflictError, PreconditionFailedError
from correlator.rulelock import RuleWriteLease, etag_matches, rule_etag
from correlator.rules import Rule
from correlator.rulestore import RuleStore
from tests.integration.rules_fixtures import RuleTargets, create_rule_targets
from tests.notification_doubles import IDEMPOTENCY_TABLE, create_idempotency_table
from tests.probe import REGION, BusProbe


class SlowEvents:
    """An EventBridge client whose DescribeRule takes a while: the window between check and write, widened."""

    def __init__(self, client: Any, delay: float, then: Any = None) -> None:
        self._client = client
        self._delay = delay
        self._then = then

    def describe_rule(self, **kwargs: Any) -> Any:
        time.sleep(self._delay)
        try:
            return self._client.describe_rule(**kwargs)
        finally:
            if self._then is not None:
                self._then()
                self._then = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def targets(bus_probe: BusProbe) -> RuleTargets:
    create_idempotency_table()
    return create_rule_targets()


def store(targets: RuleTargets, *, lease: bool = True, delay: float = 0.0, wait: float = 3.0) -> RuleStore:
    events: Any = boto3.client("events", region_name=REGION)
    if delay:
        events = SlowEvents(events, delay)
    leases = RuleWriteLease(
        boto3.client("dynamodb", region_name=REGION),
        IDEMPOTENCY_TABLE,
        remaining_seconds=lambda: 10.0,
        wait_seconds=wait,
    )
    return RuleStore(events, targets.deployment(), lease=leases if lease else None)


def rule(action: str = "log", **fields: Any) -> Rule:
    return Rule.model_validate({"name": "raced", "match": {"type": "order."}, "action": action, **fields})


def race(stores: list[RuleStore], write: Any) -> list[Any]:
    """Run ``write(store, index)`` in one thread per store, started together; each one's result or error."""
    barrier = threading.Barrier(len(stores))
    results: list[Any] = [None] * len(stores)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = write(stores[index], index)
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_without_the_lease_two_racing_creates_both_succeed(targets: RuleTargets) -> None:
    # The race the lease closes: both check "absent" (neither goes on before both have looked), both write,
    # the last one wins silently.
    both_looked = threading.Barrier(2, timeout=10)
    stores = [store(targets, lease=False) for _ in range(2)]
    for each in stores:
        events = each._events
        each._events = SlowEvents(events, 0.0, then=both_looked.wait)  # type: ignore[assignment]
    results = race(stores, lambda s, i: s.create(rule(f"log.{['info', 'warn'][i]}")))
    assert not any(isinstance(result, Exception) for result in results)


def test_exactly_one_of_two_racing_creates_wins(targets: RuleTargets) -> None:
    # GIVEN two writers creating the same rule at the same moment, each slow between its check and its write
    actions = ["log.info", "log.warn"]
    results = race(
        [store(targets, delay=0.3) for _ in range(2)],
        lambda s, i: s.create(rule(actions[i]), if_none_match="*" if i else None),
    )
    # THEN exactly one was created; the other got 409 (no precondition) or 412 (If-None-Match: *)
    winners = [index for index, result in enumerate(results) if not isinstance(result, Exception)]
    assert len(winners) == 1
    loser = results[1 - winners[0]]
    assert isinstance(loser, ConflictError | PreconditionFailedError)
    # ... and the rule on the bus is the winner's, with the ETag the winner was given
    stored, etag = store(targets).get_with_etag("raced")
    assert stored.action == actions[winners[0]]
    assert etag == results[winners[0]][1]


def test_exactly_one_of_two_racing_updates_from_the_same_etag_wins(targets: RuleTargets) -> None:
    _, etag = store(targets).create(rule("log"))
    actions = ["log.info", "log.warn"]
    results = race(
        [store(targets, delay=0.3) for _ in range(2)], lambda s, i: s.replace(rule(actions[i]), if_match=etag)
    )
    winners = [index for index, result in enumerate(results) if not isinstance(result, Exception)]
    assert len(winners) == 1
    assert isinstance(results[1 - winners[0]], PreconditionFailedError | ConflictError)
    assert store(targets).get("raced").action == actions[winners[0]]


def test_a_stale_etag_changes_nothing(targets: RuleTargets) -> None:
    rules = store(targets)
    _, first = rules.create(rule("log"))
    _, second = rules.replace(rule("log.warn"), if_match=first)
    assert second != first
    with pytest.raises(PreconditionFailedError):
        rules.replace(rule("log.error"), if_match=first)
    with pytest.raises(PreconditionFailedError):
        rules.delete("raced", if_match=first)
    assert rules.get_with_etag("raced") == (rules.get("raced"), second)
    assert rules.get("raced").action == "log.warn"
    rules.delete("raced", if_match=second)
    assert rules.list_all() == []


def test_if_none_match_on_an_existing_rule_and_if_match_on_a_missing_one(targets: RuleTargets) -> None:
    rules = store(targets)
    rules.create(rule("log"))
    with pytest.raises(PreconditionFailedError):
        rules.create(rule("log.warn"), if_none_match="*")
    with pytest.raises(ConflictError):
        rules.create(rule("log.warn"))
    with pytest.raises(PreconditionFailedError):
        rules.replace(rule("log", name="missing"), if_match='"abc"')


def test_a_lease_held_by_another_writer_is_waited_for_then_refused(targets: RuleTargets) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    until = time.time() + 60
    dynamodb.put_item(
        TableName=IDEMPOTENCY_TABLE,
        Item={"id": {"S": "rule-write#raced"}, "token": {"S": "other"}, "lease_until": {"N": str(until)}},
    )
    with pytest.raises(ConflictError, match="in progress"):
        store(targets, wait=0.2).create(rule("log"))
    assert store(targets).list_all() == []
    # An expired lease (its holder's invocation has ended) is taken over.
    dynamodb.put_item(
        TableName=IDEMPOTENCY_TABLE,
        Item={"id": {"S": "rule-write#raced"}, "token": {"S": "other"}, "lease_until": {"N": str(time.time() - 1)}},
    )
    store(targets, wait=0.2).create(rule("log"))
    # ... and released after the write: nothing left behind
    assert dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"] == []


def test_etags_are_content_hashes_and_if_match_lists_are_understood() -> None:
    etag = rule_etag({"name": "a", "action": "log"})
    assert etag == rule_etag({"action": "log", "name": "a"})
    assert etag != rule_etag({"name": "a", "action": "log.warn"})
    assert etag_matches(etag, etag)
    assert etag_matches(f'"x", W/{etag}', etag)
    assert etag_matches("*", etag)
    assert not etag_matches('"x"', etag)
    assert not etag_matches("*", None)
