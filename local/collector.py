"""The stack's process and CPython's cyclic garbage collector: full collections only when idle.

Everything moto keeps (queued messages, S3 objects, DynamoDB items, the archive) lives in this
process and survives, so the oldest generation grows with every event. CPython collects it whole
when it has grown by a quarter, holding the GIL throughout: under load on this machine that was a
100-300 ms stop of every request, PutEvents included, several times a minute (measured with
``gc.callbacks``), and the POST latency's p99.

Here the young generations are collected as usual (that is where the cycles are: a load run's full
collections found a few hundred cyclic objects, the young ones tens of thousands), and the full
collection runs when the stack is idle: when no moto request came for ``IDLE_SECONDS``, or at
the latest every ``MAX_SECONDS`` under unbroken load (then it stops requests, as CPython's own
does). What provisioning made before the first request is frozen (``gc.freeze``): it lives as long
as the stack and is never scanned again.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("local.collector")

IDLE_SECONDS = 5.0
MAX_SECONDS = 600.0
NEVER = 1 << 30  # a threshold no count reaches: no automatic full collection


class Collector:
    """Full collections when ``requests()`` (a count of requests served) stops moving."""

    def __init__(
        self,
        requests: Callable[[], int],
        idle_seconds: float = IDLE_SECONDS,
        max_seconds: float = MAX_SECONDS,
    ) -> None:
        self._requests = requests
        self._idle_seconds = idle_seconds
        self._max_seconds = max_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thresholds = gc.get_threshold()
        self.collections = 0

    def start(self) -> None:
        gc.freeze()
        young, middle, _ = self._thresholds
        gc.set_threshold(young, middle, NEVER)
        self._thread = threading.Thread(target=self._run, name="gc-when-idle", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen, last = self._requests(), time.monotonic()
        while not self._stop.wait(self._idle_seconds):
            count, now = self._requests(), time.monotonic()
            idle, seen = count == seen, count
            if gc.get_count()[2] and (idle or now - last >= self._max_seconds):
                self.collect()
                last = time.monotonic()

    def collect(self) -> int:
        """One full collection now; the number of objects it found unreachable."""
        started = time.perf_counter()
        found = gc.collect()
        self.collections += 1
        log.debug("full collection: %d unreachable, %.0f ms", found, (time.perf_counter() - started) * 1000)
        return found

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        gc.set_threshold(*self._thresholds)
        gc.unfreeze()
