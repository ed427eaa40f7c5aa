"""The one action runner: idempotency with one key scheme, result events, metrics, retry later, steps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator.action import ActionRunner, Call, Effect, Result, RetryLater
from correlator.configs import ActionConfig, EmailConfig
from correlator.delivery import Delivery
from correlator.event import Event, Level
from correlator.registry import ActionSpec, spec_of
from tests.samples import load_event

DELIVERY = "eventbridge/email-delivery"


class MemoryOnce:
    """``OncePerKey`` in memory: results stored per key, nothing stored when the effect raises."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}

    def register_lambda_context(self, context: Any) -> None:
        pass

    def run(self, key: Mapping[str, str], effect: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        name = repr(sorted(key.items()))
        if name in self.stored:
            return self.stored[name], True
        self.stored[name] = effect()
        return self.stored[name], False


@dataclass
class Recorder:
    """Where the runner's result events and metrics go."""

    events: list[Event] = field(default_factory=list)
    metrics: list[tuple[str, float]] = field(default_factory=list)

    def emit(self, type: str, **fields: Any) -> Event:
        event = Event.model_validate(
            {"id": f"e{len(self.events)}", "time": "2026-11-22T14:52:39.778Z", "external": False, "type": type}
            | {k: v for k, v in fields.items() if k in ("object", "info", "hops", "level") and v is not None}
        )
        self.events.append(event)
        return event

    def add_metric(self, name: str, unit: Any, value: float, *args: Any, **kwargs: Any) -> None:
        self.metrics.append((name, value))


class NullLog:
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        pass

    warning = info

    def append_keys(self, **kwargs: Any) -> None:
        pass


class TwoParts:
    """An action with two effects per delivery; ``outcomes`` says what each performs."""

    spec: ClassVar[ActionSpec] = replace(spec_of("email"), metrics={"sent": "Sent", "failed": "Failed"})

    def __init__(self, outcome: Callable[[str], Result]) -> None:
        self.outcome = outcome
        self.performed: list[str] = []

    def plan(self, delivery: Delivery[EmailConfig], call: Call) -> list[Effect]:
        return [Effect(partial(self._perform, part), part=part) for part in ("a", "b")]

    def _perform(self, part: str) -> Result:
        self.performed.append(part)
        return self.outcome(part)


def runner_for(action: TwoParts, recorder: Recorder, once: MemoryOnce, steps: Any = ()) -> ActionRunner:
    return ActionRunner(action, emitter=recorder, metrics=recorder, log=NullLog(), once=once, steps=steps)  # type: ignore[arg-type]


def test_each_effect_runs_once_per_key_and_reports_once() -> None:
    # GIVEN an action with two effects that both succeed
    recorder, once = Recorder(), MemoryOnce()
    action = TwoParts(lambda part: Result("sent", "sent", f"to-{part}"))
    runner = runner_for(action, recorder, once)

    # WHEN the same delivery arrives twice
    first = runner.handle(load_event(DELIVERY), LambdaContext())
    second = runner.handle(load_event(DELIVERY), LambdaContext())

    # THEN each effect ran once, with one result event each (hops + 1), and the replay says so
    assert action.performed == ["a", "b"]
    assert [(e.type, e.object, e.info, e.hops) for e in recorder.events] == [
        ("email", "to-a", "sent", 1),
        ("email", "to-b", "sent", 1),
    ]
    assert [r["replayed"] for r in first["results"]] == [False, False]
    assert second["results"] == [{**r, "replayed": True} for r in first["results"]]
    assert recorder.metrics == [("Sent", 1), ("Sent", 1), ("DuplicateDeliveries", 1), ("DuplicateDeliveries", 1)]
    # AND one key scheme: the action, the delivery (rule # event id) and the part
    assert sorted(once.stored) == [
        repr(sorted({"action": "email", "delivery": f"notify-ops-on-error#{event_id()}", "part": p}.items()))
        for p in ("a", "b")
    ]


def event_id() -> str:
    return str(load_event(DELIVERY)["event"]["detail"]["id"])


def test_a_result_marked_retry_is_reported_then_retried_and_not_stored() -> None:
    # GIVEN the second effect fails in a way a retry may fix
    recorder, once = Recorder(), MemoryOnce()
    action = TwoParts(lambda part: Result("failed", "503", part, Level.ERROR, retry=part == "b"))
    runner = runner_for(action, recorder, once)

    # WHEN / THEN RetryLater, after its result event; the first effect is stored, the second is not
    with pytest.raises(RetryLater, match="503"):
        runner.handle(load_event(DELIVERY), LambdaContext())
    assert [e.object for e in recorder.events] == ["a", "b"]
    assert len(once.stored) == 1


def test_retry_later_raised_by_an_effect_reports_nothing() -> None:
    # GIVEN an effect that cannot tell yet
    def outcome(part: str) -> Result:
        raise RetryLater("throttled")

    recorder, once = Recorder(), MemoryOnce()
    runner = runner_for(TwoParts(outcome), recorder, once)

    # WHEN / THEN
    with pytest.raises(RetryLater, match="throttled"):
        runner.handle(load_event(DELIVERY), LambdaContext())
    assert recorder.events == []
    assert once.stored == {}


def test_a_step_can_decide_instead_of_the_effect_for_every_action() -> None:
    # GIVEN a policy step that suppresses part "b" and lets "a" through
    def policy(delivery: Delivery[ActionConfig], effect: Effect, proceed: Callable[[], Result]) -> Result:
        return Result("suppressed", "suppressed", effect.part) if effect.part == "b" else proceed()

    recorder, once = Recorder(), MemoryOnce()
    action = TwoParts(lambda part: Result("sent", "sent", part))
    runner = runner_for(action, recorder, once, steps=[policy])

    # WHEN
    response = runner.handle(load_event(DELIVERY), LambdaContext())

    # THEN only "a" was performed; "b" is reported and stored as suppressed
    assert action.performed == ["a"]
    assert [r["status"] for r in response["results"]] == ["sent", "suppressed"]
    assert [e.info for e in recorder.events] == ["sent", "suppressed"]


def test_a_delivery_for_another_action_is_refused() -> None:
    # GIVEN an sms delivery handed to the email runner
    recorder, once = Recorder(), MemoryOnce()
    runner = runner_for(TwoParts(lambda part: Result("sent", "sent")), recorder, once)

    # WHEN / THEN
    with pytest.raises(ValueError, match="not a delivery of the email action"):
        runner.handle(load_event("eventbridge/sms-delivery"), LambdaContext())
    assert recorder.events == []
