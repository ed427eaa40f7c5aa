"""The notification actions in the local stack, over HTTP: rule + event -> email in moto's outbox, SMS dry run,
and their result events in the event log.

Needs the EmailFunction and SmsFunction of template.yaml (issue 5); skipped while the template lacks them.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from local.template import load_yaml
from tests.local.conftest import REPO_ROOT, LocalStack, create_rule, wait_for

pytestmark = pytest.mark.slow

DEV_KEY = {"x-api-key": "local-dev-key"}
ADMIN_KEY = {"x-api-key": "local-admin-key"}
JSON = {"content-type": "application/json"}
LOG_WAIT_SECONDS = 30  # the log writer batches for LogBatchWindowSeconds (5 s) first


def template_resources() -> dict[str, Any]:
    path = Path(os.environ.get("CORRELATOR_TEMPLATE") or REPO_ROOT / "template.yaml")
    resources: dict[str, Any] = load_yaml(path.read_text(encoding="utf-8")).get("Resources") or {}
    return resources


@pytest.fixture(scope="module")
def notifying_stack(request: pytest.FixtureRequest) -> LocalStack:
    """The project's local stack, once template.yaml declares the notification functions."""
    missing = {"EmailFunction", "SmsFunction", "SenderIdentity"} - set(template_resources())
    if missing:
        pytest.skip(f"template.yaml lacks {', '.join(sorted(missing))} (issue 5)")
    stack: LocalStack = request.getfixturevalue("stack")
    return stack


def outbox(stack: LocalStack) -> list[dict[str, Any]]:
    """moto's SES outbox, read from its server's /moto-api/data.json."""
    with urllib.request.urlopen(f"{stack.moto_endpoint}/moto-api/data.json", timeout=10) as response:
        data = json.loads(response.read())
    messages: list[dict[str, Any]] = (data.get("ses") or {}).get("Message") or []
    return messages


def event_log_lines(stack: LocalStack) -> list[str]:
    response = stack.request("GET", "/logs/current/default.log", headers=ADMIN_KEY)
    assert response.status == 200, response.body
    return response.body.decode("utf-8").splitlines()


def test_an_email_rule_mails_the_outbox_and_logs_its_result(notifying_stack: LocalStack, rules: list[str]) -> None:
    # GIVEN an email rule and an SMS rule (dry run: no Twilio secret locally), created through the rules API
    stack = notifying_stack
    suffix = uuid.uuid4().hex[:8]
    event_type = f"e2e.notify.{suffix}"
    recipient = f"ops-{suffix}@example.com"
    create_rule(
        stack,
        rules,
        {
            "name": f"mail-{suffix}",
            "action": "email",
            "match": {"type": event_type},
            "config": {"to": [recipient], "template": "default"},
        },
    )
    create_rule(
        stack,
        rules,
        {
            "name": f"text-{suffix}",
            "action": "sms",
            "match": {"type": event_type},
            "config": {"to": ["+447700900123"], "body": "${event.type}: ${event.summary}"},
        },
    )
    request_key = f"e2e_{suffix}"
    event = {
        "type": event_type,
        "level": "ERROR",
        "summary": f"Payment {suffix} failed",
        "payload": {"note": "<script>alert(1)</script>"},
    }

    # WHEN a client posts a matching event
    response = stack.request("POST", "/events", json.dumps(event), {**JSON, **DEV_KEY, "X-Request-Key": request_key})
    assert response.status == 200, response.body

    # THEN one email to the rule's recipient lands in moto's outbox, the payload's markup escaped
    def mailed() -> list[dict[str, Any]]:
        return [message for message in outbox(stack) if recipient in json.dumps(message.get("destinations"))]

    [message] = wait_for(mailed, 20, f"no email to {recipient} in the outbox:\n{stack.logs()[-3000:]}")
    assert message["subject"] == f"[ERROR] Payment {suffix} failed"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message["body"]
    assert "<script>" not in message["body"]

    # AND the event log holds the event and both result lines (same request key, internal, hops + 1)
    def results() -> list[str]:
        lines = [line for line in event_log_lines(stack) if f'"{request_key}","false"' in line]
        return lines if len(lines) >= 2 else []

    lines = wait_for(results, LOG_WAIT_SECONDS, f"no result lines for {request_key}:\n{stack.logs()[-3000:]}")
    assert any(f'"email","{message["id"]}","sent"' in line for line in lines), lines
    assert any('"sms","1 recipients","dry-run"' in line for line in lines), lines
