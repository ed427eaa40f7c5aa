"""Internal events: what the system itself did, published back onto the bus for rules to see.

Emitting never fails the caller: when the bus is unreachable the event is logged and counted
(metric ``InternalEventsFailed``) instead, because the user's request already succeeded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from correlator import aws
from correlator.event import MAX_TEXT_CHARS, Event, EventSubmission, Level, new_request_key, stamp_event
from correlator.publisher import EventPublisher
from correlator.text import clip

logger = logging.getLogger(__name__)


class MetricsRecorder(Protocol):
    def add_metric(self, name: str, unit: Any, value: float, *args: Any, **kwargs: Any) -> None: ...


class InternalEventEmitter:
    """Builds internal events (``external=false``) and publishes them best-effort."""

    def __init__(
        self,
        publisher: EventPublisher,
        *,
        on_failure: Callable[[Event, str], None] | None = None,
    ) -> None:
        self._publisher = publisher
        self._on_failure = on_failure

    def emit(
        self,
        type: str,
        *,
        object: str | None = None,
        info: str | None = None,
        subject: str | None = None,
        request_key: str | None = None,
        hops: int = 0,
        via: list[str] | None = None,
        level: Level = Level.INFO,
        payload: dict[str, Any] | None = None,
        system_id: str | None = None,
        publish: bool = True,
    ) -> Event:
        """Publish one internal event; return it whether or not it reached the bus.

        ``publish=False`` only builds it, for ``publish`` to send many at once.
        """
        submission = EventSubmission.model_validate(
            {
                "type": type,
                "level": level,
                "object": _clip(object),
                "info": _clip(info),
                "payload": payload,
                "system_id": system_id,
            }
        )
        event = stamp_event(
            submission,
            external=False,
            subject=subject,
            request_key=request_key if request_key is not None else new_request_key(),
            hops=hops,
            via=via,
        )
        if publish:
            self.publish([event])
        return event

    def publish(self, events: Sequence[Event]) -> None:
        """Publish events built by ``emit(..., publish=False)``, in PutEvents batches (best-effort too)."""
        reasons: list[str | None]
        try:
            outcomes = self._publisher.publish(events)
            reasons = [None if o.accepted else f"{o.error_code}: {o.error_message}" for o in outcomes]
        except Exception as error:  # the caller's request must not fail because of the bus
            reasons = [f"{error.__class__.__name__}: {error}"] * len(events)
        for event, reason in zip(events, reasons, strict=True):
            if reason is not None:
                logger.error("internal event not published", extra={"event_type": event.type, "reason": reason})
                if self._on_failure is not None:
                    self._on_failure(event, reason)


def _clip(value: str | None) -> str | None:
    return None if value is None else clip(value, MAX_TEXT_CHARS)


def counted_emitter(publisher: EventPublisher, metrics: MetricsRecorder) -> InternalEventEmitter:
    """An emitter that counts each event it could not publish (metric ``InternalEventsFailed``)."""

    def count(event: Event, reason: str) -> None:
        metrics.add_metric(name="InternalEventsFailed", unit=MetricUnit.Count, value=1)

    return InternalEventEmitter(publisher, on_failure=count)


def bus_emitter(metrics: MetricsRecorder, publisher: EventPublisher | None = None) -> InternalEventEmitter:
    """The function's emitter: internal events on the stack's bus (``EVENT_BUS_NAME``), failures counted.

    ``publisher``: one the function already has for that bus (its client is reused).
    """
    return counted_emitter(publisher or EventPublisher(aws.client("events"), os.environ["EVENT_BUS_NAME"]), metrics)
