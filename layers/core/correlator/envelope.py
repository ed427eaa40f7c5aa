"""The EventBridge envelope of an event: ``Source``, ``DetailType``, ``Detail``, ``Time``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from correlator.event import Event

SOURCE_EXTERNAL = "correlator.external"
SOURCE_INTERNAL = "correlator.internal"
# EventBridge limits: one entry and one PutEvents request are each at most 256 KB (262,144
# bytes), counted as documented in "Calculating PutEvents event entry size"; 10 entries a call.
MAX_ENTRY_BYTES = 256 * 1024
MAX_REQUEST_BYTES = 256 * 1024
MAX_ENTRIES_PER_CALL = 10
_TIME_BYTES = 14
_COUNTED = ("Source", "DetailType", "Detail")


def source_of(event: Event) -> str:
    """``correlator.external`` for client events, ``correlator.internal`` for system events."""
    return SOURCE_EXTERNAL if event.external else SOURCE_INTERNAL


def to_entry(event: Event, bus_name: str) -> PutEventsRequestEntryTypeDef:
    """Build the PutEvents entry for ``event`` on ``bus_name``."""
    detail = event.to_detail_json()
    return {
        "Source": source_of(event),
        "DetailType": event.type,
        "Detail": detail,
        "Time": event.time,
        "EventBusName": bus_name,
    }


def entry_size(entry: PutEventsRequestEntryTypeDef) -> int:
    """Size of an entry as EventBridge counts it against the 256 KB limits."""
    size = _TIME_BYTES if "Time" in entry else 0
    for key in _COUNTED:
        value = entry.get(key)
        if isinstance(value, str):
            size += len(value) if value.isascii() else len(value.encode("utf-8"))
    resources = entry.get("Resources")
    if resources:
        size += sum(len(resource.encode("utf-8")) for resource in resources)
    return size


# Not frozen: one per event, and a frozen dataclass's __init__ (object.__setattr__ per field) costs ~3x.
@dataclass(slots=True)
class Envelope:
    """An event's id with its PutEvents entry and that entry's size, computed once."""

    event_id: str
    entry: PutEventsRequestEntryTypeDef
    size: int


def wrap(event: Event, bus_name: str) -> Envelope:
    """The ``Envelope`` of ``event`` on ``bus_name``."""
    entry = to_entry(event, bus_name)
    return Envelope(event.id, entry, entry_size(entry))
