"""The local stack under load, end to end: POST /events from 16 clients, then the event log checked line by line.

A fresh ``python -m local`` (own ports, own empty state directory) gets the template's rules plus
``EXTRA_RULES`` rules through the rules API. ``CLIENTS`` threads then post singles and batches of
up to 100 events (each event's ``object`` is a unique token) until ``events`` are accepted, on a schedule
that offers ``OFFERED_EVENTS_PER_SECOND`` in all (a latency target means something only at a given
load: 16 clients that each wait for their answer measure throughput, and their latency is then
16 / requests per second whatever the stack does; ``--rate 0`` measures that way). Every client
cycles through the same mix of request sizes (``BATCH_SIZES``), each from its own starting point:
clients that all started on the same size kept in step and sent their 100-event batches at the
same instants, a burst of 1,600 events (three seconds of the offered rate) that independent
clients do not make. For the same reason each client's schedule starts ``index`` steps of
1/``CLIENTS`` of a client's mean interval between requests after the first's: on one common
schedule every client began each round of its mix at the same instant, 16 requests (472 events,
most of a second of the offered rate) every 8.6 s. The
figures: accepted events/s, POST latency p50/p99, the time from the last accept until every
accepted token is in the event log (the drain), and how many tokens are missing from the log
(lost) or in it more than once (duplicated). For information, without a target: the slowest
answer when every client sends its first request of the mix at the same instant (``burst``: 16
requests, 472 events), the median of ``BURST_ROUNDS`` such bursts on the drained stack. Loopback
only; bounded by ``events`` and by ``SEND_LIMIT_SECONDS``/``DRAIN_LIMIT_SECONDS``.

``python -m bench.local_load [--events N]``; ``make bench`` runs it with ``BENCH_LOCAL_EVENTS``
(default 20000, 0 skips it).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 16
EXTRA_RULES = 20
BATCH_SIZES = (1, 100, 1, 25, 1, 50, 10, 100, 1, 5)  # singles and batches, cycled per client
DEFAULT_EVENTS = 20_000
SEND_LIMIT_SECONDS = 300.0
DRAIN_LIMIT_SECONDS = 300.0
START_LIMIT_SECONDS = 60.0
BUS = "correlator"
LOG_BUCKET = "correlator-logbucket"

TARGET_EVENTS_PER_SECOND = 500.0
OFFERED_EVENTS_PER_SECOND = 550.0  # the clients' schedule: the target plus 10 %
TARGET_P99_SECONDS = 0.250
TARGET_DRAIN_SECONDS = 10.0
BURST_ROUNDS = 5
HEADERS = {"x-api-key": "local-dev-key", "content-type": "application/json"}
BURST_PAUSE_SECONDS = 1.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    port: int
    moto_port: int
    output: IO[bytes]
    state_dir: tempfile.TemporaryDirectory[str]

    def request(self, method: str, path: str, body: Any = None, key: str = "local-admin-key") -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = None if body is None else json.dumps(body)
            headers = {"x-api-key": key, "content-type": "application/json"}
            connection.request(method, path, payload, headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        finally:
            connection.close()

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.moto_port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()
        self.state_dir.cleanup()


def start_stack(repo: Path = REPO, extra_env: dict[str, str] | None = None) -> Stack:
    """A fresh ``python -m local`` on free ports (``extra_env``: e.g. ``CORRELATOR_PARAM_*`` parameters)."""
    state_dir = tempfile.TemporaryDirectory(prefix="correlator-bench-")
    kept = ("CORRELATOR_CONCURRENCY", "CORRELATOR_SAVE_SECONDS")  # to measure other settings; nothing else
    env = {
        name: value
        for name, value in os.environ.items()
        if name in kept or not name.startswith(("AWS_", "CORRELATOR_"))
    }
    port, moto_port = _free_port(), _free_port()
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(repo / "layers" / "core"), str(repo)]),
            "CORRELATOR_PORT": str(port),
            "CORRELATOR_MOTO_PORT": str(moto_port),
            "CORRELATOR_STATE_DIR": state_dir.name,
            **(extra_env or {}),
        }
    )
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by Stack.stop
    process = subprocess.Popen(
        [sys.executable, "-m", "local"], cwd=repo, env=env, stdout=output, stderr=subprocess.STDOUT
    )
    stack = Stack(process, port, moto_port, output, state_dir)
    deadline = time.monotonic() + START_LIMIT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if stack.request("GET", "/")[0] == 403:
                return stack
        except OSError:
            time.sleep(0.2)
    stack.stop()
    raise RuntimeError("the local stack did not start")


def add_rules(stack: Stack, count: int) -> None:
    """``count`` rules that never match the load's events (they only cost matching, as a real rule set does)."""
    for index in range(count):
        rule = {
            "name": f"bench-extra-{index}",
            "action": "csv",
            "match": {"type": f"bench.other.{index}", "kind": "dataset", "dataset": f"bench-{index}"},
        }
        status, body = stack.request("POST", "/rules", rule)
        if status != 201:
            raise RuntimeError(f"rule {index}: {status} {body}")


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    by_size: dict[int, list[float]] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(stack: Stack, events: int, clients: int, run: str, rate: float = 0.0) -> tuple[Load, float]:
    """Post until ``events`` are accepted, at ``rate`` events/s in all (0: as fast as the stack answers);
    return what happened and the send phase's wall time."""
    load = Load()
    remaining = [events]
    deadline = time.monotonic() + SEND_LIMIT_SECONDS
    per_client = rate / clients
    # the clients' schedules interleave: each starts 1/clients of a client's mean request interval after the last
    stagger = sum(BATCH_SIZES) / len(BATCH_SIZES) / per_client / clients if per_client else 0.0

    def take(size: int) -> int:
        with load.lock:
            granted = min(size, remaining[0])
            remaining[0] -= granted
            return granted

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
        sequence = index  # each client starts at its own place in the mix (not all 16 on a 100 at once)
        sent = 0
        began = time.monotonic() + index * stagger
        while time.monotonic() < deadline:
            size = take(_size_at(sequence))
            if not size:
                break
            if per_client:  # each client on a schedule (a client behind it sends its next request at once)
                time.sleep(max(0.0, began + sent / per_client - time.monotonic()))
            sent += size
            tokens = [f"bench/{run}/{index}/{sequence}/{n}" for n in range(size)]
            sequence += 1
            payload = _submission(tokens)
            started = time.perf_counter()
            try:
                connection.request("POST", "/events", payload, HEADERS)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
                with load.lock:
                    load.failures.append(f"{type(error).__name__}: {error}")
                continue
            elapsed = time.perf_counter() - started
            results = json.loads(data).get("results", []) if response.status == 200 else []
            accepted = [
                token for token, result in zip(tokens, results, strict=False) if result.get("status") == "accepted"
            ]
            with load.lock:
                load.latencies.append(elapsed)
                load.by_size.setdefault(size, []).append(elapsed)
                load.tokens += accepted
                if response.status != 200 or len(accepted) != size:
                    load.failures.append(f"{response.status}: {data[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return load, time.perf_counter() - started


def _submission(tokens: list[str]) -> str:
    """The POST /events body for one event per token: a single event, or a batch."""
    bodies = [{"type": "bench.load", "object": token, "info": "load"} for token in tokens]
    return json.dumps(bodies[0] if len(bodies) == 1 else {"events": bodies})


def _size_at(position: int) -> int:
    """The mix's request size at ``position``, cycled (client ``i`` starts at position ``i``)."""
    return BATCH_SIZES[position % len(BATCH_SIZES)]


def burst(stack: Stack, clients: int, run: str, rounds: int = BURST_ROUNDS) -> float:
    """The median, over ``rounds``, of the slowest answer when every client sends its first request of the mix at
    the same instant (a request not accepted whole fails the measurement)."""
    slowest = []
    for round_ in range(rounds):
        gate = threading.Barrier(clients)
        answers: list[tuple[int, float]] = []

        def client(index: int, tag: str, gate: threading.Barrier, answers: list[tuple[int, float]]) -> None:
            payload = _submission([f"bench/{tag}/{index}/{n}" for n in range(_size_at(index))])
            connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
            connection.connect()
            gate.wait()
            started = time.perf_counter()
            connection.request("POST", "/events", payload, HEADERS)
            response = connection.getresponse()
            response.read()
            answers.append((response.status, time.perf_counter() - started))
            connection.close()

        threads = [
            threading.Thread(target=client, args=(index, f"{run}/{round_}", gate, answers), daemon=True)
            for index in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if sorted(status for status, _ in answers) != [200] * clients:
            raise RuntimeError(f"burst {round_}: answers {sorted(status for status, _ in answers)}")
        slowest.append(max(seconds for _, seconds in answers))
        time.sleep(BURST_PAUSE_SECONDS)
    return sorted(slowest)[len(slowest) // 2]


def log_lines(stack: Stack) -> Iterator[str]:
    """Every line of the event log (current file and archives)."""
    s3 = stack.s3()
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=LOG_BUCKET, Prefix="logs/")
    for page in pages:
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=LOG_BUCKET, Key=item["Key"])["Body"].read()
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            yield from body.decode("utf-8", "replace").splitlines()


def log_tokens(stack: Stack, run: str) -> Counter[str]:
    """How many times each token of this run is in the event log (current file and archives)."""
    counts: Counter[str] = Counter()
    marker = f'"bench/{run}/'
    for line in log_lines(stack):
        start = line.find(marker)
        if start >= 0 and ',"true",' in line:
            counts[line[start + 1 : line.index('"', start + 1)]] += 1
    return counts


def queue_depth(stack: Stack) -> int:
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{stack.moto_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = sqs.get_queue_url(QueueName="correlator-LogQueue")["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


@dataclass(frozen=True, slots=True)
class Figures:
    events: int
    accepted: int
    seconds: float
    events_per_second: float
    p50: float
    p99: float
    drain: float
    lost: int
    duplicated: int
    offered: float
    burst: float
    failures: int
    failure_samples: tuple[str, ...]
    load_average: tuple[float, float, float]
    by_size: dict[int, tuple[int, float, float]] = field(default_factory=dict)  # size → (requests, p50, p99)

    @property
    def met(self) -> dict[str, bool]:
        return {
            f"local load ≥ {TARGET_EVENTS_PER_SECOND:.0f} events/s": self.events_per_second >= TARGET_EVENTS_PER_SECOND,
            f"local load POST p99 ≤ {TARGET_P99_SECONDS * 1000:.0f} ms": self.p99 <= TARGET_P99_SECONDS,
            f"local load drain ≤ {TARGET_DRAIN_SECONDS:.0f} s": self.drain <= TARGET_DRAIN_SECONDS,
            "local load 0 lost, 0 duplicated": self.lost == 0 and self.duplicated == 0 and self.accepted == self.events,
        }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def measure(
    events: int = DEFAULT_EVENTS, clients: int = CLIENTS, repo: Path = REPO, rate: float = OFFERED_EVENTS_PER_SECOND
) -> Figures:
    stack = start_stack(repo)
    try:
        add_rules(stack, EXTRA_RULES)
        run = uuid.uuid4().hex[:8]
        send(stack, 100 * clients, clients, f"{run}-warm")  # every worker warm before the clock starts
        load, seconds = send(stack, events, clients, run, rate)
        last_accept = time.monotonic()
        wanted = set(load.tokens)
        deadline = last_accept + DRAIN_LIMIT_SECONDS
        while time.monotonic() < deadline and queue_depth(stack) > 0:
            time.sleep(0.1)
        counts = log_tokens(stack, run)
        while time.monotonic() < deadline and not wanted <= counts.keys():
            time.sleep(0.5)
            counts = log_tokens(stack, run)
        drain = time.monotonic() - last_accept
        average = os.getloadavg()
        slowest_in_burst = burst(stack, clients, f"{run}-burst")
    finally:
        stack.stop()
    return Figures(
        events=events,
        accepted=len(load.tokens),
        seconds=seconds,
        events_per_second=len(load.tokens) / seconds,
        p50=_percentile(load.latencies, 0.50),
        p99=_percentile(load.latencies, 0.99),
        drain=drain,
        lost=len(wanted - counts.keys()),
        duplicated=sum(1 for token, count in counts.items() if count > 1),
        offered=rate,
        burst=slowest_in_burst,
        failures=len(load.failures),
        failure_samples=tuple(load.failures[:3]),
        load_average=(round(average[0], 2), round(average[1], 2), round(average[2], 2)),
        by_size={
            size: (len(values), _percentile(values, 0.50), _percentile(values, 0.99))
            for size, values in sorted(load.by_size.items())
        },
    )


def report(figures: Figures) -> list[tuple[str, bool]]:
    """Print the figures; return each target with whether it was met."""
    mark = {True: "✓", False: "✗"}
    met = figures.met
    pace = f"offered {figures.offered:.0f} events/s" if figures.offered else "each client as fast as answered"
    print(
        f"   {figures.accepted:,} of {figures.events:,} events accepted in {figures.seconds:.1f} s by {CLIENTS} clients"
        f" (singles and batches up to 100; template rules + {EXTRA_RULES} extra rules; {pace})"
    )
    names = list(met)
    print(
        f"   {figures.events_per_second:8.1f} events/s   target ≥ {TARGET_EVENTS_PER_SECOND:.0f}  {mark[met[names[0]]]}"
    )
    print(
        f"   POST p50 {figures.p50 * 1000:.0f} ms, p99 {figures.p99 * 1000:.0f} ms"
        f"   target p99 ≤ {TARGET_P99_SECONDS * 1000:.0f} ms  {mark[met[names[1]]]}"
    )
    print(
        f"   drain {figures.drain:.1f} s after the last accept   target ≤ {TARGET_DRAIN_SECONDS:.0f} s"
        f"  {mark[met[names[2]]]}"
    )
    print(
        f"   lost {figures.lost}, duplicated {figures.duplicated}, failed requests {figures.failures}"
        f"   target 0/0  {mark[met[names[3]]]}"
    )
    sizes = ", ".join(f"{size}: {p50 * 1000:.0f}/{p99 * 1000:.0f}" for size, (_, p50, p99) in figures.by_size.items())
    print(f"   POST p50/p99 ms by events per request: {sizes}")
    together = sum(_size_at(index) for index in range(CLIENTS))
    print(
        f"   {CLIENTS} requests at one instant ({together} events, after the drain): slowest answer"
        f" {figures.burst * 1000:.0f} ms (median of {BURST_ROUNDS}; no target)"
    )
    for failure in figures.failure_samples:
        print(f"   failed: {failure}")
    print(f"   load average at the end {figures.load_average} on {os.cpu_count()} CPUs (shared machines skew this)")
    return list(met.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument(
        "--rate",
        type=float,
        default=OFFERED_EVENTS_PER_SECOND,
        help="events/s offered by all clients together (0: each client sends as soon as it has its answer)",
    )
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose local stack runs")
    args = parser.parse_args(argv)
    print(f"Local stack under load ({args.repo})")
    results = report(measure(args.events, args.clients, args.repo, args.rate))
    return 0 if all(met for _, met in results) else 1


if __name__ == "__main__":
    sys.exit(main())
