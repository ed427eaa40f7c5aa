"""Rule -> EventBridge rule: golden patterns, the hop guard, the InputTransformer, and reading rules back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlator.compiler import (
    EVENT_PLACEHOLDER,
    MAX_PATTERN_CHARS,
    Deployment,
    RuleCompileError,
    compile_rule,
    event_pattern,
    input_template,
    rule_from_eventbridge,
)
from correlator.rules import TIMER_TYPES, Rule

EXTERNAL = "correlator.external"
INTERNAL = "correlator.internal"
BOTH = [EXTERNAL, INTERNAL]
MAX_HOPS = 3
GUARD = [{"numeric": ["<", MAX_HOPS]}]
BUS = "correlator-test"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:correlator-test-rule-dlq"
LOG_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:correlator-test-log"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:correlator-test-{name}"


EVERY_ACTION: dict[str, str] = {
    "log": LOG_QUEUE_ARN,
    "log.info": LOG_QUEUE_ARN,
    "log.warn": LOG_QUEUE_ARN,
    "log.error": LOG_QUEUE_ARN,
    "csv": "arn:aws:sqs:us-east-1:123456789012:correlator-test-csv",
    "email": function_arn("email"),
    "sms": function_arn("sms"),
    "script": function_arn("script"),
    "relay": function_arn("relay"),
    "relay.event": function_arn("relay"),
    "relay.bus": function_arn("relay"),
}
DEPLOYMENT = Deployment(bus_name=BUS, max_hops=MAX_HOPS, targets=EVERY_ACTION, dead_letter_arn=DLQ_ARN)
# template.yaml's LogEverythingRule, as CloudFormation hands it to EventBridge (">-" folds the lines).
LOG_EVERYTHING_TEMPLATE = (
    '{"rule": {"name": "log-everything", "description": "Write every event to the event log", '
    '"enabled": true, "match": {}, "action": "log", "config": {}, "read_only": true}, "event": <aws.events.event.json>}'
)


def rule_of(match: dict[str, Any] | None = None, **fields: Any) -> Rule:
    return Rule.model_validate({"name": "r1", "action": "log", "match": match or {}, **fields})


def pattern_of(match: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return event_pattern(rule_of(match, **fields), MAX_HOPS)


def read_back(rule: Rule, deployment: Deployment = DEPLOYMENT) -> dict[str, Any] | None:
    """Compile ``rule``, then read it back from what DescribeRule and ListTargetsByRule would answer."""
    compiled = compile_rule(rule, deployment)
    description = {
        "Name": compiled.put_rule["Name"],
        "Arn": f"arn:aws:events:us-east-1:123456789012:rule/{BUS}/{rule.name}",
        "EventPattern": compiled.put_rule["EventPattern"],
        "State": compiled.put_rule["State"],
        "Description": compiled.put_rule["Description"],
        "EventBusName": BUS,
    }
    view = rule_from_eventbridge(description, compiled.put_targets["Targets"])
    return None if view is None else view.to_json()


def outside_placeholder(template: str) -> str:
    return template.replace(EVENT_PLACEHOLDER, "")


# ---- golden patterns: one match field at a time ----


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({}, {"source": BOTH, "detail": {"hops": GUARD}}),
        ({"external": True}, {"source": [EXTERNAL], "detail": {"hops": GUARD}}),
        ({"external": False}, {"source": [INTERNAL], "detail": {"hops": GUARD}}),
        ({"type": "order."}, {"source": BOTH, "detail-type": [{"prefix": "order."}], "detail": {"hops": GUARD}}),
        (
            {"type": "order.created"},
            {"source": BOTH, "detail-type": [{"prefix": "order.created"}], "detail": {"hops": GUARD}},
        ),
        ({"type": ".created"}, {"source": BOTH, "detail-type": [{"suffix": ".created"}], "detail": {"hops": GUARD}}),
        ({"object": "orders/"}, {"source": BOTH, "detail": {"object": [{"prefix": "orders/"}], "hops": GUARD}}),
        ({"info": "payment"}, {"source": BOTH, "detail": {"info": [{"prefix": "payment"}], "hops": GUARD}}),
        ({"subject": "k7ab2cd9ef"}, {"source": BOTH, "detail": {"subject": ["k7ab2cd9ef"], "hops": GUARD}}),
        (
            {"schema": "https://orders.example.com/"},
            {"source": BOTH, "detail": {"schema": ["https://orders.example.com/"], "hops": GUARD}},
        ),
        ({"level": ["ERROR"]}, {"source": BOTH, "detail": {"level": ["ERROR"], "hops": GUARD}}),
        ({"level": ["warn", "Error"]}, {"source": BOTH, "detail": {"level": ["WARN", "ERROR"], "hops": GUARD}}),
        ({"kind": "dataset"}, {"source": BOTH, "detail": {"kind": ["dataset"], "hops": GUARD}}),
        ({"kind": "standard"}, {"source": BOTH, "detail": {"kind": ["standard"], "hops": GUARD}}),
        ({"dataset": "sales"}, {"source": BOTH, "detail": {"dataset": ["sales"], "hops": GUARD}}),
    ],
)
def test_each_match_field_compiles_to_its_pattern(match: dict[str, Any], expected: dict[str, Any]) -> None:
    # GIVEN / WHEN / THEN
    assert pattern_of(match) == expected


def test_every_match_field_together() -> None:
    # GIVEN
    match = {
        "external": True,
        "type": "order.",
        "object": "orders/",
        "info": "payment",
        "subject": "k7ab2cd9ef",
        "schema": "https://orders.example.com/",
        "level": ["WARN", "ERROR"],
        "kind": "dataset",
        "dataset": "sales",
    }

    # WHEN
    pattern = pattern_of(match)

    # THEN
    assert pattern == {
        "source": [EXTERNAL],
        "detail-type": [{"prefix": "order."}],
        "detail": {
            "object": [{"prefix": "orders/"}],
            "info": [{"prefix": "payment"}],
            "subject": ["k7ab2cd9ef"],
            "schema": ["https://orders.example.com/"],
            "level": ["WARN", "ERROR"],
            "kind": ["dataset"],
            "dataset": ["sales"],
            "hops": GUARD,
        },
    }


def test_a_suffix_type_with_internal_events_and_a_level() -> None:
    # GIVEN / WHEN / THEN
    assert pattern_of({"external": False, "type": ".failed", "level": ["ERROR"]}) == {
        "source": [INTERNAL],
        "detail-type": [{"suffix": ".failed"}],
        "detail": {"level": ["ERROR"], "hops": GUARD},
    }


@pytest.mark.parametrize("max_hops", [1, 3, 10])
def test_the_hop_guard_is_the_deployments_max_hops(max_hops: int) -> None:
    # GIVEN / WHEN
    pattern = event_pattern(rule_of({"type": "order."}), max_hops)

    # THEN
    assert pattern["detail"]["hops"] == [{"numeric": ["<", max_hops]}]


# ---- the extra pattern ----


def test_an_extra_pattern_is_anded_into_detail() -> None:
    # GIVEN
    extra = {"payload": {"currency": ["EUR"], "total": [{"numeric": [">", 100]}]}, "summary": [{"exists": True}]}

    # WHEN
    pattern = pattern_of({"type": "order.", "level": ["ERROR"]}, pattern=extra)

    # THEN
    assert pattern == {
        "source": BOTH,
        "detail-type": [{"prefix": "order."}],
        "detail": {
            "level": ["ERROR"],
            "hops": GUARD,
            "payload": {"currency": ["EUR"], "total": [{"numeric": [">", 100]}]},
            "summary": [{"exists": True}],
        },
    }


@pytest.mark.parametrize(
    "key", ["object", "info", "subject", "schema", "level", "kind", "dataset", "hops", "system_id"]
)
def test_an_extra_pattern_may_not_touch_match_fields_or_the_hop_guard(key: str) -> None:
    # GIVEN a rule that does not use the match field itself
    rule = rule_of({"type": "order."}, pattern={key: [{"exists": True}]})

    # WHEN
    with pytest.raises(RuleCompileError) as caught:
        event_pattern(rule, MAX_HOPS)

    # THEN
    assert caught.value.field == f"pattern.{key}"
    with pytest.raises(RuleCompileError):
        compile_rule(rule, DEPLOYMENT)


def test_an_extra_pattern_on_a_used_match_field_is_refused() -> None:
    # GIVEN
    rule = rule_of({"object": "orders/"}, pattern={"object": [{"suffix": "/1"}]})

    # WHEN
    with pytest.raises(RuleCompileError) as caught:
        event_pattern(rule, MAX_HOPS)

    # THEN
    assert caught.value.field == "pattern.object"


def test_a_compiled_pattern_over_the_limit_is_refused() -> None:
    # GIVEN
    rule = rule_of({"type": "order."}, pattern={"payload": {"note": ["x" * MAX_PATTERN_CHARS]}})

    # WHEN
    with pytest.raises(RuleCompileError) as caught:
        compile_rule(rule, DEPLOYMENT)

    # THEN
    assert caught.value.field == "pattern"


def test_large_match_fields_alone_can_overflow_the_pattern() -> None:
    # GIVEN every text field at its maximum: 1024 + 1024 + 2048 + 1024 characters
    match = {"object": "o" * 1024, "info": "i" * 1024, "subject": "s" * 2048, "schema": "c" * 1024}

    # WHEN
    with pytest.raises(RuleCompileError) as caught:
        pattern_of(match)

    # THEN
    assert caught.value.field == "pattern"


def test_a_pattern_just_under_the_limit_compiles() -> None:
    # GIVEN
    note = "x" * (MAX_PATTERN_CHARS - 150)
    rule = rule_of({}, pattern={"payload": {"note": [note]}})

    # WHEN
    compiled = compile_rule(rule, DEPLOYMENT)

    # THEN the limit counts the compact pattern that is sent
    assert len(compiled.put_rule["EventPattern"]) <= MAX_PATTERN_CHARS
    assert json.loads(compiled.put_rule["EventPattern"])["detail"]["payload"] == {"note": [note]}


# ---- timer rules ----


def test_a_periodic_timer_rule_matches_its_own_schedule_events() -> None:
    # GIVEN
    rule = Rule.model_validate(
        {"name": "every-5", "action": "log", "match": {"type": "timer.periodic", "object": "5", "info": "tick"}}
    )

    # WHEN
    pattern = event_pattern(rule, MAX_HOPS)

    # THEN object (the period) and info are the schedule's, not a filter
    assert pattern == {
        "source": [INTERNAL],
        "detail-type": ["timer.periodic"],
        "detail": {"system_id": ["rule/every-5"], "hops": GUARD},
    }


def test_a_oneshot_timer_rule_keeps_exact_match_fields() -> None:
    # GIVEN
    rule = Rule.model_validate(
        {
            "name": "once",
            "action": "log",
            "match": {"type": "timer.oneshot", "object": "1795359159778", "external": False, "subject": "ops"},
        }
    )

    # WHEN
    pattern = event_pattern(rule, MAX_HOPS)

    # THEN
    assert pattern == {
        "source": [INTERNAL],
        "detail-type": ["timer.oneshot"],
        "detail": {"system_id": ["rule/once"], "subject": ["ops"], "hops": GUARD},
    }


# ---- compile_rule ----


def test_compile_rule_gives_the_put_rule_and_put_targets_arguments() -> None:
    # GIVEN
    rule = rule_of({"type": "order.", "level": ["ERROR"]}, description="Errors of orders", action="log.error")

    # WHEN
    compiled = compile_rule(rule, DEPLOYMENT)

    # THEN
    assert compiled.put_rule == {
        "Name": "r1",
        "EventBusName": BUS,
        "EventPattern": json.dumps(
            {
                "source": BOTH,
                "detail-type": [{"prefix": "order."}],
                "detail": {"level": ["ERROR"], "hops": GUARD},
            },
            separators=(",", ":"),
        ),
        "State": "ENABLED",
        "Description": "Errors of orders",
    }
    assert compiled.put_targets == {
        "Rule": "r1",
        "EventBusName": BUS,
        "Targets": [
            {
                "Id": "action",
                "Arn": LOG_QUEUE_ARN,
                "InputTransformer": {"InputPathsMap": {}, "InputTemplate": input_template(rule)},
                "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86_400},
                "DeadLetterConfig": {"Arn": DLQ_ARN},
            }
        ],
    }


def test_a_disabled_rule_compiles_to_a_disabled_eventbridge_rule() -> None:
    # GIVEN / WHEN
    compiled = compile_rule(rule_of(enabled=False), DEPLOYMENT)

    # THEN
    assert compiled.put_rule["State"] == "DISABLED"


@pytest.mark.parametrize(
    ("action", "config", "target"),
    [
        ("log.warn", {}, LOG_QUEUE_ARN),
        ("exec", {"script": "cleanup_orders"}, function_arn("script")),
        ("script", {"script": "cleanup_orders"}, function_arn("script")),
        ("csv", {}, "arn:aws:sqs:us-east-1:123456789012:correlator-test-csv"),
    ],
)
def test_the_target_is_the_canonical_actions(action: str, config: dict[str, Any], target: str) -> None:
    # GIVEN / WHEN
    compiled = compile_rule(rule_of(action=action, config=config), DEPLOYMENT)

    # THEN
    assert compiled.put_targets["Targets"][0]["Arn"] == target


@pytest.mark.parametrize(
    ("action", "config"),
    [("email", {"to": ["ops@example.com"], "template": "ops-alert"}), ("exec", {"script": "cleanup_orders"})],
)
def test_an_action_that_is_not_deployed_is_refused(action: str, config: dict[str, Any]) -> None:
    # GIVEN a stack with only the log actions
    deployment = Deployment(BUS, MAX_HOPS, {"log": LOG_QUEUE_ARN}, DLQ_ARN)

    # WHEN
    with pytest.raises(RuleCompileError) as caught:
        compile_rule(rule_of(action=action, config=config), deployment)

    # THEN
    assert caught.value.field == "action"


# ---- the InputTransformer ----


def test_the_input_template_carries_the_rule_and_the_event() -> None:
    # GIVEN
    rule = rule_of({"type": "order."}, description="Zürich → ops")

    # WHEN
    template = input_template(rule)

    # THEN
    assert template.startswith('{"rule":')
    assert template.endswith('"event":<aws.events.event.json>}')
    assert template.count(EVENT_PLACEHOLDER) == 1
    message = json.loads(template.replace(EVENT_PLACEHOLDER, "null"))
    assert message == {"rule": rule.to_json(), "event": None}


def test_angle_brackets_in_the_rule_cannot_read_as_placeholders() -> None:
    # GIVEN a description and a config full of placeholder-like text
    rule = Rule.model_validate(
        {
            "name": "r1",
            "description": "<script>alert(1)</script> <aws.events.event.json> <id>",
            "match": {"object": "<aws.events.event.json>", "info": "a>b"},
            "action": "email",
            "config": {
                "to": ["ops@example.com"],
                "subject": "<aws.events.rule-name>",
                "html": "<p>${event.info}</p><aws.events.event.json>",
            },
        }
    )

    # WHEN
    template = input_template(rule)

    # THEN the only placeholder is the event, and the rule survives intact
    assert template.count(EVENT_PLACEHOLDER) == 1
    assert "<" not in outside_placeholder(template)
    assert ">" not in outside_placeholder(template)
    assert "\\u003cscript\\u003e" in template
    assert json.loads(template.replace(EVENT_PLACEHOLDER, "null"))["rule"] == rule.to_json()


def test_a_rule_too_large_to_travel_with_its_events_is_refused() -> None:
    # GIVEN an inline html body of 9000 characters (the InputTemplate limit is 8192)
    rule = Rule.model_validate(
        {
            "name": "r1",
            "action": "email",
            "config": {"to": ["ops@example.com"], "subject": "s", "html": "h" * 9000},
        }
    )

    # WHEN
    with pytest.raises(RuleCompileError) as caught:
        compile_rule(rule, DEPLOYMENT)

    # THEN
    assert caught.value.field == "config"


# ---- reading rules back ----


ROUND_TRIP_RULES: list[dict[str, Any]] = [
    {"name": "r1", "action": "log"},
    {
        "name": "notify-ops-on-error",
        "description": 'Errors <of> "orders" \\ \u2028 done',
        "enabled": False,
        "match": {"external": True, "type": "order.", "level": ["ERROR"], "object": "orders/<1>"},
        "pattern": {"payload": {"currency": ["EUR"]}},
        "action": "log.error",
    },
    {
        "name": "mail",
        "action": "email",
        "config": {"to": ["ops@example.com"], "from": "c@example.com", "template": "t"},
    },
    {"name": "text", "action": "sms", "config": {"to": ["+15555550100"], "body": "<b>${event.type}</b>"}},
    {"name": "rows", "action": "csv", "match": {"kind": "dataset", "dataset": "sales"}, "config": {"columns": ["a"]}},
    {"name": "run", "action": "exec", "config": {"script": "cleanup_orders", "args": {"days": 30, "x": [1, None]}}},
    {"name": "hook", "action": "relay", "config": {"url": "https://hooks.example.com/x", "headers": {"X-A": "<b>"}}},
    {"name": "fwd", "action": "relay.event", "config": {"url": "https://o.example.com/events", "api_key_secret": "k"}},
    {"name": "bus", "action": "relay.bus", "config": {"bus_arn": "arn:aws:events:eu-west-1:123456789012:event-bus/b"}},
    {"name": "every-5", "action": "log", "match": {"type": "timer.periodic", "object": "5", "subject": "ops"}},
    {"name": "once", "action": "log", "match": {"type": "timer.oneshot", "object": "1795359159778"}},
]


@pytest.mark.parametrize("data", ROUND_TRIP_RULES, ids=[str(data["name"]) for data in ROUND_TRIP_RULES])
def test_a_compiled_rule_reads_back_as_the_same_rule(data: dict[str, Any]) -> None:
    # GIVEN
    rule = Rule.model_validate(data)

    # WHEN
    back = read_back(rule)

    # THEN
    assert back == {**rule.to_json(), "read_only": False}


def test_state_and_name_come_from_eventbridge() -> None:
    # GIVEN a rule whose EventBridge rule was disabled and which was renamed outside the API
    compiled = compile_rule(rule_of(), DEPLOYMENT)
    description = {"Name": "renamed", "State": "DISABLED", "EventPattern": compiled.put_rule["EventPattern"]}

    # WHEN
    view = rule_from_eventbridge(description, compiled.put_targets["Targets"])

    # THEN
    assert view is not None
    assert (view.name, view.enabled, view.read_only) == ("renamed", False, False)


def test_the_template_rule_reads_back_read_only() -> None:
    # GIVEN
    description = {"Name": "log-everything", "State": "ENABLED", "EventPattern": json.dumps({"source": BOTH})}
    target = {
        "Id": "log",
        "Arn": LOG_QUEUE_ARN,
        "InputTransformer": {"InputPathsMap": {"id": "$.id"}, "InputTemplate": LOG_EVERYTHING_TEMPLATE},
    }

    # WHEN
    view = rule_from_eventbridge(description, [target])

    # THEN
    assert view is not None
    assert view.to_json() == {
        "name": "log-everything",
        "description": "Write every event to the event log",
        "enabled": True,
        "match": {},
        "action": "log",
        "config": {},
        "read_only": True,
    }


def transformed(template: str) -> dict[str, Any]:
    return {"Id": "t", "Arn": LOG_QUEUE_ARN, "InputTransformer": {"InputPathsMap": {}, "InputTemplate": template}}


@pytest.mark.parametrize(
    "targets",
    [
        [],
        [{"Id": "probe", "Arn": LOG_QUEUE_ARN}],
        [{"Id": "t", "Arn": LOG_QUEUE_ARN, "Input": '{"rule": {"name": "x", "action": "log"}}'}],
        [transformed('{"rule": {"name": "x", "action": "log"}}')],
        [transformed("<aws.events.event.json>")],
        [transformed('{"rule": <aws.events.event.json>')],
        [transformed('{"rule": 1, "event": <aws.events.event.json>}')],
        [transformed('[{"rule": {}}, <aws.events.event.json>]')],
    ],
)
def test_eventbridge_rules_that_are_not_ours_read_back_as_none(targets: list[dict[str, Any]]) -> None:
    # GIVEN / WHEN / THEN
    assert rule_from_eventbridge({"Name": "foreign", "State": "ENABLED"}, targets) is None


def test_our_target_is_found_among_others() -> None:
    # GIVEN
    compiled = compile_rule(rule_of({"type": "order."}), DEPLOYMENT)
    targets = [{"Id": "audit", "Arn": LOG_QUEUE_ARN}, *compiled.put_targets["Targets"]]

    # WHEN
    view = rule_from_eventbridge({"Name": "r1", "State": "ENABLED"}, targets)

    # THEN
    assert view is not None
    assert view.match.type == "order."


# ---- properties over many rules ----

TEXT = st.text(min_size=1, max_size=40)
MATCHES = st.fixed_dictionaries(
    {},
    optional={
        "external": st.booleans(),
        "type": st.from_regex(r"\.?[A-Za-z0-9._:+-]{1,24}", fullmatch=True).filter(
            lambda value: value != "." and value not in TIMER_TYPES
        ),
        "object": TEXT,
        "info": TEXT,
        "subject": TEXT,
        "schema": TEXT,
        "level": st.lists(
            st.sampled_from(["INFO", "WARN", "ERROR", "info", "Warn", "error"]),
            min_size=1,
            max_size=3,
            unique_by=str.upper,
        ),
        "kind": st.sampled_from(["standard", "dataset"]),
        "dataset": st.from_regex(r"[A-Za-z0-9._-]{1,24}", fullmatch=True),
    },
)
ACTIONS = st.sampled_from(
    [
        ("log", {}),
        ("log.warn", {}),
        ("email", {"to": ["ops@example.com"], "subject": "<s>", "text": "${event.info}"}),
        ("sms", {"to": ["+15555550100"], "template": "ops-alert", "max_segments": 2}),
        ("exec", {"function": "arn:aws:lambda:us-east-1:123456789012:function:f"}),
        ("relay", {"url": "https://hooks.example.com/<x>"}),
    ]
)
RULES = st.builds(
    lambda name, description, enabled, match, pattern, action: Rule.model_validate(
        {
            "name": name,
            "description": description,
            "enabled": enabled,
            "match": match,
            "pattern": pattern,
            "action": action[0],
            "config": action[1],
        }
    ),
    name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True),
    description=st.text(max_size=80),
    enabled=st.booleans(),
    match=MATCHES,
    pattern=st.none() | st.just({"payload": {"k": [{"prefix": "<"}]}}),
    action=ACTIONS,
)


@settings(max_examples=150, deadline=None)
@given(rule=RULES)
def test_any_rule_compiles_with_the_guard_and_reads_back_unchanged(rule: Rule) -> None:
    # GIVEN any valid rule

    # WHEN
    compiled = compile_rule(rule, DEPLOYMENT)
    template = compiled.put_targets["Targets"][0]["InputTransformer"]["InputTemplate"]

    # THEN
    pattern = json.loads(compiled.put_rule["EventPattern"])
    assert pattern["detail"]["hops"] == GUARD
    assert len(compiled.put_rule["EventPattern"]) <= MAX_PATTERN_CHARS
    assert template.startswith('{"rule":')
    assert template.endswith('"event":<aws.events.event.json>}')
    assert "<" not in outside_placeholder(template)
    assert ">" not in outside_placeholder(template)
    assert json.loads(template.replace(EVENT_PLACEHOLDER, "null"))["rule"] == rule.to_json()
    assert read_back(rule) == {**rule.to_json(), "read_only": False}
