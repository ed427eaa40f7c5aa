"""summarise_dataset: per-column statistics of a CSV file written by the csv action.

Arguments (``config.args``), all optional::

    {"dataset": "sales",                          # default: the triggering event's dataset
     "key": "csv/{dataset}/{yyyy}-{mm}-{dd}.csv", # the csv rule's key template (default: the csv default)
     "day": "yesterday",                          # "today" (default), "yesterday" or "YYYY-MM-DD",
                                                  # relative to the triggering event's time (UTC)
     "rule": "sales-to-csv",                      # value of {rule} in the key (default: this rule)
     "columns": ["amount", "region"],             # default: every column but timestamp and event_id
     "group_by": "region",                        # sums of the numeric columns per value of this column
     "top": 5}                                    # most frequent values listed per text column

Typical use: a ``timer.periodic`` rule runs it every morning with ``day: yesterday`` and an
``email`` rule on the ``script`` result event mails the summary. Returns::

    {"key", "dataset", "day", "exists", "complete", "rows", "first", "last",
     "columns": {"amount": {"count", "empty", "sum", "min", "max", "mean"},          # all numbers
                 "region": {"count", "empty", "distinct", "top": [["EU", 12], ...]}},  # text
     "groups": {"EU": {"rows": 12, "sums": {"amount": 1234.5}}, ...}}

Cells the csv action neutralised (``'-5``) are read back as written (``-5``). Sums are exact
decimals. The file is streamed; if the script's deadline comes first, the summary covers the
rows read so far and says ``"complete": false``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from correlator.csvfiles import EVENT_ID_COLUMN, TIMESTAMP_COLUMN, restore
from correlator.csvkeys import DEFAULT_CSV_KEY, InvalidKeyError, render_key, validate_key_template
from correlator.event import DATASET_PATTERN, parse_time
from functions.script.execution import ScriptContext, ScriptInputError

MAX_DISTINCT = 1000  # distinct values counted per text column (memory stays bounded)
MAX_GROUPS = 100
OTHER_GROUP = "(other)"
DEADLINE_CHECK_ROWS = 1000
DEADLINE_MARGIN_SECONDS = 1.0
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DAY_RE = re.compile(r"today|yesterday|\d{4}-\d{2}-\d{2}")


class SummariseArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Annotated[str, StringConstraints(pattern=DATASET_PATTERN)] | None = None
    key: str = DEFAULT_CSV_KEY
    day: Annotated[str, StringConstraints(pattern=_DAY_RE.pattern)] = "today"
    rule: str | None = None
    columns: list[str] | None = Field(default=None, min_length=1, max_length=200)
    group_by: str | None = None
    top: int = Field(default=5, ge=0, le=20)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return validate_key_template(value)


@dataclass
class ColumnStats:
    """Statistics of one column; numeric when every non-empty cell is a number."""

    count: int = 0
    empty: int = 0
    numbers: int = 0
    total: Decimal = Decimal(0)
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    values: Counter[str] = field(default_factory=Counter)
    distinct_capped: bool = False

    def add(self, cell: str) -> None:
        if cell == "":
            self.empty += 1
            return
        self.count += 1
        number = to_number(cell)
        if number is not None:
            self.numbers += 1
            self.total += number
            self.minimum = number if self.minimum is None else min(self.minimum, number)
            self.maximum = number if self.maximum is None else max(self.maximum, number)
        if cell in self.values or len(self.values) < MAX_DISTINCT:
            self.values[cell] += 1
        else:
            self.distinct_capped = True

    @property
    def numeric(self) -> bool:
        return self.count > 0 and self.numbers == self.count

    def to_json(self, top: int) -> dict[str, Any]:
        summary: dict[str, Any] = {"count": self.count, "empty": self.empty}
        if self.numeric and self.minimum is not None and self.maximum is not None:
            summary.update(
                sum=to_json_number(self.total),
                min=to_json_number(self.minimum),
                max=to_json_number(self.maximum),
                mean=float(self.total / self.count),
            )
        else:
            summary.update(distinct=len(self.values), top=[[value, n] for value, n in self.values.most_common(top)])
            if self.distinct_capped:
                summary["distinct_capped"] = True
        return summary


def to_number(cell: str) -> Decimal | None:
    """The exact decimal a cell holds, or None if it is not a number."""
    if not _NUMBER_RE.fullmatch(cell):
        return None
    try:
        return Decimal(cell)
    except InvalidOperation:
        return None


def to_json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def run(event: dict[str, Any], args: dict[str, Any], context: ScriptContext) -> dict[str, Any]:
    try:
        options = SummariseArgs.model_validate(args)
    except ValidationError as error:
        raise ScriptInputError(f"invalid args: {error}") from None
    if context.data is None:
        raise ScriptInputError("the script function has no data bucket (DATA_BUCKET_NAME)")

    dataset = options.dataset or event.get("dataset")
    if dataset is None:
        raise ScriptInputError("give args.dataset: the triggering event is not a dataset event")
    day = _day(options.day, event)
    time = parse_time(event["time"])
    values = {
        "dataset": dataset,
        "yyyy": f"{day.year:04d}",
        "mm": f"{day.month:02d}",
        "dd": f"{day.day:02d}",
        "hh": f"{time.hour:02d}",
        "rule": options.rule or context.rule_name,
        "type": event["type"],
    }
    try:
        key = render_key(options.key, values)
    except InvalidKeyError as error:
        raise ScriptInputError(str(error)) from None

    summary: dict[str, Any] = {"key": key, "dataset": dataset, "day": day.isoformat()}
    records = context.data.records(key)
    if records is None:
        return {**summary, "exists": False, "complete": True, "rows": 0, "columns": {}}
    return {**summary, "exists": True, **summarise(records, options, context)}


def summarise(records: Iterator[list[str]], options: SummariseArgs, context: ScriptContext) -> dict[str, Any]:
    """Statistics of CSV ``records`` (header first)."""
    header = [restore(cell) for cell in next(records, [])]
    wanted = options.columns or [name for name in header if name not in (TIMESTAMP_COLUMN, EVENT_ID_COLUMN)]
    missing = [name for name in [*wanted, *([options.group_by] if options.group_by else [])] if name not in header]
    if missing:
        raise ScriptInputError(f"not columns of the file: {', '.join(missing)}")
    index = {name: header.index(name) for name in wanted}
    group_index = header.index(options.group_by) if options.group_by else None
    time_index = header.index(TIMESTAMP_COLUMN) if TIMESTAMP_COLUMN in header else None

    stats = {name: ColumnStats() for name in wanted}
    groups: dict[str, dict[str, Any]] = {}
    rows, complete, first, last = 0, True, None, None
    for record in records:
        if rows % DEADLINE_CHECK_ROWS == 0 and context.remaining_seconds() < DEADLINE_MARGIN_SECONDS:
            complete = False
            break
        rows += 1
        cells = [restore(cell) for cell in record]
        for name, position in index.items():
            stats[name].add(cells[position] if position < len(cells) else "")
        if time_index is not None and time_index < len(cells) and cells[time_index]:
            stamp = cells[time_index]
            first = stamp if first is None or stamp < first else first
            last = stamp if last is None or stamp > last else last
        if group_index is not None:
            _add_to_group(groups, cells, group_index, index)

    numeric = [name for name in wanted if stats[name].numeric]
    result: dict[str, Any] = {
        "complete": complete,
        "rows": rows,
        "first": first,
        "last": last,
        "columns": {name: stats[name].to_json(options.top) for name in wanted},
    }
    if group_index is not None:
        result["groups"] = {
            value: {
                "rows": group["rows"],
                "sums": {name: to_json_number(group["sums"].get(name, Decimal(0))) for name in numeric},
            }
            for value, group in groups.items()
        }
    return result


def _add_to_group(groups: dict[str, dict[str, Any]], cells: list[str], group_index: int, index: dict[str, int]) -> None:
    value = cells[group_index] if group_index < len(cells) else ""
    if value not in groups and len(groups) >= MAX_GROUPS:
        value = OTHER_GROUP
    group = groups.setdefault(value, {"rows": 0, "sums": {}})
    group["rows"] += 1
    for name, position in index.items():
        number = to_number(cells[position]) if position < len(cells) else None
        if number is not None:
            group["sums"][name] = group["sums"].get(name, Decimal(0)) + number


def _day(value: str, event: dict[str, Any]) -> date:
    today = parse_time(event["time"]).date()
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ScriptInputError(f"not a date: {value!r}") from None
