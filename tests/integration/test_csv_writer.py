"""The CSV writer on moto: SQS batches of csv deliveries become rows of files in the data bucket."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import Counter
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator.action import QueueRunner
from correlator.appender import MIN_PART_BYTES, S3Appender
from correlator.csvfiles import CONTENT_TYPE, CsvAction
from correlator.internal import InternalEventEmitter
from correlator.publisher import PublishOutcome
from tests.conftest import BucketFor, fresh_import, handler_caller
from tests.probe import BusProbe
from tests.s3_doubles import S3Spy, fail_with
from tests.samples import load_event, sqs_batch

WRITER_MODULE = "functions.csv_writer.app"
DATA_BUCKET = "correlator-data-test"
SALES_KEY = "csv/sales/2026-11-22.csv"


@pytest.fixture
def s3(s3_bucket: BucketFor) -> Any:
    """The data bucket, and the writer's environment pointing at it."""
    return s3_bucket(DATA_BUCKET, env="DATA_BUCKET_NAME", service="csv-writer")


@pytest.fixture
def writer(s3: Any, bus_probe: BusProbe) -> ModuleType:
    """``functions.csv_writer.app`` imported afresh inside moto (it builds its clients at import)."""
    return fresh_import(WRITER_MODULE)


@pytest.fixture
def invoke(writer: ModuleType, lambda_context: LambdaContext) -> Any:
    return handler_caller(writer, lambda_context)


# ---- helpers ----


def sample_deliveries() -> list[dict[str, Any]]:
    """The deliveries of ``events/sqs/csv-delivery.json`` (rows of "sales", then a standard event)."""
    return [json.loads(record["body"]) for record in load_event("sqs/csv-delivery")["Records"]]


def dataset_delivery(
    payload: dict[str, Any],
    *,
    config: dict[str, Any] | None = None,
    dataset: str = "sales",
    event_id: str = "Ev0000000000000000000A",
    request_key: str = "Req_3001",
    rule: str = "sales-to-csv",
) -> dict[str, Any]:
    """A csv delivery of one dataset row, built from the sample's first delivery."""
    delivery = sample_deliveries()[0]
    delivery["rule"]["name"] = rule
    delivery["rule"]["config"] = config if config is not None else {}
    detail = delivery["event"]["detail"]
    detail.update(payload=payload, dataset=dataset, id=event_id, request_key=request_key)
    return delivery


def batch(*deliveries: dict[str, Any] | str) -> dict[str, Any]:
    """An SQS event whose records carry ``deliveries`` (a ``str`` is sent as the raw body)."""
    template = load_event("sqs/csv-delivery")["Records"][0]
    records = []
    for index, delivery in enumerate(deliveries):
        body = delivery if isinstance(delivery, str) else json.dumps(delivery)
        records.append({**template, "messageId": f"msg-{index}", "body": body})
    return {"Records": records}


def read_csv(s3: Any, key: str = SALES_KEY) -> list[list[str]]:
    data = s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode("utf-8")
    return list(csv.reader(io.StringIO(data, newline="")))


def read_dicts(s3: Any, key: str = SALES_KEY) -> list[dict[str, str]]:
    data = s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode("utf-8")
    return list(csv.DictReader(io.StringIO(data, newline="")))


def csv_results(probe: BusProbe) -> list[dict[str, Any]]:
    return [detail for detail in probe.drain_details() if detail["type"] == "csv"]


def keys_in(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=DATA_BUCKET).get("Contents", [])]


def metrics(output: str) -> dict[str, Any]:
    """The metric values Powertools flushed (EMF lines on stdout)."""
    values: dict[str, Any] = {}
    for line in output.splitlines():
        if '"_aws"' in line:
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values[definition["Name"]] = blob[definition["Name"]]
    return values


# ---- the sample batch ----


def test_a_batch_becomes_a_file_with_one_header_and_its_rows(invoke, s3, bus_probe, capsys):
    # WHEN the sample batch (two "sales" rows, one standard event) is consumed
    response = invoke(load_event("sqs/csv-delivery"))

    # THEN nothing failed and the day's file has the header of the first row, then both rows
    assert response == {"batchItemFailures": []}
    assert keys_in(s3) == [SALES_KEY]
    assert read_csv(s3) == [
        ["timestamp", "order_id", "region", "amount", "note"],
        ["2026-11-22T14:52:39.778Z", "1001", "EU", "-12.5", 'refund, "damaged"'],
        ["2026-11-22T14:53:02.114Z", "1002", "NA", "99.9", ""],  # no note; its coupon has no column
    ]
    head = s3.head_object(Bucket=DATA_BUCKET, Key=SALES_KEY)
    assert head["ContentType"] == CONTENT_TYPE
    # AND every delivery has its result event, following its event (hops + 1, request key carried)
    results = csv_results(bus_probe)
    assert [(r["request_key"], r.get("object"), r["info"], r["hops"]) for r in results] == [
        ("Req_2001", SALES_KEY, "written", 1),
        ("Req_2002", SALES_KEY, "written", 1),
        ("Req_2003", None, "skipped", 1),
    ]
    assert results[1]["payload"] == {"dropped": ["coupon"]}
    assert results[1]["level"] == "WARN"
    assert all(r["external"] is False and r["system_id"] == "rule/sales-to-csv" for r in results)
    # AND the dropped cell and the skipped row are counted
    assert metrics(capsys.readouterr().out) == {
        "CsvRowsWritten": [2.0],
        "CsvRowsSkipped": [1.0],
        "CsvCellsDropped": [1.0],
    }


def test_a_non_dataset_event_is_skipped_with_a_result_event(invoke, s3, bus_probe):
    # GIVEN a batch with only the sample's standard event
    event = load_event("sqs/csv-delivery")
    event["Records"] = event["Records"][2:]

    # WHEN it is consumed
    response = invoke(event)

    # THEN nothing is written, the record is not failed, and the result says "skipped"
    assert response == {"batchItemFailures": []}
    assert keys_in(s3) == []
    [result] = csv_results(bus_probe)
    assert (result["type"], result["info"], result["hops"], result["request_key"]) == ("csv", "skipped", 1, "Req_2003")


# ---- header and cells ----


def test_config_columns_make_the_header_missing_keys_are_empty_and_unknown_ones_dropped(invoke, s3, bus_probe):
    # GIVEN a rule with columns (event_id among them) and a row with a missing and an unknown key
    config = {"columns": ["event_id", "timestamp", "sku", "qty"], "numeric": ["qty"]}
    delivery = dataset_delivery({"sku": "A-17", "colour": "red", "size": "L"}, config=config)

    # WHEN it is written
    invoke(batch(delivery))

    # THEN the header is the columns, qty is empty, colour and size are dropped and reported
    assert read_csv(s3) == [
        ["event_id", "timestamp", "sku", "qty"],
        ["Ev0000000000000000000A", "2026-11-22T14:52:39.778Z", "A-17", ""],
    ]
    [result] = csv_results(bus_probe)
    assert result["payload"] == {"dropped": ["colour", "size"]}


def test_later_rows_follow_the_header_the_file_already_has(invoke, s3, bus_probe):
    # GIVEN a file created by a first batch from rows with keys a, b
    invoke(batch(dataset_delivery({"a": 1, "b": "x"})))

    # WHEN a later batch brings rows with other keys, in another order, under a rule with other columns
    invoke(
        batch(
            dataset_delivery({"c": "new", "b": "y", "a": 2}, event_id="Ev0000000000000000000B"),
            dataset_delivery({"b": "z"}, config={"columns": ["b", "d"]}, event_id="Ev0000000000000000000C"),
        )
    )

    # THEN every row is under the file's header; c and d never become columns
    rows = read_dicts(s3)
    assert [(row["a"], row["b"]) for row in rows] == [("1", "x"), ("2", "y"), ("", "z")]
    assert list(rows[0]) == ["timestamp", "a", "b"]
    assert [r.get("payload") for r in csv_results(bus_probe)] == [None, {"dropped": ["c"]}, None]


def test_quoting_and_formula_injection_round_trip(invoke, s3):
    # GIVEN a row whose cells need quoting, and cells that a spreadsheet would run as formulas
    payload = {
        "comma": "a,b",
        "quotes": 'say "hi"',
        "lines": "two\r\nlines",
        "unicode": "Zoë ✓",
        "formula": '=HYPERLINK("http://evil.example","x")',
        "plus": "+1",
        "at": "@SUM(A1)",
        "tab": "\t=1",
        "cr": "\r=1",
        "quoted": "'=1",
        "amount": -12.5,
        "count": -3,
        "text_number": "-3",
        "bad_number": "-3+cmd",
        "flag": True,
        "nothing": None,
    }
    config = {"numeric": ["amount", "text_number", "bad_number"]}

    # WHEN it is written and read back with the csv module
    invoke(batch(dataset_delivery(payload, config=config)))
    [row] = read_dicts(s3)

    # THEN quoted cells come back exactly, formula-like cells carry a leading quote,
    # and numbers in numeric columns are plain
    assert row == {
        "timestamp": "2026-11-22T14:52:39.778Z",
        "comma": "a,b",
        "quotes": 'say "hi"',
        "lines": "two\r\nlines",
        "unicode": "Zoë ✓",
        "formula": '\'=HYPERLINK("http://evil.example","x")',
        "plus": "'+1",
        "at": "'@SUM(A1)",
        "tab": "\t'=1",  # TAB may separate fields: the field after it is neutralised
        "cr": "'\r=1",
        "quoted": "''=1",
        "amount": "-12.5",
        "count": "'-3",  # a number, but the column is not declared numeric
        "text_number": "-3",
        "bad_number": "'-3+cmd",
        "flag": "true",
        "nothing": "",
    }
    # AND the file is CRLF-terminated
    assert s3.get_object(Bucket=DATA_BUCKET, Key=SALES_KEY)["Body"].read().endswith(b"\r\n")


def test_header_cells_are_neutralised_and_matched_when_read_back(invoke, s3):
    # GIVEN a first row whose keys look like formulas or need quoting
    invoke(batch(dataset_delivery({"=cmd": "1", "a,\nb": "2"})))

    # WHEN another batch writes a row with the same keys
    invoke(batch(dataset_delivery({"a,\nb": "4", "=cmd": "3"})))

    # THEN the header is inert and both rows line up under it
    assert read_csv(s3) == [
        ["timestamp", "'=cmd", "a,\nb"],
        ["2026-11-22T14:52:39.778Z", "1", "2"],
        ["2026-11-22T14:52:39.778Z", "3", "4"],
    ]


# ---- keys ----


def test_rows_go_to_the_file_of_their_key(invoke, s3):
    # GIVEN rows of two datasets and two days, and a rule with its own key template
    other_day = dataset_delivery({"a": 1}, dataset="sales")
    other_day["event"]["detail"]["time"] = "2026-11-23T00:00:01.000Z"
    hourly = dataset_delivery({"a": 3}, dataset="stock", config={"key": "csv/by-rule/{rule}/{yyyy}{mm}{dd}-{hh}.csv"})

    # WHEN they are written in one batch
    response = invoke(batch(dataset_delivery({"a": 0}), other_day, hourly, dataset_delivery({"a": 2}, dataset="stock")))

    # THEN each row is in its own file, one file per key
    assert response == {"batchItemFailures": []}
    assert sorted(keys_in(s3)) == [
        "csv/by-rule/sales-to-csv/20261122-14.csv",
        "csv/sales/2026-11-22.csv",
        "csv/sales/2026-11-23.csv",
        "csv/stock/2026-11-22.csv",
    ]


def test_a_key_made_unsafe_by_the_event_is_a_permanent_skip(invoke, s3, bus_probe):
    # GIVEN a dataset id that is valid for an event but would make a ".." segment
    delivery = dataset_delivery({"a": 1}, dataset="..")

    # WHEN it is consumed
    response = invoke(batch(delivery))

    # THEN nothing is written, the record is not retried, and the result says why
    assert response == {"batchItemFailures": []}
    assert keys_in(s3) == []
    [result] = csv_results(bus_probe)
    assert (result["info"], result["level"], result["object"]) == (
        "invalid_key",
        "ERROR",
        "csv/{dataset}/{yyyy}-{mm}-{dd}.csv",
    )
    assert "{dataset}" in result["payload"]["error"]


# ---- failures ----


@pytest.mark.parametrize(
    "body",
    [
        '{"rule": {"action": "csv"}, "event": ',
        json.dumps({"rule": {"name": "r", "action": "log"}, "event": {"detail": {}}}),
        json.dumps({**dataset_delivery({"a": 1}), "rule": {"name": "r", "action": "csv", "config": {"key": "../x"}}}),
    ],
    ids=["not-json", "not-a-csv-delivery", "invalid-config"],
)
def test_a_delivery_that_does_not_parse_fails_alone(invoke, s3, bus_probe, body: str):
    # GIVEN a batch whose middle record is not a valid csv delivery
    event = batch(dataset_delivery({"a": 1}), body, dataset_delivery({"a": 2}))

    # WHEN it is consumed
    response = invoke(event)

    # THEN only that record is handed back, and the others are written and reported
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert [row["a"] for row in read_dicts(s3)] == ["1", "2"]
    assert [r["info"] for r in csv_results(bus_probe)] == ["written", "written"]


def test_a_batch_of_only_malformed_records_fails_whole(invoke, s3):
    # WHEN every record is malformed
    # THEN the whole batch fails (Powertools' default) and nothing is written
    with pytest.raises(BatchProcessingError):
        invoke(batch("not json", "{}"))
    assert keys_in(s3) == []


def test_a_failed_append_fails_only_the_rows_of_that_file(invoke, writer, s3, bus_probe, monkeypatch):
    # GIVEN S3 failing every write of the "stock" file
    spy = S3Spy(s3)
    spy.before["put_object"] = lambda kwargs: (
        fail_with("InternalError", 500, "PutObject")(kwargs) if kwargs["Key"].startswith("csv/stock/") else None
    )
    monkeypatch.setattr(writer.runner.action.appender, "s3", spy)

    # WHEN a batch with rows of "sales" and "stock" is consumed
    response = invoke(batch(dataset_delivery({"a": 1}), dataset_delivery({"a": 2}, dataset="stock")))

    # THEN the stock row is handed back for a retry, the sales row is written and reported
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert keys_in(s3) == [SALES_KEY]
    assert [(r["object"], r["info"]) for r in csv_results(bus_probe)] == [(SALES_KEY, "written")]


def test_a_file_whose_header_cannot_be_read_rejects_its_rows(invoke, s3, bus_probe):
    # GIVEN a file that is not one of ours: no line end at all
    s3.put_object(Bucket=DATA_BUCKET, Key=SALES_KEY, Body=b"just text")

    # WHEN a row for it is consumed
    response = invoke(batch(dataset_delivery({"a": 1})))

    # THEN the file is untouched and the row is reported, not retried
    assert response == {"batchItemFailures": []}
    assert s3.get_object(Bucket=DATA_BUCKET, Key=SALES_KEY)["Body"].read() == b"just text"
    [result] = csv_results(bus_probe)
    assert (result["info"], result["level"]) == ("unreadable_header", "ERROR")


def test_an_empty_file_gets_a_header(invoke, s3, bus_probe):
    # GIVEN an empty file at the row's key (created by someone else)
    s3.put_object(Bucket=DATA_BUCKET, Key=SALES_KEY, Body=b"")

    # WHEN a row for it is consumed
    invoke(batch(dataset_delivery({"a": 1})))

    # THEN the file has the header and the row
    assert read_csv(s3) == [["timestamp", "a"], ["2026-11-22T14:52:39.778Z", "1"]]
    assert [r["info"] for r in csv_results(bus_probe)] == ["written"]


# ---- append guarantees ----


def test_one_append_per_file_per_batch(invoke, writer, s3, monkeypatch):
    # GIVEN the writer's S3 calls are spied on, and an existing file
    invoke(batch(dataset_delivery({"a": 0})))
    spy = S3Spy(s3)
    monkeypatch.setattr(writer.runner.action.appender, "s3", spy)

    # WHEN a batch of 20 rows for that file is consumed
    invoke(batch(*(dataset_delivery({"a": n}) for n in range(1, 21))))

    # THEN it was one write (after a ranged read of the header and the read-back of the small file)
    assert spy.calls["put_object"] == 1
    assert spy.calls["get_object"] == 2
    assert [row["a"] for row in read_dicts(s3)] == [str(n) for n in range(21)]


def test_a_file_of_5_mib_or_more_is_extended_by_server_side_copy(invoke, writer, s3, monkeypatch):
    # GIVEN a file of more than 5 MiB written by the csv action
    line = b"2026-11-22T14:52:00.000Z,filler\r\n"
    original = b"timestamp,a\r\n" + line * (MIN_PART_BYTES // len(line) + 1)
    s3.put_object(Bucket=DATA_BUCKET, Key=SALES_KEY, Body=original, ContentType=CONTENT_TYPE)
    spy = S3Spy(s3)
    monkeypatch.setattr(writer.runner.action.appender, "s3", spy)

    # WHEN a batch is appended to it
    invoke(batch(dataset_delivery({"a": "x"}), dataset_delivery({"a": "y"})))

    # THEN the file is byte-exact the old bytes then the new rows
    body = s3.get_object(Bucket=DATA_BUCKET, Key=SALES_KEY)["Body"].read()
    assert body == original + b"2026-11-22T14:52:39.778Z,x\r\n2026-11-22T14:52:39.778Z,y\r\n"
    # AND only the header's first bytes came through the function: the rest was copied by S3
    assert spy.calls["upload_part_copy"] == 1
    assert spy.calls["put_object"] == 0
    assert spy.downloaded <= 64 * 1024
    [(_, part)] = [call for call in spy.requests if call[0] == "upload_part"]
    assert part["Body"] == b"2026-11-22T14:52:39.778Z,x\r\n2026-11-22T14:52:39.778Z,y\r\n"


class NullPublisher:
    """Result events go nowhere (the concurrency test is about the file)."""

    def publish(self, events: list[Any]) -> list[PublishOutcome]:
        return [PublishOutcome(event.id, "accepted") for event in events]


def test_concurrent_writers_with_different_first_rows_lose_and_double_nothing(s3):
    # GIVEN 4 writers whose rows have different keys: whichever creates the file decides the
    # header, and every other row must follow it (moto_compat makes S3 requests atomic, as on AWS)
    writers, batches, rows_per_batch = 4, 6, 5
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(number: int) -> None:
        appender = S3Appender(s3, DATA_BUCKET, max_attempts=200, base_delay=0.001, max_delay=0.02)
        emitter = InternalEventEmitter(NullPublisher())  # type: ignore[arg-type]
        csv_writer = QueueRunner(CsvAction(appender), emitter=emitter, metrics=Metrics())
        barrier.wait()
        try:
            for batch_number in range(batches):
                messages = []
                for row in range(rows_per_batch):
                    payload = {"writer": number, f"only_{number}": "x", "row": f"{batch_number}.{row}"}
                    messages.append((f"{number}-{batch_number}-{row}", json.dumps(dataset_delivery(payload))))
                assert csv_writer.handle(sqs_batch(messages))["batchItemFailures"] == []
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    # WHEN they all write batches to the same file at once
    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # THEN there is one header, and every row is there exactly once, its cells under the right columns
    assert errors == []
    records = read_csv(s3)
    header = records[0]
    assert sum(1 for record in records if record[0] == "timestamp") == 1
    rows = read_dicts(s3)
    seen = Counter((row["writer"], row["row"]) for row in rows)
    expected = {(str(w), f"{b}.{r}") for w in range(writers) for b in range(batches) for r in range(rows_per_batch)}
    assert set(seen) == expected
    assert set(seen.values()) == {1}
    creator = next(name for name in header if name.startswith("only_")).removeprefix("only_")
    assert all(row[f"only_{creator}"] == ("x" if row["writer"] == creator else "") for row in rows)
