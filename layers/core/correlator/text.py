"""Text bounds shared by every action: how long an error message or a result's text may be."""

from __future__ import annotations

MAX_ERROR_CHARS = 1000
ELLIPSIS = "…"


def clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, ending with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def mask_number(number: str) -> str:
    """A phone number for logs and events: country prefix and last three digits only (``+44******123``)."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 6) + number[-3:]
