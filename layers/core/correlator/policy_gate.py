"""The policy step every action with an outside effect goes through, and the digests it releases.

``PolicyStep`` (a step of ``correlator.action.ActionRunner``) decides each delivery of a rule with
a ``policy`` (``correlator.policy_state``): "deliver now" lets the effect run; any other decision
is the effect's result instead, reported as ``policy.throttled``, ``policy.deduplicated``,
``policy.grouped``, ``policy.muted`` or ``policy.held`` naming the rule, the event and the group;
the flusher emits ``policy.flushed`` with the group's count when a digest goes out. So the event
log is the notification history: every matching event is delivered, suppressed or grouped, and
every group is flushed with its count.

A digest reaches the action as a delivery of the ``policy.flushed`` event (the flusher invokes the
action's function with it, as a rule would): ``digest_of`` finds the group in it, the step lets it
through, and templates see it as ``group``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from correlator.action import Effect, Result, Step
from correlator.delivery import Delivery
from correlator.envelope import SOURCE_INTERNAL
from correlator.event import Event, Level, format_time
from correlator.internal import InternalEventEmitter
from correlator.policy_state import Decision, PolicyState, sqs_flush_sender

POLICY_FLUSHED = "policy.flushed"
FLUSH_RULE_PREFIX = "rule/"


def digest_of(delivery: Delivery[Any]) -> dict[str, Any] | None:
    """The group a digest delivery carries (its ``policy.flushed`` event's), ``None`` for any other delivery."""
    event = delivery.event
    if event.type != POLICY_FLUSHED or event.external or event.system_id != FLUSH_RULE_PREFIX + delivery.rule.name:
        return None
    group = (event.payload or {}).get("group")
    return dict(group) if isinstance(group, Mapping) else None


class PolicyStep:
    """The runner step of delivery policies (``correlator.action.Step``): deliver now, or report the decision.

    ``state`` ``None`` when the function has no policy table: a rule with a policy then fails (a
    deployment error), a rule without one is untouched.
    """

    def __init__(self, state: PolicyState | None) -> None:
        self.state = state

    def __call__(self, delivery: Delivery[Any], effect: Effect, proceed: Callable[[], Result]) -> Result:
        policy = delivery.rule.policy
        if policy is None or digest_of(delivery) is not None:
            return proceed()
        if self.state is None:
            raise RuntimeError("this rule has a delivery policy but the function has no POLICY_TABLE_NAME")
        flush = {"rule": delivery.rule.to_json(), "action": delivery.action}
        decision = self.state.decide(delivery.rule.name, policy, delivery.event.to_detail(), flush)
        if decision.deliver:
            return proceed()
        return decision_result(delivery, decision)


def decision_result(delivery: Delivery[Any], decision: Decision) -> Result:
    """The ``policy.<outcome>`` event that audits a decision other than "deliver now"."""
    payload: dict[str, Any] = {"event_id": delivery.event.id, "rule": delivery.rule.name, "action": delivery.action}
    if decision.due is not None:
        payload["due"] = decision.due
    if decision.group is not None:
        payload["group"] = decision.group
    return Result(
        decision.outcome,
        decision.reason,
        delivery.rule.name,
        Level.INFO,
        payload,
        type=f"policy.{decision.outcome}",
    )


def policy_steps(environ: Mapping[str, str]) -> list[Step]:
    """The steps every action runner takes: the delivery policy step (see ``PolicyStep``)."""
    return [PolicyStep(policy_state_from_env(environ))]


def emit_digest(
    emitter: InternalEventEmitter, rule: Mapping[str, Any], action: str, digest: Mapping[str, Any]
) -> Event:
    """Publish a group's digest: the ``policy.flushed`` event that the action receives (and the log records)."""
    labels = digest.get("labels") or {}
    return emitter.emit(
        POLICY_FLUSHED,
        object=", ".join(f"{key}={value}" for key, value in labels.items()) or str(rule["name"]),
        info=str(digest["count"]),
        hops=int(digest.get("hops") or 0),
        level=Level.INFO,
        payload={"rule": str(rule["name"]), "action": action, "group": dict(digest)},
        system_id=FLUSH_RULE_PREFIX + str(rule["name"]),
    )


def digest_delivery(rule: Mapping[str, Any], event: Event, account: str, region: str) -> dict[str, Any]:
    """The delivery an action function receives for a digest: as EventBridge would shape it."""
    return {
        "rule": dict(rule),
        "event": {
            "version": "0",
            "id": event.id,
            "detail-type": event.type,
            "source": SOURCE_INTERNAL,
            "account": account,
            "time": format_time(event.time),
            "region": region,
            "resources": [],
            "detail": event.to_detail(),
        },
    }


class Flusher:
    """Flushes due groups: publishes each digest (``policy.flushed``) and hands it to the rule's action.

    ``invoke(target_arn, delivery)`` sends the delivery to the action function asynchronously (as a
    rule target would); ``targets`` maps each action to its function (``ACTION_TARGETS``).
    """

    def __init__(
        self,
        state: PolicyState,
        emitter: InternalEventEmitter,
        targets: Mapping[str, str],
        invoke: Callable[[str, dict[str, Any]], None],
        *,
        account: str,
        region: str,
    ) -> None:
        self.state = state
        self._emitter = emitter
        self._targets = targets
        self._invoke = invoke
        self._account = account
        self._region = region

    def handle(self, message: Mapping[str, Any]) -> Event | None:
        """One flush message: the ``policy.flushed`` event when a digest went out, else ``None``."""
        digest = self.state.flush(message)
        if digest is None:
            return None
        rule, action = message["rule"], str(message["action"])
        event = emit_digest(self._emitter, rule, action, digest)
        self._invoke(self._targets[action], digest_delivery(rule, event, self._account, self._region))
        self.state.flushed(str(message["pk"]))
        return event


def policy_state_from_env(environ: Mapping[str, str]) -> PolicyState | None:
    """The stack's policy state (``POLICY_TABLE_NAME``, ``POLICY_FLUSH_QUEUE_URL``); ``None`` without them."""
    table, queue_url = environ.get("POLICY_TABLE_NAME"), environ.get("POLICY_FLUSH_QUEUE_URL")
    if not table or not queue_url:
        return None
    from correlator import aws

    return PolicyState(aws.client("dynamodb"), table, sqs_flush_sender(aws.client("sqs"), queue_url))
