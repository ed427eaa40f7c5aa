"""enrich: add fields to an event's payload and emit it again as a new event.

Arguments (``config.args``)::

    {"type": "order.enriched",                       # the new event's type (default: "<type>.enriched")
     "fields": {"channel": "web"},                   # constant fields
     "lookup": {"key": "country",                    # fields from a table row chosen by a payload field
                "table": {"FR": {"region": "EU"}, "US": {"region": "NA"}},
                "default": {"region": "other"}},
     "event_fields": {"submitted_by": "subject"},    # fields copied from the event itself
     "overwrite": false}                             # replace payload fields that already exist

Everything else of the event is kept (kind, dataset, time, object, ...), so an enriched dataset row
can go on to a csv rule. The new event is internal, carries the request key and has hops + 1.
Returns ``{"event_id", "type", "added", "matched"}``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.script.execution import ScriptContext, ScriptInputError

# Event fields kept on the new event (everything a client may submit, except the type and payload).
KEPT_FIELDS = ("level", "kind", "time", "object", "info", "summary", "description", "system_id", "dataset", "schema")
EventField = Literal[
    "id", "time", "type", "object", "info", "subject", "system_id", "schema", "request_key", "dataset", "level"
]


class Lookup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=128)
    table: dict[str, dict[str, Any]] = Field(max_length=10_000)
    default: dict[str, Any] = Field(default_factory=dict)


class EnrichArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    lookup: Lookup | None = None
    event_fields: dict[str, EventField] = Field(default_factory=dict)
    overwrite: bool = False


def run(event: dict[str, Any], args: dict[str, Any], context: ScriptContext) -> dict[str, Any]:
    try:
        options = EnrichArgs.model_validate(args)
    except ValidationError as error:
        raise ScriptInputError(f"invalid args: {error}") from None

    payload: dict[str, Any] = dict(event.get("payload") or {})
    additions: dict[str, Any] = dict(options.fields)
    matched: bool | None = None
    if options.lookup is not None:
        key = _lookup_key(payload.get(options.lookup.key))
        row = options.lookup.table.get(key) if key is not None else None
        matched = row is not None
        additions.update(row if row is not None else options.lookup.default)
    for name, source in options.event_fields.items():
        additions[name] = event.get(source)

    added = []
    for name, value in additions.items():
        if options.overwrite or name not in payload:
            payload[name] = value
            added.append(name)

    new_type = options.type or f"{event['type']}.enriched"
    fields = {name: event[name] for name in KEPT_FIELDS if name in event}
    emitted = context.emit({**fields, "type": new_type, "payload": payload})
    return {"event_id": emitted["id"], "type": new_type, "added": added, "matched": matched}


def _lookup_key(value: Any) -> str | None:
    """The table key for a payload value: strings as they are, other scalars as JSON (``1``, ``true``)."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)
