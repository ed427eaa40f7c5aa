"""Publish events to EventBridge: chunked PutEvents calls, sent concurrently; retry of retryable entries only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from correlator.envelope import (
    MAX_ENTRIES_PER_CALL,
    MAX_ENTRY_BYTES,
    MAX_REQUEST_BYTES,
    Envelope,
    wrap,
)
from correlator.retry import backoff

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from correlator.event import Event

# Per-entry ErrorCodes worth retrying; anything else (e.g. ValidationException,
# AccessDeniedException) would fail the same way again.
RETRYABLE_ERROR_CODES = frozenset({"ThrottlingException", "InternalFailure", "InternalException"})
ENTRY_TOO_LARGE = "EntryTooLarge"
# botocore's default ``max_pool_connections``: more calls in flight than connections would only queue.
DEFAULT_POOL_CONNECTIONS = 10


# Not frozen: one per event, and a frozen dataclass's __init__ (object.__setattr__ per field) costs ~3x.
@dataclass(slots=True)
class PublishOutcome:
    """What became of one event: ``accepted`` (on the bus) or ``failed`` with the last error."""

    event_id: str
    status: Literal["accepted", "failed"]
    error_code: str | None = None
    error_message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


def chunk_sizes(sizes: Sequence[int]) -> list[list[int]]:
    """Group indexes of entries of these sizes into calls of at most 10 entries and 256 KB each."""
    chunks: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, size in enumerate(sizes):
        if current and (len(current) == MAX_ENTRIES_PER_CALL or current_bytes + size > MAX_REQUEST_BYTES):
            chunks.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += size
    if current:
        chunks.append(current)
    return chunks


def pool_connections(client: Any) -> int:
    """The size of ``client``'s HTTP connection pool (botocore ``Config.max_pool_connections``)."""
    size = getattr(getattr(getattr(client, "meta", None), "config", None), "max_pool_connections", None)
    return size if isinstance(size, int) and size > 0 else DEFAULT_POOL_CONNECTIONS


class EventPublisher:
    """Publishes events to one bus and reports a ``PublishOutcome`` per event, in order.

    The PutEvents calls of one attempt go out concurrently on the same (thread-safe) client, at
    most ``max_concurrency`` at a time (default: the client's connection pool), so a 100-event
    request costs one round trip rather than ten. botocore retries whole calls (throttling, 5xx)
    through its ``Config``; this class retries the *entries* that PutEvents reports as failed with
    a retryable code, with full-jitter exponential backoff, up to ``max_attempts`` calls per entry.
    """

    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        sleep: Callable[[float], Any] = time.sleep,
        max_concurrency: int | None = None,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._max_concurrency = max_concurrency or pool_connections(client)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self.calls = 0

    @property
    def bus_name(self) -> str:
        return self._bus_name

    def publish(self, events: Sequence[Event]) -> list[PublishOutcome]:
        """Publish ``events``; return one outcome per event, in the same order."""
        return self.publish_envelopes([wrap(event, self._bus_name) for event in events])

    def publish_envelopes(self, envelopes: Sequence[Envelope]) -> list[PublishOutcome]:
        """Publish events already wrapped for this bus (see ``correlator.envelope.wrap``)."""
        ids = [envelope.event_id for envelope in envelopes]
        entries = [envelope.entry for envelope in envelopes]
        outcomes: dict[int, PublishOutcome] = {}
        pending: list[int] = []
        for index, envelope in enumerate(envelopes):
            if envelope.size > MAX_ENTRY_BYTES:
                outcomes[index] = PublishOutcome(ids[index], "failed", ENTRY_TOO_LARGE, "entry exceeds 256 KB")
            else:
                pending.append(index)

        for attempt in range(1, self._max_attempts + 1):
            if not pending:
                break
            if attempt > 1:
                self._sleep(self._backoff(attempt))
            retry: list[int] = []
            chunks = [[pending[i] for i in chunk] for chunk in chunk_sizes([envelopes[i].size for i in pending])]
            for results in self._put_all(ids, entries, chunks):
                for index, outcome, retryable in results:
                    if retryable and attempt < self._max_attempts:
                        retry.append(index)
                    else:
                        outcomes[index] = outcome
            pending = retry
        return [outcomes[index] for index in range(len(envelopes))]

    def _put_all(
        self,
        ids: Sequence[str],
        entries: Sequence[PutEventsRequestEntryTypeDef],
        chunks: list[list[int]],
    ) -> list[list[tuple[int, PublishOutcome, bool]]]:
        """The results of one PutEvents call per chunk, in chunk order; the calls run concurrently.

        The calling thread sends the first chunk itself while the pool sends the others, so at most
        ``max_concurrency`` calls are in flight and one thread hand-off is saved.
        """
        self.calls += len(chunks)
        if len(chunks) == 1 or self._max_concurrency == 1:
            return [self._put(ids, entries, indexes) for indexes in chunks]
        pool = self._pool()
        others = [pool.submit(self._put, ids, entries, indexes) for indexes in chunks[1:]]
        first = self._put(ids, entries, chunks[0])
        return [first, *(future.result() for future in others)]

    def _pool(self) -> ThreadPoolExecutor:
        # Created on first use and kept: threads outlive the request (Lambda freezes them with the sandbox).
        with self._executor_lock:
            if self._executor is None:
                workers = self._max_concurrency - 1  # the calling thread sends a chunk too
                self._executor = ThreadPoolExecutor(workers, thread_name_prefix="put-events")
            return self._executor

    def _put(
        self,
        ids: Sequence[str],
        entries: Sequence[PutEventsRequestEntryTypeDef],
        indexes: list[int],
    ) -> list[tuple[int, PublishOutcome, bool]]:
        try:
            response = self._client.put_events(Entries=[entries[i] for i in indexes])
        except ClientError as error:
            # Whole-call failures (throttling, 5xx) already went through botocore's retries.
            call_code = error.response.get("Error", {}).get("Code") or "ClientError"
            message = error.response.get("Error", {}).get("Message") or str(error)
            return [(i, PublishOutcome(ids[i], "failed", call_code, message), False) for i in indexes]
        except BotoCoreError as error:
            # Connection-level failures already went through botocore's retries.
            name = type(error).__name__
            return [(i, PublishOutcome(ids[i], "failed", name, str(error)), False) for i in indexes]

        results: list[tuple[int, PublishOutcome, bool]] = []
        for index, result in zip(indexes, response["Entries"], strict=True):
            entry_code = result.get("ErrorCode")
            if entry_code is None:
                results.append((index, PublishOutcome(ids[index], "accepted"), False))
            else:
                outcome = PublishOutcome(ids[index], "failed", entry_code, result.get("ErrorMessage"))
                results.append((index, outcome, entry_code in RETRYABLE_ERROR_CODES))
        return results

    def _backoff(self, attempt: int) -> float:
        return backoff(attempt - 1, self._base_delay, self._max_delay)
