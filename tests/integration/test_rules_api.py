"""The rules admin API on moto: rules as EventBridge rules (and Scheduler schedules), every call audited."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from correlator.compiler import EVENT_PLACEHOLDER, Deployment, TimerSettings
from correlator.delivery import parse_delivery
from correlator.event import EventSubmission, new_event_id, stamp_event
from correlator.policies import DeliveryPolicy
from correlator.policy_state import Clock, PolicyState
from correlator.rules import Rule
from correlator.rulestore import RuleStore
from local import moto_compat
from tests.conftest import fresh_import
from tests.integration.policy_pipeline import POLICY_TABLE, create_policy_table
from tests.integration.rules_fixtures import (
    BUS_ARN,
    SCHEDULE_GROUP,
    SCHEDULER_ROLE_ARN,
    RuleTargets,
    create_rule_targets,
    declare_template_rule,
)
from tests.notification_doubles import IDEMPOTENCY_TABLE, create_idempotency_table
from tests.probe import BUS_NAME, REGION, BusProbe
from tests.samples import HOSTILE_BODIES, HostileBody, body_of, load_event, with_headers, with_raw_body

RULES_MODULE = "functions.rules.app"
USER_ARN = "arn:aws:iam::123456789012:user/ops-admin"
SAMPLE_NAME = "notify-ops-on-error"
SAMPLE_RULE = {
    "name": SAMPLE_NAME,
    "description": "Log every error of the orders system",
    "enabled": True,
    "match": {"external": True, "type": "order.", "level": ["ERROR"]},
    "action": "log.error",
    "config": {},
}
SAMPLE_PATTERN = {
    "source": ["correlator.external"],
    "detail-type": [{"prefix": "order."}],
    "detail": {"level": ["ERROR"], "hops": [{"numeric": ["<", 3]}]},
}
RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86_400}


@dataclass
class HttpResponse:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class AuditEvent:
    type: str
    object: str
    info: str
    subject: str | None
    external: bool


@dataclass
class RulesApi:
    """The rules function behind API Gateway (REST proxy requests from ``events/apigw/rules-*.json``)."""

    module: ModuleType
    context: LambdaContext
    targets: RuleTargets
    probe: BusProbe
    events: Any
    scheduler: Any

    # -- requests ---------------------------------------------------------------------------
    def call(self, request: dict[str, Any]) -> HttpResponse:
        response = self.module.lambda_handler(request, self.context)
        assert isinstance(response["body"], str | None), "API Gateway needs a string body"
        headers = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
        headers.update(response.get("headers") or {})
        body = json.loads(response["body"]) if response["body"] else None
        return HttpResponse(response["statusCode"], body, headers)

    def create(self, body: Any = None) -> HttpResponse:
        return self.call(request("rules-create", body=body))

    def list_rules(self) -> HttpResponse:
        return self.call(request("rules-list"))

    def get(self, name: str) -> HttpResponse:
        return self.call(request("rules-get", name=name))

    def update(self, name: str, body: Any = None) -> HttpResponse:
        return self.call(request("rules-update", name=name, body=body))

    def delete(self, name: str) -> HttpResponse:
        return self.call(request("rules-delete", name=name))

    def test(self, name: str, body: Any = None) -> HttpResponse:
        return self.call(request("rules-test", name=name, body=body))

    # -- what is on AWS ---------------------------------------------------------------------
    def rule_names(self) -> list[str]:
        """Every EventBridge rule on the bus (ours or not)."""
        return sorted(rule["Name"] for rule in self.events.list_rules(EventBusName=BUS_NAME)["Rules"])

    def describe(self, name: str) -> dict[str, Any]:
        description: dict[str, Any] = self.events.describe_rule(Name=name, EventBusName=BUS_NAME)
        return description

    def targets_of(self, name: str) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.events.list_targets_by_rule(Rule=name, EventBusName=BUS_NAME)["Targets"]
        return targets

    def schedule(self, name: str) -> dict[str, Any]:
        schedule: dict[str, Any] = self.scheduler.get_schedule(Name=name, GroupName=SCHEDULE_GROUP)
        return schedule

    def schedule_names(self) -> list[str]:
        return sorted(item["Name"] for item in self.scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"])

    def audit(self) -> list[AuditEvent]:
        """The internal events emitted so far (drained from the bus probe)."""
        return [
            AuditEvent(detail["type"], detail["object"], detail["info"], detail.get("subject"), detail["external"])
            for detail in self.probe.drain_details()
        ]


def request(sample: str, *, name: str | None = None, body: Any = None) -> dict[str, Any]:
    """A sample request for another rule name and/or with another body (a ``str`` is sent as is)."""
    event = load_event(f"apigw/{sample}")
    if name is not None:
        path = event["resource"].replace("{name}", name)
        event["path"] = path
        event["pathParameters"] = {"name": name}
        event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{path}"
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def audited(type_: str, path: str, status: int) -> AuditEvent:
    return AuditEvent(type_, path, str(status), USER_ARN, False)


def sample_rule(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(SAMPLE_RULE), **fields}


def strip_nulls(value: Any) -> Any:
    """``value`` without null members (the API may spell an absent optional field as null)."""
    if isinstance(value, dict):
        return {key: strip_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [strip_nulls(item) for item in value]
    return value


def rule_in_template(target: dict[str, Any]) -> dict[str, Any]:
    template = target["InputTransformer"]["InputTemplate"]
    rule: dict[str, Any] = json.loads(template.replace(EVENT_PLACEHOLDER, "null"))["rule"]
    return rule


def assert_error(response: HttpResponse, status: int, code: str, message: str | None = None) -> list[dict[str, Any]]:
    """Check an error response: status, ``{"code", "message", "details"}``; return the details."""
    assert response.status == status, response.body
    assert set(response.body) == {"code", "message", "details"}
    assert response.body["code"] == code
    if message is not None:
        assert response.body["message"] == message
    assert isinstance(response.body["details"], list)
    return list(response.body["details"])


def field_errors(response: HttpResponse) -> list[tuple[str, str]]:
    """``(field, type)`` of each detail of a 422 for a body that failed validation."""
    details = assert_error(response, 422, "validation_error")
    assert all(detail["message"] for detail in details), details
    return [(detail["field"], detail["type"]) for detail in details]


@pytest.fixture
def api(bus_probe: BusProbe, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch) -> RulesApi:
    """``functions.rules.app`` imported inside moto with the environment template.yaml gives it."""
    moto_compat.apply()
    targets = create_rule_targets()
    scheduler = boto3.client("scheduler", region_name=REGION)
    scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "rules")
    monkeypatch.setenv("EVENT_BUS_NAME", BUS_NAME)
    monkeypatch.setenv("EVENT_BUS_ARN", BUS_ARN)
    monkeypatch.setenv("MAX_HOPS", "3")
    # sms stands for an action with an outside effect (delivery policies); the log queue stands in for its function.
    monkeypatch.setenv("ACTION_TARGETS", json.dumps({**targets.action_targets, "sms": targets.log_queue.arn}))
    monkeypatch.setenv("RULE_TARGET_DLQ_ARN", targets.dead_letters.arn)
    monkeypatch.setenv("SCHEDULE_GROUP_NAME", SCHEDULE_GROUP)
    monkeypatch.setenv("SCHEDULER_ROLE_ARN", SCHEDULER_ROLE_ARN)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    create_idempotency_table()
    monkeypatch.setenv("RULE_LEASE_TABLE_NAME", IDEMPOTENCY_TABLE)
    create_policy_table()
    monkeypatch.setenv("POLICY_TABLE_NAME", POLICY_TABLE)
    module = fresh_import(RULES_MODULE)
    events = boto3.client("events", region_name=REGION)
    assert events.describe_event_bus(Name=BUS_NAME)["Arn"] == BUS_ARN
    return RulesApi(module, lambda_context, targets, bus_probe, events, scheduler)


@pytest.fixture
def created(api: RulesApi) -> RulesApi:
    """The API with the sample rule created (and its audit event drained)."""
    assert api.create().status == 201
    api.audit()
    return api


# ---- create ----


def test_create_puts_the_compiled_rule_and_its_target_on_the_bus(api: RulesApi) -> None:
    # GIVEN
    sample = load_event("apigw/rules-create")
    assert body_of(sample) == SAMPLE_RULE

    # WHEN
    response = api.call(sample)

    # THEN the API answers with the rule
    assert response.status == 201, response.body
    assert response.headers["Location"] == f"/rules/{SAMPLE_NAME}"
    assert response.headers["Content-Type"] == "application/json"
    assert strip_nulls(response.body) == {**SAMPLE_RULE, "read_only": False}
    # AND EventBridge holds the rule: its pattern, with the hop guard, and its state
    description = api.describe(SAMPLE_NAME)
    assert json.loads(description["EventPattern"]) == SAMPLE_PATTERN
    assert description["State"] == "ENABLED"
    assert description["Description"] == SAMPLE_RULE["description"]
    # AND one target: the log queue, with the rule in its InputTransformer, a retry policy and the DLQ
    [target] = api.targets_of(SAMPLE_NAME)
    assert target["Id"] == "action"
    assert target["Arn"] == api.targets.log_queue.arn
    assert target["RetryPolicy"] == RETRY_POLICY
    assert target["DeadLetterConfig"] == {"Arn": api.targets.dead_letters.arn}
    assert rule_in_template(target) == Rule.model_validate(SAMPLE_RULE).to_json()
    assert api.schedule_names() == []
    assert api.audit() == [audited("rule.create", "/rules", 201)]


def test_a_created_rule_routes_matching_events_to_its_action(created: RulesApi) -> None:
    # GIVEN
    publish = boto3.client("events", region_name=REGION)
    detail = {
        "id": new_event_id(),
        "time": "2026-11-22T14:52:39.778Z",
        "external": True,
        "level": "ERROR",
        "kind": "standard",
        "type": "order.failed",
        "hops": 0,
    }
    entry = {"Source": "correlator.external", "DetailType": "order.failed", "EventBusName": BUS_NAME}

    # WHEN an ERROR and a WARN event reach the bus
    publish.put_events(
        Entries=[
            {**entry, "Detail": json.dumps(detail)},
            {**entry, "Detail": json.dumps({**detail, "id": new_event_id(), "level": "WARN"})},
        ]
    )

    # THEN the log queue receives the rule with the ERROR event only
    [body] = created.targets.log_queue.drain()
    delivery = parse_delivery(body)
    assert delivery.rule == Rule.model_validate(SAMPLE_RULE)
    assert delivery.event.id == detail["id"]


def test_create_with_a_taken_name_is_a_conflict(created: RulesApi) -> None:
    # GIVEN the sample rule exists

    # WHEN
    response = created.create(sample_rule(description="another one", action="log"))

    # THEN
    details = assert_error(response, 409, "conflict", f"a rule named {SAMPLE_NAME!r} already exists")
    assert details == []
    assert rule_in_template(created.targets_of(SAMPLE_NAME)[0])["description"] == SAMPLE_RULE["description"]
    assert created.audit() == [audited("rule.create", "/rules", 409)]


def test_create_never_overwrites_a_foreign_eventbridge_rule(api: RulesApi) -> None:
    # GIVEN the bus probe's rule "probe", which is not a Correlator rule

    # WHEN
    response = api.create(sample_rule(name="probe"))

    # THEN
    assert_error(response, 409, "conflict", "a rule named 'probe' already exists")
    assert [target["Id"] for target in api.targets_of("probe")] == ["probe-queue"]
    assert "InputTransformer" not in api.targets_of("probe")[0]


def test_create_accepts_a_rule_with_every_field(api: RulesApi) -> None:
    # GIVEN
    rule: dict[str, Any] = {
        "name": "orders-everything",
        "description": "Everything <about> orders",
        "enabled": True,
        "match": {
            "external": False,
            "type": ".failed",
            "object": "orders/",
            "info": "payment",
            "subject": USER_ARN,
            "schema": "https://orders.example.com/",
            "level": ["warn", "ERROR"],
            "kind": "dataset",
            "dataset": "sales",
        },
        "pattern": {"payload": {"currency": ["EUR"]}},
        "action": "log",
        "config": {},
    }

    # WHEN
    response = api.create(rule)

    # THEN
    assert response.status == 201, response.body
    expected = {**rule, "match": {**rule["match"], "level": ["WARN", "ERROR"]}}
    assert strip_nulls(response.body) == {**expected, "read_only": False}
    assert json.loads(api.describe("orders-everything")["EventPattern"]) == {
        "source": ["correlator.internal"],
        "detail-type": [{"suffix": ".failed"}],
        "detail": {
            "object": [{"prefix": "orders/"}],
            "info": [{"prefix": "payment"}],
            "subject": [USER_ARN],
            "schema": ["https://orders.example.com/"],
            "level": ["WARN", "ERROR"],
            "kind": ["dataset"],
            "dataset": ["sales"],
            "hops": [{"numeric": ["<", 3]}],
            "payload": {"currency": ["EUR"]},
        },
    }
    assert strip_nulls(api.get("orders-everything").body) == {**expected, "read_only": False}


# ---- invalid rules: 422 naming the field, nothing created ----


POLICY_SMS = {"action": "sms", "config": {"to": ["+15555550100"], "body": "b"}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": "bad name!"}, [("name", "string_pattern_mismatch")]),
        ({"name": "n" * 65}, [("name", "string_pattern_mismatch")]),
        ({"description": "d" * 513}, [("description", "string_too_long")]),
        ({"enabled": "maybe"}, [("enabled", "bool_type")]),
        ({"enabled": "true"}, [("enabled", "bool_type")]),  # strict: no "true", "yes" or 1 for a boolean
        ({"match": {"object": ""}}, [("match.object", "string_too_short")]),
        ({"match": {"type": "."}}, [("match.type", "value_error")]),
        ({"match": {"level": ["DEBUG"]}}, [("match.level.0", "enum")]),
        ({"match": {"hops": 0}}, [("match.hops", "extra_forbidden")]),
        ({"match": {"type": "timer.periodic", "object": "5", "external": True}}, [("match.external", "value_error")]),
        ({"match": {"type": "timer.oneshot"}}, [("match.object", "value_error")]),
        ({"action": "shell"}, [("action", "literal_error")]),
        ({"config": {"level": "ERROR"}}, [("config.level", "extra_forbidden")]),
        ({"action": "email", "config": {"to": ["ops"], "template": "ops-alert"}}, [("config.to", "value_error")]),
        ({"action": "sms", "config": {"to": ["555"], "body": "b"}}, [("config.to.0", "string_pattern_mismatch")]),
        (
            {"action": "relay.event", "config": {"url": "https://o.example.com/events"}},
            [("config.api_key_secret", "missing")],
        ),
        ({"read_only": True}, [("read_only", "extra_forbidden")]),
        # delivery policies, validated like config (a sms rule: log rules refuse a policy)
        ({"policy": {"dedup": {"window": "1h"}}}, [("policy", "value_error")]),
        (
            {**POLICY_SMS, "policy": {"throttle": {"limit": 0, "window": "1m"}}},
            [("policy.throttle.limit", "greater_than_equal")],
        ),
        (
            {**POLICY_SMS, "policy": {"throttle": {"limit": 1, "window": "10 minutes"}}},
            [("policy.throttle.window", "value_error")],
        ),
        (
            {**POLICY_SMS, "policy": {"throttle": {"limit": 1, "window": "8d"}}},
            [("policy.throttle.window", "value_error")],
        ),
        (
            {**POLICY_SMS, "policy": {"dedup": {"key": ["colour"], "window": 60}}},
            [("policy.dedup.key.0", "string_pattern_mismatch")],
        ),
        (
            {**POLICY_SMS, "policy": {"group": {"group_interval": "1h", "repeat_interval": "5m"}}},
            [("policy.group", "value_error")],
        ),
        (
            {**POLICY_SMS, "policy": {"mute": [{"location": "Mars/Olympus"}]}},
            [("policy.mute.0.location", "value_error")],
        ),
        ({**POLICY_SMS, "policy": {"snooze": "1h"}}, [("policy.snooze", "extra_forbidden")]),
    ],
)
def test_an_invalid_rule_is_refused_naming_the_field(
    api: RulesApi, change: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    # GIVEN
    rule = sample_rule(**change)

    # WHEN
    response = api.create(rule)

    # THEN
    assert field_errors(response) == expected
    assert response.body["message"].startswith("request body failed validation")
    assert api.rule_names() == ["probe"]
    assert api.audit() == [audited("rule.create", "/rules", 422)]


def test_a_rule_without_name_and_action_names_both(api: RulesApi) -> None:
    # GIVEN / WHEN
    response = api.create({"description": "nameless"})

    # THEN
    assert sorted(field_errors(response)) == [("action", "missing"), ("name", "missing")]
    assert api.rule_names() == ["probe"]


def test_a_body_that_is_not_json_is_a_bad_request(api: RulesApi) -> None:
    # GIVEN / WHEN
    response = api.create('{"name": "r1", ')

    # THEN
    assert_error(response, 400, "bad_request", "request body is not valid JSON")
    assert api.rule_names() == ["probe"]
    assert api.audit() == [audited("rule.create", "/rules", 400)]


@pytest.mark.parametrize("body", ["[]", "null", '"r1"', "", "NaN"])
def test_a_body_that_is_not_a_json_object_is_a_bad_request(api: RulesApi, body: str) -> None:
    # GIVEN / WHEN
    response = api.create(body)

    # THEN
    assert_error(response, 400, "bad_request")
    assert api.rule_names() == ["probe"]
    assert api.audit() == [audited("rule.create", "/rules", 400)]


@pytest.mark.parametrize(
    ("sample", "hostile"),
    [("rules-create", hostile) for hostile in HOSTILE_BODIES]
    + [(sample, hostile) for sample in ("rules-update", "rules-test") for hostile in HOSTILE_BODIES[:5]],
    ids=lambda value: value.id if isinstance(value, HostileBody) else value,
)
def test_the_request_body_gate_guards_every_rules_route(created: RulesApi, hostile: HostileBody, sample: str) -> None:
    # GIVEN / WHEN a body that once crashed a handler (502) or changed on the way
    name = str(SAMPLE_RULE["name"])
    response = created.call(with_raw_body(request(sample, name=name), hostile))

    # THEN it is refused as documented, and the rules are as they were
    assert_error(response, hostile.status, hostile.code)
    assert created.rule_names() == sorted(["probe", name])
    assert created.get(name).status == 200


def test_an_array_of_rules_is_refused_not_cut_to_its_first_rule(created: RulesApi) -> None:
    # GIVEN two rules sent as a JSON array
    rules = [sample_rule(name="first"), sample_rule(name="second")]

    # WHEN
    created_many = created.create(json.dumps(rules))
    replaced = created.update(SAMPLE_NAME, json.dumps([sample_rule(action="log"), sample_rule()]))
    tested = created.test(SAMPLE_NAME, json.dumps([body_of(load_event("apigw/rules-test"))]))

    # THEN
    message = "request body must be a JSON object"
    for response in (created_many, replaced, tested):
        assert assert_error(response, 400, "bad_request", message) == []
    assert created.rule_names() == sorted(["probe", SAMPLE_NAME])
    assert rule_in_template(created.targets_of(SAMPLE_NAME)[0])["action"] == "log.error"


def test_an_action_that_is_not_deployed_is_refused(api: RulesApi) -> None:
    # GIVEN a valid email rule; this stack deploys only the log actions
    rule = sample_rule(action="email", config={"to": ["ops@example.com"], "template": "ops-alert"})

    # WHEN
    response = api.create(rule)

    # THEN
    message = "action 'email' is not deployed in this stack"
    assert assert_error(response, 422, "validation_error", message) == [{"field": "action", "message": message}]
    assert api.rule_names() == ["probe"]
    assert api.audit() == [audited("rule.create", "/rules", 422)]


@pytest.mark.parametrize(
    ("pattern", "field"),
    [({"hops": [{"numeric": [">=", 0]}]}, "pattern.hops"), ({"level": ["INFO"]}, "pattern.level")],
)
def test_an_extra_pattern_over_match_fields_is_refused(api: RulesApi, pattern: dict[str, Any], field: str) -> None:
    # GIVEN / WHEN
    response = api.create(sample_rule(pattern=pattern))

    # THEN
    [detail] = assert_error(response, 422, "validation_error")
    assert detail["field"] == field
    assert api.rule_names() == ["probe"]


@pytest.mark.parametrize(
    "pattern",
    [
        {"payload": {"currency": []}},  # an empty list of values
        {"payload": {"currency": "EUR"}},  # a value that is not a list
        {"payload": {"x": [{"bogus": 1}]}},  # an unknown operator
        {"payload": {"x": [{"numeric": [">"]}]}},  # a numeric comparison without its number
        {"payload": {"x": [{"anything-but": ["a", 1]}]}},  # a mixed-type anything-but
        {"payload": {"x": [{"prefix": 5}]}},  # a prefix that is not a string
        {"payload": {"x": [{"wildcard": "a**"}]}},  # consecutive wildcards
    ],
)
def test_a_pattern_eventbridge_rejects_is_refused_and_nothing_is_left(api: RulesApi, pattern: dict[str, Any]) -> None:
    # GIVEN / WHEN
    response = api.create(sample_rule(pattern=pattern))

    # THEN
    [detail] = assert_error(response, 422, "validation_error", "pattern is not a valid EventBridge pattern")
    assert detail["field"] == "pattern"
    assert "InvalidEventPatternException" in detail["message"]
    assert api.rule_names() == ["probe"]
    assert api.audit() == [audited("rule.create", "/rules", 422)]


def test_a_pattern_too_long_for_eventbridge_is_refused(api: RulesApi) -> None:
    # GIVEN / WHEN
    response = api.create(sample_rule(pattern={"payload": {"note": ["x" * 4096]}}))

    # THEN
    [detail] = assert_error(response, 422, "validation_error")
    assert detail["field"] == "pattern"
    assert api.rule_names() == ["probe"]


# ---- list and get ----


def test_list_returns_our_rules_sorted_and_skips_foreign_ones(api: RulesApi) -> None:
    # GIVEN three rules, a foreign rule with a plain target and a foreign rule without targets
    for name in ("b-rule", "C-rule", "a-rule"):
        assert api.create(sample_rule(name=name)).status == 201
    api.events.put_rule(Name="foreign", EventBusName=BUS_NAME, EventPattern=json.dumps({"source": ["other"]}))
    api.events.put_targets(
        Rule="foreign", EventBusName=BUS_NAME, Targets=[{"Id": "q", "Arn": api.targets.log_queue.arn}]
    )
    api.events.put_rule(Name="bare", EventBusName=BUS_NAME, EventPattern=json.dumps({"source": ["other"]}))
    api.audit()

    # WHEN
    response = api.list_rules()

    # THEN
    assert response.status == 200, response.body
    assert set(response.body) == {"rules"}
    assert [rule["name"] for rule in response.body["rules"]] == ["C-rule", "a-rule", "b-rule"]
    assert strip_nulls(response.body["rules"][1]) == {**sample_rule(name="a-rule"), "read_only": False}
    assert api.audit() == [audited("rule.list", "/rules", 200)]


def test_list_of_an_empty_bus_is_empty(api: RulesApi) -> None:
    # GIVEN only the probe's foreign rule / WHEN
    response = api.list_rules()

    # THEN
    assert (response.status, response.body) == (200, {"rules": []})


def test_get_returns_the_rule(created: RulesApi) -> None:
    # GIVEN / WHEN
    response = created.call(load_event("apigw/rules-get"))

    # THEN
    assert response.status == 200, response.body
    assert strip_nulls(response.body) == {**SAMPLE_RULE, "read_only": False}
    assert created.audit() == [audited("rule.get", f"/rules/{SAMPLE_NAME}", 200)]


@pytest.mark.parametrize("name", ["nope", "probe"])
def test_get_of_an_unknown_or_foreign_rule_is_not_found(api: RulesApi, name: str) -> None:
    # GIVEN / WHEN
    response = api.get(name)

    # THEN
    assert assert_error(response, 404, "not_found", f"no rule named {name!r}") == []
    assert api.audit() == [audited("rule.get", f"/rules/{name}", 404)]


# ---- update ----


def test_update_replaces_the_pattern_and_the_target(created: RulesApi) -> None:
    # GIVEN
    sample = load_event("apigw/rules-update")
    replacement = body_of(sample)
    assert replacement["match"] != SAMPLE_RULE["match"]

    # WHEN
    response = created.call(sample)

    # THEN
    assert response.status == 200, response.body
    assert strip_nulls(response.body) == {**replacement, "read_only": False}
    assert json.loads(created.describe(SAMPLE_NAME)["EventPattern"]) == {
        "source": ["correlator.external"],
        "detail-type": [{"prefix": "order."}],
        "detail": {"level": ["WARN", "ERROR"], "hops": [{"numeric": ["<", 3]}]},
    }
    assert created.describe(SAMPLE_NAME)["Description"] == replacement["description"]
    [target] = created.targets_of(SAMPLE_NAME)
    assert rule_in_template(target) == Rule.model_validate(replacement).to_json()
    assert target["RetryPolicy"] == RETRY_POLICY
    assert target["DeadLetterConfig"] == {"Arn": created.targets.dead_letters.arn}
    assert strip_nulls(created.get(SAMPLE_NAME).body) == {**replacement, "read_only": False}
    assert created.audit()[0] == audited("rule.update", f"/rules/{SAMPLE_NAME}", 200)


def test_update_with_another_name_in_the_body_is_refused(created: RulesApi) -> None:
    # GIVEN / WHEN
    response = created.update(SAMPLE_NAME, sample_rule(name="renamed", description="changed"))

    # THEN
    details = assert_error(response, 422, "validation_error", "the body's name must be the rule's name")
    assert details == [{"field": "name", "message": f"expected {SAMPLE_NAME!r}"}]
    assert created.rule_names() == sorted(["probe", SAMPLE_NAME])
    assert rule_in_template(created.targets_of(SAMPLE_NAME)[0])["description"] == SAMPLE_RULE["description"]
    assert created.audit() == [audited("rule.update", f"/rules/{SAMPLE_NAME}", 422)]


def test_update_of_an_unknown_rule_is_not_found_and_creates_nothing(api: RulesApi) -> None:
    # GIVEN / WHEN
    response = api.update(SAMPLE_NAME, SAMPLE_RULE)

    # THEN
    assert_error(response, 404, "not_found", f"no rule named {SAMPLE_NAME!r}")
    assert api.rule_names() == ["probe"]
    assert api.audit() == [audited("rule.update", f"/rules/{SAMPLE_NAME}", 404)]


def test_update_with_an_invalid_body_changes_nothing(created: RulesApi) -> None:
    # GIVEN / WHEN
    response = created.update(SAMPLE_NAME, sample_rule(match={"level": []}))

    # THEN
    assert field_errors(response) == [("match.level", "too_short")]
    assert json.loads(created.describe(SAMPLE_NAME)["EventPattern"]) == SAMPLE_PATTERN


def test_disabling_a_rule_disables_the_eventbridge_rule_and_keeps_it_listed(created: RulesApi) -> None:
    # GIVEN / WHEN
    response = created.update(SAMPLE_NAME, sample_rule(enabled=False))

    # THEN
    assert response.status == 200, response.body
    assert response.body["enabled"] is False
    assert created.describe(SAMPLE_NAME)["State"] == "DISABLED"
    listed = created.list_rules().body["rules"]
    assert [(rule["name"], rule["enabled"]) for rule in listed] == [(SAMPLE_NAME, False)]
    assert created.get(SAMPLE_NAME).body["enabled"] is False

    # WHEN enabled again
    assert created.update(SAMPLE_NAME, sample_rule(enabled=True)).status == 200

    # THEN
    assert created.describe(SAMPLE_NAME)["State"] == "ENABLED"
    assert created.get(SAMPLE_NAME).body["enabled"] is True


def test_a_rule_created_disabled_is_disabled_on_eventbridge(api: RulesApi) -> None:
    # GIVEN / WHEN
    response = api.create(sample_rule(enabled=False))

    # THEN
    assert response.status == 201, response.body
    assert api.describe(SAMPLE_NAME)["State"] == "DISABLED"
    assert strip_nulls(api.list_rules().body["rules"]) == [{**sample_rule(enabled=False), "read_only": False}]


# ---- delete ----


def test_delete_removes_the_rule_and_its_target(created: RulesApi) -> None:
    # GIVEN / WHEN
    response = created.call(load_event("apigw/rules-delete"))

    # THEN
    assert response.status == 204
    assert response.body is None
    assert created.rule_names() == ["probe"]
    with pytest.raises(ClientError) as caught:
        created.targets_of(SAMPLE_NAME)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert created.get(SAMPLE_NAME).status == 404
    assert created.audit()[0] == audited("rule.delete", f"/rules/{SAMPLE_NAME}", 204)


@pytest.mark.parametrize("name", ["nope", "probe"])
def test_delete_of_an_unknown_or_foreign_rule_is_not_found(api: RulesApi, name: str) -> None:
    # GIVEN / WHEN
    response = api.delete(name)

    # THEN
    assert_error(response, 404, "not_found", f"no rule named {name!r}")
    assert api.rule_names() == ["probe"]
    assert [target["Id"] for target in api.targets_of("probe")] == ["probe-queue"]
    assert api.audit() == [audited("rule.delete", f"/rules/{name}", 404)]


def test_a_deleted_name_can_be_created_again(created: RulesApi) -> None:
    # GIVEN
    assert created.delete(SAMPLE_NAME).status == 204

    # WHEN
    response = created.create(sample_rule(action="log"))

    # THEN
    assert response.status == 201, response.body
    assert rule_in_template(created.targets_of(SAMPLE_NAME)[0])["action"] == "log"


# ---- read-only template rules ----


@pytest.fixture
def with_template_rule(api: RulesApi) -> RulesApi:
    """The API with template.yaml's LogEverythingRule declared on the bus."""
    assert declare_template_rule(api.events, api.targets) == "log-everything"
    return api


TEMPLATE_RULE_VIEW = {
    "name": "log-everything",
    "description": "Write every event to the event log",
    "enabled": True,
    "match": {},
    "action": "log",
    "config": {},
    "read_only": True,
}


def test_the_template_rule_is_listed_read_only(with_template_rule: RulesApi) -> None:
    # GIVEN
    api = with_template_rule
    assert api.create().status == 201

    # WHEN
    listed = api.list_rules()
    got = api.get("log-everything")

    # THEN
    assert [strip_nulls(rule) for rule in listed.body["rules"]] == [
        TEMPLATE_RULE_VIEW,
        {**SAMPLE_RULE, "read_only": False},
    ]
    assert strip_nulls(got.body) == TEMPLATE_RULE_VIEW


def test_the_template_rule_cannot_be_replaced_or_deleted(with_template_rule: RulesApi) -> None:
    # GIVEN
    api = with_template_rule
    before = (api.describe("log-everything"), api.targets_of("log-everything"))
    body = {"name": "log-everything", "enabled": False, "action": "log.error"}

    # WHEN
    replaced = api.update("log-everything", body)
    deleted = api.delete("log-everything")

    # THEN
    message = "rule 'log-everything' is declared in template.yaml and is read-only"
    assert assert_error(replaced, 409, "conflict", message) == []
    assert assert_error(deleted, 409, "conflict", message) == []
    after = (api.describe("log-everything"), api.targets_of("log-everything"))
    assert after[0]["State"] == before[0]["State"] == "ENABLED"
    assert after[0]["EventPattern"] == before[0]["EventPattern"]
    assert after[1] == before[1]
    assert api.audit() == [
        audited("rule.update", "/rules/log-everything", 409),
        audited("rule.delete", "/rules/log-everything", 409),
    ]


def test_the_template_rule_name_cannot_be_created(with_template_rule: RulesApi) -> None:
    # GIVEN / WHEN
    response = with_template_rule.create(sample_rule(name="log-everything"))

    # THEN
    assert_error(response, 409, "conflict", "a rule named 'log-everything' already exists")


# ---- timer rules: EventBridge Scheduler schedules ----


def timer_rule(name: str, timer: str, value: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "action": "log", "match": {"type": timer, "object": value}, **fields}


@pytest.mark.parametrize(("minutes", "expression"), [("15", "rate(15 minutes)"), ("1", "rate(1 minute)")])
def test_a_periodic_timer_rule_gets_a_rate_schedule(api: RulesApi, minutes: str, expression: str) -> None:
    # GIVEN
    rule = timer_rule("every-n", "timer.periodic", minutes, description="tick")

    # WHEN
    response = api.create(rule)

    # THEN
    assert response.status == 201, response.body
    schedule = api.schedule("every-n")
    assert schedule["ScheduleExpression"] == expression
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["State"] == "ENABLED"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Description"] == "tick"
    target = schedule["Target"]
    assert target["Arn"] == BUS_ARN
    assert target["RoleArn"] == SCHEDULER_ROLE_ARN
    assert target["EventBridgeParameters"] == {"DetailType": "timer.periodic", "Source": "correlator.internal"}
    assert target["DeadLetterConfig"] == {"Arn": api.targets.dead_letters.arn}
    assert target["RetryPolicy"] == RETRY_POLICY
    assert json.loads(target["Input"]) == {
        "id": "<aws.scheduler.execution-id>",
        "time": "<aws.scheduler.scheduled-time>",
        "external": False,
        "level": "INFO",
        "kind": "standard",
        "type": "timer.periodic",
        "object": minutes,
        "system_id": "rule/every-n",
        "hops": 0,
    }
    assert json.loads(api.describe("every-n")["EventPattern"]) == {
        "source": ["correlator.internal"],
        "detail-type": ["timer.periodic"],
        "detail": {"system_id": ["rule/every-n"], "hops": [{"numeric": ["<", 3]}]},
    }


def test_a_oneshot_timer_rule_gets_an_at_schedule_that_deletes_itself(api: RulesApi) -> None:
    # GIVEN 4102444799778 ms = 2099-12-31T23:59:59.778Z
    rule = timer_rule("once", "timer.oneshot", "4102444799778")

    # WHEN
    response = api.create(rule)

    # THEN
    assert response.status == 201, response.body
    schedule = api.schedule("once")
    assert schedule["ScheduleExpression"] == "at(2099-12-31T23:59:59)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["EventBridgeParameters"]["DetailType"] == "timer.oneshot"
    assert json.loads(schedule["Target"]["Input"])["object"] == "4102444799778"


def test_a_cron_timer_rule_gets_a_cron_schedule_in_its_time_zone_and_lists_it(api: RulesApi) -> None:
    # GIVEN working days at 09:00 in Berlin, during 2099
    schedule = {"timezone": "Europe/Berlin", "start_date": "2099-01-01T00:00:00Z", "end_date": "2099-12-31T00:00:00Z"}
    rule = timer_rule("berlin-morning", "timer.periodic", "cron(0 9 ? * MON-FRI *)", schedule=schedule)

    # WHEN
    response = api.create(rule)

    # THEN the schedule carries the expression, the zone and the dates
    assert response.status == 201, response.body
    stored = api.schedule("berlin-morning")
    assert stored["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert stored["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert stored["StartDate"].isoformat() == "2099-01-01T00:00:00+00:00"
    assert stored["EndDate"].isoformat() == "2099-12-31T00:00:00+00:00"
    assert stored["ActionAfterCompletion"] == "NONE"
    assert json.loads(stored["Target"]["Input"])["object"] == "cron(0 9 ? * MON-FRI *)"
    # AND GET /rules and GET /rules/{name} show it as written
    [listed] = [item for item in api.list_rules().body["rules"] if item["name"] == "berlin-morning"]
    assert listed["schedule"] == schedule
    assert listed["match"]["object"] == "cron(0 9 ? * MON-FRI *)"
    assert api.get("berlin-morning").body["schedule"] == schedule


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"match": {"type": "timer.periodic", "object": "cron(0 9 * * MON *)"}}, "match.object"),
        ({"match": {"type": "timer.periodic", "object": "cron(0 25 ? * * *)"}}, "match.object"),
        (
            {"match": {"type": "timer.periodic", "object": "5"}, "schedule": {"timezone": "Europe/Berlim"}},
            "schedule.timezone",
        ),
        (
            {"match": {"type": "timer.periodic", "object": "5"}, "schedule": {"end_date": "2001-01-01T00:00:00Z"}},
            "schedule.end_date",
        ),
    ],
)
def test_an_invalid_cron_zone_or_end_date_is_refused_and_nothing_is_left(
    api: RulesApi, fields: dict[str, Any], field: str
) -> None:
    # GIVEN / WHEN
    response = api.create({"name": "bad-timer", "action": "log", **fields})

    # THEN 422 naming the field; no rule, no schedule
    assert [detail["field"] for detail in assert_error(response, 422, "validation_error")] == [field]
    assert "bad-timer" not in api.rule_names()
    assert api.schedule_names() == []


def test_a_oneshot_timer_in_the_past_is_refused_and_nothing_is_left(api: RulesApi) -> None:
    # GIVEN 1000 ms after the epoch
    rule = timer_rule("too-late", "timer.oneshot", "1000")

    # WHEN
    response = api.create(rule)

    # THEN 422 naming match.object, and neither a rule nor a schedule was left behind
    assert [detail["field"] for detail in assert_error(response, 422, "validation_error")] == ["match.object"]
    assert "too-late" not in api.rule_names()
    assert api.schedule_names() == []


def test_what_a_schedule_puts_on_the_bus_fires_its_rule(api: RulesApi) -> None:
    # GIVEN a periodic timer rule and its schedule
    assert api.create(timer_rule("every-5", "timer.periodic", "5")).status == 201
    target = api.schedule("every-5")["Target"]

    # WHEN Scheduler fires: the Input, its context attributes filled in, as an event on the bus
    detail = (
        target["Input"]
        .replace("<aws.scheduler.execution-id>", "c0ffee00-1234-4abc-9def-0123456789ab")
        .replace("<aws.scheduler.scheduled-time>", "2026-11-22T14:55:00Z")
    )
    parameters = target["EventBridgeParameters"]
    api.events.put_events(
        Entries=[
            {
                "Source": parameters["Source"],
                "DetailType": parameters["DetailType"],
                "Detail": detail,
                "EventBusName": BUS_NAME,
            }
        ]
    )

    # THEN the rule delivers a valid tick to its action
    [body] = api.targets.log_queue.drain()
    delivery = parse_delivery(body)
    assert delivery.rule.name == "every-5"
    assert (delivery.event.type, delivery.event.object, delivery.event.external) == ("timer.periodic", "5", False)
    assert delivery.event.system_id == "rule/every-5"


def test_a_disabled_timer_rule_has_a_disabled_schedule(api: RulesApi) -> None:
    # GIVEN / WHEN
    response = api.create(timer_rule("paused", "timer.periodic", "60", enabled=False))

    # THEN
    assert response.status == 201, response.body
    assert api.schedule("paused")["State"] == "DISABLED"
    assert api.describe("paused")["State"] == "DISABLED"


def test_deleting_a_timer_rule_deletes_its_schedule(api: RulesApi) -> None:
    # GIVEN
    assert api.create(timer_rule("every-5", "timer.periodic", "5")).status == 201
    assert api.create(timer_rule("every-9", "timer.periodic", "9")).status == 201

    # WHEN
    response = api.delete("every-5")

    # THEN
    assert response.status == 204
    assert api.schedule_names() == ["every-9"]
    assert api.rule_names() == ["every-9", "probe"]
    with pytest.raises(ClientError) as caught:
        api.schedule("every-5")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_updating_a_timer_rule_updates_or_removes_its_schedule(api: RulesApi) -> None:
    # GIVEN
    assert api.create(timer_rule("tick", "timer.periodic", "5")).status == 201

    # WHEN the period changes
    assert api.update("tick", timer_rule("tick", "timer.periodic", "10")).status == 200

    # THEN
    assert api.schedule("tick")["ScheduleExpression"] == "rate(10 minutes)"

    # WHEN it is no longer a timer rule
    assert api.update("tick", {"name": "tick", "action": "log", "match": {"type": "order."}}).status == 200

    # THEN
    assert api.schedule_names() == []

    # WHEN it becomes a timer rule again
    assert api.update("tick", timer_rule("tick", "timer.oneshot", "4102444799778")).status == 200

    # THEN
    assert api.schedule("tick")["ScheduleExpression"] == "at(2099-12-31T23:59:59)"


def test_a_rule_shows_its_policy_with_durations_in_seconds(api: RulesApi) -> None:
    # GIVEN a rule whose policy gives durations as text and as seconds
    policy = {
        "throttle": {"limit": 1, "window": "10m", "key": ["system_id"], "excess": "digest"},
        "group": {"group_by": ["system_id"], "group_wait": "30s", "group_interval": "1h30m", "repeat_interval": 86400},
    }
    assert api.create(sample_rule(**POLICY_SMS, policy=policy)).status == 201

    # WHEN it is read back, alone and in the list
    shown = api.get(SAMPLE_NAME).body["policy"]
    [listed] = [rule["policy"] for rule in api.list_rules().body["rules"] if rule["name"] == SAMPLE_NAME]

    # THEN every duration is in seconds
    assert shown == listed
    assert shown["throttle"] == {"limit": 1, "window": 600, "key": ["system_id"], "excess": "digest"}
    assert {key: shown["group"][key] for key in ("group_wait", "group_interval", "repeat_interval")} == {
        "group_wait": 30,
        "group_interval": 5400,
        "repeat_interval": 86400,
    }


# ---- dry run ----


def test_dry_run_with_a_matching_event(created: RulesApi) -> None:
    # GIVEN an ERROR order event (the sample)
    sample = load_event("apigw/rules-test")

    # WHEN
    response = created.call(sample)

    # THEN
    assert (response.status, response.body) == (200, {"matches": True, "policy": None})
    assert created.audit() == [audited("rule.test", f"/rules/{SAMPLE_NAME}/test", 200)]
    assert created.targets.log_queue.drain() == []


def test_dry_run_tests_an_event_of_this_account_and_region(aws: None) -> None:
    # GIVEN a store in eu-west-1 whose bus ARN names account 210987654321, with one rule, recording what is tested
    events = boto3.client("events", region_name="eu-west-1")
    events.create_event_bus(Name="elsewhere")
    bus_arn = "arn:aws:events:eu-west-1:210987654321:event-bus/elsewhere"
    deployment = Deployment(
        "elsewhere", 3, {"log": "arn:aws:sqs:eu-west-1:210987654321:log"}, "arn:aws:sqs:eu-west-1:210987654321:dlq"
    )
    store = RuleStore(
        events, deployment, timers=TimerSettings("elsewhere", "arn:aws:iam::210987654321:role/t", bus_arn)
    )
    store.create(Rule.model_validate({"name": "all-orders", "action": "log", "match": {"type": "order."}}))
    tested: list[dict[str, Any]] = []
    original = events.test_event_pattern

    def record(**kwargs: Any) -> Any:
        tested.append(json.loads(kwargs["Event"]))
        return original(**kwargs)

    events.test_event_pattern = record
    event = stamp_event(
        EventSubmission.model_validate({"type": "order.created"}), external=True, subject=None, request_key="k"
    )

    # WHEN
    matches = store.test("all-orders", event)

    # THEN the candidate event is the stack's own: the bus ARN's account, the client's region
    assert matches is True
    [candidate] = tested
    assert (candidate["account"], candidate["region"]) == ("210987654321", "eu-west-1")


@pytest.mark.parametrize(
    "change",
    [{"level": "INFO"}, {"type": "invoice.failed"}, {"external": False}, {"hops": 3}, {"hops": 10}],
)
def test_dry_run_with_an_event_that_does_not_match(created: RulesApi, change: dict[str, Any]) -> None:
    # GIVEN
    event = {**body_of(load_event("apigw/rules-test")), **change}

    # WHEN
    response = created.test(SAMPLE_NAME, event)

    # THEN
    assert (response.status, response.body) == (200, {"matches": False, "policy": None})


def test_dry_run_just_below_the_hop_limit_matches(created: RulesApi) -> None:
    # GIVEN / WHEN
    response = created.test(SAMPLE_NAME, {**body_of(load_event("apigw/rules-test")), "hops": 2})

    # THEN
    assert (response.status, response.body) == (200, {"matches": True, "policy": None})


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"items": [{"sku": "B-2"}, {"sku": "A-1"}], "gift": True}, True),  # an array of objects is flattened
        ({"items": [[{"sku": "A-1"}]], "gift": True}, True),  # so are nested arrays
        ({"items": [{"sku": "B-2"}], "gift": True}, False),
        ({"items": [{"sku": "A-1"}], "gift": 1}, False),  # 1 is not true
    ],
)
def test_dry_run_matches_arrays_and_booleans_as_eventbridge(
    api: RulesApi, payload: dict[str, Any], expected: bool
) -> None:
    # GIVEN a rule on an array of objects and a boolean of the payload
    pattern = {"payload": {"items": {"sku": ["A-1"]}, "gift": [True]}}
    assert api.create(sample_rule(pattern=pattern)).status == 201

    # WHEN
    response = api.test(SAMPLE_NAME, {**body_of(load_event("apigw/rules-test")), "payload": payload})

    # THEN
    assert (response.status, response.body) == (200, {"matches": expected, "policy": None})


# 2026-11-23 is a Monday: 10:00:10 UTC, 10 s into a throttle minute.
MONDAY_10_UTC = 1_795_428_010.0
SMS_RULE_NAME = "page-on-error"
SMS_RULE: dict[str, Any] = {
    "name": SMS_RULE_NAME,
    "match": {"type": "order.", "level": ["ERROR"]},
    "action": "sms",
    "config": {"to": ["+15555550100"], "body": "${event.summary}"},
}
ALL_DAY_MONDAY = {"weekdays": ["monday"], "location": "UTC"}
MONDAY_MORNING = {"weekdays": ["monday"], "times": [{"start_time": "09:00", "end_time": "12:00"}], "location": "UTC"}


def policy_items(api: RulesApi) -> int:
    count: int = boto3.client("dynamodb", region_name=REGION).scan(TableName=POLICY_TABLE, Select="COUNT")["Count"]
    return count


@pytest.mark.parametrize(
    ("policy", "earlier", "expected"),
    [
        ({"throttle": {"limit": 2, "window": "1m"}}, 1, {"decision": "deliver", "reason": ""}),
        ({"throttle": {"limit": 2, "window": "1m"}}, 2, {"decision": "throttled", "reason": "drop"}),
        (
            {"throttle": {"limit": 1, "window": "1m", "excess": "digest"}, "group": {"group_wait": "30s"}},
            2,
            {"decision": "throttled", "reason": "digest", "due": "2026-11-23T10:00:40Z"},
        ),
        ({"dedup": {"key": ["type", "object"], "window": "10m"}}, 0, {"decision": "deliver", "reason": ""}),
        ({"dedup": {"key": ["type", "object"], "window": "10m"}}, 1, {"decision": "deduplicated", "reason": "drop"}),
        (
            {"group": {"group_by": ["system_id"], "group_wait": "30s"}},
            0,
            {"decision": "grouped", "reason": "group", "due": "2026-11-23T10:00:40Z"},
        ),
        (
            {"group": {"group_by": ["system_id"], "group_wait": "30s"}},
            1,  # the group's flush was claimed 0 s ago, at the same clock: due when that flush is
            {"decision": "grouped", "reason": "group", "due": "2026-11-23T10:00:40Z"},
        ),
        ({"mute": [ALL_DAY_MONDAY]}, 0, {"decision": "muted", "reason": "mute"}),
        (
            {"mute": [MONDAY_MORNING], "when_muted": "hold"},
            0,
            {"decision": "held", "reason": "mute", "due": "2026-11-23T12:00:00Z"},
        ),
        ({"active": [MONDAY_MORNING]}, 0, {"decision": "deliver", "reason": ""}),
    ],
    ids=[
        "under-throttle",
        "throttled-drop",
        "throttled-digest",
        "dedup-first",
        "deduplicated",
        "grouped-opens",
        "grouped-joins",
        "muted",
        "held",
        "active",
    ],
)
def test_dry_run_previews_the_policy_decision_without_changing_its_state(
    api: RulesApi, policy: dict[str, Any], earlier: int, expected: dict[str, Any]
) -> None:
    # GIVEN a rule with a delivery policy, and `earlier` deliveries of the same event's kind already decided
    assert api.create({**SMS_RULE, "policy": policy}).status == 201
    clock = Clock(now=lambda: MONDAY_10_UTC)
    api.module.policy_state.clock = clock
    state = PolicyState(boto3.client("dynamodb", region_name=REGION), POLICY_TABLE, lambda *_: None, clock)
    event = {"type": "order.failed", "level": "ERROR", "object": "orders/1", "system_id": "shop"}
    for number in range(earlier):
        detail = {**event, "id": f"earlier-{number}", "hops": 0}
        state.decide(SMS_RULE_NAME, DeliveryPolicy.model_validate(policy), detail)
    items = policy_items(api)

    # WHEN the dry run is asked twice
    first, second = api.test(SMS_RULE_NAME, event), api.test(SMS_RULE_NAME, event)

    # THEN it answers the decision the policy would take now, twice the same: the preview wrote nothing
    assert first.status == 200, first.body
    preview = first.body["policy"]
    assert {key: preview[key] for key in expected} == expected
    assert (preview["group"] is not None) == (
        expected["decision"] in {"grouped", "held"} or "digest" in preview["reason"]
    )
    assert "due" in expected or preview["due"] is None
    assert (first.body["matches"], second.body) == (True, first.body)
    assert policy_items(api) == items


def test_dry_run_of_an_event_the_rule_does_not_match_previews_no_policy(api: RulesApi) -> None:
    assert api.create({**SMS_RULE, "policy": {"throttle": {"limit": 1, "window": "1m"}}}).status == 201
    response = api.test(SMS_RULE_NAME, {"type": "order.failed", "level": "INFO"})
    assert (response.status, response.body) == (200, {"matches": False, "policy": None})
    assert policy_items(api) == 0


def test_dry_run_of_a_policy_rule_with_an_invalid_event_names_the_field_and_reads_nothing(api: RulesApi) -> None:
    assert api.create({**SMS_RULE, "policy": {"dedup": {"window": "10m"}}}).status == 201
    response = api.test(SMS_RULE_NAME, {"type": "order.failed", "level": "LOUD"})
    assert field_errors(response) == [("level", "value_error")]
    assert policy_items(api) == 0


def test_dry_run_of_an_unknown_rule_is_not_found(api: RulesApi) -> None:
    # GIVEN / WHEN
    response = api.test("nope", body_of(load_event("apigw/rules-test")))

    # THEN
    assert_error(response, 404, "not_found", "no rule named 'nope'")
    assert api.audit() == [audited("rule.test", "/rules/nope/test", 404)]


def test_dry_run_with_an_invalid_event_names_the_field(created: RulesApi) -> None:
    # GIVEN / WHEN
    response = created.test(SAMPLE_NAME, {"level": "ERROR", "colour": "red"})

    # THEN
    assert sorted(field_errors(response)) == [("colour", "extra_forbidden"), ("type", "missing")]
    assert created.audit() == [audited("rule.test", f"/rules/{SAMPLE_NAME}/test", 422)]


# ---- the audit trail ----


def test_every_call_is_audited_with_the_callers_request_key(api: RulesApi) -> None:
    # GIVEN
    create = with_headers(request("rules-create"), X_Request_Key="Req_1001")

    # WHEN
    api.call(create)
    api.list_rules()
    api.get(SAMPLE_NAME)
    api.update(SAMPLE_NAME, SAMPLE_RULE)
    api.test(SAMPLE_NAME, body_of(load_event("apigw/rules-test")))
    api.delete(SAMPLE_NAME)
    api.delete(SAMPLE_NAME)

    # THEN
    details = api.probe.drain_details()
    path = f"/rules/{SAMPLE_NAME}"
    assert [AuditEvent(d["type"], d["object"], d["info"], d.get("subject"), d["external"]) for d in details] == [
        audited("rule.create", "/rules", 201),
        audited("rule.list", "/rules", 200),
        audited("rule.get", path, 200),
        audited("rule.update", path, 200),
        audited("rule.test", f"{path}/test", 200),
        audited("rule.delete", path, 204),
        audited("rule.delete", path, 404),
    ]
    assert details[0]["request_key"] == "Req_1001"
    assert all(detail["hops"] == 0 and detail["level"] == "INFO" for detail in details)
    assert len({detail["request_key"] for detail in details}) == len(details)


# ---- rules stored in a form this version cannot read; failures half-way ----


def _store_unreadable_rule(api: RulesApi, name: str) -> None:
    """A rule whose stored JSON no longer validates (e.g. written by an older version)."""
    api.events.put_rule(Name=name, EventBusName=BUS_NAME, EventPattern=json.dumps({"source": ["x"]}))
    template = '{"rule":{"name":"%s","action":"log","config":{"retired_option":1}},"event":<aws.events.event.json>}'
    api.events.put_targets(
        Rule=name,
        EventBusName=BUS_NAME,
        Targets=[
            {
                "Id": "action",
                "Arn": api.targets.log_queue.arn,
                "InputTransformer": {"InputPathsMap": {}, "InputTemplate": template % name},
            }
        ],
    )


def test_an_unreadable_stored_rule_does_not_break_the_list_and_can_be_deleted(created: RulesApi) -> None:
    # GIVEN a rule stored in a form this version cannot read, next to a good one
    _store_unreadable_rule(created, "legacy")

    # WHEN listing, getting and deleting
    listed = created.list_rules()
    got = created.get("legacy")
    deleted = created.delete("legacy")

    # THEN the list still answers (without it), GET says why, and DELETE removes it
    assert listed.status == 200
    assert [rule["name"] for rule in listed.body["rules"]] == [SAMPLE_NAME]
    assert got.status == 409
    assert "cannot read" in got.body["message"]
    assert deleted.status == 204
    assert "legacy" not in created.rule_names()


def test_a_replace_whose_target_cannot_be_put_restores_the_previous_pattern(
    created: RulesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the rule as created, and PutTargets failing
    before = created.describe(SAMPLE_NAME)
    store_events = created.module.store._events

    def refuse(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalException", "Message": "down"}}, "PutTargets")

    monkeypatch.setattr(store_events, "put_targets", refuse)

    # WHEN replacing it with a different match
    with pytest.raises(ClientError):
        created.update(SAMPLE_NAME, sample_rule(match={"type": "payment."}))

    # THEN the rule keeps its previous pattern (no new pattern on the old target), and the failure was audited
    assert created.describe(SAMPLE_NAME)["EventPattern"] == before["EventPattern"]
    assert created.audit() == [audited("rule.update", f"/rules/{SAMPLE_NAME}", 500)]


def test_a_full_bus_refuses_a_new_rule_with_409_and_leaves_nothing(
    api: RulesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN EventBridge refusing a new rule: the bus's rule quota (300 by default) is reached
    def refuse(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "quota"}}, "PutRule")

    monkeypatch.setattr(api.module.store._events, "put_rule", refuse)

    # WHEN
    response = api.create()

    # THEN 409 with the API's error body, nothing on the bus, and the failure audited
    assert_error(response, 409, "conflict")
    assert SAMPLE_NAME not in api.rule_names()
    assert api.audit() == [audited("rule.create", "/rules", 409)]


# ---- optimistic concurrency: ETag, If-Match, If-None-Match ------------------------------------


def test_every_read_and_write_of_a_rule_answers_its_etag(api: RulesApi) -> None:
    created = api.create()
    assert created.status == 201
    etag = created.headers["ETag"]
    assert api.get(SAMPLE_NAME).headers["ETag"] == etag
    updated = api.call(
        with_headers(request("rules-update", name=SAMPLE_NAME, body=sample_rule(description="v2")), If_Match=etag)
    )
    assert updated.status == 200, updated.body
    assert updated.headers["ETag"] not in (etag, None)
    assert api.get(SAMPLE_NAME).headers["ETag"] == updated.headers["ETag"]


def test_a_stale_if_match_is_refused_with_412_and_changes_nothing(api: RulesApi) -> None:
    stale = api.create().headers["ETag"]
    assert api.update(SAMPLE_NAME, sample_rule(description="someone else")).status == 200
    before = api.describe(SAMPLE_NAME)
    api.audit()
    refused = api.call(
        with_headers(request("rules-update", name=SAMPLE_NAME, body=sample_rule(description="mine")), If_Match=stale)
    )
    assert_error(refused, 412, "precondition_failed")
    assert api.describe(SAMPLE_NAME)["Description"] == before["Description"] == "someone else"
    deleted = api.call(with_headers(request("rules-delete", name=SAMPLE_NAME), If_Match=stale))
    assert_error(deleted, 412, "precondition_failed")
    assert SAMPLE_NAME in api.rule_names()
    assert api.audit() == [
        audited("rule.update", f"/rules/{SAMPLE_NAME}", 412),
        audited("rule.delete", f"/rules/{SAMPLE_NAME}", 412),
    ]
    current = api.get(SAMPLE_NAME).headers["ETag"]
    assert api.call(with_headers(request("rules-delete", name=SAMPLE_NAME), If_Match=current)).status == 204
    assert SAMPLE_NAME not in api.rule_names()


def test_if_none_match_star_creates_only_a_new_rule(api: RulesApi) -> None:
    assert api.call(with_headers(request("rules-create"), If_None_Match="*")).status == 201
    # (header names are case-insensitive: the CLI sends them in lower case)
    again = api.call(with_headers(request("rules-create", body=sample_rule(action="log")), if_none_match="*"))
    assert_error(again, 412, "precondition_failed")
    assert api.get(SAMPLE_NAME).body["action"] == SAMPLE_RULE["action"]
