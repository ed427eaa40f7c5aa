"""Intent records: narrow the window between a provider accepting an effect and its idempotency record.

The runner (``correlator.action``) runs each outside effect at most once per key with Powertools
idempotency; a function that dies after the provider accepted (an SMS created, a 5xx that hid a
created message) but before the result is stored leaves an in-progress record that expires, and
the retry would do it again. ``IntentRecords`` is a runner step: before the effect it records the
*intent* (conditional put, ``intent#<action>#<hash of the delivery key and part>``); an attempt that finds an
intent already there knows an earlier one died in between, and asks the action to *reconcile*:
look the effect up at the provider since the intent's time. Found: its result is returned and
nothing is sent again. Not found, or an action that cannot look (SES has no lookup by message):
the effect runs again, and a warning says so.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from correlator import aws
from correlator.action import Effect, Result
from correlator.configs import ActionConfig
from correlator.delivery import Delivery
from correlator.retry import IDEMPOTENCY_EXPIRY_SECONDS

logger = logging.getLogger(__name__)

Reconcile = Callable[[Delivery[Any], Effect, datetime], Result | None]


class IntentRecords:
    """A runner ``Step`` that records intents in the idempotency table and reconciles a found one."""

    def __init__(
        self,
        table_name: str,
        *,
        action: str,
        reconcile: Reconcile | None,
        client: Any | None = None,
        expires_after_seconds: int = IDEMPOTENCY_EXPIRY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self.action = action
        self.reconcile = reconcile
        self.dynamodb = client or aws.client("dynamodb")
        self.expires_after_seconds = expires_after_seconds
        self._clock = clock

    def __call__(self, delivery: Delivery[ActionConfig], effect: Effect, proceed: Callable[[], Result]) -> Result:
        if not effect.outside:
            return proceed()
        # Hashed like Powertools' keys: a part may be personal data (an SMS recipient's number).
        digest = hashlib.sha256(f"{delivery.idempotency_key}#{effect.part}".encode()).hexdigest()
        since = self._earlier_intent(f"intent#{self.action}#{digest}")
        if since is None:
            return proceed()
        found = self.reconcile(delivery, effect, since) if self.reconcile is not None else None
        if found is not None:
            logger.warning("an earlier attempt did this before dying: not done again", extra={"part": effect.part})
            return found
        logger.warning(
            "an earlier attempt died after recording its intent; the provider cannot tell whether it was done: "
            "doing it again",
            extra={"part": effect.part, "since": since.isoformat()},
        )
        return proceed()

    def _earlier_intent(self, key: str) -> datetime | None:
        """Record the intent; the time of an earlier one when there is one (and it has not expired)."""
        now = self._clock()
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item={
                    "id": {"S": key},
                    "at": {"N": f"{now:.3f}"},
                    "expiration": {"N": str(int(now) + self.expires_after_seconds)},
                },
                ConditionExpression="attribute_not_exists(id) OR expiration < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item = self.dynamodb.get_item(TableName=self.table_name, Key={"id": {"S": key}}, ConsistentRead=True)
            at = float(item.get("Item", {}).get("at", {}).get("N", now))
            return datetime.fromtimestamp(at, UTC)
        return None
