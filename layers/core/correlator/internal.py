"""Internal events: what the system itself did, published back onto the bus for rules to see.

Emitting never fails the caller: when the bus is unreachable the event is logged and counted
(metric ``InternalEventsFailed``) instead, because the user's request already succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from correlator.event import MAX_TEXT_CHARS, Event, EventSubmission, Level, new_request_key, stamp_event
from correlator.publisher import EventPublisher

logger = logging.getLogger(__name__)


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
    ) -> Event:
        """Publish one internal event; return it whether or not it reached the bus."""
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
        try:
            outcome = self._publisher.publish([event])[0]
            reason = None if outcome.accepted else f"{outcome.error_code}: {outcome.error_message}"
        except Exception as error:  # the caller's request must not fail because of the bus
            reason = f"{error.__class__.__name__}: {error}"
        if reason is not None:
            logger.error("internal event not published", extra={"event_type": type, "reason": reason})
            if self._on_failure is not None:
                self._on_failure(event, reason)
        return event


def _clip(value: str | None) -> str | None:
    return value if value is None or len(value) <= MAX_TEXT_CHARS else value[: MAX_TEXT_CHARS - 1] + "…"
