"""local.scheduler: the schedules moto's Scheduler holds fire like EventBridge Scheduler's, on a controlled clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_compat
from local.scheduler import LocalScheduler, delete_moto_schedule, moto_scheduled_rules, moto_schedules

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler"


@dataclass
class Clock:
    # a little ahead of the wall clock, which dates the schedules moto creates
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    scheduler: Any
    sqs: Any
    events: Any
    clock: Clock
    runner: LocalScheduler

    def queue(self, name: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def drain(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            for message in batch:
                messages.append(message)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def bus_to_queue(self, name: str) -> tuple[str, str]:
        """A bus whose every event goes to a queue: (bus ARN, queue URL)."""
        bus_arn = self.events.create_event_bus(Name=name)["EventBusArn"]
        url, queue_arn = self.queue(f"{name}-seen")
        self.events.put_rule(Name="all", EventBusName=name, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        self.events.put_targets(Rule="all", EventBusName=name, Targets=[{"Id": "q", "Arn": queue_arn}])
        return bus_arn, url

    def schedule(self, name: str, expression: str, target: dict[str, Any], **extra: Any) -> None:
        self.scheduler.create_schedule(
            Name=name,
            ScheduleExpression=expression,
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"RoleArn": ROLE, **target},
            **extra,
        )


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        clock = Clock()
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        routed: dict[str, str] = {}
        runner = LocalScheduler(
            moto_schedules(ACCOUNT, REGION),
            delete_moto_schedule(ACCOUNT, REGION),
            events,
            sqs,
            routed.get,
            clock,
            rules=moto_scheduled_rules(ACCOUNT, REGION),
        )
        world = World(boto3.client("scheduler", region_name=REGION), sqs, events, clock, runner)
        runner.route = routed.get
        world.routed = routed  # type: ignore[attr-defined]
        yield world


def wall(moment: datetime, zone: str = "UTC") -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_one_time_schedule_puts_its_event_on_the_bus_at_its_time_and_is_deleted(world: World) -> None:
    # GIVEN an at() schedule 30 s ahead, in Kolkata time, targeting a bus like a timer rule does
    bus_arn, seen = world.bus_to_queue("timers")
    due = world.clock.now + timedelta(seconds=30)
    detail = {"time": "<aws.scheduler.scheduled-time>", "id": "<aws.scheduler.execution-id>", "type": "timer.oneshot"}
    world.schedule(
        "once",
        f"at({wall(due, 'Asia/Kolkata')})",
        {
            "Arn": bus_arn,
            "Input": json.dumps(detail),
            "EventBridgeParameters": {"Source": "correlator.internal", "DetailType": "timer.oneshot"},
        },
        ScheduleExpressionTimezone="Asia/Kolkata",
        ActionAfterCompletion="DELETE",
    )

    # WHEN the scheduler looks before and at the due time
    world.runner.tick()
    world.clock.advance(seconds=29)
    world.runner.tick()
    early = world.drain(seen)
    world.clock.advance(seconds=1)
    world.runner.tick()

    # THEN the event arrives once, at its time, with the context attributes filled in; the schedule is gone
    assert early == []
    [message] = world.drain(seen)
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"]) == ("correlator.internal", "timer.oneshot")
    assert event["detail"]["time"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(event["detail"]["id"]) == 36
    assert event["resources"] == [f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/once"]
    assert world.scheduler.list_schedules()["Schedules"] == []
    world.clock.advance(minutes=5)
    world.runner.tick()
    assert world.drain(seen) == []


def test_a_rate_schedule_fires_at_once_then_every_period(world: World) -> None:
    # GIVEN a rate(2 minutes) schedule sending to a queue
    url, arn = world.queue("ticks")
    world.schedule("ticker", "rate(2 minutes)", {"Arn": arn, "Input": '{"n": "<aws.scheduler.attempt-number>"}'})

    # WHEN the scheduler looks every 30 s for 5 minutes
    bodies: list[str] = []
    for _ in range(10):
        world.runner.tick()
        bodies += [message["Body"] for message in world.drain(url)]
        world.clock.advance(seconds=30)

    # THEN it fired at once, after 2 and after 4 minutes
    assert bodies == ['{"n": "1"}'] * 3


def test_a_cron_schedule_fires_in_its_time_zone_within_start_and_end_dates(world: World) -> None:
    # GIVEN every minute from 10:00 to 10:02 Paris time on a day of the clock, within [StartDate, EndDate]
    url, arn = world.queue("cron")
    world.clock.now = datetime(2026, 12, 1, 8, 59, 30, tzinfo=UTC)  # 09:59:30 in Paris (UTC+1)
    world.schedule(
        "paris",
        "cron(0-2 10 * * ? *)",
        {"Arn": arn, "Input": "<aws.scheduler.scheduled-time>"},
        ScheduleExpressionTimezone="Europe/Paris",
        EndDate=datetime(2026, 12, 1, 9, 1, 30, tzinfo=UTC),
    )

    # WHEN the scheduler looks every 15 s for 4 minutes
    bodies: list[str] = []
    for _ in range(16):
        world.runner.tick()
        bodies += [message["Body"] for message in world.drain(url)]
        world.clock.advance(seconds=15)

    # THEN 10:00 and 10:01 Paris time fired; 10:02 is after EndDate
    assert bodies == ["2026-12-01T09:00:00Z", "2026-12-01T09:01:00Z"]


def test_a_disabled_schedule_does_not_fire(world: World) -> None:
    url, arn = world.queue("off")
    world.schedule("off", "rate(1 minute)", {"Arn": arn, "Input": "x"}, State="DISABLED")
    for _ in range(3):
        world.runner.tick()
        world.clock.advance(minutes=1)
    assert world.drain(url) == []


def test_a_function_target_goes_to_the_functions_local_queue(world: World) -> None:
    # GIVEN a schedule whose target is a function the local stack routes to a queue
    url, arn = world.queue("function-queue")
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"
    world.routed[function] = arn  # type: ignore[attr-defined]
    world.schedule("call", "rate(1 hour)", {"Arn": function, "Input": '{"hello": "fn"}'})

    # WHEN
    world.runner.tick()

    # THEN
    assert [json.loads(message["Body"]) for message in world.drain(url)] == [{"hello": "fn"}]


def test_a_target_that_keeps_failing_goes_to_the_dead_letter_queue(world: World) -> None:
    # GIVEN a schedule whose target bus does not exist, with a dead-letter queue
    url, arn = world.queue("schedule-dlq")
    missing_bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/missing"
    world.schedule(
        "broken",
        "rate(1 hour)",
        {"Arn": missing_bus, "Input": '{"k": 1}', "DeadLetterConfig": {"Arn": arn}},
    )

    # WHEN
    world.runner.tick()

    # THEN the input is in the dead-letter queue with AWS's attributes
    [message] = world.drain(url)
    assert json.loads(message["Body"]) == {"k": 1}
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["TARGET_ARN"] == missing_bus
    assert set(attributes) == {"ERROR_CODE", "ERROR_MESSAGE", "EXECUTION_ID", "TARGET_ARN"}


def test_an_expression_that_cannot_run_is_skipped_and_the_rest_still_fire(world: World) -> None:
    url, arn = world.queue("fine")
    world.schedule("bad", "cron(0 12 * * * *)", {"Arn": arn, "Input": "bad"})
    world.schedule("good", "rate(1 hour)", {"Arn": arn, "Input": "good"})
    world.runner.tick()
    assert [message["Body"] for message in world.drain(url)] == ["good"]


def test_the_scheduler_thread_runs_and_stops(world: World) -> None:
    # GIVEN a running scheduler (real ticks) and a schedule due now
    url, arn = world.queue("live")
    world.runner.clock = lambda: datetime.now(UTC) + timedelta(seconds=10)
    world.runner.start()
    world.schedule("live", "rate(1 hour)", {"Arn": arn, "Input": "tick"})

    # WHEN it has had time for a few ticks, and is stopped
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    bodies: list[str] = []
    while not bodies and datetime.now(UTC) < deadline:
        bodies = [message["Body"] for message in world.drain(url)]
    world.runner.stop()

    # THEN it fired and its thread ended
    assert bodies == ["tick"]
    assert not world.runner.is_alive()


# -- EventBridge rules with a ScheduleExpression (scheduled rules, not Scheduler) ---------------------


def test_a_scheduled_rule_sends_eventbridges_scheduled_event_every_period(world: World) -> None:
    # GIVEN a rate(5 minutes) rule on the default bus with a queue target
    url, arn = world.queue("every-five")
    rule_arn = world.events.put_rule(Name="every-five", ScheduleExpression="rate(5 minutes)")["RuleArn"]
    world.events.put_targets(Rule="every-five", Targets=[{"Id": "q", "Arn": arn}])

    # WHEN the scheduler looks every minute for 11 minutes (it first sees the rule at the first look)
    created = world.clock.now
    events: list[dict[str, Any]] = []
    for _ in range(12):
        world.runner.tick()
        events += [json.loads(message["Body"]) for message in world.drain(url)]
        world.clock.advance(minutes=1)

    # THEN it fired one and two periods after its creation, with EventBridge's scheduled-event shape
    assert [event["time"] for event in events] == [
        (created + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ") for minutes in (5, 10)
    ]
    first = events[0]
    assert (first["source"], first["detail-type"], first["detail"]) == ("aws.events", "Scheduled Event", {})
    assert first["resources"] == [rule_arn]
    assert (first["account"], first["region"], first["version"]) == (ACCOUNT, REGION, "0")
    assert events[0]["id"] != events[1]["id"]


def test_a_cron_rule_fires_in_utc_through_its_input_transformer(world: World) -> None:
    # GIVEN a rule at minute 30 of every hour (UTC) whose target reshapes the event
    url, arn = world.queue("half-past")
    world.clock.now = datetime(2026, 12, 1, 10, 29, 0, tzinfo=UTC)
    rule_arn = world.events.put_rule(Name="half-past", ScheduleExpression="cron(30 * * * ? *)")["RuleArn"]
    transformer = {
        "InputPathsMap": {"rule": "$.resources[0]", "source": "$.source"},
        "InputTemplate": '{"rule": "<rule>", "from": "<source>"}',
    }
    world.events.put_targets(Rule="half-past", Targets=[{"Id": "q", "Arn": arn, "InputTransformer": transformer}])

    # WHEN the scheduler looks every 20 s for 2 minutes
    bodies: list[tuple[datetime, Any]] = []
    for _ in range(6):
        world.runner.tick()
        bodies += [(world.clock.now, json.loads(message["Body"])) for message in world.drain(url)]
        world.clock.advance(seconds=20)

    # THEN once, at the first look from 10:30 UTC on
    assert bodies == [(datetime(2026, 12, 1, 10, 30, tzinfo=UTC), {"rule": rule_arn, "from": "aws.events"})]


def test_a_scheduled_rules_function_target_goes_to_the_functions_local_queue(world: World) -> None:
    url, arn = world.queue("rule-function-queue")
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"
    moto_compat.route_lambda_targets({function: arn}.get)
    try:
        world.events.put_rule(Name="call-fn", ScheduleExpression="rate(1 minute)")
        world.events.put_targets(
            Rule="call-fn",
            Targets=[{"Id": "fn", "Arn": function}, {"Id": "constant", "Arn": function, "Input": '{"via": "input"}'}],
        )
        world.runner.tick()
        world.clock.advance(minutes=1)
        world.runner.tick()
    finally:
        moto_compat.route_lambda_targets(None)
    # the whole scheduled event to one target, the target's constant Input to the other
    bodies = sorted((json.loads(message["Body"]) for message in world.drain(url)), key=len)
    assert bodies[0] == {"via": "input"}
    assert bodies[1]["detail-type"] == "Scheduled Event"
    assert len(bodies) == 2


def test_disabled_and_pattern_rules_are_not_fired_by_the_clock(world: World) -> None:
    # GIVEN a disabled scheduled rule and a pattern rule
    url, arn = world.queue("never")
    world.events.put_rule(Name="off", ScheduleExpression="rate(1 minute)", State="DISABLED")
    world.events.put_rule(Name="pattern", EventPattern=json.dumps({"source": ["x"]}))
    for name in ("off", "pattern"):
        world.events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])

    # WHEN the scheduler looks for 3 minutes
    for _ in range(4):
        world.runner.tick()
        world.clock.advance(minutes=1)

    # THEN nothing was sent
    assert world.drain(url) == []
