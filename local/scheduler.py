"""EventBridge Scheduler on the local stack: the schedules moto holds fire, as AWS's Scheduler fires them.

moto stores schedules and never runs them. ``LocalScheduler`` is a thread that wakes every
``TICK`` seconds, reads every schedule of moto's Scheduler (whoever created it: the template, the
rules API, ``aws scheduler create-schedule``), and invokes each due target:

* an event bus: ``PutEvents`` with the target's ``Input`` as the detail, and the
  ``EventBridgeParameters`` source and detail type;
* an SQS queue: ``SendMessage`` of the ``Input`` (``SqsParameters.MessageGroupId`` kept);
* a function of the template: its local queue (``local.delivery``), as an asynchronous invocation.

The context attributes ``<aws.scheduler.schedule-arn>``, ``<aws.scheduler.scheduled-time>``,
``<aws.scheduler.execution-id>`` and ``<aws.scheduler.attempt-number>`` are substituted in the
``Input``. ``at()`` fires once (and the schedule is deleted when ``ActionAfterCompletion`` is
``DELETE``), ``rate()`` from StartDate or else at once and then every period, ``cron()`` in
``ScheduleExpressionTimezone``, never after EndDate. DISABLED schedules do not fire.

Differences from AWS: a flexible time window fires at its start (a time AWS may also choose);
a failed invocation is retried twice at once, then the input goes to the target's dead-letter
queue with AWS's ERROR_CODE/ERROR_MESSAGE/EXECUTION_ID/TARGET_ARN attributes (AWS retries with
back-off for up to MaximumEventAgeInSeconds); a recurring schedule does not catch up on times
missed while the stack was stopped; an ``at()`` schedule due while the stack was stopped fires on
start if it is still waiting to be deleted and younger than MaximumEventAgeInSeconds.

The same thread fires EventBridge *rules* that have a ``ScheduleExpression`` (scheduled rules, the
older feature): ``rate()`` and ``cron()`` in UTC, each due time delivered to the rule's targets
(through their InputTransformer; function targets through their local queue) as EventBridge's
scheduled event: ``source: aws.events``, ``detail-type: Scheduled Event``, the rule's ARN in
``resources``, ``detail: {}``. A ``rate()`` rule first fires one period after the scheduler first
sees it (its creation, or the stack's start for a rule restored from the state directory).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local import moto_compat
from local.schedule_expressions import At, Cron, Rate, ScheduleExpressionError, Timing, parse_expression
from local.state import GATE

log = logging.getLogger("local.scheduler")

TICK = 0.5  # seconds between looks at the schedules: a due schedule fires within about a second
ATTEMPTS = 3
FRESH = timedelta(seconds=60)  # a schedule created this recently has not missed anything yet


def _take_due(plan: Plan, state: str, now: datetime) -> datetime | None:
    """The time ``plan`` is due to fire now (None when it is not); the plan moves on to its next time.

    A schedule or rule that missed several times fires once: the next time is looked for after now.
    """
    if state != "ENABLED" or plan.expression is None or plan.due is None or plan.due > now:
        return None
    due = plan.due
    plan.due = plan.expression.next_after(max(due, now), plan.timing)
    return due


def _moment(value: Any) -> datetime | None:
    """StartDate/EndDate/CreationDate as moto keeps them (epoch seconds or ISO text) -> aware UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        return datetime.fromtimestamp(float(value), UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Plan:
    """What the scheduler knows about one schedule: its parsed timing and its next due time."""

    fingerprint: tuple[Any, ...]
    expression: At | Rate | Cron | None
    timing: Timing
    due: datetime | None


def moto_schedules(account_id: str, region: str) -> Callable[[], list[Any]]:
    """The schedules of moto's in-process Scheduler backend (read directly: no API call per tick)."""

    def read() -> list[Any]:
        from moto.scheduler.models import scheduler_backends

        backend = scheduler_backends[account_id][region]
        return [
            schedule for group in list(backend.schedule_groups.values()) for schedule in list(group.schedules.values())
        ]

    return read


def moto_scheduled_rules(account_id: str, region: str) -> Callable[[], list[Any]]:
    """The EventBridge rules of moto's in-process backend that have a ScheduleExpression (every bus)."""

    def read() -> list[Any]:
        from moto.events.models import events_backends

        backend = events_backends[account_id][region]
        return [
            rule
            for bus in list(backend.event_buses.values())
            for rule in list(bus.rules.values())
            if rule.scheduled_expression
        ]

    return read


def scheduled_event(rule: Any, due: datetime) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's targets at ``due``, as moto's rules take events
    (``time`` in epoch seconds, turned into ISO text on delivery, and moto's ``ingestion-time``)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": due.timestamp(),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
        "ingestion-time": time.time(),
    }


def delete_moto_schedule(account_id: str, region: str) -> Callable[[Any], None]:
    def delete(schedule: Any) -> None:
        from moto.scheduler.models import scheduler_backends

        group = scheduler_backends[account_id][region].schedule_groups.get(schedule.group_name)
        if group is not None:
            group.schedules.pop(schedule.name, None)

    return delete


class LocalScheduler(threading.Thread):
    """Fires due schedules until ``stop`` is called."""

    def __init__(
        self,
        schedules: Callable[[], Iterable[Any]],
        delete: Callable[[Any], None],
        events: Any,
        sqs: Any,
        route: Callable[[str], str | None] = lambda arn: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rules: Callable[[], Iterable[Any]] = list,
    ) -> None:
        super().__init__(name="scheduler", daemon=True)
        self.schedules = schedules
        self.delete = delete
        self.events = events
        self.sqs = sqs
        self.route = route
        self.clock = clock
        self.rules = rules
        self.plans: dict[str, Plan] = {}
        self.fired = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(TICK):
            try:
                self.tick()
            except Exception:
                log.exception("the scheduler failed; carrying on")

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)

    # -- one look at the schedules --------------------------------------------------------------
    def tick(self) -> None:
        now = self.clock()
        seen: set[str] = set()
        for schedule in self.schedules():
            seen.add(schedule.arn)
            plan = self._plan(schedule, now)
            if (due := _take_due(plan, schedule.state, now)) is not None:
                self._fire(schedule, due)
                if isinstance(plan.expression, At) and schedule.action_after_completion == "DELETE":
                    self.delete(schedule)
                    seen.discard(schedule.arn)
        for rule in self.rules():
            seen.add(rule.arn)
            if (due := _take_due(self._rule_plan(rule, now), rule.state, now)) is not None:
                self._fire_rule(rule, due)
        for arn in set(self.plans) - seen:
            del self.plans[arn]

    def _plan(self, schedule: Any, now: datetime) -> Plan:
        fingerprint = (
            schedule.schedule_expression,
            schedule.schedule_expression_timezone,
            schedule.start_date,
            schedule.end_date,
            schedule.last_modified_date,
        )
        plan = self.plans.get(schedule.arn)
        if plan is not None and plan.fingerprint == fingerprint:
            return plan
        created = _moment(getattr(schedule, "last_modified_date", None)) or now
        try:
            timing = Timing.of(
                schedule.schedule_expression_timezone, _moment(schedule.start_date), _moment(schedule.end_date)
            )
            expression = parse_expression(schedule.schedule_expression, created)
        except (ScheduleExpressionError, ValueError) as error:
            log.warning("schedule %s is not fired: %s", schedule.name, error)
            plan = Plan(fingerprint, None, Timing(), None)
        else:
            plan = Plan(
                fingerprint,
                expression,
                timing,
                expression.next_after(self._since(schedule, expression, created, now), timing),
            )
        self.plans[schedule.arn] = plan
        return plan

    def _rule_plan(self, rule: Any, now: datetime) -> Plan:
        """A scheduled rule's plan: rate() from when it is first seen, cron() in UTC (rules have no time zone)."""
        fingerprint = (rule.scheduled_expression,)
        plan = self.plans.get(rule.arn)
        if plan is not None and plan.fingerprint == fingerprint:
            return plan
        try:
            expression = parse_expression(rule.scheduled_expression, now)
            if isinstance(expression, At):
                raise ScheduleExpressionError("at() is for Scheduler schedules, not for rules")
        except ScheduleExpressionError as error:
            log.warning("rule %s is not fired: %s", rule.name, error)
            plan = Plan(fingerprint, None, Timing(), None)
        else:
            plan = Plan(fingerprint, expression, Timing(), expression.next_after(now, Timing()))
        self.plans[rule.arn] = plan
        return plan

    def _fire_rule(self, rule: Any, due: datetime) -> None:
        try:
            with GATE.request():  # in-process, like a request to moto's server (local.state)
                moto_compat.send_scheduled(rule, scheduled_event(rule, due))
        except Exception:
            log.exception("rule %s: the scheduled event due %s could not be delivered", rule.name, iso(due))
            return
        self.fired += 1
        log.info("rule %s fired (due %s, %.1f s late)", rule.name, iso(due), (self.clock() - due).total_seconds())

    @staticmethod
    def _since(schedule: Any, expression: At | Rate | Cron, created: datetime, now: datetime) -> datetime:
        """The time after which a newly seen schedule's first fire is looked for."""
        if isinstance(expression, At) and schedule.action_after_completion == "DELETE":
            max_age = int((schedule.target.get("RetryPolicy") or {}).get("MaximumEventAgeInSeconds", 86_400))
            return now - timedelta(seconds=max_age)  # still here, so not fired yet (e.g. due while stopped)
        if now - FRESH <= created <= now:
            return created - timedelta(microseconds=1)  # a new rate() fires at once
        return now

    # -- invoking the target ----------------------------------------------------------------------
    def _fire(self, schedule: Any, due: datetime) -> None:
        target = dict(schedule.target)
        execution_id = str(uuid.uuid4())
        error: Exception | None = None
        for attempt in range(1, ATTEMPTS + 1):
            text = _substitute(target.get("Input", ""), schedule.arn, due, execution_id, attempt)
            try:
                self._invoke(schedule, target, text, due)
            except Exception as failure:
                error = failure
                log.warning("schedule %s: attempt %d failed: %s", schedule.name, attempt, failure)
                time.sleep(0.1 * attempt)
                continue
            self.fired += 1
            late = (self.clock() - due).total_seconds()
            log.info(
                "schedule %s fired (%s, due %s, %.1f s late)",
                schedule.name,
                target["Arn"].split(":")[2],
                iso(due),
                late,
            )
            return
        self._dead_letter(schedule, target, execution_id, due, error)

    def _invoke(self, schedule: Any, target: dict[str, Any], text: str, due: datetime) -> None:
        arn = str(target["Arn"])
        service = arn.split(":")[2]
        if service == "events":
            parameters = target.get("EventBridgeParameters") or {}
            response = self.events.put_events(
                Entries=[
                    {
                        "EventBusName": arn,
                        "Source": parameters.get("Source", "aws.scheduler"),
                        "DetailType": parameters.get("DetailType", "Scheduled Event"),
                        "Detail": text or "{}",
                        "Resources": [schedule.arn],
                        "Time": due,
                    }
                ]
            )
            if response.get("FailedEntryCount"):
                entry = response["Entries"][0]
                raise RuntimeError(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
            return
        queue_arn = self.route(arn) if service == "lambda" else arn
        if queue_arn is None or queue_arn.split(":")[2] != "sqs":
            raise RuntimeError(
                f"target {arn} is not supported locally (event buses, SQS queues and template functions are)"
            )
        self._send(queue_arn, text, (target.get("SqsParameters") or {}).get("MessageGroupId"))

    def _send(
        self, queue_arn: str, body: str, group: str | None = None, attributes: dict[str, Any] | None = None
    ) -> None:
        _, _, _, _, account, name = queue_arn.split(":", 5)
        url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": body or "{}"}
        if group:
            kwargs["MessageGroupId"] = group
        if attributes:
            kwargs["MessageAttributes"] = attributes
        self.sqs.send_message(**kwargs)

    def _dead_letter(
        self, schedule: Any, target: dict[str, Any], execution_id: str, due: datetime, error: Exception | None
    ) -> None:
        dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
        log.error(
            "schedule %s: giving up on the invocation due %s (%s)%s",
            schedule.name,
            iso(due),
            error,
            f"; to {dead_letter}" if dead_letter else "",
        )
        if not dead_letter:
            return
        attributes = {
            "ERROR_CODE": str(type(error).__name__),
            "ERROR_MESSAGE": str(error)[:1000],
            "EXECUTION_ID": execution_id,
            "TARGET_ARN": str(target["Arn"]),
        }
        body = _substitute(target.get("Input", ""), schedule.arn, due, execution_id, ATTEMPTS)
        try:
            self._send(
                dead_letter,
                body,
                attributes={key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()},
            )
        except Exception:
            log.exception("schedule %s: the dead-letter queue refused the input too", schedule.name)


def _substitute(text: str, schedule_arn: str, due: datetime, execution_id: str, attempt: int) -> str:
    values = {
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.scheduled-time>": iso(due),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, json.dumps(value)[1:-1])
    return text
