"""API Gateway usage plans on the local stack: throttle (rate, burst) and quota per API key.

A route that takes an API key (``ApiKeyRequired``) is under its API's usage plan (SAM's
``Auth.UsagePlan``; ``CreateUsagePlan: NONE`` means none). As API Gateway does, each key has a
token bucket holding up to ``BurstLimit`` requests and refilled at ``RateLimit`` per second, and
a count of requests per quota period (``DAY``, ``WEEK`` or ``MONTH``, in UTC). A request over
either limit is answered like API Gateway: 429 with ``{"message": "Too Many Requests"}`` and
``x-amzn-ErrorType: TooManyRequestsException``, or ``{"message": "Limit Exceeded"}`` and
``LimitExceededException`` once the quota is spent; the handler is not invoked.

Quota counts are kept with the stack's state (``local.state``: saved with moto's, restored at
start, reset by ``--fresh``/``make clean-state``), so a restart does not hand out a new day's or
month's quota; token buckets start full after a restart.

Differences from AWS: a quota period starts on a UTC boundary (Monday for WEEK, the 1st for
MONTH; the usage plan's ``Offset`` is ignored), and the account- and stage-level throttles are not applied.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Limiter", "Refusal", "UsagePlan"]


@dataclass(frozen=True, slots=True)
class Refusal:
    message: str
    error_type: str


THROTTLED = Refusal("Too Many Requests", "TooManyRequestsException")
QUOTA_EXCEEDED = Refusal("Limit Exceeded", "LimitExceededException")


@dataclass(frozen=True, slots=True)
class UsagePlan:
    rate: float | None = None  # requests per second
    burst: int | None = None
    quota: int | None = None
    period: str = "DAY"

    @classmethod
    def from_sam_auth(cls, auth: Mapping[str, Any]) -> UsagePlan | None:
        """The usage plan of an ``AWS::Serverless::Api``'s resolved ``Auth``, if it has one."""
        plan = auth.get("UsagePlan") or {}
        if not plan or str(plan.get("CreateUsagePlan", "NONE")).upper() == "NONE":
            return None
        throttle, quota = plan.get("Throttle") or {}, plan.get("Quota") or {}
        rate = float(throttle["RateLimit"]) if throttle.get("RateLimit") is not None else None
        burst = int(throttle["BurstLimit"]) if throttle.get("BurstLimit") is not None else None
        limit = int(quota["Limit"]) if quota.get("Limit") is not None else None
        if rate is None and burst is None and limit is None:
            return None
        return cls(rate, burst, limit, str(quota.get("Period") or "DAY").upper())

    def period_of(self, moment: datetime) -> tuple[int, ...]:
        if self.period == "MONTH":
            return (moment.year, moment.month)
        if self.period == "WEEK":
            year, week, _ = moment.isocalendar()
            return (year, week)
        return (moment.year, moment.month, moment.day)


@dataclass(slots=True)
class _Usage:
    tokens: float
    refilled: float
    period: tuple[int, ...]
    count: int = 0


class Limiter:
    """Admits or refuses each request of a key under a usage plan (thread-safe)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.clock = clock
        self.today = today
        self._usage: dict[tuple[str, str], _Usage] = {}
        self._restored: dict[tuple[str, str], tuple[tuple[int, ...], int]] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> dict[tuple[str, str], tuple[tuple[int, ...], int]]:
        """The quota counts to keep across a restart: (API, key) -> (quota period, requests in it)."""
        with self._lock:
            return {**self._restored, **{key: (usage.period, usage.count) for key, usage in self._usage.items()}}

    def restore(self, saved: Mapping[tuple[str, str], tuple[tuple[int, ...], int]]) -> None:
        """Take up the quota counts of ``snapshot`` (a request in another period starts a new count)."""
        with self._lock:
            self._restored = dict(saved)
            self._usage.clear()

    def admit(self, plan: UsagePlan, api_id: str, key_id: str) -> Refusal | None:
        """None if the request may go on (and count it), else why it is refused."""
        now, period = self.clock(), plan.period_of(self.today())
        capacity = float(plan.burst if plan.burst is not None else max(1, math.ceil(plan.rate or 1)))
        with self._lock:
            usage = self._usage.get((api_id, key_id))
            if usage is None:
                period_then, count = self._restored.pop((api_id, key_id), (period, 0))
                usage = self._usage[(api_id, key_id)] = _Usage(capacity, now, period_then, count)
            if plan.rate is not None:
                usage.tokens = min(capacity, usage.tokens + (now - usage.refilled) * plan.rate)
            usage.refilled = now
            throttled = plan.rate is not None or plan.burst is not None
            if throttled and usage.tokens < 1:
                return THROTTLED
            if usage.period != period:
                usage.period, usage.count = period, 0
            if plan.quota is not None and usage.count >= plan.quota:
                return QUOTA_EXCEEDED
            if throttled:
                usage.tokens -= 1
            usage.count += 1
            return None
