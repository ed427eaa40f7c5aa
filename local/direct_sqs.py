"""The pollers' SQS: moto's backend called in this process rather than over HTTP.

Lambda's event source mappings and asynchronous invocation queue are AWS-internal services, so the
local stack's stand-ins for them need not speak the public API to moto, which runs in this same
process. Receiving and deleting through boto3 → HTTP → moto's server cost milliseconds of this
process's CPU per call and capped a call at 10 messages; called directly, a call takes up to
``BATCH_LIMIT`` (a batch of 1,000 records is 40 calls). The semantics stay SQS's (visibility
timeouts, receive counts, redrive to the dead-letter queue): the same moto backend (with
local.moto_throughput) does the work. Every call gives way to PutEvents calls under way
(``local.priority``: the pollers' work is queued work) and passes the state gate (``local.state``),
like a request to moto's server. Anything else (creating queues, reading attributes) goes to the
boto3 client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from local.priority import PRIORITY
from local.state import GATE

# No HTTP request to bound a call, but each call is one step that a PutEvents call may wait for
# (local.priority): 25 messages keep that wait to a few milliseconds.
BATCH_LIMIT = 25


class DirectSqs:
    """``receive_message``, ``delete_message_batch`` and ``change_message_visibility_batch`` of boto3's SQS
    client, answered by moto's backend in this process; every other method is the client's."""

    batch_limit = BATCH_LIMIT

    def __init__(self, client: Any, account_id: str, region: str) -> None:
        self.client = client
        self.account_id = account_id
        self.region = region

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def _backend(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account_id][self.region]

    @staticmethod
    @contextlib.contextmanager
    def _call() -> Iterator[None]:
        PRIORITY.give_way()
        with GATE.request():
            yield

    def receive_message(
        self, QueueUrl: str, MaxNumberOfMessages: int = 1, WaitTimeSeconds: int = 0, **_: Any
    ) -> dict[str, Any]:
        name = QueueUrl.rsplit("/", 1)[-1]
        with self._call():
            backend = self._backend
            queue = backend.get_queue(name)
            messages = backend.receive_message(
                name, MaxNumberOfMessages, WaitTimeSeconds, queue.visibility_timeout, ["All"]
            )
        return {"Messages": [_shape(message) for message in messages]} if messages else {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self._call():
            done, failed = self._backend.delete_message_batch(QueueUrl.rsplit("/", 1)[-1], Entries)
        return {"Successful": [{"Id": identifier} for identifier in done], "Failed": failed}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self._call():
            done, failed = self._backend.change_message_visibility_batch(QueueUrl.rsplit("/", 1)[-1], Entries)
        return {"Successful": [{"Id": identifier} for identifier in done], "Failed": failed}


def _shape(message: Any) -> dict[str, Any]:
    """A received moto message as boto3's ReceiveMessage answers it (every system attribute)."""
    shaped: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.body_md5,
        "Body": message.body,
        "Attributes": {
            "SenderId": message.sender_id,
            "SentTimestamp": str(message.sent_timestamp),
            "ApproximateReceiveCount": str(message.approximate_receive_count),
            "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
        },
    }
    if message.message_attributes:
        shaped["MessageAttributes"] = message.message_attributes
        shaped["MD5OfMessageAttributes"] = message.attribute_md5
    return shaped
