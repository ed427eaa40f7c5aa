"""Warm cost of the reception handler per event, against a minimal handler doing the same I/O.

Both handlers get the same API Gateway proxy events and the same instant EventBridge stub, so
the difference is Correlator's own work: Powertools routing and validation, stamping, envelopes,
chunking, logging and metrics.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from bench.stubs import InstantEventBridge

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

BATCH_SIZE = 100
BASELINE_CHUNK = 10
REPEATS = 5
SECONDS_PER_REPEAT = 0.4


@dataclass(frozen=True, slots=True)
class LambdaContextStub:
    """The attributes Powertools' ``inject_lambda_context`` reads from the Lambda context."""

    function_name: str = "correlator-reception"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:correlator-reception"
    aws_request_id: str = "bench-request"


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per event: the best and the median of the repeats, wall clock and process CPU time."""

    best: float
    median: float
    iterations: int
    repeats: int
    cpu_best: float = 0.0
    cpu_median: float = 0.0


def sample_events(count: int) -> list[dict[str, Any]]:
    """``count`` realistic client events: a few text fields, level aliases, a small payload."""
    levels = ("INFO", "warning", "ERROR", "notice")
    events: list[dict[str, Any]] = []
    for index in range(count):
        event: dict[str, Any] = {
            "type": f"order.{('created', 'paid', 'shipped', 'cancelled')[index % 4]}",
            "level": levels[index % len(levels)],
            "object": f"orders/{10_000 + index}",
            "info": "ok",
            "system_id": "orders-service",
            "schema": "https://orders.example/",
            "payload": {"order_id": 10_000 + index, "amount": 12.5 + index, "currency": "EUR", "items": index % 7},
        }
        if index % 3 == 0:
            event["time"] = "2026-11-22T14:52:39.778Z"
        events.append(event)
    return events


def proxy_event(body: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway REST proxy event for ``POST /events`` carrying ``body``."""
    headers = {
        "Content-Type": "application/json",
        "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "bench/1.0",
        "X-Request-Key": "Req_bench",
        "x-api-key": "bench-key",
    }
    return {
        "resource": "/events",
        "path": "/events",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/events",
            "httpMethod": "POST",
            "path": "/dev/events",
            "stage": "dev",
            "requestId": "bench-request",
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "identity": {"apiKeyId": "k7ab2cd9ef", "sourceIp": "203.0.113.24", "userArn": None, "caller": None},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def baseline_handler(client: InstantEventBridge, bus_name: str) -> Handler:
    """The least a handler can do: parse the body, PutEvents in chunks of 10 minimal entries."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        body = json.loads(event["body"])
        items = body.get("events", [body])
        for start in range(0, len(items), BASELINE_CHUNK):
            client.put_events(
                Entries=[
                    {
                        "Source": "correlator.external",
                        "DetailType": item["type"],
                        "Detail": json.dumps(item),
                        "EventBusName": bus_name,
                    }
                    for item in items[start : start + BASELINE_CHUNK]
                ]
            )
        return {"statusCode": 200, "body": "{}"}

    return handler


def install_stub(reception: ModuleType, client: InstantEventBridge) -> None:
    """Point the reception module's publisher at ``client`` (nothing reaches AWS)."""
    reception.publisher._client = client


@contextlib.contextmanager
def stdout_discarded() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: the handlers' log and EMF lines are written, not shown."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def check_accepted(handler: Handler, event: dict[str, Any], expected: int) -> None:
    """Refuse to time an error path: the handler must answer 200 with ``expected`` results."""
    with stdout_discarded():
        response = handler(event, LambdaContextStub())
    if response["statusCode"] != 200:
        raise RuntimeError(f"handler answered {response['statusCode']}: {response['body'][:500]}")
    results = json.loads(response["body"]).get("results")
    if results is not None and len(results) != expected:
        raise RuntimeError(f"handler returned {len(results)} results for {expected} events")


def _iterations(handler: Handler, event: dict[str, Any], context: Any) -> int:
    """Calls per repeat for about ``SECONDS_PER_REPEAT`` of CPU (CPU, not wall: a busy machine would shrink it)."""
    for _ in range(3):
        handler(event, context)
    start = time.process_time()
    for _ in range(5):
        handler(event, context)
    return max(20, int(SECONDS_PER_REPEAT * 5 / max(time.process_time() - start, 1e-6)))


def compare_per_event(handlers: dict[str, Handler], event: dict[str, Any], events_per_call: int) -> dict[str, Timing]:
    """Seconds per event of each handler on ``event``, warm; their repeats interleaved (a noisy neighbour
    hits them alike). CPU time counts every thread of the process, so it is the robust figure on a shared machine.
    """
    context = LambdaContextStub()
    wall: dict[str, list[float]] = {name: [] for name in handlers}
    cpu: dict[str, list[float]] = {name: [] for name in handlers}
    with stdout_discarded():
        iterations = {name: _iterations(handler, event, context) for name, handler in handlers.items()}
        for _ in range(REPEATS):
            for name, handler in handlers.items():
                gc.collect()
                count = iterations[name] * events_per_call
                start, cpu_start = time.perf_counter(), time.process_time()
                for _ in range(iterations[name]):
                    handler(event, context)
                wall[name].append((time.perf_counter() - start) / count)
                cpu[name].append((time.process_time() - cpu_start) / count)
    return {
        name: Timing(
            best=min(wall[name]),
            median=statistics.median(wall[name]),
            iterations=iterations[name],
            repeats=REPEATS,
            cpu_best=min(cpu[name]),
            cpu_median=statistics.median(cpu[name]),
        )
        for name in handlers
    }


def put_events_calls(handler: Handler, event: dict[str, Any], client: InstantEventBridge) -> tuple[int, int]:
    """PutEvents calls and entries that one invocation of ``handler`` makes."""
    client.reset()
    with stdout_discarded():
        handler(event, LambdaContextStub())
    return client.calls, client.entries
