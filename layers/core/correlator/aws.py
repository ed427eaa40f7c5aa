"""boto3 clients with one retry/timeout policy for the whole stack.

``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at the local stack.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Whole-call retries (throttling, 5xx, connection errors) belong to botocore.
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
)


def client(service: str, config: Config | None = None) -> Any:
    """A boto3 client for ``service`` with the stack's retry and timeout policy (``config`` overrides parts)."""
    return boto3.client(service, config=BOTO_CONFIG.merge(config) if config else BOTO_CONFIG)
