"""PutEvents first: in the stack's one process, a client's call is served before queued work.

On AWS, PutEvents is answered by EventBridge's own fleet: how far behind the rule targets, the SQS
pollers or the functions' other AWS calls are does not change how fast an event is accepted. On
the local stack they all share this process and its GIL: a PutEvents call (a fraction of a
millisecond of work) competed, slice by slice, with the event deliverer's rule matching, the
pollers' receives of hundreds of messages and the log writer's S3 and DynamoDB calls, and under
load took tens of milliseconds, which every POST /events waited for.

``PRIORITY`` restores the separation. A PutEvents call runs in the *foreground*
(``local.fast_put_events``). Queued work *gives way* before each step: the deliverer before each
event (``local.async_events``), the pollers before each receive and delete (``local.direct_sqs``),
every other moto request before it starts (``local.fast_put_events``), and a DynamoDB request
before each item it reads or writes (``install``: the log writer's ledger writes 25 items a call).
Giving way waits while a PutEvents call is under way, at most ``GIVE_WAY_SECONDS``, so queued
work is delayed by milliseconds and never starved; a step already under way is not interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

GIVE_WAY_SECONDS = 0.05


class InFlight:
    """Calls under way, counted, and waiting until none is."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """One call under way for the duration of the block."""
        with self._condition:
            self._count += 1
        try:
            yield
        finally:
            with self._condition:
                self._count -= 1
                if not self._count:
                    self._condition.notify_all()

    def wait_until_none(self, timeout: float) -> bool:
        """Wait until no call is under way, at most ``timeout`` seconds; whether none is."""
        if not self._count:  # the common case, without taking the lock
            return True
        with self._condition:
            return self._condition.wait_for(lambda: not self._count, timeout)


class Priority:
    """Foreground calls, and background steps that wait for them."""

    def __init__(self) -> None:
        self._foreground = InFlight()

    @property
    def foreground_calls(self) -> int:
        return self._foreground.count

    def foreground(self) -> contextlib.AbstractContextManager[None]:
        """A call the background gives way to while it runs."""
        return self._foreground.call()

    def give_way(self, limit: float = GIVE_WAY_SECONDS) -> None:
        """Wait until no foreground call runs, or ``limit`` seconds (returns at once when none runs)."""
        self._foreground.wait_until_none(limit)


PRIORITY = Priority()
ITEM_STEPS = ("get_item", "put_item", "update_item", "delete_item")
_installed = False


def install() -> None:
    """Make each item of a moto DynamoDB call a step that gives way (idempotent)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    def giving_way(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def step(*args: Any, **kwargs: Any) -> Any:
            PRIORITY.give_way()
            return original(*args, **kwargs)

        return step

    for name in ITEM_STEPS:
        setattr(DynamoDBBackend, name, giving_way(getattr(DynamoDBBackend, name)))
    _installed = True
