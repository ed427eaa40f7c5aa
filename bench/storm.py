"""``python -m bench.storm``: a storm of matching events through a rule's delivery policy, counted in the event log.

End to end on a fresh local stack (``python -m local``): one ``relay`` rule to an HTTP receiver on
127.0.0.1 with ``throttle`` 5 per minute (the excess folded into digests) and a ``group`` by
``system_id``; ``--events`` (default 10,000) matching events posted by ``--clients`` threads, one
event per request, each request with its own request key (the key every line the event causes
carries: the event's own line and the relay's or the policy's decision line). Then the event log
is read until every event is accounted for and every digest is out, and checked:

- every event's line is in the log once, and exactly one decision line: ``relay`` (delivered now) or
  ``policy.throttled`` / ``policy.grouped`` / ``policy.deduplicated`` / ``policy.muted`` (suppressed);
- deliveries now ≤ 5 per throttle window the storm and its drain touched, digests ≤ one per
  ``group_interval`` (after the first);
- the ``policy.flushed`` digests count every throttled event exactly once;
- the receiver got exactly the deliveries now plus one POST per digest.

Prints the figures; exits 1 unless every count is exact. Wall times are reported, never asserted.
``--state-only`` decides the storm against the policy state alone (moto in this process, racing
threads, no stack): the policy's own cost. Loopback only.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import local_load
from correlator.policies import DeliveryPolicy
from correlator.policy_state import Clock, PolicyState

LIMIT, WINDOW_SECONDS = 5, 60
GROUP_WAIT_SECONDS, GROUP_INTERVAL_SECONDS = 10, 30
POLICY = {
    "throttle": {"limit": LIMIT, "window": f"{WINDOW_SECONDS}s", "excess": "digest"},
    "group": {
        "group_by": ["system_id"],
        "group_wait": f"{GROUP_WAIT_SECONDS}s",
        "group_interval": f"{GROUP_INTERVAL_SECONDS}s",
        "repeat_interval": "1h",
        "limit": 20,
    },
}
DECISIONS = ("relay", "policy.throttled", "policy.grouped", "policy.deduplicated", "policy.muted", "policy.held")
SEND_LIMIT_SECONDS = 1800.0
DRAIN_LIMIT_SECONDS = 3600.0  # the local stack decides ~10 events/s on a busy 2-core machine
POLL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Line:
    """One event-log line: ``time,[LEVEL],"request key","external","schema","subject","type","object","info"``."""

    request_key: str | None
    external: bool
    type: str
    object: str | None
    info: str | None

    @classmethod
    def parse(cls, text: str) -> Line | None:
        fields = next(csv.reader([text]), [])
        if len(fields) != 9:
            return None
        value = [None if field == "null" else field for field in fields]
        return cls(value[2], value[3] == "true", value[6] or "", value[7], value[8])


@dataclass
class Accounting:
    """What the log says about a storm's events (``keys``: each event's request key)."""

    keys: frozenset[str]
    seen: Counter[str] = field(default_factory=Counter)  # the events' own lines per key
    decided: dict[str, list[str]] = field(default_factory=dict)  # the decision lines per key
    flushed: list[int] = field(default_factory=list)  # each digest's count
    digest_deliveries: int = 0  # relay lines of digests

    @classmethod
    def of(cls, lines: Iterable[str], keys: frozenset[str], group_object: str) -> Accounting:
        accounting = cls(keys)
        for text in lines:
            line = Line.parse(text)
            if line is None:
                continue
            if line.request_key in keys:
                if line.external:
                    accounting.seen[line.request_key] += 1
                elif line.type in DECISIONS:
                    accounting.decided.setdefault(line.request_key, []).append(line.type)
            elif line.type == "policy.flushed" and line.object == group_object:
                accounting.flushed.append(int(line.info or 0))
            elif line.type == "relay" and not line.external and line.request_key not in keys:
                accounting.digest_deliveries += 1
        return accounting

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(types[0] for types in self.decided.values() if len(types) == 1)

    @property
    def complete(self) -> bool:
        """Every event decided, and every throttled or grouped one in a digest."""
        outcomes = self.outcomes
        held = outcomes["policy.throttled"] + outcomes["policy.grouped"] + outcomes["policy.held"]
        return len(self.decided) == len(self.keys) and sum(self.flushed) >= held

    def problems(self, received: int, windows: int) -> list[str]:
        """Every way the counts are not exact (empty: exact)."""
        outcomes = self.outcomes
        digested = outcomes["policy.throttled"] + outcomes["policy.grouped"] + outcomes["policy.held"]
        counts = {
            "events missing from the log": len(self.keys - self.seen.keys()),
            "events logged twice": sum(1 for count in self.seen.values() if count > 1),
            "events without a decision": len(self.keys - self.decided.keys()),
            "events decided twice": sum(1 for types in self.decided.values() if len(types) > 1),
        }
        found = [f"{count} {what}" for what, count in counts.items() if count]
        if outcomes["relay"] > LIMIT * windows:
            found.append(f"{outcomes['relay']} delivered now > {LIMIT} x {windows} windows")
        if sum(self.flushed) != digested:
            found.append(f"digests count {sum(self.flushed)}, {digested} were digested")
        if self.digest_deliveries != len(self.flushed):
            found.append(f"{self.digest_deliveries} digest deliveries for {len(self.flushed)} digests")
        if received != outcomes["relay"] + len(self.flushed):
            found.append(f"receiver got {received} POSTs, {outcomes['relay']} + {len(self.flushed)} sent")
        return found


class _Receiver(BaseHTTPRequestHandler):
    counter: list[int]
    lock: threading.Lock

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.counter[0] += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def post_storm(stack: local_load.Stack, run: str, events: int, clients: int) -> tuple[list[str], list[str]]:
    """Post ``events`` single events, each with its own request key; (accepted keys, failures)."""
    numbers = iter(range(events))
    lock = threading.Lock()
    accepted: list[str] = []
    failures: list[str] = []
    deadline = time.monotonic() + SEND_LIMIT_SECONDS

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                number = next(numbers, None)
            if number is None:
                break
            key = f"storm_{run}_{number:06d}"
            body = {"type": f"storm.error.{run}", "level": "ERROR", "system_id": f"storm-{run}", "object": key}
            headers = {"x-api-key": "local-dev-key", "content-type": "application/json", "X-Request-Key": key}
            try:
                connection.request("POST", "/events", json.dumps(body), headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
                with lock:
                    failures.append(f"{key}: {type(error).__name__}: {error}")
                continue
            with lock:
                (accepted if response.status == 200 else failures).append(
                    key if response.status == 200 else f"{key}: {response.status} {data[:200]!r}"
                )
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted, failures


def storm(events: int, clients: int) -> dict[str, Any]:
    """The storm end to end on a fresh local stack; its figures (``problems`` empty when every count is exact)."""
    counter, lock = [0], threading.Lock()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), type("Receiver", (_Receiver,), {"counter": counter, "lock": lock}))
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = receiver.server_address[1]
    stack = local_load.start_stack(extra_env={"CORRELATOR_PARAM_RelayAllowedHosts": f"127.0.0.1:{port}"})
    run = uuid.uuid4().hex[:8]
    try:
        rule = {
            "name": f"storm-{run}",
            "match": {"type": f"storm.error.{run}", "level": ["ERROR"]},
            "action": "relay",
            "config": {"url": f"http://127.0.0.1:{port}/storm"},
            "policy": POLICY,
        }
        status, body = stack.request("POST", "/rules", rule)
        if status != 201:
            raise RuntimeError(f"storm rule: {status} {body}")
        started = time.time()
        accepted, failures = post_storm(stack, run, events, clients)
        sent = time.time()
        keys = frozenset(accepted)
        deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
        while True:
            accounting = Accounting.of(local_load.log_lines(stack), keys, f"system_id=storm-{run}")
            if accounting.complete or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        drained = time.time()
        time.sleep(2)  # a digest's POST is logged after it is received: let a late duplicate show
        received = counter[0]
        load_average = os.getloadavg()
    finally:
        stack.stop()
        receiver.shutdown()
        receiver.server_close()
    windows = int(drained // WINDOW_SECONDS) - int(started // WINDOW_SECONDS) + 1
    # One digest after group_wait, then at most one per group_interval.
    allowed_digests = 1 + int((drained - started) // GROUP_INTERVAL_SECONDS) + 1
    outcomes = accounting.outcomes
    return {
        "events": events,
        "accepted": len(accepted),
        "failed_requests": len(failures),
        "failure_samples": failures[:3],
        "post_seconds": round(sent - started, 1),
        "events_per_second": round(len(accepted) / max(sent - started, 1e-9), 1),
        "drain_seconds": round(drained - sent, 1),
        "logged": len(accounting.seen),
        "decisions": dict(outcomes),
        "throttle_windows": windows,
        "allowed_now": LIMIT * windows,
        "digests": len(accounting.flushed),
        "allowed_digests": allowed_digests,
        "digested": sum(accounting.flushed),
        "notifications_received": received,
        "load_average": [round(value, 2) for value in load_average],
        "problems": (["not every event was accepted"] if len(accepted) != events else [])
        + (
            [f"{len(accounting.flushed)} digests > {allowed_digests}"]
            if len(accounting.flushed) > allowed_digests
            else []
        )
        + accounting.problems(received, windows),
    }


def state_storm(events: int, threads: int) -> dict[str, Any]:
    """The policy state alone: ``events`` decisions by ``threads`` racers within one throttle window, then flushed."""
    import boto3
    from moto import mock_aws

    from local import moto_compat

    moto_compat.apply()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="bench-policy",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        flushes: list[tuple[dict[str, Any], int]] = []
        now = 1_795_359_120.0  # the start of a minute: the whole storm falls in one throttle window
        state = PolicyState(
            dynamodb, "bench-policy", lambda message, delay: flushes.append((message, delay)), Clock(now=lambda: now)
        )
        policy = DeliveryPolicy.model_validate(POLICY)

        def decide(number: int) -> str:
            detail = {"id": f"storm-{number:06d}", "type": "storm.error", "system_id": "payments", "hops": 0}
            return state.decide("storm", policy, detail, {"rule": {"name": "storm"}, "action": "relay"}).outcome

        started, cpu = time.monotonic(), time.process_time()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = Counter(pool.map(decide, range(events)))
        decided, cpu = time.monotonic() - started, time.process_time() - cpu
        replays = Counter(decide(number) for number in range(0, events, 10))  # redelivered: nothing changes
        now += GROUP_INTERVAL_SECONDS
        digests = [digest for message, _ in flushes if (digest := state.flush(message)) is not None]
    exact = (
        outcomes == {"deliver": LIMIT, "throttled": events - LIMIT}
        and replays == {"deliver": 1, "throttled": len(range(0, events, 10)) - 1}
        and len(digests) == 1
        and digests[0]["count"] == events - LIMIT
    )
    return {
        "events": events,
        "threads": threads,
        "decide_seconds": round(decided, 1),
        "cpu_ms_per_decision": round(cpu / events * 1000, 1),
        "outcomes": dict(outcomes),
        "redelivered": dict(replays),
        "digests": len(digests),
        "digested": sum(digest["count"] for digest in digests),
        "problems": [] if exact else ["counts not exact"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8, help="posting threads (racing deciders with --state-only)")
    parser.add_argument("--state-only", action="store_true", help="the policy state alone, no local stack")
    args = parser.parse_args(argv)
    figures = state_storm(args.events, args.clients) if args.state_only else storm(args.events, args.clients)
    print(json.dumps(figures, indent=2))
    print("counts exact" if not figures["problems"] else "COUNTS WRONG: " + "; ".join(figures["problems"]))
    return 0 if not figures["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
