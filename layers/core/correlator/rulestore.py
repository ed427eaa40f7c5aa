"""Rules stored as what they are: EventBridge rules (and Scheduler schedules for timer rules).

Create, list, get, replace, delete and dry-run rules. Nothing is kept anywhere else: list/get
read the rules and their targets back from EventBridge. Rules declared in template.yaml carry
``"read_only": true`` in their rule JSON and cannot be replaced or deleted through the API.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from correlator.compiler import (
    Deployment,
    RuleCompileError,
    TimerSettings,
    compile_rule,
    compile_schedule,
    stored_rule,
)
from correlator.envelope import SOURCE_EXTERNAL, SOURCE_INTERNAL
from correlator.errors import ConflictError, NotFoundError, PreconditionFailedError, ValidationFailedError
from correlator.event import Event, format_time
from correlator.rulelock import RuleWriteLease, etag_matches, rule_etag
from correlator.rules import Rule, RuleView

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

_NOT_FOUND = frozenset({"ResourceNotFoundException"})
logger = logging.getLogger(__name__)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class RuleStore:
    """Rules of one bus, kept in EventBridge."""

    def __init__(
        self,
        events: EventBridgeClient,
        deployment: Deployment,
        *,
        scheduler: EventBridgeSchedulerClient | None = None,
        timers: TimerSettings | None = None,
        lease: RuleWriteLease | None = None,
        check: Callable[[Rule], None] = lambda rule: None,
    ) -> None:
        """``check`` runs before every write: the deployment's own checks (the relay SSRF guard), 422 on failure."""
        self._check = check
        self._events = events
        self._lease = lease
        self._deployment = deployment
        self._scheduler = scheduler
        self._timers = timers
        # TestEventPattern wants an event from this account: the bus ARN names it.
        self._account = timers.bus_arn.split(":")[4] if timers else "123456789012"

    # -- reading ----------------------------------------------------------------------------
    def get(self, name: str) -> RuleView:
        """The rule called ``name``; ``NotFoundError`` if there is none."""
        return self.get_with_etag(name)[0]

    def get_with_etag(self, name: str) -> tuple[RuleView, str]:
        """The rule called ``name`` and its ETag; ``NotFoundError`` if there is none."""
        data = self._stored(name)
        if data is None:
            raise NotFoundError(f"no rule named {name!r}")
        try:
            return RuleView.model_validate(data), rule_etag(data)
        except ValidationError:
            raise ConflictError(
                f"rule {name!r} is stored in a form this version cannot read; replace it (PUT) or delete it"
            ) from None

    def list_all(self) -> list[RuleView]:
        """Every rule on the bus, sorted by name (EventBridge rules that are not ours are skipped)."""
        rules: list[RuleView] = []
        paginator = self._events.get_paginator("list_rules")
        for page in paginator.paginate(EventBusName=self._deployment.bus_name):
            for item in page.get("Rules", []):
                targets = self._targets(item["Name"])
                data = stored_rule(item, targets) if targets is not None else None
                if data is None:
                    continue
                try:
                    rules.append(RuleView.model_validate(data))
                except ValidationError as error:
                    # Still live on EventBridge; GET/PUT/DELETE by name can reach it.
                    logger.error("stored rule %s does not validate: %s", item["Name"], error)
        return sorted(rules, key=lambda rule: rule.name)

    def _stored(self, name: str) -> dict[str, Any] | None:
        try:
            description = self._events.describe_rule(Name=name, EventBusName=self._deployment.bus_name)
        except ClientError as error:
            if _code(error) in _NOT_FOUND:
                return None
            raise
        return stored_rule(dict(description), self._targets(name) or [])

    def _targets(self, name: str) -> list[dict[str, Any]] | None:
        try:
            response = self._events.list_targets_by_rule(Rule=name, EventBusName=self._deployment.bus_name)
        except ClientError as error:
            if _code(error) in _NOT_FOUND:
                return None
            raise
        return [dict(target) for target in response.get("Targets", [])]

    # -- writing ----------------------------------------------------------------------------
    def create(self, rule: Rule, *, if_none_match: str | None = None) -> tuple[RuleView, str]:
        """Create ``rule``; ``ConflictError`` if a rule (ours or not) already has that name
        (``PreconditionFailedError`` instead when the caller said ``If-None-Match: *``)."""
        self._check(rule)
        with self._writing(rule.name):
            if self._exists(rule.name):
                if if_none_match is not None:
                    raise PreconditionFailedError(f"a rule named {rule.name!r} already exists (If-None-Match)")
                raise ConflictError(f"a rule named {rule.name!r} already exists")
            self._put(rule, created=True)
            return self._written(rule.name)

    def replace(self, rule: Rule, *, if_match: str | None = None) -> tuple[RuleView, str]:
        """Replace the rule of the same name; 404 if unknown, 409 if read-only, 412 if ``if_match`` fails."""
        self._check(rule)
        with self._writing(rule.name):
            self._writable(rule.name, if_match)
            previous = self._events.describe_rule(Name=rule.name, EventBusName=self._deployment.bus_name)
            self._put(rule, created=False, previous=dict(previous))
            return self._written(rule.name)

    def delete(self, name: str, *, if_match: str | None = None) -> None:
        """Delete the rule, its target and its schedule; 404 if unknown, 409 if read-only, 412 if ``if_match`` fails."""
        with self._writing(name):
            self._writable(name, if_match)
            bus = self._deployment.bus_name
            targets = self._targets(name) or []
            if targets:
                self._events.remove_targets(Rule=name, EventBusName=bus, Ids=[target["Id"] for target in targets])
            self._events.delete_rule(Name=name, EventBusName=bus)
            self._delete_schedule(name)

    def _writing(self, name: str) -> AbstractContextManager[None]:
        # Check and write under the rule's lease: EventBridge itself has no conditional writes.
        return self._lease.hold(name) if self._lease is not None else nullcontext()

    def _written(self, name: str) -> tuple[RuleView, str]:
        data = self._stored(name)
        if data is None:  # deleted by hand between our write and this read
            raise NotFoundError(f"no rule named {name!r}")
        return RuleView.model_validate(data), rule_etag(data)

    def _exists(self, name: str) -> bool:
        try:
            self._events.describe_rule(Name=name, EventBusName=self._deployment.bus_name)
        except ClientError as error:
            if _code(error) in _NOT_FOUND:
                return False
            raise
        return True

    def _writable(self, name: str, if_match: str | None) -> None:
        # Read unvalidated: a stored rule this version cannot read can still be replaced or deleted.
        data = self._stored(name)
        if data is None:
            if if_match is not None:
                raise PreconditionFailedError(f"no rule named {name!r} (If-Match)")
            raise NotFoundError(f"no rule named {name!r}")
        if data.get("read_only") is True:
            raise ConflictError(f"rule {name!r} is declared in template.yaml and is read-only")
        if if_match is not None and not etag_matches(if_match, rule_etag(data)):
            raise PreconditionFailedError(
                f"rule {name!r} has changed (If-Match does not hold); read it again",
                [{"field": "If-Match", "message": f"the rule's ETag is {rule_etag(data)}"}],
            )

    def _put(self, rule: Rule, *, created: bool, previous: dict[str, Any] | None = None) -> None:
        try:
            compiled = compile_rule(rule, self._deployment)
        except RuleCompileError as error:
            raise ValidationFailedError(str(error), [{"field": error.field, "message": str(error)}]) from None
        try:
            self._events.put_rule(**compiled.put_rule)
        except ClientError as error:
            if _code(error) in ("InvalidEventPatternException", "ValidationException"):
                raise ValidationFailedError(
                    "pattern is not a valid EventBridge pattern", [{"field": "pattern", "message": str(error)}]
                ) from None
            if _code(error) == "LimitExceededException":
                raise ConflictError(f"the bus's rule quota is reached: {error}") from None
            raise
        try:
            self._events.put_targets(**compiled.put_targets)
            self._put_schedule(rule)
        except Exception:
            # Leave nothing half-made behind: no new rule without its target, no new pattern on an old target.
            bus = self._deployment.bus_name
            if created:
                self._events.remove_targets(Rule=rule.name, EventBusName=bus, Ids=["action"])
                self._events.delete_rule(Name=rule.name, EventBusName=bus)
            elif previous is not None:
                restore = {key: previous[key] for key in ("EventPattern", "State", "Description") if key in previous}
                self._events.put_rule(Name=rule.name, EventBusName=bus, **restore)
            raise
        if rule.match.timer is None:
            self._delete_schedule(rule.name)  # a replaced timer rule that is no longer one

    # -- timers -----------------------------------------------------------------------------
    def _put_schedule(self, rule: Rule) -> None:
        timer = rule.match.timer
        if timer is None:
            return
        if self._scheduler is None or self._timers is None:
            raise ValidationFailedError(
                "timer rules are not available in this deployment", [{"field": "match.type", "message": timer}]
            )
        try:
            arguments = compile_schedule(rule, self._timers, self._deployment.dead_letter_arn)
        except RuleCompileError as error:
            raise ValidationFailedError(str(error), [{"field": error.field, "message": str(error)}]) from None
        try:
            self._scheduler.update_schedule(**arguments)
        except ClientError as error:
            if _code(error) not in _NOT_FOUND:
                raise
            self._scheduler.create_schedule(**arguments)

    def _delete_schedule(self, name: str) -> None:
        if self._scheduler is None or self._timers is None:
            return
        try:
            self._scheduler.delete_schedule(Name=name, GroupName=self._timers.group_name)
        except ClientError as error:
            if _code(error) not in _NOT_FOUND:
                raise

    # -- dry run ----------------------------------------------------------------------------
    def test(self, rule: str | RuleView, event: Event) -> bool:
        """Would ``rule`` (or the rule of that name) match ``event``? (EventBridge's TestEventPattern)."""
        if isinstance(rule, str):
            rule = self.get(rule)
        description = self._events.describe_rule(Name=rule.name, EventBusName=self._deployment.bus_name)
        candidate = {
            "id": event.id,
            "detail-type": event.type,
            "source": SOURCE_EXTERNAL if event.external else SOURCE_INTERNAL,
            "account": self._account,
            "time": format_time(event.time).replace(".000Z", "Z"),
            "region": self._events.meta.region_name,
            "resources": [],
            "detail": event.to_detail(),
        }
        response = self._events.test_event_pattern(
            EventPattern=description["EventPattern"], Event=json.dumps(candidate)
        )
        return bool(response["Result"])


def deployment_from_env(environ: Mapping[str, str]) -> Deployment:
    """The ``Deployment`` the rules function runs in, from its environment (set by template.yaml)."""
    return Deployment(
        bus_name=environ["EVENT_BUS_NAME"],
        max_hops=int(environ.get("MAX_HOPS", "3")),
        targets=json.loads(environ["ACTION_TARGETS"]),
        dead_letter_arn=environ["RULE_TARGET_DLQ_ARN"],
    )
