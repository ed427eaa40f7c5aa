"""What every action receives and emits.

A rule target receives ``{"rule": <rule JSON>, "event": <EventBridge event>}`` (the
InputTransformer of ``correlator.compiler``), directly as the Lambda event or as an SQS body.
Each action reports what it did as an internal *result event*: ``type`` = the action,
``object`` = its target, ``info`` = a status, ``hops`` = the event's hops + 1, the request key
and subject carried from the event, and ``system_id`` = ``rule/<rule name>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from correlator.configs import ActionConfig
from correlator.event import Event, Level, follow_up
from correlator.internal import InternalEventEmitter
from correlator.registry import canonical_action

if TYPE_CHECKING:
    # Imported when a delivery is parsed: the log writer never validates a whole rule (its cold start).
    from correlator.rules import Rule

ConfigT = TypeVar("ConfigT", bound=ActionConfig, covariant=True)


@dataclass(frozen=True, slots=True)
class Delivery(Generic[ConfigT]):
    """One rule firing: the rule and the event that matched it."""

    rule: Rule
    event: Event

    @property
    def action(self) -> str:
        return canonical_action(self.rule.action)

    @property
    def config(self) -> ConfigT:
        """The rule's validated config (the runner checks it is the model of this delivery's action)."""
        return cast("ConfigT", self.rule.typed_config)

    @property
    def idempotency_key(self) -> str:
        """(rule name, event id): the unit of "do it once"."""
        return f"{self.rule.name}#{self.event.id}"


def parse_delivery(payload: Mapping[str, Any] | str) -> Delivery[ActionConfig]:
    """Parse a delivery; ``ValueError`` (incl. pydantic's) when it is not one."""
    from correlator.rules import Rule

    rule_json, event = delivery_parts(payload)
    rule_json.pop("read_only", None)
    return Delivery(rule=Rule.model_validate(rule_json), event=event)


def delivery_parts(payload: Mapping[str, Any] | str) -> tuple[dict[str, Any], Event]:
    """A delivery's rule JSON (not validated) and its event; ``ValueError`` (incl. pydantic's) when it is not one."""
    message: Any = json.loads(payload) if isinstance(payload, str) else payload
    if not isinstance(message, Mapping) or not isinstance(message.get("event"), Mapping):
        raise ValueError("a delivery is {'rule': {...}, 'event': <EventBridge event>}")
    rule = message.get("rule") or {}
    if not isinstance(rule, Mapping):
        raise ValueError("a delivery's rule is an object")
    return dict(rule), Event.model_validate(message["event"].get("detail"))


def emit_result(
    emitter: InternalEventEmitter,
    delivery: Delivery[ActionConfig],
    *,
    object: str | None,
    info: str,
    level: Level = Level.INFO,
    payload: dict[str, Any] | None = None,
    publish: bool = True,
    type: str | None = None,
) -> Event:
    """Emit the result event of ``delivery``'s action (never raises; see ``InternalEventEmitter``).

    ``publish=False`` only builds it: ``emitter.publish`` then sends a batch's results together.
    ``type``: another event type than the action's (a delivery policy's decision, ``policy.*``).
    """
    return emitter.emit(
        type or delivery.action,
        object=object,
        info=info,
        **follow_up(delivery.event),
        level=level,
        payload=payload,
        system_id=f"rule/{delivery.rule.name}",
        publish=publish,
    )
