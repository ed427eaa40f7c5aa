"""The delivery-policy pipeline on moto, through the real functions: the relay function (its runner's policy
step) posting to a local server, the policy flush queue, and the flusher handing digests back to the relay.

Shared by tests/integration/test_policy_pipeline.py and the storm benchmark (bench/storm.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator.policy_state import Clock
from tests.conftest import fresh_import
from tests.integration.relay_fixtures import TABLE, create_backing_resources
from tests.probe import BUS_NAME, REGION, BusProbe
from tests.relay_doubles import RecordingServer
from tests.samples import load_event

POLICY_TABLE = "correlator-test-policy"
RELAY_ARN = "arn:aws:lambda:us-east-1:123456789012:function:correlator-relay"


class InvocationContext(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return 30_000


@dataclass
class FrozenClock(Clock):
    """The policy state's clock, moved by the test (throttle windows are aligned to the epoch)."""

    at: float = 1_795_359_120.0  # 2026-11-22T14:52:00Z, the start of a minute

    def __post_init__(self) -> None:
        self.now = lambda: self.at


@dataclass
class Pipeline:
    relay: ModuleType
    flusher: ModuleType
    server: RecordingServer
    bus_probe: BusProbe
    queue_url: str
    clock: FrozenClock
    invocations: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, rule: dict[str, Any], number: int, **detail: Any) -> dict[str, Any]:
        """Invoke the relay function with event ``number`` for ``rule`` (as EventBridge would)."""
        delivery = load_event("eventbridge/relay-delivery")
        delivery["rule"] = rule
        delivery["event"]["detail"].update(id=f"storm-{number:06d}", **detail)
        result: dict[str, Any] = self.relay.lambda_handler(delivery, context())
        return result

    def flush_due(self) -> int:
        """Run the flusher on every flush message that is visible now; how many messages it handled."""
        sqs = boto3.client("sqs", region_name=REGION)
        handled = 0
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return handled
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:flush",
                    "awsRegion": REGION,
                }
                for m in messages
            ]
            response = self.flusher.lambda_handler({"Records": records}, context())
            assert response["batchItemFailures"] == [], response
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            handled += len(messages)

    def internal_events(self) -> list[dict[str, Any]]:
        return [detail for detail in self.bus_probe.drain_details() if not detail["external"]]


def context() -> LambdaContext:
    invocation = InvocationContext()
    invocation._function_name = "correlator-relay"
    invocation._function_version = "$LATEST"
    invocation._memory_limit_in_mb = 256
    invocation._invoked_function_arn = RELAY_ARN
    invocation._aws_request_id = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    invocation._log_group_name = "/aws/lambda/correlator-relay"
    invocation._log_stream_name = "2026/11/22/[$LATEST]0123456789abcdef"
    return invocation


class FakeLambda:
    """The flusher's Lambda client: an asynchronous Invoke of the relay function runs its handler."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        assert (FunctionName, InvocationType) == (RELAY_ARN, "Event")
        delivery = json.loads(Payload)
        with self.pipeline.lock:
            self.pipeline.invocations.append(delivery)
        self.pipeline.relay.lambda_handler(delivery, context())
        return {"StatusCode": 202}


def create_policy_table(name: str = POLICY_TABLE) -> None:
    """The policy state table as template.yaml's PolicyTable (string hash key ``id``), on moto."""
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


@contextmanager
def pipeline(bus_probe: BusProbe, server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """The relay and policy functions imported inside moto with the template's environment."""
    create_backing_resources()
    create_policy_table()
    queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="policy-flush")["QueueUrl"]
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "relay",
        "RELAY_ALLOWED_HOSTS": f"127.0.0.1:{server.port}",
        "RELAY_SECRET_PREFIX": "correlator/relay/",
        "IDEMPOTENCY_TABLE_NAME": TABLE,
        "POLICY_TABLE_NAME": POLICY_TABLE,
        "POLICY_FLUSH_QUEUE_URL": queue_url,
        "ACTION_TARGETS": json.dumps({"relay": RELAY_ARN}),
        "EVENT_BUS_ARN": f"arn:aws:events:{REGION}:123456789012:event-bus/{BUS_NAME}",
    }.items():
        monkeypatch.setenv(name, value)
    relay = fresh_import("functions.relay.app")
    flusher = fresh_import("functions.policy.app")
    clock = FrozenClock()
    relay.runner.steps[0].state.clock = clock
    flusher.flusher.state.clock = clock
    built = Pipeline(relay, flusher, server, bus_probe, queue_url, clock)
    monkeypatch.setattr(flusher, "lambda_client", FakeLambda(built))
    yield built


def storm_rule(url: str) -> dict[str, Any]:
    """Throttle 5 per minute; the excess is digested, one group, flushed at once when due."""
    return {
        "name": "storm",
        "match": {"type": "storm."},
        "action": "relay",
        "config": {"url": url},
        "policy": {
            "throttle": {"limit": 5, "window": "1m", "excess": "digest"},
            "group": {"group_wait": 0, "group_interval": 0, "repeat_interval": 0, "limit": 20},
        },
    }


@dataclass
class StormFigures:
    events: int
    seconds: float
    posts: int
    digests: int
    digested: int
    outcomes: Counter[str]
    types: Counter[str]


def run_storm(pipe: Pipeline, events: int, threads: int = 8) -> StormFigures:
    """``events`` matching events through the relay with the storm rule, from ``threads`` racing invocations."""
    rule = storm_rule(pipe.server.url("/hooks/storm"))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda n: pipe.deliver(rule, n, type="storm.error"), range(events)))
    pipe.flush_due()
    seconds = time.monotonic() - started
    outcomes = Counter(result["results"][0]["status"] for result in results)
    internal = pipe.internal_events()
    types = Counter(detail["type"] for detail in internal)
    flushed = [detail for detail in internal if detail["type"] == "policy.flushed"]
    return StormFigures(
        events=events,
        seconds=seconds,
        posts=len(pipe.server.requests),
        digests=len(flushed),
        digested=sum(int(detail["info"]) for detail in flushed),
        outcomes=outcomes,
        types=types,
    )
