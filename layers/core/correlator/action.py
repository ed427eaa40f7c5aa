"""The action contract: every action is an ``Action`` (or a ``QueueAction``) run by one runner.

An action says what it does with a delivery; the runner does everything else, the same way for
every action:

- **parse** the delivery ``{"rule", "event"}`` (the rule's config validated once, typed:
  ``delivery.config``) and refuse one that is not for this action (``ValueError``);
- **idempotency**, one key scheme: each ``Effect`` with an outside effect runs at most once per
  ``(action, rule name, event id, part)`` (``part`` tells apart the effects of one delivery: an
  SMS recipient); a redelivery gets the stored result back and emits nothing;
- **steps** around each effect, in order (``Step``): a delivery policy (deliver, suppress, hold,
  group) or an intent record plugs in here, for every action at once;
- **the result event** (``correlator.delivery.emit_result``) of each ``Result``;
- **metrics**: the action's metric for the result's ``status`` (``ActionSpec.metrics``), ``DuplicateDeliveries`` for a
  replay;
- **one "retry later" signal**, ``RetryLater``: raised by an effect (nothing reported or stored),
  or by the runner after reporting a ``Result`` with ``retry=True``. Out of a function invoked by
  EventBridge it fails the invocation (Lambda's asynchronous retries, then the on-failure
  destination); for a queue action it fails that record (SQS redelivers it, then dead-letters it);
- **one permanent-failure path**: a ``Result`` with ``retry=False`` (reported, stored, never
  retried). Anything else an action raises is a bug or an outage: it propagates like ``RetryLater``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from aws_lambda_powertools.metrics import MetricUnit

from correlator.configs import ActionConfig
from correlator.delivery import Delivery, emit_result, parse_delivery
from correlator.event import Level
from correlator.internal import InternalEventEmitter, MetricsRecorder
from correlator.registry import ActionSpec

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

ConfigT = TypeVar("ConfigT", bound=ActionConfig, contravariant=True)
DUPLICATE_METRIC = "DuplicateDeliveries"


class RetryLater(Exception):
    """A transient failure: the delivery is worth another attempt later (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Result:
    """What one effect did: ``status`` picks the metric; ``object``, ``info``, ``level`` and ``payload``
    are those of its result event. ``retry``: a transient failure, reported, then retried."""

    status: str
    info: str
    object: str | None = None
    level: Level = Level.INFO
    payload: Mapping[str, Any] | None = None
    retry: bool = False
    type: str | None = None  # the result event's type; None: the action's (a policy step reports policy.*)

    def to_json(self) -> dict[str, Any]:
        """What is stored for a replay and returned by the handler."""
        return {"status": self.status, "info": self.info, "object": self.object}


@dataclass(frozen=True, slots=True)
class Effect:
    """One thing an action does for a delivery. ``outside``: it has an outside effect, so it is done
    at most once per key; an effect without one (a dry run, a template error) is reported every time."""

    perform: Callable[[], Result]
    part: str = ""
    outside: bool = True


class Invocation(Protocol):
    """The part of the Lambda context an action may read."""

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Call:
    """The invocation a delivery came in: its raw payload and the Lambda context."""

    payload: Mapping[str, Any]
    context: Invocation

    def remaining_seconds(self) -> float:
        return self.context.get_remaining_time_in_millis() / 1000


class Action(Protocol[ConfigT]):
    """An action invoked once per delivery (EventBridge → its function)."""

    spec: ClassVar[ActionSpec]  # its rule actions, config models and metrics (``correlator.registry``)

    def plan(self, delivery: Delivery[ConfigT], call: Call) -> Sequence[Effect]:
        """The effects of ``delivery``, not yet performed (the runner performs each once)."""
        ...


class QueueAction(Protocol[ConfigT]):
    """An action fed in batches from a queue: one shared write for the whole batch, at least once."""

    spec: ClassVar[ActionSpec]
    reports: ClassVar[bool]  # emits result events

    def parse(self, body: str) -> Delivery[ActionConfig]:
        """The delivery in a queue message; ``ValueError`` when it is not one."""
        ...

    def perform_batch(
        self, deliveries: Sequence[tuple[str, Delivery[ConfigT]]], redelivered: Collection[str]
    ) -> BatchOutcome:
        """Perform every ``(message id, delivery)``; raise to fail the whole batch (nothing was written).

        ``redelivered``: the message ids SQS delivered before (an earlier attempt may have written them).
        """
        ...


@dataclass(slots=True)
class BatchOutcome:
    """Per message id a ``Result``, or the exception that hands it back to the queue; extra metric counts."""

    results: dict[str, Result | Exception] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class Step(Protocol):
    """Runs around an effect: call ``proceed()`` to go on, or return a ``Result`` instead (a policy)."""

    def __call__(self, delivery: Delivery[ActionConfig], effect: Effect, proceed: Callable[[], Result]) -> Result: ...


class Once(Protocol):
    """At most once per key (``correlator.idempotency.OncePerKey``): the stored result and whether it is a replay."""

    def run(self, key: Mapping[str, str], effect: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]: ...

    def register_lambda_context(self, context: Any) -> None: ...


class ActionLog(Protocol):
    """The function's Powertools ``Logger`` (JSON, with the invocation's keys)."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def append_keys(self, **kwargs: Any) -> None: ...


def check_delivery(spec: ActionSpec, delivery: Delivery[ActionConfig]) -> None:
    """``ValueError`` unless ``delivery`` is one of ``spec``'s rule actions."""
    if delivery.action not in spec.configs:
        raise ValueError(f"not a delivery of the {spec.name} action: {delivery.rule.action!r}")


class _Reporting:
    def __init__(self, spec: ActionSpec, emitter: InternalEventEmitter | None, metrics: MetricsRecorder) -> None:
        self._names = spec.metrics
        self.emitter = emitter
        self.metrics = metrics

    def count(self, status: str, value: int = 1) -> None:
        self.count_all({status: value})

    def count_all(self, counts: Mapping[str, int]) -> None:
        """One metric value per name: statuses that share a metric are added up."""
        totals: dict[str, int] = {}
        for status, value in counts.items():
            name = self._names.get(status)
            if name is not None:
                totals[name] = totals.get(name, 0) + value
        for name, total in totals.items():
            if total:
                self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=total)

    def event_of(self, delivery: Delivery[ActionConfig], result: Result, *, publish: bool) -> Any:
        assert self.emitter is not None  # an action that reports has an emitter (checked by its runner)
        payload = dict(result.payload) if result.payload is not None else None
        return emit_result(
            self.emitter,
            delivery,
            object=result.object,
            info=result.info,
            level=result.level,
            payload=payload,
            publish=publish,
            type=result.type,
        )


class ActionRunner:
    """Runs an ``Action`` for each invocation: ``handle(payload, context)`` is the function's handler body."""

    def __init__(
        self,
        action: Action[Any],
        *,
        emitter: InternalEventEmitter,
        metrics: MetricsRecorder,
        log: ActionLog,
        once: Once | None,
        steps: Sequence[Step] = (),
    ) -> None:
        self.action = action
        self.once = once
        self.steps = tuple(steps)
        self._log = log
        self._report = _Reporting(action.spec, emitter, metrics)

    def handle(self, payload: Mapping[str, Any], context: Invocation) -> dict[str, Any]:
        """Run the delivery in ``payload``: ``{"results": [{status, info, object, replayed}, ...]}``."""
        delivery = parse_delivery(payload)
        check_delivery(self.action.spec, delivery)
        if self.once is not None:
            self.once.register_lambda_context(context)
        event = delivery.event
        self._log.append_keys(
            rule=delivery.rule.name, action=delivery.action, event_id=event.id, request_key=event.request_key
        )
        effects = self.action.plan(delivery, Call(payload, context))
        return {"results": [self._run(delivery, effect) for effect in effects]}

    def _run(self, delivery: Delivery[ActionConfig], effect: Effect) -> dict[str, Any]:
        perform = partial(self._perform, delivery, effect)
        if effect.outside and self.once is not None:
            key = {"action": self.action.spec.name, "delivery": delivery.idempotency_key, "part": effect.part}
            stored, replayed = self.once.run(key, perform)
        else:
            stored, replayed = perform(), False
        if replayed:
            self._log.info("already done: not done again", status=stored.get("status"), part=effect.part or None)
            self._report.metrics.add_metric(name=DUPLICATE_METRIC, unit=MetricUnit.Count, value=1)
        else:
            self._report.count(str(stored["status"]))
        return {**stored, "replayed": replayed}

    def _perform(self, delivery: Delivery[ActionConfig], effect: Effect) -> dict[str, Any]:
        proceed: Callable[[], Result] = effect.perform
        for step in reversed(self.steps):
            proceed = partial(step, delivery, effect, proceed)
        result = proceed()
        self._report.event_of(delivery, result, publish=True)
        if result.retry:
            self._report.count(result.status)
            self._log.warning("retry later", status=result.status, info=result.info, object=result.object)
            raise RetryLater(f"{delivery.action} to {result.object}: {result.info}")
        return result.to_json()


class QueueRunner:
    """Runs a ``QueueAction`` for an SQS batch: ``handle(event)`` returns the partial batch response."""

    def __init__(
        self, action: QueueAction[Any], *, emitter: InternalEventEmitter | None = None, metrics: MetricsRecorder
    ) -> None:
        """``emitter``: where result events go; only for an action that ``reports`` (the log action does not)."""
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

        if action.reports and emitter is None:
            raise ValueError(f"the {action.spec.name} action reports results: it needs an emitter")
        self.action = action
        self._report = _Reporting(action.spec, emitter, metrics)
        self._processor = BatchProcessor(event_type=EventType.SQS)

    def handle(self, event: Mapping[str, Any]) -> PartialItemFailureResponse:
        records: list[dict[str, Any]] = list(event["Records"])
        failures: dict[str, Exception] = {}
        deliveries: list[tuple[str, Delivery[ActionConfig]]] = []
        for record in records:
            try:
                delivery = self.action.parse(record["body"])
                check_delivery(self.action.spec, delivery)
            except ValueError as error:  # pydantic's ValidationError included: not a delivery
                failures[record["messageId"]] = error
                continue
            deliveries.append((record["messageId"], delivery))
        counts = {"invalid": len(failures)}
        redelivered = {record["messageId"] for record in records if _receive_count(record) > 1}
        outcome = self.action.perform_batch(deliveries, redelivered) if deliveries else BatchOutcome()
        events = []
        for message_id, delivery in deliveries:
            result = outcome.results[message_id]
            status = "failed" if isinstance(result, Exception) else result.status
            counts[status] = counts.get(status, 0) + 1
            if isinstance(result, Exception):
                failures[message_id] = result
            elif self.action.reports:
                events.append(self._report.event_of(delivery, result, publish=False))
        if events and self._report.emitter is not None:
            self._report.emitter.publish(events)
        self._report.count_all({**counts, **outcome.counts})

        def hand_back(record: Any) -> None:
            failure = failures.get(record.message_id)
            if failure is not None:
                raise failure

        # Records that failed alone go back to SQS (retried, then dead-lettered); the others are done.
        with self._processor(records=records, handler=hand_back):
            self._processor.process()
        return self._processor.response()


def _receive_count(record: Mapping[str, Any]) -> int:
    return int((record.get("attributes") or {}).get("ApproximateReceiveCount") or "1")
