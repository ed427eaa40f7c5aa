"""Dollars per million events, from this run's measured durations and the template's settings.

Prices are us-east-1 list prices (first tier, arm64 Lambda), written down here so a change shows in the
diff. Lambda durations: the CPU time measured on this machine, stretched by the function's CPU share
(a full vCPU at 1,769 MB, proportionally less below), plus the latency model's round trips, rounded up
to the millisecond as Lambda bills. What is modelled rather than measured says so in its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.environment import REPO
from local.template import Template, as_text

# ---- prices (USD) ----
LAMBDA_GB_SECOND = 0.0000133334  # arm64
LAMBDA_REQUEST = 0.20 / 1e6
REST_API_REQUEST = 3.50 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6  # per 512 KB: a 100-event request is one
EVENTBRIDGE_EVENT = 1.00 / 1e6  # per 64 KB chunk of an entry
SQS_REQUEST = 0.40 / 1e6  # per 64 KB chunk
S3_PUT_CLASS = 0.005 / 1000  # PUT, COPY, POST, LIST (multipart parts and copies included)
S3_GET_CLASS = 0.0004 / 1000  # GET, HEAD
SES_EMAIL = 0.10 / 1000
DYNAMODB_WRITE = 0.625 / 1e6  # on-demand write request unit (an item up to 1 KB)
DYNAMODB_READ = 0.125 / 1e6  # on-demand read request unit (a strongly consistent read up to 4 KB)
FIREHOSE_GB = 0.029  # Direct PUT, each record rounded up to 5 KB
FIREHOSE_RECORD_KB = 5
FULL_VCPU_MB = 1769
GB = 1024**3

S3_GET_OPERATIONS = frozenset({"GetObject", "HeadObject"})
SQS_MESSAGES_PER_RECEIVE = 10  # the Lambda event source receives and deletes in tens
LEDGER_ITEMS_PER_WRITE = 25  # BatchWriteItem's limit: the append ledger records a batch's messages in 25s
LEDGER_SEALS = 2  # the seal of the replaced intent and of its own, per append
REQUEST_SIZES = (1, 10, 100)
NOTIFIED_SHARE = 0.01  # the notification rule: an email for 1 event in 100 (e.g. level ERROR)
# Modelled, not measured: an email delivery's own CPU here, and its round trips (idempotency record
# write and update, SES, the result event).
EMAIL_CPU_SECONDS = 0.004
EMAIL_ROUND_TRIPS = 4


@dataclass(frozen=True, slots=True)
class Measured:
    """What this run measured, in seconds (CPU on this machine, waits from the latency model)."""

    reception_cpu_single: float  # one single-event request
    reception_cpu_per_event: float  # per event of a 100-event request
    delay: float  # one AWS round trip
    writer_cpu_per_batch: float
    writer_round_trips: float
    writer_lines: int
    writer_s3_operations: list[str]
    # the Firehose path: the writer on one staged object of ``staged_records`` records
    staged_cpu: float
    staged_round_trips: float
    staged_records: int
    staged_s3_operations: list[str]
    record_bytes: int  # one log record as EventBridge puts it on the stream


@dataclass(frozen=True, slots=True)
class Settings:
    """What the template deploys: memory per function, the log batch size, the default log rule."""

    memory_mb: dict[str, int]
    log_batch_size: int
    log_batch_window: float
    log_all_events: bool
    log_buffer_seconds: int
    log_buffer_mb: int

    @classmethod
    def of(cls, root: Path = REPO) -> Settings:
        template = Template.load(root / "template.yaml", {})
        memory = {
            logical_id: int(template.resolved_property(logical_id, "MemorySize", 128))
            for logical_id in template.of_type("AWS::Serverless::Function")
        }
        return cls(
            memory_mb=memory,
            log_batch_size=int(template.parameters["LogBatchSize"]),
            log_batch_window=float(template.parameters["LogBatchWindowSeconds"]),
            log_all_events=as_text(template.parameters["LogAllEvents"]) == "true",
            log_buffer_seconds=int(template.parameters["LogBufferSeconds"]),
            log_buffer_mb=int(template.parameters["LogBufferMB"]),
        )

    @property
    def events_per_second(self) -> float:
        """The load both log paths are costed at: what fills the log queue's batches within their window."""
        return self.log_batch_size / self.log_batch_window


def billed_seconds(cpu_seconds: float, waits: float, memory_mb: int) -> float:
    """Lambda's billed duration: CPU stretched by the memory's CPU share, plus waits, rounded up to 1 ms."""
    share = min(1.0, memory_mb / FULL_VCPU_MB)
    return math.ceil((cpu_seconds / share + waits) * 1000) / 1000


def lambda_cost(billed: float, memory_mb: int) -> float:
    return LAMBDA_REQUEST + billed * memory_mb / 1024 * LAMBDA_GB_SECOND


@dataclass(frozen=True, slots=True)
class Row:
    """Dollars per million events for one way of sending them."""

    events_per_request: int
    front_door: str  # "REST" or "HTTP"
    notification: bool
    log_path: str  # "SQS" (EventLogDelivery=Queue) or "Firehose" (EventLogDelivery=Firehose)
    parts: dict[str, float] = field(default_factory=dict)
    reception_billed_ms: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.parts.values())


def s3_requests(operations: list[str]) -> float:
    """The price of these S3 requests (DELETE is free; DeleteObjects is a POST: counted with the PUT class)."""
    gets = sum(1 for operation in operations if operation in S3_GET_OPERATIONS)
    return gets * S3_GET_CLASS + (len(operations) - gets) * S3_PUT_CLASS


def events_per_staged_object(measured: Measured, settings: Settings, events_per_second: float | None = None) -> float:
    """Records in one object Firehose writes: a buffer interval's events, or fewer when the size hint fills first."""
    rate = settings.events_per_second if events_per_second is None else events_per_second
    by_time = rate * settings.log_buffer_seconds
    by_size = settings.log_buffer_mb * 1024 * 1024 / measured.record_bytes
    return max(1.0, min(by_time, by_size))


def log_path_per_event(
    measured: Measured, settings: Settings, path: str, events_per_second: float | None = None
) -> float:
    """The event log's cost for one logged event (the default rule logs every event).

    ``events_per_second``: the load (Firehose only: objects carry fewer records at a lower rate);
    by default ``settings.events_per_second``.

    Both paths run the append ledger (exactly once under redelivery): through the queue it records every
    message (an item per event, in BatchWriteItems of 25); through Firehose every staged object.
    """
    writer_memory = settings.memory_mb["LogWriterFunction"]
    if path == "SQS":
        batch = settings.log_batch_size
        ledger_round_trips = math.ceil(batch / LEDGER_ITEMS_PER_WRITE) + LEDGER_SEALS
        billed = billed_seconds(
            measured.writer_cpu_per_batch * batch / measured.writer_lines,
            (measured.writer_round_trips + ledger_round_trips) * measured.delay,
            writer_memory,
        )
        per_batch = (
            lambda_cost(billed, writer_memory)
            + s3_requests(measured.writer_s3_operations)
            + LEDGER_SEALS * DYNAMODB_WRITE
        )
        # EventBridge sends each event to the log queue; the writer receives and deletes them in tens.
        queue = SQS_REQUEST * (1 + 2 / SQS_MESSAGES_PER_RECEIVE)
        return queue + DYNAMODB_WRITE + per_batch / batch
    # Firehose: each record billed as a multiple of 5 KB; per object, Firehose's PUT, S3's notification
    # (an SQS send, a receive and a delete: objects arrive one at a time), one writer invocation with its
    # S3 requests (the staged GET and DeleteObjects included), the ledger's record and check of the object.
    records = events_per_staged_object(measured, settings, events_per_second)
    firehose = math.ceil(measured.record_bytes / (FIREHOSE_RECORD_KB * 1024)) * FIREHOSE_RECORD_KB * 1024
    ledger_round_trips = 2 + LEDGER_SEALS  # BatchGetItem (already appended?), BatchWriteItem (record), seals
    billed = billed_seconds(
        measured.staged_cpu * records / measured.staged_records,
        (measured.staged_round_trips + ledger_round_trips) * measured.delay,
        writer_memory,
    )
    per_object = (
        S3_PUT_CLASS
        + 3 * SQS_REQUEST
        + lambda_cost(billed, writer_memory)
        + s3_requests(measured.staged_s3_operations)
        + (1 + LEDGER_SEALS) * DYNAMODB_WRITE
        + DYNAMODB_READ
    )
    return firehose / GB * FIREHOSE_GB + per_object / records


LOW_RATES = (0.1, 1.0, 10.0)  # events per second at which the Firehose path is also shown


def firehose_at_low_rates(measured: Measured, settings: Settings) -> dict[float, float]:
    """$ per million logged events through Firehose when traffic is light (fewer records per staged object)."""
    return {rate: log_path_per_event(measured, settings, "Firehose", rate) * 1e6 for rate in LOW_RATES}


def notification_per_event(measured: Measured, settings: Settings, log_path: float) -> float:
    """A rule emailing ``NOTIFIED_SHARE`` of the events: the email function, SES, idempotency, its result event."""
    memory = settings.memory_mb["EmailFunction"]
    billed = billed_seconds(EMAIL_CPU_SECONDS, EMAIL_ROUND_TRIPS * measured.delay, memory)
    result_event = EVENTBRIDGE_EVENT + (log_path if settings.log_all_events else 0.0)
    per_email = lambda_cost(billed, memory) + SES_EMAIL + 2 * DYNAMODB_WRITE + result_event
    return NOTIFIED_SHARE * per_email


def cost_table(measured: Measured, settings: Settings) -> list[Row]:
    """$ per million events for 1/10/100-event requests, REST vs HTTP API, with/without the notification rule."""
    reception_memory = settings.memory_mb["ReceptionFunction"]
    fixed_cpu = max(measured.reception_cpu_single - measured.reception_cpu_per_event, 0.0)
    rows = []
    for log_path_name in ("SQS", "Firehose"):
        log_path = log_path_per_event(measured, settings, log_path_name) if settings.log_all_events else 0.0
        for size in REQUEST_SIZES:
            cpu = fixed_cpu + size * measured.reception_cpu_per_event
            billed = billed_seconds(cpu, measured.delay, reception_memory)  # the calls go out together
            for front_door, price in (("REST", REST_API_REQUEST), ("HTTP", HTTP_API_REQUEST)):
                for notification in (False, True):
                    parts = {
                        "api": price / size,
                        "reception": lambda_cost(billed, reception_memory) / size,
                        "eventbridge": EVENTBRIDGE_EVENT,
                        "event log": log_path,
                        "notification": notification_per_event(measured, settings, log_path) if notification else 0.0,
                    }
                    rows.append(
                        Row(
                            size,
                            front_door,
                            notification,
                            log_path_name,
                            {name: value * 1e6 for name, value in parts.items()},
                            billed * 1000,
                        )
                    )
    return rows


def as_records(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "events_per_request": row.events_per_request,
            "front_door": row.front_door,
            "notification": row.notification,
            "log_path": row.log_path,
            "reception_billed_ms": row.reception_billed_ms,
            "usd_per_million_events": round(row.total, 4),
            "parts": {name: round(value, 4) for name, value in row.parts.items()},
        }
        for row in rows
    ]


# ---- memory sizing, as Lambda power tuning does ----
MEMORY_SIZES = (128, 256, 512, 1024, 1769, 3008)


@dataclass(frozen=True, slots=True)
class Invocation:
    """A function's typical invocation: its CPU here and its round trips."""

    function: str
    label: str
    cpu_seconds: float
    round_trips: float


@dataclass(frozen=True, slots=True)
class Sizing:
    invocation: Invocation
    memory_mb: int
    billed_ms: float
    usd_per_million: float


def typical_invocations(measured: Measured) -> list[Invocation]:
    fixed = max(measured.reception_cpu_single - measured.reception_cpu_per_event, 0.0)
    return [
        *(
            Invocation("ReceptionFunction", f"{size}-event request", fixed + size * measured.reception_cpu_per_event, 1)
            for size in REQUEST_SIZES
        ),
        Invocation(
            "LogWriterFunction",
            f"{measured.writer_lines:,}-record batch",
            measured.writer_cpu_per_batch,
            measured.writer_round_trips,
        ),
    ]


def power_tuning(measured: Measured) -> list[Sizing]:
    """Billed duration and $ per million invocations of each typical invocation at each memory size."""
    rows = []
    for invocation in typical_invocations(measured):
        for memory in MEMORY_SIZES:
            billed = billed_seconds(invocation.cpu_seconds, invocation.round_trips * measured.delay, memory)
            rows.append(Sizing(invocation, memory, billed * 1000, lambda_cost(billed, memory) * 1e6))
    return rows
