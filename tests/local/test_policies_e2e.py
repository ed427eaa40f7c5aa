"""The delivery-policy recipes on the local stack (docs/delivery-policies.md), over HTTP, with real time windows
made short: rules created through the rules API, events posted to /events, notify services that are HTTP
receivers on 127.0.0.1:RELAY_RECEIVER_PORT (allow-listed by the test stack), and the policy.* lines of the event log.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.local.conftest import RELAY_RECEIVER_PORT, LocalStack, create_rule, wait_for

pytestmark = pytest.mark.slow

DEV_KEY = {"x-api-key": "local-dev-key", "content-type": "application/json"}
ADMIN_KEY = {"x-api-key": "local-admin-key"}
WAIT_SECONDS = 60
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def service(stack: LocalStack) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A notify service: a JSON receiver on 127.0.0.1 and the secret that names it; (secret name, received)."""
    received: list[dict[str, Any]] = []
    # The port the test stack allow-lists (locally RelayAllowedHosts names host:port; notify uses it too).
    server = ThreadingHTTPServer(
        ("127.0.0.1", RELAY_RECEIVER_PORT), type("Receiver", (_Receiver,), {"received": received})
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"correlator/notify/e2e-{uuid.uuid4().hex[:8]}"
    stack.client("secretsmanager").create_secret(
        Name=name, SecretString=f"json://127.0.0.1:{server.server_address[1]}/"
    )
    try:
        yield name, received
    finally:
        server.shutdown()
        server.server_close()


def post_events(stack: LocalStack, events: list[dict[str, Any]], request_key: str) -> None:
    body = json.dumps({"events": events})
    response = stack.request("POST", "/events", body, {**DEV_KEY, "X-Request-Key": request_key})
    assert response.status == 200, response.body


def log_lines(stack: LocalStack, needle: str, count: int) -> list[str]:
    def lines() -> list[str]:
        response = stack.request("GET", "/logs/current/default.log", headers=ADMIN_KEY)
        found = [line for line in response.body.decode("utf-8").splitlines() if needle in line]
        return found if len(found) >= count else []

    found: list[str] = wait_for(lines, WAIT_SECONDS, f"fewer than {count} log lines with {needle}")
    return found


def test_page_on_call_at_most_once_per_window_per_service_and_digest_the_rest(
    stack: LocalStack, rules: list[str], service: tuple[str, list[dict[str, Any]]]
) -> None:
    # GIVEN the recipe with its windows made short (10 minutes stays; the hourly digest becomes 3 s)
    secret, received = service
    suffix = uuid.uuid4().hex[:8]
    create_rule(
        stack,
        rules,
        {
            "name": f"page-{suffix}",
            "match": {"type": f"e2e.page.{suffix}", "level": ["ERROR"]},
            "action": "notify",
            "config": {"services": [secret]},
            "policy": {
                "throttle": {"limit": 1, "window": "10m", "key": ["system_id"], "excess": "digest"},
                "group": {
                    "group_by": ["system_id"],
                    "group_wait": "3s",
                    "group_interval": "3s",
                    "repeat_interval": "1h",
                },
            },
        },
    )
    request_key = f"page_{suffix}"

    # WHEN 5 ERRORs of payments and 2 of billing arrive (and a WARN, which the rule does not match)
    events = [
        {"type": f"e2e.page.{suffix}", "level": "ERROR", "system_id": system, "summary": f"{system} down {n}"}
        for n, system in enumerate(["payments"] * 5 + ["billing"] * 2)
    ]
    post_events(stack, [*events, {"type": f"e2e.page.{suffix}", "level": "WARN", "system_id": "payments"}], request_key)

    # THEN one page per service at once, then one digest per service with the rest
    wait_for(lambda: len(received) >= 4, WAIT_SECONDS, f"pages and digests missing: {received}\n{stack.logs()[-3000:]}")
    pages = [item for item in received if not item["title"].startswith("[INFO]")]
    digests = [item for item in received if item["title"].startswith("[INFO]")]
    # (which event of a service pages first depends on delivery order: EventBridge does not keep one)
    assert sorted(page["title"].rsplit(" ", 1)[0] for page in pages) == [
        "[ERROR] billing down",
        "[ERROR] payments down",
    ]
    assert sorted(digest["title"] for digest in digests) == ["[INFO] 1 events (billing)", "[INFO] 4 events (payments)"]
    # AND the event log accounts for every event: 5 throttled, 2 flushed digests counting 4 and 1
    throttled = log_lines(stack, '"policy.throttled"', 5)
    assert len([line for line in throttled if f'"page-{suffix}"' in line]) == 5
    flushed = log_lines(stack, '"policy.flushed"', 2)
    assert any('"4"' in line and "system_id=payments" in line for line in flushed)
    assert any('"1"' in line and "system_id=billing" in line for line in flushed)


def active_now(zone: str, *, now: datetime | None = None) -> dict[str, Any]:
    """A time interval in ``zone`` that contains the current minute (today, from an hour ago to an hour on)."""
    local = (now or datetime.now(ZoneInfo(zone))).astimezone(ZoneInfo(zone))
    start = max(local - timedelta(hours=1), local.replace(hour=0, minute=0))
    end = min(local + timedelta(hours=1), local.replace(hour=23, minute=59))
    return {
        "weekdays": [WEEKDAYS[local.weekday()]],
        "times": [
            {"start_time": start.strftime("%H:%M"), "end_time": end.strftime("%H:%M") if end > start else "24:00"}
        ],
        "location": zone,
    }


def test_slack_for_warn_during_working_hours_only(
    stack: LocalStack, rules: list[str], service: tuple[str, list[dict[str, Any]]]
) -> None:
    # GIVEN the recipe twice: working hours that contain now in Berlin, and working hours that do not (tomorrow)
    secret, received = service
    suffix = uuid.uuid4().hex[:8]
    inside = active_now("Europe/Berlin")
    tomorrow = WEEKDAYS[(datetime.now(ZoneInfo("Europe/Berlin")).weekday() + 1) % 7]
    outside = {**inside, "weekdays": [tomorrow]}
    for name, interval in ((f"warn-in-{suffix}", inside), (f"warn-out-{suffix}", outside)):
        create_rule(
            stack,
            rules,
            {
                "name": name,
                "match": {"type": f"e2e.warn.{suffix}", "level": ["WARN"]},
                "action": "notify",
                "config": {"services": [secret], "title": "${rule.name}: ${event.summary}"},
                "policy": {"active": [interval]},
            },
        )

    # WHEN a WARN arrives
    post_events(stack, [{"type": f"e2e.warn.{suffix}", "level": "WARN", "summary": "disk 91%"}], f"warn_{suffix}")

    # THEN the in-hours rule posted it; the out-of-hours one muted it (policy.muted in the log), posting nothing
    wait_for(lambda: received, WAIT_SECONDS, "nothing posted")
    [muted] = log_lines(stack, f'"warn-out-{suffix}"', 1)
    assert '"policy.muted"' in muted
    assert [item["title"] for item in received] == [f"warn-in-{suffix}: disk 91%"]


def test_the_dry_run_shows_what_the_policy_would_do_now(
    stack: LocalStack, rules: list[str], service: tuple[str, list[dict[str, Any]]]
) -> None:
    # GIVEN a rule that pages at most once per 10 minutes
    secret, received = service
    suffix = uuid.uuid4().hex[:8]
    name = f"dry-{suffix}"
    create_rule(
        stack,
        rules,
        {
            "name": name,
            "match": {"type": f"e2e.dry.{suffix}"},
            "action": "notify",
            "config": {"services": [secret]},
            "policy": {"throttle": {"limit": 1, "window": "10m"}},
        },
    )
    event = {"type": f"e2e.dry.{suffix}", "level": "ERROR"}

    def dry_run() -> dict[str, Any]:
        response = stack.request(
            "POST", f"/rules/{name}/test", json.dumps(event), {**ADMIN_KEY, "content-type": "application/json"}
        )
        assert response.status == 200, response.body
        answer: dict[str, Any] = json.loads(response.body)
        return answer

    # WHEN / THEN before any delivery the dry run says "deliver", and says it again (it counted nothing)
    assert [dry_run()["policy"]["decision"] for _ in range(2)] == ["deliver", "deliver"]

    # WHEN one event is delivered, THEN the dry run says the next one would be throttled
    post_events(stack, [event], f"dry_{suffix}")
    wait_for(lambda: received, WAIT_SECONDS, "nothing posted")
    assert dry_run()["policy"] == {"decision": "throttled", "reason": "drop", "group": None, "due": None}
    assert len(received) == 1
