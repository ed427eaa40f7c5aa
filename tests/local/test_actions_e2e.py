"""The data and integration actions in the local stack, over HTTP: a rule created through the rules
API, a matching event posted to /events, and what the action did (a CSV file in S3, a script's
re-emitted event, an HTTP POST received on 127.0.0.1) plus its result line in the event log.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.local.conftest import RELAY_RECEIVER_PORT, LocalStack, create_rule, wait_for

pytestmark = pytest.mark.slow

DEV_KEY = {"x-api-key": "local-dev-key"}
ADMIN_KEY = {"x-api-key": "local-admin-key"}
JSON = {"content-type": "application/json"}
BATCH_WAIT_SECONDS = 30  # the queue-fed writers batch for a few seconds first


def post_event(stack: LocalStack, event: dict[str, Any], request_key: str) -> str:
    response = stack.request("POST", "/events", json.dumps(event), {**JSON, **DEV_KEY, "X-Request-Key": request_key})
    assert response.status == 200, response.body
    event_id: str = response.json()["results"][0]["id"]
    return event_id


def log_lines_of(stack: LocalStack, request_key: str, count: int) -> list[str]:
    """The event-log lines of ``request_key``, once there are at least ``count``."""

    def lines() -> list[str]:
        response = stack.request("GET", "/logs/current/default.log", headers=ADMIN_KEY)
        assert response.status == 200, response.body
        found = [line for line in response.body.decode("utf-8").splitlines() if f'"{request_key}"' in line]
        return found if len(found) >= count else []

    result: list[str] = wait_for(lines, BATCH_WAIT_SECONDS, f"fewer than {count} log lines for {request_key}")
    return result


def test_a_csv_rule_writes_dataset_rows_to_the_data_bucket(stack: LocalStack, rules: list[str]) -> None:
    # GIVEN a csv rule for one dataset
    suffix = uuid.uuid4().hex[:8]
    dataset = f"sales-{suffix}"
    create_rule(
        stack, rules, {"name": f"csv-{suffix}", "action": "csv", "match": {"kind": "dataset", "dataset": dataset}}
    )
    request_key = f"csv_{suffix}"

    # WHEN two dataset rows are posted, one with a formula-looking cell
    for amount, note in ((10, "ok"), (20, "=HYPERLINK(1)")):
        event = {
            "type": "sale.recorded",
            "kind": "dataset",
            "dataset": dataset,
            "payload": {"amount": amount, "note": note},
        }
        post_event(stack, event, request_key)

    # THEN one CSV file in the data bucket holds a header and both rows, the formula neutralised
    s3 = stack.client("s3")
    [bucket] = [b["Name"] for b in s3.list_buckets()["Buckets"] if "databucket" in b["Name"].lower()]

    def rows() -> list[list[str]]:
        objects = s3.list_objects_v2(Bucket=bucket, Prefix=f"csv/{dataset}/").get("Contents", [])
        if not objects:
            return []
        body = s3.get_object(Bucket=bucket, Key=objects[0]["Key"])["Body"].read().decode("utf-8")
        parsed = list(csv.reader(io.StringIO(body, newline="")))
        return parsed if len(parsed) >= 3 else []

    header, *data = wait_for(rows, BATCH_WAIT_SECONDS, f"no CSV rows for {dataset}:\n{stack.logs()[-3000:]}")
    assert header == ["timestamp", "amount", "note"]
    assert sorted((row[1], row[2]) for row in data) == [("10", "ok"), ("20", "'=HYPERLINK(1)")]

    # AND each row's result event reached the event log
    lines = log_lines_of(stack, request_key, 4)  # 2 events + 2 csv results
    assert sum('"csv","csv/' in line for line in lines) == 2, lines


def test_a_script_rule_runs_the_registered_script(stack: LocalStack, rules: list[str]) -> None:
    # GIVEN an exec (script) rule running the enrich example script
    suffix = uuid.uuid4().hex[:8]
    event_type = f"e2e.order.{suffix}"
    enriched = f"e2e.enriched.{suffix}"
    create_rule(
        stack,
        rules,
        {
            "name": f"enrich-{suffix}",
            "action": "exec",
            "match": {"type": event_type},
            "config": {"script": "enrich", "args": {"type": enriched, "fields": {"channel": "web"}}},
        },
    )
    request_key = f"script_{suffix}"

    # WHEN a matching event is posted
    post_event(stack, {"type": event_type, "object": "orders/1", "payload": {"total": 5}}, request_key)

    # THEN the enriched event was emitted (internal, hops 1) and the script's result logged
    lines = log_lines_of(stack, request_key, 3)  # the event, the enriched event, the script result
    assert any(f'"false",null,"local-dev-key-id","{enriched}","orders/1"' in line for line in lines), lines
    assert any('"script","enrich"' in line for line in lines), lines


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """An HTTP server on 127.0.0.1:RELAY_RECEIVER_PORT (allow-listed in the stack) recording what it receives."""
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", RELAY_RECEIVER_PORT), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_relay_rule_posts_the_event_to_its_url(
    stack: LocalStack, rules: list[str], receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    # GIVEN a relay rule to a receiver on 127.0.0.1:RELAY_RECEIVER_PORT (allow-listed for the test stack)
    url, received = receiver
    suffix = uuid.uuid4().hex[:8]
    event_type = f"e2e.relay.{suffix}"
    create_rule(
        stack,
        rules,
        {"name": f"relay-{suffix}", "action": "relay", "match": {"type": event_type}, "config": {"url": url}},
    )
    request_key = f"relay_{suffix}"

    # WHEN a non-matching event, then a matching one, are posted
    post_event(stack, {"type": f"e2e.other.{suffix}", "object": "orders/8"}, request_key)
    event_id = post_event(stack, {"type": event_type, "object": "orders/9"}, request_key)

    # THEN the action ran exactly once: for the matching event, with the chain headers
    wait_for(lambda: list(received), 20, f"nothing relayed:\n{stack.logs()[-3000:]}")
    [(headers, body)] = received
    assert json.loads(body)["id"] == event_id
    assert json.loads(body)["type"] == event_type
    assert headers["X-Event-Id"] == event_id
    assert headers["X-Request-Key"] == request_key
    assert headers["X-Rule-Chain"] == "1"

    # AND the relay's result event (HTTP status 200) is in the event log, next to both events
    lines = log_lines_of(stack, request_key, 3)
    assert any('"relay"' in line and '"200"' in line for line in lines), lines
