"""logs search's engine: every criterion, records the writer really writes, gzip on the fly, chunk edges."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlator.event import Level
from correlator.eventlog import LogLineFormat, format_log_line
from correlator_cli.logsearch import Query, decompressed, parse_record, search
from tests.unit.test_log_line import make_event


def line(level: str | None = None, line_format: LogLineFormat = LogLineFormat.PERSONIUM, **fields: Any) -> bytes:
    """A line exactly as the log writer formats it (no schema, no info unless given; ``level`` as a log.* rule)."""
    event = make_event(**{"schema": None, "info": None, **fields})
    return format_log_line(event, Level(level) if level else None, line_format).encode()


LOG = b"".join(
    [
        line(),
        line(request_key="Req_2", type="payment.declined", level="WARN", info='card "expired"'),
        # Personium's times: no fraction on a whole second
        line(request_key="Req_2", type="order.cancelled", object="multi\nline\n2026 text", time="2026-11-22T15:00:00Z"),
        line(request_key="Req_4", type="late", object="half a second early", time="2026-11-22T14:59:59.500Z"),
        line(request_key="Req_3", type="rule.create", external=False, subject="arn:aws:iam::1:user/x", info="201"),
        # the correlator format: always milliseconds
        line(
            request_key="Req_10",
            type="orders.x",
            level="ERROR",
            object='],"Req_2","',
            time="2026-11-23T00:00:00Z",
            line_format=LogLineFormat.CORRELATOR,
        ),
    ]
)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def found(query: Query, data: bytes = LOG, size: int = 1 << 20, block: int = 4 << 20) -> list[str | None]:
    return [record.object for record in search(chunks(data, size), query, block_size=block)]


@pytest.mark.parametrize(
    ("query", "objects"),
    [
        (Query(request_key="Req_2"), ["orders/1", "multi\nline\n2026 text"]),
        (Query(request_key="Req_1"), []),
        (Query(type_prefix="order."), ["orders/1", "multi\nline\n2026 text"]),
        (Query(type_prefix="order"), ["orders/1", "multi\nline\n2026 text", '],"Req_2","']),
        (Query(level="WARN"), ["orders/1"]),
        (Query(level="ERROR"), ['],"Req_2","']),
        (Query(subject="arn:aws:iam::1:user/x"), ["orders/1"]),
        (Query(since="2026-11-22T15:00:00.000000Z"), ["multi\nline\n2026 text", '],"Req_2","']),
        (Query(until="2026-11-22T15:00:00.000000Z"), ["orders/1", "orders/1", "half a second early", "orders/1"]),
        (Query(since="2026-11-22T14:59:59.600000Z", until="2026-11-23T00:00:00.000000Z"), ["multi\nline\n2026 text"]),
        (
            Query(since="2026-11-22T14:59:59.000000Z", until="2026-11-22T15:00:00.500000Z"),
            ["multi\nline\n2026 text", "half a second early"],
        ),
        (Query(text='card "expired"'), ["orders/1"]),
        (Query(text="line"), ["orders/1", "multi\nline\n2026 text"]),  # declined, and the multi-line object
        (Query(request_key="Req_2", level="WARN"), ["orders/1"]),
        (Query(type_prefix="order", level="INFO"), ["orders/1", "multi\nline\n2026 text"]),
        (Query(type_prefix="orders", level="ERROR", request_key="Req_10"), ['],"Req_2","']),
        (Query(subject="key-abc", type_prefix="late"), ["half a second early"]),
        (Query(subject="arn:aws:iam::1:user/x", level="WARN"), []),
        (Query(request_key="Req_2", type_prefix="order.", text="2026 text"), ["multi\nline\n2026 text"]),
        (
            Query(),
            ["orders/1", "orders/1", "multi\nline\n2026 text", "half a second early", "orders/1", '],"Req_2","'],
        ),
    ],
)
def test_every_criterion_finds_exactly_its_records(query: Query, objects: list[str]) -> None:
    # GIVEN the log above WHEN searched, in one chunk and byte by byte with tiny blocks THEN the same records
    assert found(query) == objects
    assert found(query, size=1, block=64) == objects


def test_records_are_parsed_back_to_their_fields() -> None:
    record = parse_record(
        line(info='say "hi"', schema="https://app.example/", external=False, level="ERROR", subject="key-abc")
    )
    assert record is not None
    assert record.to_json() == {
        "time": "2026-11-22T14:52:39.778Z",
        "level": "ERROR",
        "request_key": "Req_1001",
        "external": False,
        "schema": "https://app.example/",
        "subject": "key-abc",
        "type": "order.created",
        "object": "orders/1",
        "info": 'say "hi"',
    }
    assert parse_record(b"not a line\n") is None


def test_gzip_archives_are_decompressed_on_the_fly_even_as_several_members() -> None:
    archive = gzip.compress(LOG[:300]) + gzip.compress(LOG[300:])
    assert b"".join(decompressed(chunks(archive, 7))) == LOG
    assert found(Query(request_key="Req_2"), archive, size=5) == found(Query(request_key="Req_2"))


def test_plain_files_pass_through_and_empty_files_find_nothing() -> None:
    assert b"".join(decompressed(iter([b"a", b"bc"]))) == b"abc"
    assert found(Query(), b"") == []


@settings(max_examples=30, deadline=None)
@given(
    keys=st.lists(st.sampled_from(["Req_a", "Req_b", "Req_c"]), min_size=1, max_size=40),
    size=st.integers(1, 500),
    block=st.integers(1, 2000),
)
def test_chunking_never_loses_or_repeats_a_record(keys: list[str], size: int, block: int) -> None:
    data = b"".join(line(request_key=key, object=f"o{index}\nx") for index, key in enumerate(keys))
    for key in ("Req_a", "Req_b"):
        expected = [f"o{index}\nx" for index, k in enumerate(keys) if k == key]
        assert found(Query(request_key=key), data, size=size, block=block) == expected
    assert len(found(Query(), gzip.compress(data), size=size, block=block)) == len(keys)
