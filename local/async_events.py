"""EventBridge's asynchronous delivery on the local stack: PutEvents answers once the events are accepted.

On AWS, PutEvents returns when EventBridge has accepted the entries; rules are matched and targets
invoked afterwards (delivery is asynchronous, retried for up to 24 h). moto matches every rule and
sends to every target before it answers, so a client's PutEvents (the reception function's, under
load) waited for the whole fan-out: rule matching, input transformers, SQS sends and the archive.

``AsyncEvents`` restores AWS's split. PutEvents (``local.moto_throughput``) validates each entry,
gives it its id and time, and appends it to a queue kept on moto's events backend; one deliverer
thread then matches the bus's rules and sends to their targets, in the order accepted. The queue
is part of moto's state (``local.state``): the deliverer works inside the state gate, so a save
holds every accepted event either still queued or already delivered, never half of it, and a
restart delivers what was queued. A clean stop delivers the queue first (up to its timeout).

Rules are read at delivery time (a rule created just after an event may see it: EventBridge's
rule changes are eventually consistent too). A delivery that fails (a target queue that no longer
exists) is logged and dropped, where EventBridge would retry and then drop it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from local import moto_throughput
from local.priority import PRIORITY
from local.state import GATE

log = logging.getLogger("local.events")

PENDING = "local_pending"  # the attribute of moto's events backend holding (bus name, event) pairs
BATCH = 100  # events delivered per pass through the state gate (a save waits at most one pass)


class AsyncEvents:
    """The deliverer: one thread, fed by PutEvents, draining the backends' queues."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._backends: dict[int, Any] = {}  # events backends with queued events, by id
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._quit = False

    # -- PutEvents' side --------------------------------------------------------------------
    def accept(self, backend: Any, bus: Any, message: dict[str, Any]) -> None:
        with self._condition:
            pending: deque[tuple[str, dict[str, Any]]] = backend.__dict__.setdefault(PENDING, deque())
            pending.append((bus.name, message))
            if not self._backends:
                self._condition.notify()  # the deliverer waits only when nothing is queued
            self._backends[id(backend)] = backend

    @property
    def pending(self) -> int:
        """Events accepted and not yet delivered."""
        with self._condition:
            return sum(len(backend.__dict__.get(PENDING) or ()) for backend in self._backends.values())

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Deliver from now on (what a restored state still had queued too); PutEvents no longer waits."""
        from moto.events.models import events_backends

        with self._condition:
            self._backends = {
                id(backend): backend
                for regions in events_backends.values()
                for backend in regions.values()
                if backend.__dict__.get(PENDING)
            }
        moto_throughput.deliver_with(self.accept)
        self._thread = threading.Thread(target=self._run, name="event-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Deliver what is queued (up to ``timeout``; the rest stays queued in the saved state), then stop."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._condition:
            self._quit = True  # after the batch under way
        left = self.pending
        if left:
            log.warning("%d accepted events not delivered yet: they are kept and delivered after a restart", left)

    # -- the deliverer ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._backends or self._stopping)
                if self._quit or not self._backends:
                    return  # stopping, and nothing left (or no time left)
            with GATE.request():  # a save sees each batch queued or delivered, never half of it
                for backend, bus_name, message in self._take(BATCH):
                    PRIORITY.give_way()  # delivering is queued work: PutEvents calls under way first
                    self._deliver(backend, bus_name, message)

    def _take(self, count: int) -> list[tuple[Any, str, dict[str, Any]]]:
        taken: list[tuple[Any, str, dict[str, Any]]] = []
        with self._condition:
            for key, backend in list(self._backends.items()):
                pending: deque[tuple[str, dict[str, Any]]] = backend.__dict__[PENDING]
                while pending and len(taken) < count:
                    taken.append((backend, *pending.popleft()))
                if not pending:
                    del self._backends[key]
        return taken

    @staticmethod
    def _deliver(backend: Any, bus_name: str, message: dict[str, Any]) -> None:
        bus = backend.event_buses.get(bus_name)
        if bus is None:
            return  # the bus was deleted meanwhile: nothing matches
        try:
            moto_throughput.deliver(bus, message)
        except Exception:
            log.exception("delivering event %s on %s failed; dropped", message.get("id"), bus_name)
