"""Event-log lines: Personium's format byte for byte, and the log-queue message that carries them."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlator.event import REQUEST_KEY_PATTERN, TYPE_PATTERN, Event, Level, parse_time
from correlator.eventlog import LogLineFormat, format_instant, format_log_line
from functions.log_writer.logwriter import render_log_message
from tests.samples import load_event

# ARCHITECTURE.md section 7, verbatim.
SPEC_LINE = (
    '2026-11-22T14:52:39.778Z,[INFO ],"Req_1001","true","https://app.example/","key-abc","order.created",'
    '"orders/1","ok"\n'
)


def make_event(**fields: Any) -> Event:
    """A validated event with the values of the specification's example, overridden by ``fields``."""
    values: dict[str, Any] = {
        "id": "q4Jm0Xw2TSeWb7vK1nYc3A",
        "time": "2026-11-22T14:52:39.778Z",
        "type": "order.created",
        "level": "INFO",
        "external": True,
        "request_key": "Req_1001",
        "schema": "https://app.example/",
        "subject": "key-abc",
        "object": "orders/1",
        "info": "ok",
    }
    values.update(fields)
    return Event.model_validate(values)


def parse_line(line: str) -> list[str]:
    """The fields of one line as a CSV reader sees them (it must be exactly one record)."""
    rows = list(csv.reader(io.StringIO(line, newline="")))
    assert len(rows) == 1, rows
    return rows[0]


def delivery_bodies() -> list[str]:
    return [record["body"] for record in load_event("sqs/log-delivery")["Records"]]


# ---- format_log_line ----


def test_the_specification_example_is_reproduced_byte_for_byte():
    # GIVEN the event of the ARCHITECTURE.md example
    event = make_event()

    # WHEN it is formatted
    line = format_log_line(event)

    # THEN the line is the example, \n-terminated, and nothing else
    assert line == SPEC_LINE
    assert line.encode("utf-8") == SPEC_LINE.encode("ascii")


@pytest.mark.parametrize(
    ("level", "bracket"),
    [(Level.INFO, "[INFO ]"), (Level.WARN, "[WARN ]"), (Level.ERROR, "[ERROR]")],
)
def test_the_level_is_padded_to_five_characters(level: Level, bracket: str):
    # GIVEN an event
    event = make_event()

    # WHEN it is formatted at that level
    line = format_log_line(event, level)

    # THEN the level sits between the time and the request key, padded inside the brackets
    assert line == SPEC_LINE.replace("[INFO ]", bracket)


@pytest.mark.parametrize(
    ("own", "forced", "line_format", "bracket"),
    [
        ("ERROR", Level.INFO, LogLineFormat.PERSONIUM, "[INFO ]"),
        ("INFO", Level.WARN, LogLineFormat.PERSONIUM, "[WARN ]"),
        ("WARN", Level.ERROR, LogLineFormat.PERSONIUM, "[ERROR]"),
        ("WARN", None, LogLineFormat.PERSONIUM, "[INFO ]"),
        ("ERROR", None, LogLineFormat.PERSONIUM, "[INFO ]"),
        ("ERROR", Level.INFO, LogLineFormat.CORRELATOR, "[INFO ]"),
        ("WARN", None, LogLineFormat.CORRELATOR, "[WARN ]"),
    ],
)
def test_the_level_comes_from_the_action(own: str, forced: Level | None, line_format: LogLineFormat, bracket: str):
    # GIVEN an event with its own level
    event = make_event(level=own)

    # WHEN it is formatted with a forced level (log.info/warn/error) or none (log)
    line = format_log_line(event, forced, line_format)

    # THEN the forced level is written; for "log", Personium's INFO, or the event's own in the correlator format
    assert line.split(",", 2)[1] == bracket


def test_inner_quotes_are_doubled():
    # GIVEN values with double quotes in them
    event = make_event(object='say "hi"', info='"', subject='a""b')

    # WHEN formatted
    line = format_log_line(event)

    # THEN every inner quote is doubled and the field stays quoted
    assert line.endswith(',"a""""b","order.created","say ""hi""",""""\n')


def test_a_missing_value_is_the_bare_word_null():
    # GIVEN an event without schema, subject, object and info
    event = make_event(schema=None, subject=None, object=None, info=None)

    # WHEN formatted
    line = format_log_line(event)

    # THEN each missing value is null, unquoted, while an empty string stays quoted
    assert line == '2026-11-22T14:52:39.778Z,[INFO ],"Req_1001","true",null,null,"order.created",null,null\n'
    assert format_log_line(make_event(info="")).endswith('"orders/1",""\n')


def test_a_missing_request_key_is_a_fresh_key_as_personium_writes():
    # WHEN an event without a request key (a timer event, say) is formatted twice
    first, second = (format_log_line(make_event(request_key=None)) for _ in range(2))

    # THEN each line has a freshly generated default key ({4}_{18}), never a bare null
    for line in (first, second):
        key = parse_line(line)[2]
        assert re.fullmatch(r"[A-Za-z0-9_-]{4}_[A-Za-z0-9_-]{18}", key), line
    assert parse_line(first)[2] != parse_line(second)[2]


def test_an_empty_request_key_stays_empty():
    # WHEN the client sent an empty X-Personium-RequestKey (Personium accepts it)
    line = format_log_line(make_event(request_key=""))

    # THEN the line keeps it, quoted
    assert line.startswith('2026-11-22T14:52:39.778Z,[INFO ],"","true",')


def test_a_missing_request_key_is_null_in_the_correlator_format():
    # WHEN an event has no request key and the correlator format is chosen
    line = format_log_line(make_event(request_key=None), line_format=LogLineFormat.CORRELATOR)

    # THEN it is written as null
    assert line.startswith('2026-11-22T14:52:39.778Z,[INFO ],null,"true",')


@pytest.mark.parametrize(("external", "word"), [(True, '"true"'), (False, '"false"')])
def test_external_is_a_quoted_true_or_false(external: bool, word: str):
    # WHEN an external or internal event is formatted
    line = format_log_line(make_event(external=external))

    # THEN the fourth field says so, quoted
    assert line.split(",")[3] == word


def test_unicode_is_written_as_utf8():
    # GIVEN non-ASCII values
    event = make_event(subject="Jérôme 山田", info="✓ 済み 🚚")

    # WHEN formatted and encoded as the log file is
    encoded = format_log_line(event).encode("utf-8")

    # THEN the bytes are the UTF-8 of the characters, not escapes
    assert '"Jérôme 山田","order.created","orders/1","✓ 済み 🚚"\n'.encode() in encoded
    assert b"\\u" not in encoded


def test_the_time_is_utc_with_milliseconds():
    # GIVEN an event stamped in another offset
    event = make_event(time=datetime(2026, 11, 23, 8, 52, 39, 778_999, tzinfo=timezone(timedelta(hours=9))).isoformat())

    # WHEN formatted
    line = format_log_line(event)

    # THEN the time is RFC 3339 UTC, truncated to exactly 3 decimals, with Z
    assert line.startswith("2026-11-22T23:52:39.778Z,[INFO ],")


# ---- Instant.toString(): Personium's time column ----


@pytest.mark.parametrize(
    ("value", "written"),
    [
        # Java: Instant.parse("2026-11-22T14:52:39Z").toString() -> no fraction on a whole second
        (datetime(2026, 11, 22, 14, 52, 39, tzinfo=UTC), "2026-11-22T14:52:39Z"),
        (datetime(2026, 11, 22, 14, 52, 0, tzinfo=UTC), "2026-11-22T14:52:00Z"),  # seconds always written
        (datetime(2026, 11, 22, 0, 0, 0, tzinfo=UTC), "2026-11-22T00:00:00Z"),
        # milliseconds: always three digits, trailing zeros kept
        (datetime(2026, 11, 22, 14, 52, 39, 778_000, tzinfo=UTC), "2026-11-22T14:52:39.778Z"),
        (datetime(2026, 11, 22, 14, 52, 39, 100_000, tzinfo=UTC), "2026-11-22T14:52:39.100Z"),
        (datetime(2026, 11, 22, 14, 52, 39, 1_000, tzinfo=UTC), "2026-11-22T14:52:39.001Z"),
        # microseconds (never on events, which are ms) in Java's group of six
        (datetime(2026, 11, 22, 14, 52, 39, 778_100, tzinfo=UTC), "2026-11-22T14:52:39.778100Z"),
        # offsets are converted to UTC
        (datetime(2026, 11, 23, 8, 52, 39, tzinfo=timezone(timedelta(hours=9))), "2026-11-22T23:52:39Z"),
        (datetime(2026, 1, 1, 0, 30, 0, 500_000, tzinfo=timezone(timedelta(hours=1))), "2025-12-31T23:30:00.500Z"),
        # years: four digits, zero-padded (Java pads to 4; Python's range is 1..9999)
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
        (datetime(999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC), "0999-12-31T23:59:59.999Z"),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "9999-12-31T23:59:59Z"),
        (datetime(1970, 1, 1, tzinfo=UTC), "1970-01-01T00:00:00Z"),
    ],
)
def test_the_time_is_written_as_java_instant_to_string(value: datetime, written: str):
    assert format_instant(value) == written


def test_a_whole_second_event_has_no_fraction_in_personiums_format_only():
    # GIVEN an event stamped on a whole second
    event = make_event(time="2026-11-22T14:52:39.000Z")

    # WHEN formatted in each format
    personium = format_log_line(event)
    correlator = format_log_line(event, line_format=LogLineFormat.CORRELATOR)

    # THEN Personium's drops the fraction, the correlator format keeps .000
    assert personium == SPEC_LINE.replace("39.778Z", "39Z")
    assert correlator == SPEC_LINE.replace("39.778Z", "39.000Z")


# ---- golden lines from personium-core's own tests ----


def test_personium_event_test_escape_processing_line():
    # personium-core EventTest.event_Normal_escape_processing posts Type `\"POST,`, Object `Object\"\"Data`,
    # Info `resultData\"` (JSON-decoded: "POST, / Object""Data / resultData") with X-Personium-RequestKey
    # testRequestKey and a master token (no schema, no subject), then matches the log against
    # .*"testRequestKey","true",null,null,"""POST,","Object""""Data","resultData"""$
    expected_tail = '"testRequestKey","true",null,null,"""POST,","Object""""Data","resultData"""'
    # GIVEN that event (its Type is outside Correlator's type pattern: built without validation)
    event = Event.model_construct(
        **{
            **make_event(request_key="testRequestKey", schema=None, subject=None).__dict__,
            "type": '"POST,',
            "object": 'Object""Data',
            "info": 'resultData"',
        }
    )

    # WHEN formatted by the log action
    line = format_log_line(event)

    # THEN the line matches Personium's expectation exactly
    assert re.fullmatch(r".*" + re.escape(expected_tail) + "\n", line)
    assert line == f"2026-11-22T14:52:39.778Z,[INFO ],{expected_tail}\n"


def test_personium_documented_internal_event_line():
    # web:285 (Personium's log API reference) shows this internal-event line
    expected = (
        '2013-04-18T14:52:39.778Z,[INFO ],"PCS-1364350331902","false","https://app-cell1.unit1.example/",'
        '"https://app-cell1.unit1.example/#staff","cellctl.Role.list","https://homeClinic.unit1.example/__ctl/Role",'
        '"200"\n'
    )
    event = make_event(
        time="2013-04-18T14:52:39.778Z",
        request_key="PCS-1364350331902",
        external=False,
        schema="https://app-cell1.unit1.example/",
        subject="https://app-cell1.unit1.example/#staff",
        type="cellctl.Role.list",
        object="https://homeClinic.unit1.example/__ctl/Role",
        info="200",
    )
    assert format_log_line(event, Level.INFO) == expected


# ---- round trip through a CSV reader (property) ----

ANY_TEXT = st.one_of(st.none(), st.text(max_size=60))
AWKWARD_TEXT = st.one_of(
    ANY_TEXT,
    st.lists(st.sampled_from(['"', ",", "\n", "\r\n", "\r", '""', "null", " ", "é", "\x00", "\t"]), max_size=8).map(
        "".join
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    request_key=st.one_of(st.none(), st.from_regex(REQUEST_KEY_PATTERN, fullmatch=True)),
    event_type=st.from_regex(TYPE_PATTERN, fullmatch=True),
    external=st.booleans(),
    level=st.sampled_from(list(Level)),
    forced=st.one_of(st.none(), st.sampled_from(list(Level))),
    schema=AWKWARD_TEXT,
    subject=AWKWARD_TEXT,
    obj=AWKWARD_TEXT,
    info=AWKWARD_TEXT,
)
def test_a_csv_reader_reads_back_exactly_the_nine_fields(
    request_key, event_type, external, level, forced, schema, subject, obj, info
):  # in the correlator format, where every field is the event's own
    # GIVEN any valid event, with arbitrary text in its free-text fields
    event = make_event(
        request_key=request_key,
        type=event_type,
        external=external,
        level=level.value,
        schema=schema,
        subject=subject,
        object=obj,
        info=info,
    )

    # WHEN it is formatted and read back by a CSV reader
    line = format_log_line(event, forced, LogLineFormat.CORRELATOR)
    fields = parse_line(line)

    # THEN it is one record of 9 fields equal to the originals (a missing value reads as "null")
    def read_as(value: str | None) -> str:
        return "null" if value is None else value

    assert fields == [
        "2026-11-22T14:52:39.778Z",
        f"[{(forced or level).value:<5}]",
        read_as(request_key),
        "true" if external else "false",
        read_as(schema),
        read_as(subject),
        event_type,
        read_as(obj),
        read_as(info),
    ]
    # AND the line ends with exactly one \n
    assert line.endswith("\n")
    assert not line.endswith("\r\n")


# ---- render_log_message ----


def test_each_sample_delivery_renders_its_line():
    # GIVEN the three deliveries of the sample (log, log.error, log with a WARN event)
    bodies = delivery_bodies()

    # WHEN each is rendered
    lines = [render_log_message(body) for body in bodies]

    # THEN the lines are exactly these (log.error forces ERROR over the event's INFO; log is INFO)
    assert lines == [
        '2026-11-22T14:52:39.778Z,[INFO ],"Req_1001","true","https://orders.example.com/","k7ab2cd9ef",'
        '"order.created","orders/1001","ok"\n',
        '2026-11-22T14:52:41.204Z,[ERROR],"Req_1001","false",null,"notify-ops-on-error","email",'
        '"2 recipients","sent"\n',
        '2026-11-22T14:52:42.005Z,[INFO ],"Req_1002","true",null,"k7ab2cd9ef","stock.low",'
        '"sku ""A-17"", bin 4","3 left\nreorder"\n',
    ]


@pytest.mark.parametrize(
    ("action", "line_format", "bracket"),
    [
        ("log.info", LogLineFormat.PERSONIUM, "[INFO ]"),
        ("log.warn", LogLineFormat.PERSONIUM, "[WARN ]"),
        ("log.error", LogLineFormat.PERSONIUM, "[ERROR]"),
        ("log", LogLineFormat.PERSONIUM, "[INFO ]"),
        ("log.warn", LogLineFormat.CORRELATOR, "[WARN ]"),
        ("log", LogLineFormat.CORRELATOR, "[ERROR]"),
    ],
)
def test_the_rule_action_picks_the_level(action: str, line_format: LogLineFormat, bracket: str):
    # GIVEN an ERROR event delivered by a rule with that action
    message = json.loads(delivery_bodies()[0])
    message["event"]["detail"]["level"] = "ERROR"
    message["rule"]["action"] = action

    # WHEN rendered
    line = render_log_message(json.dumps(message), line_format)

    # THEN the level is the forced one; plain log is INFO (Personium) or the event's own (correlator)
    assert line.split(",", 2)[1] == bracket


def test_a_message_without_a_rule_is_a_plain_log():
    # GIVEN a delivery whose rule is missing
    message = json.loads(delivery_bodies()[2])
    del message["rule"]

    # WHEN rendered in each format
    personium = render_log_message(json.dumps(message))
    correlator = render_log_message(json.dumps(message), LogLineFormat.CORRELATOR)

    # THEN it is the plain log line
    assert personium.startswith("2026-11-22T14:52:42.005Z,[INFO ],")
    assert correlator.startswith("2026-11-22T14:52:42.005Z,[WARN ],")


def _delivery_with(change: str) -> str:
    message: Any = json.loads(delivery_bodies()[0])
    if change == "not-json":
        return "{rule: log"
    if change == "not-an-object":
        return json.dumps([message])
    if change == "no-event":
        del message["event"]
    elif change == "event-not-object":
        message["event"] = "order.created"
    elif change == "not-a-log-action":
        message["rule"]["action"] = "email"
    elif change == "no-detail":
        del message["event"]["detail"]
    elif change == "detail-invalid-type":
        message["event"]["detail"]["type"] = "order created!"
    elif change == "detail-without-id":
        del message["event"]["detail"]["id"]
    elif change == "detail-bad-request-key":
        message["event"]["detail"]["request_key"] = "Req 1001\n"
    elif change == "detail-unknown-field":
        message["event"]["detail"]["colour"] = "red"
    return json.dumps(message)


@pytest.mark.parametrize(
    "change",
    [
        "not-json",
        "not-an-object",
        "no-event",
        "event-not-object",
        "not-a-log-action",
        "no-detail",
        "detail-invalid-type",
        "detail-without-id",
        "detail-bad-request-key",
        "detail-unknown-field",
    ],
)
def test_an_invalid_delivery_is_a_value_error(change: str):
    # GIVEN a delivery that is not a valid log delivery
    body = _delivery_with(change)

    # WHEN / THEN rendering it raises ValueError (pydantic's ValidationError is one)
    with pytest.raises(ValueError):
        render_log_message(body)


@pytest.mark.parametrize("line_format", list(LogLineFormat))
@pytest.mark.parametrize("time", ["0199-08-10T00:00:00Z", "0001-01-01T00:00:00.5Z", "9999-12-31T23:59:59.999Z"])
def test_a_line_of_any_year_reads_back(time: str, line_format: LogLineFormat) -> None:
    # GIVEN an event of a year below 1000 (before: written "199-08-10T…", which nothing could read back)
    event = make_event(time=time)

    # WHEN its line is written
    line = format_log_line(event, line_format=line_format)

    # THEN its time has four digits of year and reads back as the same instant
    written = line.split(",", 1)[0]
    assert written[:5] == time[:5]
    assert parse_time(written) == event.time
