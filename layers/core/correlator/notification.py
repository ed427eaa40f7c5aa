"""What the notification actions (email, SMS) share: their results and how they are reported.

Each send runs at most once per key through ``correlator.idempotency.OncePerKey`` (re-exported
here for the notification functions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, Protocol, TypedDict

from correlator.delivery import Delivery, emit_result
from correlator.event import Level
from correlator.idempotency import OncePerKey
from correlator.internal import InternalEventEmitter

__all__ = ["NotificationResult", "OncePerKey", "clip_error", "failed", "report"]

STATUS_SENT: Final = "sent"
STATUS_FAILED: Final = "failed"
STATUS_DRY_RUN: Final = "dry-run"
MAX_ERROR_CHARS = 1000

Status = Literal["sent", "failed", "dry-run"]


class ActionLog(Protocol):
    """Where an action logs: the function's Powertools ``Logger`` (JSON, with the invocation's keys).

    Passed in rather than taken from ``logging.getLogger(__name__)``: Powertools' root-handler filter
    drops records of loggers whose name contains the service name (``sms`` in ``correlator.sms``).
    """

    def info(self, msg: str, *args: Any, extra: Mapping[str, Any] | None = None) -> None: ...

    def warning(self, msg: str, *args: Any, extra: Mapping[str, Any] | None = None) -> None: ...

    def error(self, msg: str, *args: Any, extra: Mapping[str, Any] | None = None) -> None: ...


class NotificationResult(TypedDict):
    """What one notification did; ``info`` and ``object`` are those of its result event."""

    status: Status
    info: str
    object: str | None


def report(
    emitter: InternalEventEmitter,
    delivery: Delivery,
    result: NotificationResult,
    payload: dict[str, Any] | None = None,
) -> NotificationResult:
    """Emit ``result`` as the delivery's result event (``ERROR`` level when it failed); return it."""
    level = Level.ERROR if result["status"] == STATUS_FAILED else Level.INFO
    emit_result(emitter, delivery, object=result["object"], info=result["info"], level=level, payload=payload)
    return result


def failed(code: str, object: str | None) -> NotificationResult:
    """A permanent failure, reported with its error ``code`` as ``info``."""
    return NotificationResult(status=STATUS_FAILED, info=code, object=object)


def clip_error(message: str) -> str:
    """An error message short enough for a result event's payload."""
    return message if len(message) <= MAX_ERROR_CHARS else message[: MAX_ERROR_CHARS - 1] + "…"
