"""Fault injection for the exactly-once suite: crash or fail a handler at its n-th AWS call, then redeliver.

A *crash* (``Crash``, a ``BaseException`` nothing in the code catches) stands for the function
dying: before a call (it never happened) or after it (it happened, its answer was lost). An
*error* is what AWS would answer instead (S3 ``InternalError`` 500, ``SlowDown`` 503, a lost
``PreconditionFailed`` 412, DynamoDB throttling), after botocore's own retries gave up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


class Crash(BaseException):
    """The function died here."""


ERRORS: dict[str, tuple[str, int]] = {
    "s3-500": ("InternalError", 500),
    "s3-slowdown": ("SlowDown", 503),
    "s3-412": ("PreconditionFailed", 412),
    "dynamodb-throttled": ("ProvisionedThroughputExceededException", 400),
}
CRASHES = ("crash-before", "crash-after")


@dataclass
class Fault:
    """Fail the ``at``-th call (1-based) of the watched clients with ``mode`` (a crash or an ``ERRORS`` key)."""

    at: int
    mode: str
    calls: list[str] = field(default_factory=list)
    fired: bool = False

    def _due(self, operation: str, service: str) -> bool:
        if self.fired or len(self.calls) != self.at:
            return False
        if self.mode in ERRORS:
            return self.mode.startswith(service)
        return True

    def before(self, model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        self.calls.append(f"{service}.{model.name}")
        if not self._due(model.name, service) or self.mode == "crash-after":
            return
        self.fired = True
        if self.mode == "crash-before":
            raise Crash(f"before {self.calls[-1]}")
        code, status = ERRORS[self.mode]
        response: Any = {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        raise ClientError(response, model.name)

    def after(self, model: Any, **_: Any) -> None:
        if self.mode == "crash-after" and not self.fired and len(self.calls) == self.at:
            self.fired = True
            raise Crash(f"after {self.calls[-1]}")


@contextlib.contextmanager
def injected(fault: Fault | None, clients: Sequence[Any]) -> Iterator[Fault | None]:
    """Watch every call of ``clients`` (botocore's before-call/after-call events) for ``fault``."""
    if fault is None:
        yield None
        return
    for client in clients:
        client.meta.events.register("before-call.*.*", fault.before, unique_id=f"fault-before-{id(fault)}")
        client.meta.events.register("after-call.*.*", fault.after, unique_id=f"fault-after-{id(fault)}")
    try:
        yield fault
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.*.*", unique_id=f"fault-before-{id(fault)}")
            client.meta.events.unregister("after-call.*.*", unique_id=f"fault-after-{id(fault)}")


@dataclass
class Tally:
    """The figures of a fault-injection run."""

    name: str
    cases: int = 0
    lost: int = 0
    duplicated: int = 0
    failures: list[str] = field(default_factory=list)

    def count(self, case: str, occurrences: dict[str, int]) -> None:
        """Record one case: how many times each expected item ended up written."""
        self.cases += 1
        lost = [item for item, seen in occurrences.items() if seen == 0]
        duplicated = [item for item, seen in occurrences.items() if seen > 1]
        self.lost += len(lost)
        self.duplicated += len(duplicated)
        if lost or duplicated:
            self.failures.append(f"{case}: lost {lost[:3]}, duplicated {duplicated[:3]}")

    def __str__(self) -> str:
        return f"{self.name}: {self.cases} cases, {self.lost} lost, {self.duplicated} duplicated"


def deliver_until_done(
    handler: Callable[[dict[str, Any]], Any], batch: dict[str, Any], fault: Fault | None, clients: Sequence[Any]
) -> None:
    """Deliver ``batch`` with ``fault``, then redeliver what SQS would (everything after a crash or an error
    raised out of the handler, the reported failures otherwise) until it is acknowledged."""
    pending = batch["Records"]
    for attempt in range(1, 6):
        records = [_received(record, attempt) for record in pending]
        try:
            with injected(fault if attempt == 1 else None, clients):
                response = handler({"Records": records})
        except (Crash, Exception):  # the function failed: SQS redelivers the whole batch
            continue
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        pending = [record for record in pending if record["messageId"] in failed]
        if not pending:
            break


def redeliver_all(handler: Callable[[dict[str, Any]], Any], batch: dict[str, Any]) -> None:
    """Deliver the whole batch once more: the function died after its work, before the acknowledgement."""
    handler({"Records": [_received(record, 9) for record in batch["Records"]]})


def _received(record: dict[str, Any], count: int) -> dict[str, Any]:
    return {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": str(count)}}
