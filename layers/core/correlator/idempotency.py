"""At most once per key: an action's outside effect, on Powertools idempotency.

``OncePerKey`` wraps a side effect in Powertools idempotency on the stack's DynamoDB table: the
first call for a key runs it and stores its result; later calls for the same key (EventBridge
redelivery, Lambda's asynchronous retries) get the stored result back without running it. A
call that raises stores nothing, so a retry runs it again; a permanent failure is a *result*
(stored, reported, never retried), not an exception.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from correlator import aws
from correlator.retry import IDEMPOTENCY_EXPIRY_SECONDS

Result = TypeVar("Result", bound=Mapping[str, Any])


class OncePerKey:
    """Runs side effects at most once per key (one persistence layer per instance, as Powertools wants).

    Records are ``<key_prefix>#<hash of the key>`` in the table's ``id``, expiring after
    ``expires_after_seconds`` (the table's TTL attribute ``expiration``).
    """

    def __init__(
        self,
        table_name: str,
        *,
        key_prefix: str,
        expires_after_seconds: int = IDEMPOTENCY_EXPIRY_SECONDS,
        client: Any | None = None,
    ) -> None:
        self.config = IdempotencyConfig(expires_after_seconds=expires_after_seconds)
        persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client or aws.client("dynamodb"))
        self._run_once: Callable[..., dict[str, Any]] = idempotent_function(
            _run_effect,
            data_keyword_argument="key",
            persistence_store=persistence,
            config=self.config,
            key_prefix=key_prefix,
        )

    def register_lambda_context(self, context: Any) -> None:
        """Let an in-progress record expire with the invocation (a crashed attempt does not block retries)."""
        self.config.register_lambda_context(context)

    def run(self, key: Mapping[str, str], effect: Callable[[], Result]) -> tuple[Result, bool]:
        """``effect()``'s result, and whether it is a replay (stored by an earlier call: not run now)."""
        token = uuid.uuid4().hex
        stored = dict(self._run_once(key=dict(key), effect=effect, token=token))
        replayed = stored.pop("token", None) != token
        return cast("Result", stored), replayed


def _run_effect(*, key: dict[str, str], effect: Callable[[], Mapping[str, Any]], token: str) -> dict[str, Any]:
    # ``token`` tells the caller whether this call ran the effect or got a stored result back.
    return {**effect(), "token": token}
