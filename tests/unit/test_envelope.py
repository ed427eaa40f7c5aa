"""The EventBridge envelope: source by origin, and entry sizes counted the way EventBridge counts them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from correlator.envelope import MAX_ENTRY_BYTES, SOURCE_EXTERNAL, SOURCE_INTERNAL, entry_size, source_of, to_entry
from correlator.event import Event, EventSubmission, stamp_event

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

NOW = datetime(2026, 11, 22, 14, 52, 39, 778_000, tzinfo=UTC)


def event_of(*, external: bool = True, **fields: Any) -> Event:
    submission = EventSubmission.model_validate({"type": "order.created", **fields})
    return stamp_event(submission, external=external, subject="k7ab2cd9ef", request_key="Req_1001", now=NOW)


def documented_size(entry: dict[str, Any]) -> int:
    """AWS's own reference computation ("Calculating PutEvents event entry size"), transcribed."""
    size = 0
    if entry.get("Time") is not None:
        size += 14
    size += len(entry["Source"].encode("utf-8"))
    size += len(entry["DetailType"].encode("utf-8"))
    if entry.get("Detail") is not None:
        size += len(entry["Detail"].encode("utf-8"))
    for resource in entry.get("Resources") or []:
        if resource is not None:
            size += len(resource.encode("utf-8"))
    return size


@pytest.mark.parametrize(("external", "source"), [(True, SOURCE_EXTERNAL), (False, SOURCE_INTERNAL)])
def test_source_follows_external(external: bool, source: str) -> None:
    # GIVEN
    event = event_of(external=external)

    # WHEN
    entry = to_entry(event, "correlator")

    # THEN
    assert source_of(event) == source
    assert entry["Source"] == source
    assert {SOURCE_EXTERNAL, SOURCE_INTERNAL} == {"correlator.external", "correlator.internal"}


def test_entry_carries_type_detail_time_and_bus() -> None:
    # GIVEN
    event = event_of(object="orders/1001", schema="https://app.example/")

    # WHEN
    entry = to_entry(event, "correlator-test")

    # THEN
    assert entry["DetailType"] == "order.created"
    assert entry["EventBusName"] == "correlator-test"
    assert entry["Time"] == NOW
    assert json.loads(entry["Detail"]) == event.to_detail()
    assert "Resources" not in entry


def test_detail_is_compact_utf8_json() -> None:
    # GIVEN
    event = event_of(object="Bestellung für Zoë €")

    # WHEN
    detail = to_entry(event, "correlator")["Detail"]

    # THEN non-ASCII is kept as is (not \\u-escaped) and there is no padding whitespace
    assert '"object":"Bestellung für Zoë €"' in detail
    assert ", " not in detail
    assert ": " not in detail


def test_entry_size_counts_time_as_14_bytes_plus_utf8_bytes() -> None:
    # GIVEN Source 3 bytes, DetailType 2, Detail 2 + 2 + 3 + 4 bytes ("é" "€" "😀" in quotes), 2 resources of 5 bytes
    entry: PutEventsRequestEntryTypeDef = {
        "Source": "abc",
        "DetailType": "de",
        "Detail": '"é€😀"',
        "Time": NOW,
        "Resources": ["arn:1", "arn:2"],
    }

    # WHEN / THEN
    assert entry_size(entry) == 14 + 3 + 2 + (2 + 2 + 3 + 4) + 10


def test_entry_size_without_time_or_detail() -> None:
    # GIVEN
    entry: PutEventsRequestEntryTypeDef = {"Source": "correlator.internal", "DetailType": "log.list"}

    # WHEN / THEN
    assert entry_size(entry) == len("correlator.internal") + len("log.list")


def test_entry_size_ignores_the_bus_name() -> None:
    # GIVEN the same event on a short and a long bus name
    event = event_of()

    # WHEN / THEN
    assert entry_size(to_entry(event, "b")) == entry_size(to_entry(event, "b" * 256))


def test_a_stamped_entry_is_measured_as_documented() -> None:
    # GIVEN text of 3-byte characters, at the character limit in two fields
    event = event_of(object="€" * 51_200, info="€" * 51_200)

    # WHEN
    entry = to_entry(event, "correlator")

    # THEN
    assert entry_size(entry) == documented_size(dict(entry))
    assert entry_size(entry) > MAX_ENTRY_BYTES > len(entry["Detail"])


@given(
    source=st.text(min_size=1, max_size=40),
    detail_type=st.text(min_size=1, max_size=40),
    detail=st.none() | st.text(max_size=200),
    resources=st.none() | st.lists(st.text(max_size=30), max_size=4),
    with_time=st.booleans(),
)
def test_entry_size_matches_the_aws_reference(
    source: str, detail_type: str, detail: str | None, resources: list[str] | None, with_time: bool
) -> None:
    # GIVEN
    entry: dict[str, Any] = {"Source": source, "DetailType": detail_type}
    if detail is not None:
        entry["Detail"] = detail
    if resources is not None:
        entry["Resources"] = resources
    if with_time:
        entry["Time"] = NOW

    # WHEN / THEN
    assert entry_size(entry) == documented_size(entry)  # type: ignore[arg-type]
