"""A latency model: every PutEvents and S3 call takes ``delay`` seconds (default 15 ms), as over a network.

Reception: a 100-event request against the same handler with an instant EventBridge, interleaved,
so the ideal is one round trip plus the handler's own work. Log writer: the real handler on a
1,000-record SQS batch against moto's server, each S3 request delayed, so its duration shows how
many round trips the writer waits for one after another.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from unittest import mock

from bench import append_cost, handler_cost
from bench.environment import REPO, apply_lambda_env, load_module
from bench.stubs import InstantEventBridge
from correlator import aws

DEFAULT_DELAY = 0.015
RUNS = 15
WRITER_RUNS = 5
WRITER_BATCH = 1_000
LOG_WRITER_APP = REPO / "functions" / "log_writer" / "app.py"
LOG_DELIVERY_SAMPLE = REPO / "events" / "sqs" / "log-delivery.json"


class SlowEventBridge(InstantEventBridge):
    """Accepts every entry like ``InstantEventBridge``, after ``delay`` seconds per call (thread-safe)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self._lock = threading.Lock()

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        time.sleep(self.delay)
        with self._lock:
            return super().put_events(**kwargs)


@dataclass(frozen=True, slots=True)
class ReceptionLatency:
    """Medians over interleaved runs, in seconds; ``cpu`` is the process CPU time of one slow request."""

    delay: float
    instant: float  # the handler with an instant EventBridge: its own work
    concurrent: float  # with the delay, calls in flight together (the shipped publisher)
    sequential: float  # with the delay, one call at a time (the publisher before this change)
    cpu: float
    calls: int

    @property
    def ideal(self) -> float:
        """One PutEvents round trip plus the handler's own work: the physical limit."""
        return self.delay + self.instant

    @property
    def ratio(self) -> float:
        return self.concurrent / self.ideal


def _time_once(reception: ModuleType, event: dict[str, Any]) -> tuple[float, float]:
    context = handler_cost.LambdaContextStub()
    started, cpu_started = time.perf_counter(), time.process_time()
    reception.lambda_handler(event, context)
    return time.perf_counter() - started, time.process_time() - cpu_started


def reception_latency(reception: ModuleType, delay: float = DEFAULT_DELAY, runs: int = RUNS) -> ReceptionLatency:
    """A 100-event request with instant and with delayed PutEvents calls, interleaved run by run."""
    publisher = reception.publisher
    event = handler_cost.proxy_event({"events": handler_cost.sample_events(handler_cost.BATCH_SIZE)})
    instant, slow = InstantEventBridge(), SlowEventBridge(delay)
    samples: dict[str, list[float]] = {"instant": [], "concurrent": [], "sequential": [], "cpu": []}
    concurrency = publisher._max_concurrency
    try:
        with handler_cost.stdout_discarded():
            for _ in range(3):  # warm: the pool's threads, the handler's caches
                handler_cost.install_stub(reception, slow)
                _time_once(reception, event)
            for _ in range(runs):
                handler_cost.install_stub(reception, instant)
                samples["instant"].append(_time_once(reception, event)[0])
                handler_cost.install_stub(reception, slow)
                slow.reset()
                wall, cpu = _time_once(reception, event)
                samples["concurrent"].append(wall)
                samples["cpu"].append(cpu)
                calls = slow.calls
                publisher._max_concurrency = 1
                samples["sequential"].append(_time_once(reception, event)[0])
                publisher._max_concurrency = concurrency
    finally:
        publisher._max_concurrency = concurrency
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return ReceptionLatency(
        delay,
        medians["instant"],
        medians["concurrent"],
        medians["sequential"],
        medians["cpu"],
        calls,
    )


@dataclass(frozen=True, slots=True)
class WriterLatency:
    """The log writer on one batch: medians in seconds, and S3 requests per batch."""

    delay: float
    lines: int
    instant: float
    delayed: float
    cpu: float
    requests: int
    operations: list[str]

    @property
    def round_trips(self) -> int:
        """Round trips the writer waits for: its S3 requests go one after another."""
        return self.requests

    @property
    def waited(self) -> float:
        """Seconds the delayed run took longer than the instant one (noisy on a shared machine)."""
        return self.delayed - self.instant


class S3Delay:
    """Delays every S3 request of the clients a botocore session creates by ``delay`` seconds; names them."""

    def __init__(self, session: Any) -> None:
        self.delay = 0.0
        self.operations: list[str] = []
        self.session = session
        session.register("before-send.s3.*", self._before_send)

    def close(self) -> None:
        """Stop delaying and naming: the session outlives this measurement."""
        self.session.unregister("before-send.s3.*", self._before_send)

    def _before_send(self, event_name: str, **_: Any) -> None:
        self.operations.append(event_name.rsplit(".", 1)[-1])
        if self.delay:
            time.sleep(self.delay)


def sqs_log_batch(count: int) -> dict[str, Any]:
    """An SQS batch of ``count`` log deliveries (the sample's first record, each with its own event id)."""
    record = json.loads(LOG_DELIVERY_SAMPLE.read_text())["Records"][0]
    message = json.loads(record["body"])
    records = []
    for index in range(count):
        message["event"]["detail"]["id"] = f"bench{index:010d}"
        message["event"]["detail"]["object"] = f"orders/{index}"
        records.append({**record, "messageId": f"bench-{index}", "body": json.dumps(message)})
    return {"Records": records}


STAGING_BUCKET = "bench-log-staging"
STAGING_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:bench-log-staging"
STAGED_KEY = "staged/2026/12/02/00/bench-log-1-2026-12-02-00-00-00-0000"


def staged_object(count: int) -> bytes:
    """A staged object of ``count`` log records, one per line (what Firehose writes with the newline delimiter)."""
    return "".join(record["body"] + "\n" for record in sqs_log_batch(count)["Records"]).encode()


def staged_notification() -> dict[str, Any]:
    """The staging queue's SQS batch carrying S3's notification of ``STAGED_KEY``."""
    body = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": STAGING_BUCKET}, "object": {"key": STAGED_KEY}},
            }
        ]
    }
    record = {"messageId": "bench-staged", "body": json.dumps(body), "eventSourceARN": STAGING_QUEUE_ARN}
    return {"Records": [record]}


def writer_latency(delay: float = DEFAULT_DELAY, runs: int = WRITER_RUNS, *, staged: bool = False) -> WriterLatency:
    """The log writer's handler on a 1,000-record batch, S3 instant and delayed, interleaved.

    ``staged``: the Firehose path - one staged object of 1,000 records, named by one S3 notification
    (staged again before each run, outside the timing: the writer deletes it).
    """
    apply_lambda_env()
    with append_cost.moto_server() as endpoint:
        s3 = append_cost.s3_client(endpoint)
        s3.create_bucket(Bucket=append_cost.BUCKET)
        s3.create_bucket(Bucket=STAGING_BUCKET)
        variables = {"AWS_ENDPOINT_URL": endpoint, "LOG_BUCKET_NAME": append_cost.BUCKET}
        if staged:
            variables["LOG_STAGING_QUEUE_ARN"] = STAGING_QUEUE_ARN
        # The writer's clients come from the stack's botocore session: hooks registered on it first reach them.
        probe = S3Delay(aws.session())
        with mock.patch.dict(os.environ, {**variables, "POWERTOOLS_SERVICE_NAME": "log-writer"}):
            writer = load_module(LOG_WRITER_APP, "bench_log_writer_app")
        batch = staged_notification() if staged else sqs_log_batch(WRITER_BATCH)
        body = staged_object(WRITER_BATCH)
        context = handler_cost.LambdaContextStub(function_name="correlator-log-writer")
        samples: dict[str, list[float]] = {"instant": [], "delayed": [], "cpu": []}
        operations: list[str] = []

        def run() -> tuple[float, float]:
            if staged:
                s3.put_object(Bucket=STAGING_BUCKET, Key=STAGED_KEY, Body=body)  # the bench's own client: not delayed
            started, cpu_started = time.perf_counter(), time.process_time()
            response = writer.lambda_handler(batch, context)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            if response["batchItemFailures"]:
                raise RuntimeError(f"log writer failed records: {response['batchItemFailures'][:3]}")
            return wall, cpu

        with handler_cost.stdout_discarded():
            run()  # warm
            for _ in range(runs):
                for delayed in (False, True):
                    probe.delay, probe.operations = (delay if delayed else 0.0), []
                    wall, cpu = run()
                    samples["delayed" if delayed else "instant"].append(wall)
                    if delayed:
                        samples["cpu"].append(cpu)
                        operations = list(probe.operations)
        probe.close()
        if staged and s3.list_objects_v2(Bucket=STAGING_BUCKET).get("KeyCount"):
            raise RuntimeError("the staged object was not deleted")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return WriterLatency(
        delay, WRITER_BATCH, medians["instant"], medians["delayed"], medians["cpu"], len(operations), operations
    )
