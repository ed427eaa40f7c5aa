"""The shipped scripts: enrich (re-emits an event with more fields) and summarise_dataset (CSV statistics)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from correlator.action import QueueRunner
from correlator.appender import S3Appender
from correlator.csvfiles import CsvAction, DataFiles
from correlator.event import Event
from correlator.internal import InternalEventEmitter
from correlator.publisher import PublishOutcome
from functions.script.execution import ScriptContext, ScriptInputError
from functions.script.scripts import enrich, summarise_dataset
from local import moto_compat
from tests.s3_doubles import s3_client
from tests.samples import load_event, sqs_batch

DATA_BUCKET = "correlator-data-test"


class RecordingPublisher:
    """Keeps what a script publishes; ``refuse`` makes the bus reject it."""

    def __init__(self, refuse: bool = False) -> None:
        self.events: list[Event] = []
        self.refuse = refuse

    def publish(self, events: list[Event]) -> list[PublishOutcome]:
        if self.refuse:
            return [PublishOutcome(event.id, "failed", "InternalFailure", "bus down") for event in events]
        self.events.extend(events)
        return [PublishOutcome(event.id, "accepted") for event in events]


def sales_event(**changes: Any) -> dict[str, Any]:
    """The sample sales row (``events/eventbridge/script-delivery.json``) as a script receives it."""
    detail: dict[str, Any] = load_event("eventbridge/script-delivery")["event"]["detail"]
    detail.update(changes)
    return detail


def script_context(trigger: dict[str, Any], publisher: Any = None, data: Any = None, seconds: float = 30.0) -> Any:
    return ScriptContext(
        rule_name="enrich-sales",
        script="test",
        trigger=Event.model_validate(trigger),
        deadline=time.monotonic() + seconds,
        publisher=publisher or RecordingPublisher(),  # type: ignore[arg-type]
        data=data,
    )


# ---- enrich ----


LOOKUP = {"key": "region", "table": {"EU": {"manager": "Ana"}, "1": {"manager": "One"}}, "default": {"manager": "?"}}


def test_enrich_adds_fields_and_emits_the_event_one_hop_further():
    # GIVEN a sales row and a publisher
    trigger = sales_event()
    publisher = RecordingPublisher()
    args = {"fields": {"channel": "web"}, "lookup": LOOKUP, "event_fields": {"by": "subject", "source": "id"}}

    # WHEN enrich runs
    result = enrich.run(trigger, args, script_context(trigger, publisher))

    # THEN one event was emitted: the same row with the new fields, under "<type>.enriched"
    [emitted] = publisher.events
    assert emitted.type == "sale.recorded.enriched"
    assert emitted.payload == {
        **trigger["payload"],
        "channel": "web",
        "manager": "Ana",
        "by": "k7ab2cd9ef",
        "source": "Sx1aB2cD3eF4gH5iJ6kL7m",
    }
    assert (emitted.kind.value, emitted.dataset, emitted.object, emitted.system_id) == (
        "dataset",
        "sales",
        "orders/1001",
        "shop",
    )
    # AND it follows the trigger: internal, same request key, subject and time, hops + 1, a new id
    assert (emitted.external, emitted.request_key, emitted.subject) == (False, "Req_2001", "k7ab2cd9ef")
    assert emitted.hops == 1
    assert emitted.time.isoformat() == "2026-11-22T14:52:39.778000+00:00"
    assert emitted.id != trigger["id"]
    assert result == {
        "event_id": emitted.id,
        "type": "sale.recorded.enriched",
        "added": ["channel", "manager", "by", "source"],
        "matched": True,
    }


@pytest.mark.parametrize(
    ("region", "manager", "matched"),
    [("EU", "Ana", True), ("MARS", "?", False), (None, "?", False), (1, "One", True)],
)
def test_enrich_looks_up_by_the_value_of_a_payload_field(region: Any, manager: str, matched: bool):
    # GIVEN a row whose lookup field has this value
    trigger = sales_event(payload={"order_id": 1, "region": region})
    publisher = RecordingPublisher()

    # WHEN enrich looks it up
    result = enrich.run(trigger, {"type": "sale.routed", "lookup": LOOKUP}, script_context(trigger, publisher))

    # THEN the matching row, or the default, was added
    assert publisher.events[0].payload == {"order_id": 1, "region": region, "manager": manager}
    assert publisher.events[0].type == "sale.routed"
    assert result["matched"] is matched


@pytest.mark.parametrize(("overwrite", "region"), [(False, "EU"), (True, "ALL")])
def test_enrich_keeps_existing_fields_unless_told_to_overwrite(overwrite: bool, region: str):
    trigger = sales_event()
    publisher = RecordingPublisher()
    enrich.run(trigger, {"fields": {"region": "ALL"}, "overwrite": overwrite}, script_context(trigger, publisher))
    assert (publisher.events[0].payload or {})["region"] == region


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"colour": "red"}, "Extra inputs"),
        ({"lookup": {"key": "region"}}, "table"),
        ({"event_fields": {"x": "payload"}}, "event_fields.x"),
        ({"type": "not a type!"}, "not a valid event"),
        ({"fields": {"nested": {"a": 1}}}, "flat scalars"),  # a dataset row stays flat
    ],
)
def test_enrich_refuses_bad_arguments_as_input_errors(args: dict[str, Any], message: str):
    # WHEN enrich gets arguments it cannot use
    trigger = sales_event()
    publisher = RecordingPublisher()

    # THEN it raises ScriptInputError (reported, not retried) and emits nothing
    with pytest.raises(ScriptInputError, match=message):
        enrich.run(trigger, args, script_context(trigger, publisher))
    assert publisher.events == []


def test_enrich_fails_for_a_retry_when_the_bus_refuses_the_event():
    trigger = sales_event()
    with pytest.raises(RuntimeError, match="bus down"):
        enrich.run(trigger, {}, script_context(trigger, RecordingPublisher(refuse=True)))


# ---- summarise_dataset ----


@pytest.fixture
def data(aws: None) -> DataFiles:
    """The data bucket with yesterday's sales, written by the csv action itself."""
    moto_compat.apply()
    s3 = s3_client()
    s3.create_bucket(Bucket=DATA_BUCKET)
    rows = [
        {"order_id": 1, "region": "EU", "amount": 10.5, "note": "=cmd"},
        {"order_id": 2, "region": "EU", "amount": -2.25},  # written "'-2.25": amount is not declared numeric
        {"order_id": 3, "region": "NA", "amount": 100},
        {"order_id": 4, "region": "EU", "amount": None},
        {"order_id": 5, "region": "APAC", "amount": 0.1, "extra": "dropped"},
    ]
    messages = []
    for number, payload in enumerate(rows):
        message = load_event("eventbridge/script-delivery")
        message["rule"] = {"name": "sales-to-csv", "action": "csv", "config": {}}
        detail = message["event"]["detail"]
        detail.update(payload=payload, time=f"2026-11-22T0{number}:00:00.000Z")
        messages.append((f"m{number}", json.dumps(message)))
    emitter = InternalEventEmitter(RecordingPublisher())  # type: ignore[arg-type]
    writer = QueueRunner(CsvAction(S3Appender(s3, DATA_BUCKET)), emitter=emitter, metrics=Metrics())
    assert writer.handle(sqs_batch(messages))["batchItemFailures"] == []
    return DataFiles(s3, DATA_BUCKET)


def timer_event() -> dict[str, Any]:
    """The next morning's timer event (``events/eventbridge/script-summarise-delivery.json``)."""
    detail: dict[str, Any] = load_event("eventbridge/script-summarise-delivery")["event"]["detail"]
    return detail


def test_summarise_dataset_gives_per_column_statistics_of_yesterdays_file(data: DataFiles):
    # GIVEN the next morning's timer event
    trigger = timer_event()

    # WHEN the summary of yesterday's sales is asked for, by region
    args = {"dataset": "sales", "day": "yesterday", "group_by": "region"}
    summary = summarise_dataset.run(trigger, args, script_context(trigger, data=data))

    # THEN it covers the whole file, with numbers summed exactly (neutralised "-2.25" read as a number)
    assert summary == {
        "key": "csv/sales/2026-11-22.csv",
        "dataset": "sales",
        "day": "2026-11-22",
        "exists": True,
        "complete": True,
        "rows": 5,
        "first": "2026-11-22T00:00:00.000Z",
        "last": "2026-11-22T04:00:00.000Z",
        "columns": {
            "order_id": {"count": 5, "empty": 0, "sum": 15, "min": 1, "max": 5, "mean": 3.0},
            "region": {"count": 5, "empty": 0, "distinct": 3, "top": [["EU", 3], ["NA", 1], ["APAC", 1]]},
            "amount": {"count": 4, "empty": 1, "sum": 108.35, "min": -2.25, "max": 100, "mean": 27.0875},
            "note": {"count": 1, "empty": 4, "distinct": 1, "top": [["=cmd", 1]]},
        },
        "groups": {
            "EU": {"rows": 3, "sums": {"order_id": 7, "amount": 8.25}},
            "NA": {"rows": 1, "sums": {"order_id": 3, "amount": 100}},
            "APAC": {"rows": 1, "sums": {"order_id": 5, "amount": 0.1}},
        },
    }


def test_summarise_dataset_defaults_to_the_triggering_rows_dataset_and_day(data: DataFiles):
    # GIVEN a sales row of 2026-11-22 as the trigger, and only some columns asked for
    trigger = sales_event()

    # WHEN summarised
    summary = summarise_dataset.run(trigger, {"columns": ["amount"], "top": 1}, script_context(trigger, data=data))

    # THEN it is that day's file of that dataset, with just that column
    assert (summary["key"], summary["rows"]) == ("csv/sales/2026-11-22.csv", 5)
    assert list(summary["columns"]) == ["amount"]


def test_summarise_dataset_reports_a_missing_file_as_empty(data: DataFiles):
    trigger = timer_event()
    summary = summarise_dataset.run(trigger, {"dataset": "sales"}, script_context(trigger, data=data))
    assert summary == {
        "key": "csv/sales/2026-11-23.csv",
        "dataset": "sales",
        "day": "2026-11-23",
        "exists": False,
        "complete": True,
        "rows": 0,
        "columns": {},
    }


def test_summarise_dataset_stops_at_its_deadline_with_a_partial_summary(data: DataFiles):
    # GIVEN a context whose deadline is already near
    trigger = timer_event()

    # WHEN summarising
    summary = summarise_dataset.run(
        trigger, {"dataset": "sales", "day": "2026-11-22"}, script_context(trigger, data=data, seconds=0.5)
    )

    # THEN it says it is not complete instead of running past the deadline
    assert (summary["exists"], summary["complete"], summary["rows"]) == (True, False, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give args.dataset"),
        ({"dataset": "sales", "day": "2026-11-22", "columns": ["price"]}, "not columns of the file: price"),
        ({"dataset": "sales", "day": "2026-11-22", "group_by": "city"}, "not columns of the file: city"),
        ({"dataset": "sales", "day": "last week"}, "invalid args"),
        ({"dataset": "sales", "day": "2026-13-45"}, "not a date"),
        ({"dataset": "sales", "key": "logs/{dataset}.csv"}, "invalid args"),
        ({"dataset": "..", "key": "csv/{dataset}/x.csv"}, "cannot be part of a key"),
    ],
)
def test_summarise_dataset_refuses_bad_arguments_as_input_errors(data: DataFiles, args: dict[str, Any], message: str):
    trigger = timer_event()
    with pytest.raises(ScriptInputError, match=message):
        summarise_dataset.run(trigger, args, script_context(trigger, data=data))


def test_summarise_dataset_needs_the_data_bucket():
    trigger = sales_event()
    with pytest.raises(ScriptInputError, match="no data bucket"):
        summarise_dataset.run(trigger, {}, script_context(trigger))
