"""Timer rules fire on the running local stack, as EventBridge Scheduler fires their schedules on AWS."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.local.conftest import LocalStack, create_rule, wait_for
from tests.local.test_local_stack import Probe

pytestmark = pytest.mark.slow

BUS = "correlator"


@pytest.fixture
def timer_probe(stack: LocalStack) -> Iterator[Probe]:
    """A queue behind a rule that sees the timer events on the stack's bus; removed after the test."""
    sqs, events = stack.client("sqs"), stack.client("events")
    queue_url = sqs.create_queue(QueueName="local-test-timers")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["correlator.internal"], "detail-type": [{"prefix": "timer."}]}
    events.put_rule(Name="local-test-timers", EventBusName=BUS, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="local-test-timers", EventBusName=BUS, Targets=[{"Id": "probe", "Arn": queue_arn}])
    probe = Probe(sqs, queue_url)
    probe.drain()
    yield probe
    events.remove_targets(Rule="local-test-timers", EventBusName=BUS, Ids=["probe"])
    events.delete_rule(Name="local-test-timers", EventBusName=BUS)
    sqs.delete_queue(QueueUrl=queue_url)


def of_rule(probe: Probe, name: str) -> Callable[[], list[dict[str, Any]]]:
    """The probe's events that the rule ``name`` made (the stack is shared with other tests)."""
    return lambda: [event for event in probe.drain() if event["detail"].get("system_id") == f"rule/{name}"]


def schedules(stack: LocalStack) -> list[str]:
    return [schedule["Name"] for schedule in stack.client("scheduler").list_schedules()["Schedules"]]


def test_a_oneshot_timer_rule_puts_its_event_on_the_bus_when_due(
    stack: LocalStack, rules: list[str], timer_probe: Probe
) -> None:
    # GIVEN a timer.oneshot rule due in 8 s (whole seconds, as at() takes them)
    due = int(time.time()) + 8
    create_rule(
        stack,
        rules,
        {"name": "local-once", "action": "log", "match": {"type": "timer.oneshot", "object": str(due * 1000)}},
    )
    assert "local-once" in schedules(stack)
    target = stack.client("scheduler").get_schedule(Name="local-once", GroupName="correlator")["Target"]
    assert re.fullmatch(r"arn:aws:iam::123456789012:role/correlator-TimerSchedulerRole", target["RoleArn"])

    # WHEN the time comes
    seen: list[dict[str, Any]] = wait_for(of_rule(timer_probe, "local-once"), due - time.time() + 5, "it never came")
    arrived = time.time()

    # THEN exactly one timer event is on the bus, not before its time, and its schedule is gone
    assert len(seen) == 1, seen
    [event] = seen
    assert (event["detail-type"], event["detail"]["object"]) == ("timer.oneshot", str(due * 1000))
    assert event["detail"]["system_id"] == "rule/local-once"
    assert event["detail"]["time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))
    assert arrived >= due
    wait_for(lambda: "local-once" not in schedules(stack), 2, "the fired one-shot schedule was not deleted")
    time.sleep(1.5)
    assert of_rule(timer_probe, "local-once")() == []


def test_a_periodic_timer_rule_fires_at_once_and_a_disabled_one_does_not(
    stack: LocalStack, rules: list[str], timer_probe: Probe
) -> None:
    # GIVEN a periodic timer rule every 60 minutes, and a disabled one
    create_rule(
        stack, rules, {"name": "local-hourly", "action": "log", "match": {"type": "timer.periodic", "object": "60"}}
    )
    create_rule(
        stack,
        rules,
        {"name": "local-off", "action": "log", "enabled": False, "match": {"type": "timer.periodic", "object": "1"}},
    )

    # WHEN / THEN the enabled one fires as soon as it is created (a rate schedule without StartDate)
    hourly, off = of_rule(timer_probe, "local-hourly"), of_rule(timer_probe, "local-off")
    seen = wait_for(hourly, 5, "the periodic timer did not fire")
    assert len(seen) == 1, seen
    assert (seen[0]["detail-type"], seen[0]["detail"]["object"]) == ("timer.periodic", "60")
    time.sleep(1.5)
    assert hourly() == []
    assert off() == []
