"""Queue -> handler delivery: SQS event source mappings and the queues that stand in for Lambda targets.

moto cannot invoke a Lambda target of a rule. Every function of the template gets a queue of
its own, ``<stack>-local-<LogicalId>``, and ``local.moto_compat.route_lambda_targets`` sends
there, at delivery time, what any rule (from the template or created at run time through the
API) sends to that function, after the InputTransformer; the rule keeps its Lambda target, as on
AWS. A poller invokes the function with each message body, as Lambda's asynchronous invocation
would. A failed invocation leaves the message for redelivery after the function's timeout;
after ``ASYNC_MAX_RECEIVES`` receives it moves to the function's ``DeadLetterQueue`` (when the
template declares an SQS one) or to ``<stack>-local-<LogicalId>-dlq``.

When every worker of the function is busy (its concurrency is reached), asynchronous and SQS
invocations are not throttled away: as Lambda's async queue and SQS pollers retry throttled
invocations, they wait for a free worker, and their messages' visibility is extended meanwhile
(``Poller.keep_in_flight``), so a wait is neither a redelivery nor a receive counted toward the
dead-letter queue.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from local import moto_compat
from local.functions import LocalFunction, SqsEvent
from local.lines import tone
from local.workers import InvocationError

log = logging.getLogger("local.delivery")

# An idle poller waits in one long poll (moto answers as soon as a message arrives); stopping does not wait for it.
RECEIVE_WAIT_SECONDS = 20
BATCH_WAIT_SECONDS = 1
# Inside a batching window, a receive that found the queue empty is followed by this pause: the window's
# messages are then taken a few dozen per call instead of one or two as each arrives (each call has a cost).
GATHER_PAUSE_SECONDS = 0.2
ASYNC_MAX_RECEIVES = 3  # Lambda retries a failed asynchronous invocation twice
MAX_QUEUE_NAME = 80
MIN_WAIT_VISIBILITY = 5  # seconds: well past the next call while a message waits for a worker (local.workers.WAIT_BEAT)


def queue_name_of(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def describe_event(event: Any) -> str:
    """A short label for a delivered event, for the console: ``source/detail-type``."""
    candidates = [event, *event.values()] if isinstance(event, dict) else []
    for candidate in candidates:
        if isinstance(candidate, dict) and "detail-type" in candidate:
            return f"{candidate.get('source')}/{candidate['detail-type']}"
    return type(event).__name__


def describe_delivery(event: Any, function: str) -> str:
    """``rule <name> → <action>`` (and the event's hops) for a rule delivery, else the event's label."""
    rule = event.get("rule") if isinstance(event, dict) else None
    if not isinstance(rule, dict):
        return f"{describe_event(event)} → {function}"
    inner = event.get("event")
    detail = inner.get("detail") if isinstance(inner, dict) else None
    hops = detail.get("hops") if isinstance(detail, dict) else None
    return f"rule {rule.get('name')} → {rule.get('action') or function}" + (
        f" · hops {hops}" if hops is not None else ""
    )


def describe_result(result: Any) -> str:
    """An action's results in a few words: ``sent``, ``200``, ``accepted`` (``ok`` when it says nothing)."""
    results = result.get("results") if isinstance(result, dict) else None
    if not isinstance(results, list) or not results:
        return "ok"
    words = [" ".join(str(item.get(key)) for key in ("status", "info") if item.get(key)) for item in results]
    return ", ".join(word for word in words if word)[:200] or "ok"


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda SQS event record of a received message."""
    attributes: dict[str, Any] = {}
    for name, attribute in (message.get("MessageAttributes") or {}).items():
        value: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": attribute["DataType"]}
        if "StringValue" in attribute:
            value["stringValue"] = attribute["StringValue"]
        if "BinaryValue" in attribute:  # bytes from boto3; already base64 text from moto's backend
            binary = attribute["BinaryValue"]
            value["binaryValue"] = binary if isinstance(binary, str) else base64.b64encode(binary).decode("ascii")
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

    def __init__(
        self, sqs: Any, queue_url: str, queue_arn: str, function: LocalFunction, stop: threading.Event, index: int = 0
    ):
        super().__init__(name=f"poll-{queue_name_of(queue_arn)}-{index}", daemon=True)
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.queue_name = queue_name_of(queue_arn)
        self.function = function
        self.stop = stop
        self.batch_limit = int(getattr(sqs, "batch_limit", 10))  # SQS's 10 per call, unless called in-process
        self._holding = False  # holding received messages: stopping waits for this poller

    @property
    def busy(self) -> bool:
        return self._holding

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll()
            except Exception:
                if self.stop.is_set():
                    return
                log.exception("polling %s failed; retrying in 1 s", self.queue_name)
                self.stop.wait(1)
            finally:
                self._holding = False

    def receive(self, count: int, wait: int = RECEIVE_WAIT_SECONDS) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(self.batch_limit, count)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        if messages:
            self._holding = True
            if self.stop.is_set():  # received while stopping: hand them back at once for the next start
                self.release(messages)
                return []
        return messages

    def release(self, messages: Iterable[Mapping[str, Any]]) -> None:
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, message in enumerate(messages)
        ]
        for start in range(0, len(entries), self.batch_limit):
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url, Entries=entries[start : start + self.batch_limit]
            )

    def keep_in_flight(self, messages: list[dict[str, Any]]) -> Callable[[], None]:
        """What to call while ``messages`` wait for a free worker: it keeps them invisible for another timeout."""

        def extend() -> None:
            seconds = max(self.visibility, MIN_WAIT_VISIBILITY)
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": seconds}
                for index, message in enumerate(messages)
            ]
            for start in range(0, len(entries), self.batch_limit):
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url, Entries=entries[start : start + self.batch_limit]
                )

        return extend

    @functools.cached_property
    def visibility(self) -> int:
        """The queue's visibility timeout (what a received message gets), read once."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"])
        return int(attributes["Attributes"].get("VisibilityTimeout", self.function.timeout))

    def delete(self, messages: Iterable[Mapping[str, Any]]) -> None:
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)
        ]
        for start in range(0, len(entries), self.batch_limit):
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url, Entries=entries[start : start + self.batch_limit]
            )
            for failure in response.get("Failed", []):
                log.warning("%s: could not delete a message: %s", self.queue_name, failure.get("Message"))

    def poll(self) -> None:
        raise NotImplementedError


class AsyncInvokePoller(Poller):
    """Invokes the function once per message, as an asynchronous (EventBridge) invocation."""

    def poll(self) -> None:
        messages = self.receive(1)
        for index, message in enumerate(messages):
            if self.stop.is_set():
                self.release(messages[index:])
                return
            self.deliver(message)

    def deliver(self, message: Mapping[str, Any]) -> None:
        body = message["Body"]
        try:
            event = json.loads(body)
        except ValueError:
            event = body
        label = describe_delivery(event, self.function.logical_id)
        attempt = str((message.get("Attributes") or {}).get("ApproximateReceiveCount", "?"))
        started = time.monotonic()
        try:
            result = self.function.invoke(event, synchronous=False, waiting=self.keep_in_flight([dict(message)]))
        except InvocationError as error:
            last = attempt.isdigit() and int(attempt) >= ASYNC_MAX_RECEIVES
            log.error(
                "%s: FAILED (%s; attempt %s of %d); %s",
                label,
                error,
                attempt,
                ASYNC_MAX_RECEIVES,
                "giving up: it goes to the dead-letter queue" if last else "retried after the function's timeout",
                extra=tone(500),
            )
            return
        self.delete([message])
        elapsed = (time.monotonic() - started) * 1000
        log.info("%s: %s %.0f ms", label, describe_result(result), elapsed, extra=tone(200))


class EventSourceMappingPoller(Poller):
    """An SQS event source mapping: one thread gathers batches, up to ``concurrency`` invocations run at once.

    Partial batch failures are honoured (ReportBatchItemFailures). A slot is taken before a batch is
    gathered, so no received message waits for a free invocation while its visibility timeout runs.
    """

    def __init__(self, sqs: Any, queue_url: str, mapping: SqsEvent, function: LocalFunction, stop: threading.Event):
        super().__init__(sqs, queue_url, mapping.queue_arn, function, stop)
        self.mapping = mapping
        self.concurrency = max(1, min(mapping.maximum_concurrency or function.concurrency, function.concurrency))
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._running = 0
        self._running_lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._holding or self._running > 0

    def poll(self) -> None:
        if not self._slots.acquire(timeout=1):
            return
        try:
            batch = self.gather()
        except BaseException:
            self._slots.release()
            raise
        if not batch:
            self._slots.release()
            return
        with self._running_lock:
            self._running += 1
        self._holding = False
        threading.Thread(target=self.run_batch, args=(batch,), name=f"{self.name}-invoke", daemon=True).start()

    def gather(self) -> list[dict[str, Any]]:
        size = max(1, self.mapping.batch_size)
        batch = self.receive(size)
        if not batch:
            return []
        deadline = time.monotonic() + self.mapping.batching_window
        drained = len(batch) < min(size, self.batch_limit)
        while len(batch) < size and time.monotonic() < deadline and not self.stop.is_set():
            if drained:
                self.stop.wait(min(GATHER_PAUSE_SECONDS, max(0.0, deadline - time.monotonic())))
            wanted = size - len(batch)
            received = self.receive(wanted, BATCH_WAIT_SECONDS)
            batch += received
            drained = len(received) < min(wanted, self.batch_limit)
        # A message whose visibility timeout ran out during the window comes again: keep its latest receipt.
        return list({message["MessageId"]: message for message in batch}.values())

    def run_batch(self, batch: list[dict[str, Any]]) -> None:
        try:
            self.invoke(batch)
        except Exception:
            log.exception("%s -> %s: delivery failed", self.queue_name, self.function.logical_id)
        finally:
            with self._running_lock:
                self._running -= 1
            self._slots.release()

    def invoke(self, batch: list[dict[str, Any]]) -> None:
        region = self.queue_arn.split(":")[3]
        event = {"Records": [sqs_record(message, self.queue_arn, region) for message in batch]}
        started = time.monotonic()
        try:
            response = self.function.invoke(event, synchronous=False, waiting=self.keep_in_flight(batch))
        except InvocationError as error:
            log.error(
                "%s → %s: %d records FAILED (%s); left on the queue for redelivery",
                self.queue_name,
                self.function.logical_id,
                len(batch),
                error,
            )
            return
        ids = [message["MessageId"] for message in batch]
        failed = failed_message_ids(response, ids, self.mapping.report_failures)
        self.delete(message for message in batch if message["MessageId"] not in failed)
        elapsed = (time.monotonic() - started) * 1000
        log.info(
            "%s → %s: %d records, %d failed %.0f ms",
            self.queue_name,
            self.function.logical_id,
            len(batch),
            len(failed),
            elapsed,
            extra=tone(500 if failed else 200),
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
            for index in range(max(1, function.concurrency)):
                self._add(AsyncInvokePoller(self.sqs, url, arn, function, self.stop_event, index))
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

    def stop(self, timeout: float = 30.0) -> None:
        """Stop receiving; let the deliveries under way finish (up to ``timeout``); received messages go back."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(poller.busy for poller in self.pollers):
            time.sleep(0.05)
        moto_compat.route_lambda_targets(None)
        stuck = sorted({poller.queue_name for poller in self.pollers if poller.busy})
        if stuck:
            log.warning("deliveries still running at shutdown (retried after restart): %s", ", ".join(stuck))
