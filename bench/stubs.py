"""A stand-in for the EventBridge client: answers ``put_events`` at once, every entry accepted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class InstantEventBridge:
    """Accepts every entry of every ``put_events`` call and counts calls and entries."""

    def __init__(self) -> None:
        self.calls = 0
        self.entries = 0

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        self.entries += len(Entries)
        return {
            "FailedEntryCount": 0,
            "Entries": [{"EventId": f"bench-{self.entries}-{index}"} for index in range(len(Entries))],
        }

    def reset(self) -> None:
        self.calls = 0
        self.entries = 0
