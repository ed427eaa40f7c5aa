"""AWS clients with one retry/timeout policy for the whole stack, created through botocore alone.

botocore is all a client needs: boto3 adds resources and s3transfer (~15 % of ``import boto3`` +
a client), which no function uses. ``AWS_ENDPOINT_URL`` (honoured by botocore itself) points every
client at the local stack.
"""

from __future__ import annotations

import threading
from typing import Any

import botocore.session
from botocore.config import Config

# Whole-call retries (throttling, 5xx, connection errors) belong to botocore.
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
)
_session: botocore.session.Session | None = None
_session_lock = threading.Lock()


def session() -> botocore.session.Session:
    """The process's botocore session (created once: it loads and caches the service models)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session


def client(service: str, config: Config | None = None) -> Any:
    """A client for ``service`` with the stack's retry and timeout policy (``config`` overrides parts)."""
    return session().create_client(service, config=BOTO_CONFIG.merge(config) if config else BOTO_CONFIG)
