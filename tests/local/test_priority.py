"""local.priority: queued work waits for the PutEvents calls under way, and never longer than its limit."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws

from local import priority
from local.priority import PRIORITY, Priority
from tests.notification_doubles import create_idempotency_table
from tests.probe import REGION


def test_give_way_returns_at_once_without_foreground_calls() -> None:
    priority = Priority()
    priority.give_way(limit=3600)  # would hang the test if it waited
    assert priority.foreground_calls == 0


def test_background_waits_until_the_foreground_call_ends() -> None:
    priority = Priority()
    order: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def foreground() -> None:
        with priority.foreground():
            inside.set()
            release.wait(10)
            order.append("put-events done")

    def background() -> None:
        priority.give_way(limit=30)
        order.append("queued step")

    call = threading.Thread(target=foreground)
    call.start()
    inside.wait(10)
    step = threading.Thread(target=background)
    step.start()
    step.join(0.2)
    assert step.is_alive()  # still giving way
    release.set()
    call.join(10)
    step.join(10)
    assert order == ["put-events done", "queued step"]
    assert priority.foreground_calls == 0


def test_background_is_delayed_never_starved() -> None:
    priority = Priority()
    with priority.foreground():  # a foreground call that does not end while the step waits
        done = threading.Event()

        def step_after_its_limit() -> None:
            priority.give_way(limit=0.01)
            done.set()

        step = threading.Thread(target=step_after_its_limit)
        step.start()
        assert done.wait(10)  # went ahead after its limit
    step.join(10)


def test_foreground_calls_count_while_they_run_even_when_they_fail() -> None:
    priority = Priority()
    try:
        with priority.foreground(), priority.foreground():
            assert priority.foreground_calls == 2
            raise RuntimeError("the call failed")
    except RuntimeError:
        pass
    assert priority.foreground_calls == 0


def test_each_dynamodb_item_of_a_call_is_a_step_that_gives_way(monkeypatch: pytest.MonkeyPatch) -> None:
    priority.install()
    steps: list[str] = []
    monkeypatch.setattr(PRIORITY, "give_way", lambda limit=0.0: steps.append("give way"))
    with mock_aws():
        create_idempotency_table("ledger")  # the ledger's table, as the template declares it
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        items = [{"PutRequest": {"Item": {"id": {"S": f"m{n}"}}}} for n in range(3)]
        dynamodb.batch_write_item(RequestItems={"ledger": items})
        assert steps == ["give way"] * 3  # one step per item, not one per call
        dynamodb.get_item(TableName="ledger", Key={"id": {"S": "m1"}})
        dynamodb.delete_item(TableName="ledger", Key={"id": {"S": "m1"}})
        assert steps == ["give way"] * 5


def test_in_flight_calls_are_waited_for_up_to_a_timeout() -> None:
    from local.priority import InFlight

    # GIVEN a call under way
    calls = InFlight()
    with calls.call():
        # THEN waiting for none gives up after its timeout, saying so
        assert calls.count == 1
        assert calls.wait_until_none(0.05) is False

    # AND once it ended, waiting returns at once
    assert (calls.count, calls.wait_until_none(0)) == (0, True)
