"""Cost of one event-log append: a 1,000-line batch onto a 40 MB current log vs onto none.

moto's server runs in a child process (with ``local.moto_compat``), so the server-side copy of
a large append is S3's work, not the writer's. The writer's S3 client counts the bytes it sends
(request bodies) and receives (response bodies): for both appends they should be about the batch.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from correlator.appender import S3Appender
from correlator.eventlog import CURRENT_KEY, EventLog

BUCKET = "bench-log-bucket"
BATCH_LINES = 1_000
LARGE_LOG_BYTES = 40 * 1024 * 1024
COPY_PATH_LOG_BYTES = 8 * 1024 * 1024  # also over 5 MiB: the same requests as 40 MB, a fifth of the bytes
REPEATS = 5
LINE = '2026-11-22T14:52:39.778Z,[INFO ],"Req_bench","true","https://app.example/","k7ab2cd9ef","order.created","orders/{n:07d}","ok"\n'

_SERVER = """
import logging, sys
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from local import moto_compat
from moto.server import ThreadedMotoServer
moto_compat.apply()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
sys.stdin.read()  # until the parent closes it
server.stop()
"""


@dataclass(frozen=True, slots=True)
class AppendCost:
    seconds: float  # wall time, best of the repeats (includes moto's server-side work)
    median: float
    cpu_seconds: float  # the writer's own CPU time (moto runs in another process), best of the repeats
    bytes_sent: int  # per append
    bytes_received: int


class ByteCounter:
    """Counts request and response body bytes of a boto3 client (through botocore's events)."""

    def __init__(self, client: Any) -> None:
        self.sent = 0
        self.received = 0
        client.meta.events.register("before-send.s3.*", self._before_send)
        client.meta.events.register("after-call.s3.*", self._after_call)

    def _before_send(self, request: Any, **_: Any) -> None:
        body = request.body
        if isinstance(body, bytes | bytearray):
            self.sent += len(body)
        elif body is not None and hasattr(body, "seek") and hasattr(body, "tell"):
            position = body.tell()
            body.seek(0, os.SEEK_END)
            self.sent += body.tell() - position
            body.seek(position)

    def _after_call(self, http_response: Any, **_: Any) -> None:
        length = http_response.headers.get("content-length")
        if length and http_response.status_code < 300 and not http_response.raw.closed:
            self.received += int(length)

    def reset(self) -> tuple[int, int]:
        counts = (self.sent, self.received)
        self.sent = self.received = 0
        return counts


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a child process, with ``local.moto_compat``; yields its endpoint URL."""
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)], stdin=subprocess.PIPE, env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def s3_client(endpoint: str) -> Any:
    """An S3 client for the bench's moto server, once the server answers."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )
    _wait_until_up(s3)
    return s3


def measure() -> dict[str, AppendCost]:
    """Append cost onto an empty log and onto a 40 MB one (same batch, same run)."""
    with moto_server() as endpoint:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        counter = ByteCounter(s3)
        log = EventLog(S3Appender(s3, BUCKET))
        batch = "".join(LINE.format(n=n) for n in range(BATCH_LINES))
        return {
            "empty": _time_append(s3, log, counter, batch, existing=None),
            "8 MB": _time_append(s3, log, counter, batch, existing=_log_of(batch, COPY_PATH_LOG_BYTES)),
            "40 MB": _time_append(s3, log, counter, batch, existing=_log_of(batch, LARGE_LOG_BYTES)),
        }


def _log_of(batch: str, size: int) -> bytes:
    data = (batch * (size // len(batch) + 1)).encode()[:size]
    return data[: data.rfind(b"\n") + 1]


def _wait_until_up(s3: Any) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            s3.list_buckets()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _time_append(s3: Any, log: EventLog, counter: ByteCounter, batch: str, existing: bytes | None) -> AppendCost:
    timings: list[float] = []
    cpu: list[float] = []
    sent = received = 0
    for _ in range(REPEATS):
        if existing is None:
            s3.delete_object(Bucket=BUCKET, Key=CURRENT_KEY)
        else:
            s3.put_object(Bucket=BUCKET, Key=CURRENT_KEY, Body=existing, Metadata={"generation": "1"})
        counter.reset()
        started, cpu_started = time.perf_counter(), time.process_time()
        log.append(batch)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        sent, received = counter.reset()
    return AppendCost(min(timings), statistics.median(timings), min(cpu), sent, received)


def batch_bytes() -> int:
    return len("".join(LINE.format(n=n) for n in range(BATCH_LINES)).encode())
