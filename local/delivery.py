"""Queue -> handler delivery: SQS event source mappings and the queues that stand in for Lambda targets.

moto cannot invoke a Lambda target of a rule. Every function of the template gets a queue of
its own, ``<stack>-local-<LogicalId>``, and ``local.moto_compat.route_lambda_targets`` sends
there, at delivery time, what any rule (from the template or created at run time through the
API) sends to that function, after the InputTransformer; the rule keeps its Lambda target, as on
AWS. A poller invokes the function with each message body, as Lambda's asynchronous invocation
would. A failed invocation leaves the message for redelivery after the function's timeout;
after ``ASYNC_MAX_RECEIVES`` receives it moves to the function's ``DeadLetterQueue`` (when the
template declares an SQS one) or to ``<stack>-local-<LogicalId>-dlq``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from local import moto_compat
from local.functions import LocalFunction, SqsEvent

log = logging.getLogger("local.delivery")

RECEIVE_WAIT_SECONDS = 1
ASYNC_MAX_RECEIVES = 3  # Lambda retries a failed asynchronous invocation twice
MAX_QUEUE_NAME = 80


def queue_name_of(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def describe_event(event: Any) -> str:
    """A short label for a delivered event, for the console: ``source/detail-type``."""
    candidates = [event, *event.values()] if isinstance(event, dict) else []
    for candidate in candidates:
        if isinstance(candidate, dict) and "detail-type" in candidate:
            return f"{candidate.get('source')}/{candidate['detail-type']}"
    return type(event).__name__


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda SQS event record of a received message."""
    attributes: dict[str, Any] = {}
    for name, attribute in (message.get("MessageAttributes") or {}).items():
        value: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": attribute["DataType"]}
        if "StringValue" in attribute:
            value["stringValue"] = attribute["StringValue"]
        if "BinaryValue" in attribute:
            value["binaryValue"] = base64.b64encode(attribute["BinaryValue"]).decode("ascii")
        attributes[name] = value
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(response: Any, message_ids: list[str], report_failures: bool) -> set[str]:
    """The messages to keep after a successful invocation, as Lambda reads ``batchItemFailures``.

    Without ReportBatchItemFailures every message is done. With it, a malformed failure list
    (an id that is empty or not in the batch) fails the whole batch.
    """
    if not report_failures or not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return set(message_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)
        failed.add(identifier)
    return failed


class Poller(threading.Thread):
    """A thread that long-polls one queue until ``stop`` is set."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, function: LocalFunction, stop: threading.Event):
        super().__init__(name=f"poll-{queue_name_of(queue_arn)}", daemon=True)
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.queue_name = queue_name_of(queue_arn)
        self.function = function
        self.stop = stop

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("polling %s failed; retrying in 1 s", self.queue_name)
                self.stop.wait(1)

    def receive(self, count: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def delete(self, messages: Iterable[Mapping[str, Any]]) -> None:
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)
        ]
        for start in range(0, len(entries), 10):
            response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries[start : start + 10])
            for failure in response.get("Failed", []):
                log.warning("%s: could not delete a message: %s", self.queue_name, failure.get("Message"))

    def poll(self) -> None:
        raise NotImplementedError


class AsyncInvokePoller(Poller):
    """Invokes the function once per message, as an asynchronous (EventBridge) invocation."""

    def poll(self) -> None:
        for message in self.receive(10):
            if self.stop.is_set():
                return  # left on the queue: visible again after its timeout
            self.deliver(message)

    def deliver(self, message: Mapping[str, Any]) -> None:
        body = message["Body"]
        try:
            event = json.loads(body)
        except ValueError:
            event = body
        label = describe_event(event)
        attempt = str((message.get("Attributes") or {}).get("ApproximateReceiveCount", "?"))
        started = time.monotonic()
        try:
            self.function.invoke(event)
        except Exception:
            last = attempt.isdigit() and int(attempt) >= ASYNC_MAX_RECEIVES
            log.exception(
                "%s -> %s: %s FAILED (attempt %s of %d); %s",
                self.queue_name,
                self.function.logical_id,
                label,
                attempt,
                ASYNC_MAX_RECEIVES,
                "giving up: it goes to the dead-letter queue" if last else "retried after the function's timeout",
            )
            return
        self.delete([message])
        elapsed = (time.monotonic() - started) * 1000
        log.info("%s -> %s: %s ok (%.0f ms)", self.queue_name, self.function.logical_id, label, elapsed)


class EventSourceMappingPoller(Poller):
    """An SQS event source mapping: batches of records, partial batch failures honoured."""

    def __init__(self, sqs: Any, queue_url: str, mapping: SqsEvent, function: LocalFunction, stop: threading.Event):
        super().__init__(sqs, queue_url, mapping.queue_arn, function, stop)
        self.mapping = mapping

    def poll(self) -> None:
        size = max(1, self.mapping.batch_size)
        batch = self.receive(size)
        if not batch:
            return
        deadline = time.monotonic() + self.mapping.batching_window
        while len(batch) < size and time.monotonic() < deadline and not self.stop.is_set():
            batch += self.receive(size - len(batch))
        # A message whose visibility timeout ran out during the window comes again: keep its latest receipt.
        batch = list({message["MessageId"]: message for message in batch}.values())
        region = self.queue_arn.split(":")[3]
        event = {"Records": [sqs_record(message, self.queue_arn, region) for message in batch]}
        started = time.monotonic()
        try:
            response = self.function.invoke(event)
        except Exception:
            log.exception(
                "%s -> %s: %d records FAILED; left on the queue for redelivery",
                self.queue_name,
                self.function.logical_id,
                len(batch),
            )
            return
        ids = [message["MessageId"] for message in batch]
        failed = failed_message_ids(response, ids, self.mapping.report_failures)
        self.delete(message for message in batch if message["MessageId"] not in failed)
        elapsed = (time.monotonic() - started) * 1000
        log.info(
            "%s -> %s: %d records, %d failed (%.0f ms)",
            self.queue_name,
            self.function.logical_id,
            len(batch),
            len(failed),
            elapsed,
        )


class Delivery:
    """Owns the pollers and the function queues; routes what rules send to a function to its queue."""

    def __init__(self, sqs: Any, events: Any, functions: Mapping[str, LocalFunction], stack_name: str) -> None:
        self.sqs = sqs
        self.events = events
        self.functions = functions
        self.stack_name = stack_name
        self.buses: list[str] = []
        self.pollers: list[Poller] = []
        self.stop_event = threading.Event()
        self._function_queues: dict[str, str] = {}  # function logical id -> queue ARN
        self._lock = threading.RLock()
        self._started = False

    # -- function queues ------------------------------------------------------------------
    def function_for(self, arn: str) -> LocalFunction | None:
        """The template function an ARN names (also with a version or alias qualifier)."""
        for function in self.functions.values():
            if arn == function.arn or arn.startswith(function.arn + ":"):
                return function
        return None

    def queue_for(self, function: LocalFunction) -> str:
        """The ARN of the queue standing in for ``function`` as a rule target (created on first use)."""
        with self._lock:
            if function.logical_id in self._function_queues:
                return self._function_queues[function.logical_id]
            base = f"{self.stack_name}-local-{function.logical_id}"[: MAX_QUEUE_NAME - 4]
            dead_letter_arn = self._dead_letter_arn(function, f"{base}-dlq")
            url = self.sqs.create_queue(
                QueueName=base,
                Attributes={
                    "VisibilityTimeout": str(max(1, function.timeout)),
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": ASYNC_MAX_RECEIVES}
                    ),
                },
            )["QueueUrl"]
            arn = self._arn_of(url)
            self._function_queues[function.logical_id] = arn
            self._add(AsyncInvokePoller(self.sqs, url, arn, function, self.stop_event))
            return arn

    def _dead_letter_arn(self, function: LocalFunction, default_name: str) -> str:
        declared = function.template.resolved_property(function.logical_id, "DeadLetterQueue") or {}
        if declared.get("Type") == "SQS" and declared.get("TargetArn"):
            return str(declared["TargetArn"])
        return self._arn_of(self.sqs.create_queue(QueueName=default_name)["QueueUrl"])

    def _arn_of(self, queue_url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def route(self, arn: str) -> str | None:
        """The queue standing in for the template function ``arn`` names, if it names one."""
        function = self.function_for(arn)
        return None if function is None else self._function_queues.get(function.logical_id)

    # -- event source mappings ---------------------------------------------------------------
    def add_event_source(self, function: LocalFunction, mapping: SqsEvent) -> None:
        queue_url = self.sqs.get_queue_url(QueueName=queue_name_of(mapping.queue_arn))["QueueUrl"]
        self._add(EventSourceMappingPoller(self.sqs, queue_url, mapping, function, self.stop_event))

    # -- lifecycle ----------------------------------------------------------------------------
    def _add(self, poller: Poller) -> None:
        with self._lock:
            self.pollers.append(poller)
            if self._started:
                poller.start()

    def start(self) -> None:
        # Every function gets its queue now, so routing at delivery time is a lookup (it runs
        # inside moto's PutEvents) and rules created at run time work from their first event.
        for function in self.functions.values():
            self.queue_for(function)
        moto_compat.route_lambda_targets(self.route)
        with self._lock:
            self._started = True
            for poller in self.pollers:
                poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        moto_compat.route_lambda_targets(None)
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        threads = list(self.pollers)
        for thread in threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in threads if thread.is_alive()]
        if stuck:
            log.warning("still busy at shutdown: %s", ", ".join(stuck))
