"""Exactly-once appends under redelivery: a batch is never appended twice, whatever step a writer died at.

S3 has one atomic unit, the object write, so the proof that an append landed travels *in* it:

1. before appending, every message of the batch is recorded as part of a new *intent*
   (``<namespace>#msg#<message id>`` → intent, object key; DynamoDB, expiring like every record);
2. the append writes the intent id into the object's metadata (``append-intent``), with the bytes;
3. after it, the intent is *sealed* (``<namespace>#intent#<intent>``). Whoever replaces the
   object's ``append-intent`` (the next append, from any writer) seals the one it replaces first.

So an intent is committed iff it is sealed or is the object's current ``append-intent``; a
redelivered message (SQS ``ApproximateReceiveCount`` > 1: ``correlator.action.QueueRunner``)
whose intent is committed is acknowledged without appending. Reading the object's metadata
*before* the seals makes the check exact: an intent leaves the metadata only after its seal
exists. A writer that died before step 2 left an intent that is neither: its messages are
appended again, under a new intent.

What remains (documented in docs/operations.md): a message redelivered after its records expired
(7 days, beyond SQS's 4-day retention and a DLQ redrive window), and an object deleted by an
operator between a crash and the redelivery.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from correlator import aws
from correlator.appender import ObjectState, S3Appender
from correlator.retry import IDEMPOTENCY_EXPIRY_SECONDS, backoff

INTENT_META = "append-intent"
TABLE_ENV = "IDEMPOTENCY_TABLE_NAME"
_BATCH_GET = 100  # DynamoDB BatchGetItem's limit
_BATCH_WRITE = 25  # and BatchWriteItem's


@dataclass(frozen=True, slots=True)
class Intent:
    """One append: its id and the object it goes to."""

    id: str
    key: str


class AppendLedger:
    """Records which messages each append carried, in the stack's idempotency table."""

    def __init__(
        self,
        table_name: str,
        *,
        namespace: str,
        client: Any | None = None,
        expires_after_seconds: int = IDEMPOTENCY_EXPIRY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self.namespace = namespace
        self.dynamodb = client or aws.client("dynamodb")
        self.expires_after_seconds = expires_after_seconds
        self._clock = clock

    # -- the check on redelivery ------------------------------------------------------------
    def committed(self, appender: S3Appender, message_ids: Iterable[str]) -> set[str]:
        """The messages among ``message_ids`` that an earlier append already wrote."""
        records = self._get({self._message_id(message_id): message_id for message_id in message_ids})
        intents = {message_id: Intent(item["intent"]["S"], item["object"]["S"]) for message_id, item in records.items()}
        if not intents:
            return set()
        current = {}
        for key in {intent.key for intent in intents.values()}:
            state = appender.head(key)  # first the metadata, then the seals: see the module docstring
            current[key] = state.metadata.get(INTENT_META) if state else None
        sealed = set(self._get({self._intent_id(intent.id): intent.id for intent in intents.values()}))
        return {
            message_id
            for message_id, intent in intents.items()
            if intent.id in sealed or current[intent.key] == intent.id
        }

    # -- appending ---------------------------------------------------------------------------
    def append(
        self,
        appender: S3Appender,
        key: str,
        data: bytes | Callable[[ObjectState | None], bytes],
        message_ids: Sequence[str],
        *,
        content_type: str,
        header: bytes = b"",
        new_metadata: Mapping[str, str] | None = None,
    ) -> ObjectState:
        """``appender.append`` of ``data`` to ``key`` as one intent carrying ``message_ids``."""
        intent = Intent(uuid.uuid4().hex, key)
        self._record(intent, message_ids)

        def chunk(state: ObjectState | None) -> bytes:
            # The intent this append takes out of the metadata is sealed before it can go.
            if state is not None and (previous := state.metadata.get(INTENT_META)):
                self.seal(previous)
            return data(state) if callable(data) else data

        state = appender.append(
            key,
            chunk,
            content_type=content_type,
            header=header,
            new_metadata=new_metadata,
            metadata={INTENT_META: intent.id},
        )
        self.seal(intent.id)
        return state

    def seal(self, intent_id: str) -> None:
        """Mark ``intent_id`` as appended (idempotent)."""
        self.dynamodb.put_item(TableName=self.table_name, Item=self._item(self._intent_id(intent_id)))

    # -- records -----------------------------------------------------------------------------
    def _record(self, intent: Intent, message_ids: Sequence[str]) -> None:
        items = [
            {
                "PutRequest": {
                    "Item": {
                        **self._item(self._message_id(message_id)),
                        "intent": {"S": intent.id},
                        "object": {"S": intent.key},
                    }
                }
            }
            for message_id in dict.fromkeys(message_ids)
        ]
        for start in range(0, len(items), _BATCH_WRITE):
            pending: dict[str, Any] = {self.table_name: items[start : start + _BATCH_WRITE]}
            for attempt in range(10):
                # Unprocessed items are the caller's to resend (botocore retries whole calls only): correlator.retry.
                pending = self.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(backoff(attempt + 1, 0.05, 1.0))
            else:
                raise RuntimeError(f"{self.table_name}: could not record the messages of intent {intent.id}")

    def _get(self, ids: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """The items of ``ids`` (table id → caller's name), by the caller's name; missing ones are left out."""
        found: dict[str, dict[str, Any]] = {}
        keys = list(ids)
        for start in range(0, len(keys), _BATCH_GET):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"id": {"S": key}} for key in keys[start : start + _BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(10):
                response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    if int(item.get("expiration", {}).get("N", "0")) > self._clock():
                        found[ids[item["id"]["S"]]] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(backoff(attempt + 1, 0.05, 1.0))
            else:
                raise RuntimeError(f"{self.table_name}: could not read the append records")
        return found

    def _item(self, item_id: str) -> dict[str, Any]:
        return {"id": {"S": item_id}, "expiration": {"N": str(int(self._clock()) + self.expires_after_seconds)}}

    def _message_id(self, message_id: str) -> str:
        return f"{self.namespace}#msg#{message_id}"

    def _intent_id(self, intent_id: str) -> str:
        return f"{self.namespace}#intent#{intent_id}"


def append_ledger(namespace: str, environ: Mapping[str, str] = os.environ) -> AppendLedger | None:
    """A writer function's ledger on the stack's idempotency table (``IDEMPOTENCY_TABLE_NAME``); None without one."""
    table_name = environ.get(TABLE_ENV)
    return AppendLedger(table_name, namespace=namespace) if table_name else None
