"""Optimistic concurrency for rules: ETags, and a lease that serialises the writers of one rule.

EventBridge, the rule store, has no conditional writes: ``PutRule`` is an upsert. So every write
to a rule (create, replace, delete) runs while holding a *lease* on the rule's name, an item in
DynamoDB taken with a conditional put (``attribute_not_exists(id) OR lease_until < :now``). Inside
the lease the writer reads the rule back from EventBridge, checks the precondition (``If-Match``
against the rule's ETag, ``If-None-Match: *``, or plain existence for a create) and writes. Two
writers of one rule can therefore never interleave their check and their write:

* while one holds the lease, the other's conditional put fails (it retries briefly, then 409);
* a lease ends when its holder deletes it, or when ``lease_until`` has passed. A holder takes the
  lease for the time its Lambda invocation has left plus a margin, and Lambda stops an invocation
  at its timeout, so an expired lease's holder can no longer write.

The ETag is a hash of the rule as stored (what GET returns), so it changes with every change of
the rule, whoever made it, and needs no counter of its own.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from correlator.errors import ConflictError

LEASE_MARGIN_SECONDS = 5.0  # calls already on the wire when the invocation ends
WAIT_SECONDS = 3.0  # how long a writer waits for another writer of the same rule
RECORD_TTL_SECONDS = 3600  # leases left behind by a crash are removed by the table's TTL


def rule_etag(stored: Mapping[str, Any]) -> str:
    """The strong ETag of a rule as stored: a hash of its canonical JSON, quoted."""
    canonical = json.dumps(stored, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def etag_matches(header: str, etag: str | None) -> bool:
    """Does an ``If-Match`` header (``*``, or a list of ETags, weak ones too) accept ``etag``?"""
    if etag is None:
        return False
    wanted = [item.strip().removeprefix("W/") for item in header.split(",")]
    return "*" in wanted or etag in wanted


class RuleWriteLease:
    """Leases on rule names in a DynamoDB table keyed on ``id`` (the stack's idempotency table)."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        *,
        remaining_seconds: Callable[[], float],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = time.sleep,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._remaining = remaining_seconds
        self._clock = clock
        self._sleep = sleep
        self._wait = wait_seconds

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Run the block as the only writer of rule ``name``; ``ConflictError`` if another keeps it."""
        key = {"id": {"S": f"rule-write#{name}"}}
        token = uuid.uuid4().hex
        deadline = self._clock() + self._wait
        delay = 0.05
        while True:
            now = self._clock()
            lease_until = now + self._remaining() + LEASE_MARGIN_SECONDS
            try:
                self._dynamodb.put_item(
                    TableName=self._table,
                    Item={
                        **key,
                        "token": {"S": token},
                        "lease_until": {"N": f"{lease_until:.3f}"},
                        "expiration": {"N": str(int(lease_until + RECORD_TTL_SECONDS))},
                    },
                    ConditionExpression="attribute_not_exists(id) OR lease_until < :now",
                    ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                )
                break
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
            if self._clock() + delay > deadline:
                raise ConflictError(
                    f"another write to rule {name!r} is in progress; try again",
                    [{"field": "name", "message": "concurrent write"}],
                )
            self._sleep(delay)
            delay = min(delay * 2, 0.5)
        try:
            yield
        finally:
            try:
                self._dynamodb.delete_item(
                    TableName=self._table,
                    Key=key,
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#token": "token"},
                    ExpressionAttributeValues={":token": {"S": token}},
                )
            except ClientError as error:  # expired and taken over: nothing of ours to remove
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
