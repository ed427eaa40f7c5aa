"""Queue -> handler plumbing and the function runner, with fake AWS clients (no moto, no threads started)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from local import moto_compat
from local.delivery import Delivery, describe_event, failed_message_ids, sqs_record
from local.functions import LocalFunction
from local.template import Template, load_yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:correlator-Fn"
TEMPLATE = """
Globals:
  Function:
    Timeout: 4
    Environment: {Variables: {FROM_GLOBALS: g, SINK_QUEUE_URL: !Ref Sink}}
Resources:
  Sink: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: handler.handle
      MemorySize: 512
      Environment: {Variables: {OWN: !Sub "${AWS::StackName}-own", NUMBER: 7}}
"""


class FakeSqs:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create_queue(self, QueueName: str, Attributes: dict[str, str] | None = None) -> dict[str, str]:
        self.created.append({"QueueName": QueueName, "Attributes": Attributes or {}})
        return {"QueueUrl": f"http://sqs/{QueueName}"}

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:123456789012:" + QueueUrl.rsplit("/", 1)[1]}}

    def receive_message(self, **_: Any) -> dict[str, Any]:
        threading.Event().wait(0.01)  # an empty long poll
        return {"Messages": []}


class FakeEvents:
    """No calls are expected: routing happens at delivery time, not by rewriting rule targets."""


@pytest.fixture
def function() -> LocalFunction:
    template = Template(load_yaml(TEMPLATE), root=FIXTURES, environ={})
    template.attributes["Sink"] = {"Ref": "http://sqs/sink"}
    local = LocalFunction(template, "Fn")
    template.attributes["Fn"] = local.attributes
    local.prepare()
    return local


def test_a_function_gets_its_name_arn_and_resolved_environment(function: LocalFunction) -> None:
    # GIVEN a function with Globals and its own environment
    # WHEN it is prepared
    # THEN its local name and ARN follow <stack>-<LogicalId>, and the environment is resolved text
    assert (function.name, function.arn, function.timeout, function.memory) == ("correlator-Fn", ARN, 4, 512)
    assert function.variables["FROM_GLOBALS"] == "g"
    assert function.variables["SINK_QUEUE_URL"] == "http://sqs/sink"
    assert function.variables["OWN"] == "correlator-own"
    assert function.variables["NUMBER"] == "7"
    assert function.variables["AWS_LAMBDA_FUNCTION_NAME"] == "correlator-Fn"
    assert function.describe() == "echo/handler.handle"


def test_each_function_gets_a_queue_and_its_arns_route_there(function: LocalFunction) -> None:
    # GIVEN the delivery of a stack with one function
    sqs = FakeSqs()
    delivery = Delivery(sqs, FakeEvents(), {"Fn": function}, "correlator")

    # WHEN it starts (queues are made up front: routing happens inside moto's PutEvents)
    delivery.start()
    try:
        # THEN the function's ARN, plain or qualified, routes to its queue; other ARNs do not
        queue_arn = "arn:aws:sqs:us-east-1:123456789012:correlator-local-Fn"
        assert delivery.route(ARN) == queue_arn
        assert delivery.route(ARN + ":live") == queue_arn
        assert delivery.route("arn:aws:lambda:us-east-1:123456789012:function:someone-else") is None
        assert [queue["QueueName"] for queue in sqs.created] == ["correlator-local-Fn-dlq", "correlator-local-Fn"]
        assert sqs.created[1]["Attributes"]["VisibilityTimeout"] == "4"
        assert '"maxReceiveCount": 3' in sqs.created[1]["Attributes"]["RedrivePolicy"]
        # AND the queue has one poller per concurrent execution of the function
        assert {poller.queue_name for poller in delivery.pollers} == {"correlator-local-Fn"}
        assert len(delivery.pollers) == function.concurrency
        assert moto_compat._lambda_router == delivery.route
    finally:
        delivery.stop()

    # AND stopping unregisters the route
    assert moto_compat._lambda_router is None


def test_an_sqs_record_has_the_lambda_shape() -> None:
    # GIVEN a received message with string and binary attributes
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "MessageAttributes": {
            "s": {"DataType": "String", "StringValue": "v"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    }

    # WHEN it becomes a record
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")

    # THEN it is what Lambda's SQS event source puts in Records
    assert record == {
        "messageId": "m1",
        "receiptHandle": "r1",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {
            "s": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "b": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


@pytest.mark.parametrize(
    ("response", "report", "failed"),
    [
        (None, True, set()),
        ({"batchItemFailures": []}, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, True, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, False, set()),
        ({"batchItemFailures": [{"itemIdentifier": "zz"}]}, True, {"a", "b", "c"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, True, {"a", "b", "c"}),
        ({"batchItemFailures": "b"}, True, {"a", "b", "c"}),
    ],
)
def test_batch_item_failures_are_read_like_lambda(response: Any, report: bool, failed: set[str]) -> None:
    # GIVEN a batch of three and the handler's response
    # WHEN the failures are read
    # THEN only listed ids stay (all of them when the list is malformed; none without ReportBatchItemFailures)
    assert failed_message_ids(response, ["a", "b", "c"], report) == failed


@pytest.mark.parametrize(
    ("event", "label"),
    [
        ({"source": "s", "detail-type": "t"}, "s/t"),
        ({"rule": {}, "event": {"source": "s", "detail-type": "t"}}, "s/t"),
        ("text", "str"),
    ],
)
def test_deliveries_are_labelled_by_source_and_detail_type(event: Any, label: str) -> None:
    assert describe_event(event) == label


class RecordingSqs(FakeSqs):
    """Records what the pollers do with received messages."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"VisibilityTimeout": "30"}}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(("extend", Entries))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(("delete", Entries))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


class BusyFunction:
    """A function whose workers are all busy for ``beats`` WAIT_BEATs before the invocation runs."""

    logical_id = "Busy"
    timeout = 3
    concurrency = 1

    def __init__(self, beats: int) -> None:
        self.beats = beats
        self.calls: list[dict[str, Any]] = []

    def invoke(self, event: Any, *, synchronous: bool = True, waiting: Any = None) -> Any:
        self.calls.append({"synchronous": synchronous})
        for _ in range(self.beats):
            waiting()
        return {"batchItemFailures": []}


MESSAGE = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}", "Attributes": {"ApproximateReceiveCount": "1"}}


def test_an_async_delivery_waiting_for_a_worker_keeps_its_message_in_flight_then_deletes_it() -> None:
    # GIVEN an asynchronous (rule target) poller of a function whose workers are busy for two beats
    from local.delivery import AsyncInvokePoller

    sqs, function = RecordingSqs(), BusyFunction(beats=2)
    poller = AsyncInvokePoller(sqs, "http://sqs/q", "arn:aws:sqs:us-east-1:1:q", function, threading.Event())  # type: ignore[arg-type]

    # WHEN a message is delivered
    poller.deliver(dict(MESSAGE))

    # THEN the invocation is asynchronous (waits, never throttled away), the message stays invisible while it
    # waits (not redelivered, no receive counted) and is deleted once the invocation succeeded
    assert function.calls == [{"synchronous": False}]
    extend = [{"Id": "0", "ReceiptHandle": "r1", "VisibilityTimeout": 30}]
    assert sqs.calls == [("extend", extend), ("extend", extend), ("delete", [{"Id": "0", "ReceiptHandle": "r1"}])]


def test_an_sqs_batch_waiting_for_a_worker_stays_in_flight() -> None:
    from local.delivery import EventSourceMappingPoller
    from local.functions import SqsEvent

    sqs, function = RecordingSqs(), BusyFunction(beats=1)
    mapping = SqsEvent("Work", "arn:aws:sqs:us-east-1:1:q", 10, 0, True, True)
    poller = EventSourceMappingPoller(sqs, "http://sqs/q", mapping, function, threading.Event())  # type: ignore[arg-type]
    batch = [dict(MESSAGE), {**MESSAGE, "MessageId": "m2", "ReceiptHandle": "r2"}]

    poller.invoke(batch)

    assert function.calls == [{"synchronous": False}]
    assert [kind for kind, _ in sqs.calls] == ["extend", "delete"]
    assert [entry["ReceiptHandle"] for entry in sqs.calls[0][1]] == ["r1", "r2"]


class TricklingSqs(FakeSqs):
    """A queue that one message reaches every ``every`` seconds; records how many each receive returns."""

    def __init__(self, every: float) -> None:
        super().__init__()
        self.every = every
        self.started = time.monotonic()
        self.taken = 0
        self.received: list[int] = []
        self.batch_limit = 25

    def receive_message(self, MaxNumberOfMessages: int = 1, **_: Any) -> dict[str, Any]:
        arrived = int((time.monotonic() - self.started) / self.every) + 1
        count = min(MaxNumberOfMessages, arrived - self.taken)
        if not count:  # a long poll: answered as soon as the next message arrives
            time.sleep(max(0.0, self.started + arrived * self.every - time.monotonic()))
            count = 1
        messages = [{**MESSAGE, "MessageId": f"m{self.taken + n}"} for n in range(count)]
        self.taken += count
        self.received.append(count)
        return {"Messages": messages}


def test_a_batching_window_gathers_a_trickle_in_few_receives() -> None:
    # GIVEN a mapping with a 1 s batching window on a queue that a message reaches every 10 ms
    from local.delivery import EventSourceMappingPoller
    from local.functions import SqsEvent

    sqs = TricklingSqs(every=0.01)
    mapping = SqsEvent("Work", "arn:aws:sqs:us-east-1:1:q", 1000, 1, True, True)
    poller = EventSourceMappingPoller(sqs, "http://sqs/q", mapping, BusyFunction(beats=0), threading.Event())  # type: ignore[arg-type]

    # WHEN it gathers a batch
    started = time.monotonic()
    batch = poller.gather()

    # THEN the batch holds every message of the window, once, and closed with the window
    assert 80 <= len(batch) == len({message["MessageId"] for message in batch}) == sum(sqs.received)
    assert 0.9 <= time.monotonic() - started < 3.0  # (a window, not a race: loose above for busy machines)
    # AND the messages were taken a few dozen per receive, not one or two as each arrived
    assert len(sqs.received) <= 12
    assert max(sqs.received) > 10


SLOW_HANDLER = """
import time


def handle(event, context):
    time.sleep(event.get("sleep", 0))
    return {"slept": event.get("sleep", 0)}
"""


def started_function(tmp_path: Path, source: str, properties: str = "") -> LocalFunction:
    """A started one-function template whose handler is ``source`` (``properties``: more YAML lines, indented)."""
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "handler.py").write_text(source)
    template = Template(
        load_yaml(
            "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
            f"      CodeUri: fn\n      Handler: handler.handle\n      Timeout: 10\n{properties}"
        ),
        root=tmp_path,
        environ={},
    )
    local = LocalFunction(template, "Fn", default_concurrency=1)
    local.prepare()
    local.start(None)
    return local


def slow_function(tmp_path: Path, reserved: int | None) -> LocalFunction:
    concurrency = f"      ReservedConcurrentExecutions: {reserved}\n" if reserved is not None else ""
    return started_function(tmp_path, SLOW_HANDLER, concurrency)


@pytest.mark.slow
def test_past_reserved_concurrency_a_synchronous_invocation_is_throttled_an_asynchronous_one_waits(
    tmp_path: Path,
) -> None:
    from local.workers import Throttled

    # GIVEN a function with reserved concurrency 1, busy with a slow invocation
    function = slow_function(tmp_path, reserved=1)
    try:
        busy = threading.Thread(target=function.invoke, args=({"sleep": 2.5},))
        busy.start()
        while function.pool is not None and function.pool.busy == 0:
            threading.Event().wait(0.01)

        # WHEN a synchronous invocation comes, then an asynchronous one
        with pytest.raises(Throttled) as throttled:
            function.invoke({"sleep": 0})
        beats: list[int] = []
        result = function.invoke({"sleep": 0}, synchronous=False, waiting=lambda: beats.append(1))
        busy.join()

        # THEN the synchronous one is refused as Lambda refuses it; the asynchronous one waited, then ran
        assert (throttled.value.error_type, throttled.value.message) == ("TooManyRequestsException", "Rate Exceeded.")
        assert result == {"slept": 0}
        assert beats
        # AND once the worker is free, a synchronous invocation runs again
        assert function.invoke({"sleep": 0}) == {"slept": 0}
    finally:
        function.stop()


@pytest.mark.slow
def test_without_reserved_concurrency_a_synchronous_invocation_waits_for_the_local_bound(tmp_path: Path) -> None:
    # GIVEN a function without reserved concurrency, bounded locally to 1 worker, busy
    function = slow_function(tmp_path, reserved=None)
    try:
        busy = threading.Thread(target=function.invoke, args=({"sleep": 1.5},))
        busy.start()
        while function.pool is not None and function.pool.busy == 0:
            threading.Event().wait(0.01)

        # WHEN / THEN a synchronous invocation is not throttled (AWS would give it an environment of its own)
        assert function.invoke({"sleep": 0}) == {"slept": 0}
        busy.join()
    finally:
        function.stop()


PRIORITY_HANDLER = """
import os


def handle(event, context):
    return {"nice": os.getpriority(os.PRIO_PROCESS, 0)}
"""


@pytest.mark.parametrize(
    ("events", "raised"),
    [
        ("", 10),  # only queues, rules or timers invoke it: queued work
        ("      Events:\n        Get: {Type: Api, Properties: {Path: /p, Method: get}}\n", 0),  # a client waits
    ],
)
def test_the_workers_of_functions_behind_no_api_run_at_a_lower_cpu_priority(
    tmp_path: Path, events: str, raised: int
) -> None:
    # GIVEN a function with or without an API route
    from local.workers import QUEUED_WORK_NICE

    local = started_function(tmp_path, PRIORITY_HANDLER, events)
    try:
        # WHEN it is invoked
        result = local.invoke({})
    finally:
        local.stop()

    # THEN its worker runs at the stack's priority plus QUEUED_WORK_NICE only when no API route reaches it
    assert QUEUED_WORK_NICE == 10
    assert result["nice"] == min(19, os.getpriority(os.PRIO_PROCESS, 0) + raised)  # 19: the lowest priority
