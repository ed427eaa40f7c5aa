"""``python -m bench.storm``: a storm of matching events through a rule's delivery policy, counted.

10,000 events (``--events``) for one rule with ``throttle`` 5 per minute (excess digested) and a
``group``, decided by ``--threads`` racing workers against the policy state (DynamoDB, moto in this
process, atomic per request like DynamoDB), all within one throttle window; then the due group is
flushed. Prints the figures and checks them: exactly 5 delivered, every other event in exactly
one digest, one digest. Wall time is reported, never asserted (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from correlator.policies import DeliveryPolicy
from correlator.policy_state import Clock, PolicyState

TABLE = "bench-policy"
POLICY = {
    "throttle": {"limit": 5, "window": "1m", "excess": "digest"},
    "group": {"group_by": ["system_id"], "group_wait": "30s", "group_interval": "5m", "limit": 20},
}


def storm(events: int, threads: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from local import moto_compat

    moto_compat.apply()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        flushes: list[tuple[dict[str, Any], int]] = []
        now = 1_795_359_120.0  # the start of a minute: the whole storm falls in one throttle window
        state = PolicyState(
            dynamodb, TABLE, lambda message, delay: flushes.append((message, delay)), Clock(now=lambda: now)
        )
        policy = DeliveryPolicy.model_validate(POLICY)

        def decide(number: int) -> str:
            detail = {"id": f"storm-{number:06d}", "type": "storm.error", "system_id": "payments", "hops": 0}
            return state.decide("storm", policy, detail, {"rule": {"name": "storm"}, "action": "sms"}).outcome

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = Counter(pool.map(decide, range(events)))
        decided = time.monotonic() - started
        # A redelivery of every 10th event changes nothing.
        replays = Counter(decide(number) for number in range(0, events, 10))
        now += 30
        digests = [digest for message, _ in flushes if (digest := state.flush(message)) is not None]
    return {
        "events": events,
        "threads": threads,
        "decide_seconds": round(decided, 1),
        "events_per_second": round(events / decided, 1),
        "outcomes": dict(outcomes),
        "redelivered": dict(replays),
        "flush_messages": len(flushes),
        "digests": len(digests),
        "digested": sum(digest["count"] for digest in digests),
        "listed_per_digest": [len(digest["events"]) for digest in digests],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    figures = storm(args.events, args.threads)
    print(json.dumps(figures, indent=2))
    delivered = figures["outcomes"].get("deliver", 0)
    exact = (
        delivered == 5
        and figures["outcomes"].get("throttled", 0) == args.events - 5
        and figures["digests"] == 1
        and figures["digested"] == args.events - 5
        and figures["redelivered"] == {"deliver": 1, "throttled": len(range(0, args.events, 10)) - 1}
    )
    print("counts exact" if exact else "COUNTS WRONG")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
