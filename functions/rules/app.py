"""The rules admin API (IAM): rules compiled to EventBridge rules, managed at runtime."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from correlator import aws
from correlator.api import caller_from, register_error_handlers
from correlator.audit import RouteKey, resolve_and_audit
from correlator.bootstrap import load_settings
from correlator.compiler import TimerSettings
from correlator.errors import ValidationFailedError
from correlator.event import EventSubmission, stamp_event
from correlator.internal import bus_emitter
from correlator.logs import function_logger
from correlator.personium import override_method
from correlator.personium_rules import RULE_EVENT_TYPES, is_personium_rule_route, personium_rules_resolver
from correlator.policy_state import read_only_policy_state
from correlator.relay_policy import RelaySettings, check_relay_rule
from correlator.rulelock import RuleWriteLease
from correlator.rules import RULE_NAME_PATTERN, Rule, RuleView
from correlator.rulestore import RuleStore, deployment_from_env
from correlator.tracing import PATCH_MODULES

EVENT_TYPES: dict[RouteKey, str] = {
    ("POST", "/rules"): "rule.create",
    ("GET", "/rules"): "rule.list",
    ("GET", "/rules/{name}"): "rule.get",
    ("PUT", "/rules/{name}"): "rule.update",
    ("DELETE", "/rules/{name}"): "rule.delete",
    ("POST", "/rules/{name}/test"): "rule.test",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    schedule_group_name: str
    scheduler_role_arn: str
    event_bus_arn: str
    rule_lease_table_name: str
    policy_table_name: str | None = None  # the delivery policies' state (a rule's policy is shown with it)


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)


register_error_handlers(app)
relay_settings = RelaySettings.from_env(os.environ)
store = RuleStore(
    aws.client("events"),
    deployment_from_env(os.environ),
    scheduler=aws.client("scheduler"),
    timers=TimerSettings(
        group_name=settings.schedule_group_name,
        role_arn=settings.scheduler_role_arn,
        bus_arn=settings.event_bus_arn,
    ),
    # Writers of one rule take turns (ETag / If-Match): a lease for the rest of this invocation.
    lease=RuleWriteLease(
        aws.client("dynamodb"),
        settings.rule_lease_table_name,
        remaining_seconds=lambda: app.lambda_context.get_remaining_time_in_millis() / 1000,
    ),
    # Relay URLs pass the SSRF guard (resolved now, again at send time).
    check=partial(check_relay_rule, settings=relay_settings),
)


emitter = bus_emitter(metrics)
# The dry run previews delivery policies: reads of the policy state (POLICY_TABLE_NAME), never a write.
policy_state = read_only_policy_state(aws.client("dynamodb"), settings.policy_table_name)
# Personium\'s rule API (/__ctl/Rule, /__rule) on the same store, in Personium\'s shapes.
personium_app = personium_rules_resolver(store)
RuleName = Annotated[str, Path(pattern=RULE_NAME_PATTERN, description="The rule's name")]


class RuleList(BaseModel):
    rules: list[RuleView]


class TestEvent(EventSubmission):
    """An event to try a rule against: a submission plus the fields the server would set."""

    external: Annotated[bool, Field(strict=True)] = True
    subject: str | None = None
    hops: Annotated[int, Field(ge=0, strict=True)] = 0


class PolicyPreview(BaseModel):
    """What the rule's delivery policy would do with the event now, given its current state (nothing changes)."""

    decision: Literal["deliver", "throttled", "deduplicated", "grouped", "muted", "held"] = Field(
        description="deliver now; or the policy.<decision> event a delivery would report"
    )
    reason: str = Field(description="drop or digest (throttled), drop (deduplicated), group, mute")
    group: str | None = Field(None, description="the group a digest would carry the event in")
    due: datetime | None = Field(None, description="when that group (or a held delivery) would go out")


class TestResult(BaseModel):
    matches: bool
    policy: PolicyPreview | None = Field(
        None, description="the rule's delivery policy decision for a matching event; null without a policy"
    )


IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="Write only if the rule still has this ETag (else 412)")
]
IfNoneMatch = Annotated[
    str | None, Header(alias="If-None-Match", description="* : create only if no rule has this name (else 412)")
]


def _with_etag(view: RuleView, etag: str, status_code: int = 200, **headers: str) -> Response[RuleView]:
    # Without a JSON content type Powertools leaves the body unserialized (a dict: API Gateway answers 502).
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=view,
        headers={"ETag": etag, **headers},
    )


@app.post(
    "/rules",
    summary="Create a rule",
    responses={
        201: {"description": "Created; ETag header"},
        409: {"description": "A rule with that name exists, or another write to it is in progress"},
        412: {"description": "If-None-Match: * and a rule with that name exists"},
        422: {"description": "Invalid rule; details name each field"},
    },
)
def create_rule(rule: Annotated[Rule, Body()], if_none_match: IfNoneMatch = None) -> Response[RuleView]:
    created, etag = store.create(rule, if_none_match=if_none_match)
    logger.info("rule created", rule=rule.name, action=rule.action)
    return _with_etag(created, etag, 201, Location=f"/rules/{rule.name}")


@app.get("/rules", summary="List rules (template rules are read-only)")
def list_rules() -> RuleList:
    return RuleList(rules=store.list_all())


@app.get(
    "/rules/<name>",
    summary="Get a rule",
    responses={200: {"description": "The rule; ETag header"}, 404: {"description": "No such rule"}},
)
def get_rule(name: RuleName) -> Response[RuleView]:
    return _with_etag(*store.get_with_etag(name))


@app.put(
    "/rules/<name>",
    summary="Replace a rule",
    responses={
        200: {"description": "The rule as stored; ETag header"},
        404: {"description": "No such rule"},
        409: {"description": "A read-only rule (declared in template.yaml), or another write in progress"},
        412: {"description": "If-Match does not hold: the rule changed since it was read"},
        422: {"description": "Invalid rule; details name each field"},
    },
)
def replace_rule(name: RuleName, rule: Annotated[Rule, Body()], if_match: IfMatch = None) -> Response[RuleView]:
    if rule.name != name:
        raise ValidationFailedError(
            "the body's name must be the rule's name", [{"field": "name", "message": f"expected {name!r}"}]
        )
    replaced, etag = store.replace(rule, if_match=if_match)
    logger.info("rule replaced", rule=name)
    return _with_etag(replaced, etag)


@app.delete(
    "/rules/<name>",
    summary="Delete a rule",
    responses={
        204: {"description": "Deleted"},
        404: {"description": "No such rule"},
        409: {"description": "A read-only rule (declared in template.yaml), or another write in progress"},
        412: {"description": "If-Match does not hold: the rule changed since it was read"},
    },
)
def delete_rule(name: RuleName, if_match: IfMatch = None) -> Response[None]:
    store.delete(name, if_match=if_match)
    logger.info("rule deleted", rule=name)
    return Response(status_code=204)


@app.post(
    "/rules/<name>/test",
    summary="Dry run: would this event match the rule?",
    responses={200: {"description": "Whether the rule matches"}, 404: {"description": "No such rule"}},
)
def test_rule(name: RuleName, event: Annotated[TestEvent, Body()]) -> TestResult:
    caller = caller_from(app.current_event)
    fields = event.model_dump(exclude={"external", "subject", "hops"}, by_alias=True)
    stamped = stamp_event(
        EventSubmission.model_validate(fields),
        external=event.external,
        subject=event.subject,
        request_key=caller.request_key,
        hops=event.hops,
    )
    rule = store.get(name)
    if not store.test(rule, stamped):
        return TestResult(matches=False)
    if rule.policy is None:
        return TestResult(matches=True)
    if policy_state is None:
        raise RuntimeError("this rule has a delivery policy but the function has no POLICY_TABLE_NAME")
    decision = policy_state.preview(rule.name, rule.policy, stamped.to_detail())
    due = None if decision.due is None else datetime.fromtimestamp(decision.due, UTC)
    return TestResult(
        matches=True,
        policy=PolicyPreview(decision=decision.outcome, reason=decision.reason, group=decision.group, due=due),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_personium_rule_route(event):
        app.lambda_context = context  # the store's write lease reads the time left from app
        return resolve_and_audit(personium_app, override_method(event), context, emitter, RULE_EVENT_TYPES)
    return resolve_and_audit(app, event, context, emitter, EVENT_TYPES)
