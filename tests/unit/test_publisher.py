"""The publisher: PutEvents chunks of at most 10 entries / 256 KB, sent concurrently, and retries of
retryable entries only.

EventBridge is a real ``boto3.client("events")`` answered by botocore's Stubber; every call's entries
are recorded so the tests can assert exactly what was sent in each PutEvents call. The Stubber answers
in queue order, so those publishers send one call at a time; the concurrency tests use a thread-safe
fake that answers each entry by its event id.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from correlator.envelope import MAX_ENTRIES_PER_CALL, MAX_ENTRY_BYTES, MAX_REQUEST_BYTES, entry_size
from correlator.event import Event, EventSubmission, stamp_event
from correlator.publisher import ENTRY_TOO_LARGE, EventPublisher, PublishOutcome, chunk_sizes, pool_connections

BUS = "correlator-test"
NOW = datetime(2026, 11, 22, 14, 52, 39, 778_000, tzinfo=UTC)


def make_events(count: int, *, payload_bytes: int = 0) -> list[Event]:
    """``count`` stamped events, each with a payload string of ``payload_bytes`` ASCII characters."""
    payload = {"blob": "x" * payload_bytes} if payload_bytes else None
    return [
        stamp_event(
            EventSubmission(type=f"test.event{index}", payload=payload),
            external=True,
            subject="k7ab2cd9ef",
            request_key="Req_1001",
            now=NOW,
        )
        for index in range(count)
    ]


@dataclass
class StubbedEventBridge:
    """A real EventBridge client whose responses are queued with Stubber; records every call's entries."""

    client: Any
    stubber: Stubber
    calls: list[list[Any]] = field(default_factory=list)

    def answer(self, *codes: str | None) -> None:
        """Queue one PutEvents response: one entry per code, None meaning accepted."""
        entries = [
            {"EventId": f"eb-{index}"} if code is None else {"ErrorCode": code, "ErrorMessage": f"{code} (stub)"}
            for index, code in enumerate(codes)
        ]
        failed = sum(1 for code in codes if code is not None)
        self.stubber.add_response("put_events", {"FailedEntryCount": failed, "Entries": entries})

    def accept(self, count: int) -> None:
        self.answer(*[None] * count)

    def fail_call(self, code: str, status: int = 400) -> None:
        """Queue a whole-call error (a ``ClientError``)."""
        self.stubber.add_client_error(
            "put_events", service_error_code=code, service_message="stubbed", http_status_code=status
        )

    def sent_ids(self) -> list[list[str]]:
        """The event ids sent in each call, in order."""
        return [[json.loads(entry["Detail"])["id"] for entry in call] for call in self.calls]


@pytest.fixture
def eventbridge() -> Iterator[StubbedEventBridge]:
    client = boto3.client("events", region_name="us-east-1")
    stub = StubbedEventBridge(client=client, stubber=Stubber(client))

    def record(params: dict[str, Any], **_: Any) -> None:
        stub.calls.append(list(params["Entries"]))

    client.meta.events.register("provide-client-params.events.PutEvents", record)
    with stub.stubber:
        yield stub
        stub.stubber.assert_no_pending_responses()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def publisher_on(eventbridge: StubbedEventBridge, sleeps: list[float], **options: Any) -> EventPublisher:
    # One call at a time: the Stubber's queued answers must meet the calls in order.
    return EventPublisher(eventbridge.client, BUS, sleep=sleeps.append, max_concurrency=1, **options)


def ids(events: list[Event], *indexes: int) -> list[str]:
    return [events[index].id for index in indexes]


def accepted(events: list[Event]) -> list[PublishOutcome]:
    return [PublishOutcome(event.id, "accepted") for event in events]


# ---- chunking ----


def test_25_small_events_go_in_calls_of_10_10_and_5(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    # GIVEN
    events = make_events(25)
    for size in (10, 10, 5):
        eventbridge.accept(size)

    # WHEN
    outcomes = publisher_on(eventbridge, sleeps).publish(events)

    # THEN
    assert [len(call) for call in eventbridge.calls] == [10, 10, 5]
    assert [event_id for call in eventbridge.sent_ids() for event_id in call] == ids(events, *range(25))
    assert all(entry["EventBusName"] == BUS for call in eventbridge.calls for entry in call)
    assert outcomes == accepted(events)
    assert sleeps == []


def test_big_events_are_split_by_bytes(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    # GIVEN three events of ~100 KB: two fit one 256 KB request, three do not
    events = make_events(3, payload_bytes=100_000)
    eventbridge.accept(2)
    eventbridge.accept(1)

    # WHEN
    outcomes = publisher_on(eventbridge, sleeps).publish(events)

    # THEN
    assert eventbridge.sent_ids() == [ids(events, 0, 1), ids(events, 2)]
    assert all(sum(entry_size(entry) for entry in call) <= MAX_REQUEST_BYTES for call in eventbridge.calls)
    assert outcomes == accepted(events)


def test_an_entry_over_256_kb_fails_without_a_call(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    # GIVEN
    [event] = make_events(1, payload_bytes=MAX_ENTRY_BYTES)

    # WHEN
    publisher = publisher_on(eventbridge, sleeps)
    [outcome] = publisher.publish([event])

    # THEN
    assert (outcome.event_id, outcome.status, outcome.error_code) == (event.id, "failed", ENTRY_TOO_LARGE)
    assert eventbridge.calls == []
    assert publisher.calls == 0


def test_an_entry_over_256_kb_does_not_hold_back_the_others(
    eventbridge: StubbedEventBridge, sleeps: list[float]
) -> None:
    # GIVEN
    small, big, other = make_events(1)[0], make_events(1, payload_bytes=300_000)[0], make_events(1)[0]
    eventbridge.accept(2)

    # WHEN
    outcomes = publisher_on(eventbridge, sleeps).publish([small, big, other])

    # THEN
    assert eventbridge.sent_ids() == [[small.id, other.id]]
    assert [outcome.status for outcome in outcomes] == ["accepted", "failed", "accepted"]
    assert outcomes[1].error_code == ENTRY_TOO_LARGE


def test_no_events_no_call(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    assert publisher_on(eventbridge, sleeps).publish([]) == []
    assert eventbridge.calls == []


# ---- partial failures and retries ----


def test_retryable_entries_are_resent_alone_and_end_accepted_in_order(
    eventbridge: StubbedEventBridge, sleeps: list[float]
) -> None:
    # GIVEN the 2nd entry is throttled and the 4th hits an internal failure, then both go through
    events = make_events(5)
    eventbridge.answer(None, "ThrottlingException", None, "InternalFailure", None)
    eventbridge.accept(2)

    # WHEN
    publisher = publisher_on(eventbridge, sleeps)
    outcomes = publisher.publish(events)

    # THEN
    assert eventbridge.sent_ids() == [ids(events, 0, 1, 2, 3, 4), ids(events, 1, 3)]
    assert outcomes == accepted(events)
    assert publisher.calls == 2
    assert len(sleeps) == 1


def test_retries_from_different_chunks_are_regrouped(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    # GIVEN 12 events (calls of 10 and 2), one throttled entry in each call
    events = make_events(12)
    eventbridge.answer(*[None] * 3, "ThrottlingException", *[None] * 6)
    eventbridge.answer(None, "ThrottlingException")
    eventbridge.accept(2)

    # WHEN
    outcomes = publisher_on(eventbridge, sleeps).publish(events)

    # THEN
    assert [len(call) for call in eventbridge.sent_ids()] == [10, 2, 2]
    assert eventbridge.sent_ids()[2] == ids(events, 3, 11)
    assert outcomes == accepted(events)


def test_a_validation_exception_entry_is_not_retried(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    # GIVEN
    events = make_events(3)
    eventbridge.answer("ValidationException", "ThrottlingException", None)
    eventbridge.accept(1)

    # WHEN
    outcomes = publisher_on(eventbridge, sleeps).publish(events)

    # THEN
    assert eventbridge.sent_ids() == [ids(events, 0, 1, 2), ids(events, 1)]
    assert outcomes[0] == PublishOutcome(events[0].id, "failed", "ValidationException", "ValidationException (stub)")
    assert outcomes[1:] == accepted(events[1:])


def test_retries_stop_after_max_attempts_with_the_last_code(
    eventbridge: StubbedEventBridge, sleeps: list[float]
) -> None:
    # GIVEN the 2nd entry fails on every attempt, with a different code the last time
    events = make_events(2)
    eventbridge.answer(None, "ThrottlingException")
    eventbridge.answer("ThrottlingException")
    eventbridge.answer("InternalFailure")

    # WHEN
    publisher = publisher_on(eventbridge, sleeps, max_attempts=3)
    outcomes = publisher.publish(events)

    # THEN
    assert publisher.calls == 3
    assert eventbridge.sent_ids() == [ids(events, 0, 1), ids(events, 1), ids(events, 1)]
    assert outcomes == [
        PublishOutcome(events[0].id, "accepted"),
        PublishOutcome(events[1].id, "failed", "InternalFailure", "InternalFailure (stub)"),
    ]
    assert len(sleeps) == 2


def test_a_failed_call_fails_every_entry_with_its_code(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    # GIVEN
    events = make_events(3)
    eventbridge.fail_call("AccessDeniedException")

    # WHEN
    outcomes = publisher_on(eventbridge, sleeps).publish(events)

    # THEN not retried: the same call would be denied again
    assert len(eventbridge.calls) == 1
    assert outcomes == [PublishOutcome(event.id, "failed", "AccessDeniedException", "stubbed") for event in events]
    assert sleeps == []


def test_a_throttled_call_is_left_to_botocore_retries(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    # GIVEN a call that still fails with throttling after botocore's own retries (Config retries)
    events = make_events(3)
    eventbridge.fail_call("ThrottlingException")

    # WHEN
    outcomes = publisher_on(eventbridge, sleeps).publish(events)

    # THEN the publisher does not stack its retries on botocore's: one call, every entry failed
    assert eventbridge.sent_ids() == [ids(events, 0, 1, 2)]
    assert [(outcome.status, outcome.error_code) for outcome in outcomes] == [("failed", "ThrottlingException")] * 3
    assert sleeps == []


def test_a_connection_failure_fails_every_entry_without_retry(sleeps: list[float]) -> None:
    # GIVEN a client whose calls never connect (botocore has already retried them)
    class Unreachable:
        calls = 0

        def put_events(self, **_: Any) -> dict[str, Any]:
            self.calls += 1
            raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com/")

    client = Unreachable()
    events = make_events(2)

    # WHEN
    outcomes = EventPublisher(client, BUS, sleep=sleeps.append).publish(events)  # type: ignore[arg-type]

    # THEN
    assert client.calls == 1
    assert [(outcome.status, outcome.error_code) for outcome in outcomes] == [("failed", "EndpointConnectionError")] * 2


def test_backoff_is_exponential_capped_and_injected(
    eventbridge: StubbedEventBridge, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN jitter pinned to its ceiling, and an entry that is throttled on all 4 attempts
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    [event] = make_events(1)
    for _ in range(4):
        eventbridge.answer("ThrottlingException")

    # WHEN
    publisher_on(eventbridge, sleeps, max_attempts=4, base_delay=0.05, max_delay=0.15).publish([event])

    # THEN one sleep before each retry: 0.05, 0.1, then capped at 0.15
    assert sleeps == pytest.approx([0.05, 0.1, 0.15])


def test_backoff_jitter_stays_within_its_ceiling(eventbridge: StubbedEventBridge, sleeps: list[float]) -> None:
    # GIVEN
    [event] = make_events(1)
    for _ in range(4):
        eventbridge.answer("InternalFailure")

    # WHEN
    publisher_on(eventbridge, sleeps, max_attempts=4, base_delay=0.05, max_delay=1.0).publish([event])

    # THEN
    assert len(sleeps) == 3
    assert all(0 <= slept <= ceiling for slept, ceiling in zip(sleeps, [0.05, 0.1, 0.2], strict=True))


# ---- concurrency ----


class ConcurrentEventBridge:
    """A thread-safe fake: answers each entry by its event id, records calls and the most calls in flight.

    ``barrier`` makes the first that many calls wait until they are all in flight at once: a publisher that
    sent its calls one after another would break it (``BrokenBarrierError``) instead of hanging.
    """

    def __init__(self, *, pool: int = 10, barrier: int = 1, codes: Mapping[str, list[str]] | None = None) -> None:
        self.meta = type("Meta", (), {"config": type("Config", (), {"max_pool_connections": pool})()})()
        self._barrier = threading.Barrier(barrier, timeout=10) if barrier > 1 else None
        self._codes = {event_id: list(answers) for event_id, answers in (codes or {}).items()}
        self._lock = threading.Lock()
        self._in_flight = 0
        self.most_in_flight = 0
        self.calls: list[list[str]] = []

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        ids = [json.loads(entry["Detail"])["id"] for entry in Entries]
        with self._lock:
            self.calls.append(ids)
            held = self._barrier is not None and len(self.calls) <= self._barrier.parties
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            if held and self._barrier is not None:
                self._barrier.wait()
            with self._lock:
                codes = [self._codes[event_id].pop(0) if self._codes.get(event_id) else None for event_id in ids]
        finally:
            with self._lock:
                self._in_flight -= 1
        entries = [{"EventId": "eb"} if code is None else {"ErrorCode": code, "ErrorMessage": code} for code in codes]
        return {"FailedEntryCount": sum(code is not None for code in codes), "Entries": entries}


def test_the_calls_of_one_request_are_in_flight_together(sleeps: list[float]) -> None:
    # GIVEN 25 events (calls of 10, 10 and 5), and a fake that holds each call until all three are in flight
    events = make_events(25)
    client = ConcurrentEventBridge(barrier=3)

    # WHEN
    publisher = EventPublisher(client, BUS, sleep=sleeps.append)  # type: ignore[arg-type]
    outcomes = publisher.publish(events)

    # THEN three calls overlapped, every event was sent once, and the outcomes keep the submission order
    assert client.most_in_flight == 3
    assert sorted(len(call) for call in client.calls) == [5, 10, 10]
    assert sorted(event_id for call in client.calls for event_id in call) == sorted(ids(events, *range(25)))
    assert outcomes == accepted(events)
    assert publisher.calls == 3


def test_calls_in_flight_never_exceed_the_connection_pool(sleeps: list[float]) -> None:
    # GIVEN 50 events (5 calls) and a client whose connection pool holds 2
    events = make_events(50)
    client = ConcurrentEventBridge(pool=2, barrier=2)

    # WHEN
    outcomes = EventPublisher(client, BUS, sleep=sleeps.append).publish(events)  # type: ignore[arg-type]

    # THEN two at a time, never more; with the default pool of 10 they would all be in flight (see above)
    assert len(client.calls) == 5
    assert client.most_in_flight == 2
    assert outcomes == accepted(events)


def test_the_pool_is_sized_to_the_botocore_client() -> None:
    # GIVEN
    client = boto3.client("events", region_name="us-east-1", config=Config(max_pool_connections=4))

    # THEN
    assert pool_connections(client) == 4
    assert pool_connections(boto3.client("events", region_name="us-east-1")) == 10


def test_partial_failures_in_concurrent_calls_are_retried_per_entry_in_order(sleeps: list[float]) -> None:
    # GIVEN 30 events in 3 concurrent calls: entry 4 throttled once, entry 15 refused, entry 27 failing twice
    events = make_events(30)
    client = ConcurrentEventBridge(
        barrier=3,
        codes={
            events[4].id: ["ThrottlingException"],
            events[15].id: ["ValidationException"],
            events[27].id: ["InternalFailure", "ThrottlingException"],
        },
    )

    # WHEN
    publisher = EventPublisher(client, BUS, sleep=sleeps.append)  # type: ignore[arg-type]
    outcomes = publisher.publish(events)

    # THEN the retryable entries are resent alone (regrouped across calls), the refused one is not
    assert client.calls[3:] == [ids(events, 4, 27), ids(events, 27)]
    assert [outcome.status for outcome in outcomes] == ["failed" if index == 15 else "accepted" for index in range(30)]
    assert outcomes[15] == PublishOutcome(events[15].id, "failed", "ValidationException", "ValidationException")
    assert [outcome.event_id for outcome in outcomes] == ids(events, *range(30))
    assert publisher.calls == 5
    assert len(sleeps) == 2


# ---- the chunker, for any sizes ----

_BASE = {"Source": "correlator.external", "DetailType": "t", "Time": NOW}
_OVERHEAD = entry_size(_BASE)  # type: ignore[arg-type]


_SMALL = st.integers(min_value=0, max_value=2_000)
_BIG = st.integers(min_value=MAX_ENTRY_BYTES // 8, max_value=MAX_ENTRY_BYTES - _OVERHEAD)


@given(st.lists(_SMALL | _BIG, max_size=40))
def test_chunks_keep_order_and_never_exceed_10_entries_or_256_kb(detail_sizes: list[int]) -> None:
    # GIVEN entries of arbitrary sizes, each within the entry limit
    entries: list[Any] = [{**_BASE, "Detail": "x" * size} for size in detail_sizes]
    sizes = [entry_size(entry) for entry in entries]

    # WHEN
    chunks = chunk_sizes(sizes)

    # THEN every entry once, in order, in calls within both limits
    assert [index for chunk in chunks for index in chunk] == list(range(len(entries)))
    assert all(1 <= len(chunk) <= MAX_ENTRIES_PER_CALL for chunk in chunks)
    assert all(sum(sizes[index] for index in chunk) <= MAX_REQUEST_BYTES for chunk in chunks)
    # and greedily: a call was closed only because the next entry did not fit
    for chunk, following in itertools.pairwise(chunks):
        full = len(chunk) == MAX_ENTRIES_PER_CALL
        assert full or sum(sizes[index] for index in chunk) + sizes[following[0]] > MAX_REQUEST_BYTES
