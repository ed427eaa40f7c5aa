"""The event model (ARCHITECTURE.md section 3): what a client may submit and what a stamped event looks like."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from correlator.event import (
    DATASET_PATTERN,
    TYPE_PATTERN,
    Event,
    EventSubmission,
    Kind,
    Level,
    format_time,
    parse_time,
    stamp_event,
)
from tests.samples import load_event

EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
NOW = datetime(2026, 11, 22, 14, 52, 39, 778_123, tzinfo=UTC)


def submit(**fields: Any) -> EventSubmission:
    """Validate a submission the way the API does (from JSON-like data), with a valid ``type`` by default."""
    return EventSubmission.model_validate({"type": "order.created", **fields})


def errors_of(**fields: Any) -> list[tuple[tuple[Any, ...], str]]:
    """The ``(loc, type)`` of every validation error of a submission; fails the test if it is valid."""
    with pytest.raises(ValidationError) as raised:
        EventSubmission.model_validate(fields)
    return [(tuple(error["loc"]), error["type"]) for error in raised.value.errors()]


def stamp(submission: EventSubmission, **overrides: Any) -> Event:
    arguments: dict[str, Any] = {
        "external": True,
        "subject": "k7ab2cd9ef",
        "request_key": "Req_1001",
        "now": NOW,
        **overrides,
    }
    return stamp_event(submission, **arguments)


# ---- type ----


@pytest.mark.parametrize("value", ["a", "order.created", "A-Z_a:z+0.9", "x" * 128])
def test_type_accepts_pattern_and_length_1_to_128(value: str) -> None:
    # GIVEN / WHEN
    submission = submit(type=value)

    # THEN
    assert submission.type == value


@pytest.mark.parametrize("value", ["", "x" * 129, "order created", "order/created", "ordér", "a!", "a\n", "a,b"])
def test_type_refuses_bad_chars_and_lengths(value: str) -> None:
    # GIVEN / WHEN
    errors = errors_of(type=value)

    # THEN
    assert errors == [(("type",), "string_pattern_mismatch")]


def test_type_is_required() -> None:
    # GIVEN / WHEN
    errors = errors_of(level="INFO")

    # THEN
    assert errors == [(("type",), "missing")]


@given(st.from_regex(TYPE_PATTERN, fullmatch=True))
def test_any_type_matching_the_pattern_is_accepted(value: str) -> None:
    assert submit(type=value).type == value


# ---- text fields and their character limits ----

TEXT_LIMITS = [
    ("object", 51_200),
    ("info", 51_200),
    ("description", 51_200),
    ("summary", 1_024),
    ("system_id", 256),
    ("schema", 1_024),
]


@pytest.mark.parametrize(("field", "limit"), TEXT_LIMITS)
def test_text_field_accepts_its_limit_counted_in_characters(field: str, limit: int) -> None:
    # GIVEN a value of exactly `limit` characters, three UTF-8 bytes each
    value = "€" * limit

    # WHEN
    detail = stamp(submit(**{field: value})).to_detail()

    # THEN
    assert detail[field] == value


@pytest.mark.parametrize(("field", "limit"), TEXT_LIMITS)
def test_text_field_refuses_one_character_over_its_limit(field: str, limit: int) -> None:
    # GIVEN / WHEN
    errors = errors_of(type="a", **{field: "x" * (limit + 1)})

    # THEN
    assert errors == [((field,), "string_too_long")]


@pytest.mark.parametrize("field", [field for field, _ in TEXT_LIMITS])
def test_text_field_refuses_non_strings(field: str) -> None:
    # GIVEN / WHEN
    errors = errors_of(type="a", **{field: 42})

    # THEN
    assert errors == [((field,), "string_type")]


# ---- kind, dataset and payload ----


@pytest.mark.parametrize("value", ["sales", "daily-sales_2026.v1", "x" * 128])
def test_dataset_id_accepts_its_pattern(value: str) -> None:
    # GIVEN / WHEN
    submission = submit(kind="dataset", dataset=value, payload={"units": 1})

    # THEN
    assert submission.dataset == value
    assert re.fullmatch(DATASET_PATTERN, value)


@pytest.mark.parametrize("value", ["", "x" * 129, "daily sales", "sales:2026", "sales/eu", "ventes-é", "a+b"])
def test_dataset_id_refuses_bad_chars_and_lengths(value: str) -> None:
    # GIVEN / WHEN
    errors = errors_of(type="a", kind="dataset", dataset=value, payload={"units": 1})

    # THEN
    assert errors == [(("dataset",), "string_pattern_mismatch")]


def test_dataset_id_is_required_when_kind_is_dataset() -> None:
    # GIVEN / WHEN
    errors = errors_of(type="a", kind="dataset", payload={"units": 1})

    # THEN
    assert errors == [(("dataset",), "value_error")]


def test_dataset_id_is_refused_for_a_standard_event() -> None:
    # GIVEN / WHEN
    errors = errors_of(type="a", dataset="sales")

    # THEN
    assert errors == [(("dataset",), "value_error")]


@pytest.mark.parametrize("payload", [None, {}])
def test_dataset_event_needs_a_row(payload: dict[str, Any] | None) -> None:
    # GIVEN / WHEN
    errors = errors_of(type="a", kind="dataset", dataset="sales", payload=payload)

    # THEN
    assert errors == [(("payload",), "value_error")]


def test_dataset_row_accepts_flat_scalars() -> None:
    # GIVEN
    row = {"store": "berlin-01", "units": 3, "revenue": 59.97, "promo": False, "note": None}

    # WHEN
    submission = submit(kind="dataset", dataset="sales", payload=row)

    # THEN
    assert submission.payload == row


@pytest.mark.parametrize("nested", [{"a": 1}, [1, 2], []])
def test_dataset_row_refuses_nested_values_naming_the_keys(nested: Any) -> None:
    # GIVEN / WHEN
    with pytest.raises(ValidationError) as raised:
        submit(kind="dataset", dataset="sales", payload={"units": 3, "zeta": nested, "alpha": nested})

    # THEN
    [error] = raised.value.errors()
    assert error["loc"] == ("payload",)
    assert error["msg"].endswith(": alpha, zeta")


def test_standard_event_payload_may_nest() -> None:
    # GIVEN
    payload = {"order": {"id": 1001, "lines": [{"sku": "A-1", "qty": 2}]}}

    # WHEN
    submission = submit(payload=payload)

    # THEN
    assert submission.payload == payload


@pytest.mark.parametrize("payload", [[1, 2], "text", 42])
def test_payload_must_be_an_object(payload: Any) -> None:
    # GIVEN / WHEN
    errors = errors_of(type="a", payload=payload)

    # THEN
    assert errors == [(("payload",), "dict_type")]


@pytest.mark.parametrize(("value", "expected"), [("standard", Kind.STANDARD), ("STANDARD", Kind.STANDARD)])
def test_kind_is_case_insensitive(value: str, expected: Kind) -> None:
    assert submit(kind=value).kind is expected


@pytest.mark.parametrize("value", ["dataset", "Dataset", "DATASET"])
def test_kind_dataset_is_case_insensitive(value: str) -> None:
    assert submit(kind=value, dataset="sales", payload={"units": 1}).kind is Kind.DATASET


@pytest.mark.parametrize("value", ["table", "", None, 1])
def test_kind_refuses_other_values(value: Any) -> None:
    assert errors_of(type="a", kind=value) == [(("kind",), "value_error")]


def test_kind_and_level_have_defaults() -> None:
    # GIVEN / WHEN
    submission = submit()

    # THEN
    assert (submission.kind, submission.level) == (Kind.STANDARD, Level.INFO)


# ---- level ----


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("INFO", Level.INFO),
        ("info", Level.INFO),
        ("Informational", Level.INFO),
        ("INFORMATIONAL", Level.INFO),
        ("notice", Level.INFO),
        ("NOTICE", Level.INFO),
        ("WARN", Level.WARN),
        ("warn", Level.WARN),
        ("warning", Level.WARN),
        ("Warning", Level.WARN),
        ("ERROR", Level.ERROR),
        ("error", Level.ERROR),
    ],
)
def test_level_accepts_names_and_aliases_case_insensitively(value: str, expected: Level) -> None:
    # GIVEN / WHEN
    detail = stamp(submit(level=value)).to_detail()

    # THEN the level is normalized on the bus
    assert detail["level"] == expected.value


@pytest.mark.parametrize("value", ["debug", "critical", "fatal", "", " INFO", None, 3])
def test_level_refuses_anything_else(value: Any) -> None:
    assert errors_of(type="a", level=value) == [(("level",), "value_error")]


# ---- time ----


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-22T14:52:39.778Z", "2026-11-22T14:52:39.778Z"),
        ("2026-11-22T15:52:39.778+01:00", "2026-11-22T14:52:39.778Z"),
        ("2026-11-22T09:22:39.778-05:30", "2026-11-22T14:52:39.778Z"),
        ("2026-11-23T00:52:39+10:00", "2026-11-22T14:52:39.000Z"),
        ("2026-11-22T14:52:39.778999Z", "2026-11-22T14:52:39.778Z"),
        ("2026-11-22 14:52:39.5+00:00", "2026-11-22T14:52:39.500Z"),
    ],
)
def test_client_time_is_normalized_to_utc_milliseconds(value: str, expected: str) -> None:
    # GIVEN / WHEN
    detail = stamp(submit(time=value)).to_detail()

    # THEN
    assert detail["time"] == expected


@pytest.mark.parametrize("value", ["2026-11-22T14:52:39.778", "2026-11-22T14:52:39", "2026-11-22"])
def test_naive_time_is_refused(value: str) -> None:
    # GIVEN / WHEN
    with pytest.raises(ValidationError) as raised:
        submit(time=value)

    # THEN
    [error] = raised.value.errors()
    assert (error["loc"], error["type"]) == (("time",), "value_error")
    assert "UTC offset" in error["msg"]


@pytest.mark.parametrize("value", ["yesterday", "22/11/2026 14:52", "2026-13-01T00:00:00Z", 1795359159778, "2" * 65])
def test_time_that_is_not_rfc3339_is_refused(value: Any) -> None:
    assert errors_of(type="a", time=value) == [(("time",), "value_error")]


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 12, 31)),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_any_offset_time_round_trips_to_the_same_utc_millisecond(moment: datetime, offset_minutes: int) -> None:
    # GIVEN an aware time at any offset
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))

    # WHEN
    parsed = parse_time(aware.isoformat())

    # THEN it is the same instant in UTC, truncated to the millisecond
    assert parsed.tzinfo is UTC
    assert parsed.microsecond % 1000 == 0
    assert timedelta(0) <= aware - parsed < timedelta(milliseconds=1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", format_time(parsed))
    assert parse_time(format_time(parsed)) == parsed


@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999)),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_every_time_is_refused_or_round_trips_over_the_whole_calendar(moment: datetime, offset_minutes: int) -> None:
    # GIVEN any time of years 0001-9999 at any offset (before: years < 1000 were written "199-…", and the UTC
    # conversion overflowed at both ends of the calendar)
    text = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()

    # WHEN
    try:
        parsed = parse_time(text)
    except ValueError:
        return  # refused at the door (a 422), never a crash

    # THEN what is written reads back as the same instant, and is written the same again
    written = format_time(parsed)
    assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z", written)
    assert parse_time(written) == parsed
    assert format_time(parse_time(written)) == written


# ---- unknown and server-only fields ----


def test_unknown_keys_are_refused() -> None:
    # GIVEN / WHEN
    errors = errors_of(type="a", color="red", Type="b")

    # THEN
    assert sorted(errors) == [(("Type",), "extra_forbidden"), (("color",), "extra_forbidden")]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "q4Jm0Xw2TSeWb7vK1nYc3A"),
        ("external", False),
        ("subject", "someone-else"),
        ("request_key", "Req_1001"),
        ("hops", 0),
        ("via", ["https://other.example/"]),
        ("schema_", "https://app.example/"),  # the Python name of `schema` is not a JSON key
    ],
)
def test_server_only_fields_are_refused_in_a_submission(field: str, value: Any) -> None:
    assert errors_of(type="a", **{field: value}) == [((field,), "extra_forbidden")]


# ---- stamping and the bus detail ----


def test_stamp_event_sets_every_server_field() -> None:
    # GIVEN
    submission = submit(object="orders/1001")

    # WHEN
    event = stamp(submission, hops=2, via=["https://a.example/", "https://b.example/"])

    # THEN
    assert EVENT_ID.fullmatch(event.id)
    assert event.time == datetime(2026, 11, 22, 14, 52, 39, 778_000, tzinfo=UTC)
    assert event.external is True
    assert event.subject == "k7ab2cd9ef"
    assert event.request_key == "Req_1001"
    assert event.hops == 2
    assert event.via == ["https://a.example/", "https://b.example/"]
    assert event.object == "orders/1001"


def test_stamp_event_keeps_the_client_time() -> None:
    # GIVEN
    submission = submit(time="2026-01-02T03:04:05.006+02:00")

    # WHEN
    event = stamp(submission)

    # THEN
    assert format_time(event.time) == "2026-01-02T01:04:05.006Z"


def test_stamp_event_uses_the_current_time_when_none_is_given() -> None:
    # GIVEN
    before = datetime.now(UTC) - timedelta(milliseconds=1)

    # WHEN
    event = stamp_event(submit(), external=False, subject=None, request_key="")

    # THEN
    assert before <= event.time <= datetime.now(UTC)
    assert event.time.tzinfo is not None
    assert (event.external, event.subject, event.hops, event.via) == (False, None, 0, None)


def test_stamp_event_gives_every_event_its_own_id() -> None:
    # GIVEN
    submission = submit()

    # WHEN
    ids = {stamp(submission).id for _ in range(500)}

    # THEN
    assert len(ids) == 500
    assert all(EVENT_ID.fullmatch(event_id) for event_id in ids)


def test_stamp_event_turns_an_empty_via_into_none() -> None:
    assert stamp(submit(), via=[]).via is None


def test_to_detail_omits_absent_fields_and_writes_schema_by_its_alias() -> None:
    # GIVEN
    event = stamp(submit(schema="https://app.example/", level="warning"))

    # WHEN
    detail = event.to_detail()

    # THEN
    assert detail == {
        "id": event.id,
        "type": "order.created",
        "level": "WARN",
        "kind": "standard",
        "time": "2026-11-22T14:52:39.778Z",
        "schema": "https://app.example/",
        "external": True,
        "subject": "k7ab2cd9ef",
        "request_key": "Req_1001",
        "hops": 0,
    }


def test_to_detail_keeps_false_and_zero_values() -> None:
    # GIVEN an internal event without a subject
    event = stamp(submit(), external=False, subject=None, hops=0)

    # WHEN
    detail = event.to_detail()

    # THEN
    assert (detail["external"], detail["hops"]) == (False, 0)
    assert "subject" not in detail
    assert "via" not in detail


def test_a_dataset_detail_validates_back_into_the_same_event() -> None:
    # GIVEN
    event = stamp(submit(kind="DATASET", dataset="daily-sales", payload={"units": 3}), via=["https://a.example/"])

    # WHEN
    detail = event.to_detail()

    # THEN
    assert (detail["kind"], detail["dataset"], detail["payload"]) == ("dataset", "daily-sales", {"units": 3})
    assert Event.model_validate(detail).to_detail() == detail


@pytest.mark.parametrize("name", ["eventbridge/external-event", "eventbridge/internal-event"])
def test_the_eventbridge_samples_carry_valid_stamped_events(name: str) -> None:
    # GIVEN
    delivery = load_event(name)

    # WHEN
    event = Event.model_validate(delivery["detail"])

    # THEN
    assert event.to_detail() == delivery["detail"]
    assert delivery["detail-type"] == event.type
    assert delivery["source"] == ("correlator.external" if event.external else "correlator.internal")
