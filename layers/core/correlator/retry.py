"""Waiting between attempts, the same way everywhere: exponential backoff with jitter, and ``Retry-After``.

Whole AWS calls are retried by botocore (``correlator.aws``); this is for what botocore cannot
retry: failed PutEvents entries, lost S3 races, and the HTTP APIs the actions call.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

# How long a record of "done" (idempotency, intents, append ledger) is kept: beyond EventBridge's 24 h of
# retries, Lambda's 6 h, manual redrives. Here, not in correlator.idempotency: the writers' ledger must not
# import Powertools idempotency (their cold start).
IDEMPOTENCY_EXPIRY_SECONDS = 7 * 24 * 3600


def backoff(retry: int, base: float, cap: float, *, full_jitter: bool = True) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first): ``base`` doubled each time, capped.

    Full jitter waits anywhere below the ceiling (spreads competing writers); equal jitter waits at
    least half of it (for one caller pacing itself against a rate limit).
    """
    ceiling = min(cap, base * 2.0 ** (retry - 1))
    floor = 0.0 if full_jitter else ceiling / 2
    return random.uniform(floor, ceiling)  # noqa: S311 - jitter, not cryptography


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header (delta-seconds or an HTTP date) in seconds; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - time.time())
