"""What the notification actions (email, SMS) share: their statuses and how a permanent failure reads."""

from __future__ import annotations

from typing import Final

from correlator.action import Result
from correlator.event import Level
from correlator.text import clip

__all__ = ["STATUS_DRY_RUN", "STATUS_FAILED", "STATUS_SENT", "failed"]

STATUS_SENT: Final = "sent"
STATUS_FAILED: Final = "failed"
STATUS_DRY_RUN: Final = "dry-run"


def failed(code: str, object: str | None, error: str, **payload: str) -> Result:
    """A permanent failure, reported with its error ``code`` as ``info`` and the (clipped) error in its payload."""
    return Result(STATUS_FAILED, code, object, Level.ERROR, {**payload, "error": clip(error)})
