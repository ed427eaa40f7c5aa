"""Compile a ``Rule`` to one EventBridge rule with one target, and read it back.

The EventBridge rule *is* the store: its pattern does the matching (with the loop guard
``detail.hops < MaxHops`` in every pattern), its state is ``enabled``, and the target's
InputTransformer carries the rule JSON, so every action receives ``{"rule", "event"}`` and the
API can read the rule back from EventBridge alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from correlator.envelope import SOURCE_EXTERNAL, SOURCE_INTERNAL
from correlator.rules import TIMER_ONESHOT, Rule, RuleView, TimerSchedule, canonical_action
from correlator.schedules import is_cron

EVENT_PLACEHOLDER = "<aws.events.event.json>"
TARGET_ID = "action"
MAX_PATTERN_CHARS = 2048  # EventBridge's default quota on an event pattern (4096 on request)
MAX_INPUT_TEMPLATE_CHARS = 8192  # EventBridge's limit on InputTemplate
TIMER_SYSTEM_PREFIX = "rule/"
# How long EventBridge (and Scheduler) keep trying a target: its maxima. template.yaml's rules say
# the same (a test checks it).
TARGET_RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86_400}
# detail keys an extra pattern may not constrain: they belong to match (or the hop guard).
_MATCH_KEYS = (
    "type",
    "external",
    "object",
    "info",
    "subject",
    "schema",
    "level",
    "kind",
    "dataset",
    "hops",
    "system_id",
)


class RuleCompileError(ValueError):
    """The rule cannot be expressed on EventBridge; ``field`` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a compiled rule points at in this stack."""

    bus_name: str
    max_hops: int
    targets: Mapping[str, str]  # canonical action -> queue or function ARN
    dead_letter_arn: str


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """Where timer rules put their schedules, and the role Scheduler uses to reach the bus."""

    group_name: str
    role_arn: str
    bus_arn: str


@dataclass(frozen=True, slots=True)
class CompiledRule:
    put_rule: dict[str, Any]
    put_targets: dict[str, Any]


def event_pattern(rule: Rule, max_hops: int) -> dict[str, Any]:
    """The EventBridge pattern of ``rule`` (Personium matching + the hop guard)."""
    match = rule.match
    sources = {True: [SOURCE_EXTERNAL], False: [SOURCE_INTERNAL], None: [SOURCE_EXTERNAL, SOURCE_INTERNAL]}
    external = False if match.timer else match.external
    pattern: dict[str, Any] = {"source": sources[external]}
    if match.type is not None:
        if match.timer:
            pattern["detail-type"] = [match.type]
        elif match.type.startswith("."):
            pattern["detail-type"] = [{"suffix": match.type}]
        else:
            pattern["detail-type"] = [{"prefix": match.type}]
    detail: dict[str, Any] = {}
    if match.timer:
        detail["system_id"] = [TIMER_SYSTEM_PREFIX + rule.name]
    else:
        if match.object is not None:
            detail["object"] = [{"prefix": match.object}]
        if match.info is not None:
            detail["info"] = [{"prefix": match.info}]
    if match.subject is not None:
        detail["subject"] = [match.subject]
    if match.schema_ is not None:
        detail["schema"] = [match.schema_]
    if match.level:
        detail["level"] = [level.value for level in match.level]
    if match.kind is not None:
        detail["kind"] = [match.kind.value]
    if match.dataset is not None:
        detail["dataset"] = [match.dataset]
    detail["hops"] = [{"numeric": ["<", max_hops]}]
    for key, value in (rule.pattern or {}).items():
        if key in detail or key in _MATCH_KEYS:
            raise RuleCompileError(f"pattern.{key}", f"pattern.{key} overlaps a match field or the hop guard")
        detail[key] = value
    pattern["detail"] = detail
    if len(json.dumps(pattern, separators=(",", ":"))) > MAX_PATTERN_CHARS:
        raise RuleCompileError("pattern", f"the compiled event pattern exceeds {MAX_PATTERN_CHARS} characters")
    return pattern


def input_template(rule: Rule) -> str:
    """``{"rule": <rule JSON>, "event": <aws.events.event.json>}`` with ``<``/``>`` escaped in the rule."""
    rule_json = json.dumps(rule.to_json(), ensure_ascii=False, separators=(",", ":"))
    # Escaped so that nothing in the rule can read as an InputTransformer placeholder.
    rule_json = rule_json.replace("<", "\\u003c").replace(">", "\\u003e")
    template = f'{{"rule":{rule_json},"event":{EVENT_PLACEHOLDER}}}'
    if len(template) > MAX_INPUT_TEMPLATE_CHARS:
        raise RuleCompileError("config", "the rule is too large to travel with its events (8192 characters)")
    return template


def compile_rule(rule: Rule, deployment: Deployment) -> CompiledRule:
    """The ``put_rule`` and ``put_targets`` arguments for ``rule`` in ``deployment``."""
    action = canonical_action(rule.action)
    target_arn = deployment.targets.get(action)
    if target_arn is None:
        raise RuleCompileError("action", f"action {rule.action!r} is not deployed in this stack")
    put_rule: dict[str, Any] = {
        "Name": rule.name,
        "EventBusName": deployment.bus_name,
        "EventPattern": json.dumps(event_pattern(rule, deployment.max_hops), separators=(",", ":")),
        "State": "ENABLED" if rule.enabled else "DISABLED",
        "Description": rule.description,
    }
    target: dict[str, Any] = {
        "Id": TARGET_ID,
        "Arn": target_arn,
        "InputTransformer": {"InputPathsMap": {}, "InputTemplate": input_template(rule)},
        "RetryPolicy": dict(TARGET_RETRY_POLICY),
        "DeadLetterConfig": {"Arn": deployment.dead_letter_arn},
    }
    return CompiledRule(put_rule, {"Rule": rule.name, "EventBusName": deployment.bus_name, "Targets": [target]})


def compile_schedule(
    rule: Rule, timers: TimerSettings, dead_letter_arn: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """The ``create_schedule`` / ``update_schedule`` arguments of a timer rule: a schedule putting its event.

    ``RuleCompileError`` for a one-shot time that is not in the future.
    """
    timer = rule.match.timer
    assert timer is not None  # only timer rules have schedules
    value = rule.match.object or "0"
    if timer == TIMER_ONESHOT:
        at = datetime.fromtimestamp(int(value) / 1000, UTC)
        if at <= (now or datetime.now(UTC)):
            raise RuleCompileError("match.object", f"a timer.oneshot rule must fire in the future: {at.isoformat()}")
        expression = f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})"
    elif is_cron(value):
        expression = value  # validated by the rule model (correlator.schedules)
    else:
        expression = f"rate({value} minute{'s' if int(value) > 1 else ''})"
    schedule = rule.schedule or TimerSchedule()
    if schedule.end_date is not None and schedule.end_date <= (now or datetime.now(UTC)):
        raise RuleCompileError("schedule.end_date", f"a timer's schedule must end in the future: {schedule.end_date}")
    detail = {
        "id": "<aws.scheduler.execution-id>",
        "time": "<aws.scheduler.scheduled-time>",
        "external": False,
        "level": "INFO",
        "kind": "standard",
        "type": timer,
        "object": rule.match.object,
        "info": rule.match.info,
        "system_id": TIMER_SYSTEM_PREFIX + rule.name,
        "subject": rule.match.subject,
        "hops": 0,
    }
    return {
        "Name": rule.name,
        "GroupName": timers.group_name,
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": schedule.timezone,
        **({"StartDate": schedule.start_date} if schedule.start_date else {}),
        **({"EndDate": schedule.end_date} if schedule.end_date else {}),
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED" if rule.enabled else "DISABLED",
        "Description": rule.description,
        # A one-shot schedule removes itself once fired; the rule stays until deleted.
        "ActionAfterCompletion": "DELETE" if timer == TIMER_ONESHOT else "NONE",
        "Target": {
            "Arn": timers.bus_arn,
            "RoleArn": timers.role_arn,
            "Input": json.dumps({key: value for key, value in detail.items() if value is not None}),
            "EventBridgeParameters": {"DetailType": timer, "Source": SOURCE_INTERNAL},
            "RetryPolicy": dict(TARGET_RETRY_POLICY),
            "DeadLetterConfig": {"Arn": dead_letter_arn},
        },
    }


def stored_rule(description: Mapping[str, Any], targets: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The rule JSON an EventBridge rule carries in its target, unvalidated; None if it is not ours.

    The EventBridge rule's name and state are authoritative over the JSON's.
    """
    for target in targets:
        template = (target.get("InputTransformer") or {}).get("InputTemplate")
        if not template or EVENT_PLACEHOLDER not in template:
            continue
        try:
            message = json.loads(template.replace(EVENT_PLACEHOLDER, "null"))
        except ValueError:
            continue
        data = message.get("rule") if isinstance(message, dict) else None
        if isinstance(data, dict):
            return {
                **data,
                "name": description.get("Name", data.get("name")),
                "enabled": description.get("State") == "ENABLED",
            }
    return None


def rule_from_eventbridge(description: Mapping[str, Any], targets: Sequence[Mapping[str, Any]]) -> RuleView | None:
    """Read a rule back from ``DescribeRule`` + ``ListTargetsByRule``; None if it is not ours.

    ``enabled`` comes from the rule's state; ``read_only`` from the rule JSON of template rules.
    Raises pydantic's ``ValidationError`` when the stored rule no longer validates.
    """
    data = stored_rule(description, targets)
    return None if data is None else RuleView.model_validate(data)
